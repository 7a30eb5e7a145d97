//! Replay benchmark of the read side: appends a realistic synthetic history to a scratch SQLite
//! store, then measures, in the same run, the raw read rate of the log (the replay read, rows
//! stepped through `rusqlite`: the fastest way out of the database, with every field touched
//! and nothing decoded; the SQL-packed read replay used before it, and the row-by-row
//! `read_all`, for comparison), the rebuild of all projections from the log in one
//! pass (`AllModels::fold`: read + decode once + fold into all six, what
//! `Projections::rebuild_all` runs), the fold rate of each projection, memory per ticket, and
//! query latencies (next in queue, filtered list, text search, a one-month report). Every rate
//! comes with the CPU time it took per event (all threads of the process, the database's
//! worker included), since wall-clock time on a shared machine is noisy.
//!
//! `cargo bench -p projections --bench replay`; `DOCKET_BENCH_EVENTS=N` sets the size (default
//! 100,000 events, about 10 per ticket); `DOCKET_BENCH_FULL=1` runs 1,000,000 tickets (about ten
//! million events); `DOCKET_BENCH_REBUILDS=N` rebuilds N times; `DOCKET_BENCH_HISTORY=PATH`
//! keeps the history in that SQLite file and reuses it on the next run of the same size;
//! `DOCKET_BENCH_REBUILD_ONLY=1` measures the raw read and the rebuild beside it, nothing else.
//! It measures and prints; it never asserts a time.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on stdout"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use domain::StateCategory;
use projections::queues::QueueId;
use projections::reports::ReportQuery;
use projections::runner::AllModels;
use projections::synth::{self, SynthConfig};
use projections::tickets::{ListQuery, TicketFilter, TicketSort};
use projections::{AgentLoad, Customers, Projection, Queues, Reports, SlaView, Tickets};
use store::scratch::ScratchDb;
use store::Store;

/// The allocator the `docket` binary runs with, since `docket projections rebuild` is what this
/// measures: mimalloc, built without transparent huge pages (with them a rebuild costs about 1 µs
/// more CPU per event; glibc's costs the same as mimalloc without; docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per ticket in the synthetic history, on average (measured: about 10).
const EVENTS_PER_TICKET: u64 = 10;
/// Records kept in memory for the per-projection fold figures.
const CACHED_RECORDS_MAX: usize = 200_000;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn rate(events: u64, elapsed: Duration) -> String {
    format!("{:>12.0} events/s", events as f64 / elapsed.as_secs_f64())
}

/// Wall-clock latencies of a query, and the CPU time all of them took.
struct Samples {
    wall: Vec<Duration>,
    cpu: Duration,
}

fn percentiles(samples: Samples) -> String {
    let Samples { mut wall, cpu } = samples;
    wall.sort();
    let at = |percent: usize| wall[(wall.len() * percent / 100).min(wall.len() - 1)];
    format!(
        "p50 {:>9.1} µs  p99 {:>9.1} µs  CPU {:>9.1} µs/query  ({} samples)",
        at(50).as_secs_f64() * 1e6,
        at(99).as_secs_f64() * 1e6,
        cpu.as_secs_f64() * 1e6 / wall.len().max(1) as f64,
        wall.len()
    )
}

fn time<T>(samples: usize, mut query: impl FnMut(usize) -> T) -> Samples {
    let cpu = cpu_time();
    let wall = (0..samples)
        .map(|index| {
            let started = Instant::now();
            black_box(query(index));
            started.elapsed()
        })
        .collect();
    Samples {
        wall,
        cpu: cpu_time().saturating_sub(cpu),
    }
}

/// CPU time of the whole process so far (user + system, all threads), from /proc.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .rsplit_once(") ")?
                .1
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|field| field.parse().ok())
                .collect();
            Some(fields.iter().sum::<u64>())
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Wall-clock and CPU time of a section.
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    /// "N events/s, C µs CPU per event".
    fn rate(&self, events: u64) -> String {
        let cpu = cpu_time().saturating_sub(self.cpu);
        format!(
            "{}  {:>6.2} µs CPU/event",
            rate(events, self.wall.elapsed()),
            cpu.as_secs_f64() * 1e6 / events.max(1) as f64
        )
    }
}

