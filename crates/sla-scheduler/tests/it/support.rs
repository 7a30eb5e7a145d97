//! A world for engine tests without a store: tickets decided by the real decider, an SLA source
//! fed every event, and a manual clock in minutes that fires due work at the instant it is due,
//! as the driver would, recording what the scheduler appended.

use std::collections::HashMap;
use std::sync::Arc;

use domain::{
    decide, evolve, Actor, ActorId, AgentId, BlueprintCatalog, Command, CommandContext, CustomerId,
    Event, Role, TeamId, Ticket, TicketId,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use sla_scheduler::{Policies, SlaConfig, SlaSource, TimerSource};
use uuid::Uuid;

pub const ANN: AgentId = AgentId(Uuid::from_u128(0xa001));
pub const BOSS: AgentId = AgentId(Uuid::from_u128(0xb055));
pub const ESCALATION: TeamId = TeamId(Uuid::from_u128(0xe5c));

/// Monday 2 November 2026, 00:00 UTC: minute 0 of every test.
pub fn start() -> Timestamp {
    "2026-11-02T00:00:00Z".parse().unwrap()
}

pub fn minute(n: i64) -> Timestamp {
    start() + SignedDuration::from_mins(n)
}

pub fn minutes_of(at: Timestamp) -> i64 {
    at.duration_since(start()).as_secs().div_euclid(60)
}

pub fn policies(text: &str) -> Arc<Policies> {
    let config: SlaConfig = toml::from_str(text).unwrap();
    Arc::new(Policies::compile(&config).unwrap())
}

pub fn ticket_id(n: u128) -> TicketId {
    TicketId(Uuid::from_u128(0x7000 + n))
}

pub fn customer_id(n: u128) -> CustomerId {
    CustomerId(Uuid::from_u128(0xc000 + n))
}

pub fn agent() -> Actor {
    Actor {
        id: ActorId(ANN.0),
        role: Role::Agent,
    }
}

pub fn customer(n: u128) -> Actor {
    Actor {
        id: ActorId(customer_id(n).0),
        role: Role::Customer,
    }
}

fn system() -> Actor {
    Actor {
        id: ActorId(Uuid::nil()),
        role: Role::System,
    }
}

pub struct World {
    pub now: Timestamp,
    pub source: SlaSource,
    pub tickets: HashMap<TicketId, Ticket>,
    catalog: BlueprintCatalog,
    /// What the scheduler appended, one line each.
    pub lines: Vec<String>,
    commands: u128,
}

impl World {
    pub fn new(policies: Arc<Policies>) -> World {
        World {
            now: start(),
            source: SlaSource::new(policies),
            tickets: HashMap::new(),
            catalog: BlueprintCatalog::builtin(),
            lines: Vec::new(),
            commands: 0,
        }
    }

    fn decide(&mut self, ticket_id: TicketId, actor: Actor, command: &Command) -> Vec<Event> {
        self.commands += 1;
        let ticket = self.tickets.remove(&ticket_id).unwrap_or_default();
        let ctx = CommandContext::new(
            self.now,
            Uuid::from_u128(self.commands),
            actor,
            &self.catalog,
        );
        let events = match decide(command, &ticket, &ctx) {
            Ok(events) => events,
            Err(rejection) => {
                if actor.role == Role::System {
                    self.lines.push(format!(
                        "m{:05} rejected {}: {rejection}",
                        minutes_of(self.now),
                        command.name()
                    ));
                }
                Vec::new()
            }
        };
        let ticket = events.iter().fold(ticket, evolve);
        self.tickets.insert(ticket_id, ticket);
        for event in &events {
            self.source.observe_event(ticket_id, event, self.now);
        }
        events
    }

    /// An actor issues a command (JSON, as the API takes it) at the current minute.
    pub fn act(&mut self, ticket: u128, actor: Actor, command: Value) -> &mut World {
        let command: Command = serde_json::from_value(command).unwrap();
        self.decide(ticket_id(ticket), actor, &command);
        self
    }

    pub fn create(&mut self, ticket: u128, customer: u128, priority: &str) -> &mut World {
        let command = json!({
            "type": "create_ticket", "ticket_id": ticket_id(ticket), "number": 100 + ticket,
            "channel": "email", "requester": {"id": customer_id(customer)},
            "subject": "s", "description": "d", "ticket_type": "question", "priority": priority,
        });
        self.act(ticket, customer_actor(customer), command)
    }

    pub fn reply(&mut self, ticket: u128) -> &mut World {
        self.act(
            ticket,
            agent(),
            json!({"type": "post_public_reply", "body": "on it"}),
        )
    }

    pub fn message(&mut self, ticket: u128, customer: u128) -> &mut World {
        self.act(
            ticket,
            customer_actor(customer),
            json!({"type": "post_customer_message", "body": "and?"}),
        )
    }

    pub fn transition(&mut self, ticket: u128, transition: &str) -> &mut World {
        self.act(
            ticket,
            agent(),
            json!({"type": "transition_ticket", "transition": transition}),
        )
    }

    pub fn priority(&mut self, ticket: u128, priority: &str) -> &mut World {
        self.act(
            ticket,
            agent(),
            json!({"type": "set_priority", "priority": priority, "reason": "customer called"}),
        )
    }

    /// Advances the clock to `minute`, firing every due item at the instant it is due.
    pub fn at(&mut self, minute_n: i64) -> &mut World {
        let target = minute(minute_n);
        loop {
            match self.source.next_deadline() {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    let work = self.source.fire_due(self.now, 1000);
                    for item in work {
                        let events = self.decide(item.ticket, system(), &item.command);
                        for event in &events {
                            self.lines.push(format!(
                                "m{:05} t{} {}",
                                minutes_of(self.now),
                                item.ticket.0.as_u128() - 0x7000,
                                describe(event)
                            ));
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = target;
        self
    }

    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.lines).join("\n")
    }
}

fn customer_actor(n: u128) -> Actor {
    customer(n)
}

/// One line per event, times in minutes since the start.
pub fn describe(event: &Event) -> String {
    let m = minutes_of;
    match event {
        Event::SlaApplied(applied) => format!(
            "SlaApplied {} [{}] ({})",
            applied.policy_id,
            applied
                .targets
                .iter()
                .map(|target| format!("{}@{}", target.metric, m(target.due_at)))
                .collect::<Vec<_>>()
                .join(" "),
            applied.reason
        ),
        Event::SlaRecomputed(recomputed) => format!(
            "SlaRecomputed {} {} {:?} {}->{} elapsed={}m ({})",
            recomputed.policy_id,
            recomputed.metric,
            recomputed.cause,
            recomputed
                .from_due_at
                .map_or("-".to_owned(), |due| m(due).to_string()),
            m(recomputed.to_due_at),
            recomputed.elapsed_business_seconds / 60,
            recomputed.reason
        ),
        Event::SlaWarningRaised(warning) => format!(
            "SlaWarningRaised {} {} due={}",
            warning.policy_id,
            warning.metric,
            m(warning.due_at)
        ),
        Event::SlaBreached(breach) => format!(
            "SlaBreached {} {} due={} observed={}",
            breach.policy_id,
            breach.metric,
            m(breach.due_at),
            m(breach.observed_at)
        ),
        Event::PriorityChangedByRule(changed) => format!(
            "PriorityChangedByRule {}->{} rule={}",
            changed.from, changed.to, changed.rule_id
        ),
        Event::TeamAssigned(assigned) => format!(
            "TeamAssigned {} ({})",
            assigned.to,
            assigned.reason.as_deref().unwrap_or("")
        ),
        Event::CollaboratorAdded(added) => format!(
            "CollaboratorAdded {} ({})",
            added.agent,
            added.reason.as_deref().unwrap_or("")
        ),
        Event::Escalated(escalated) => format!(
            "Escalated {}->{} rule={} notify={}",
            escalated.from_level,
            escalated.to_level,
            escalated.rule_id.as_deref().unwrap_or(""),
            escalated.notify.len()
        ),
        other => other.event_type().to_owned(),
    }
}
