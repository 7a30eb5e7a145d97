//! Appends: what is stored, optimistic concurrency, idempotency per command id, group commit
//! isolation between callers, and every input limit at its bound.

use std::sync::atomic::Ordering;

use serde_json::json;
use store::scratch::ScratchDb;
use store::{
    AppendError, ExpectedVersion, InvalidInput, NewEvent, Store, APPEND_EVENTS_MAX,
    EVENT_BYTES_MAX, STREAM_ID_BYTES_MAX,
};
use uuid::Uuid;

use crate::{append_one, each_backend, event, open, stream};

#[tokio::test]
async fn stores_what_was_appended() {
    each_backend(|db| async move {
        let store = open(&db).await;
        let command_id = Uuid::now_v7();
        let first = event("TicketCreated", json!({"subject": "打印机坏了", "n": 1.5}));
        let second = event("TagAdded", json!({"tag": "vip"}));
        let outcome = store
            .append(
                &stream("ticket-1"),
                ExpectedVersion::NoStream,
                vec![first.clone(), second.clone()],
                command_id,
            )
            .await
            .unwrap();
        assert_eq!(
            (
                outcome.stream_version,
                outcome.first_position,
                outcome.last_position
            ),
            (2, 1, 2)
        );
        assert!(!outcome.duplicate);
        append_one(&store, "customer-7", ExpectedVersion::Any).await;

        let records = store
            .read_stream(&stream("ticket-1"), 1, 100)
            .await
            .unwrap();
        assert_eq!(records.len(), 2);
        let record = &records[0];
        assert_eq!(record.position, 1);
        assert_eq!(record.stream_id, "ticket-1");
        assert_eq!(record.category, "ticket");
        assert_eq!(record.stream_version, 1);
        assert_eq!(record.event_id, first.event_id);
        assert_eq!(record.event_type, "TicketCreated");
        assert_eq!(record.schema_version, 1);
        assert_eq!(
            record.payload,
            first.payload.get(),
            "payload bytes are kept exactly"
        );
        assert_eq!(record.metadata, first.metadata.get());
        assert_eq!(record.command_id, command_id);
        assert_eq!(records[1].event_id, second.event_id);
        assert!(records[0].recorded_at <= records[1].recorded_at);
        let age = jiff::Timestamp::now().as_microsecond() - record.recorded_at.as_microsecond();
        assert!(
            (0..60_000_000).contains(&age),
            "recorded_at is the store's time of commit"
        );

        let from_two = store
            .read_stream(&stream("ticket-1"), 2, 100)
            .await
            .unwrap();
        assert_eq!(
            from_two
                .iter()
                .map(|r| r.stream_version)
                .collect::<Vec<_>>(),
            [2]
        );
        let all = store.read_all(0, 100).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.position).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(store.read_all(1, 1).await.unwrap()[0].position, 2);
        assert!(store
            .read_stream(&stream("ticket-404"), 1, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.head().await.unwrap().0, 3);
        db
    })
    .await;
}

