//! The global feed: `GET /v1/events` pages through the whole log in position order, and
//! `GET /v1/events/stream` delivers the same records live as Server-Sent Events and resumes
//! after `Last-Event-ID` without losing or repeating one.

use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{header, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::{each_backend, TestApi, World};

/// Longest a test waits for one live event.
const EVENT_WAIT_MAX: Duration = Duration::from_secs(10);

/// One Server-Sent Event: `(id, event, data)`.
type SseEvent = (u64, String, Value);

/// Reads an SSE body incrementally, frame by frame, as a browser would.
struct SseReader {
    body: BodyDataStream,
    buffer: String,
}

impl SseReader {
    async fn open(api: &TestApi, token: &str, after: u64, last_event_id: Option<u64>) -> SseReader {
        let mut request = Request::builder()
            .uri(format!("/v1/events/stream?after={after}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = api.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        SseReader {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), waiting at most `EVENT_WAIT_MAX`.
    async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(EVENT_WAIT_MAX, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let frame: String = self.buffer.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in frame.lines() {
                        if let Some(value) = line.strip_prefix("id:") {
                            id = Some(value.trim().parse::<u64>().unwrap());
                        } else if let Some(value) = line.strip_prefix("event:") {
                            event = value.trim().to_owned();
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim_start());
                        }
                    }
                    if let Some(id) = id {
                        return (id, event, serde_json::from_str(&data).unwrap());
                    }
                    continue;
                }
                let chunk = self
                    .body
                    .next()
                    .await
                    .expect("the stream stays open")
                    .unwrap();
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event arrives in time")
    }
}

#[tokio::test]
async fn the_feed_pages_through_the_whole_log() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        for _ in 0..3 {
            world.ticket_for(&api, &world.customer).await;
        }
        let analyst = world.token("analyst");
        let mut positions = Vec::new();
        let mut after = 0;
        loop {
            let page = api
                .get(&format!("/v1/events?after={after}&limit=4"), analyst)
                .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let events = page.body["events"].as_array().unwrap();
            assert!(events.len() <= 4);
            if events.is_empty() {
                assert_eq!(page.body["next_after"], after);
                break;
            }
            for event in events {
                positions.push(event["position"].as_u64().unwrap());
                // Analysts read everything, with metadata and hashes.
                assert!(event["metadata"].is_object() && event["global_hash"].is_string());
            }
            after = page.body["next_after"].as_u64().unwrap();
        }
        let expected: Vec<u64> = (1..=positions.len() as u64).collect();
        assert_eq!(positions, expected, "contiguous, each once, in order");
        let created = api.get("/v1/events?limit=1000", analyst).await;
        let tickets = created.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["type"] == "TicketCreated")
            .count();
        assert_eq!(tickets, 3);
        // Limits are clamped, never an error.
        let huge = api.get("/v1/events?limit=1000000", analyst).await;
        assert_eq!(huge.status, StatusCode::OK);
        let unknown = api.get("/v1/events?after=1&lmit=2", analyst).await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
        api
    })
    .await;
}

#[tokio::test]
async fn the_stream_is_live_and_resumes_after_the_last_event_id() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let auditor = world.token("auditor");
        let head = api.get("/v1/events?limit=1000", auditor).await.body["next_after"]
            .as_u64()
            .unwrap();
        // The history first: the stream starts after `after`.
        let mut stream = SseReader::open(&api, auditor, head - 2, None).await;
        assert_eq!(stream.next().await.0, head - 1);
        assert_eq!(stream.next().await.0, head);
        // Then live: a ticket created now arrives on the open stream.
        let ticket = world.ticket_for(&api, &world.customer).await;
        // (Creating a ticket may first reserve a block of ticket numbers.)
        let mut last = head;
        let (id, data) = loop {
            let (id, event, data) = stream.next().await;
            assert_eq!(id, last + 1, "contiguous positions");
            last = id;
            if event == "TicketCreated" {
                break (id, data);
            }
        };
        assert_eq!(data["stream_id"], format!("ticket-{ticket}"));
        assert_eq!(data["position"], id);
        let metrics = api.get("/metrics", auditor).await;
        assert!(metrics
            .body
            .as_str()
            .unwrap()
            .contains("docket_sse_clients 1"));
        drop(stream);
        // Events written while disconnected come after a reconnect with Last-Event-ID, which
        // wins over `after`; none is repeated.
        let commands = format!("/v1/tickets/{ticket}/commands");
        for tag in ["a", "b"] {
            let reply = api
                .post(
                    &commands,
                    &api.admin,
                    json!({"type": "add_tags", "tags": [tag]}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        let mut resumed = SseReader::open(&api, auditor, 0, Some(last)).await;
        let first = resumed.next().await;
        let second = resumed.next().await;
        assert_eq!((first.0, second.0), (last + 1, last + 2));
        assert_eq!(
            (first.1.as_str(), second.1.as_str()),
            ("TagsAdded", "TagsAdded")
        );
        assert_eq!(second.2["data"]["tags"], json!(["b"]));
        api
    })
    .await;
}
