//! Durability under SIGKILL: `crash-writer` appends from many tasks and prints each
//! acknowledgement; the test kills it with SIGKILL after a random number of acknowledged appends
//! (at least `ACKS_PER_ROUND_MIN`), then opens the store itself and checks that every acknowledged
//! append is readable at the positions it was given, that no append is torn (every command's
//! events are all there), that positions are contiguous, that both hash chains verify, and that
//! the store still appends (and still knows the command ids it acknowledged). Three kills on the
//! same database.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::Connection;
use store::scratch::ScratchDb;
use store::{ExpectedVersion, Record, Store, StreamId};
use tests::{numbered, numbered_events, read_whole_log, Ack, Rng};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use uuid::Uuid;

use crate::{announce_seed, report};

const ROUNDS: u64 = 3;
/// The writer is killed after a random number of acknowledgements in this range.
const ACKS_PER_ROUND_MIN: u64 = 500;
const ACKS_PER_ROUND_MAX: u64 = 1_000;
/// The longest a round may take to see its acknowledgements (or the writer's last lines).
const ROUND_WAIT: Duration = Duration::from_secs(60);
/// The longest the check waits for a dead writer's last transaction to end on the server.
const SETTLE_WAIT: &str = "10s";
/// Acknowledged command ids retried after each crash: they must come back as duplicates.
const RETRIES_PER_ROUND: usize = 10;
const SIGKILL: i32 = 9;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill() {
    let seed = tests::seed();
    announce_seed("crash", seed);
    for db in ScratchDb::all().await {
        let started = Instant::now();
        let mut acks = Vec::new();
        for round in 0..ROUNDS {
            let round_seed = seed.wrapping_add(round);
            let round_acks = run_and_kill(&db, round_seed).await;
            acks.extend(round_acks.iter().cloned());
            settle(&db).await;
            let store = Store::open_with(db.config.clone()).await.unwrap();
            check_log(&store, &acks, seed).await;
            for ack in round_acks.iter().take(RETRIES_PER_ROUND) {
                check_retry_is_duplicate(&store, ack).await;
            }
            acks.push(append_after_crash(&store).await);
        }
        report(&format!(
            "crash {:?}: {ROUNDS} kills, {} acknowledged appends in {:.1?}",
            db.kind,
            acks.len(),
            started.elapsed()
        ));
        db.cleanup().await;
    }
}

