//! The trigger manager: a process manager that follows the log, evaluates the triggers on every
//! ticket event, and appends what fires through the domain's decider as the system role.
//!
//! Exactly once, in effect: a firing is appended with a command id derived from the trigger id
//! and the causing event's id, so the store writes it at most once whatever happens (a crash
//! before the checkpoint, two nodes following the same log); the checkpoint only saves work.
//! Conditions see the ticket as of the causing event (so a replay decides the same), actions are
//! decided on the ticket as it is now (so an action that is already true changes nothing).
//! Time is the causing event's time, never a clock read.
//!
//! Chains: an event appended by a trigger carries `automation.depth` in its metadata (1 for a
//! firing caused by a person's event); an event at depth `CHAIN_DEPTH_MAX` fires nothing more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::{Actor, ActorId, BlueprintCatalog, CommandContext, Event, Role, Ticket, TicketId};
use jiff::Timestamp;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use store::{AppendError, ExpectedVersion, NewEvent, Record, Store, StoreError, StreamId};
use tokio::sync::watch;
use uuid::Uuid;

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::config::Automation;
use crate::template::TemplateValues;
use crate::trigger::{Facts, CHAIN_DEPTH_MAX};
use crate::webhook::WebhookRequests;

/// The checkpoint row of the trigger manager.
pub const CHECKPOINT_NAME: &str = "triggers";
/// Save the checkpoint after this many records…
pub const CHECKPOINT_EVERY_RECORDS: u64 = 1_000;
/// …or when the log has been quiet this long.
pub const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);
/// How often a firing is decided again after losing a race with another writer.
pub const APPEND_ATTEMPTS_MAX: usize = 5;
/// The longest the manager waits before retrying after a database error.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(5);

/// How often a record is tried when it fails for a reason other than the database (it does not
/// decode, the store refuses what it decided) before it is logged, counted and skipped.
pub const RECORD_ATTEMPTS_MAX: u32 = 5;

/// The actor id automations act as (role `system`).
pub const AUTOMATION_ACTOR: Uuid = Uuid::from_u128(0x0a07_0a07_0000_4000_8000_0000_0000_0001);

/// Why handling a record failed; the manager retries the same record.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    #[error("append: {0}")]
    Append(#[from] AppendError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("record at position {position} does not decode: {message}")]
    Corrupt { position: u64, message: String },
}

impl ManagerError {
    /// A failure of the database (or a lost race): retrying the same record later may succeed.
    /// Anything else fails the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            ManagerError::Store(_) | ManagerError::Checkpoint(_) => true,
            ManagerError::Append(error) => matches!(
                error,
                AppendError::Store(_) | AppendError::WrongExpectedVersion { .. }
            ),
            ManagerError::Corrupt { .. } => false,
        }
    }
}

/// What the manager has done, for metrics and tests.
#[derive(Debug, Default)]
pub struct ManagerStats {
    pub position: AtomicU64,
    pub firings: AtomicU64,
    pub appended: AtomicU64,
    pub unchanged: AtomicU64,
    pub rejected: AtomicU64,
    pub depth_limited: AtomicU64,
    /// Checkpoint saves that failed (logged; the next save tries again).
    pub checkpoint_failures: AtomicU64,
    /// Records skipped after `RECORD_ATTEMPTS_MAX` failures that were not the database's.
    pub skipped: AtomicU64,
}

