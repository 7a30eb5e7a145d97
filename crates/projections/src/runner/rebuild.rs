//! The rebuild pipeline: folds pages of the log into all six read models on long-lived worker
//! threads while the runner reads the next pages.
//!
//! Each page is cut into tasks: decoding a chunk of its records (any worker, any order), and
//! three fold chains (tickets; reports; queues, SLA, customers and agent load: about a third of
//! the fold each). A chain folds page n only after it folded page n - 1 and after every chunk of
//! page n is decoded, so each model still sees every event in log order and the result is the
//! one `AllModels::apply` gives record by record. Which worker runs a task is decided when a
//! worker is free, so neither core waits for the other while any task is ready (the pipeline it
//! replaced decoded both halves of a page, then folded the tickets beside the five other models,
//! then dropped the page, each step waiting for the slower thread). A page leaves the pipeline,
//! and is dropped by the worker that finished its last fold, once all three chains folded it.
//!
//! Each chain's models sit behind a mutex that is never contended: the schedule hands a chain to
//! one worker at a time. A worker that panics (a fold's assertion) marks the pipeline failed, so
//! that neither the others nor the reader wait for it; `finish` then resumes the panic.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use store::RecordPage;

use crate::{AgentLoad, Customers, Projection, Queues, Reports, SlaView, TicketEvent, Tickets};

/// Pages handed to the workers and not yet folded into every model: how far the read runs
/// ahead of the folds (a page of `REBUILD_PAGE_MAX` records is a few MiB, decoded about as
/// much again).
pub const PIPELINE_PAGES_MAX: usize = 4;
/// Records decoded per task: small enough that both workers decode a page together, large
/// enough that scheduling is nothing beside it (a task takes a few hundred microseconds).
pub const DECODE_CHUNK_RECORDS: usize = 1_000;
/// Worker threads at most (there are three fold chains; more only decode).
pub const REBUILD_WORKERS_MAX: usize = 4;

/// Tickets; reports; queues, SLA, customers and agent load.
const CHAINS: usize = 3;

/// The models other than tickets and reports, folded together as one chain.
#[derive(Debug, Default)]
struct Rest {
    queues: Queues,
    sla: SlaView,
    customers: Customers,
    agents: AgentLoad,
}

#[derive(Debug, Default)]
struct Models {
    tickets: Mutex<Tickets>,
    reports: Mutex<Reports>,
    rest: Mutex<Rest>,
}

/// The decoded events of a page, chunk by chunk, in order (`None`: not a ticket event).
type Decoded = Vec<Vec<Option<TicketEvent>>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FoldState {
    Waiting,
    Running,
    Done,
}

#[derive(Debug)]
struct InFlight {
    page: Arc<RecordPage>,
    chunks: usize,
    chunks_started: usize,
    chunks_done: usize,
    /// By chunk, filled as chunks are decoded; moved into `events` once all are.
    decoded: Vec<Option<Vec<Option<TicketEvent>>>>,
    events: Option<Arc<Decoded>>,
    folds: [FoldState; CHAINS],
    last_position: u64,
}

#[derive(Debug, Default)]
struct Schedule {
    pages: VecDeque<InFlight>,
    /// The sequence number of `pages.front()`.
    first: u64,
    /// No more pages will come.
    closed: bool,
    /// A worker panicked.
    failed: bool,
    /// The last position folded into every model.
    folded_position: u64,
}

enum Task {
    Decode {
        sequence: u64,
        page: Arc<RecordPage>,
        chunk: usize,
    },
    Fold {
        sequence: u64,
        chain: usize,
        events: Arc<Decoded>,
    },
}

enum Finished {
    Decoded {
        sequence: u64,
        chunk: usize,
        events: Vec<Option<TicketEvent>>,
    },
    Folded {
        sequence: u64,
        chain: usize,
    },
}

