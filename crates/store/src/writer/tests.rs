//! The pipelined writer's failure paths, against a database in memory whose every batch waits
//! for the test's word (commit, fail, fail and drop the connection), so that the test decides
//! when batch N finishes while batch N+1 is gathered and planned on it. The fake database checks
//! what the real ones check (the unique indexes on positions, stream versions and command ids)
//! and what they cannot: a plan from memory that claims a position or a stream version past
//! what was committed, a broken hash chain, or a batch sent while another is in the database.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uuid::Uuid;

use super::*;
use crate::hash::{self, HashInput, GENESIS};
use crate::plan::{CommittedCommand, Known, LogHead, Map, StreamHead};
use crate::record::{ExpectedVersion, Hash};

/// What the fake database does with the batch it holds, when the test says.
enum Step {
    /// Wakes the writer without finishing the batch, as a database's answer to one statement
    /// does: the writer then takes and plans what was queued meanwhile.
    Poke(oneshot::Sender<()>),
    Commit,
    Fail(StoreError),
    /// Fails and leaves the connection unusable.
    Drop(StoreError),
}

/// A committed row as the checks compare it: position, stream, version, global hash.
type Row = (u64, String, u64, Hash);

struct Db {
    head: LogHead,
    streams: Map<String, StreamHead>,
    commands: Map<Uuid, CommittedCommand>,
    rows: Vec<Row>,
    /// What no real database would have caught, or what the writer must never do.
    violations: Vec<String>,
    writing: bool,
}

impl Db {
    fn new() -> Db {
        Db {
            head: LogHead::EMPTY,
            streams: Map::default(),
            commands: Map::default(),
            rows: Vec::new(),
            violations: Vec::new(),
            writing: false,
        }
    }

    fn known(&self, appends: &[Append]) -> Known {
        let mut known = Known::default();
        for append in appends {
            if let Some(head) = self.streams.get(append.stream.as_str()) {
                known.streams.insert(append.stream.to_string(), *head);
            }
            if let Some(command) = self.commands.get(&append.command_id) {
                known.commands.insert(append.command_id, command.clone());
            }
        }
        known
    }

    /// Whether the unique indexes let the plan's rows in; what they would let in but is wrong
    /// (a gap, a broken chain) is a violation.
    fn admits(&mut self, plan: &Plan) -> bool {
        let mut streams: Map<&str, StreamHead> = Map::default();
        let mut global = self.head;
        for row in &plan.rows {
            let (append, event) = plan.event_of(row);
            let stream = append.stream.as_str();
            let head = streams
                .get(stream)
                .copied()
                .or_else(|| self.streams.get(stream).copied());
            let version = head.map_or(0, |head| head.version);
            if row.position <= global.position
                || row.stream_version <= version
                || (row.command_index == 0 && self.commands.contains_key(&append.command_id))
            {
                return false;
            }
            if row.position != global.position + 1 || row.stream_version != version + 1 {
                self.violations.push(format!(
                    "row @{} {stream} v{} planned past the database's @{} v{version}",
                    row.position, row.stream_version, global.position
                ));
                return false;
            }
            let stream_hash = hash::stream_hash(
                &head.map_or(GENESIS, |head| head.stream_hash),
                &HashInput {
                    stream_id: stream,
                    stream_version: row.stream_version,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: event.schema_version,
                    recorded_at_micros: row.recorded_at_micros,
                    command_id: append.command_id,
                    payload: event.payload.get().as_bytes(),
                    metadata: event.metadata.get().as_bytes(),
                },
            );
            let global_hash = hash::global_hash(&global.global_hash, row.position, &stream_hash);
            if stream_hash != row.stream_hash || global_hash != row.global_hash {
                self.violations
                    .push(format!("row @{} breaks a hash chain", row.position));
            }
            streams.insert(
                stream,
                StreamHead {
                    version: row.stream_version,
                    stream_hash,
                },
            );
            global.position = row.position;
            global.global_hash = global_hash;
        }
        if (plan.head.position, plan.head.global_hash) != (global.position, global.global_hash) {
            self.violations.push(format!(
                "plan head @{} is not its last row",
                plan.head.position
            ));
        }
        true
    }

