//! Subscriptions: catch up from a position, then follow appends live, in order, without gaps,
//! including appends made through another store instance (another node or process).

use std::time::Duration;

use store::ExpectedVersion;
use uuid::Uuid;

use crate::{append_one, each_backend, event, open, stream};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn catches_up_then_follows_live() {
    each_backend(|db| async move {
        let store = open(&db).await;
        for i in 0..5 {
            append_one(&store, &format!("ticket-{i}"), ExpectedVersion::Any).await;
        }
        let mut subscription = store.subscribe(2);
        for expected in 3..=5 {
            let record = tokio::time::timeout(WAIT, subscription.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(record.position, expected);
        }
        // Nothing more yet: the next call waits.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), subscription.next())
                .await
                .is_err()
        );
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    append_one(&store, &format!("ticket-live{i}"), ExpectedVersion::Any).await;
                }
            })
        };
        for expected in 6..=25 {
            let record = tokio::time::timeout(WAIT, subscription.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(record.position, expected);
        }
        writer.await.unwrap();
        assert_eq!(subscription.position(), 25);
        db
    })
    .await;
}

#[tokio::test]
async fn follows_appends_of_another_node() {
    each_backend(|db| async move {
        let follower_node = open(&db).await;
        let writer_node = open(&db).await;
        let mut subscription = follower_node.subscribe(0);
        let reader = tokio::spawn(async move {
            let mut positions = Vec::new();
            for _ in 0..10 {
                let record = tokio::time::timeout(WAIT, subscription.next())
                    .await
                    .unwrap()
                    .unwrap();
                positions.push(record.position);
            }
            positions
        });
        for i in 0..10 {
            append_one(&writer_node, &format!("ticket-{i}"), ExpectedVersion::Any).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(reader.await.unwrap(), (1..=10).collect::<Vec<u64>>());
        db
    })
    .await;
}

/// Both replay reads (stepped and SQL-packed) give exactly what `read_all` gives (less ids and
/// hashes), across chunk and page boundaries, for any start and limit, with text that JSON
/// escapes (control characters, the packed read's separators, quotes, CJK) and an event at the
/// size bound.
#[tokio::test]
async fn packed_reads_of_an_empty_log_are_empty() {
    each_backend(|db| async move {
        let store = open(&db).await;
        for page in [
            store.read_all_packed(0, 100).await.unwrap(),
            store.read_all_concat(0, 100).await.unwrap(),
            store.read_all_packed(5, 100).await.unwrap(),
        ] {
            assert!(page.is_empty());
            assert_eq!(page.last_position(), None);
        }
        db
    })
    .await;
}

#[tokio::test]
async fn packed_reads_match_read_all() {
    each_backend(|db| async move {
        let store = open(&db).await;
        let chunk = store::PACKED_CHUNK_MAX as u64;
        let mut events = Vec::new();
        for index in 0..(2 * chunk + 37) {
            let text = format!("第{index}条 \u{1e}\u{1f}\"quoted\"\n\u{0}");
            events.push(event(
                "Said",
                serde_json::json!({ "text": text, "n": index }),
            ));
        }
        for batch in events.chunks(store::APPEND_EVENTS_MAX) {
            store
                .append(
                    &stream("ticket-packed"),
                    ExpectedVersion::Any,
                    batch.to_vec(),
                    Uuid::now_v7(),
                )
                .await
                .unwrap();
        }
        append_one(&store, "customer-1", ExpectedVersion::Any).await;
        let envelope = event("Big", serde_json::json!({ "text": "" }));
        let filler = store::EVENT_BYTES_MAX
            - envelope.event_type.len()
            - envelope.payload.get().len()
            - envelope.metadata.get().len();
        let big = event("Big", serde_json::json!({ "text": "x".repeat(filler) }));
        store
            .append(
                &stream("ticket-big"),
                ExpectedVersion::Any,
                vec![big],
                Uuid::now_v7(),
            )
            .await
            .unwrap();
        let (head, _) = store.head().await.unwrap();
        for (after, limit) in [
            (0, store::READ_LIMIT_MAX),
            (0, 1),
            (0, chunk as usize),
            (chunk - 1, chunk as usize + 2),
            (chunk, 3),
            (head - 2, 100),
            (head, 100),
            (head + 5, 100),
        ] {
            let records = store.read_all(after, limit).await.unwrap();
            for page in [
                store.read_all_packed(after, limit).await.unwrap(),
                store.read_all_concat(after, limit).await.unwrap(),
            ] {
                assert_eq!(page.len(), records.len(), "after {after} limit {limit}");
                assert_eq!(page.last_position(), records.last().map(|r| r.position));
                assert!(
                    page.iter().eq(records.iter().map(store::Record::view)),
                    "after {after} limit {limit}"
                );
            }
        }
        // Page by page to the head, as replay reads: every record once, in order.
        for limit in [7, chunk as usize, store::READ_LIMIT_MAX] {
            let mut position = 0;
            let mut pages = 0;
            loop {
                let page = store.read_all_packed(position, limit).await.unwrap();
                let records = store.read_all(position, limit).await.unwrap();
                assert!(page.iter().eq(records.iter().map(store::Record::view)));
                let Some(last) = page.last_position() else {
                    break;
                };
                position = last;
                pages += 1;
            }
            assert_eq!(position, head, "limit {limit}");
            assert_eq!(pages, head.div_ceil(limit as u64), "limit {limit}");
        }
        db
    })
    .await;
}

#[tokio::test]
async fn followers_of_one_process_share_the_tails_records_instead_of_copying_them() {
    each_backend(|db| async move {
        let store = open(&db).await;
        let (mut first, mut second) = (store.subscribe(0), store.subscribe(0));
        // Both caught up (an empty log), so what follows comes through the tail.
        for subscription in [&mut first, &mut second] {
            assert!(subscription.poll_available().await.unwrap().is_empty());
        }
        append_one(&store, "ticket-shared", ExpectedVersion::Any).await;
        let (a, b) = (
            tokio::time::timeout(WAIT, first.next_shared())
                .await
                .unwrap()
                .unwrap(),
            tokio::time::timeout(WAIT, second.next_shared())
                .await
                .unwrap()
                .unwrap(),
        );
        assert_eq!(a.position, 1);
        assert!(
            std::ptr::eq::<store::Record>(&*a, &*b),
            "one record, not two copies"
        );
        assert_eq!(a.to_record(), *b);
        db
    })
    .await;
}

#[tokio::test]
async fn records_taken_before_a_gap_are_returned_and_the_gap_reported_next() {
    each_backend(|db| async move {
        let store = open(&db).await;
        for i in 0..5 {
            append_one(&store, &format!("ticket-{i}"), ExpectedVersion::Any).await;
        }
        crate::tamper::tamper(&db, "DELETE FROM events WHERE position = 4").await;
        // A fresh subscription reads 1, 2, 3 and 5 from the database in one page.
        let mut subscription = store.subscribe(0);
        let first = tokio::time::timeout(WAIT, subscription.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.position, 1);
        let taken = subscription.take_buffered().unwrap();
        assert_eq!(
            taken
                .iter()
                .map(|record| record.position)
                .collect::<Vec<_>>(),
            vec![2, 3],
            "what continues the position comes back (they were dropped with the error)"
        );
        assert_eq!(subscription.position(), 3);
        let gap = tokio::time::timeout(WAIT, subscription.next())
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            gap.to_string().contains("skips from position 3 to 5"),
            "{gap}"
        );
        db
    })
    .await;
}