impl Schedule {
    fn page_mut(&mut self, sequence: u64) -> &mut InFlight {
        let index = usize::try_from(sequence - self.first).expect("fewer pages than usize::MAX");
        &mut self.pages[index]
    }

    /// The next task, if one is ready: the oldest page's fold of each chain first (it frees a
    /// page and lets the chain go on), then the oldest chunk not yet decoded.
    fn next_task(&mut self) -> Option<Task> {
        for chain in 0..CHAINS {
            let next = self
                .pages
                .iter()
                .position(|page| page.folds[chain] != FoldState::Done);
            let Some(index) = next else { continue };
            let page = &mut self.pages[index];
            if page.folds[chain] != FoldState::Waiting {
                continue;
            }
            if let Some(events) = &page.events {
                page.folds[chain] = FoldState::Running;
                return Some(Task::Fold {
                    sequence: self.first + index as u64,
                    chain,
                    events: events.clone(),
                });
            }
        }
        let first = self.first;
        self.pages
            .iter_mut()
            .enumerate()
            .find(|(_, page)| page.chunks_started < page.chunks)
            .map(|(index, page)| {
                let chunk = page.chunks_started;
                page.chunks_started += 1;
                Task::Decode {
                    sequence: first + index as u64,
                    page: page.page.clone(),
                    chunk,
                }
            })
    }

