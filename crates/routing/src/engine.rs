//! The routing model: a pure fold over the log and the decisions taken on it.
//!
//! `Engine::apply(&Record)` folds agents (presence, skills, languages, capacity, teams),
//! teams (names, for the configuration), customers (tiers) and tickets (team, assignee,
//! priority, state, SLA clocks, type, tags, language). From that, `next_assignment(team)`
//! takes the team's queue in order (priority, SLA due, age, id, as the queues view orders it)
//! and picks an agent for the first ticket one can take, by the team's strategy; `plan` lists
//! everything the process manager should do now (hand-backs, priority rules, assignments).
//!
//! Everything the strategies need is derived from events, never from memory of this process:
//! the round-robin pointer is the agent of the team's last routed round-robin assignment,
//! "longest since last assignment" is the log position of each agent's last assignment. So a
//! restarted node, or a second node, folds the same log into the same decisions.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use domain::{
    AgentEvent, AgentId, Channel, CustomerId, Event, Presence, Priority, RoutingRecord,
    RoutingStrategy, SkipReason, SkippedAgent, StateCategory, TeamId, TicketId,
    ROUTING_SKIPPED_MAX,
};
use projections::queues::QueueKey;
use projections::sla::TicketClocks;
use projections::TicketEvent;
use store::Record;
use uuid::Uuid;

use crate::config::{RoutingConfig, TeamConfig};
use crate::priority::{PriorityRules, Proposal, TicketFacts};

/// Queued tickets of one team looked at per decision before giving up: when the head of the
/// queue needs a skill no free agent has, the tickets behind it still get routed, but a queue
/// of a hundred thousand tickets nobody can take is not scanned to its end every time.
pub const QUEUE_SCAN_MAX: usize = 64;
/// Queued tickets of one team passed over per decision because a ticket before them with the
/// same needs (priority, skills, language, VIP group) already found no agent. They do not count
/// toward `QUEUE_SCAN_MAX` (a blocked head longer than that must not stall the tickets behind
/// it), but passing over them is not free either, so a decision gives up after this many.
pub const QUEUE_PASS_MAX: usize = 100_000;
/// Actions one `plan` returns; the rest come in the next round.
pub const PLAN_ACTIONS_MAX: usize = 1_000;

/// How much one ticket weighs against a weighted capacity.
pub fn priority_weight(priority: Priority) -> u32 {
    projections::agents::priority_weight(priority)
}

/// What every decision reads of every member, kept apart from the rest (`AgentDetail`) so
/// that a scan over a thousand members reads a few cache lines, not a few hundred.
#[derive(Clone, Debug)]
struct AgentSlot {
    id: AgentId,
    /// Log position of the last assignment to this agent (0: never).
    last_assigned: u64,
    capacity: u32,
    /// Owned tickets in a `new` or `open` category.
    open: u32,
    /// Their summed priority weights.
    open_weight: u32,
    presence: Presence,
    weighted: bool,
}

/// What a queued ticket asks of the agent who takes it. Two tickets with equal needs find an
/// agent or not alike, which lets one scan of the queue pass over repeats of a blocked head.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Needs {
    /// Weighted capacity counts it.
    priority: Priority,
    /// Sorted, without repeats.
    required: Vec<String>,
    /// Only when someone in the team reads it.
    language: Option<&'static str>,
    vip_group: Option<TeamId>,
}

/// What only some decisions read of an agent.
#[derive(Clone, Debug, Default)]
struct AgentDetail {
    teams: Vec<TeamId>,
    skills: Vec<String>,
    languages: Vec<String>,
    /// Owned tickets not solved or closed, for hand-backs.
    owned: BTreeSet<TicketId>,
}

impl AgentSlot {
    fn load(&self) -> u32 {
        if self.weighted {
            self.open_weight
        } else {
            self.open
        }
    }

    fn units(&self, priority: Priority) -> u32 {
        if self.weighted {
            priority_weight(priority)
        } else {
            1
        }
    }

    /// Whether the agent could take some ticket: online with spare capacity.
    fn open_for_work(&self) -> bool {
        self.presence == Presence::Online && self.load() < self.capacity
    }
}

/// `(spare capacity, reversed, last assigned, agent, slot index)`.
type RankKey = (std::cmp::Reverse<u32>, u64, AgentId, u32);

/// A team's routing settings, resolved from the configuration.
#[derive(Clone, Debug, Default)]
struct TeamSlot {
    name: Option<String>,
    config: Arc<TeamConfig>,
    /// Agent slots, in agent id order.
    members: Vec<u32>,
    queue: BTreeSet<QueueKey>,
    /// Online members, most spare capacity first, then the oldest last assignment, then id:
    /// least loaded's order, kept up to date so that a plain decision reads the first entries
    /// instead of every member.
    ranking: BTreeSet<RankKey>,
    /// The agent of the last round-robin assignment routed in this team.
    round_robin_last: Option<AgentId>,
}

