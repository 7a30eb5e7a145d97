//! Group commit planning, without I/O: given what the database says inside the write transaction
//! (the log head, each touched stream's head, the command ids already appended) or what the
//! writer remembers, decide each append's fate in arrival order and compute the rows to insert
//! with their positions and hashes. One append's conflict never affects the others in its batch.
//! A plan owns its batch's appends, so that the writer can hold it while the batch before it
//! commits, and hand the events on to readers without copying them.

use uuid::Uuid;

use crate::error::AppendError;
use crate::hash::{self, HashInput, GENESIS};
use crate::record::{AppendOutcome, ExpectedVersion, Hash, NewEvent, StreamId};

/// The store's hash maps, probed several times per append on the writer's serial path, where
/// SipHash showed. Their keys (stream ids, command ids) may come from clients; foldhash is
/// seeded per process, which is what keeps a chosen set of keys from colliding on purpose.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// An append waiting in the group commit queue.
#[derive(Debug)]
pub(crate) struct Append {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub command_id: Uuid,
}

/// The last record of the whole log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogHead {
    pub position: u64,
    pub global_hash: Hash,
    pub recorded_at_micros: i64,
}

impl LogHead {
    #[cfg(test)]
    pub const EMPTY: LogHead = LogHead {
        position: 0,
        global_hash: GENESIS,
        recorded_at_micros: 0,
    };
}

/// The last record of one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamHead {
    pub version: u64,
    pub stream_hash: Hash,
}

/// An append that was committed earlier, found by its command id (the events it wrote).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommittedCommand {
    pub stream_id: String,
    pub stream_version: u64,
    pub first_position: u64,
    pub last_position: u64,
}

/// Where a plan reads the heads of streams it did not write itself, and earlier appends of its
/// command ids: the database (`Known`, read inside the write transaction) or the writer's memory.
pub(crate) trait Lookup {
    fn stream(&self, stream: &str) -> Option<StreamHead>;
    fn command(&self, command_id: &Uuid) -> Option<&CommittedCommand>;
}

/// What the database said, read inside the write transaction.
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub streams: Map<String, StreamHead>,
    pub commands: Map<Uuid, CommittedCommand>,
}

impl Lookup for Known {
    fn stream(&self, stream: &str) -> Option<StreamHead> {
        self.streams.get(stream).copied()
    }

    fn command(&self, command_id: &Uuid) -> Option<&CommittedCommand> {
        self.commands.get(command_id)
    }
}

/// A row to insert: the event is `events[command_index]` of the plan's append `append`.
#[derive(Debug)]
pub(crate) struct Row {
    pub append: u32,
    pub position: u64,
    pub stream_version: u64,
    /// The event's place within its append, and the append's size.
    pub command_index: u32,
    pub command_events: u32,
    pub recorded_at_micros: i64,
    pub stream_hash: Hash,
    pub global_hash: Hash,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub appends: Vec<Append>,
    pub rows: Vec<Row>,
    pub outcomes: Vec<Result<AppendOutcome, AppendError>>,
    pub head: LogHead,
}

impl Plan {
    /// The append and the event a row writes.
    pub fn event_of(&self, row: &Row) -> (&Append, &NewEvent) {
        let append = &self.appends[row.append as usize];
        (append, &append.events[row.command_index as usize])
    }

    /// Gives the appends back, to be planned again (from the database).
    pub fn into_appends(self) -> Vec<Append> {
        self.appends
    }

    /// The outcomes, and the rows as the records a reader of the log will see (for in-process
    /// followers), the events moved into them rather than copied.
    pub fn into_outcomes_and_records(
        self,
    ) -> (Vec<Result<AppendOutcome, AppendError>>, Vec<crate::Record>) {
        let mut records = Vec::with_capacity(self.rows.len());
        let mut rows = self.rows.into_iter().peekable();
        for (index, append) in (0u32..).zip(self.appends) {
            // An append that failed, or a duplicate, wrote no rows.
            if rows.peek().is_none_or(|row| row.append != index) {
                continue;
            }
            let category = append.stream.category().to_owned();
            let mut stream_id = Some(append.stream.into_string());
            let events = append.events.len();
            for (event, row) in append.events.into_iter().zip(rows.by_ref()) {
                assert_eq!(row.append, index, "an append writes all of its events");
                let stream_id = if row.command_index as usize + 1 == events {
                    stream_id.take()
                } else {
                    stream_id.clone()
                };
                records.push(crate::Record {
                    position: row.position,
                    stream_id: stream_id.expect("taken at the append's last event"),
                    category: category.clone(),
                    stream_version: row.stream_version,
                    event_id: event.event_id,
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    payload: Box::<str>::from(event.payload).into_string(),
                    metadata: Box::<str>::from(event.metadata).into_string(),
                    command_id: append.command_id,
                    recorded_at: jiff::Timestamp::from_microsecond(row.recorded_at_micros)
                        .expect("the writer's clock gives valid timestamps"),
                    stream_hash: row.stream_hash,
                    global_hash: row.global_hash,
                });
            }
        }
        (self.outcomes, records)
    }
}