    /// Records a finished task; returns the pages it retired, for the caller to drop outside
    /// the lock.
    fn finish(&mut self, finished: Finished) -> Vec<InFlight> {
        match finished {
            Finished::Decoded {
                sequence,
                chunk,
                events,
            } => {
                let page = self.page_mut(sequence);
                page.decoded[chunk] = Some(events);
                page.chunks_done += 1;
                if page.chunks_done == page.chunks {
                    let decoded = page
                        .decoded
                        .iter_mut()
                        .map(|chunk| chunk.take().expect("every chunk is decoded"))
                        .collect();
                    page.events = Some(Arc::new(decoded));
                }
                Vec::new()
            }
            Finished::Folded { sequence, chain } => {
                self.page_mut(sequence).folds[chain] = FoldState::Done;
                let mut retired = Vec::new();
                while self
                    .pages
                    .front()
                    .is_some_and(|page| page.folds.iter().all(|fold| *fold == FoldState::Done))
                {
                    let page = self.pages.pop_front().expect("a front page");
                    self.first += 1;
                    self.folded_position = page.last_position;
                    retired.push(page);
                }
                retired
            }
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    schedule: Mutex<Schedule>,
    /// Signalled whenever the schedule changes: a task may be ready, or a page's room free.
    changed: Condvar,
    models: Models,
}

impl Shared {
    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        // Tasks run outside this lock, so it is never poisoned by a fold; a poisoned lock would
        // only mean a panic in the scheduling itself, whose state is still consistent.
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, task: Task) -> Finished {
        match task {
            Task::Decode {
                sequence,
                page,
                chunk,
            } => {
                let start = chunk * DECODE_CHUNK_RECORDS;
                let end = (start + DECODE_CHUNK_RECORDS).min(page.len());
                let events = (start..end)
                    .map(|index| TicketEvent::decode(page.get(index).expect("an index below len")))
                    .collect();
                Finished::Decoded {
                    sequence,
                    chunk,
                    events,
                }
            }
            Task::Fold {
                sequence,
                chain,
                events,
            } => {
                let events = events.iter().flatten().flatten();
                match chain {
                    0 => {
                        let mut tickets = self.models.tickets.lock().unwrap_or_else(poisoned);
                        for event in events {
                            tickets.apply_event(event);
                        }
                    }
                    1 => {
                        let mut reports = self.models.reports.lock().unwrap_or_else(poisoned);
                        for event in events {
                            reports.apply_event(event);
                        }
                    }
                    _ => {
                        let mut rest = self.models.rest.lock().unwrap_or_else(poisoned);
                        let Rest {
                            queues,
                            sla,
                            customers,
                            agents,
                        } = &mut *rest;
                        for event in events {
                            queues.apply_event(event);
                            sla.apply_event(event);
                            customers.apply_event(event);
                            agents.apply_event(event);
                        }
                    }
                }
                Finished::Folded { sequence, chain }
            }
        }
    }

    /// A worker: runs ready tasks until the pipeline is closed and empty, or failed.
    fn work(&self) {
        let _failing = FailOnPanic(self);
        let mut schedule = self.schedule();
        loop {
            if schedule.failed {
                return;
            }
            if let Some(task) = schedule.next_task() {
                drop(schedule);
                let finished = self.run(task);
                let retired = {
                    let mut schedule = self.schedule();
                    let retired = schedule.finish(finished);
                    self.changed.notify_all();
                    retired
                };
                // Freeing a page's records and events takes a while: not under the lock.
                drop(retired);
                schedule = self.schedule();
            } else if schedule.closed && schedule.pages.is_empty() {
                return;
            } else {
                schedule = self
                    .changed
                    .wait(schedule)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

/// A model's lock is poisoned only by a fold that panicked, whose panic `finish` reports (or a
/// test): a worker that finds one stops too.
fn poisoned<T>(error: PoisonError<T>) -> T {
    panic!("a fold into this model panicked before: {error}")
}

/// Marks the pipeline failed when its worker unwinds, so that nobody waits for it.
struct FailOnPanic<'a>(&'a Shared);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.schedule().failed = true;
            self.0.changed.notify_all();
        }
    }
}

/// Folds pages handed to it into every read model, on worker threads (see the module's
/// documentation).
#[derive(Debug)]
pub(crate) struct RebuildPipeline {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl RebuildPipeline {
    /// Starts the workers over empty models in replay mode.
    pub(crate) fn start() -> std::io::Result<RebuildPipeline> {
        let shared = Arc::new(Shared::default());
        {
            let models = &shared.models;
            models
                .tickets
                .lock()
                .unwrap_or_else(poisoned)
                .begin_replay();
            models
                .reports
                .lock()
                .unwrap_or_else(poisoned)
                .begin_replay();
            let mut rest = models.rest.lock().unwrap_or_else(poisoned);
            rest.queues.begin_replay();
            rest.sla.begin_replay();
            rest.customers.begin_replay();
            rest.agents.begin_replay();
        }
        let count = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(1, REBUILD_WORKERS_MAX);
        let mut pipeline = RebuildPipeline {
            shared,
            workers: Vec::with_capacity(count),
        };
        for index in 0..count {
            let shared = pipeline.shared.clone();
            let worker = std::thread::Builder::new()
                .name(format!("docket-rebuild-{index}"))
                .spawn(move || shared.work());
            match worker {
                Ok(worker) => pipeline.workers.push(worker),
                // Dropping the pipeline stops and joins the workers already started.
                Err(error) => return Err(error),
            }
        }
        Ok(pipeline)
    }

