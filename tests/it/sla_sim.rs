//! A seeded simulation of the SLA scheduler: random tickets, replies, customer messages, pauses,
//! priority changes, solves, reopens and closes, clock jumps of up to days (across the end of
//! daylight saving time in Berlin), crashes (the driver is dropped and rebuilt from the log) and
//! leader changes (another node's driver takes over). Every warning and breach in the log is
//! checked against an independent, brute-force oracle written here: it steps every ticket minute
//! by minute, counting a minute of business time when its own hand-written calendar says the
//! office is open, and says at which instant each warning and breach was owed. The log must hold
//! exactly those, once each, and every due time the scheduler recorded must be the oracle's.
//!
//! `DOCKET_SEED=<seed>` replays a run; `DOCKET_SLOW_TESTS=1` runs a longer one.

use std::collections::BTreeMap;

use domain::{Actor, ActorId, Command, Role, TicketId};
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use store::scratch::ScratchDb;
use tests::Rng;
use uuid::Uuid;

use crate::sla::{policies, settle, ManualClock, Node};

/// `fast` (24x7) for high and urgent tickets, `office` (Berlin business hours) for the rest.
/// An office warning raises the priority to high, which hands the ticket to `fast` mid-flight;
/// a first-response breach raises it to urgent.
const SIM_POLICIES: &str = r#"
version = 7
[calendars.berlin]
time_zone = "Europe/Berlin"
monday = ["09:00-12:00", "13:00-17:30"]
tuesday = ["09:00-12:00", "13:00-17:30"]
wednesday = ["09:00-12:00", "13:00-17:30"]
thursday = ["09:00-12:00", "13:00-17:30"]
friday = ["09:00-12:00", "13:00-17:30"]
holidays = ["2026-11-11", "12-25"]

[[policies]]
id = "fast"
when = { priority = ["high", "urgent"] }
warning = "80%"
targets.first_response = { high = "60m", urgent = "30m" }
targets.next_reply = "60m"
targets.periodic_update = "240m"
targets.resolution = { high = "600m", urgent = "480m" }
[[policies.escalations]]
rule = "urgent_on_breach"
on = "breach"
metrics = ["first_response"]
raise_priority = "urgent"

[[policies]]
id = "office"
calendar = "berlin"
warning = "80%"
targets.first_response = "120m"
targets.next_reply = "240m"
targets.periodic_update = "480m"
targets.resolution = { low = "1920m", normal = "960m" }
[[policies.escalations]]
rule = "high_on_warning"
on = "warning"
metrics = ["first_response", "resolution"]
raise_priority = "high"
"#;

/// The oracle's own business calendar: Berlin, Monday to Friday 09:00–12:00 and 13:00–17:30,
/// closed on 11 November 2026 and every 25 December.
fn berlin_open(at: Timestamp) -> bool {
    static BERLIN: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
    let zone = BERLIN.get_or_init(|| TimeZone::get("Europe/Berlin").unwrap());
    let local = zone.to_datetime(at);
    if matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday) {
        return false;
    }
    if (local.year(), local.month(), local.day()) == (2026, 11, 11)
        || (local.month(), local.day()) == (12, 25)
    {
        return false;
    }
    let minutes = i32::from(local.hour()) * 60 + i32::from(local.minute());
    (9 * 60..12 * 60).contains(&minutes) || (13 * 60..17 * 60 + 30).contains(&minutes)
}

const METRICS: [&str; 4] = [
    "first_response",
    "next_reply",
    "periodic_update",
    "resolution",
];

/// Targets in minutes: (policy, metric index, priority) → minutes.
fn target(policy: &str, metric: usize, priority: &str) -> Option<i64> {
    let minutes = match (policy, metric, priority) {
        ("fast", 0, "high") => 60,
        ("fast", 0, "urgent") => 30,
        ("fast", 1, _) => 60,
        ("fast", 2, _) => 240,
        ("fast", 3, "high") => 600,
        ("fast", 3, "urgent") => 480,
        ("office", 0, _) => 120,
        ("office", 1, _) => 240,
        ("office", 2, _) => 480,
        ("office", 3, "low") => 1920,
        ("office", 3, "normal") => 960,
        _ => return None,
    };
    Some(minutes)
}