    fn apply(&mut self, plan: &Plan) {
        for row in &plan.rows {
            let stream = plan.event_of(row).0.stream.as_str();
            self.rows.push((
                row.position,
                stream.to_owned(),
                row.stream_version,
                row.global_hash,
            ));
            self.streams.insert(
                stream.to_owned(),
                StreamHead {
                    version: row.stream_version,
                    stream_hash: row.stream_hash,
                },
            );
        }
        for (append, outcome) in plan.appends.iter().zip(&plan.outcomes) {
            if let Ok(
                outcome @ AppendOutcome {
                    duplicate: false, ..
                },
            ) = outcome
            {
                self.commands.insert(
                    append.command_id,
                    CommittedCommand {
                        stream_id: append.stream.to_string(),
                        stream_version: outcome.stream_version,
                        first_position: outcome.first_position,
                        last_position: outcome.last_position,
                    },
                );
            }
        }
        self.head = plan.head;
    }

    /// Commits the batch as the real backends do: as planned from memory if the indexes let it
    /// in, or else planned from what the database holds. Returns whether the plan from memory
    /// committed.
    fn commit(&mut self, batch: &mut Batch) -> bool {
        if let Batch::Planned(plan) = batch {
            if self.admits(plan) {
                self.apply(plan);
                return true;
            }
        }
        let appends = batch.take_appends();
        let known = self.known(&appends);
        let plan = batch
            .plan_from_database(appends, Ok((self.head, known)))
            .expect("a look-up that succeeded");
        if !self.admits(plan) {
            self.violations
                .push("a plan from the database was refused".to_owned());
        }
        self.apply(plan);
        false
    }