#[tokio::test]
async fn expected_version_conflicts_write_nothing() {
    each_backend(|db| async move {
        let store = open(&db).await;
        append_one(&store, "ticket-1", ExpectedVersion::NoStream).await;
        append_one(&store, "ticket-1", ExpectedVersion::Exact(1)).await;
        append_one(&store, "ticket-1", ExpectedVersion::Any).await;
        let conflict = |expected| {
            let store = store.clone();
            async move {
                let events = vec![event("Happened", json!({}))];
                match store
                    .append(&stream("ticket-1"), expected, events, Uuid::now_v7())
                    .await
                {
                    Err(AppendError::WrongExpectedVersion { actual, .. }) => actual,
                    other => panic!("expected a conflict, got {other:?}"),
                }
            }
        };
        assert_eq!(conflict(ExpectedVersion::NoStream).await, Some(3));
        assert_eq!(conflict(ExpectedVersion::Exact(2)).await, Some(3));
        assert_eq!(conflict(ExpectedVersion::Exact(4)).await, Some(3));
        let missing = store
            .append(
                &stream("ticket-2"),
                ExpectedVersion::Exact(1),
                vec![event("E", json!({}))],
                Uuid::now_v7(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            missing.to_string(),
            "stream ticket-2 does not exist; the append expected version 1"
        );
        assert_eq!(store.head().await.unwrap().0, 3, "conflicts wrote nothing");
        db
    })
    .await;
}

#[tokio::test]
async fn a_repeated_command_id_returns_the_original_outcome_even_after_restart() {
    each_backend(|db| async move {
        let command_id = Uuid::now_v7();
        let events = || vec![event("A", json!({})), event("B", json!({}))];
        let store = open(&db).await;
        append_one(&store, "ticket-0", ExpectedVersion::Any).await;
        let original =
            store.append(&stream("ticket-1"), ExpectedVersion::NoStream, events(), command_id).await.unwrap();
        // The retry's expected version no longer matches, but the command already happened.
        let retry =
            store.append(&stream("ticket-1"), ExpectedVersion::NoStream, events(), command_id).await.unwrap();
        assert!(retry.duplicate);
        assert_eq!((retry.stream_version, retry.first_position, retry.last_position), (2, 2, 3));
        assert_eq!(original.last_position, retry.last_position);
        drop(store);

        let store = open(&db).await;
        let after_restart =
            store.append(&stream("ticket-1"), ExpectedVersion::Any, events(), command_id).await.unwrap();
        assert_eq!(after_restart, retry);
        let found = store.find_command(command_id).await.unwrap();
        assert_eq!(found, Some(("ticket-1".to_owned(), retry)));
        assert_eq!(store.find_command(Uuid::now_v7()).await.unwrap(), None);
        let reused = store.append(&stream("ticket-2"), ExpectedVersion::Any, events(), command_id).await;
        assert!(
            matches!(&reused, Err(AppendError::CommandIdReused { original_stream, .. }) if original_stream == "ticket-1"),
            "{reused:?}"
        );
        assert_eq!(store.head().await.unwrap().0, 3, "retries wrote nothing");
        db
    })
    .await;
}

#[tokio::test]
async fn group_commit_isolates_each_callers_outcome() {
    each_backend(|db| async move {
        let store = open(&db).await;
        append_one(&store, "ticket-contended", ExpectedVersion::NoStream).await;
        let (batches_before, ..) = store.stats().snapshot();
        // 64 callers race for version 2 of one stream, and 192 append to streams of their own.
        let mut tasks = Vec::new();
        for i in 0..256 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let (stream_id, expected) = if i % 4 == 0 {
                    ("ticket-contended".to_owned(), ExpectedVersion::Exact(1))
                } else {
                    (format!("ticket-own{i}"), ExpectedVersion::NoStream)
                };
                let result = store
                    .append(
                        &stream(&stream_id),
                        expected,
                        vec![event("E", json!({ "i": i }))],
                        Uuid::now_v7(),
                    )
                    .await;
                (i, result)
            }));
        }
        let mut contended_winners = 0;
        for task in tasks {
            let (i, result) = task.await.unwrap();
            match (i % 4 == 0, result) {
                (true, Ok(_)) => contended_winners += 1,
                (
                    true,
                    Err(AppendError::WrongExpectedVersion {
                        actual: Some(2), ..
                    }),
                ) => {}
                (false, Ok(outcome)) => assert_eq!(outcome.stream_version, 1),
                (contended, other) => panic!("caller {i} (contended: {contended}) got {other:?}"),
            }
        }
        assert_eq!(contended_winners, 1);
        let (batches, appends, events, failed) = store.stats().snapshot();
        assert_eq!(failed, 0);
        assert_eq!(events, 1 + 1 + 192);
        assert!(appends >= 194);
        assert!(
            batches - batches_before < 256,
            "concurrent appends shared transactions"
        );
        let all = store.read_all(0, 1000).await.unwrap();
        assert_eq!(all.len(), 194);
        assert!(all
            .iter()
            .enumerate()
            .all(|(index, record)| record.position == index as u64 + 1));
        db
    })
    .await;
}