fn policy_of(priority: &str) -> &'static str {
    if matches!(priority, "high" | "urgent") {
        "fast"
    } else {
        "office"
    }
}

#[derive(Clone, Debug, Default)]
struct OracleClock {
    active: bool,
    elapsed: i64,
    warned: bool,
    breached: bool,
}

#[derive(Clone, Debug)]
struct OracleTicket {
    category: String,
    priority: String,
    clocks: [OracleClock; 4],
    /// The resolution clock was met by a solve (a reopen resumes it).
    resolution_met_by_solve: bool,
}

impl OracleTicket {
    fn counting(&self, metric: usize) -> bool {
        self.clocks[metric].active
            && match self.category.as_str() {
                "new" | "open" => true,
                "pending" => metric == 0,
                _ => false,
            }
    }

    fn open_minute(&self, at: Timestamp) -> bool {
        policy_of(&self.priority) == "fast" || berlin_open(at)
    }

    /// The warnings and breaches owed at instant `at`, as (metric, kind).
    fn owed(&mut self, at: Timestamp, owed: &mut Vec<(usize, &'static str, Timestamp)>) {
        let policy = policy_of(&self.priority);
        for metric in 0..4 {
            let Some(target) = target(policy, metric, &self.priority) else {
                continue;
            };
            if !self.counting(metric) {
                continue;
            }
            let clock = &mut self.clocks[metric];
            if clock.elapsed >= target * 80 / 100 && !clock.warned && !clock.breached {
                clock.warned = true;
                owed.push((metric, "warning", at));
            }
            if clock.elapsed >= target && !clock.breached {
                clock.breached = true;
                owed.push((metric, "breach", at));
            }
        }
    }

    fn new_cycle(&mut self, metric: usize) {
        self.clocks[metric] = OracleClock {
            active: true,
            ..OracleClock::default()
        };
    }

    fn apply(&mut self, event_type: &str, payload: &Value) {
        let category = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        match event_type {
            "PriorityChanged" | "PriorityChangedByRule" => {
                self.priority = category(&payload["to"]);
            }
            "CustomerMessageReceived"
                if !self.clocks[0].active
                    && !self.clocks[1].active
                    && self.category != "closed" =>
            {
                self.new_cycle(1);
            }
            "PublicReplyPosted" => {
                self.clocks[0].active = false;
                self.clocks[1].active = false;
                if self.clocks[2].active {
                    self.new_cycle(2);
                }
            }
            "TicketTransitioned" | "TicketReopened" => {
                let to = category(&payload["to_category"]);
                let was = std::mem::replace(&mut self.category, to.clone());
                match to.as_str() {
                    "solved" => {
                        if self.clocks[3].active {
                            self.clocks[3].active = false;
                            self.resolution_met_by_solve = true;
                        }
                    }
                    "closed" => self
                        .clocks
                        .iter_mut()
                        .for_each(|clock| clock.active = false),
                    _ => {
                        if was == "solved" && self.resolution_met_by_solve {
                            self.clocks[3].active = true;
                            self.resolution_met_by_solve = false;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// When the running clock of `metric` reaches its target if nothing else happens.
    fn projected_due(&self, metric: usize, from: Timestamp) -> Option<Timestamp> {
        let target = target(policy_of(&self.priority), metric, &self.priority)?;
        let mut elapsed = self.clocks[metric].elapsed;
        let mut at = from;
        while elapsed < target {
            if self.open_minute(at) {
                elapsed += 1;
            }
            at += SignedDuration::from_mins(1);
        }
        Some(at)
    }
}

/// One ticket event from the log, in minutes.
struct Fact {
    at: Timestamp,
    ticket: String,
    event_type: String,
    payload: Value,
    fired_due_at: Option<Timestamp>,
}

/// Replays the log minute by minute; returns the owed warnings and breaches, and checks every
/// recorded due time on the way.
fn oracle(
    facts: &[Fact],
    end: Timestamp,
) -> BTreeMap<(String, String, &'static str), Vec<Timestamp>> {
    let mut owed_all: BTreeMap<(String, String, &'static str), Vec<Timestamp>> = BTreeMap::new();
    let mut by_ticket: BTreeMap<&str, Vec<&Fact>> = BTreeMap::new();
    for fact in facts {
        by_ticket.entry(&fact.ticket).or_default().push(fact);
    }
    for (ticket_name, facts) in by_ticket {
        let created = facts[0];
        assert_eq!(created.event_type, "TicketCreated");
        let mut ticket = OracleTicket {
            category: created.payload["category"].as_str().unwrap().to_owned(),
            priority: created.payload["priority"].as_str().unwrap().to_owned(),
            clocks: Default::default(),
            resolution_met_by_solve: false,
        };
        for metric in [0, 2, 3] {
            ticket.new_cycle(metric);
        }
        let mut next = 1;
        let mut at = created.at;
        while at <= end {
            let mut owed = Vec::new();
            // Owed by the time that passed up to this instant.
            ticket.owed(at, &mut owed);
            while next < facts.len() && facts[next].at == at {
                let fact = facts[next];
                next += 1;
                match fact.event_type.as_str() {
                    "SlaApplied" => {
                        for target in fact.payload["targets"].as_array().unwrap() {
                            let metric = METRICS
                                .iter()
                                .position(|name| *name == target["metric"])
                                .unwrap();
                            let due: Timestamp =
                                target["due_at"].as_str().unwrap().parse().unwrap();
                            assert_eq!(
                                Some(due),
                                ticket.projected_due(metric, at),
                                "{ticket_name} SlaApplied {} at {at}",
                                METRICS[metric]
                            );
                        }
                    }
                    "SlaRecomputed" => {
                        let metric = METRICS
                            .iter()
                            .position(|name| *name == fact.payload["metric"])
                            .unwrap();
                        let due: Timestamp =
                            fact.payload["to_due_at"].as_str().unwrap().parse().unwrap();
                        let target = target(policy_of(&ticket.priority), metric, &ticket.priority);
                        let used_up =
                            target.is_none_or(|target| ticket.clocks[metric].elapsed >= target);
                        if !used_up {
                            assert_eq!(
                                Some(due),
                                ticket.projected_due(metric, at),
                                "{ticket_name} SlaRecomputed {} at {at}: {}",
                                METRICS[metric],
                                fact.payload
                            );
                        }
                    }
                    other => ticket.apply(other, &fact.payload),
                }
                // A change at this instant (a target used up, a resume) may owe something now.
                ticket.owed(at, &mut owed);
            }
            for (metric, kind, due) in owed {
                owed_all
                    .entry((ticket_name.to_owned(), METRICS[metric].to_owned(), kind))
                    .or_default()
                    .push(due);
            }
            for metric in 0..4 {
                if ticket.counting(metric) && ticket.open_minute(at) {
                    ticket.clocks[metric].elapsed += 1;
                }
            }
            at += SignedDuration::from_mins(1);
        }
    }
    owed_all
}

fn agent() -> Actor {
    Actor {
        id: ActorId(Uuid::from_u128(0xa9e7)),
        role: Role::Agent,
    }
}

fn integration() -> Actor {
    Actor {
        id: ActorId(Uuid::from_u128(0x1e7)),
        role: Role::Integration,
    }
}

#[tokio::test]
async fn random_tickets_against_a_minute_by_minute_oracle() {
    let seed = tests::seed();
    crate::announce_seed("sla_sim", seed);
    simulate(seed).await;
}

/// Seeds that found a bug, replayed on every run.
#[tokio::test]
async fn seeds_that_found_bugs() {
    // A recompute back to a due time recorded earlier in the cycle was taken for a duplicate.
    simulate(16_781_774_737_726_706_410).await;
}

async fn simulate(seed: u64) {
    let mut rng = Rng::new(seed);
    let (tickets_max, steps) = if tests::slow_tests() {
        (60, 1500)
    } else {
        (12, 160)
    };
    let db = if rng.chance(1, 2) {
        ScratchDb::postgres()
            .await
            .unwrap_or(ScratchDb::sqlite().await)
    } else {
        ScratchDb::sqlite().await
    };
    // Sunday 18 October 2026, 08:00 UTC: the run crosses the end of summer time on the 25th.
    let clock = ManualClock::new("2026-10-18T08:00:00Z".parse().unwrap());
    let nodes = [
        Node::start(&db, clock.clone()).await,
        Node::start(&db, clock.clone()).await,
    ];
    let policies = policies(SIM_POLICIES);
    // Rounds of every size, from the seed (not the generator, so that a seed's run stays what
    // it was): small rounds overlap, and a ticket's items fall in different ones.
    let round = [sla_scheduler::driver::ROUND_WORK_MAX, 1, 2, 3][(seed % 4) as usize];
    let mut leader = 0;
    let mut driver = nodes[leader].driver(&policies).with_round_work_max(round);
    let mut tickets: Vec<TicketId> = Vec::new();
    let priorities = ["low", "normal", "high", "urgent"];
    let mut duplicates_fired = 0;
    for step in 0..steps {
        // Time passes: mostly minutes, sometimes days.
        let minutes = match rng.below(10) {
            0 => 24 * 60 + rng.below(3 * 24 * 60) as i64,
            1..=3 => 60 + rng.below(600) as i64,
            _ => 1 + rng.below(90) as i64,
        };
        clock.advance_ms(minutes * 60_000);
        match rng.below(20) {
            // A crash: the driver's memory is gone; a new one folds the log.
            0 => driver = nodes[leader].driver(&policies).with_round_work_max(round),
            // The leader changes: the other node's driver takes over.
            1 => {
                leader = 1 - leader;
                driver = nodes[leader].driver(&policies).with_round_work_max(round);
            }
            _ => {}
        }
        settle(&mut driver).await;
        // Something happens on a ticket.
        let node = &nodes[rng.below(2) as usize];
        if tickets.len() < tickets_max && (tickets.is_empty() || rng.chance(1, 4)) {
            let ticket_id = node
                .create(tickets.len() as u128 + step as u128 * 1000)
                .await;
            let priority = priorities[rng.below(4) as usize];
            if priority != "normal" {
                let command =
                    json!({"type": "set_priority", "priority": priority, "reason": "sim"});
                issue(node, agent(), ticket_id, command).await;
            }
            tickets.push(ticket_id);
        } else {
            let ticket_id = tickets[rng.below(tickets.len() as u64) as usize];
            let (actor, command) = match rng.below(12) {
                0..=2 => (
                    agent(),
                    json!({"type": "post_public_reply", "body": "update"}),
                ),
                3..=4 => (
                    integration(),
                    json!({"type": "post_customer_message", "body": "any news?"}),
                ),
                5 => (
                    agent(),
                    json!({"type": "transition_ticket", "transition": "start"}),
                ),
                6 => (
                    agent(),
                    json!({"type": "transition_ticket", "transition": "ask_customer"}),
                ),
                7 => (
                    agent(),
                    json!({"type": "transition_ticket", "transition": "resume"}),
                ),
                8 => (
                    agent(),
                    json!({"type": "set_priority", "priority": priorities[rng.below(4) as usize], "reason": "sim"}),
                ),
                9 => (
                    agent(),
                    json!({"type": "assign_agent", "agent": Uuid::from_u128(0xa9e7)}),
                ),
                10 => (
                    agent(),
                    json!({"type": "transition_ticket", "transition": "resolve"}),
                ),
                _ => (
                    agent(),
                    json!({"type": "transition_ticket", "transition": if rng.chance(1, 3) { "close" } else { "start" }}),
                ),
            };
            issue(node, actor, ticket_id, command).await;
        }
        settle(&mut driver).await;
        // A duplicate delivery: a second driver fires the same due work at once.
        if rng.chance(1, 15) {
            let mut twin = nodes[1 - leader]
                .driver(&policies)
                .with_round_work_max(round);
            twin.catch_up().await.unwrap();
            duplicates_fired += twin
                .fire()
                .await
                .iter()
                .filter(|fired| matches!(fired.issued, sla_scheduler::Issued::Appended { .. }))
                .count();
        }
    }
    let end = nodes[0].state.now();
    let records = tests::read_whole_log(&nodes[0].store).await.unwrap();
    let facts: Vec<Fact> = records
        .iter()
        .filter(|record| record.category == "ticket")
        .map(|record| {
            let metadata: Value = serde_json::from_str(&record.metadata).unwrap();
            let time = |value: &Value| value.as_str().and_then(|text| text.parse().ok());
            Fact {
                at: time(&metadata["at"]).unwrap(),
                ticket: record.stream_id.clone(),
                event_type: record.event_type.clone(),
                payload: serde_json::from_str(&record.payload).unwrap(),
                fired_due_at: time(&metadata["scheduler"]["due_at"]),
            }
        })
        .collect();
    let owed = oracle(&facts, end);
    let mut recorded: BTreeMap<(String, String, &'static str), Vec<Timestamp>> = BTreeMap::new();
    for fact in &facts {
        let kind = match fact.event_type.as_str() {
            "SlaWarningRaised" => "warning",
            "SlaBreached" => "breach",
            _ => continue,
        };
        let metric = fact.payload["metric"].as_str().unwrap().to_owned();
        let due = if kind == "breach" {
            fact.payload["due_at"].as_str().unwrap().parse().unwrap()
        } else {
            fact.fired_due_at.unwrap()
        };
        recorded
            .entry((fact.ticket.clone(), metric, kind))
            .or_default()
            .push(due);
    }
    let mut differences = Vec::new();
    let keys: std::collections::BTreeSet<_> = owed.keys().chain(recorded.keys()).cloned().collect();
    for key in keys {
        let (want, got) = (
            owed.get(&key).cloned().unwrap_or_default(),
            recorded.get(&key).cloned().unwrap_or_default(),
        );
        if want != got {
            differences.push(format!("{key:?}: oracle {want:?}, log {got:?}"));
        }
    }
    let total: usize = recorded.values().map(Vec::len).sum();
    crate::report(&format!(
        "sla_sim: {} tickets, {steps} steps, {total} warnings and breaches, {duplicates_fired} appended by a twin",
        tickets.len()
    ));
    if let Some(first) = differences.first() {
        // The trail of the first ticket that differs, for whoever replays the seed.
        let ticket = first.split('"').nth(1).unwrap_or_default();
        for fact in facts.iter().filter(|fact| fact.ticket == ticket) {
            crate::report(&format!("{} {} {}", fact.at, fact.event_type, fact.payload));
        }
    }
    assert!(
        differences.is_empty(),
        "seed {seed}:\n{}",
        differences.join("\n")
    );
    assert!(total > 0, "the run exercised no SLA event");
    assert_eq!(
        duplicates_fired, 0,
        "seed {seed}: a second driver found work the leader missed"
    );
    db.cleanup().await;
}

/// Folds what is new and fires what is due until nothing is left.
async fn issue(node: &Node, actor: Actor, ticket_id: TicketId, command: Value) {
    let command: Command = serde_json::from_value(command).unwrap();
    // Rejections (a transition not allowed from this state) are part of the game.
    let _ = api::command_as(&node.state, actor, ticket_id, &command, Uuid::now_v7()).await;
}