/// An earlier append of a command id: committed before the batch, or earlier in it.
#[derive(Clone, Copy)]
struct Earlier<'a> {
    stream_id: &'a str,
    stream_version: u64,
    first_position: u64,
    last_position: u64,
}

/// What the batch has written so far, read before the lookup.
struct Batch<'a> {
    streams: Map<&'a str, StreamHead>,
    commands: Map<Uuid, Earlier<'a>>,
}

/// Plans one batch. `now_micros` is the writer's clock; recorded times never go backwards in
/// global order, so a clock step back is absorbed by repeating the last recorded time.
pub(crate) fn plan(
    head: LogHead,
    lookup: &impl Lookup,
    appends: Vec<Append>,
    now_micros: i64,
) -> Plan {
    let mut plan = Plan {
        appends: Vec::with_capacity(appends.len()),
        rows: Vec::new(),
        outcomes: Vec::new(),
        head,
    };
    extend(&mut plan, lookup, appends, now_micros);
    plan
}

/// Plans `appends` after the ones `plan` holds, in the same batch (the writer plans a batch
/// piece by piece as its appends arrive). An earlier piece's command ids are not looked up
/// again: only plans from memory are extended, and there the unique index on command ids says
/// whether an append repeats one.
pub(crate) fn extend(plan: &mut Plan, lookup: &impl Lookup, appends: Vec<Append>, now_micros: i64) {
    let recorded_at_micros = now_micros.max(plan.head.recorded_at_micros);
    plan.head.recorded_at_micros = recorded_at_micros;
    plan.rows
        .reserve(appends.iter().map(|append| append.events.len()).sum());
    plan.outcomes.reserve(appends.len());
    let first = u32::try_from(plan.appends.len()).expect("batches are bounded");
    let mut batch = Batch {
        streams: Map::with_capacity_and_hasher(appends.len(), Default::default()),
        commands: Map::with_capacity_and_hasher(appends.len(), Default::default()),
    };
    for (index, append) in (first..).zip(&appends) {
        let outcome = plan_one(
            &mut plan.rows,
            &mut plan.head,
            &mut batch,
            lookup,
            index,
            append,
            recorded_at_micros,
        );
        plan.outcomes.push(outcome);
    }
    drop(batch);
    plan.appends.extend(appends);
}