    /// Appends alone, as if nothing else were queued: the outcome the writer must give.
    fn one(&mut self, append: Append) -> Result<AppendOutcome, AppendError> {
        let known = self.known(std::slice::from_ref(&append));
        let mut plan = plan::plan(self.head, &known, vec![append], now());
        self.apply(&plan);
        plan.outcomes.pop().expect("one append, one outcome")
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// A batch as it reached the fake database.
#[derive(Debug, PartialEq, Eq)]
struct Sent {
    planned: bool,
    appends: usize,
}

struct Conn {
    db: Arc<Mutex<Db>>,
    steps: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Step>>>,
    sent: mpsc::UnboundedSender<Sent>,
}

struct Fake {
    db: Arc<Mutex<Db>>,
    steps: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Step>>>,
    sent: mpsc::UnboundedSender<Sent>,
    /// What each reconnection does: `None` connects.
    connects: Arc<Mutex<VecDeque<Option<StoreError>>>>,
}

impl Fake {
    fn conn(&self) -> Conn {
        Conn {
            db: self.db.clone(),
            steps: self.steps.clone(),
            sent: self.sent.clone(),
        }
    }
}

impl Backend for Fake {
    type Conn = Conn;

    async fn connect(&self) -> Result<Conn, StoreError> {
        let scripted = self.connects.lock().unwrap().pop_front();
        match scripted.expect("the test scripts every reconnection") {
            None => Ok(self.conn()),
            Some(error) => Err(error),
        }
    }

    async fn write(conn: Conn, mut batch: Batch) -> Written<Conn> {
        {
            let mut db = conn.db.lock().unwrap();
            if db.writing {
                db.violations
                    .push("a batch was sent while another was in the database".to_owned());
            }
            db.writing = true;
        }
        let _ = conn.sent.send(Sent {
            planned: matches!(batch, Batch::Planned(_)),
            appends: batch.appends().len(),
        });
        let step = loop {
            let step = conn.steps.lock().await.recv().await;
            match step.expect("the test scripts every batch") {
                Step::Poke(woken) => {
                    let _ = woken.send(());
                }
                step => break step,
            }
        };
        let result = {
            let mut db = conn.db.lock().unwrap();
            db.writing = false;
            match step {
                Step::Commit => Ok(db.commit(&mut batch)),
                Step::Fail(error) => Err(error),
                Step::Drop(error) => {
                    drop(db);
                    return Written {
                        conn: None,
                        batch,
                        result: Err(error),
                    };
                }
                Step::Poke(_) => unreachable!("pokes are answered above"),
            }
        };
        Written {
            conn: Some(conn),
            batch,
            result,
        }
    }
}

/// What became of a batch, for the replies the test expects.
enum Then {
    Committed,
    Failed(StoreError),
}

fn append(stream: &str, expected: ExpectedVersion, command: u128) -> Append {
    plan::tests::append(stream, expected, 2, command)
}

fn render(outcome: &Result<AppendOutcome, AppendError>) -> String {
    match outcome {
        Ok(outcome) => format!("{outcome:?}"),
        Err(AppendError::Store(error)) => format!("store: {error}"),
        Err(error) => error.to_string(),
    }
}

type Queued = (
    (String, ExpectedVersion, u128),
    oneshot::Receiver<Result<AppendOutcome, AppendError>>,
);

struct Harness {
    queue: mpsc::Sender<Msg>,
    steps: mpsc::UnboundedSender<Step>,
    sent: mpsc::UnboundedReceiver<Sent>,
    db: Arc<Mutex<Db>>,
    connects: Arc<Mutex<VecDeque<Option<StoreError>>>>,
    committed: watch::Receiver<u64>,
    tail: broadcast::Receiver<Arc<[Record]>>,
    tailed: Vec<Row>,
    stats: Arc<WriterStats>,
    /// The same appends one at a time, leaving out those of failed batches.
    model: Db,
    commands: u128,
    pending: VecDeque<Queued>,
    settled: usize,
    /// Each flush, with how many appends were queued before it, and whether it was seen
    /// answered.
    flushes: Vec<(usize, oneshot::Receiver<()>, bool)>,
    writer: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start() -> Harness {
        let db = Arc::new(Mutex::new(Db::new()));
        let (steps, script) = mpsc::unbounded_channel();
        let (sent_to, sent) = mpsc::unbounded_channel();
        let connects = Arc::new(Mutex::new(VecDeque::new()));
        let fake = Fake {
            db: db.clone(),
            steps: Arc::new(tokio::sync::Mutex::new(script)),
            sent: sent_to,
            connects: connects.clone(),
        };
        let (queue, receiver) = mpsc::channel(APPEND_QUEUE_MAX);
        let (committed_to, committed) = watch::channel(0);
        let (tail_to, tail) = broadcast::channel(TAIL_BATCHES_MAX);
        let stats = Arc::new(WriterStats::default());
        let conn = fake.conn();
        let writer = tokio::spawn(run(
            fake,
            conn,
            receiver,
            committed_to,
            tail_to,
            stats.clone(),
        ));
        Harness {
            queue,
            steps,
            sent,
            db,
            connects,
            committed,
            tail,
            tailed: Vec::new(),
            stats,
            model: Db::new(),
            commands: 0,
            pending: VecDeque::new(),
            settled: 0,
            flushes: Vec::new(),
            writer,
        }
    }

    /// Queues an append without yielding to the writer.
    fn append(&mut self, stream: &str, expected: ExpectedVersion) {
        self.commands += 1;
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Msg::Append(append(stream, expected, self.commands), reply))
            .unwrap();
        self.pending
            .push_back(((stream.to_owned(), expected, self.commands), answer));
    }

    fn flush(&mut self) -> usize {
        let (done, answered) = oneshot::channel();
        self.queue.try_send(Msg::Flush(done)).unwrap();
        self.flushes
            .push((self.settled + self.pending.len(), answered, false));
        self.flushes.len() - 1
    }

    /// Another writer's append, straight to the database: the writer's memory of the stream
    /// goes stale.
    fn elsewhere(&mut self, stream: &str, expected: ExpectedVersion) {
        self.commands += 1;
        let mut db = self.db.lock().unwrap();
        let written = db.rows.len();
        let outcome = db.one(append(stream, expected, self.commands));
        // Never in this process's tail: followers read these rows from the database.
        self.tailed.extend_from_slice(&db.rows[written..]);
        drop(db);
        assert_eq!(
            render(&outcome),
            render(&self.model.one(append(stream, expected, self.commands)))
        );
    }

    async fn sent(&mut self, planned: bool, appends: usize) {
        let sent = self.sent.recv().await.expect("the writer runs");
        assert_eq!(sent, Sent { planned, appends });
    }

    fn step(&self, step: Step) {
        if self.steps.send(step).is_err() {
            panic!("the fake database stopped listening");
        }
    }

    /// Lets the writer take what was queued while its batch is still in the database. The
    /// tests run on tokio's current-thread runtime (`#[tokio::test]`'s default): the ack wakes
    /// this task, which runs only once the writer's poll has returned, after it took the queue.
    async fn poke(&self) {
        let (woken, ack) = oneshot::channel();
        self.step(Step::Poke(woken));
        ack.await.expect("a batch was in the database");
    }

    /// Awaits the next `appends` replies and checks each against the same append alone (or the
    /// batch's error), then everything that must hold between batches.
    async fn answered(&mut self, appends: usize, then: Then) {
        self.replies(appends, then).await;
        self.check();
    }

    /// Awaits and checks the next `appends` replies only: for batches answered in one go.
    async fn replies(&mut self, appends: usize, then: Then) {
        for _ in 0..appends {
            let ((stream, expected, command), answer) =
                self.pending.pop_front().expect("a reply is awaited");
            let got = answer.await.expect("every append is answered");
            let want = match &then {
                Then::Committed => self.model.one(append(&stream, expected, command)),
                Then::Failed(error) => Err(AppendError::Store(error.clone())),
            };
            assert_eq!(
                render(&got),
                render(&want),
                "the append of command {command}"
            );
            self.settled += 1;
        }
    }

    fn check(&mut self) {
        for (_, answer) in &mut self.pending {
            assert!(
                matches!(answer.try_recv(), Err(TryRecvError::Empty)),
                "an append was answered before the ones queued before it"
            );
        }
        for (before, flushed, seen) in &mut self.flushes {
            if *before > self.settled && !*seen {
                assert!(
                    matches!(flushed.try_recv(), Err(TryRecvError::Empty)),
                    "a flush was answered before the appends queued before it"
                );
            }
        }
        loop {
            match self.tail.try_recv() {
                Ok(records) => self.tailed.extend(records.iter().map(|record| {
                    (
                        record.position,
                        record.stream_id.clone(),
                        record.stream_version,
                        record.global_hash,
                    )
                })),
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(error) => panic!("tail: {error}"),
            }
        }
        let db = self.db.lock().unwrap();
        assert_eq!(db.violations, Vec::<String>::new());
        assert_eq!(self.tailed, db.rows, "the tail is what committed, in order");
        assert_eq!(*self.committed.borrow(), db.head.position);
        let positions: Vec<u64> = db.rows.iter().map(|row| row.0).collect();
        assert_eq!(positions, (1..=db.head.position).collect::<Vec<_>>());
        let model: Vec<_> = self
            .model
            .rows
            .iter()
            .map(|row| (row.0, &row.1, row.2))
            .collect();
        let rows: Vec<_> = db.rows.iter().map(|row| (row.0, &row.1, row.2)).collect();
        assert_eq!(
            rows, model,
            "the log is what the appends make one at a time"
        );
    }

    fn flushed(&mut self, flush: usize) {
        assert_eq!(self.flushes[flush].1.try_recv(), Ok(()), "flush {flush}");
        self.flushes[flush].2 = true;
    }

    async fn flush_answered(&mut self, flush: usize) {
        (&mut self.flushes[flush].1)
            .await
            .expect("flushes are answered");
        self.flushes[flush].2 = true;
    }

    fn nothing_sent(&mut self) {
        if let Ok(sent) = self.sent.try_recv() {
            panic!("sent to the database: {sent:?}");
        }
    }

    /// Commits one append so that memory knows the log head: what follows is planned from it.
    async fn warm(&mut self, stream: &str) {
        self.append(stream, NoStream);
        self.sent(false, 1).await;
        self.step(Step::Commit);
        self.answered(1, Then::Committed).await;
    }

    async fn stop(mut self) {
        // Closes the writer's queue (the sender left in its place is of no queue).
        drop(std::mem::replace(&mut self.queue, mpsc::channel(1).0));
        (&mut self.writer)
            .await
            .expect("the writer ends when its queue closes");
        self.nothing_sent();
        for (flush, (_, flushed, seen)) in self.flushes.iter_mut().enumerate() {
            if !*seen {
                assert_eq!(flushed.try_recv(), Ok(()), "flush {flush} was answered");
            }
        }
        assert!(self.pending.is_empty());
    }
}

fn broken() -> StoreError {
    StoreError::Database {
        message: "disk I/O error".to_owned(),
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable {
        message: "connection reset".to_owned(),
    }
}

use ExpectedVersion::{Any, Exact, NoStream};

#[tokio::test]
async fn a_failed_batch_takes_the_plan_made_on_it_along() {
    let mut h = Harness::start();
    // Two events per append: ticket-1 at version 2, the log at 2.
    h.warm("ticket-1").await;
    h.append("ticket-1", Exact(2));
    h.sent(true, 1).await;
    // Planned on ticket-1 at version 4, which the failure below never writes.
    h.append("ticket-1", Exact(4));
    h.append("ticket-2", NoStream);
    let flush = h.flush();
    h.append("ticket-1", Any);
    h.poke().await;
    h.nothing_sent();
    h.step(Step::Fail(broken()));
    // Memory forgot the log head: the next batch is planned from the database.
    h.sent(false, 3).await;
    h.answered(1, Then::Failed(broken())).await;
    h.step(Step::Commit);
    h.answered(3, Then::Committed).await;
    h.flushed(flush);
    // Planned from memory again, on what the database planned.
    h.append("ticket-2", Exact(2));
    h.append("ticket-1", Exact(4));
    h.sent(true, 2).await;
    h.step(Step::Commit);
    h.answered(2, Then::Committed).await;
    assert_eq!(h.stats.discarded_plans.load(Ordering::Relaxed), 1);
    assert_eq!(h.stats.failed_batches.load(Ordering::Relaxed), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_failed_batch_from_the_database_fails_alone() {
    let mut h = Harness::start();
    h.append("ticket-1", NoStream);
    h.sent(false, 1).await;
    h.append("ticket-1", Exact(2));
    h.poke().await;
    h.step(Step::Fail(broken()));
    h.sent(false, 1).await;
    h.answered(1, Then::Failed(broken())).await;
    h.step(Step::Commit);
    h.answered(1, Then::Committed).await;
    h.stop().await;
}

#[tokio::test]
async fn a_stale_memory_replans_the_batch_planned_on_it() {
    let mut h = Harness::start();
    h.warm("ticket-1").await;
    h.elsewhere("ticket-1", Exact(2));
    // Memory says ticket-1 is at version 1; the database refuses, and plans again.
    h.append("ticket-1", Any);
    h.sent(true, 1).await;
    h.append("ticket-1", Any);
    h.append("ticket-3", NoStream);
    h.poke().await;
    h.step(Step::Commit);
    // Memory now knows the database's plan, and plans the next batch on it.
    h.sent(true, 2).await;
    h.answered(1, Then::Committed).await;
    h.step(Step::Commit);
    h.answered(2, Then::Committed).await;
    assert_eq!(h.stats.discarded_plans.load(Ordering::Relaxed), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_dropped_connection_is_opened_again() {
    let mut h = Harness::start();
    h.warm("ticket-1").await;
    h.append("ticket-1", Exact(2));
    h.sent(true, 1).await;
    h.append("ticket-1", Exact(4));
    let flush = h.flush();
    h.poke().await;
    h.connects.lock().unwrap().push_back(None);
    h.step(Step::Drop(gone()));
    // The failed batch is answered before the next goes out on a new connection.
    h.answered(1, Then::Failed(gone())).await;
    h.sent(false, 1).await;
    h.step(Step::Commit);
    h.answered(1, Then::Committed).await;
    h.flushed(flush);
    h.append("ticket-4", NoStream);
    h.sent(true, 1).await;
    h.step(Step::Commit);
    h.answered(1, Then::Committed).await;
    assert!(h.connects.lock().unwrap().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_failed_reconnection_fails_the_batch_waiting_for_it() {
    let mut h = Harness::start();
    h.warm("ticket-1").await;
    h.append("ticket-1", Exact(2));
    h.sent(true, 1).await;
    h.append("ticket-1", Exact(4));
    h.append("ticket-2", NoStream);
    let flush = h.flush();
    h.poke().await;
    h.connects.lock().unwrap().push_back(Some(gone()));
    h.step(Step::Drop(broken()));
    // Answered in one go, the batch in the database first.
    h.replies(1, Then::Failed(broken())).await;
    h.replies(2, Then::Failed(gone())).await;
    h.check();
    h.flushed(flush);
    h.nothing_sent();
    // The next append finds no connection either, and this time one opens.
    h.connects.lock().unwrap().push_back(None);
    h.append("ticket-2", NoStream);
    h.sent(false, 1).await;
    h.step(Step::Commit);
    h.answered(1, Then::Committed).await;
    assert_eq!(h.stats.failed_batches.load(Ordering::Relaxed), 2);
    h.stop().await;
}

#[tokio::test]
async fn flushes_wait_for_everything_queued_before_them() {
    let mut h = Harness::start();
    let alone = h.flush();
    // Nothing was queued before it: answered without a batch.
    h.flush_answered(alone).await;
    h.append("ticket-1", NoStream);
    h.sent(false, 1).await;
    let behind_first = h.flush();
    h.poke().await;
    h.step(Step::Commit);
    // Only a flush was queued behind the first batch: nothing more goes to the database.
    h.answered(1, Then::Committed).await;
    h.flushed(behind_first);
    h.nothing_sent();
    h.append("ticket-1", Exact(2));
    h.sent(true, 1).await;
    let behind_second = h.flush();
    h.append("ticket-1", Exact(4));
    let behind_third = h.flush();
    h.poke().await;
    h.step(Step::Commit);
    h.sent(true, 1).await;
    h.answered(1, Then::Committed).await;
    h.step(Step::Fail(broken()));
    h.answered(1, Then::Failed(broken())).await;
    h.flushed(behind_second);
    h.flushed(behind_third);
    h.stop().await;
}

#[tokio::test]
async fn memory_keeps_nothing_of_a_plan_made_on_a_failed_batch() {
    let mut h = Harness::start();
    h.warm("ticket-1").await;
    h.append("ticket-1", Exact(2));
    h.sent(true, 1).await;
    // New streams only: memory covers them without the batch in the database.
    h.append("ticket-2", NoStream);
    h.append("ticket-3", NoStream);
    h.poke().await;
    h.step(Step::Fail(broken()));
    // Not on the log head the failed plans left: from the database.
    h.sent(false, 2).await;
    h.answered(1, Then::Failed(broken())).await;
    h.step(Step::Fail(broken()));
    h.answered(2, Then::Failed(broken())).await;
    h.warm("ticket-4").await;
    // Memory must not remember ticket-2 at the version the first plan gave it.
    h.append("ticket-2", Any);
    h.sent(false, 1).await;
    h.step(Step::Commit);
    h.answered(1, Then::Committed).await;
    h.stop().await;
}
