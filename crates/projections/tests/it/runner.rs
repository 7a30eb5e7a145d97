//! The runner against both backends. Every test compares the running models with a fold from
//! scratch over the same log: that is what "exactly once" means observably.

use std::time::Duration;

use projections::runner::{ProjectionHandle, Projections, RunnerConfig};
use projections::synth::{self, SynthConfig};
use projections::{AgentLoad, Customers, Projection, Queues, Reports, SlaView, Tickets};
use store::scratch::ScratchDb;
use store::Store;

/// Long enough for a loaded CI machine; a passing run never waits it out.
const WAIT: Duration = Duration::from_secs(30);

async fn fold_from_scratch<P: Projection>(store: &Store) -> P {
    let mut model = P::default();
    let mut position = 0;
    loop {
        let records = store
            .read_all(position, store::READ_LIMIT_MAX)
            .await
            .unwrap();
        let Some(last) = records.last() else {
            return model;
        };
        position = last.position;
        for record in &records {
            model.apply(record.view());
        }
    }
}

async fn assert_matches_fold<P: Projection + PartialEq + std::fmt::Debug>(
    store: &Store,
    handle: &ProjectionHandle<P>,
    context: &str,
) {
    let (head, _) = store.head().await.unwrap();
    assert!(
        handle.wait_for(head, WAIT).await,
        "{context}: {} never reached {head}",
        P::NAME
    );
    let expected: P = fold_from_scratch(store).await;
    let model = handle.read();
    assert_eq!(model.position(), head, "{context}: {}", P::NAME);
    assert!(
        *model == expected,
        "{context}: {} differs from a fold from scratch",
        P::NAME
    );
}

async fn assert_all_match(store: &Store, projections: &Projections, context: &str) {
    assert_matches_fold(store, &projections.tickets, context).await;
    assert_matches_fold(store, &projections.queues, context).await;
    assert_matches_fold(store, &projections.agents, context).await;
    assert_matches_fold(store, &projections.sla, context).await;
    assert_matches_fold(store, &projections.customers, context).await;
    assert_matches_fold(store, &projections.reports, context).await;
}

fn history(seed: u64, tickets: u64) -> Vec<synth::SynthEvent> {
    synth::history(SynthConfig::small(seed, tickets)).collect()
}

#[tokio::test]
async fn catches_up_then_follows_live_with_read_your_writes() {
    for db in ScratchDb::all().await {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        let events = history(1, 80);
        let (before, after) = events.split_at(events.len() / 2);
        synth::append_all(&store, before.to_vec(), 100)
            .await
            .unwrap();

        let projections = Projections::start(store.clone(), RunnerConfig::default())
            .await
            .unwrap();
        assert_all_match(&store, &projections, "after catch-up").await;

        let head = synth::append_all(&store, after.to_vec(), 100)
            .await
            .unwrap();
        assert!(projections.wait_for(head, WAIT).await, "{:?}", db.kind);
        assert!(projections.position() >= head);
        assert_all_match(&store, &projections, "after live appends").await;

        let now = jiff::Timestamp::now();
        for lag in projections.lags(now).await.unwrap() {
            assert_eq!((lag.events, lag.seconds, lag.head), (0, 0, head), "{lag:?}");
        }
        // A position nobody has written yet is not reached.
        assert!(!projections.tickets.wait_for(head + 1, Duration::ZERO).await);
        db.cleanup().await;
    }
}