/// The deterministic command id of a trigger firing on an event.
pub fn firing_command_id(trigger_id: &str, event_id: Uuid) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"docket-trigger\0")
        .chain_update(trigger_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(event_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[derive(Clone, Debug, Default)]
struct Person {
    name: Option<String>,
    email: Option<String>,
    tier: Option<String>,
}

/// The trigger manager's state: what it knows of people, and where it is in the log.
#[derive(Debug)]
pub struct TriggerManager {
    store: Store,
    automation: Arc<Automation>,
    blueprints: Arc<BlueprintCatalog>,
    people: HashMap<Uuid, Person>,
    webhooks: Option<WebhookRequests>,
    stats: Arc<ManagerStats>,
}

impl TriggerManager {
    pub fn new(
        store: Store,
        automation: Arc<Automation>,
        blueprints: Arc<BlueprintCatalog>,
        webhooks: Option<WebhookRequests>,
    ) -> TriggerManager {
        TriggerManager {
            store,
            automation,
            blueprints,
            people: HashMap::new(),
            webhooks,
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<ManagerStats> {
        self.stats.clone()
    }

    /// Counts into `stats` instead of counters of its own: `docket serve` gives every manager
    /// it restarts the same ones, which `/metrics` shows.
    pub fn with_stats(self, stats: Arc<ManagerStats>) -> TriggerManager {
        TriggerManager { stats, ..self }
    }

    /// Follows the log from the saved checkpoint forever, saving it as it goes. Directory
    /// records before the checkpoint are read again first, so that tiers and names are known.
    pub async fn run(self) -> Result<(), ManagerError> {
        let (_never, stop) = watch::channel(false);
        self.run_until(stop).await
    }

    /// `run` until `stop` turns true (or its sender goes away): then saves the checkpoint at
    /// the last record handled and returns `Ok`, so that the next start does not handle again
    /// what this one did. A record being handled is finished first unless it is waiting to be
    /// retried.
    pub async fn run_until(mut self, mut stop: watch::Receiver<bool>) -> Result<(), ManagerError> {
        let checkpoints = Checkpoints::open(&self.store).await?;
        let start = checkpoints.load(CHECKPOINT_NAME).await?;
        self.learn_people_until(start).await?;
        // Everything up to the checkpoint was handled before: the lag starts from there.
        self.stats.position.store(start, Ordering::Relaxed);
        let mut subscription = self.store.subscribe(start);
        let mut saved = start;
        let mut position = start;
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => {
                    if position > saved {
                        self.save(&checkpoints, position).await;
                    }
                    return Ok(());
                }
                next = tokio::time::timeout(CHECKPOINT_IDLE, subscription.next()) => next,
            };
            let record = match next {
                Err(_elapsed) => {
                    if position > saved && self.save(&checkpoints, position).await {
                        saved = position;
                    }
                    continue;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "trigger manager: reading the log failed; retrying");
                    tokio::select! {
                        _ = stop.wait_for(|stop| *stop) => {}
                        () = tokio::time::sleep(RETRY_DELAY_MAX) => {}
                    }
                    continue;
                }
                Ok(Ok(record)) => record,
            };
            let mut delay = Duration::from_millis(100);
            let mut failures = 0;
            while let Err(error) = self.handle(&record).await {
                if !error.is_transient() {
                    failures += 1;
                    if failures >= RECORD_ATTEMPTS_MAX {
                        tracing::error!(%error, position = record.position, event_type = %record.event_type, "trigger manager: skipping a record that keeps failing");
                        self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                tracing::warn!(%error, position = record.position, "trigger manager: retrying a record");
                let stopping = tokio::select! {
                    _ = stop.wait_for(|stop| *stop) => true,
                    () = tokio::time::sleep(delay) => false,
                };
                if stopping {
                    // This record is not handled: the checkpoint stays before it.
                    if position > saved {
                        self.save(&checkpoints, position).await;
                    }
                    return Ok(());
                }
                delay = (delay * 2).min(RETRY_DELAY_MAX);
            }
            position = record.position;
            self.stats.position.store(position, Ordering::Relaxed);
            if position - saved >= CHECKPOINT_EVERY_RECORDS
                && self.save(&checkpoints, position).await
            {
                saved = position;
            }
        }
    }

    /// Saves the checkpoint; a failure is logged and counted, and the next save tries again
    /// (a checkpoint only saves work: the records after it are handled again, idempotently).
    async fn save(&self, checkpoints: &Checkpoints, position: u64) -> bool {
        match checkpoints.save(CHECKPOINT_NAME, position).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, position, "trigger manager: saving the checkpoint failed; carrying on");
                self.stats
                    .checkpoint_failures
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    async fn learn_people_until(&mut self, end: u64) -> Result<(), ManagerError> {
        let mut after = 0;
        while after < end {
            let page = self.store.read_all(after, store::READ_LIMIT_MAX).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            for record in page.iter().filter(|record| record.position <= end) {
                self.learn_person(record);
            }
        }
        Ok(())
    }

    fn learn_person(&mut self, record: &Record) {
        let (id_key, is_customer) = match record.event_type.as_str() {
            "CustomerRegistered" => ("customer_id", true),
            "AgentRegistered" => ("agent_id", false),
            _ => return,
        };
        let Ok(payload) = serde_json::from_str::<Value>(&record.payload) else {
            return;
        };
        let Some(id) = payload[id_key]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
        else {
            return;
        };
        let person = Person {
            name: payload["pii"]["name"].as_str().map(str::to_owned),
            email: payload["pii"]["email"].as_str().map(str::to_owned),
            tier: is_customer
                .then(|| payload["tier"].as_str().map(str::to_owned))
                .flatten(),
        };
        self.people.insert(id, person);
    }

    /// Handles one record of the log: learns people, and fires the triggers of a ticket event.
    pub async fn handle(&mut self, record: &Record) -> Result<(), ManagerError> {
        self.learn_person(record);
        if record.category != "ticket" || !self.automation.triggers.listens_to(&record.event_type) {
            return Ok(());
        }
        let metadata: Value = serde_json::from_str(&record.metadata).unwrap_or(Value::Null);
        let depth = metadata["automation"]["depth"].as_u64().unwrap_or(0);
        if depth >= u64::from(CHAIN_DEPTH_MAX) {
            self.stats.depth_limited.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                position = record.position,
                depth,
                "trigger chain reached its depth limit; no triggers fire on this event"
            );
            return Ok(());
        }
        let corrupt = |message: String| ManagerError::Corrupt {
            position: record.position,
            message,
        };
        let stream = StreamId::new(record.stream_id.clone()).map_err(|e| corrupt(e.to_string()))?;
        let ticket_id = record
            .stream_id
            .strip_prefix("ticket-")
            .and_then(|id| Uuid::parse_str(id).ok())
            .map(TicketId)
            .ok_or_else(|| corrupt(format!("stream {} is not a ticket", record.stream_id)))?;
        let mut created_pii = None;
        let (ticket, event) = {
            let mut ticket = Ticket::initial();
            let mut last = None;
            while ticket.version < record.stream_version {
                let want =
                    usize::try_from(record.stream_version - ticket.version).unwrap_or(usize::MAX);
                let page = self
                    .store
                    .read_stream(&stream, ticket.version + 1, want)
                    .await?;
                if page.is_empty() {
                    return Err(corrupt(
                        "the ticket stream is shorter than its event".to_owned(),
                    ));
                }
                for stored in &page {
                    let event = decode(stored).map_err(corrupt)?;
                    if let Event::TicketCreated(created) = &event {
                        created_pii = Some(created.pii.clone());
                    }
                    ticket = domain::evolve(ticket, &event);
                    last = Some(event);
                }
            }
            (ticket, last.ok_or_else(|| corrupt("no event".to_owned()))?)
        };
        let Some(details) = ticket.details.as_ref() else {
            return Ok(());
        };
        let at = metadata["at"]
            .as_str()
            .and_then(|at| at.parse::<Timestamp>().ok())
            .unwrap_or(record.recorded_at);
        let requester = self.people.get(&details.requester.0);
        let values = TemplateValues {
            customer_name: requester
                .and_then(|person| person.name.clone())
                .or_else(|| {
                    created_pii
                        .as_ref()
                        .and_then(|pii| pii.requester_name.clone())
                }),
            customer_email: requester
                .and_then(|person| person.email.clone())
                .or_else(|| {
                    created_pii
                        .as_ref()
                        .and_then(|pii| pii.requester_email.clone())
                }),
            ticket_number: Some(details.number.0),
            ticket_subject: Some(details.subject.clone()),
            agent_name: details
                .assignee
                .and_then(|agent| self.people.get(&agent.0))
                .and_then(|person| person.name.clone()),
        };
        // Evaluated and planned before any await, into owned values: nothing borrowed from the
        // configuration lives across an await point.
        let planned: Vec<(String, Vec<crate::trigger::Evidence>, Result<_, _>)> = {
            let facts = Facts {
                event: &event,
                ticket: details,
                customer_tier: requester.and_then(|person| person.tier.as_deref()),
                at,
            };
            self.automation
                .triggers
                .evaluate(&facts)
                .into_iter()
                .map(|firing| {
                    let plan = firing.plan(&self.automation.macros, &values);
                    (firing.trigger.id.clone(), firing.evidence, plan)
                })
                .collect()
        };
        if planned.is_empty() {
            return Ok(());
        }
        let correlation_id = metadata["correlation_id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .unwrap_or(record.event_id);
        let mut current = ticket.clone();
        for (trigger_id, evidence, plan) in planned {
            self.stats.firings.fetch_add(1, Ordering::Relaxed);
            let plan: crate::trigger::Plan = match plan {
                Ok(plan) => plan,
                Err(error) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, trigger = %trigger_id, position = record.position, "trigger cannot fire");
                    continue;
                }
            };
            let provenance = json!({
                "trigger": trigger_id,
                "evidence": evidence,
                "depth": depth + 1,
                "cause": {"event_id": record.event_id, "position": record.position, "event_type": record.event_type},
            });
            if let Some(webhooks) = &self.webhooks {
                for name in &plan.webhooks {
                    webhooks.request(name, record, &trigger_id).await?;
                }
            }
            if plan.commands.is_empty() {
                continue;
            }
            let command_id = firing_command_id(&trigger_id, record.event_id);
            let actor = Actor {
                id: ActorId(AUTOMATION_ACTOR),
                role: Role::System,
            };
            let mut context = CommandContext::new(at, command_id, actor, &self.blueprints);
            context.correlation_id = correlation_id;
            context.causation_id = Some(record.event_id);
            let mut attempts = 0;
            loop {
                attempts += 1;
                current = catch_up(&self.store, &stream, current).await?;
                let events = match crate::sequence::decide_sequence(
                    &plan.commands,
                    &current,
                    &context,
                ) {
                    Ok(events) => events,
                    Err(rejection) => {
                        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%rejection, trigger = %trigger_id, ticket = %ticket_id, "trigger actions refused");
                        break;
                    }
                };
                if events.is_empty() {
                    self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                let metadata = json!({
                    "actor": {"role": "system", "id": AUTOMATION_ACTOR, "name": "automation"},
                    "command": "trigger",
                    "command_id": command_id,
                    "correlation_id": correlation_id,
                    "causation_id": record.event_id,
                    "at": at,
                    "automation": provenance,
                });
                let metadata = serde_json::value::to_raw_value(&metadata)
                    .map_err(|e| corrupt(e.to_string()))?;
                let new_events = events
                    .iter()
                    .map(|event| {
                        Ok(NewEvent {
                            event_id: Uuid::now_v7(),
                            event_type: event.event_type().to_owned(),
                            schema_version: event.schema_version(),
                            payload: serde_json::value::RawValue::from_string(
                                event.to_payload_json(),
                            )?,
                            metadata: metadata.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, serde_json::Error>>()
                    .map_err(|e| corrupt(e.to_string()))?;
                let expected = ExpectedVersion::Exact(current.version);
                match self
                    .store
                    .append(&stream, expected, new_events, command_id)
                    .await
                {
                    Ok(outcome) => {
                        if !outcome.duplicate {
                            self.stats.appended.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    Err(AppendError::WrongExpectedVersion { .. })
                        if attempts < APPEND_ATTEMPTS_MAX =>
                    {
                        continue
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Ok(())
    }
}

/// Folds the records of `stream` after `ticket.version` into it.
async fn catch_up(
    store: &Store,
    stream: &StreamId,
    mut ticket: Ticket,
) -> Result<Ticket, ManagerError> {
    loop {
        let page = store
            .read_stream(stream, ticket.version + 1, store::READ_LIMIT_MAX)
            .await?;
        for record in &page {
            let event = decode(record).map_err(|message| ManagerError::Corrupt {
                position: record.position,
                message,
            })?;
            ticket = domain::evolve(ticket, &event);
        }
        if page.len() < store::READ_LIMIT_MAX {
            return Ok(ticket);
        }
    }
}

fn decode(record: &Record) -> Result<Event, String> {
    Event::from_stored(&record.event_type, record.schema_version, &record.payload)
        .map_err(|error| format!("{} v{}: {error}", record.event_type, record.schema_version))
}