fn fold_each<P: Projection>(records: &[store::Record]) {
    let watch = Stopwatch::start();
    let mut model = P::default();
    for record in records {
        model.apply(record.view());
    }
    black_box(&model);
    println!(
        "  fold {:<14} {}",
        P::NAME,
        watch.rate(records.len() as u64)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::var("DOCKET_BENCH_FULL").is_ok_and(|value| value == "1");
    let events: u64 = if full {
        1_000_000 * EVENTS_PER_TICKET
    } else {
        std::env::var("DOCKET_BENCH_EVENTS")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(100_000)
    };
    let mut config = SynthConfig::small(42, (events / EVENTS_PER_TICKET).max(1));
    config.concurrent_tickets = 2000;
    config.event_gap_seconds = (90 * 24 * 3600 / i64::try_from(events).unwrap_or(1)).max(1);
    println!(
        "replay benchmark: {} tickets, {} agents, {} teams, target {events} events, SQLite",
        config.tickets, config.agents, config.teams
    );

    // `DOCKET_BENCH_HISTORY=PATH` keeps the history in the SQLite file PATH and, when it is
    // already there, reuses it instead of appending it again (the full size takes minutes to
    // append; the history is the same for the same size, the seed is fixed).
    let kept = std::env::var("DOCKET_BENCH_HISTORY").ok();
    let (db, store_config) = match &kept {
        Some(path) => (None, store::StoreConfig::new(format!("sqlite://{path}"))),
        None => {
            let db = ScratchDb::sqlite().await;
            let config = db.config.clone();
            (Some(db), config)
        }
    };
    let store = Store::open_with(store_config)
        .await
        .expect("opening the scratch store");
    let (existing, _) = store.head().await.expect("reading the log head");
    let head = if let Some(path) = kept.as_ref().filter(|_| existing > 0) {
        println!("append (setup)         skipped: {existing} events already in {path}");
        existing
    } else {
        let watch = Stopwatch::start();
        let head = synth::append_all(&store, synth::history(config.clone()), 4000)
            .await
            .expect("appending the history");
        println!(
            "append (setup)         {}  ({head} events)",
            watch.rate(head)
        );
        head
    };

    // The raw limit, the fastest way out of the database: the replay read (rows stepped on a
    // blocking thread, what `AllModels::fold` reads), every field touched, nothing decoded.
    // Then the SQL-packed read that replay used before, for comparison.
    let watch = Stopwatch::start();
    let bytes = raw_read(&store, Read::Stepped).await;
    println!(
        "raw read (stepped)     {}  ({} MiB of text)",
        watch.rate(head),
        bytes >> 20
    );
    // `DOCKET_BENCH_REBUILD_ONLY=1`: the raw read and the rebuild beside it, nothing else (to
    // compare rebuilds at full size without the minutes the other reads take).
    let rebuild_only = std::env::var("DOCKET_BENCH_REBUILD_ONLY").is_ok_and(|value| value == "1");
    let mut cached: Vec<store::Record> = Vec::new();
    if !rebuild_only {
        let watch = Stopwatch::start();
        raw_read(&store, Read::Concat).await;
        println!("raw packed read (SQL)  {}", watch.rate(head));

        // The row-by-row read every other reader uses, for comparison.
        let watch = Stopwatch::start();
        let mut position = 0;
        loop {
            let records = store
                .read_all(position, store::READ_LIMIT_MAX)
                .await
                .expect("reading");
            let Some(last) = records.last() else { break };
            position = last.position;
            if cached.len() < CACHED_RECORDS_MAX {
                cached.extend(records);
            }
        }
        println!("raw read_all (per row) {}", watch.rate(head));
    }

    // Rebuild of all six projections from the log in one pass: read, decode once, fold into
    // each; the next page is read while this one folds.
    // `DOCKET_BENCH_REBUILDS=N` rebuilds N times (to profile the rebuild, or to see its
    // spread); the memory figure is the last one's.
    let rebuilds: usize = std::env::var("DOCKET_BENCH_REBUILDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1);
    let mut rebuilt = None;
    let (mut rss_before, mut rss_after) = (0, 0);
    for _ in 0..rebuilds.max(1) {
        drop(rebuilt.take());
        rss_before = rss_bytes();
        let watch = Stopwatch::start();
        let all = AllModels::fold(&store, &mut |_, _| {})
            .await
            .expect("folding the log");
        println!("rebuild all 6 (1 pass) {}", watch.rate(head));
        rss_after = rss_bytes();
        rebuilt = Some(all);
    }
    let all = rebuilt.expect("at least one rebuild");
    if rebuild_only {
        drop(all);
        if let Some(db) = db {
            db.cleanup().await;
        }
        return;
    }

    cached.truncate(CACHED_RECORDS_MAX);
    println!(
        "fold only, {} records in memory (each view decodes for itself):",
        cached.len()
    );
    let watch = Stopwatch::start();
    for record in &cached {
        black_box(projections::TicketEvent::decode(record.view()));
    }
    println!("  decode only         {}", watch.rate(cached.len() as u64));
    fold_each::<Tickets>(&cached);
    fold_each::<Queues>(&cached);
    fold_each::<AgentLoad>(&cached);
    fold_each::<SlaView>(&cached);
    fold_each::<Customers>(&cached);
    fold_each::<Reports>(&cached);
    drop(cached);

    let open_tickets = [
        StateCategory::New,
        StateCategory::Open,
        StateCategory::Pending,
    ]
    .iter()
    .map(|category| count(&all.tickets, *category))
    .sum::<u64>();
    let grown = rss_after.saturating_sub(rss_before);
    println!(
        "memory: {} MiB for all models; {} tickets ({} open): {} bytes per ticket, {} per open ticket",
        grown / (1 << 20),
        all.tickets.len(),
        open_tickets,
        grown / (all.tickets.len().max(1) as u64),
        grown / open_tickets.max(1)
    );

    let agents = config.agents;
    let teams = config.teams;
    let next = time(10_000, |index| {
        let agent = synth::agent(index as u64 % agents);
        all.queues.next_for_agent(
            agent,
            &[synth::team(index as u64 % agents / (agents / teams).max(1))],
        )
    });
    println!("next ticket for agent  {}", percentiles(next));
    let head_of_team = time(10_000, |index| {
        all.queues
            .head(QueueId::Team(synth::team(index as u64 % teams)))
    });
    println!("head of team queue     {}", percentiles(head_of_team));
    let list = time(500, |index| {
        all.tickets.list(&ListQuery {
            filter: TicketFilter {
                team: Some(synth::team(index as u64 % teams)),
                category: Some(StateCategory::Open),
                ..TicketFilter::default()
            },
            sort: TicketSort::Priority,
            limit: 50,
            cursor: None,
        })
    });
    println!("list team+open, 50     {}", percentiles(list));
    let search = time(200, |index| {
        all.tickets.list(&ListQuery {
            filter: TicketFilter {
                text: Some(["支付", "system down", "退款", "address"][index % 4].to_owned()),
                ..TicketFilter::default()
            },
            sort: TicketSort::CreatedDesc,
            limit: 50,
            cursor: None,
        })
    });
    println!("search text, 50        {}", percentiles(search));
    let month = jiff::SignedDuration::from_hours(24 * 30);
    let report = time(20, |index| {
        let mut query = ReportQuery::new(config.start + month, config.start + month + month);
        if index % 2 == 1 {
            query.team = Some(synth::team(index as u64 % teams));
        }
        all.reports.report(&query)
    });
    println!("report over a month    {}", percentiles(report));
    if let Some(db) = db {
        db.cleanup().await;
    }
}

#[derive(Clone, Copy)]
enum Read {
    /// `Store::read_all_packed`: what replay reads.
    Stepped,
    /// `Store::read_all_concat`: records packed by SQLite into a few sqlx rows.
    Concat,
}

/// Reads the whole log page by page, touching every field of every record; returns the bytes
/// of text read.
async fn raw_read(store: &Store, read: Read) -> usize {
    let mut position = 0;
    let mut bytes = 0usize;
    loop {
        let page = match read {
            Read::Stepped => store.read_all_packed(position, store::READ_LIMIT_MAX).await,
            Read::Concat => store.read_all_concat(position, store::READ_LIMIT_MAX).await,
        }
        .expect("reading");
        let Some(last) = page.last_position() else {
            return bytes;
        };
        position = last;
        for record in page.iter() {
            bytes += record.stream_id.len()
                + record.category.len()
                + record.event_type.len()
                + record.payload.len()
                + record.metadata.len();
            black_box(&record);
        }
    }
}

fn count(tickets: &Tickets, category: StateCategory) -> u64 {
    let mut total = 0;
    let mut cursor = None;
    loop {
        let page = tickets
            .list(&ListQuery {
                filter: TicketFilter {
                    category: Some(category),
                    ..TicketFilter::default()
                },
                sort: TicketSort::CreatedAsc,
                limit: projections::tickets::PAGE_LIMIT_MAX,
                cursor,
            })
            .expect("a valid query");
        total += page.items.len() as u64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return total,
        }
    }
}
