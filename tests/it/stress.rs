//! The subscription stress test: `NODES` store instances on one database (as separate nodes or
//! processes would be), each with `WRITERS_PER_NODE` tasks appending one or more events to shared
//! and new streams with random small delays, while subscribers follow the log: one from the
//! start on a node that never writes, one from the start on a writing node, one started late from
//! position 0, and one that stops mid-way and resumes from its position on another node. Each must
//! see exactly the final log, positions 1..=N with no gap and no repeat, and every acknowledged
//! append must sit where its outcome said.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use store::scratch::ScratchDb;
use store::{AppendError, AppendOutcome, ExpectedVersion, Store, StreamId, Subscription};
use tests::{numbered_events, read_whole_log, Rng};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::{announce_seed, report};

const NODES: usize = 4;
const WRITERS_PER_NODE: usize = 16;
const APPENDS: u64 = 5_000;
/// With `DOCKET_SLOW_TESTS=1`.
const APPENDS_SLOW: u64 = 50_000;
const SHARED_STREAMS: u64 = 8;
const APPEND_EVENTS_MAX: u64 = 4;
const DELAY_MICROS_MAX: u64 = 3_000;
/// Attempts of one append (same command id) while the database reports itself unavailable.
const ATTEMPTS_MAX: u32 = 5;
/// The longest the whole run (writers and subscribers) may take: generous, since the work is
/// bounded by the number of appends and this only stops a hang.
const WAIT_BASE: Duration = Duration::from_secs(60);
const WAIT_PER_APPEND: Duration = Duration::from_millis(5);

/// `(position, event id)` as one subscriber saw the log.
type Seen = Vec<(u64, Uuid)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_every_acknowledged_append_once_in_order() {
    let seed = tests::seed();
    announce_seed("stress", seed);
    let appends = if tests::slow_tests() {
        APPENDS_SLOW
    } else {
        APPENDS
    };
    for db in ScratchDb::all().await {
        let started = Instant::now();
        let events = stress(&db, seed, appends).await;
        report(&format!(
            "stress {:?}: {appends} appends, {events} events in {:.1?}",
            db.kind,
            started.elapsed()
        ));
        db.cleanup().await;
    }
}

/// One acknowledged append and what it carried.
#[derive(Debug)]
struct Acked {
    stream: StreamId,
    command_id: Uuid,
    event_ids: Vec<Uuid>,
    outcome: AppendOutcome,
}

async fn stress(db: &ScratchDb, seed: u64, appends: u64) -> u64 {
    let wait = WAIT_BASE + WAIT_PER_APPEND * u32::try_from(appends).expect("appends fit in u32");
    let deadline = tokio::time::Instant::now() + wait;
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Store::open_with(db.config.clone()).await.unwrap());
    }
    let reader_node = Store::open_with(db.config.clone()).await.unwrap();
    // The final head, once every writer is done: the subscribers' finish line.
    let (finish, finish_rx) = watch::channel(None::<u64>);
    // Acknowledged appends so far, to start the late subscriber and pause the resumed one.
    let (progress, progress_rx) = watch::channel(0_u64);

    let subscribers: Vec<JoinHandle<Seen>> = vec![
        tokio::spawn(follow(
            reader_node.subscribe(0),
            finish_rx.clone(),
            Vec::new(),
        )),
        tokio::spawn(follow(nodes[0].subscribe(0), finish_rx.clone(), Vec::new())),
        tokio::spawn({
            let (node, finish_rx, mut progress_rx) =
                (nodes[1].clone(), finish_rx.clone(), progress_rx.clone());
            async move {
                progress_rx
                    .wait_for(|acked| *acked >= appends / 2)
                    .await
                    .unwrap();
                follow(node.subscribe(0), finish_rx, Vec::new()).await
            }
        }),
        tokio::spawn({
            let (first, second, finish_rx) =
                (nodes[2].clone(), nodes[3].clone(), finish_rx.clone());
            // Each append writes at least one event, so this position will exist.
            let pause_at = appends / 3;
            async move {
                let mut subscription = first.subscribe(0);
                let mut seen = Vec::new();
                while subscription.position() < pause_at {
                    let record = subscription.next().await.unwrap();
                    seen.push((record.position, record.event_id));
                }
                let resume_from = subscription.position();
                drop(subscription);
                follow(second.subscribe(resume_from), finish_rx, seen).await
            }
        }),
    ];

    let mut rng = Rng::new(seed);
    let writers_total = (NODES * WRITERS_PER_NODE) as u64;
    let mut writers = Vec::new();
    for (node_index, node) in nodes.iter().enumerate() {
        for writer_index in 0..WRITERS_PER_NODE {
            let writer = (node_index * WRITERS_PER_NODE + writer_index) as u64;
            // Spread the remainder so that exactly `appends` appends are made.
            let count = appends / writers_total + u64::from(writer < appends % writers_total);
            writers.push(tokio::spawn(write(
                node.clone(),
                writer,
                count,
                rng.fork(),
                progress.clone(),
            )));
        }
    }
    let mut acked = Vec::new();
    for writer in writers {
        let writer = tokio::time::timeout_at(deadline, writer)
            .await
            .unwrap_or_else(|_| panic!("the writers took longer than {wait:?} (seed {seed})"));
        acked.extend(writer.unwrap());
    }
    assert_eq!(acked.len() as u64, appends);
    let (head, _) = nodes[0].head().await.unwrap();
    finish.send_replace(Some(head));

    let log = read_whole_log(&reader_node).await.unwrap();
    let positions: Vec<u64> = log.iter().map(|record| record.position).collect();
    assert!(
        positions.iter().copied().eq(1..=head),
        "the log's positions are 1..={head} (seed {seed})"
    );
    let expected: Seen = log
        .iter()
        .map(|record| (record.position, record.event_id))
        .collect();
    let distinct: HashSet<Uuid> = log.iter().map(|record| record.event_id).collect();
    assert_eq!(
        distinct.len(),
        log.len(),
        "event ids are unique (seed {seed})"
    );
    let acked_events: usize = acked.iter().map(|acked| acked.event_ids.len()).sum();
    assert_eq!(
        acked_events,
        log.len(),
        "the log holds the acknowledged events and nothing else (seed {seed})"
    );
    for acked in &acked {
        check_acknowledged(&log, acked, seed);
    }

    for (index, subscriber) in subscribers.into_iter().enumerate() {
        let seen = tokio::time::timeout_at(deadline, subscriber)
            .await
            .unwrap_or_else(|_| panic!("subscriber {index} hung (seed {seed})"))
            .unwrap();
        if seen != expected {
            let first_difference = seen
                .iter()
                .zip(&expected)
                .position(|(seen, expected)| seen != expected);
            panic!(
                "subscriber {index} saw {} records, the log has {}; first difference at index \
                 {first_difference:?} (seed {seed})",
                seen.len(),
                expected.len()
            );
        }
    }

    let verified = reader_node.verify(1, None, &mut |_, _| {}).await.unwrap();
    assert!(verified.is_intact(), "{verified:?} (seed {seed})");
    assert_eq!(verified.checked, head);
    head
}