#[tokio::test]
async fn limits_are_checked_at_their_bounds() {
    each_backend(|db| async move {
        let store = open(&db).await;
        let append = |store: Store, stream_id: String, events: Vec<NewEvent>| async move {
            store.append(&stream(&stream_id), ExpectedVersion::Any, events, Uuid::now_v7()).await
        };
        // An event of exactly EVENT_BYTES_MAX bytes (type + payload + metadata) is accepted.
        let overhead = "Big".len() + r#"{"actor":"test"}"#.len() + r#""""#.len();
        let payload = "x".repeat(EVENT_BYTES_MAX - overhead);
        let big = event("Big", json!(payload));
        assert_eq!(big.event_type.len() + big.payload.get().len() + big.metadata.get().len(), EVENT_BYTES_MAX);
        append(store.clone(), "blob-1".into(), vec![big]).await.unwrap();
        let read = store.read_stream(&stream("blob-1"), 1, 1).await.unwrap();
        assert_eq!(read[0].payload.len(), EVENT_BYTES_MAX - overhead + 2);
        let too_big = event("Big", json!(format!("{payload}x")));
        assert!(matches!(
            append(store.clone(), "blob-1".into(), vec![too_big]).await,
            Err(AppendError::Invalid(InvalidInput::EventTooLarge { index: 0, bytes, max: EVENT_BYTES_MAX })) if bytes == EVENT_BYTES_MAX + 1
        ));

        let many = |n: usize| (0..n).map(|_| event("E", json!({}))).collect::<Vec<_>>();
        let outcome = append(store.clone(), "many-1".into(), many(APPEND_EVENTS_MAX)).await.unwrap();
        assert_eq!(outcome.stream_version, APPEND_EVENTS_MAX as u64);
        assert!(matches!(
            append(store.clone(), "many-1".into(), many(APPEND_EVENTS_MAX + 1)).await,
            Err(AppendError::Invalid(InvalidInput::TooManyEvents { .. }))
        ));
        assert!(matches!(
            append(store.clone(), "many-1".into(), vec![]).await,
            Err(AppendError::Invalid(InvalidInput::NoEvents))
        ));
        let mut bad_type = event("has space", json!({}));
        assert!(matches!(
            append(store.clone(), "x-1".into(), vec![event("ok", json!({})), bad_type.clone()]).await,
            Err(AppendError::Invalid(InvalidInput::EventTypeInvalid { index: 1, .. }))
        ));
        bad_type.event_type = "E".into();
        bad_type.metadata = crate::json(json!(["not", "an", "object"]));
        assert!(matches!(
            append(store.clone(), "x-1".into(), vec![bad_type]).await,
            Err(AppendError::Invalid(InvalidInput::MetadataNotObject { index: 0 }))
        ));
        let longest = format!("s-{}", "a".repeat(STREAM_ID_BYTES_MAX - 2));
        append(store.clone(), longest, many(1)).await.unwrap();
        assert_eq!(store.head().await.unwrap().0, 2 + APPEND_EVENTS_MAX as u64);
        db
    })
    .await;
}

