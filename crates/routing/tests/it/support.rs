//! A log without a database for the engine tests: numbered agents, teams, customers and
//! tickets (short names in snapshots: a3, team1, t7), records with positions and stream
//! versions as the store gives them, and `route` that plays the process manager: it plans,
//! turns each action into the events the domain decides, and folds them back.

use std::collections::{BTreeMap, HashMap};

use domain::{
    Actor, ActorId, AgentEvent, AgentId, AgentPii, AgentPresenceChanged, AgentProfileUpdated,
    AgentRegistered, AssignAgent, BlueprintCatalog, BlueprintRef, ChangePriorityByRule, Channel,
    Command, CommandContext, CustomerId, Event, FlagCustomerUpset, Presence, Priority, Role,
    StateCategory, TeamAssigned, TeamId, Ticket, TicketCreated, TicketCreatedPii, TicketId,
    TicketNumber, TicketTransitioned, UnassignAgent,
};
use jiff::{SignedDuration, Timestamp};
use routing::{Action, Engine, RoutingConfig};
use store::Record;
use uuid::Uuid;

pub fn agent(n: u64) -> AgentId {
    AgentId(Uuid::from_u128(0xa9e0_0000_0000 + u128::from(n)))
}
pub fn team(n: u64) -> TeamId {
    TeamId(Uuid::from_u128(0x7ea0_0000_0000 + u128::from(n)))
}
pub fn customer(n: u64) -> CustomerId {
    CustomerId(Uuid::from_u128(0xc057_0000_0000 + u128::from(n)))
}
pub fn ticket(n: u64) -> TicketId {
    TicketId(Uuid::from_u128(0x71c4_0000_0000_0000 + u128::from(n)))
}

/// `a3`, `team1`, `t7`, `c2` for the numbered ids.
pub fn short(uuid: Uuid) -> String {
    let value = uuid.as_u128();
    for (prefix, base) in [
        ("t", ticket(0).0.as_u128()),
        ("team", team(0).0.as_u128()),
        ("a", agent(0).0.as_u128()),
        ("c", customer(0).0.as_u128()),
    ] {
        if let Some(offset) = value.checked_sub(base).filter(|offset| *offset < 1_000_000) {
            return format!("{prefix}{offset}");
        }
    }
    uuid.to_string()
}