/// Restarts the runners many times, each time after an arbitrary amount of work and with
/// snapshots taken every few records (so crashes land before, during and after snapshot
/// writes), while the log keeps growing. Double-applied or skipped records show up as counts
/// that differ from a fold from scratch.
#[tokio::test]
async fn a_crash_at_any_point_neither_repeats_nor_skips_a_record() {
    for db in ScratchDb::all().await {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        let events = history(2, 120);
        let chunks: Vec<Vec<synth::SynthEvent>> = events
            .chunks(events.len() / 6 + 1)
            .map(<[_]>::to_vec)
            .collect();
        let mut rng = synth::Rng::new(7);
        for (round, chunk) in chunks.into_iter().enumerate() {
            let config = RunnerConfig {
                snapshot_every_events: 1 + rng.below(40),
                // Every other round on a thread of their own, as `docket serve` runs them.
                fold_nice: (round % 2 == 1).then_some(19),
            };
            let projections = Projections::start(store.clone(), config).await.unwrap();
            let appending = {
                let store = store.clone();
                tokio::spawn(async move { synth::append_all(&store, chunk, 20).await })
            };
            // Let the runners get somewhere, then "crash": dropping the handles aborts the
            // runner tasks wherever they are, snapshot writes included.
            let target = store.head().await.unwrap().0 + rng.below(60);
            let _ = projections
                .tickets
                .wait_for(target, Duration::from_secs(5))
                .await;
            for _ in 0..rng.below(50) {
                tokio::task::yield_now().await;
            }
            drop(projections);
            appending.await.unwrap().unwrap();
            let _ = round;
        }
        let projections = Projections::start(store.clone(), RunnerConfig::default())
            .await
            .unwrap();
        assert_all_match(
            &store,
            &projections,
            &format!("{:?} after crashes", db.kind),
        )
        .await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_snapshot_is_loaded_on_start_and_the_rest_caught_up() {
    for db in ScratchDb::all().await {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        let events = history(3, 40);
        let (before, after) = events.split_at(events.len() / 2);
        let middle = synth::append_all(&store, before.to_vec(), 100)
            .await
            .unwrap();
        let tickets: ProjectionHandle<Tickets> =
            ProjectionHandle::start(store.clone(), RunnerConfig::default())
                .await
                .unwrap();
        assert!(tickets.wait_for(middle, WAIT).await);
        assert_eq!(tickets.snapshot().await.unwrap(), middle);
        drop(tickets);

        synth::append_all(&store, after.to_vec(), 100)
            .await
            .unwrap();
        let tickets: ProjectionHandle<Tickets> =
            ProjectionHandle::start(store.clone(), RunnerConfig::default())
                .await
                .unwrap();
        // Starts from the snapshot, not from zero.
        assert!(tickets.position() >= middle, "{:?}", db.kind);
        assert_matches_fold(&store, &tickets, "after restart from a snapshot").await;
        db.cleanup().await;
    }
}

/// Regression (issue 6): on SQLite the periodic snapshot of a 500,000-ticket read model was
/// written into the log's own file, and held its write lock long enough that appends failed
/// with "database is locked". A snapshot write in progress — here its lock, held as long as we
/// like — must leave appends alone.
#[tokio::test]
async fn appends_go_on_while_a_snapshot_write_holds_its_lock() {
    use sqlx::{Connection, Executor};
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let tickets: ProjectionHandle<Tickets> =
        ProjectionHandle::start(store.clone(), RunnerConfig::default())
            .await
            .unwrap();
    let path = projections::runner::snapshot_file(&store).expect("a SQLite store has one");
    let mut snapshot_writer =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
    snapshot_writer.execute("BEGIN IMMEDIATE").await.unwrap();
    snapshot_writer
        .execute("INSERT INTO projection_snapshots VALUES ('big', 1, 1, 0, zeroblob(1000000))")
        .await
        .unwrap();
    // Well inside the log writer's 5 s busy timeout: an append that waited for this lock fails.
    let appended = tokio::time::timeout(
        Duration::from_secs(3),
        synth::append_all(&store, history(5, 3), 100),
    )
    .await
    .expect("an append waited for the snapshot's lock")
    .unwrap();
    assert!(tickets.wait_for(appended, WAIT).await);
    snapshot_writer.execute("ROLLBACK").await.unwrap();
    assert_eq!(tickets.snapshot().await.unwrap(), appended);
    drop(tickets);
    drop(snapshot_writer);
    db.cleanup().await;
}

/// A snapshot ahead of the log (the log's file was replaced by an older copy) is not trusted:
/// the model is folded from the log instead.
#[tokio::test]
async fn a_snapshot_ahead_of_the_log_is_ignored() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let head = synth::append_all(&store, history(6, 10), 100)
        .await
        .unwrap();
    let tickets: ProjectionHandle<Tickets> =
        ProjectionHandle::start(store.clone(), RunnerConfig::default())
            .await
            .unwrap();
    assert!(tickets.wait_for(head, WAIT).await);
    assert_eq!(tickets.snapshot().await.unwrap(), head);
    drop(tickets);
    drop(store);
    // A fresh, shorter log in the same file, the snapshot file kept.
    let log = db.config.url.strip_prefix("sqlite://").unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{log}{suffix}"));
    }
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let shorter = synth::append_all(&store, history(7, 2), 100).await.unwrap();
    assert!(shorter < head);
    let tickets: ProjectionHandle<Tickets> =
        ProjectionHandle::start(store.clone(), RunnerConfig::default())
            .await
            .unwrap();
    assert_matches_fold(&store, &tickets, "after the log was replaced").await;
    db.cleanup().await;
}

