//! The routing process manager: follows the log into an `Engine`, and whenever it has caught
//! up, carries out the engine's plan as ticket commands (hand back, raise priority, flag the
//! customer upset, assign).
//!
//! Any number of nodes may run one on the same log; none of them assigns a ticket twice:
//! - each command is decided on the ticket version the plan was made on and appended with
//!   exactly that expected version, so a ticket that changed since (another node assigned it,
//!   a person did) is a conflict, never a second assignment;
//! - each command id is derived from the event the plan was caused by (the last folded
//!   record), the ticket and the kind of action, so two nodes that planned on the same log
//!   prefix issue the same commands and the store writes each once.
//!
//! After a round that wrote, the manager waits until it has folded its own events before it
//! plans again, so a plan never rests on what this process merely hopes happened.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::{
    Actor, ActorId, AssignAgent, BlueprintCatalog, ChangePriorityByRule, Command, CommandContext,
    Event, FlagCustomerUpset, Role, Ticket, TicketId, UnassignAgent,
};
use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};
use store::{AppendError, AppendOutcome, ExpectedVersion, NewEvent, Store, StoreError, StreamId};
use tokio::sync::watch;
use uuid::Uuid;

use crate::engine::{Action, Engine};

/// The actor id routing commands are recorded with ("routing" in ASCII).
pub const ROUTING_ACTOR: Uuid = Uuid::from_u128(0x0072_6f75_7469_6e67);
/// How long to wait before reading the log again after it failed.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Reads the wall clock; the binary passes the system clock, tests a manual one.
pub type Now = Arc<dyn Fn() -> Timestamp + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("reading the log: {0}")]
    Store(#[from] StoreError),
    #[error("ticket {ticket}: {message}")]
    Undecodable { ticket: TicketId, message: String },
}

/// What one round did, for tests and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    pub planned: usize,
    /// Commands that wrote events (or found their twin already written).
    pub written: usize,
    /// Commands whose ticket had moved on since the plan.
    pub conflicts: usize,
    /// The highest log position written.
    pub position: u64,
}

pub struct Manager {
    store: Store,
    engine: Engine,
    blueprints: BlueprintCatalog,
    now: Now,
    /// Recorded in each command's metadata, to tell nodes apart in the audit trail.
    node: String,
    stats: Arc<RoutingStats>,
}

/// What a manager has done, for `/metrics` and tests. Counted by the node that did it: the
/// commands a twin node had written already count as written on both.
#[derive(Debug, Default)]
pub struct RoutingStats {
    /// The log position the manager has folded.
    pub position: AtomicU64,
    /// Rounds of planning that ran to the end.
    pub rounds: AtomicU64,
    /// Rounds that failed (reading or writing the log, or a ticket that did not decode),
    /// retried after `RETRY_DELAY`.
    pub failed_rounds: AtomicU64,
    /// Actions written, or found written already (by a twin node, or by this node before a
    /// failed round it retried), by kind; a priority change and an upset flag from one rule
    /// result count once.
    pub assigned: AtomicU64,
    pub handed_back: AtomicU64,
    pub prioritized: AtomicU64,
    /// Actions not written: the ticket had moved on since the plan, or the command changed
    /// nothing or was refused.
    pub conflicts: AtomicU64,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("node", &self.node)
            .field("position", &self.engine.position())
            .finish_non_exhaustive()
    }
}

