//! A seeded, synthetic but realistic ticket history, for the determinism tests, the runner's
//! crash tests and the replay benchmark: tickets arrive over many channels, are routed to
//! teams and agents, get SLA clocks, replies, customer messages, waits, reopenings, CSAT and
//! closure, interleaved the way a busy help desk interleaves them.
//!
//! It builds events directly (not through `decide`) so that millions can be made quickly; every
//! sequence it emits is one the decider can produce with the shipped `general` blueprint.

use std::collections::BTreeMap;

use domain::{
    AgentAssigned, AgentId, BlueprintRef, BodyPii, Channel, CommentPii, CustomerId,
    CustomerMessageReceived, Event, EvidencePii, InternalNoteAdded, Priority,
    PriorityChangedByRule, PublicReplyPosted, ReopenCause, ReopenPii, SatisfactionRated,
    SlaApplied, SlaBreached, SlaTarget, SlaWarningRaised, StateCategory, TagsAdded, TeamAssigned,
    TeamId, TicketCreated, TicketCreatedPii, TicketId, TicketNumber, TicketReopened,
    TicketTransitioned,
};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

/// A small, fast, seeded generator (SplitMix64): enough for shuffling a synthetic history, and
/// it keeps the crate free of a random-number dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no answer");
        self.next_u64() % n
    }

    /// True with probability `percent / 100`.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        &items[index]
    }
}

/// The shape of a synthetic history.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub seed: u64,
    pub tickets: u64,
    pub agents: u64,
    pub teams: u64,
    /// Tickets being worked at the same time: how much the streams interleave.
    pub concurrent_tickets: usize,
    pub start: Timestamp,
    /// Mean time between two events of the whole desk.
    pub event_gap_seconds: i64,
}

impl SynthConfig {
    pub fn small(seed: u64, tickets: u64) -> SynthConfig {
        SynthConfig {
            seed,
            tickets,
            agents: 50,
            teams: 10,
            concurrent_tickets: 200,
            start: Timestamp::from_second(1_714_521_600).expect("2024-05-01 is a valid time"),
            event_gap_seconds: 30,
        }
    }
}

/// One event of the history, with its stream and its time.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthEvent {
    pub ticket_id: TicketId,
    pub at: Timestamp,
    pub event: Event,
}

impl SynthEvent {
    pub fn stream_id(&self) -> String {
        self.ticket_id.stream_id()
    }

    /// The metadata a writer records: the time the event happened.
    pub fn metadata_json(&self) -> String {
        format!(r#"{{"actor":"synth","at":"{}"}}"#, self.at)
    }
}

pub fn agent(index: u64) -> AgentId {
    AgentId(Uuid::from_u128(0xa9e0_0000_0000 + u128::from(index)))
}

pub fn team(index: u64) -> TeamId {
    TeamId(Uuid::from_u128(0x7ea0_0000_0000 + u128::from(index)))
}

pub fn customer(index: u64) -> CustomerId {
    CustomerId(Uuid::from_u128(0xc057_0000_0000 + u128::from(index)))
}

pub fn ticket(index: u64) -> TicketId {
    TicketId(Uuid::from_u128(0x71c4_0000_0000_0000 + u128::from(index)))
}

const SUBJECTS: &[&str] = &[
    "订单 12345 未发货",
    "无法支付 payment failed",
    "System down since this morning",
    "退款申请 refund request",
    "Cannot log in to my account",
    "发票开具问题",
    "Wrong item delivered",
    "系统崩溃了",
    "How do I change my address?",
    "会员积分没有到账",
];

const BODIES: &[&str] = &[
    "我已经等了一个星期了，请尽快处理。",
    "Could you please check the status of my order?",
    "支付的时候页面一直转圈，然后提示失败。",
    "We have forwarded this to the warehouse team.",
    "请提供订单号和付款截图。",
    "Thanks, that fixed it.",
    "问题还没有解决，请再看一下。",
    "The invoice has been sent to your email.",
];

const TAGS: &[&str] = &["shipping", "billing", "vip", "bug", "account", "退款"];
const CHANNELS: &[Channel] = &[
    Channel::Email,
    Channel::Email,
    Channel::Web,
    Channel::Chat,
    Channel::Chat,
    Channel::Phone,
    Channel::Social,
    Channel::App,
    Channel::Api,
];

/// The history as an iterator, in global order; it holds only the tickets being worked, so a
/// ten-million-event history streams in constant memory.
#[derive(Debug)]
pub struct History {
    config: SynthConfig,
    rng: Rng,
    now: Timestamp,
    created: u64,
    /// Each ticket being worked and the events it has still to emit.
    active: Vec<(TicketId, std::collections::VecDeque<Event>)>,
}

pub fn history(config: SynthConfig) -> History {
    History {
        rng: Rng::new(config.seed),
        now: config.start,
        created: 0,
        active: Vec::new(),
        config,
    }
}

impl Iterator for History {
    type Item = SynthEvent;