#[tokio::test]
async fn rebuild_swaps_in_a_shadow_and_reports_progress() {
    for db in ScratchDb::all().await {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        let head = synth::append_all(&store, history(4, 60), 100)
            .await
            .unwrap();
        let projections = Projections::start(store.clone(), RunnerConfig::default())
            .await
            .unwrap();
        assert!(projections.wait_for(head, WAIT).await);
        let before = projections.tickets.read().clone();

        for name in projections::runner::PROJECTION_NAMES {
            let mut calls: Vec<(u64, u64)> = Vec::new();
            let position = projections
                .rebuild(name, &mut |applied, total| calls.push((applied, total)))
                .await
                .expect("a known name")
                .unwrap();
            assert_eq!(position, head, "{name}");
            assert_eq!(calls.last(), Some(&(head, head)), "{name}");
        }
        assert!(projections.rebuild("nope", &mut |_, _| {}).await.is_none());
        assert!(*projections.tickets.read() == before);
        assert_all_match(&store, &projections, "after rebuild").await;

        // All six in one pass over the log.
        let mut calls: Vec<(u64, u64)> = Vec::new();
        let position = projections
            .rebuild_all(&mut |applied, total| calls.push((applied, total)))
            .await
            .unwrap();
        assert_eq!(position, head);
        assert_eq!(calls.last(), Some(&(head, head)));
        assert!(*projections.tickets.read() == before);
        assert_all_match(&store, &projections, "after rebuild_all").await;

        // The rebuilt models keep following the log.
        let head = synth::append_all(&store, history(5, 10), 100)
            .await
            .unwrap();
        assert!(projections.wait_for(head, WAIT).await);
        assert_all_match(&store, &projections, "after rebuild and more appends").await;
        db.cleanup().await;
    }
}

#[allow(
    dead_code,
    reason = "names every model so that a new one is not forgotten above"
)]
fn every_model_is_tested(_: (Tickets, Queues, AgentLoad, SlaView, Customers, Reports)) {}

/// `fold_nice`: the six runners fold on a runtime of their own, its threads at that niceness
/// (read back from the kernel).
#[tokio::test]
async fn read_models_fold_on_a_thread_of_their_own_at_the_niceness_asked() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let config = RunnerConfig {
        fold_nice: Some(17),
        ..RunnerConfig::default()
    };
    let projections = Projections::start(store.clone(), config).await.unwrap();
    let head = synth::append_all(&store, history(1, 30), 4).await.unwrap();
    assert!(projections.wait_for(head, Duration::from_secs(10)).await);
    let niceness: Vec<i64> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            (name.trim() == "read-models").then_some(())?;
            // The fields after the command's closing parenthesis; niceness is the 19th field
            // of the line, the 17th after it.
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            after.split(' ').nth(16)?.parse().ok()
        })
        .collect();
    // The runtime's worker, and its blocking threads where it started one (the packed reads
    // of the catch-up, snapshots). Other tests running in this process have fold threads of
    // their own (at 19): only this one asks for 17, and none stays at the default priority.
    assert!(niceness.contains(&17), "a thread of its own: {niceness:?}");
    assert!(!niceness.contains(&0), "{niceness:?}");
    let tickets = projections.tickets.read().len();
    assert!(tickets > 0, "the models folded the history");
    drop(projections);
    db.cleanup().await;
}