#[derive(Clone, Debug)]
struct TicketSlot {
    version: u64,
    team: Option<TeamId>,
    assignee: Option<AgentId>,
    priority: Priority,
    clocks: TicketClocks,
    created_micros: i64,
    requester: CustomerId,
    channel: Channel,
    ticket_type: String,
    tags: Vec<String>,
    language: Option<&'static str>,
    upset: bool,
}

impl TicketSlot {
    fn category(&self) -> Option<StateCategory> {
        self.clocks.category
    }

    fn queue_key(&self, id: TicketId) -> Option<(TeamId, QueueKey)> {
        if !matches!(self.category()?, StateCategory::New | StateCategory::Open) {
            return None;
        }
        if self.assignee.is_some() {
            return None;
        }
        let team = self.team?;
        Some((
            team,
            QueueKey {
                priority_rank: match self.priority {
                    Priority::Urgent => 0,
                    Priority::High => 1,
                    Priority::Normal => 2,
                    Priority::Low => 3,
                },
                due_micros: self
                    .clocks
                    .next_due()
                    .map_or(i64::MAX, |due| due.as_microsecond()),
                created_micros: self.created_micros,
                ticket_id: id,
            },
        ))
    }

    /// `(agent, weight)` this ticket counts against, when it is open work of an agent.
    fn open_load(&self) -> Option<(AgentId, Priority)> {
        let agent = self.assignee?;
        matches!(self.category()?, StateCategory::New | StateCategory::Open)
            .then_some((agent, self.priority))
    }

    fn owner(&self) -> Option<AgentId> {
        let agent = self.assignee?;
        matches!(
            self.category()?,
            StateCategory::New | StateCategory::Open | StateCategory::Pending
        )
        .then_some(agent)
    }
}

/// What reading a ranking found: the chosen slot, members read, those skipped.
#[derive(Debug, Default)]
struct Ranked {
    chosen: Option<u32>,
    considered: u32,
    skipped: Vec<SkippedAgent>,
    skipped_total: u32,
}

fn grouped_chosen(chosen: Option<(u32, bool)>) -> bool {
    chosen.is_some_and(|(_, grouped)| grouped)
}

/// A routing decision: give `ticket` (at stream `version`) to `agent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub ticket: TicketId,
    pub version: u64,
    pub agent: AgentId,
    pub record: RoutingRecord,
    /// One line for people: the strategy and how many were candidates.
    pub reason: String,
}

/// Something the process manager should do, decided on the ticket's `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// An agent's presence hands this ticket back to their team's routing.
    HandBack {
        ticket: TicketId,
        version: u64,
        agent: AgentId,
        presence: Presence,
    },
    /// A priority rule or the sentiment rule matched.
    Prioritize {
        ticket: TicketId,
        version: u64,
        proposal: Proposal,
    },
    Assign(Assignment),
}

/// What `assume` changed, so that `forget` can restore it exactly.
#[derive(Debug)]
struct Undo {
    ticket: TicketId,
    team: TeamId,
    agent: AgentId,
    last_assigned: u64,
    round_robin_last: Option<AgentId>,
}

/// The routing model.
#[derive(Debug)]
pub struct Engine {
    config: RoutingConfig,
    rules: PriorityRules,
    position: u64,
    /// The id of the last record folded: what decisions taken now are caused by.
    last_event_id: Uuid,
    agents: Vec<AgentSlot>,
    /// Indexed like `agents`.
    details: Vec<AgentDetail>,
    agent_index: HashMap<AgentId, u32>,
    teams: HashMap<TeamId, TeamSlot>,
    team_names: HashMap<String, TeamId>,
    vip_customers: HashSet<CustomerId>,
    customer_tiers: HashMap<CustomerId, String>,
    tickets: HashMap<TicketId, TicketSlot>,
    /// Priority and sentiment proposals not yet carried out, by ticket.
    proposals: HashMap<TicketId, Proposal>,
    undo: Vec<Undo>,
}

impl Engine {
    pub fn new(config: RoutingConfig) -> Engine {
        let rules = PriorityRules::new(&config.priority);
        Engine {
            config,
            rules,
            position: 0,
            last_event_id: Uuid::nil(),
            agents: Vec::new(),
            details: Vec::new(),
            agent_index: HashMap::new(),
            teams: HashMap::new(),
            team_names: HashMap::new(),
            vip_customers: HashSet::new(),
            customer_tiers: HashMap::new(),
            tickets: HashMap::new(),
            proposals: HashMap::new(),
            undo: Vec::new(),
        }
    }

    /// The log position folded so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The id of the last record folded: decisions taken now derive their command ids from it.
    pub fn last_event_id(&self) -> Uuid {
        self.last_event_id
    }

    /// Tickets queued in `team`, waiting for an agent.
    pub fn queued(&self, team: TeamId) -> usize {
        self.teams.get(&team).map_or(0, |slot| slot.queue.len())
    }