/// One writer task: `count` appends, each after a random delay, to a shared stream (any version)
/// or to a new stream of its own (no stream yet).
async fn write(
    node: Store,
    writer: u64,
    count: u64,
    mut rng: Rng,
    progress: watch::Sender<u64>,
) -> Vec<Acked> {
    let mut acked = Vec::new();
    for index in 0..count {
        tokio::time::sleep(Duration::from_micros(rng.below(DELAY_MICROS_MAX + 1))).await;
        let (stream, expected) = if rng.chance(1, 2) {
            let shared = format!("shared-{}", rng.below(SHARED_STREAMS));
            (shared, ExpectedVersion::Any)
        } else {
            (format!("own-{writer}-{index}"), ExpectedVersion::NoStream)
        };
        let stream = StreamId::new(stream).unwrap();
        // Half the appends carry a single event, the rest up to `APPEND_EVENTS_MAX`.
        let total = if rng.chance(1, 2) {
            1
        } else {
            2 + rng.below(APPEND_EVENTS_MAX - 1)
        };
        let events = numbered_events(total);
        let event_ids = events.iter().map(|event| event.event_id).collect();
        let command_id = Uuid::now_v7();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match node
                .append(&stream, expected, events.clone(), command_id)
                .await
            {
                Ok(outcome) => break outcome,
                Err(AppendError::Store(error))
                    if error.is_transient() && attempts < ATTEMPTS_MAX => {}
                Err(error) => {
                    panic!("append to {stream} failed after {attempts} attempts: {error}")
                }
            }
        };
        assert!(
            !outcome.duplicate || attempts > 1,
            "a fresh command id was taken for a duplicate: {outcome:?}"
        );
        acked.push(Acked {
            stream,
            command_id,
            event_ids,
            outcome,
        });
        progress.send_modify(|acked| *acked += 1);
    }
    acked
}

/// Follows the log until the finish line is known and reached.
async fn follow(
    mut subscription: Subscription,
    mut finish: watch::Receiver<Option<u64>>,
    mut seen: Seen,
) -> Seen {
    loop {
        let done = finish
            .borrow_and_update()
            .is_some_and(|head| subscription.position() >= head);
        if done {
            return seen;
        }
        // `next` is cancel safe: a read it abandons is simply made again.
        tokio::select! {
            record = subscription.next() => {
                let record = record.unwrap();
                seen.push((record.position, record.event_id));
            }
            changed = finish.changed() => changed.unwrap(),
        }
    }
}

/// The records at the positions an append's outcome reported are that append's events.
fn check_acknowledged(log: &[store::Record], acked: &Acked, seed: u64) {
    let outcome = &acked.outcome;
    let count = acked.event_ids.len() as u64;
    assert_eq!(
        outcome.last_position + 1 - outcome.first_position,
        count,
        "{acked:?} (seed {seed})"
    );
    let first_version = outcome.stream_version + 1 - count;
    for (offset, event_id) in acked.event_ids.iter().enumerate() {
        let record = &log[(outcome.first_position - 1) as usize + offset];
        let matches = record.position == outcome.first_position + offset as u64
            && record.event_id == *event_id
            && record.command_id == acked.command_id
            && record.stream_id == acked.stream.as_str()
            && record.stream_version == first_version + offset as u64;
        assert!(
            matches,
            "{record:?} is not event {offset} of {acked:?} (seed {seed})"
        );
    }
}
