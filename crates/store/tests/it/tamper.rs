//! Tampering with the database directly is detected by `verify`: one changed payload byte, a
//! deleted row (middle and tail), and two swapped rows; an intact log verifies, also by range.

use serde_json::json;
use sqlx::{Connection, Executor};
use store::scratch::ScratchDb;
use store::{ExpectedVersion, Store};
use uuid::Uuid;

use crate::{each_backend, event, open, stream};

/// Ten events over three streams, so that chains interleave.
async fn seed(store: &Store) {
    for i in 0..10 {
        let stream_id = format!("ticket-{}", i % 3);
        store
            .append(
                &stream(&stream_id),
                ExpectedVersion::Any,
                vec![event("E", json!({ "i": i, "text": "abc" }))],
                Uuid::now_v7(),
            )
            .await
            .unwrap();
    }
}

pub(crate) async fn tamper(db: &ScratchDb, sql: &str) {
    match db.sqlite_path() {
        Some(path) => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            conn.execute(sql).await.unwrap();
            conn.close().await.unwrap();
        }
        None => {
            let mut conn = db.postgres_connection().await.unwrap();
            conn.execute(sql).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

/// Seeds a fresh log, applies `sql` behind the store's back, and renders verify's verdict.
async fn check(sql: &str) -> Vec<String> {
    let mut verdicts = Vec::new();
    for db in ScratchDb::all().await {
        let store = open(&db).await;
        seed(&store).await;
        assert!(store
            .verify(1, None, &mut |_, _| {})
            .await
            .unwrap()
            .is_intact());
        tamper(&db, sql).await;
        let report = store.verify(1, None, &mut |_, _| {}).await.unwrap();
        let verdict = match &report.first_break {
            Some(broken) => format!(
                "{:?} broken at {}: {}",
                db.kind, broken.position, broken.reason
            ),
            None => format!("{:?} intact", db.kind),
        };
        verdicts.push(verdict);
        drop(store);
        db.cleanup().await;
    }
    verdicts
}

fn assert_all(verdicts: Vec<String>, expected: &str) {
    for verdict in &verdicts {
        let (_, rest) = verdict.split_once(' ').unwrap();
        assert_eq!(rest, expected, "{verdicts:?}");
    }
}

#[tokio::test]
async fn an_intact_log_verifies_whole_and_by_range() {
    each_backend(|db| async move {
        let store = open(&db).await;
        seed(&store).await;
        let mut calls = Vec::new();
        let report = store
            .verify(1, None, &mut |checked, total| calls.push((checked, total)))
            .await
            .unwrap();
        assert!(report.is_intact());
        assert_eq!((report.from, report.to, report.checked), (1, 10, 10));
        assert_eq!(calls.last(), Some(&(10, 10)));
        assert_eq!(
            report.last_global_hash,
            store::hash::hex(&store.head().await.unwrap().1)
        );
        let middle = store.verify(4, Some(7), &mut |_, _| {}).await.unwrap();
        assert!(middle.is_intact());
        assert_eq!(middle.checked, 4);
        // A range past the head is empty, not broken (found in review).
        let beyond = store.verify(20, None, &mut |_, _| {}).await.unwrap();
        assert!(beyond.is_intact(), "{beyond:?}");
        assert_eq!(beyond.checked, 0);
        db
    })
    .await;
}

#[tokio::test]
async fn one_changed_payload_byte_is_detected() {
    // "abc" becomes "abd" in the fifth event.
    let verdicts =
        check("UPDATE events SET payload = replace(payload, 'abc', 'abd') WHERE position = 5")
            .await;
    assert_all(
        verdicts,
        "broken at 5: the stream hash does not match the record's contents",
    );
}

#[tokio::test]
async fn a_deleted_row_is_detected() {
    assert_all(
        check("DELETE FROM events WHERE position = 4").await,
        "broken at 4: position 4 is missing",
    );
}

#[tokio::test]
async fn a_deleted_tail_is_detected() {
    assert_all(
        check("DELETE FROM events WHERE position = 10").await,
        "broken at 10: the log ends at position 9 but its head says 10",
    );
}

#[tokio::test]
async fn a_deleted_stream_is_detected() {
    assert_all(
        check("DELETE FROM events WHERE stream_id = 'ticket-1'").await,
        "broken at 2: position 2 is missing",
    );
}

#[tokio::test]
async fn swapped_rows_are_detected() {
    // Positions 3 and 6 are versions 1 and 2 of ticket-2: swap the two events, keeping each
    // place's position and version, as an attacker reordering a ticket's history would.
    let swap = "UPDATE events SET position = -position, stream_version = -stream_version
                WHERE position IN (3, 6);
                UPDATE events SET position = 6, stream_version = 2 WHERE position = -3;
                UPDATE events SET position = 3, stream_version = 1 WHERE position = -6;";
    assert_all(
        check(swap).await,
        "broken at 3: the stream hash does not match the record's contents",
    );
}

#[tokio::test]
async fn swapped_commit_order_is_detected() {
    // Positions 1 and 2 are the first events of two different streams: reorder the commits.
    let swap = "UPDATE events SET position = -position WHERE position IN (1, 2);
                UPDATE events SET position = 2 WHERE position = -1;
                UPDATE events SET position = 1 WHERE position = -2;";
    assert_all(
        check(swap).await,
        "broken at 1: the global hash does not follow from the previous record",
    );
}

/// docs/HASH_CHAIN.md is precise enough to verify the log without our code: its Python script
/// agrees with `verify` on an intact log and on a tampered one.
#[tokio::test]
async fn the_documented_encoding_verifies_with_an_independent_script() {
    let db = ScratchDb::sqlite().await;
    let store = open(&db).await;
    seed(&store).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/verify_chain.py");
    let path = db.sqlite_path().unwrap();
    let run = || {
        let output = std::process::Command::new("python3")
            .arg(script)
            .arg(&path)
            .output()
            .expect("python3 runs (it is part of the development machine)");
        String::from_utf8(output.stdout).unwrap()
    };
    let head = store::hash::hex(&store.head().await.unwrap().1);
    assert_eq!(run(), format!("intact 10 {head}\n"));
    tamper(
        &db,
        "UPDATE events SET payload = replace(payload, 'abc', 'abd') WHERE position = 5",
    )
    .await;
    assert_eq!(
        run(),
        "broken at 5: the stream hash does not match the record's contents\n"
    );
    drop(store);
    db.cleanup().await;
}

/// The replay reads of SQLite (the stepped read and the SQL-packed one) report a tampered log
/// as an error, never panic: a hole in the positions, a text where a number belongs (SQLite
/// stores any value in any column), a name that is not UTF-8.
#[tokio::test]
async fn replay_reads_of_a_tampered_log_are_errors() {
    let cases = [
        "DELETE FROM events WHERE position = 4",
        "UPDATE events SET recorded_at = 'soon' WHERE position = 4",
        "UPDATE events SET category = x'ff' WHERE position = 4",
    ];
    let mut actual = Vec::new();
    for sql in cases {
        let db = ScratchDb::sqlite().await;
        let store = open(&db).await;
        seed(&store).await;
        tamper(&db, sql).await;
        actual.push(sql.to_owned());
        for (read, page) in [
            ("stepped", store.read_all_packed(0, 100).await),
            ("concat", store.read_all_concat(0, 100).await),
        ] {
            let verdict = match page {
                Ok(page) => format!("{} records", page.len()),
                Err(error) => error.to_string(),
            };
            actual.push(format!("  {read}: {verdict}"));
        }
        drop(store);
        db.cleanup().await;
    }
    expect_test::expect![[r#"
        DELETE FROM events WHERE position = 4
          stepped: event store data is corrupt: packed read after 0: position 5 where 4 was expected
          concat: event store data is corrupt: packed read after 0: position 5 where 4 was expected
        UPDATE events SET recorded_at = 'soon' WHERE position = 4
          stepped: event store data is corrupt: column recorded_at of position 4: Invalid type
          concat: event store data is corrupt: a packed record does not split: "4\u{1f}ticket-0\u{1f}ticket\u{1f}2\u{1f}E\u{1f}1\u{1f}soon\u{1f}{\"actor\":\"test\"}\u{1f}{\"i\":3,\"text\":\"abc\"}"
        UPDATE events SET category = x'ff' WHERE position = 4
          stepped: event store data is corrupt: column category of position 4: Invalid type
          concat: event store database error: error occurred while decoding column 0: invalid utf-8 sequence of 1 bytes from index 248"#]].assert_eq(&actual.join("\n"));
}