    /// An agent's open load (weighted or counted, as their capacity is).
    pub fn load(&self, agent: AgentId) -> Option<u32> {
        let index = *self.agent_index.get(&agent)?;
        Some(self.agents[index as usize].load())
    }

    /// Teams that have a queue, in id order.
    pub fn teams(&self) -> Vec<TeamId> {
        let mut teams: Vec<TeamId> = self.teams.keys().copied().collect();
        teams.sort();
        teams
    }

    /// The ticket's stream version as folded, if the ticket is open.
    pub fn ticket_version(&self, ticket: TicketId) -> Option<u64> {
        self.tickets.get(&ticket).map(|slot| slot.version)
    }

    /// Folds one record of the log. Records are applied once, in order.
    pub fn apply(&mut self, record: &Record) {
        assert!(
            record.position > self.position,
            "records are applied once, in order"
        );
        self.position = record.position;
        self.last_event_id = record.event_id;
        match record.category.as_str() {
            projections::TICKET_CATEGORY => match TicketEvent::decode(record.view()) {
                Some(event) => self.apply_ticket(&event),
                // An event this build cannot read still moves the ticket's version, so that
                // routing's commands expect the version the stream really has.
                None => {
                    let slot = uuid_suffix(&record.stream_id, "ticket-")
                        .and_then(|id| self.tickets.get_mut(&TicketId(id)));
                    if let Some(slot) = slot {
                        slot.version = record.stream_version;
                    }
                }
            },
            domain::AGENT_CATEGORY => {
                if let Some(Ok(event)) = AgentEvent::from_stored(
                    &record.event_type,
                    record.schema_version,
                    &record.payload,
                ) {
                    if let Some(id) = uuid_suffix(&record.stream_id, "agent-") {
                        self.apply_agent(AgentId(id), &event);
                    }
                }
            }
            "team" if record.event_type == "TeamCreated" => {
                #[derive(serde::Deserialize)]
                struct TeamCreated {
                    team_id: TeamId,
                    name: String,
                }
                if let Ok(created) = serde_json::from_str::<TeamCreated>(&record.payload) {
                    self.team_names
                        .insert(created.name.clone(), created.team_id);
                    let config = self.team_config(created.team_id, Some(&created.name));
                    let slot = self.teams.entry(created.team_id).or_default();
                    slot.name = Some(created.name);
                    slot.config = config;
                }
            }
            "customer" if record.event_type == "CustomerRegistered" => {
                #[derive(serde::Deserialize)]
                struct CustomerRegistered {
                    customer_id: CustomerId,
                    tier: String,
                }
                if let Ok(registered) = serde_json::from_str::<CustomerRegistered>(&record.payload)
                {
                    self.customer_tiers
                        .insert(registered.customer_id, registered.tier.clone());
                    if self.config.vip_tiers.contains(&registered.tier) {
                        self.vip_customers.insert(registered.customer_id);
                    } else {
                        self.vip_customers.remove(&registered.customer_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn team_config(&self, team: TeamId, name: Option<&str>) -> Arc<TeamConfig> {
        let by_id = self.config.teams.get(&team.to_string());
        let by_name = name.and_then(|name| self.config.teams.get(name));
        Arc::new(by_id.or(by_name).cloned().unwrap_or_default())
    }

    fn team_slot(&mut self, team: TeamId) -> &mut TeamSlot {
        if !self.teams.contains_key(&team) {
            let slot = TeamSlot {
                config: self.team_config(team, None),
                ..TeamSlot::default()
            };
            self.teams.insert(team, slot);
        }
        self.teams.get_mut(&team).expect("inserted above")
    }

    fn apply_agent(&mut self, id: AgentId, event: &AgentEvent) {
        let index = match self.agent_index.get(&id) {
            Some(index) => *index,
            None => {
                let AgentEvent::AgentRegistered(_) = event else {
                    return;
                };
                let index = u32::try_from(self.agents.len()).expect("fewer than 2^32 agents");
                self.agents.push(AgentSlot {
                    id,
                    last_assigned: 0,
                    capacity: domain::CAPACITY_DEFAULT,
                    open: 0,
                    open_weight: 0,
                    presence: Presence::Offline,
                    weighted: false,
                });
                self.details.push(AgentDetail::default());
                self.agent_index.insert(id, index);
                index
            }
        };
        self.unrank(index);
        match event {
            AgentEvent::AgentRegistered(registered) => {
                self.set_teams(index, &registered.teams);
            }
            AgentEvent::AgentProfileUpdated(updated) => {
                self.set_teams(index, &updated.teams);
                let detail = &mut self.details[index as usize];
                detail.skills = updated.skills.clone();
                detail.languages = updated.languages.clone();
                let agent = &mut self.agents[index as usize];
                agent.capacity = updated.capacity;
                agent.weighted = updated.weighted;
            }
            AgentEvent::AgentPresenceChanged(changed) => {
                self.agents[index as usize].presence = changed.to;
            }
        }
        self.rank(index);
    }

    fn rank_key(&self, index: u32) -> Option<RankKey> {
        let agent = &self.agents[index as usize];
        (agent.presence == Presence::Online).then(|| {
            (
                std::cmp::Reverse(agent.capacity.saturating_sub(agent.load())),
                agent.last_assigned,
                agent.id,
                index,
            )
        })
    }

    /// Takes an agent out of their teams' rankings, before a change to what orders them.
    fn unrank(&mut self, index: u32) {
        let Some(key) = self.rank_key(index) else {
            return;
        };
        for team in &self.details[index as usize].teams {
            if let Some(slot) = self.teams.get_mut(team) {
                slot.ranking.remove(&key);
            }
        }
    }

    /// Puts an agent back into their teams' rankings, after the change.
    fn rank(&mut self, index: u32) {
        let Some(key) = self.rank_key(index) else {
            return;
        };
        for team in &self.details[index as usize].teams {
            if let Some(slot) = self.teams.get_mut(team) {
                slot.ranking.insert(key);
            }
        }
    }

    fn set_last_assigned(&mut self, index: u32, position: u64) {
        self.unrank(index);
        self.agents[index as usize].last_assigned = position;
        self.rank(index);
    }

    fn set_teams(&mut self, index: u32, teams: &[TeamId]) {
        let old = std::mem::take(&mut self.details[index as usize].teams);
        let id = self.agents[index as usize].id;
        for team in &old {
            if let Some(slot) = self.teams.get_mut(team) {
                slot.members.retain(|member| *member != index);
            }
        }
        for team in teams {
            let agents = &self.agents;
            let slot = {
                if !self.teams.contains_key(team) {
                    let config = Arc::new(
                        self.config
                            .teams
                            .get(&team.to_string())
                            .cloned()
                            .unwrap_or_default(),
                    );
                    self.teams.insert(
                        *team,
                        TeamSlot {
                            config,
                            ..TeamSlot::default()
                        },
                    );
                }
                self.teams.get_mut(team).expect("inserted above")
            };
            let at = slot
                .members
                .partition_point(|member| agents[*member as usize].id < id);
            if slot.members.get(at) != Some(&index) {
                slot.members.insert(at, index);
            }
        }
        self.details[index as usize].teams = teams.to_vec();
    }

    fn apply_ticket(&mut self, event: &TicketEvent) {
        let id = event.ticket_id;
        if let Event::TicketCreated(created) = &event.event {
            if self.tickets.contains_key(&id) {
                return;
            }
            let mut clocks = TicketClocks::default();
            clocks.apply(&event.event, event.at);
            let text = format!("{}\n{}", created.pii.subject, created.pii.description);
            let slot = TicketSlot {
                version: event.stream_version,
                team: None,
                assignee: None,
                priority: created.priority,
                clocks,
                created_micros: event.at.as_microsecond(),
                requester: created.requester,
                channel: created.channel,
                ticket_type: created.ticket_type.clone(),
                tags: created.tags.clone(),
                language: crate::language::detect(&text),
                upset: false,
            };
            self.propose(id, &slot, Some(&text), true);
            self.tickets.insert(id, slot);
            return;
        }
        let Some(mut slot) = self.tickets.remove(&id) else {
            return;
        };
        let before_queue = slot.queue_key(id);
        let before_load = slot.open_load();
        let before_owner = slot.owner();
        slot.version = event.stream_version;
        slot.clocks.apply(&event.event, event.at);
        let mut message = None;
        match &event.event {
            Event::PriorityChanged(changed) => {
                slot.priority = changed.to;
                // A person decided: a rule still waiting to raise the priority stands down.
                if let Some(proposal) = self.proposals.get_mut(&id) {
                    proposal.priority = None;
                }
            }
            Event::PriorityChangedByRule(changed) => slot.priority = changed.to,
            Event::TagsAdded(added) => {
                for tag in &added.tags {
                    if !slot.tags.contains(tag) {
                        slot.tags.push(tag.clone());
                    }
                }
            }
            Event::TagsRemoved(removed) => slot.tags.retain(|tag| !removed.tags.contains(tag)),
            Event::TeamAssigned(assigned) => slot.team = Some(assigned.to),
            Event::TeamTransferred(transferred) => {
                slot.team = Some(transferred.to);
                if transferred.unassigned.is_some() {
                    slot.assignee = None;
                }
            }
            Event::AgentAssigned(assigned) => {
                slot.assignee = Some(assigned.to);
                if let Some(index) = self.agent_index.get(&assigned.to).copied() {
                    self.set_last_assigned(index, event.position);
                }
                if let Some(routing) = &assigned.routing {
                    if routing.strategy == RoutingStrategy::RoundRobin && !routing.vip_group {
                        self.team_slot(routing.team).round_robin_last = Some(assigned.to);
                    }
                }
            }
            Event::AgentUnassigned(_) => slot.assignee = None,
            Event::CustomerUpsetFlagged(_) => slot.upset = true,
            Event::CustomerMessageReceived(received) => message = Some(received.pii.body.clone()),
            _ => {}
        }
        self.moved(id, before_queue, &slot);
        self.reload(before_load, slot.open_load());
        self.reown(id, before_owner, slot.owner());
        self.propose(id, &slot, message.as_deref(), false);
        if slot.category() == Some(StateCategory::Closed) {
            self.proposals.remove(&id);
        } else {
            self.tickets.insert(id, slot);
        }
    }

    /// Keeps a ticket's priority proposal in step with the ticket: a new text may add one, and
    /// one that is carried out (or overtaken by a person) goes away.
    fn propose(&mut self, id: TicketId, slot: &TicketSlot, text: Option<&str>, created: bool) {
        if let Some(text) = text {
            let facts = created.then(|| TicketFacts {
                tier: self.customer_tiers.get(&slot.requester).map(String::as_str),
                channel: slot.channel,
                ticket_type: &slot.ticket_type,
            });
            if let Some(proposal) = self.rules.evaluate(text, facts, self.last_event_id) {
                let merged = match self.proposals.remove(&id) {
                    Some(earlier) => earlier.merge(proposal),
                    None => proposal,
                };
                self.proposals.insert(id, merged);
            }
        }
        if let Some(proposal) = self.proposals.get_mut(&id) {
            if proposal
                .priority
                .as_ref()
                .is_some_and(|(priority, _, _)| slot.priority >= *priority)
            {
                proposal.priority = None;
            }
            if slot.upset {
                proposal.upset = None;
            }
            let solved = matches!(
                slot.category(),
                Some(StateCategory::Solved | StateCategory::Closed)
            );
            if proposal.is_empty() || solved {
                self.proposals.remove(&id);
            }
        }
    }

    fn moved(&mut self, id: TicketId, before: Option<(TeamId, QueueKey)>, slot: &TicketSlot) {
        let after = slot.queue_key(id);
        if before == after {
            return;
        }
        if let Some((team, key)) = before {
            self.team_slot(team).queue.remove(&key);
        }
        if let Some((team, key)) = after {
            self.team_slot(team).queue.insert(key);
        }
    }

    fn reload(&mut self, before: Option<(AgentId, Priority)>, after: Option<(AgentId, Priority)>) {
        if before == after {
            return;
        }
        if let Some((agent, priority)) = before {
            if let Some(index) = self.agent_index.get(&agent).copied() {
                self.unrank(index);
                let slot = &mut self.agents[index as usize];
                slot.open = slot.open.saturating_sub(1);
                slot.open_weight = slot.open_weight.saturating_sub(priority_weight(priority));
                self.rank(index);
            }
        }
        if let Some((agent, priority)) = after {
            if let Some(index) = self.agent_index.get(&agent).copied() {
                self.unrank(index);
                let slot = &mut self.agents[index as usize];
                slot.open += 1;
                slot.open_weight += priority_weight(priority);
                self.rank(index);
            }
        }
    }

    fn reown(&mut self, id: TicketId, before: Option<AgentId>, after: Option<AgentId>) {
        if before == after {
            return;
        }
        if let Some(index) = before.and_then(|agent| self.agent_index.get(&agent)) {
            self.details[*index as usize].owned.remove(&id);
        }
        if let Some(index) = after.and_then(|agent| self.agent_index.get(&agent)) {
            self.details[*index as usize].owned.insert(id);
        }
    }

    /// The next assignment in `team`: the first queued ticket (in queue order, trying at most
    /// `QUEUE_SCAN_MAX` and passing over at most `QUEUE_PASS_MAX` whose needs already found
    /// nobody) that some agent can take, and the agent the strategy picks.
    pub fn next_assignment(&self, team: TeamId) -> Option<Assignment> {
        self.next_assignment_except(team, &HashSet::new())
    }

    /// `next_assignment`, passing over the tickets in `except`.
    fn next_assignment_except(
        &self,
        team: TeamId,
        except: &HashSet<TicketId>,
    ) -> Option<Assignment> {
        let slot = self.teams.get(&team)?;
        if slot.queue.is_empty() {
            return None;
        }
        if !slot
            .members
            .iter()
            .any(|member| self.agents[*member as usize].open_for_work())
        {
            return None;
        }
        // Whether a ticket finds an agent depends only on its needs, so once one ticket's
        // needs found nobody, later tickets with the same needs are passed over without trying
        // them: within one decision no agent's load or presence changes.
        let mut blocked: HashSet<Needs> = HashSet::new();
        let mut tried = 0usize;
        let mut passed = 0usize;
        for key in slot.queue.iter() {
            if except.contains(&key.ticket_id) {
                continue;
            }
            if tried >= QUEUE_SCAN_MAX || passed >= QUEUE_PASS_MAX {
                return None;
            }
            let Some(ticket) = self.tickets.get(&key.ticket_id) else {
                tried += 1;
                continue;
            };
            let needs = self.needs(slot, ticket);
            if blocked.contains(&needs) {
                passed += 1;
                continue;
            }
            tried += 1;
            match self.choose(team, slot, key.ticket_id, ticket, &needs) {
                Some(assignment) => return Some(assignment),
                None => {
                    blocked.insert(needs);
                }
            }
        }
        None
    }

    /// What narrows the candidates for `ticket` in the team of `slot`.
    fn needs(&self, slot: &TeamSlot, ticket: &TicketSlot) -> Needs {
        let config = &slot.config;
        let mut required: Vec<String> = config
            .skills_by_type
            .get(&ticket.ticket_type)
            .into_iter()
            .flatten()
            .chain(
                ticket
                    .tags
                    .iter()
                    .filter_map(|tag| config.skills_by_tag.get(tag))
                    .flatten(),
            )
            .cloned()
            .collect();
        required.sort();
        required.dedup();
        // Narrow by language only when someone in the team reads it: a ticket in a language
        // nobody reads would otherwise wait forever.
        let language = ticket.language.filter(|language| {
            config.route_by_language
                && slot.members.iter().any(|member| {
                    self.details[*member as usize]
                        .languages
                        .iter()
                        .any(|spoken| spoken == language)
                })
        });
        let vip_group = config
            .vip_group
            .as_ref()
            .filter(|_| self.vip_customers.contains(&ticket.requester))
            .and_then(|group| self.resolve_team(group));
        Needs {
            priority: ticket.priority,
            required,
            language,
            vip_group,
        }
    }

    fn choose(
        &self,
        team: TeamId,
        slot: &TeamSlot,
        id: TicketId,
        ticket: &TicketSlot,
        needs: &Needs,
    ) -> Option<Assignment> {
        let config = &slot.config;
        let Needs {
            required,
            language,
            vip_group,
            ..
        } = needs;
        let (language, vip_group) = (*language, *vip_group);
        let units_of = |agent: &AgentSlot| agent.units(ticket.priority);
        // The cheap checks read the hot slot only; skills and languages only when asked for.
        let eligible = |index: u32| -> Result<(), SkipReason> {
            let agent = &self.agents[index as usize];
            if agent.presence != Presence::Online {
                return Err(SkipReason::NotAvailable {
                    presence: agent.presence,
                });
            }
            if agent.load() + units_of(agent) > agent.capacity {
                return Err(SkipReason::AtCapacity {
                    load: agent.load(),
                    capacity: agent.capacity,
                });
            }
            if required.is_empty() && language.is_none() {
                return Ok(());
            }
            let detail = &self.details[index as usize];
            if let Some(skill) = required.iter().find(|skill| !detail.skills.contains(skill)) {
                return Err(SkipReason::MissingSkill {
                    skill: skill.clone(),
                });
            }
            if let Some(language) = language {
                if !detail.languages.iter().any(|spoken| spoken == language) {
                    return Err(SkipReason::NoLanguage {
                        language: language.to_owned(),
                    });
                }
            }
            Ok(())
        };
        // Without skills or a language to check, an online agent with room is a candidate:
        // that test is inlined in the loops, and `eligible` runs only to say why not.
        let plain = required.is_empty() && language.is_none();
        let verdict = |index: u32| -> Result<(), SkipReason> {
            let agent = &self.agents[index as usize];
            let fits = agent.presence == Presence::Online
                && agent.load() + units_of(agent) <= agent.capacity;
            if plain && fits {
                Ok(())
            } else {
                eligible(index)
            }
        };
        let in_group = |index: u32| {
            vip_group.is_some_and(|group| self.details[index as usize].teams.contains(&group))
        };
        let mut skipped = Vec::new();
        let mut skipped_total = 0u32;
        let mut skip = |agent: AgentId, reason: SkipReason| {
            skipped_total += 1;
            if skipped.len() < ROUTING_SKIPPED_MAX {
                skipped.push(SkippedAgent { agent, reason });
            }
        };
        let mut considered = 0u32;
        let mut candidates = 0u32;
        // Candidates outside the VIP group, skipped if a group member is chosen.
        let mut outside_group: Vec<AgentId> = Vec::new();
        // The chosen agent's index, and whether it is in the VIP group.
        let mut chosen: Option<(u32, bool)> = None;
        let members = &slot.members;
        let strategy = config.strategy;
        // Least loaded with nothing to narrow by reads the team's ranking from the top: the
        // first online member the ticket fits is the one the full scan would choose. Only the
        // members read count as considered. Debug builds run the full scan too and compare.
        let ranked = strategy == RoutingStrategy::LeastLoaded && plain && vip_group.is_none();
        let mut fast = Ranked::default();
        if ranked {
            for &(std::cmp::Reverse(spare), _, id, index) in &slot.ranking {
                if spare == 0 {
                    break;
                }
                let agent = &self.agents[index as usize];
                fast.considered += 1;
                if agent.load() + agent.units(ticket.priority) <= agent.capacity {
                    fast.chosen = Some(index);
                    break;
                }
                fast.skipped_total += 1;
                if fast.skipped.len() < ROUTING_SKIPPED_MAX {
                    fast.skipped.push(SkippedAgent {
                        agent: id,
                        reason: SkipReason::AtCapacity {
                            load: agent.load(),
                            capacity: agent.capacity,
                        },
                    });
                }
            }
        }
        match strategy {
            RoutingStrategy::LeastLoaded if ranked && !cfg!(debug_assertions) => {}
            RoutingStrategy::RoundRobin => {
                let start = slot.round_robin_last.map_or(0, |last| {
                    members.partition_point(|member| self.agents[*member as usize].id <= last)
                });
                // Without a VIP group, the first eligible agent after the pointer wins and
                // nobody past it is looked at; with one, the whole rotation is looked at so
                // that a group member anywhere in it goes first.
                for offset in 0..members.len() {
                    let index = members[(start + offset) % members.len()];
                    considered += 1;
                    match verdict(index) {
                        Err(reason) => skip(self.agents[index as usize].id, reason),
                        Ok(()) => {
                            candidates += 1;
                            let grouped = in_group(index);
                            if vip_group.is_some() && !grouped {
                                outside_group.push(self.agents[index as usize].id);
                            }
                            match chosen {
                                None => chosen = Some((index, grouped)),
                                Some((_, false)) if grouped => chosen = Some((index, true)),
                                _ => {}
                            }
                            if vip_group.is_none() || grouped {
                                break;
                            }
                        }
                    }
                }
            }
            RoutingStrategy::LeastLoaded => {
                // One number orders the candidates: VIP group first, then spare capacity, then
                // the oldest last assignment. Members come in id order and only a strictly
                // greater key replaces the best, so equal keys go to the lowest id.
                // Every candidate's key is above 0 (its last-assignment part is). The best is
                // kept with selects rather than branches: which member wins is unpredictable.
                let mut best_key = 0u128;
                let mut best_index = u32::MAX;
                let mut best_grouped = false;
                for member in members {
                    let index = *member;
                    let agent = &self.agents[index as usize];
                    considered += 1;
                    // The common case, inline: nothing to narrow by, online with room.
                    let fits = plain
                        && agent.presence == Presence::Online
                        && agent.load() + agent.units(ticket.priority) <= agent.capacity;
                    if !fits {
                        if let Err(reason) = eligible(index) {
                            skip(agent.id, reason);
                            continue;
                        }
                    }
                    candidates += 1;
                    let grouped = vip_group.is_some() && in_group(index);
                    if vip_group.is_some() && !grouped {
                        outside_group.push(agent.id);
                    }
                    let key = (u128::from(grouped) << 127)
                        | (u128::from(agent.capacity - agent.load()) << 64)
                        | u128::from(u64::MAX - agent.last_assigned);
                    let take = key > best_key;
                    best_index = if take { index } else { best_index };
                    best_grouped = if take { grouped } else { best_grouped };
                    best_key = if take { key } else { best_key };
                }
                if best_index != u32::MAX {
                    chosen = Some((best_index, best_grouped));
                }
            }
        }
        if grouped_chosen(chosen) {
            // Agents who could have taken it but for the VIP group going first.
            for outside in outside_group {
                skip(outside, SkipReason::NotInVipGroup);
            }
        }
        if ranked {
            debug_assert_eq!(
                chosen.map(|(index, _)| index),
                fast.chosen,
                "the ranking and the scan disagree"
            );
            chosen = fast.chosen.map(|index| (index, false));
            considered = fast.considered;
            candidates = u32::from(fast.chosen.is_some());
            skipped = fast.skipped;
            skipped_total = fast.skipped_total;
        }
        let (index, grouped) = chosen?;
        let agent = &self.agents[index as usize];
        let record = RoutingRecord {
            team,
            strategy,
            required_skills: required.clone(),
            language: language.map(str::to_owned),
            vip_group: grouped,
            considered,
            candidates,
            skipped,
            skipped_total,
        };
        let reason = format!(
            "{} in team {}: {} of {} agents looked at could take it{}",
            strategy.as_str(),
            slot.name.as_deref().unwrap_or("(unnamed)"),
            candidates,
            considered,
            if grouped { ", VIP group first" } else { "" },
        );
        Some(Assignment {
            ticket: id,
            version: ticket.version,
            agent: agent.id,
            record,
            reason,
        })
    }

    fn resolve_team(&self, name_or_id: &str) -> Option<TeamId> {
        if let Ok(id) = Uuid::parse_str(name_or_id) {
            return Some(TeamId(id));
        }
        self.team_names.get(name_or_id).copied()
    }

    /// Takes `assignment` as done until `forget`: the ticket leaves the queue and counts
    /// against the agent, and the round-robin pointer moves, exactly as the `AgentAssigned`
    /// event will do. This is how one round plans many assignments that see each other.
    pub fn assume(&mut self, assignment: &Assignment) -> bool {
        let team = assignment.record.team;
        let Some(index) = self.agent_index.get(&assignment.agent).copied() else {
            return false;
        };
        let Some(mut slot) = self.tickets.remove(&assignment.ticket) else {
            return false;
        };
        let undo = Undo {
            ticket: assignment.ticket,
            team,
            agent: assignment.agent,
            last_assigned: self.agents[index as usize].last_assigned,
            round_robin_last: self.teams.get(&team).and_then(|team| team.round_robin_last),
        };
        let before_queue = slot.queue_key(assignment.ticket);
        let before_load = slot.open_load();
        let before_owner = slot.owner();
        slot.assignee = Some(assignment.agent);
        self.moved(assignment.ticket, before_queue, &slot);
        self.reload(before_load, slot.open_load());
        self.reown(assignment.ticket, before_owner, slot.owner());
        self.tickets.insert(assignment.ticket, slot);
        // A stand-in for the position the event will get: after everything folded so far.
        self.set_last_assigned(index, self.position + 1);
        if assignment.record.strategy == RoutingStrategy::RoundRobin && !assignment.record.vip_group
        {
            self.team_slot(team).round_robin_last = Some(assignment.agent);
        }
        self.undo.push(undo);
        true
    }

    /// Undoes every `assume` since the last `forget`, newest first: the log, not this process,
    /// says what happened.
    pub fn forget(&mut self) {
        while let Some(undo) = self.undo.pop() {
            let Some(mut slot) = self.tickets.remove(&undo.ticket) else {
                continue;
            };
            let before_queue = slot.queue_key(undo.ticket);
            let before_load = slot.open_load();
            let before_owner = slot.owner();
            slot.assignee = None;
            self.moved(undo.ticket, before_queue, &slot);
            self.reload(before_load, slot.open_load());
            self.reown(undo.ticket, before_owner, slot.owner());
            self.tickets.insert(undo.ticket, slot);
            if let Some(index) = self.agent_index.get(&undo.agent).copied() {
                self.set_last_assigned(index, undo.last_assigned);
            }
            self.team_slot(undo.team).round_robin_last = undo.round_robin_last;
        }
    }

    /// Everything to do now, at most `PLAN_ACTIONS_MAX`: hand-backs first (they free tickets
    /// for routing), then priority rules (they reorder queues), then assignments, team by
    /// team in id order, each in queue order. Deterministic: the same log gives the same plan.
    pub fn plan(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for (agent, detail) in self.agents.iter().zip(&self.details) {
            if agent.presence == Presence::Online || detail.owned.is_empty() {
                continue;
            }
            for ticket_id in &detail.owned {
                let Some(ticket) = self.tickets.get(ticket_id) else {
                    continue;
                };
                let hands_back = ticket
                    .team
                    .and_then(|team| self.teams.get(&team))
                    .is_some_and(|team| team.config.hand_back_on.contains(&agent.presence));
                if hands_back && actions.len() < PLAN_ACTIONS_MAX {
                    actions.push(Action::HandBack {
                        ticket: *ticket_id,
                        version: ticket.version,
                        agent: agent.id,
                        presence: agent.presence,
                    });
                }
            }
        }
        let mut proposals: Vec<(&TicketId, &Proposal)> = self.proposals.iter().collect();
        proposals.sort_by_key(|(ticket, _)| **ticket);
        for (ticket, proposal) in proposals {
            if actions.len() >= PLAN_ACTIONS_MAX {
                break;
            }
            if let Some(slot) = self.tickets.get(ticket) {
                actions.push(Action::Prioritize {
                    ticket: *ticket,
                    version: slot.version,
                    proposal: proposal.clone(),
                });
            }
        }
        // Tickets handed back or re-prioritized now are routed in the next round, on the
        // versions their events give them.
        let busy: HashSet<TicketId> = actions
            .iter()
            .map(|action| match action {
                Action::HandBack { ticket, .. } | Action::Prioritize { ticket, .. } => *ticket,
                Action::Assign(assignment) => assignment.ticket,
            })
            .collect();
        for team in self.teams() {
            while actions.len() < PLAN_ACTIONS_MAX {
                let Some(assignment) = self.next_assignment_except(team, &busy) else {
                    break;
                };
                if !self.assume(&assignment) {
                    break;
                }
                actions.push(Action::Assign(assignment));
            }
        }
        self.forget();
        actions
    }
}

fn uuid_suffix(stream_id: &str, prefix: &str) -> Option<Uuid> {
    Uuid::parse_str(stream_id.strip_prefix(prefix)?).ok()
}