    fn next(&mut self) -> Option<SynthEvent> {
        while self.active.len() < self.config.concurrent_tickets
            && self.created < self.config.tickets
        {
            let index = self.created;
            self.created += 1;
            let events = self.lifecycle(index);
            self.active.push((ticket(index), events));
        }
        if self.active.is_empty() {
            return None;
        }
        // Tickets are mostly worked in arrival order: pick among the oldest ones more often,
        // which also keeps creation near the front so that new tickets keep arriving.
        let len = self.active.len() as u64;
        let slot = usize::try_from(self.rng.below(len).min(self.rng.below(len))).unwrap_or(0);
        let gap = i64::try_from(
            self.rng
                .below(u64::try_from(2 * self.config.event_gap_seconds.max(1)).unwrap_or(1)),
        )
        .unwrap_or(0);
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(gap))
            .unwrap_or(self.now);
        let (ticket_id, events) = &mut self.active[slot];
        let ticket_id = *ticket_id;
        let event = events.pop_front().expect("active tickets have events left");
        if events.is_empty() {
            self.active.swap_remove(slot);
        }
        Some(SynthEvent {
            ticket_id,
            at: self.now,
            event,
        })
    }
}

impl History {
    fn lifecycle(&mut self, index: u64) -> std::collections::VecDeque<Event> {
        let rng = &mut self.rng;
        let config = &self.config;
        let mut events = std::collections::VecDeque::new();
        let priority = *rng.pick(&[
            Priority::Low,
            Priority::Normal,
            Priority::Normal,
            Priority::Normal,
            Priority::High,
            Priority::Urgent,
        ]);
        let team_index = rng.below(config.teams.max(1));
        let agents_per_team = (config.agents / config.teams.max(1)).max(1);
        let agent_index = team_index * agents_per_team + rng.below(agents_per_team);
        let mut tags = vec![(*rng.pick(TAGS)).to_owned()];
        if rng.percent(20) {
            let extra = (*rng.pick(TAGS)).to_owned();
            if !tags.contains(&extra) {
                tags.push(extra);
            }
        }
        tags.sort();
        events.push_back(Event::TicketCreated(TicketCreated {
            ticket_id: ticket(index),
            number: TicketNumber(10_000 + index),
            channel: *rng.pick(CHANNELS),
            requester: customer(rng.below((config.tickets / 3).max(1))),
            ticket_type: "general".to_owned(),
            priority,
            tags,
            fields: BTreeMap::new(),
            blueprint: BlueprintRef {
                id: "general".to_owned(),
                version: 1,
            },
            state: "new".to_owned(),
            category: StateCategory::New,
            pii: TicketCreatedPii {
                subject: (*rng.pick(SUBJECTS)).to_owned(),
                description: (*rng.pick(BODIES)).to_owned(),
                requester_name: Some("李四".to_owned()),
                requester_email: Some("li.si@example.com".to_owned()),
            },
        }));
        events.push_back(Event::TeamAssigned(TeamAssigned {
            from: None,
            to: team(team_index),
            reason: Some("round robin".to_owned()),
        }));
        let created_at = self.now;
        let hours = match priority {
            Priority::Urgent => 1,
            Priority::High => 4,
            Priority::Normal => 24,
            Priority::Low => 48,
        };
        let first_response_due = created_at + SignedDuration::from_hours(hours);
        events.push_back(Event::SlaApplied(SlaApplied {
            policy_id: "standard".to_owned(),
            policy_version: 1,
            targets: vec![
                SlaTarget {
                    metric: "first_response".to_owned(),
                    due_at: first_response_due,
                },
                SlaTarget {
                    metric: "resolution".to_owned(),
                    due_at: created_at + SignedDuration::from_hours(hours * 5),
                },
            ],
            reason: format!("priority {priority}"),
        }));
        if rng.percent(8) {
            events.push_back(Event::SlaWarningRaised(SlaWarningRaised {
                policy_id: "standard".to_owned(),
                metric: "first_response".to_owned(),
                due_at: first_response_due,
                observed_at: first_response_due - SignedDuration::from_mins(10),
            }));
            if rng.percent(50) {
                events.push_back(Event::SlaBreached(SlaBreached {
                    policy_id: "standard".to_owned(),
                    metric: "first_response".to_owned(),
                    due_at: first_response_due,
                    observed_at: first_response_due,
                }));
            }
        }
        if rng.percent(10) {
            events.push_back(Event::PriorityChangedByRule(PriorityChangedByRule {
                from: priority,
                to: Priority::Urgent,
                rule_id: "keyword".to_owned(),
                pii: EvidencePii {
                    evidence: "系统崩溃".to_owned(),
                },
            }));
        }
        if rng.percent(85) {
            events.push_back(Event::AgentAssigned(AgentAssigned {
                from: None,
                to: agent(agent_index),
                reason: None,
                routing: None,
            }));
        } else {
            // Some tickets wait in their team's queue for the rest of the history.
            return events;
        }
        events.push_back(transition("start", ("new", StateCategory::New), OPEN));
        if rng.percent(30) {
            events.push_back(Event::InternalNoteAdded(InternalNoteAdded {
                mentions: vec![],
                pii: BodyPii {
                    body: "需要仓库确认 check with the warehouse".to_owned(),
                },
            }));
        }
        if rng.percent(10) {
            return events;
        }
        events.push_back(reply(rng));
        let rounds = if rng.percent(40) { 1 + rng.below(2) } else { 0 };
        for _ in 0..rounds {
            events.push_back(transition("ask_customer", OPEN, PENDING));
            events.push_back(Event::CustomerMessageReceived(CustomerMessageReceived {
                attachments: vec![],
                pii: BodyPii {
                    body: (*rng.pick(BODIES)).to_owned(),
                },
            }));
            events.push_back(reopen(ReopenCause::CustomerMessage, PENDING));
            events.push_back(reply(rng));
        }
        if rng.percent(10) {
            return events;
        }
        events.push_back(transition("resolve", OPEN, SOLVED));
        if rng.percent(8) {
            events.push_back(reopen(ReopenCause::Requested, SOLVED));
            events.push_back(reply(rng));
            events.push_back(transition("resolve", OPEN, SOLVED));
        }
        if rng.percent(50) {
            let score = *rng.pick(&[1, 2, 3, 4, 4, 5, 5, 5]);
            let resolution = events
                .iter()
                .filter(|event| {
                    matches!(event, Event::TicketTransitioned(t) if t.to_category == StateCategory::Solved)
                })
                .count();
            events.push_back(Event::SatisfactionRated(SatisfactionRated {
                score,
                resolution: u32::try_from(resolution).unwrap_or(1),
                pii: CommentPii { comment: None },
            }));
        }
        if rng.percent(60) {
            events.push_back(transition(
                "close",
                SOLVED,
                ("closed", StateCategory::Closed),
            ));
        }
        if rng.percent(5) {
            events.push_back(Event::TagsAdded(TagsAdded {
                tags: vec!["followed_up".to_owned()],
            }));
        }
        events
    }
}

