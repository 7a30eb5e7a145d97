//! `docket bench …`: benchmarks that measure, never assert, and always print the raw limit of
//! the same database measured in the same run beside the store's own figures.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use serde_json::value::to_raw_value;
use store::scratch::ScratchDb;
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Durable single-event appends to distinct streams at several concurrencies, with p50/p99
    /// latency, beside plain batched INSERTs of the same rows in transactions of the same size.
    Append {
        /// Concurrent appenders, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
        appenders: Vec<usize>,
        /// Seconds per run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Backends to measure: sqlite, postgres.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        backends: Vec<String>,
        /// The PostgreSQL server to measure (a scratch schema is created and dropped).
        #[arg(long, env = "DOCKET_TEST_DATABASE_URL")]
        postgres_url: Option<String>,
    },
    /// The SLA scheduler on SQLite: time and memory to load `--timers` active timers, and the
    /// lag from due to appended for a burst of `--burst` breaches due in the same second,
    /// beside the raw append limit of the same store.
    Sla {
        /// Active timers (two per ticket).
        #[arg(long, default_value_t = 1_000_000)]
        timers: u64,
        /// Timers due in the same second.
        #[arg(long, default_value_t = 100_000)]
        burst: u64,
    },
    /// The HTTP API on a loopback socket under a realistic mix (create, assign, reply, note,
    /// transition, get, list) from keep-alive connections: requests/s, commands/s, p50/p99
    /// overall and per operation, and the group commit batch size.
    Http {
        /// Seconds per backend.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Backends to measure: sqlite, postgres.
        #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
        backends: Vec<String>,
        /// The PostgreSQL server to measure (a scratch schema is created and dropped).
        #[arg(long, env = "DOCKET_TEST_DATABASE_URL")]
        postgres_url: Option<String>,
    },
}

pub async fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Append {
            appenders,
            seconds,
            backends,
            postgres_url,
        } => {
            println!(
                "docket bench append: {seconds} s per run, single-event appends to new streams"
            );
            println!(
                "{:<9} {:>9} {:>11} {:>9} {:>9} {:>10} {:>14} {:>7}",
                "backend",
                "appenders",
                "appends/s",
                "p50 ms",
                "p99 ms",
                "avg batch",
                "raw rows/s",
                "ratio"
            );
            for backend in &backends {
                let db = match backend.as_str() {
                    "sqlite" => ScratchDb::sqlite().await,
                    "postgres" => {
                        let url = postgres_url.as_deref().context(
                            "--postgres-url or DOCKET_TEST_DATABASE_URL is needed for postgres",
                        )?;
                        ScratchDb::postgres_at(url)
                            .await
                            .context("creating a scratch schema")?
                    }
                    other => anyhow::bail!("unknown backend {other:?}: use sqlite or postgres"),
                };
                let result =
                    bench_backend(&db, backend, &appenders, Duration::from_secs(seconds)).await;
                db.cleanup().await;
                result?;
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Sla { timers, burst } => {
            crate::bench_sla::run(timers, burst).await?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Http {
            seconds,
            connections,
            backends,
            postgres_url,
        } => {
            crate::bench_http::run(seconds, connections, &backends, postgres_url.as_deref())
                .await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A realistic event: a ticket-sized payload and the metadata the API writes.
fn bench_event() -> NewEvent {
    let payload = serde_json::json!({
        "number": 10042, "channel": "email", "priority": "normal", "type": "question",
        "tags": ["billing", "invoice"], "requester": "customer-0190b2c4",
        "pii": {"subject": "Invoice 2026-11 shows the wrong VAT number", "name": "Li Wei"}
    });
    let metadata = serde_json::json!({
        "actor": {"id": "agent-17", "role": "agent"},
        "correlation_id": Uuid::now_v7(), "causation_id": null
    });
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "TicketCreated".to_owned(),
        schema_version: 1,
        payload: to_raw_value(&payload).expect("json"),
        metadata: to_raw_value(&metadata).expect("json"),
    }
}

struct Run {
    appends: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    avg_batch: f64,
}

async fn run_appenders(store: &Store, appenders: usize, duration: Duration) -> anyhow::Result<Run> {
    let (batches_before, appends_before, ..) = store.stats().snapshot();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(appenders);
    for _ in 0..appenders {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let stream = StreamId::new(format!("bench-{}", Uuid::now_v7().simple()))?;
                let begun = Instant::now();
                store
                    .append(
                        &stream,
                        ExpectedVersion::NoStream,
                        vec![bench_event()],
                        Uuid::now_v7(),
                    )
                    .await?;
                latencies.push(begun.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("appender task")??);
    }
    let elapsed = started.elapsed();
    let (batches, appends, ..) = store.stats().snapshot();
    let avg_batch = (appends - appends_before) as f64 / (batches - batches_before).max(1) as f64;
    Ok(Run {
        appends: latencies.len() as u64,
        elapsed,
        latencies,
        avg_batch,
    })
}

pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn bench_backend(
    db: &ScratchDb,
    backend: &str,
    appenders: &[usize],
    duration: Duration,
) -> anyhow::Result<()> {
    let store = Store::open_with(db.config.clone())
        .await
        .context("opening the scratch store")?;
    let sample = bench_event();
    let (payload, metadata) = (
        sample.payload.get().to_owned(),
        sample.metadata.get().to_owned(),
    );
    let mut one_appender_p50 = None;
    for &count in appenders {
        let mut run = run_appenders(&store, count, duration).await?;
        run.latencies.sort_unstable();
        let rate = run.appends as f64 / run.elapsed.as_secs_f64();
        let batch_rows = run.avg_batch.round().max(1.0) as usize;
        // The raw run inserts about as many rows as the store did, in transactions of its size.
        let batches = (run.appends as usize / batch_rows).clamp(20, 20_000);
        let raw = store::raw::batched_inserts(&db.config, batch_rows, batches, &payload, &metadata)
            .await
            .context("raw batched inserts")?;
        let raw_rate = raw.rows_per_second();
        println!(
            "{:<9} {:>9} {:>11.0} {:>9.3} {:>9.3} {:>10.1} {:>14.0} {:>6.2}x",
            backend,
            count,
            rate,
            ms(percentile(&run.latencies, 0.50)),
            ms(percentile(&run.latencies, 0.99)),
            run.avg_batch,
            raw_rate,
            rate / raw_rate
        );
        if count == 1 {
            one_appender_p50 = Some(percentile(&run.latencies, 0.50));
        }
    }
    if let Some(store_p50) = one_appender_p50 {
        let mut raw = store::raw::batched_inserts(&db.config, 1, 500, &payload, &metadata)
            .await
            .context("raw single inserts")?;
        raw.commit_latencies.sort_unstable();
        let raw_p50 = percentile(&raw.commit_latencies, 0.50);
        println!(
            "{backend}: 1 appender p50 {:.3} ms vs one raw insert+commit p50 {:.3} ms ({:.2}x)",
            ms(store_p50),
            ms(raw_p50),
            store_p50.as_secs_f64() / raw_p50.as_secs_f64()
        );
    }
    Ok(())
}