fn plan_one<'a>(
    rows: &mut Vec<Row>,
    head: &mut LogHead,
    batch: &mut Batch<'a>,
    lookup: &'a impl Lookup,
    index: u32,
    append: &'a Append,
    recorded_at_micros: i64,
) -> Result<AppendOutcome, AppendError> {
    let earlier = batch.commands.get(&append.command_id).copied();
    let earlier = earlier.or_else(|| {
        lookup.command(&append.command_id).map(|committed| Earlier {
            stream_id: &committed.stream_id,
            stream_version: committed.stream_version,
            first_position: committed.first_position,
            last_position: committed.last_position,
        })
    });
    if let Some(earlier) = earlier {
        if earlier.stream_id != append.stream.as_str() {
            return Err(AppendError::CommandIdReused {
                command_id: append.command_id,
                original_stream: earlier.stream_id.to_owned(),
            });
        }
        return Ok(AppendOutcome {
            stream_version: earlier.stream_version,
            first_position: earlier.first_position,
            last_position: earlier.last_position,
            duplicate: true,
        });
    }
    let stream_head = match batch.streams.get(append.stream.as_str()) {
        Some(written) => Some(*written),
        None => lookup.stream(append.stream.as_str()),
    };
    let actual = stream_head.map(|head| head.version);
    let matches = match append.expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual.is_none(),
        ExpectedVersion::Exact(version) => actual == Some(version),
    };
    if !matches {
        return Err(AppendError::WrongExpectedVersion {
            stream: append.stream.to_string(),
            expected: append.expected,
            actual,
        });
    }
    let mut stream_version = actual.unwrap_or(0);
    let mut stream_hash = stream_head.map_or(GENESIS, |head| head.stream_hash);
    let first_position = head.position + 1;
    let command_events = u32::try_from(append.events.len()).expect("appends are bounded");
    for (command_index, event) in (0..).zip(&append.events) {
        stream_version += 1;
        let position = head.position + 1;
        stream_hash = hash::stream_hash(
            &stream_hash,
            &HashInput {
                stream_id: append.stream.as_str(),
                stream_version,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                recorded_at_micros,
                command_id: append.command_id,
                payload: event.payload.get().as_bytes(),
                metadata: event.metadata.get().as_bytes(),
            },
        );
        let global_hash = hash::global_hash(&head.global_hash, position, &stream_hash);
        rows.push(Row {
            append: index,
            position,
            stream_version,
            command_index,
            command_events,
            recorded_at_micros,
            stream_hash,
            global_hash,
        });
        head.position = position;
        head.global_hash = global_hash;
    }
    let outcome = AppendOutcome {
        stream_version,
        first_position,
        last_position: head.position,
        duplicate: false,
    };
    batch.streams.insert(
        append.stream.as_str(),
        StreamHead {
            version: stream_version,
            stream_hash,
        },
    );
    batch.commands.insert(
        append.command_id,
        Earlier {
            stream_id: append.stream.as_str(),
            stream_version,
            first_position,
            last_position: outcome.last_position,
        },
    );
    Ok(outcome)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::value::to_raw_value;

    use super::*;

    /// An append of `events` small events with ids made from `command` (the writer's tests use
    /// it too).
    pub(crate) fn append(
        stream: &str,
        expected: ExpectedVersion,
        events: usize,
        command: u128,
    ) -> Append {
        Append {
            stream: StreamId::new(stream).unwrap(),
            expected,
            events: (0..events)
                .map(|index| NewEvent {
                    event_id: Uuid::from_u128(command * 1000 + index as u128),
                    event_type: "Happened".to_owned(),
                    schema_version: 1,
                    payload: to_raw_value(&index).unwrap(),
                    metadata: to_raw_value(&serde_json::json!({})).unwrap(),
                })
                .collect(),
            command_id: Uuid::from_u128(command),
        }
    }

    /// Renders each outcome and row compactly, so a batch's decisions read as a table.
    fn check(head: LogHead, known: Known, appends: Vec<Append>, expect: expect_test::Expect) {
        let plan = plan(head, &known, appends, 5);
        let mut out = String::new();
        for outcome in &plan.outcomes {
            match outcome {
                Ok(o) => out.push_str(&format!(
                    "ok v{} @{}..{}{}\n",
                    o.stream_version,
                    o.first_position,
                    o.last_position,
                    if o.duplicate { " duplicate" } else { "" }
                )),
                Err(error) => out.push_str(&format!("error {error}\n")),
            }
        }
        for row in &plan.rows {
            out.push_str(&format!(
                "row @{} {} v{}\n",
                row.position,
                plan.event_of(row).0.stream,
                row.stream_version
            ));
        }
        out.push_str(&format!("head @{}\n", plan.head.position));
        expect.assert_eq(&out);
    }

    #[test]
    fn conflicts_fail_alone() {
        use ExpectedVersion::*;
        let known = Known {
            streams: Map::from_iter([(
                "a-1".to_owned(),
                StreamHead {
                    version: 2,
                    stream_hash: [7; 32],
                },
            )]),
            commands: Map::default(),
        };
        let head = LogHead {
            position: 10,
            global_hash: [1; 32],
            recorded_at_micros: 0,
        };
        check(
            head,
            known,
            vec![
                append("a-1", Exact(2), 2, 1),
                append("a-1", Exact(2), 1, 2),
                append("a-1", Exact(4), 1, 3),
                append("b-1", NoStream, 1, 4),
                append("b-1", NoStream, 1, 5),
                append("c-1", Any, 1, 6),
                append("c-1", Exact(1), 1, 1),
                append("c-1", Exact(1), 1, 6),
            ],
            expect_test::expect![[r#"
                ok v4 @11..12
                error stream a-1 is at version 4; the append expected version 2
                ok v5 @13..13
                ok v1 @14..14
                error stream b-1 is at version 1; the append expected no stream
                ok v1 @15..15
                error command id 00000000-0000-0000-0000-000000000001 was already used for stream a-1
                ok v1 @15..15 duplicate
                row @11 a-1 v3
                row @12 a-1 v4
                row @13 a-1 v5
                row @14 b-1 v1
                row @15 c-1 v1
                head @15
            "#]],
        );
    }

    #[test]
    fn committed_command_returns_original_outcome() {
        let known = Known {
            streams: Map::default(),
            commands: Map::from_iter([(
                Uuid::from_u128(9),
                CommittedCommand {
                    stream_id: "a-1".to_owned(),
                    stream_version: 3,
                    first_position: 4,
                    last_position: 5,
                },
            )]),
        };
        check(
            LogHead::EMPTY,
            known,
            vec![append("a-1", ExpectedVersion::NoStream, 2, 9)],
            expect_test::expect![[r#"
                ok v3 @4..5 duplicate
                head @0
            "#]],
        );
    }

    #[test]
    fn recorded_time_never_goes_back() {
        let head = LogHead {
            position: 1,
            global_hash: GENESIS,
            recorded_at_micros: 100,
        };
        let appends = vec![append("a-1", ExpectedVersion::Any, 1, 1)];
        let plan = plan(head, &Known::default(), appends, 5);
        assert_eq!(plan.rows[0].recorded_at_micros, 100);
        assert_eq!(plan.head.recorded_at_micros, 100);
    }
}