    /// Hands a page over, waiting while `PIPELINE_PAGES_MAX` pages are in flight. The caller
    /// checks that pages come in order.
    pub(crate) fn submit(&self, page: RecordPage) {
        let Some(last_position) = page.last_position() else {
            return;
        };
        let chunks = page.len().div_ceil(DECODE_CHUNK_RECORDS);
        let mut schedule = self.shared.schedule();
        while schedule.pages.len() >= PIPELINE_PAGES_MAX && !schedule.failed {
            schedule = self
                .shared
                .changed
                .wait(schedule)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if schedule.failed {
            // `finish` reports the panic.
            return;
        }
        schedule.pages.push_back(InFlight {
            page: Arc::new(page),
            chunks,
            chunks_started: 0,
            chunks_done: 0,
            decoded: (0..chunks).map(|_| None).collect(),
            events: None,
            folds: [FoldState::Waiting; CHAINS],
            last_position,
        });
        self.shared.changed.notify_all();
    }

    /// The last position folded into every model.
    pub(crate) fn folded_position(&self) -> u64 {
        self.shared.schedule().folded_position
    }

    /// Waits for every page handed over to be folded, stops the workers and returns the
    /// models, still in replay mode: `(tickets, reports, queues, sla, customers, agents)`.
    /// Resumes a worker's panic.
    pub(crate) fn finish(mut self) -> (Tickets, Reports, Queues, SlaView, Customers, AgentLoad) {
        self.close();
        for worker in self.workers.drain(..) {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        let shared = std::mem::take(&mut self.shared);
        let shared = Arc::into_inner(shared).expect("the workers have stopped");
        let Models {
            tickets,
            reports,
            rest,
        } = shared.models;
        let Rest {
            queues,
            sla,
            customers,
            agents,
        } = rest.into_inner().unwrap_or_else(poisoned);
        (
            tickets.into_inner().unwrap_or_else(poisoned),
            reports.into_inner().unwrap_or_else(poisoned),
            queues,
            sla,
            customers,
            agents,
        )
    }

    fn close(&self) {
        self.shared.schedule().closed = true;
        self.shared.changed.notify_all();
    }
}

impl Drop for RebuildPipeline {
    /// A rebuild given up (the read failed): the workers fold what they have, then stop.
    fn drop(&mut self) {
        self.close();
        for worker in self.workers.drain(..) {
            // A worker's panic is only reported by `finish`; here the rebuild is abandoned.
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    /// Pages cut at odd sizes (a partial decode chunk, pages smaller than a chunk), folded by
    /// the pipeline, give the models a record-by-record fold gives.
    #[test]
    fn the_pipeline_folds_like_one_record_at_a_time() {
        let mut config = synth::SynthConfig::small(11, 400);
        config.concurrent_tickets = 80;
        let records = synth::records(synth::history(config));
        let mut one_by_one = crate::runner::AllModels::default();
        one_by_one.begin_replay();
        for record in &records {
            one_by_one.apply(record.view());
        }
        one_by_one.finish_replay();

        let pipeline = RebuildPipeline::start().expect("starting workers");
        let mut start = 0;
        for size in [1, DECODE_CHUNK_RECORDS + 7, 3, 2 * DECODE_CHUNK_RECORDS]
            .into_iter()
            .cycle()
        {
            let end = (start + size).min(records.len());
            pipeline.submit(RecordPage::from_records(&records[start..end]));
            start = end;
            if start == records.len() {
                break;
            }
        }
        let (mut tickets, mut reports, mut queues, mut sla, mut customers, mut agents) =
            pipeline.finish();
        tickets.finish_replay();
        reports.finish_replay();
        queues.finish_replay();
        sla.finish_replay();
        customers.finish_replay();
        agents.finish_replay();
        assert!(tickets == one_by_one.tickets, "tickets");
        assert!(reports == one_by_one.reports, "reports");
        assert!(queues == one_by_one.queues, "queues");
        assert!(sla == one_by_one.sla, "sla");
        assert!(customers == one_by_one.customers, "customers");
        assert!(agents == one_by_one.agents, "agent load");
    }

    #[test]
    fn a_panicking_fold_is_resumed_by_finish_and_stops_the_reader_waiting() {
        let mut config = synth::SynthConfig::small(12, 50);
        config.concurrent_tickets = 10;
        let records = synth::records(synth::history(config));
        let pipeline = RebuildPipeline::start().expect("starting workers");
        // Poison the tickets chain: a worker that folds into it panics.
        {
            let shared = pipeline.shared.clone();
            let _ = std::thread::spawn(move || {
                let _tickets = shared.models.tickets.lock();
                panic!("poisoning the tickets model");
            })
            .join();
        }
        for _ in 0..3 * PIPELINE_PAGES_MAX {
            pipeline.submit(RecordPage::from_records(&records));
        }
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.finish()));
        assert!(finished.is_err(), "the fold's panic reaches the caller");
    }
}