const OPEN: (&str, StateCategory) = ("in_progress", StateCategory::Open);
const PENDING: (&str, StateCategory) = ("waiting_on_customer", StateCategory::Pending);
const SOLVED: (&str, StateCategory) = ("resolved", StateCategory::Solved);

fn transition(name: &str, from: (&str, StateCategory), to: (&str, StateCategory)) -> Event {
    Event::TicketTransitioned(TicketTransitioned {
        transition: name.to_owned(),
        from: from.0.to_owned(),
        from_category: from.1,
        to: to.0.to_owned(),
        to_category: to.1,
    })
}

fn reopen(cause: ReopenCause, from: (&str, StateCategory)) -> Event {
    Event::TicketReopened(TicketReopened {
        cause,
        from: from.0.to_owned(),
        from_category: from.1,
        to: OPEN.0.to_owned(),
        to_category: OPEN.1,
        pii: ReopenPii { reason: None },
    })
}

fn reply(rng: &mut Rng) -> Event {
    Event::PublicReplyPosted(PublicReplyPosted {
        attachments: vec![],
        pii: BodyPii {
            body: (*rng.pick(BODIES)).to_owned(),
        },
    })
}

/// Turns synthetic events into records as the log would return them (positions from 1, stream
/// versions per stream, recorded at the event time), for tests that fold without a database.
pub fn records(events: impl IntoIterator<Item = SynthEvent>) -> Vec<store::Record> {
    let mut versions: std::collections::HashMap<TicketId, u64> = std::collections::HashMap::new();
    events
        .into_iter()
        .enumerate()
        .map(|(index, synth)| {
            let version = versions.entry(synth.ticket_id).or_insert(0);
            *version += 1;
            record(index as u64 + 1, *version, &synth)
        })
        .collect()
}