/// The writer plans from its memory of stream heads when it can; another node writing to the
/// same streams makes that memory stale, and every answer must still be what the database says.
#[tokio::test]
async fn a_writer_with_stale_memory_still_decides_on_the_database() {
    each_backend(|db| async move {
        let node_a = open(&db).await;
        let node_b = open(&db).await;
        let one = |store: &Store, stream_id: &str, expected, command_id| {
            let store = store.clone();
            let stream = stream(stream_id);
            async move {
                store
                    .append(&stream, expected, vec![event("E", json!({}))], command_id)
                    .await
            }
        };
        let new_command = Uuid::now_v7;
        one(
            &node_a,
            "ticket-1",
            ExpectedVersion::NoStream,
            new_command(),
        )
        .await
        .unwrap();
        one(
            &node_a,
            "ticket-1",
            ExpectedVersion::Exact(1),
            new_command(),
        )
        .await
        .unwrap();
        // Node B moves ticket-1 on; node A still remembers version 2.
        one(
            &node_b,
            "ticket-1",
            ExpectedVersion::Exact(2),
            new_command(),
        )
        .await
        .unwrap();
        let right = one(
            &node_a,
            "ticket-1",
            ExpectedVersion::Exact(3),
            new_command(),
        )
        .await
        .unwrap();
        assert_eq!(
            right.stream_version, 4,
            "decided on the database, not on memory"
        );
        let stale = one(
            &node_a,
            "ticket-1",
            ExpectedVersion::Exact(2),
            new_command(),
        )
        .await;
        assert!(
            matches!(
                stale,
                Err(AppendError::WrongExpectedVersion {
                    actual: Some(4),
                    ..
                })
            ),
            "{stale:?}"
        );
        // Node B again; node A's `Any` is planned as version 5 from memory, refused by the
        // unique index, and planned again as version 6.
        one(&node_b, "ticket-1", ExpectedVersion::Any, new_command())
            .await
            .unwrap();
        let any = one(&node_a, "ticket-1", ExpectedVersion::Any, new_command())
            .await
            .unwrap();
        assert_eq!(any.stream_version, 6);
        // A stream node A never saw, created by node B.
        one(
            &node_b,
            "ticket-2",
            ExpectedVersion::NoStream,
            new_command(),
        )
        .await
        .unwrap();
        let exists = one(
            &node_a,
            "ticket-2",
            ExpectedVersion::NoStream,
            new_command(),
        )
        .await;
        assert!(
            matches!(
                exists,
                Err(AppendError::WrongExpectedVersion {
                    actual: Some(1),
                    ..
                })
            ),
            "{exists:?}"
        );
        // A command id node A used is a duplicate on node B too.
        let command_id = new_command();
        let original = one(&node_a, "ticket-3", ExpectedVersion::NoStream, command_id)
            .await
            .unwrap();
        let retried = one(&node_b, "ticket-3", ExpectedVersion::NoStream, command_id)
            .await
            .unwrap();
        assert!(retried.duplicate);
        assert_eq!(retried.last_position, original.last_position);
        let versions: Vec<u64> = node_a
            .read_stream(&stream("ticket-1"), 1, 100)
            .await
            .unwrap()
            .iter()
            .map(|r| r.stream_version)
            .collect();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
        assert!(node_b
            .verify(1, None, &mut |_, _| {})
            .await
            .unwrap()
            .is_intact());
        db
    })
    .await;
}