/// Runs `crash-writer` until it has acknowledged between `ACKS_PER_ROUND_MIN` and
/// `ACKS_PER_ROUND_MAX` appends, kills it with SIGKILL, and returns every acknowledgement it
/// printed before it died.
async fn run_and_kill(db: &ScratchDb, seed: u64) -> Vec<Ack> {
    let kill_after =
        ACKS_PER_ROUND_MIN + Rng::new(seed).below(ACKS_PER_ROUND_MAX - ACKS_PER_ROUND_MIN);
    let mut command = Command::new(env!("CARGO_BIN_EXE_crash-writer"));
    command
        .arg(&db.config.url)
        .args(&db.config.schema)
        .env(tests::SEED_VAR, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child: Child = command.spawn().expect("starting crash-writer");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let deadline = tokio::time::Instant::now() + ROUND_WAIT;
    let mut acks = Vec::new();
    while (acks.len() as u64) < kill_after {
        match read_ack(&mut stdout, deadline).await {
            Some(ack) => acks.push(ack),
            None => {
                let status = child.wait().await;
                panic!(
                    "crash-writer stopped after {} acknowledgements: {status:?}",
                    acks.len()
                );
            }
        }
    }
    // `kill` sends SIGKILL and waits: the writer dies wherever it is, mid-batch most likely.
    child.kill().await.expect("killing crash-writer");
    let status = child.wait().await.expect("crash-writer's exit status");
    assert_eq!(status.signal(), Some(SIGKILL), "{status:?}");
    // Lines printed before the kill are acknowledgements too.
    while let Some(ack) = read_ack(&mut stdout, deadline).await {
        acks.push(ack);
    }
    acks
}

/// On PostgreSQL, a COMMIT the writer sent just before it died may still be running on the
/// server, and would land in the middle of the checks. Taking the lock on the log's head row, as
/// every write transaction does first, waits for such a transaction to end; a dead writer that
/// has not taken the lock yet can never commit, as its client is gone.
async fn settle(db: &ScratchDb) {
    let Some(mut conn) = db.postgres_connection().await else {
        return;
    };
    sqlx::query(&format!("SET lock_timeout = '{SETTLE_WAIT}'"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut transaction = conn.begin().await.unwrap();
    sqlx::query("SELECT position FROM log_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *transaction)
        .await
        .expect("the dead writer's transaction ends");
    transaction.commit().await.unwrap();
    conn.close().await.unwrap();
}

/// The next acknowledgement, or `None` at the end of the output. A last line without its
/// newline was cut by the kill: the test cannot know what it promised, so it is not counted.
async fn read_ack(
    stdout: &mut BufReader<ChildStdout>,
    deadline: tokio::time::Instant,
) -> Option<Ack> {
    let mut line = String::new();
    let read = tokio::time::timeout_at(deadline, stdout.read_line(&mut line))
        .await
        .expect("crash-writer went quiet")
        .expect("reading crash-writer's output");
    if read == 0 || !line.ends_with('\n') {
        return None;
    }
    Some(Ack::parse(&line).unwrap())
}

/// Everything acknowledged is there, exactly where it was reported; nothing is torn; the
/// positions are contiguous and both chains verify.
async fn check_log(store: &Store, acks: &[Ack], seed: u64) {
    let log = read_whole_log(store).await.unwrap();
    let (head, _) = store.head().await.unwrap();
    assert!(
        log.iter().map(|record| record.position).eq(1..=head),
        "positions are 1..={head} (seed {seed})"
    );
    for ack in acks {
        assert!(
            ack.last_position <= head,
            "{ack:?} is beyond the head {head} (seed {seed})"
        );
        let records = &log[(ack.first_position - 1) as usize..ack.last_position as usize];
        let count = records.len() as u64;
        for (offset, record) in records.iter().enumerate() {
            let matches = record.command_id == ack.command_id
                && record.stream_id == ack.stream
                && record.stream_version + count == ack.stream_version + 1 + offset as u64
                && numbered(record) == Some((offset as u64 + 1, count));
            assert!(
                matches,
                "{record:?} does not belong to {ack:?} (seed {seed})"
            );
        }
    }
    let mut commands: BTreeMap<Uuid, Vec<&Record>> = BTreeMap::new();
    for record in &log {
        commands.entry(record.command_id).or_default().push(record);
    }
    for records in commands.values() {
        let total = records.len() as u64;
        let whole = records.iter().enumerate().all(|(offset, record)| {
            numbered(record) == Some((offset as u64 + 1, total))
                && record.position == records[0].position + offset as u64
                && record.stream_id == records[0].stream_id
        });
        assert!(
            whole,
            "a torn or scattered append: {records:#?} (seed {seed})"
        );
    }
    let verified = store.verify(1, None, &mut |_, _| {}).await.unwrap();
    assert!(verified.is_intact(), "{verified:?} (seed {seed})");
    assert_eq!(verified.checked, head);
}

/// A command id acknowledged before the crash is still known: retrying it writes nothing.
async fn check_retry_is_duplicate(store: &Store, ack: &Ack) {
    let stream = StreamId::new(ack.stream.clone()).unwrap();
    let outcome = store
        .append(
            &stream,
            ExpectedVersion::Any,
            numbered_events(1),
            ack.command_id,
        )
        .await
        .unwrap();
    assert!(outcome.duplicate, "{outcome:?} for {ack:?}");
    assert_eq!(
        (
            outcome.first_position,
            outcome.last_position,
            outcome.stream_version
        ),
        (ack.first_position, ack.last_position, ack.stream_version)
    );
}

/// The store takes appends after a crash, right after the last surviving record.
async fn append_after_crash(store: &Store) -> Ack {
    let (head, _) = store.head().await.unwrap();
    let stream = StreamId::new(format!("after_crash-{head}")).unwrap();
    let command_id = Uuid::now_v7();
    let outcome = store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            numbered_events(2),
            command_id,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.first_position,
            outcome.last_position,
            outcome.stream_version
        ),
        (head + 1, head + 2, 2)
    );
    Ack {
        command_id,
        stream: stream.to_string(),
        first_position: outcome.first_position,
        last_position: outcome.last_position,
        stream_version: outcome.stream_version,
    }
}