/// One record as the log would return it.
pub fn record(position: u64, stream_version: u64, synth: &SynthEvent) -> store::Record {
    store::Record {
        position,
        stream_id: synth.stream_id(),
        category: "ticket".to_owned(),
        stream_version,
        event_id: Uuid::from_u128(u128::from(position)),
        event_type: synth.event.event_type().to_owned(),
        schema_version: synth.event.schema_version(),
        payload: synth.event.to_payload_json(),
        metadata: synth.metadata_json(),
        command_id: Uuid::from_u128(u128::from(position)),
        recorded_at: synth.at,
        stream_hash: [0; 32],
        global_hash: [0; 32],
    }
}

/// Appends a history to a store the way many concurrent clients would: each chunk's events are
/// grouped per stream (keeping each stream's order) and appended concurrently, so the writer
/// commits them in a few group commits. Returns the log's head afterwards.
pub async fn append_all(
    store: &store::Store,
    events: impl IntoIterator<Item = SynthEvent>,
    chunk_events: usize,
) -> Result<u64, store::AppendError> {
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let mut streams: Vec<(TicketId, Vec<store::NewEvent>)> = Vec::new();
        for synth in events.by_ref().take(chunk_events.max(1)) {
            let new_event = store::NewEvent {
                event_id: Uuid::now_v7(),
                event_type: synth.event.event_type().to_owned(),
                schema_version: synth.event.schema_version(),
                payload: serde_json::value::RawValue::from_string(synth.event.to_payload_json())
                    .expect("event payloads are JSON"),
                metadata: serde_json::value::RawValue::from_string(synth.metadata_json())
                    .expect("synthetic metadata is JSON"),
            };
            match streams.iter_mut().find(|(id, _)| *id == synth.ticket_id) {
                Some((_, stream)) if stream.len() < store::APPEND_EVENTS_MAX => {
                    stream.push(new_event)
                }
                _ => streams.push((synth.ticket_id, vec![new_event])),
            }
        }
        // Two appends to one stream in a chunk (only past APPEND_EVENTS_MAX) must stay ordered,
        // so each stream's appends run in one task, one after the other.
        let mut tasks = tokio::task::JoinSet::new();
        let mut by_stream: Vec<(TicketId, Vec<Vec<store::NewEvent>>)> = Vec::new();
        for (id, batch) in streams {
            match by_stream.iter_mut().find(|(other, _)| *other == id) {
                Some((_, batches)) => batches.push(batch),
                None => by_stream.push((id, vec![batch])),
            }
        }
        for (id, batches) in by_stream {
            let store = store.clone();
            tasks.spawn(async move {
                let stream =
                    store::StreamId::new(id.stream_id()).expect("ticket stream ids are valid");
                for batch in batches {
                    store
                        .append(&stream, store::ExpectedVersion::Any, batch, Uuid::now_v7())
                        .await?;
                }
                Ok::<(), store::AppendError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("append tasks do not panic")?;
        }
    }
    Ok(store.head().await.map_err(store::AppendError::from)?.0)
}