/// Two nodes appending at once keep making each other's memory stale; every append must still
/// succeed. (The fast path takes the head before it inserts, as the locked path does, so one
/// node's fast path and the other's locked path cannot deadlock; this load did not provoke the
/// old order's deadlock, which needs a narrow interleaving, so it guards the common case.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_busy_nodes_never_fail_each_other() {
    each_backend(|db| async move {
        let nodes = [open(&db).await, open(&db).await];
        let mut tasks = Vec::new();
        for task in 0..32 {
            let store = nodes[task % 2].clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..20 {
                    // Half to streams of their own, half to a few shared ones.
                    let (stream_id, expected) = if i % 2 == 0 {
                        (format!("ticket-own{task}-{i}"), ExpectedVersion::NoStream)
                    } else {
                        (format!("ticket-shared{}", i % 3), ExpectedVersion::Any)
                    };
                    let events = vec![event("E", json!({ "task": task, "i": i }))];
                    store
                        .append(&stream(&stream_id), expected, events, Uuid::now_v7())
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let (head, _) = nodes[0].head().await.unwrap();
        assert_eq!(head, 32 * 20);
        assert!(nodes[1]
            .verify(1, None, &mut |_, _| {})
            .await
            .unwrap()
            .is_intact());
        db
    })
    .await;
}

/// Stream heads a reader hints to the writer (`Store::hint_stream_heads`) let it plan appends
/// to existing streams from memory; a hint that is right, one that is stale (the stream moved
/// on since it was read) and one older than what the writer knows never give a wrong answer,
/// and the hash chains still verify.
#[tokio::test]
async fn hinted_stream_heads_right_or_stale_never_give_a_wrong_answer() {
    each_backend(|db| async move {
        let writer = open(&db).await;
        let s1 = stream("ticket-h1");
        let one = |store: &Store, expected| {
            let store = store.clone();
            let s1 = s1.clone();
            async move {
                store
                    .append(&s1, expected, vec![event("E", json!({}))], Uuid::now_v7())
                    .await
            }
        };
        one(&writer, ExpectedVersion::NoStream).await.unwrap();
        one(&writer, ExpectedVersion::Exact(1)).await.unwrap();
        let read = writer.read_stream(&s1, 1, 100).await.unwrap();
        assert_eq!(read.len(), 2);

        // A fresh node, hinted right: appends at version 3.
        let hinted = open(&db).await;
        hinted.hint_stream_heads(&read).await.unwrap();
        assert_eq!(
            one(&hinted, ExpectedVersion::Exact(2))
                .await
                .unwrap()
                .stream_version,
            3
        );
        // Another fresh node, hinted with what is now stale (version 2): the database decides.
        let stale = open(&db).await;
        stale.hint_stream_heads(&read).await.unwrap();
        assert_eq!(
            one(&stale, ExpectedVersion::Exact(3))
                .await
                .unwrap()
                .stream_version,
            4
        );
        let wrong = one(&stale, ExpectedVersion::Exact(2)).await;
        assert!(
            matches!(
                wrong,
                Err(AppendError::WrongExpectedVersion {
                    actual: Some(4),
                    ..
                })
            ),
            "{wrong:?}"
        );
        // An older hint than the writer's memory is ignored: it appends at 5 from memory.
        stale.hint_stream_heads(&read[..1]).await.unwrap();
        assert_eq!(
            one(&stale, ExpectedVersion::Exact(4))
                .await
                .unwrap()
                .stream_version,
            5
        );
        let versions: Vec<u64> = writer
            .read_stream(&s1, 1, 100)
            .await
            .unwrap()
            .iter()
            .map(|record| record.stream_version)
            .collect();
        assert_eq!(versions, [1, 2, 3, 4, 5]);
        assert!(writer
            .verify(1, None, &mut |_, _| {})
            .await
            .unwrap()
            .is_intact());
        db
    })
    .await;
}

/// The writer plans a batch while the one before it is in the database, as if that one would
/// commit as planned. Here it does not: a stale head (another node moved the stream) sends the
/// first batch to the database, which refuses that append. The second batch, planned on the
/// first one's memory plan, would chain ticket-1 on a version the log never got and the log
/// on records written at other times: the chains would not verify (`verify` below is what
/// catches it; the positions alone would still be contiguous). It must be planned again, and
/// every outcome must be the one the same appends get one at a time.
#[tokio::test]
async fn a_batch_planned_on_one_that_fell_back_to_the_database_is_planned_again() {
    each_backend(|db| async move {
        let fresh = if db.sqlite_path().is_some() {
            ScratchDb::sqlite().await
        } else {
            ScratchDb::postgres()
                .await
                .expect("postgres ran the first scenario")
        };
        let one_by_one = pipelined_or_not(&fresh, false).await;
        fresh.cleanup().await;
        let pipelined = pipelined_or_not(&db, true).await;
        assert_eq!(pipelined, one_by_one);
        db
    })
    .await;
}

/// Runs the scenario of the test above; `queued_at_once` queues both batches before the writer
/// runs (it then gathers them as two batches: the first reaches `BATCH_EVENTS_MAX`), or else
/// appends one at a time. Returns each outcome, rendered.
async fn pipelined_or_not(db: &ScratchDb, queued_at_once: bool) -> Vec<String> {
    let node_a = open(db).await;
    let node_b = open(db).await;
    append_one(&node_a, "ticket-1", ExpectedVersion::NoStream).await;
    // Node A remembers ticket-1 at version 1; node B moves it to 2.
    append_one(&node_b, "ticket-1", ExpectedVersion::Exact(1)).await;
    let events = |count: usize| {
        (0..count)
            .map(|index| event("E", json!({ "index": index })))
            .collect::<Vec<_>>()
    };
    let mut appends = vec![("ticket-1", ExpectedVersion::Exact(1), events(1))];
    for big in 1..=5 {
        let stream_id = [
            "ticket-big1",
            "ticket-big2",
            "ticket-big3",
            "ticket-big4",
            "ticket-big5",
        ];
        appends.push((stream_id[big - 1], ExpectedVersion::NoStream, events(1000)));
    }
    // The second batch: on the stale stream, on a stream the first batch creates, and new.
    appends.push(("ticket-1", ExpectedVersion::Any, events(1)));
    appends.push(("ticket-big1", ExpectedVersion::Exact(1000), events(1)));
    appends.push(("ticket-new", ExpectedVersion::NoStream, events(1)));
    let (discarded_before, batches_before) = (
        node_a.stats().discarded_plans.load(Ordering::Relaxed),
        node_a.stats().batches.load(Ordering::Relaxed),
    );
    let mut outcomes = Vec::new();
    if queued_at_once {
        // Unconstrained: queuing never yields to the writer, so it finds all of them queued.
        let queued = tokio::task::unconstrained(async {
            let mut queued = Vec::new();
            for (stream_id, expected, events) in appends {
                queued.push(
                    node_a
                        .append_queued(&stream(stream_id), expected, events, Uuid::now_v7())
                        .await
                        .unwrap(),
                );
            }
            queued
        })
        .await;
        for queued in queued {
            outcomes.push(queued.outcome().await);
        }
        assert_eq!(
            node_a.stats().batches.load(Ordering::Relaxed) - batches_before,
            2,
            "the appends went in two batches"
        );
        assert_eq!(
            node_a.stats().discarded_plans.load(Ordering::Relaxed) - discarded_before,
            1,
            "the second batch was planned on the first, and planned again"
        );
    } else {
        for (stream_id, expected, events) in appends {
            outcomes.push(
                node_a
                    .append(&stream(stream_id), expected, events, Uuid::now_v7())
                    .await,
            );
        }
    }
    assert_log_is_whole(&node_b, 5_005).await;
    outcomes
        .iter()
        .map(|outcome| format!("{outcome:?}"))
        .collect()
}

/// A retried command id that memory does not know sits in the second INSERT statement of a
/// batch planned from memory (SQLite inserts 64 rows per statement): the command index stops
/// it there, the whole transaction goes (the first statement's rows with it), and the batch is
/// planned again from the database. The retry is answered as the duplicate it is, every other
/// append once, and the log stays contiguous and verified.
#[tokio::test]
async fn a_repeated_command_id_past_the_first_insert_statement_replans_the_whole_batch() {
    each_backend(|db| async move {
        let store = open(&db).await;
        let retried_id = Uuid::now_v7();
        let original = store
            .append(
                &stream("ticket-retried"),
                ExpectedVersion::NoStream,
                vec![event("E", json!({}))],
                retried_id,
            )
            .await
            .unwrap();
        let planned_before = store.stats().planned_from_memory.load(Ordering::Relaxed);
        let batches_before = store.stats().batches.load(Ordering::Relaxed);
        // Unconstrained: queuing never yields to the writer, so one batch takes them all.
        let queued = tokio::task::unconstrained(async {
            let mut queued = Vec::new();
            for n in 0..100 {
                let (stream_id, expected, command_id) = if n == 80 {
                    (
                        "ticket-retried".to_owned(),
                        ExpectedVersion::NoStream,
                        retried_id,
                    )
                } else {
                    (
                        format!("ticket-{n}"),
                        ExpectedVersion::NoStream,
                        Uuid::now_v7(),
                    )
                };
                queued.push(
                    store
                        .append_queued(
                            &stream(&stream_id),
                            expected,
                            vec![event("E", json!({"n": n}))],
                            command_id,
                        )
                        .await
                        .unwrap(),
                );
            }
            queued
        })
        .await;
        let mut outcomes = Vec::new();
        for queued in queued {
            outcomes.push(queued.outcome().await.unwrap());
        }
        assert_eq!(
            store.stats().batches.load(Ordering::Relaxed) - batches_before,
            1,
            "one batch"
        );
        assert_eq!(
            store.stats().planned_from_memory.load(Ordering::Relaxed),
            planned_before,
            "planned again from the database, not committed as planned from memory"
        );
        assert!(outcomes[80].duplicate);
        assert_eq!(outcomes[80].last_position, original.last_position);
        let fresh: Vec<u64> = outcomes
            .iter()
            .enumerate()
            .filter(|(n, _)| *n != 80)
            .map(|(_, outcome)| {
                assert!(!outcome.duplicate);
                outcome.last_position
            })
            .collect();
        assert_eq!(fresh, (2..=100).collect::<Vec<u64>>());
        assert_log_is_whole(&store, 100).await;
        db
    })
    .await;
}

/// The log holds positions 1 to `last`, each once and in order, and both hash chains verify.
async fn assert_log_is_whole(store: &Store, last: u64) {
    assert!(store
        .verify(1, None, &mut |_, _| {})
        .await
        .unwrap()
        .is_intact());
    let positions: Vec<u64> = store
        .read_all(0, last as usize + 1)
        .await
        .unwrap()
        .iter()
        .map(|record| record.position)
        .collect();
    assert_eq!(positions, (1..=last).collect::<Vec<u64>>());
}
