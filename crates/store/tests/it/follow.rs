//! Subscriptions: catch up from a position, then follow appends live, in order, without gaps,
//! including appends made through another store instance (another node or process).

use std::time::Duration;

use store::ExpectedVersion;

use crate::{append_one, each_backend, open};

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
