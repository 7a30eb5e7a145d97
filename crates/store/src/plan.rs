//! Group commit planning, without I/O: given what the database says inside the write transaction
//! (the log head, each touched stream's head, the command ids already appended), decide each
//! append's fate in arrival order and compute the rows to insert with their positions and hashes.
//! One append's conflict never affects the others in its batch.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::AppendError;
use crate::hash::{self, HashInput, GENESIS};
use crate::record::{AppendOutcome, ExpectedVersion, Hash, NewEvent, StreamId};

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

/// What the database said, read inside the write transaction.
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub streams: HashMap<String, StreamHead>,
    pub commands: HashMap<Uuid, CommittedCommand>,
}

/// A row to insert, borrowing its event from the queued append.
#[derive(Debug)]
pub(crate) struct Row<'a> {
    pub position: u64,
    pub stream: &'a StreamId,
    pub stream_version: u64,
    pub event: &'a NewEvent,
    pub command_id: Uuid,
    /// The event's place within its append, and the append's size.
    pub command_index: u32,
    pub command_events: u32,
    pub recorded_at_micros: i64,
    pub stream_hash: Hash,
    pub global_hash: Hash,
}

#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub rows: Vec<Row<'a>>,
    pub outcomes: Vec<Result<AppendOutcome, AppendError>>,
    pub head: LogHead,
}

impl Plan<'_> {
    /// The rows as the records a reader of the log will see, for in-process followers.
    pub fn records(&self) -> Vec<crate::Record> {
        self.rows
            .iter()
            .map(|row| crate::Record {
                position: row.position,
                stream_id: row.stream.to_string(),
                category: row.stream.category().to_owned(),
                stream_version: row.stream_version,
                event_id: row.event.event_id,
                event_type: row.event.event_type.clone(),
                schema_version: row.event.schema_version,
                payload: row.event.payload.get().to_owned(),
                metadata: row.event.metadata.get().to_owned(),
                command_id: row.command_id,
                recorded_at: jiff::Timestamp::from_microsecond(row.recorded_at_micros)
                    .expect("the writer's clock gives valid timestamps"),
                stream_hash: row.stream_hash,
                global_hash: row.global_hash,
            })
            .collect()
    }
}

/// Plans one batch. `now_micros` is the writer's clock; recorded times never go backwards in
/// global order, so a clock step back is absorbed by repeating the last recorded time.
pub(crate) fn plan<'a>(
    head: LogHead,
    known: Known,
    appends: &'a [Append],
    now_micros: i64,
) -> Plan<'a> {
    let Known {
        mut streams,
        mut commands,
    } = known;
    let recorded_at_micros = now_micros.max(head.recorded_at_micros);
    let mut plan = Plan {
        rows: Vec::with_capacity(appends.iter().map(|append| append.events.len()).sum()),
        outcomes: Vec::with_capacity(appends.len()),
        head: LogHead {
            recorded_at_micros,
            ..head
        },
    };
    for append in appends {
        let outcome = plan_one(
            &mut plan,
            &mut streams,
            &mut commands,
            append,
            recorded_at_micros,
        );
        plan.outcomes.push(outcome);
    }
    plan
}

fn plan_one<'a>(
    plan: &mut Plan<'a>,
    streams: &mut HashMap<String, StreamHead>,
    commands: &mut HashMap<Uuid, CommittedCommand>,
    append: &'a Append,
    recorded_at_micros: i64,
) -> Result<AppendOutcome, AppendError> {
    if let Some(committed) = commands.get(&append.command_id) {
        if committed.stream_id != append.stream.as_str() {
            return Err(AppendError::CommandIdReused {
                command_id: append.command_id,
                original_stream: committed.stream_id.clone(),
            });
        }
        return Ok(AppendOutcome {
            stream_version: committed.stream_version,
            first_position: committed.first_position,
            last_position: committed.last_position,
            duplicate: true,
        });
    }
    let stream_head = streams.get(append.stream.as_str()).copied();
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
    let first_position = plan.head.position + 1;
    let command_events = u32::try_from(append.events.len()).expect("appends are bounded");
    for (command_index, event) in (0..).zip(&append.events) {
        stream_version += 1;
        let position = plan.head.position + 1;
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
        let global_hash = hash::global_hash(&plan.head.global_hash, position, &stream_hash);
        plan.rows.push(Row {
            position,
            stream: &append.stream,
            stream_version,
            event,
            command_id: append.command_id,
            command_index,
            command_events,
            recorded_at_micros,
            stream_hash,
            global_hash,
        });
        plan.head.position = position;
        plan.head.global_hash = global_hash;
    }
    let outcome = AppendOutcome {
        stream_version,
        first_position,
        last_position: plan.head.position,
        duplicate: false,
    };
    streams.insert(
        append.stream.to_string(),
        StreamHead {
            version: stream_version,
            stream_hash,
        },
    );
    commands.insert(
        append.command_id,
        CommittedCommand {
            stream_id: append.stream.to_string(),
            stream_version,
            first_position,
            last_position: outcome.last_position,
        },
    );
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use serde_json::value::to_raw_value;

    use super::*;

    fn append(stream: &str, expected: ExpectedVersion, events: usize, command: u128) -> Append {
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
    fn check(head: LogHead, known: Known, appends: &[Append], expect: expect_test::Expect) {
        let plan = plan(head, known, appends, 5);
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
                row.position, row.stream, row.stream_version
            ));
        }
        out.push_str(&format!("head @{}\n", plan.head.position));
        expect.assert_eq(&out);
    }

    #[test]
    fn conflicts_fail_alone() {
        use ExpectedVersion::*;
        let known = Known {
            streams: HashMap::from([(
                "a-1".to_owned(),
                StreamHead {
                    version: 2,
                    stream_hash: [7; 32],
                },
            )]),
            commands: HashMap::new(),
        };
        let head = LogHead {
            position: 10,
            global_hash: [1; 32],
            recorded_at_micros: 0,
        };
        check(
            head,
            known,
            &[
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
            streams: HashMap::new(),
            commands: HashMap::from([(
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
            &[append("a-1", ExpectedVersion::NoStream, 2, 9)],
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
        let appends = [append("a-1", ExpectedVersion::Any, 1, 1)];
        let plan = plan(head, Known::default(), &appends, 5);
        assert_eq!(plan.rows[0].recorded_at_micros, 100);
        assert_eq!(plan.head.recorded_at_micros, 100);
    }
}
