//! `docket bench sla`: the SLA scheduler at scale, on SQLite. A history of tickets whose SLA
//! clocks make 1,000,000 active timers; the time a fresh driver takes to fold it at start and the
//! memory it holds per timer; then a burst of 100,000 first-response breaches due in the same
//! second, fired through the API's decider into the store, with the lag from due to appended
//! (p50/p99). Beside them, the raw limits measured in the same run on the same store: durable
//! single-event appends to distinct streams queued back to back (the batched path's limit), and
//! by 256 concurrent appenders. Process CPU time per operation is printed too, because the
//! machine may be shared. The scratch database lives in the temp dir (`TMPDIR`); its size is
//! printed before it is deleted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use serde_json::value::to_raw_value;
use sla_scheduler::{Driver, Policies, SchedulerStats, SlaConfig, SlaSource, TimerSource};
use store::scratch::ScratchDb;
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use uuid::Uuid;

use crate::bench::{ms, percentile};

/// First response within an hour, resolution within 30 days (of business time, Monday to Friday,
/// 09:00–18:00 UTC): two timers per ticket.
const BENCH_POLICIES: &str = r#"
version = 1
[calendars.office]
time_zone = "UTC"
monday = ["09:00-18:00"]
tuesday = ["09:00-18:00"]
wednesday = ["09:00-18:00"]
thursday = ["09:00-18:00"]
friday = ["09:00-18:00"]
[[policies]]
id = "bench"
calendar = "office"
targets.first_response = "60m"
targets.resolution = "720h"
"#;

/// Monday 09:00 UTC: the office opens after a weekend in which the burst's tickets came in.
const OPENING: &str = "2026-11-02T09:00:00Z";

/// The burst's tickets come in over the weekend before `OPENING` (from Saturday 09:00), so
/// their first responses all fall due an hour after it opens, as a business calendar makes them.
const WEEKEND: SignedDuration = SignedDuration::from_hours(48);

/// Concurrent appenders while writing the history and for the raw limit.
const APPENDERS: usize = 256;

/// The wall clock moved to a chosen instant: time passes at its real pace from there, so the lag
/// it measures is real.
#[derive(Debug)]
struct ShiftedClock(Mutex<(Timestamp, Instant)>);

impl ShiftedClock {
    fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (at, Instant::now());
    }
    fn read(&self) -> Timestamp {
        let (base, since) = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        base + SignedDuration::try_from(since.elapsed()).unwrap_or(SignedDuration::ZERO)
    }
}

impl api::Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        self.read()
    }
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// User + system CPU time of the whole process (Linux; zero elsewhere).
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| {
            let after = text.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn event(event_type: &str, payload: serde_json::Value, at: Timestamp) -> anyhow::Result<NewEvent> {
    Ok(NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: to_raw_value(&payload)?,
        metadata: to_raw_value(&json!({"actor": {"role": "integration"}, "at": at}))?,
    })
}

