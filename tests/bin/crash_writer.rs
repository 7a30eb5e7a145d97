//! `crash-writer DATABASE_URL [POSTGRES_SCHEMA]`: the victim of the durability test. It opens the
//! store and runs `TASKS` concurrent appenders, each appending batches of 1 to `EVENTS_MAX`
//! numbered events to its own stream (with exact expected versions) or to a shared one, and prints
//! one `Ack` line per acknowledged append, flushed before the next append starts, so the test
//! knows everything the store promised before it is killed with SIGKILL. The numbers come from
//! `DOCKET_SEED`; the stream names are unique per run, so runs can share a database.

use std::io::Write;

use anyhow::{bail, Context};
use store::{AppendError, AppendOutcome, ExpectedVersion, Store, StoreConfig, StreamId};
use tests::{numbered_events, Ack, Rng};
use tokio::task::JoinSet;
use uuid::Uuid;

const TASKS: usize = 32;
const SHARED_STREAMS: u64 = 4;
const EVENTS_MAX: u64 = 5;
/// The writer stops by itself after this many appends per task, should nobody kill it.
const APPENDS_PER_TASK_MAX: u64 = 5_000;
/// Attempts of one append (same command id) while the database is unavailable.
const ATTEMPTS_MAX: u32 = 20;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: crash-writer DATABASE_URL [POSTGRES_SCHEMA]";
    let url = args.next().context(usage)?;
    let mut config = StoreConfig::new(url);
    config.schema = args.next();
    config.application_name = "docket-crash-writer".to_owned();
    let store = Store::open_with(config)
        .await
        .context("opening the store")?;
    let mut rng = Rng::new(tests::seed());
    let run = Uuid::now_v7().simple();
    let mut appenders = JoinSet::new();
    for task in 0..TASKS {
        let own = StreamId::new(format!("crash-{run}-{task}")).context("own stream id")?;
        appenders.spawn(append_forever(store.clone(), own, rng.fork()));
    }
    while let Some(result) = appenders.join_next().await {
        result.context("an appender panicked")??;
    }
    Ok(())
}

async fn append_forever(store: Store, own: StreamId, mut rng: Rng) -> anyhow::Result<()> {
    let mut own_version = None;
    for _ in 0..APPENDS_PER_TASK_MAX {
        let (stream, expected) = if rng.chance(1, 3) {
            let shared = format!("shared-{}", rng.below(SHARED_STREAMS));
            (StreamId::new(shared)?, ExpectedVersion::Any)
        } else {
            let expected = own_version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            (own.clone(), expected)
        };
        let total = 1 + rng.below(EVENTS_MAX);
        let command_id = Uuid::now_v7();
        let outcome = append(&store, &stream, expected, total, command_id).await?;
        if stream == own {
            own_version = Some(outcome.stream_version);
        }
        let ack = Ack {
            command_id,
            stream: stream.to_string(),
            first_position: outcome.first_position,
            last_position: outcome.last_position,
            stream_version: outcome.stream_version,
        };
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(ack.to_line().as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing an acknowledgement")?;
    }
    Ok(())
}

/// Appends, retrying with the same command id while the database is unavailable: a retry after
/// an ambiguous failure returns the first outcome instead of writing twice.
async fn append(
    store: &Store,
    stream: &StreamId,
    expected: ExpectedVersion,
    total: u64,
    command_id: Uuid,
) -> anyhow::Result<AppendOutcome> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match store
            .append(stream, expected, numbered_events(total), command_id)
            .await
        {
            Ok(outcome) => return Ok(outcome),
            Err(AppendError::Store(error)) if error.is_transient() && attempts < ATTEMPTS_MAX => {}
            Err(error) => bail!("appending to {stream} ({attempts} attempts): {error}"),
        }
    }
}
