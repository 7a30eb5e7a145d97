//! Shared helpers for Docket's end-to-end tests and their helper binaries: a seeded PRNG (so a
//! failing run can be replayed with `DOCKET_SEED`), the slow-test switch (`DOCKET_SLOW_TESTS=1`),
//! numbered event batches whose payloads let a reader check that no append was torn, the
//! acknowledgement line that `crash-writer` prints, and a whole-log read.

use std::hash::{BuildHasher, RandomState};

use serde_json::value::to_raw_value;
use store::{NewEvent, Record, Store, StoreError, READ_LIMIT_MAX};
use uuid::Uuid;

/// Replays a run: the seed a failing test printed.
pub const SEED_VAR: &str = "DOCKET_SEED";
/// Set to `1` to run the larger versions of the slow tests.
pub const SLOW_TESTS_VAR: &str = "DOCKET_SLOW_TESTS";

/// The seed from `DOCKET_SEED`, or a fresh random one.
pub fn seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={text:?} is not a u64")),
        // Each `RandomState` is keyed randomly: a seed without a dependency.
        Err(_) => RandomState::new().hash_one(Uuid::now_v7()),
    }
}

pub fn slow_tests() -> bool {
    std::env::var(SLOW_TESTS_VAR).is_ok_and(|value| value == "1")
}

/// splitmix64: tiny, fast, and good enough to drive a test from one seed.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (with a bias far too small to matter here).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "an empty range");
        self.next_u64() % bound
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// An independent generator, for a task of its own.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// `total` events whose payloads are `{"n": k, "of": total}`, so that a reader of the log can
/// tell whether it sees every event of an append.
pub fn numbered_events(total: u64) -> Vec<NewEvent> {
    (1..=total)
        .map(|n| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "Numbered".to_owned(),
            schema_version: 1,
            payload: to_raw_value(&serde_json::json!({ "n": n, "of": total }))
                .expect("json serializes"),
            metadata: to_raw_value(&serde_json::json!({ "actor": "tests" }))
                .expect("json serializes"),
        })
        .collect()
}

/// `(n, of)` from a payload written by `numbered_events`.
pub fn numbered(record: &Record) -> Option<(u64, u64)> {
    let payload: serde_json::Value = serde_json::from_str(&record.payload).ok()?;
    Some((payload["n"].as_u64()?, payload["of"].as_u64()?))
}

/// One acknowledged append, as `crash-writer` reports it on stdout: one line each,
/// `ack <command id> <stream> <first position> <last position> <stream version>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub command_id: Uuid,
    pub stream: String,
    pub first_position: u64,
    pub last_position: u64,
    pub stream_version: u64,
}

impl Ack {
    pub fn to_line(&self) -> String {
        format!(
            "ack {} {} {} {} {}\n",
            self.command_id,
            self.stream,
            self.first_position,
            self.last_position,
            self.stream_version
        )
    }

    pub fn parse(line: &str) -> Result<Ack, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("not an acknowledgement line: {line:?}");
        let ["ack", command_id, stream, first, last, version] = fields[..] else {
            return Err(bad());
        };
        Ok(Ack {
            command_id: command_id.parse().map_err(|_| bad())?,
            stream: stream.to_owned(),
            first_position: first.parse().map_err(|_| bad())?,
            last_position: last.parse().map_err(|_| bad())?,
            stream_version: version.parse().map_err(|_| bad())?,
        })
    }
}

/// The whole log, in global order, read page by page.
pub async fn read_whole_log(store: &Store) -> Result<Vec<Record>, StoreError> {
    let mut log: Vec<Record> = Vec::new();
    loop {
        let after = log.last().map_or(0, |record| record.position);
        let page = store.read_all(after, READ_LIMIT_MAX).await?;
        if page.is_empty() {
            return Ok(log);
        }
        log.extend(page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_lines_round_trip() {
        let ack = Ack {
            command_id: Uuid::now_v7(),
            stream: "shared-3".to_owned(),
            first_position: 7,
            last_position: 9,
            stream_version: 12,
        };
        assert_eq!(Ack::parse(&ack.to_line()), Ok(ack));
        assert!(Ack::parse("ack 1 2").is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..4).map(|_| rng.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }
}