/// A command id derived from what caused it, so that every node derives the same one.
pub fn derived_command_id(cause: Uuid, ticket: TicketId, kind: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"routing\0")
        .chain_update(cause.as_bytes())
        .chain_update(ticket.0.as_bytes())
        .chain_update(kind.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl Manager {
    pub fn new(
        store: Store,
        engine: Engine,
        blueprints: BlueprintCatalog,
        now: Now,
        node: impl Into<String>,
    ) -> Manager {
        Manager {
            store,
            engine,
            blueprints,
            now,
            node: node.into(),
            stats: Arc::default(),
        }
    }

    /// Counts into `stats` (shown in `/metrics`) instead of counters of its own.
    pub fn with_stats(self, stats: Arc<RoutingStats>) -> Manager {
        stats
            .position
            .store(self.engine.position(), Ordering::Relaxed);
        Manager { stats, ..self }
    }

    /// Folds `record` unless it is folded already.
    fn fold(&mut self, record: &store::Record) {
        if record.position > self.engine.position() {
            self.engine.apply(record);
            self.stats
                .position
                .store(self.engine.position(), Ordering::Relaxed);
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Follows the log and routes until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut subscription = self.store.subscribe(self.engine.position());
        loop {
            if *shutdown.borrow() {
                return;
            }
            let outcome = match self.follow(&mut subscription).await {
                Ok(()) => self.round().await,
                Err(error) => Err(error),
            };
            let wait_for = match outcome {
                Ok(outcome) => outcome.position,
                Err(error) => {
                    self.stats.failed_rounds.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, node = %self.node, "routing: a round failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_DELAY) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            };
            // Plan again only on news: our own events once they are folded, or anyone's.
            loop {
                let next = tokio::select! {
                    next = subscription.next() => next,
                    _ = shutdown.changed() => return,
                };
                match next {
                    Ok(record) => self.fold(&record),
                    Err(error) => {
                        tracing::warn!(%error, "routing: following the log failed; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                }
                if self.engine.position() >= wait_for {
                    break;
                }
            }
        }
    }

    /// Folds every record available now.
    pub async fn catch_up(
        &mut self,
        subscription: &mut store::Subscription,
    ) -> Result<(), ManagerError> {
        loop {
            let records = subscription.poll_available().await?;
            if records.is_empty() {
                return Ok(());
            }
            for record in &records {
                self.fold(record);
            }
        }
    }

    /// Folds what the subscription holds without reading the database (what `next` and the
    /// in-process tail brought), unless it may have missed something: then it reads like
    /// `catch_up`. The run loop calls this on every wake, so a caught-up manager costs no query
    /// per batch the process commits.
    pub async fn follow(
        &mut self,
        subscription: &mut store::Subscription,
    ) -> Result<(), ManagerError> {
        if subscription.may_have_missed() {
            return self.catch_up(subscription).await;
        }
        for record in &subscription.take_buffered()? {
            self.fold(record);
        }
        Ok(())
    }

    /// Plans on what is folded and carries the plan out.
    pub async fn round(&mut self) -> Result<RoundOutcome, ManagerError> {
        let cause = self.engine.last_event_id();
        let actions = self.engine.plan();
        let mut outcome = RoundOutcome {
            planned: actions.len(),
            ..RoundOutcome::default()
        };
        for action in &actions {
            let written = self.execute(cause, action).await?;
            let counter = match (&written, action) {
                (None, _) => &self.stats.conflicts,
                (Some(_), Action::Assign(_)) => &self.stats.assigned,
                (Some(_), Action::HandBack { .. }) => &self.stats.handed_back,
                (Some(_), Action::Prioritize { .. }) => &self.stats.prioritized,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            match written {
                Some(append) => {
                    outcome.written += 1;
                    outcome.position = outcome.position.max(append.last_position);
                }
                None => outcome.conflicts += 1,
            }
        }
        self.stats.rounds.fetch_add(1, Ordering::Relaxed);
        Ok(outcome)
    }

    async fn execute(
        &self,
        cause: Uuid,
        action: &Action,
    ) -> Result<Option<AppendOutcome>, ManagerError> {
        match action {
            Action::HandBack {
                ticket,
                version,
                agent,
                presence,
            } => {
                let command = Command::UnassignAgent(UnassignAgent {
                    reason: Some(format!(
                        "agent {agent} is {presence}: handed back to the team's routing"
                    )),
                });
                let id = derived_command_id(cause, *ticket, "hand_back");
                self.command(*ticket, *version, &command, id, cause).await
            }
            Action::Assign(assignment) => {
                let command = Command::AssignAgent(AssignAgent {
                    agent: assignment.agent,
                    reason: Some(assignment.reason.clone()),
                    routing: Some(assignment.record.clone()),
                });
                let id = derived_command_id(cause, assignment.ticket, "assign");
                self.command(assignment.ticket, assignment.version, &command, id, cause)
                    .await
            }
            Action::Prioritize {
                ticket,
                version,
                proposal,
            } => {
                let mut version = *version;
                let mut last = None;
                if let Some((priority, rule_id, evidence)) = &proposal.priority {
                    let command = Command::ChangePriorityByRule(ChangePriorityByRule {
                        priority: *priority,
                        rule_id: rule_id.clone(),
                        evidence: evidence.clone(),
                    });
                    let id = derived_command_id(proposal.cause, *ticket, "priority");
                    match self
                        .command(*ticket, version, &command, id, proposal.cause)
                        .await?
                    {
                        Some(outcome) => {
                            version = outcome.stream_version;
                            last = Some(outcome);
                        }
                        None => return Ok(None),
                    }
                }
                if let Some((rule_id, evidence)) = &proposal.upset {
                    let command = Command::FlagCustomerUpset(FlagCustomerUpset {
                        rule_id: rule_id.clone(),
                        evidence: evidence.clone(),
                    });
                    let id = derived_command_id(proposal.cause, *ticket, "upset");
                    if let Some(outcome) = self
                        .command(*ticket, version, &command, id, proposal.cause)
                        .await?
                    {
                        last = Some(outcome);
                    }
                }
                Ok(last)
            }
        }
    }

    /// Decides `command` on the ticket at exactly `version` and appends it expecting that
    /// version. `None` when the ticket moved on, the command changes nothing or is refused.
    async fn command(
        &self,
        ticket_id: TicketId,
        version: u64,
        command: &Command,
        command_id: Uuid,
        cause: Uuid,
    ) -> Result<Option<AppendOutcome>, ManagerError> {
        let stream =
            StreamId::new(ticket_id.stream_id()).map_err(|error| ManagerError::Undecodable {
                ticket: ticket_id,
                message: error.to_string(),
            })?;
        // A command already written (by this node before a restart, or by a twin node) is
        // found by its id before anything is decided.
        if let Some((_, outcome)) = self.store.find_command(command_id).await? {
            return Ok(Some(outcome));
        }
        let ticket = self.load(&stream, ticket_id).await?;
        if ticket.version != version {
            return Ok(None);
        }
        let at = (self.now)();
        let actor = Actor {
            id: ActorId(ROUTING_ACTOR),
            role: Role::System,
        };
        let mut context = CommandContext::new(at, command_id, actor, &self.blueprints);
        context.causation_id = Some(cause);
        let events = match domain::decide(command, &ticket, &context) {
            Ok(events) if events.is_empty() => return Ok(None),
            Ok(events) => events,
            Err(rejection) => {
                tracing::warn!(ticket = %ticket_id, command = command.name(), %rejection, "routing command refused");
                return Ok(None);
            }
        };
        let metadata = json!({
            "actor": {"role": "system", "id": ROUTING_ACTOR, "component": "routing", "node": self.node},
            "command": command.name(),
            "command_id": command_id,
            "correlation_id": command_id,
            "causation_id": cause,
            "at": at,
        });
        let metadata = serde_json::value::to_raw_value(&metadata).expect("metadata serializes");
        let new_events = events
            .iter()
            .map(|event| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                payload: serde_json::value::RawValue::from_string(event.to_payload_json())
                    .expect("events serialize to JSON"),
                metadata: metadata.clone(),
            })
            .collect();
        match self
            .store
            .append(
                &stream,
                ExpectedVersion::Exact(version),
                new_events,
                command_id,
            )
            .await
        {
            Ok(outcome) => Ok(Some(outcome)),
            Err(AppendError::WrongExpectedVersion { .. } | AppendError::CommandIdReused { .. }) => {
                Ok(None)
            }
            Err(AppendError::Store(error)) => Err(error.into()),
            Err(AppendError::Invalid(invalid)) => Err(ManagerError::Undecodable {
                ticket: ticket_id,
                message: invalid.to_string(),
            }),
        }
    }

    async fn load(&self, stream: &StreamId, ticket_id: TicketId) -> Result<Ticket, ManagerError> {
        let mut ticket = Ticket::initial();
        loop {
            let page = self
                .store
                .read_stream(stream, ticket.version + 1, store::READ_LIMIT_MAX)
                .await?;
            for record in &page {
                let event =
                    Event::from_stored(&record.event_type, record.schema_version, &record.payload)
                        .map_err(|error| ManagerError::Undecodable {
                            ticket: ticket_id,
                            message: error.to_string(),
                        })?;
                ticket = domain::evolve(ticket, &event);
            }
            if page.len() < store::READ_LIMIT_MAX {
                return Ok(ticket);
            }
        }
    }
}