/// Ticket `n`'s id: a version 7 UUID of its creation time, as the API makes them (the rest
/// from `n`, so that a later phase names the same ticket).
fn ticket_id(n: u64, at: Timestamp) -> Uuid {
    let mut rest = [0u8; 10];
    rest[2..].copy_from_slice(&n.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(at.as_millisecond() as u64, &rest).into_uuid()
}

/// When ticket `n` of `tickets` opens: the first `burst` over the weekend before `opening`, the
/// rest over the 30 days after it (from a minute after the opening, so that none falls due with
/// the burst).
fn opened_at(n: u64, tickets: u64, burst: u64, opening: Timestamp) -> Timestamp {
    if n < burst {
        let before = WEEKEND.as_secs() as u64 * (burst - n) / burst.max(1);
        opening - SignedDuration::from_secs(before as i64)
    } else {
        opening + SignedDuration::from_secs(60 + (n * 2_592_000 / tickets) as i64)
    }
}

/// Ticket `n` opened at `at`, with the SLA clocks the engine computes for it under `policy`.
fn ticket_events(
    n: u64,
    at: Timestamp,
    policy: &sla_scheduler::policy::Policy,
) -> anyhow::Result<(StreamId, Vec<NewEvent>)> {
    let ticket_id = ticket_id(n, at);
    let created = json!({
        "ticket_id": ticket_id, "number": n + 1, "channel": "email",
        "requester": Uuid::from_u128(0xc000 + u128::from(n % 5000)), "ticket_type": "question",
        "priority": "normal", "tags": [], "fields": {},
        "blueprint": {"id": "general", "version": 1}, "state": "new", "category": "new",
        "pii": {"subject": "bench", "description": "", "requester_name": null, "requester_email": null},
    });
    let due = |target: SignedDuration| policy.calendar.add(at, target);
    let applied = json!({
        "policy_id": "bench", "policy_version": 1,
        "reason": "policy bench (fallback); calendar office; priority normal",
        "targets": [
            {"metric": "first_response", "due_at": due(SignedDuration::from_mins(60))?},
            {"metric": "resolution", "due_at": due(SignedDuration::from_hours(720))?},
        ],
    });
    Ok((
        StreamId::new(format!("ticket-{ticket_id}"))?,
        vec![
            event("TicketCreated", created, at)?,
            event("SlaApplied", applied, at)?,
        ],
    ))
}

/// Appends tickets `range` with `appenders` concurrent tasks; returns appends per second.
async fn write_history(
    store: &Store,
    tickets: u64,
    burst: u64,
    opening: Timestamp,
    policies: &Arc<Policies>,
) -> anyhow::Result<f64> {
    let began = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..APPENDERS {
        let (store, next, policies) = (store.clone(), next.clone(), policies.clone());
        tasks.push(tokio::spawn(async move {
            let policy = policies.by_id("bench").context("the bench policy")?;
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= tickets {
                    return anyhow::Ok(());
                }
                let at = opened_at(n, tickets, burst, opening);
                let (stream, events) = ticket_events(n, at, policy)?;
                store
                    .append(&stream, ExpectedVersion::NoStream, events, Uuid::now_v7())
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await.context("history writer")??;
    }
    Ok(tickets as f64 / began.elapsed().as_secs_f64())
}

/// Raw limit: durable single-event appends to distinct new streams, 256 at a time.
async fn raw_appends(store: &Store, total: u64) -> anyhow::Result<f64> {
    let began = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..APPENDERS {
        let (store, next) = (store.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let stream = StreamId::new(format!("raw-{}", Uuid::now_v7().simple()))?;
                let event = event("Raw", json!({"n": 1}), Timestamp::UNIX_EPOCH)?;
                let command_id = Uuid::now_v7();
                // A busy database (a read model saving its snapshot) is retried, as a client
                // would.
                for attempt in 0.. {
                    let appended = store
                        .append(
                            &stream,
                            ExpectedVersion::NoStream,
                            vec![event.clone()],
                            command_id,
                        )
                        .await;
                    match appended {
                        Ok(_) => break,
                        Err(error) if attempt >= 20 => return Err(error.into()),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("raw appender")??;
    }
    Ok(total as f64 / began.elapsed().as_secs_f64())
}

/// Raw limit of the batched path: `total` single-event appends to distinct new streams, queued
/// back to back (`Store::append_queued`) as the scheduler's batched fires are, then awaited.
async fn raw_batched_appends(store: &Store, total: u64) -> anyhow::Result<f64> {
    let began = Instant::now();
    let mut queued = Vec::new();
    for _ in 0..total {
        let stream = StreamId::new(format!("raw-{}", Uuid::now_v7().simple()))?;
        let event = event("Raw", json!({"n": 1}), Timestamp::UNIX_EPOCH)?;
        queued.push(
            store
                .append_queued(
                    &stream,
                    ExpectedVersion::NoStream,
                    vec![event],
                    Uuid::now_v7(),
                )
                .await?,
        );
    }
    for append in queued {
        append.outcome().await?;
    }
    Ok(total as f64 / began.elapsed().as_secs_f64())
}

/// Raw limit for the burst's shape: `total` single-event appends to existing ticket streams
/// (tickets `first..first + total`, two events each, no timer due), with an event and
/// metadata the size of a breach's and command ids laid out like the scheduler's (the ticket's
/// id, then a hash),
/// queued back to back — what the burst writes, without deciding anything. The streams are read
/// first (untimed, `read_ticket_streams`), as the scheduler reads a burst's tickets ahead.
async fn read_ticket_streams(
    state: &api::AppState,
    store: &Store,
    first: u64,
    total: u64,
    id_of: &dyn Fn(u64) -> Uuid,
) -> anyhow::Result<()> {
    // Read first, as the scheduler reads a burst's tickets ahead (which also tells the writer
    // their stream heads); not timed.
    let streams = (first..first + total)
        .map(|n| StreamId::new(format!("ticket-{}", id_of(n))))
        .collect::<Result<Vec<_>, _>>()?;
    for chunk in streams.chunks(store::READ_STREAMS_MAX) {
        let records = store.read_streams(chunk, store::READ_LIMIT_MAX).await?;
        store.hint_stream_heads(&records).await?;
    }
    // The read was a quiet spell for the log, in which the read models start the snapshot the
    // burst made due; it is taken now, before the clock starts, not in the middle of the phase.
    state.projections().snapshot().await?;
    Ok(())
}

/// The timed part of the raw limit of the burst's shape (`read_ticket_streams` first).
async fn raw_batched_ticket_appends(
    store: &Store,
    first: u64,
    total: u64,
    at: Timestamp,
    id_of: &dyn Fn(u64) -> Uuid,
) -> anyhow::Result<f64> {
    let began = Instant::now();
    let mut queued = Vec::new();
    for n in first..first + total {
        let ticket_id = id_of(n);
        let stream = StreamId::new(format!("ticket-{ticket_id}"))?;
        let payload = json!({
            "due_at": at, "metric": "resolution", "observed_at": at, "policy_id": "bench",
        });
        let mut event = event("RawBreach", payload, at)?;
        event.metadata = to_raw_value(&json!({
            "actor": {"role": "system", "id": "scheduler"}, "at": at,
            "command": "record_sla_breach", "command_id": Uuid::now_v7(),
            "correlation_id": Uuid::now_v7(),
            "scheduler": {"source": "sla", "due_at": at, "rule": null},
        }))?;
        // The scheduler's layout: the ticket's id, then a hash (`ticket_ordered_id`).
        let scattered = u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let mut rest = [0u8; 10];
        rest.copy_from_slice(&scattered.to_be_bytes()[..10]);
        let command_id = sla_scheduler::ticket_ordered_id(ticket_id, rest);
        queued.push(
            store
                .append_queued(&stream, ExpectedVersion::Exact(2), vec![event], command_id)
                .await?,
        );
    }
    for append in queued {
        append.outcome().await?;
    }
    Ok(total as f64 / began.elapsed().as_secs_f64())
}

/// Committed batches so far, and how many of them the writer planned from memory.
fn plans(store: &Store) -> (u64, u64) {
    let stats = store.stats();
    (
        stats.batches.load(std::sync::atomic::Ordering::Relaxed),
        stats
            .planned_from_memory
            .load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// "m of n batches planned from memory" since `before`.
fn plans_since(store: &Store, before: (u64, u64)) -> String {
    let (batches, from_memory) = plans(store);
    format!(
        "{} of {} batches planned from memory",
        from_memory - before.1,
        batches - before.0
    )
}

/// The files under `dir` (the scratch database, its WAL, its snapshot file) and their sizes.
fn dir_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let metadata = entry.metadata().ok()?;
            metadata.is_file().then(|| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    metadata.len(),
                )
            })
        })
        .collect();
    files.sort();
    files
}

pub async fn run(timers: u64, burst: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        timers >= 4 * burst && timers % 2 == 0,
        "--timers must be even and at least four times --burst (two timers per ticket; the burst and the raw limit of its shape each take --burst tickets)"
    );
    let tickets = timers / 2;
    // The scratch database goes in the temp dir (`TMPDIR`), and is deleted at the end.
    let db = ScratchDb::sqlite().await;
    let result = measure(&db, tickets, burst).await;
    if let Some(dir) = db
        .config
        .url
        .strip_prefix("sqlite://")
        .and_then(|file| std::path::Path::new(file).parent())
    {
        let files = dir_files(dir);
        let sizes: Vec<String> = files
            .iter()
            .map(|(name, bytes)| format!("{name} {} MiB", bytes >> 20))
            .collect();
        println!(
            "scratch: {} MiB in {} ({}; deleted now)",
            files.iter().map(|(_, bytes)| bytes).sum::<u64>() >> 20,
            dir.display(),
            sizes.join(", ")
        );
    }
    db.cleanup().await;
    result
}

async fn measure(db: &ScratchDb, tickets: u64, burst: u64) -> anyhow::Result<()> {
    let store = Store::open_with(db.config.clone())
        .await
        .context("opening the scratch store")?;
    let start: Timestamp = OPENING.parse()?;
    let clock = Arc::new(ShiftedClock(Mutex::new((start, Instant::now()))));
    println!(
        "docket bench sla: {tickets} tickets with 2 SLA timers each, a burst of {burst} due in one second (SQLite)"
    );
    let config: SlaConfig = toml::from_str(BENCH_POLICIES)?;
    let policies = Arc::new(Policies::compile(&config)?);
    let rate = write_history(&store, tickets, burst, start, &policies).await?;
    println!("history written: {rate:.0} tickets/s (2 events per append)");
    let state = api::AppState::start(
        store.clone(),
        domain::BlueprintCatalog::builtin(),
        clock.clone(),
        // What `docket serve` runs with when `docket.toml` sets nothing (the read models on
        // their own thread among it).
        crate::config::Config::default().api_config(),
    )
    .await
    .context("starting the API state")?;
    // The read models catch up first, so that neither their memory nor their CPU time counts.
    let head = store.committed_position();
    state
        .projections()
        .wait_for(head, Duration::from_secs(3600))
        .await;
    // ... and take the snapshot they take in the first quiet second after catching up, so that
    // its CPU counts in neither the load nor the burst.
    state
        .projections()
        .snapshot()
        .await
        .context("snapshotting the read models")?;

    // Load: a fresh driver folds the whole log, as a node that becomes leader does.
    let memory_before = resident_bytes();
    let (cpu_before, began) = (cpu_time(), Instant::now());
    let sources: Vec<Box<dyn TimerSource>> = vec![Box::new(SlaSource::new(policies))];
    let sink = Arc::new(api::scheduler::ApiSink::new(state.clone()));
    let mut driver = Driver::new(
        &store,
        sink.clone(),
        Arc::new(api::scheduler::StateClock(state.clone())),
        sources,
        Arc::new(SchedulerStats::default()),
    );
    let records = driver.catch_up().await?;
    let load = began.elapsed();
    let load_cpu = cpu_time().saturating_sub(cpu_before);
    let grown = resident_bytes().saturating_sub(memory_before);
    let active = driver.timers() as u64;
    println!(
        "load: {records} records, {active} active timers in {:.1} s ({:.0} records/s; CPU {:.2} µs per record)",
        load.as_secs_f64(),
        records as f64 / load.as_secs_f64(),
        load_cpu.as_secs_f64() * 1e6 / records.max(1) as f64
    );
    println!(
        "memory: {} bytes per active timer held by the driver's SLA state, by structure (resident set growth: {} MiB, {} bytes per timer; the allocator may reuse memory freed earlier in the run)",
        driver.held_bytes() as u64 / active.max(1),
        grown >> 20,
        grown / active.max(1),
    );

    // The burst: the first responses of the `burst` tickets that came in over the weekend fall
    // due an hour after the office opens, all at once. The clock
    // starts a little before the lookahead window and runs at its real pace; the driver steps as
    // `docket serve` runs it (fire what is due, read ahead, sleep until the next deadline), so
    // it reads the burst's tickets ahead while the due time approaches.
    let due = start + SignedDuration::from_mins(60);
    clock.set(due - sla_scheduler::driver::PREFETCH_AHEAD - SignedDuration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(600);
    while clock.read() < due && Instant::now() < deadline {
        driver.fire().await;
        driver.prefetch().await;
        let left = due.duration_since(clock.read()).unsigned_abs();
        tokio::time::sleep(driver.sleep_for().min(left)).await;
    }
    println!(
        "read ahead: {} tickets held in memory when the burst fell due ({} s ahead at most)",
        sink.prefetched(),
        sla_scheduler::driver::PREFETCH_AHEAD.as_secs()
    );
    let plans_before = plans(&store);
    let (cpu_before, began) = (cpu_time(), Instant::now());
    // Appends that fail (SQLite busy while a read model saves its snapshot) are retried by the
    // driver on its next round, as in `docket serve`.
    let mut fired = Vec::new();
    while (fired.len() as u64) < burst && Instant::now() < deadline {
        let round = driver.fire().await;
        driver.prefetch().await;
        if round.is_empty() {
            tokio::time::sleep(driver.sleep_for().min(Duration::from_millis(100))).await;
        }
        fired.extend(round);
    }
    let elapsed = began.elapsed();
    let burst_cpu = cpu_time().saturating_sub(cpu_before);
    let mut lags: Vec<Duration> = fired
        .iter()
        .map(|fired| {
            fired
                .processed_at
                .duration_since(fired.due_at)
                .unsigned_abs()
        })
        .collect();
    lags.sort_unstable();
    // Only breaches count: a burst whose due times drifted from the engine's would be
    // recomputes, appended just as fast and measuring something else.
    let appended = fired
        .iter()
        .filter(|fired| {
            fired.command == "record_sla_breach"
                && matches!(fired.issued, sla_scheduler::Issued::Appended { .. })
        })
        .count();
    println!(
        "burst: {appended} breaches appended of {} fired in {:.2} s ({:.0}/s; CPU {:.1} µs per fire; {}); lag due -> appended p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        fired.len(),
        elapsed.as_secs_f64(),
        fired.len() as f64 / elapsed.as_secs_f64(),
        burst_cpu.as_secs_f64() * 1e6 / fired.len().max(1) as f64,
        plans_since(&store, plans_before),
        ms(percentile(&lags, 0.50)),
        ms(percentile(&lags, 0.99)),
        ms(lags.last().copied().unwrap_or_default()),
    );
    anyhow::ensure!(
        appended as u64 == burst,
        "the burst appended {appended} breaches, not {burst}: it measured something else"
    );
    let (cpu_before, began) = (cpu_time(), Instant::now());
    let raw = raw_batched_appends(&store, burst).await?;
    let raw_cpu = cpu_time().saturating_sub(cpu_before);
    println!(
        "raw limit of the batched path, same store: {raw:.0} appends/s ({} single-event appends queued back to back, {:.2} s; CPU {:.1} µs per append)",
        burst,
        began.elapsed().as_secs_f64(),
        raw_cpu.as_secs_f64() * 1e6 / burst.max(1) as f64
    );
    let id_of = |n: u64| ticket_id(n, opened_at(n, tickets, burst, start));
    read_ticket_streams(&state, &store, burst, burst, &id_of).await?;
    let plans_before = plans(&store);
    let (cpu_before, began) = (cpu_time(), Instant::now());
    let raw = raw_batched_ticket_appends(&store, burst, burst, due, &id_of).await?;
    let raw_cpu = cpu_time().saturating_sub(cpu_before);
    println!(
        "raw limit of the burst's shape, same store: {raw:.0} appends/s ({} single-event appends to existing ticket streams queued back to back, {:.2} s; CPU {:.1} µs per append; {})",
        burst,
        began.elapsed().as_secs_f64(),
        raw_cpu.as_secs_f64() * 1e6 / burst.max(1) as f64,
        plans_since(&store, plans_before),
    );
    let (cpu_before, began) = (cpu_time(), Instant::now());
    let raw = raw_appends(&store, burst).await?;
    let raw_cpu = cpu_time().saturating_sub(cpu_before);
    println!(
        "raw limit, same store: {raw:.0} appends/s ({} single-event appends, {APPENDERS} appenders, {:.2} s; CPU {:.1} µs per append)",
        burst,
        began.elapsed().as_secs_f64(),
        raw_cpu.as_secs_f64() * 1e6 / burst.max(1) as f64
    );
    Ok(())
}