/// Replaces every numbered uuid in a text by its short name.
pub fn shorten(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        let candidate = rest
            .get(start..start + 36)
            .and_then(|s| Uuid::parse_str(s).ok());
        match candidate {
            Some(uuid) => {
                out.push_str(&rest[..start]);
                out.push_str(&short(uuid));
                rest = &rest[start + 36..];
            }
            None => {
                let next = start + rest[start..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..next]);
                rest = &rest[next..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn start() -> Timestamp {
    Timestamp::from_second(1_714_953_600).unwrap()
}

pub struct Sim {
    pub records: Vec<Record>,
    pub engine: Engine,
    versions: HashMap<String, u64>,
    tickets: BTreeMap<TicketId, Ticket>,
    catalog: BlueprintCatalog,
    /// Log lines of what routing did, for snapshots.
    pub trail: Vec<String>,
}

impl Sim {
    pub fn new(config: RoutingConfig) -> Sim {
        Sim {
            records: vec![],
            engine: Engine::new(config),
            versions: HashMap::new(),
            tickets: BTreeMap::new(),
            catalog: BlueprintCatalog::builtin(),
            trail: vec![],
        }
    }

    pub fn push(&mut self, stream: String, event_type: &str, payload: String) -> &mut Sim {
        self.push_version(stream, event_type, 1, payload)
    }

    pub fn push_version(
        &mut self,
        stream: String,
        event_type: &str,
        schema_version: u32,
        payload: String,
    ) -> &mut Sim {
        let position = self.records.len() as u64 + 1;
        let version = self.versions.entry(stream.clone()).or_insert(0);
        *version += 1;
        let at = start() + SignedDuration::from_mins(position as i64);
        let record = Record {
            position,
            category: stream.split('-').next().unwrap().to_owned(),
            stream_id: stream,
            stream_version: *version,
            event_id: Uuid::from_u128(0xe000_0000 + u128::from(position)),
            event_type: event_type.to_owned(),
            schema_version,
            payload,
            metadata: format!(r#"{{"at":"{at}"}}"#),
            command_id: Uuid::from_u128(u128::from(position)),
            recorded_at: at,
            stream_hash: [0; 32],
            global_hash: [0; 32],
        };
        self.engine.apply(&record);
        self.records.push(record);
        self
    }

    fn agent_event(&mut self, n: u64, event: AgentEvent) -> &mut Sim {
        let payload = event.to_payload().to_string();
        self.push(format!("agent-{}", agent(n)), event.event_type(), payload)
    }

    pub fn team(&mut self, n: u64, name: &str) -> &mut Sim {
        let payload = serde_json::json!({"team_id": team(n), "name": name}).to_string();
        self.push(format!("team-{}", team(n)), "TeamCreated", payload)
    }

    pub fn customer(&mut self, n: u64, tier: &str) -> &mut Sim {
        let payload =
            serde_json::json!({"customer_id": customer(n), "tier": tier, "pii": {"name": "x"}})
                .to_string();
        self.push(
            format!("customer-{}", customer(n)),
            "CustomerRegistered",
            payload,
        )
    }

    /// An online agent in `teams` with a capacity, skills and languages.
    pub fn agent(
        &mut self,
        n: u64,
        teams: &[u64],
        capacity: u32,
        skills: &[&str],
        languages: &[&str],
    ) -> &mut Sim {
        let teams: Vec<TeamId> = teams.iter().map(|t| team(*t)).collect();
        self.agent_event(
            n,
            AgentEvent::AgentRegistered(AgentRegistered {
                agent_id: agent(n),
                teams: teams.clone(),
                pii: AgentPii {
                    name: format!("agent {n}"),
                    email: None,
                },
            }),
        );
        self.agent_event(
            n,
            AgentEvent::AgentProfileUpdated(AgentProfileUpdated {
                teams,
                skills: skills.iter().map(|s| (*s).to_owned()).collect(),
                languages: languages.iter().map(|s| (*s).to_owned()).collect(),
                capacity,
                weighted: false,
            }),
        );
        self.presence(n, Presence::Online)
    }

    /// Makes agent `n`'s capacity count priority weights (low 1, normal 2, high 3, urgent 5).
    pub fn weighted(&mut self, n: u64, teams: &[u64], capacity: u32) -> &mut Sim {
        self.agent_event(
            n,
            AgentEvent::AgentProfileUpdated(AgentProfileUpdated {
                teams: teams.iter().map(|t| team(*t)).collect(),
                skills: Vec::new(),
                languages: Vec::new(),
                capacity,
                weighted: true,
            }),
        )
    }

    pub fn presence(&mut self, n: u64, to: Presence) -> &mut Sim {
        self.agent_event(
            n,
            AgentEvent::AgentPresenceChanged(AgentPresenceChanged {
                from: Presence::Offline,
                to,
                reason: None,
            }),
        )
    }

    pub fn ticket_event(&mut self, n: u64, event: Event) -> &mut Sim {
        let ticket_id = ticket(n);
        let state = self.tickets.remove(&ticket_id).unwrap_or_default();
        let state = domain::evolve(state, &event);
        self.tickets.insert(ticket_id, state);
        self.push_version(
            ticket_id.stream_id(),
            event.event_type(),
            event.schema_version(),
            event.to_payload_json(),
        )
    }

    /// A new ticket from customer `c`, in `team`, with a text and a type and tags.
    #[allow(
        clippy::too_many_arguments,
        reason = "a test fixture names every field"
    )]
    pub fn ticket(
        &mut self,
        n: u64,
        team_n: u64,
        c: u64,
        priority: Priority,
        ticket_type: &str,
        tags: &[&str],
        text: &str,
    ) -> &mut Sim {
        self.ticket_event(
            n,
            Event::TicketCreated(TicketCreated {
                ticket_id: ticket(n),
                number: TicketNumber(n),
                channel: Channel::Web,
                requester: customer(c),
                ticket_type: ticket_type.to_owned(),
                priority,
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                fields: BTreeMap::new(),
                blueprint: BlueprintRef {
                    id: "general".to_owned(),
                    version: 1,
                },
                state: "new".to_owned(),
                category: StateCategory::New,
                pii: TicketCreatedPii {
                    subject: text.to_owned(),
                    description: String::new(),
                    requester_name: None,
                    requester_email: None,
                },
            }),
        );
        self.ticket_event(
            n,
            Event::TeamAssigned(TeamAssigned {
                from: None,
                to: team(team_n),
                reason: Some("test".to_owned()),
            }),
        )
    }

    /// A plain ticket: normal priority, type `question`, no tags, English text.
    pub fn plain(&mut self, n: u64, team_n: u64) -> &mut Sim {
        self.ticket(
            n,
            team_n,
            0,
            Priority::Normal,
            "question",
            &[],
            "Where is my order?",
        )
    }

    pub fn solve(&mut self, n: u64) -> &mut Sim {
        self.ticket_event(
            n,
            Event::TicketTransitioned(TicketTransitioned {
                transition: "solve".to_owned(),
                from: "open".to_owned(),
                from_category: StateCategory::Open,
                to: "solved".to_owned(),
                to_category: StateCategory::Solved,
            }),
        )
    }

    /// Plans and carries out the plan through the domain's decider, as the manager does, and
    /// repeats until there is nothing to do. Returns the trail lines added.
    pub fn route(&mut self) -> Vec<String> {
        let before = self.trail.len();
        for _ in 0..100 {
            let actions = self.engine.plan();
            if actions.is_empty() {
                break;
            }
            for action in actions {
                let (ticket_id, version, commands) = match &action {
                    Action::Assign(assignment) => (
                        assignment.ticket,
                        assignment.version,
                        vec![Command::AssignAgent(AssignAgent {
                            agent: assignment.agent,
                            reason: Some(assignment.reason.clone()),
                            routing: Some(assignment.record.clone()),
                        })],
                    ),
                    Action::HandBack {
                        ticket,
                        version,
                        agent,
                        presence,
                    } => (
                        *ticket,
                        *version,
                        vec![Command::UnassignAgent(UnassignAgent {
                            reason: Some(format!("{} is {presence}", short(agent.0))),
                        })],
                    ),
                    Action::Prioritize {
                        ticket,
                        version,
                        proposal,
                    } => {
                        let mut commands = vec![];
                        if let Some((priority, rule_id, evidence)) = &proposal.priority {
                            commands.push(Command::ChangePriorityByRule(ChangePriorityByRule {
                                priority: *priority,
                                rule_id: rule_id.clone(),
                                evidence: evidence.clone(),
                            }));
                        }
                        if let Some((rule_id, evidence)) = &proposal.upset {
                            commands.push(Command::FlagCustomerUpset(FlagCustomerUpset {
                                rule_id: rule_id.clone(),
                                evidence: evidence.clone(),
                            }));
                        }
                        (*ticket, *version, commands)
                    }
                };
                let n = (ticket_id.0.as_u128() - ticket(0).0.as_u128()) as u64;
                let current = self.tickets.get(&ticket_id).map_or(0, |t| t.version);
                if current != version {
                    self.trail.push(format!("t{n}: conflict at v{version}"));
                    continue;
                }
                for command in commands {
                    let ticket_state = self.tickets.get(&ticket_id).cloned().unwrap_or_default();
                    let context = CommandContext::new(
                        start(),
                        Uuid::nil(),
                        Actor {
                            id: ActorId(Uuid::nil()),
                            role: Role::System,
                        },
                        &self.catalog,
                    );
                    let events = domain::decide(&command, &ticket_state, &context)
                        .unwrap_or_else(|rejection| panic!("{command:?}: {rejection}"));
                    for event in events {
                        self.trail.push(describe(n, &event));
                        self.ticket_event(n, event);
                    }
                }
            }
        }
        self.trail[before..].to_vec()
    }

    /// Tickets assigned per agent by routing so far.
    pub fn routed_counts(&self) -> BTreeMap<AgentId, u32> {
        let mut counts = BTreeMap::new();
        for record in &self.records {
            if record.event_type != "AgentAssigned" {
                continue;
            }
            if let Ok(Event::AgentAssigned(assigned)) =
                Event::from_stored(&record.event_type, record.schema_version, &record.payload)
            {
                if assigned.routing.is_some() {
                    *counts.entry(assigned.to).or_insert(0) += 1;
                }
            }
        }
        counts
    }
}

fn describe(n: u64, event: &Event) -> String {
    match event {
        Event::AgentAssigned(assigned) => {
            let routing = assigned.routing.as_ref().unwrap();
            let skipped: Vec<String> = routing
                .skipped
                .iter()
                .map(|skipped| {
                    shorten(&format!(
                        "{}:{}",
                        skipped.agent,
                        serde_json::to_value(&skipped.reason).unwrap()["why"]
                            .as_str()
                            .unwrap()
                    ))
                })
                .collect();
            format!(
                "t{n} -> {} ({}; skills {:?} lang {:?} vip {}; {} considered, {} candidates; skipped [{}])",
                short(assigned.to.0),
                routing.strategy.as_str(),
                routing.required_skills,
                routing.language,
                routing.vip_group,
                routing.considered,
                routing.candidates,
                skipped.join(" "),
            )
        }
        Event::AgentUnassigned(unassigned) => format!(
            "t{n} unassigned from {}: {}",
            short(unassigned.agent.0),
            unassigned.reason.as_deref().unwrap_or("")
        ),
        Event::PriorityChangedByRule(changed) => format!(
            "t{n} priority {} -> {} by {}: {}",
            changed.from, changed.to, changed.rule_id, changed.pii.evidence
        ),
        Event::CustomerUpsetFlagged(flagged) => {
            format!("t{n} customer upset: {}", flagged.pii.evidence)
        }
        other => format!("t{n} {}", other.event_type()),
    }
}
