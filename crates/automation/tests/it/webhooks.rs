//! Webhooks against a real local HTTP receiver (axum on 127.0.0.1:0) that fails some requests
//! (seeded; the seed is printed, `DOCKET_SEED` replays). Time is a manual clock: the test moves
//! it to each next due time, so retries follow the backoff schedule without sleeping. Checks:
//! every signature verifies, every event arrives at least once and the receiver's de-duplication
//! by event id sees each once, retries wait exactly the scheduled delay, a receiver that never
//! answers 2xx gets a dead letter after `ATTEMPTS_MAX` attempts, and a dispatcher reopened
//! midway (a restart) carries on from the log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use automation::webhook::{
    delivery_log, retry_delay, subscribe, subscription_secret, verify_signature, DeliveryState,
    Dispatcher, ATTEMPTS_MAX,
};
use automation::WebhookClient;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::Role;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use store::scratch::ScratchDb;
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use uuid::Uuid;

use crate::support::*;

pub(crate) const SIGNING_KEY: &[u8] = b"test signing key";

#[derive(Debug)]
pub(crate) struct Receiver {
    secret: String,
    clock: Arc<Mutex<Timestamp>>,
    /// Fails every request when true; else fails when the seeded generator says so, unless
    /// `reliable`.
    always_fail: bool,
    reliable: bool,
    rng: u64,
    received: Vec<Uuid>,
    unique: BTreeSet<Uuid>,
    bad_signatures: usize,
}

impl Receiver {
    fn next_fails(&mut self) -> bool {
        // xorshift64: small, seeded, deterministic.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.always_fail || (!self.reliable && self.rng % 10 < 4)
    }
}

pub(crate) type Shared = Arc<Mutex<Receiver>>;

impl Receiver {
    /// A receiver that answers 200 to every well-signed request.
    pub(crate) fn reliable(clock: Arc<Mutex<Timestamp>>) -> Shared {
        Arc::new(Mutex::new(Receiver {
            secret: String::new(),
            clock,
            always_fail: false,
            reliable: true,
            rng: 1,
            received: Vec::new(),
            unique: BTreeSet::new(),
            bad_signatures: 0,
        }))
    }

    pub(crate) fn set_secret(&mut self, secret: String) {
        self.secret = secret;
    }

    /// Every delivery received, in order, duplicates included.
    pub(crate) fn received(&self) -> &[Uuid] {
        &self.received
    }

    pub(crate) fn bad_signatures(&self) -> usize {
        self.bad_signatures
    }
}

/// The receiver's routes.
pub(crate) fn receiver_app(receiver: Shared) -> axum::Router {
    axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver)
}

async fn receive(State(receiver): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut receiver = receiver.lock().unwrap();
    let now = *receiver.clock.lock().unwrap();
    let signature = headers
        .get("docket-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if verify_signature(
        &receiver.secret,
        signature,
        &body,
        now,
        SignedDuration::from_mins(5),
    )
    .is_err()
    {
        receiver.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let event_id: Uuid = headers["docket-event-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        payload["id"],
        json!(event_id),
        "the body names the event it carries"
    );
    let attempt: u32 = headers["docket-delivery-attempt"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The flaky receiver fails at random but never more than three times in a row for one
    // event, so every event gets through before ATTEMPTS_MAX (a 40 % failure rate would
    // otherwise dead-letter some event in about 1 % of runs).
    if receiver.next_fails() && (receiver.always_fail || attempt < 4) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    receiver.received.push(event_id);
    receiver.unique.insert(event_id);
    StatusCode::OK
}

pub(crate) async fn start_receiver(receiver: Shared) -> String {
    let app = receiver_app(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/hooks")
}

/// Subscribes "crm" to `TagsAdded` at `url` and gives the receiver the subscription's secret, so
/// it can check signatures; the subscription's id.
pub(crate) async fn subscribe_receiver(
    store: &Store,
    receiver: &Shared,
    url: &str,
    now: Timestamp,
) -> Uuid {
    let subscription = subscribe(store, "crm", url, vec!["TagsAdded".to_owned()], now)
        .await
        .unwrap()
        .unwrap()
        .subscription_id;
    receiver
        .lock()
        .unwrap()
        .set_secret(subscription_secret(SIGNING_KEY, subscription));
    subscription
}

pub(crate) async fn append_ticket_event(store: &Store, ticket: Uuid, version: u64) -> Uuid {
    let stream = StreamId::new(format!("ticket-{ticket}")).unwrap();
    let event_id = Uuid::now_v7();
    let tags = serde_json::value::to_raw_value(&json!({"tags": [format!("t{version}")]})).unwrap();
    let event = NewEvent {
        event_id,
        event_type: "TagsAdded".to_owned(),
        schema_version: 1,
        payload: tags,
        metadata: serde_json::value::to_raw_value(&json!({})).unwrap(),
    };
    let expected = if version == 1 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version - 1)
    };
    store
        .append(&stream, expected, vec![event], Uuid::now_v7())
        .await
        .unwrap();
    event_id
}

#[allow(
    clippy::print_stderr,
    reason = "the seed is printed so a failure can be replayed"
)]
fn seed() -> u64 {
    let seed = std::env::var("DOCKET_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| u64::from(Uuid::now_v7().as_fields().1) | 1);
    eprintln!("webhook receiver seed {seed} (replay with DOCKET_SEED={seed})");
    seed
}

#[tokio::test]
async fn deliveries_are_signed_retried_with_backoff_and_dead_lettered() {
    let _ = Role::System; // the support module is shared with the trigger tests
    let seed = seed();
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let clock = Arc::new(Mutex::new(at(0)));
    let mut subscriptions = BTreeMap::new();
    let mut receivers = Vec::new();
    for (name, always_fail) in [("flaky", false), ("down", true)] {
        let receiver = Arc::new(Mutex::new(Receiver {
            secret: String::new(),
            clock: clock.clone(),
            always_fail,
            reliable: false,
            rng: seed,
            received: Vec::new(),
            unique: BTreeSet::new(),
            bad_signatures: 0,
        }));
        let url = start_receiver(receiver.clone()).await;
        let subscription = subscribe(&store, name, &url, vec!["TagsAdded".to_owned()], at(0))
            .await
            .unwrap()
            .unwrap();
        receiver.lock().unwrap().secret =
            subscription_secret(SIGNING_KEY, subscription.subscription_id);
        subscriptions.insert(name, subscription.subscription_id);
        receivers.push(receiver);
    }
    let ticket = Uuid::now_v7();
    let mut sent = BTreeSet::new();
    for version in 1..=20 {
        sent.insert(append_ticket_event(&store, ticket, version).await);
    }
    let key: Arc<[u8]> = Arc::from(SIGNING_KEY);
    let client = WebhookClient::new(None).unwrap();
    let mut dispatcher = Dispatcher::open(store.clone(), key.clone(), client.clone())
        .await
        .unwrap();
    let mut steps = 0;
    let mut reopened = false;
    loop {
        let now = *clock.lock().unwrap();
        while dispatcher.catch_up(now).await.unwrap() > 0 {}
        dispatcher.deliver_due(now).await.unwrap();
        steps += 1;
        assert!(steps < 1_000, "seed {seed}: deliveries do not settle");
        if steps == 3 && !reopened {
            // A restart: everything the dispatcher knew comes back from the log.
            let pending = dispatcher.pending();
            dispatcher = Dispatcher::open(store.clone(), key.clone(), client.clone())
                .await
                .unwrap();
            while dispatcher.catch_up(now).await.unwrap() > 0 {}
            assert_eq!(dispatcher.pending(), pending, "seed {seed}");
            reopened = true;
        }
        match dispatcher.next_due() {
            Some(due) => *clock.lock().unwrap() = due.max(now),
            None => break,
        }
    }
    {
        let flaky = receivers[0].lock().unwrap();
        assert_eq!(flaky.bad_signatures, 0, "seed {seed}");
        assert_eq!(flaky.unique, sent, "seed {seed}: every event arrives");
        assert!(flaky.received.len() >= sent.len());
        let down = receivers[1].lock().unwrap();
        assert_eq!(down.bad_signatures, 0, "seed {seed}");
        assert!(down.unique.is_empty());
    }
    // The delivery logs: flaky's all delivered, with retry times exactly as scheduled; down's
    // all dead letters after ATTEMPTS_MAX attempts.
    let log = delivery_log(&store, subscriptions["flaky"]).await.unwrap();
    assert_eq!(log.deliveries.len(), sent.len());
    let mut retried = 0;
    for delivery in &log.deliveries {
        assert_eq!(delivery.state, DeliveryState::Delivered, "seed {seed}");
        for pair in delivery.attempts.windows(2) {
            retried += 1;
            assert_eq!(
                pair[1].at - pair[0].at,
                retry_delay(pair[0].attempt, delivery.event_id),
                "seed {seed}: attempt {} waits its backoff",
                pair[1].attempt
            );
        }
    }
    assert!(
        retried > 0,
        "seed {seed}: a 40% failure rate retries something"
    );
    let log = delivery_log(&store, subscriptions["down"]).await.unwrap();
    assert_eq!(log.deliveries.len(), sent.len());
    for delivery in &log.deliveries {
        assert_eq!(delivery.state, DeliveryState::DeadLetter);
        assert_eq!(delivery.attempts.len(), ATTEMPTS_MAX as usize);
        assert_eq!(delivery.attempts.last().unwrap().status, Some(503));
    }
    drop(store);
    db.cleanup().await;
}

/// Regression: a dispatcher learned other writers' outcomes only when it opened, so one that
/// opened before a previous leader's last deliveries were recorded (a failover overlap) made
/// those attempts again, and could record a failure, even a dead letter, after `Delivered`.
#[tokio::test]
async fn outcomes_recorded_by_another_dispatcher_are_not_attempted_again() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let clock = Arc::new(Mutex::new(at(0)));
    let receiver = Receiver::reliable(clock.clone());
    let url = start_receiver(receiver.clone()).await;
    subscribe_receiver(&store, &receiver, &url, at(0)).await;
    let ticket = Uuid::now_v7();
    let mut sent = Vec::new();
    for version in 1..=3 {
        sent.push(append_ticket_event(&store, ticket, version).await);
    }
    let open = || async {
        Dispatcher::open(
            store.clone(),
            Arc::from(SIGNING_KEY),
            WebhookClient::new(None).unwrap(),
        )
        .await
        .unwrap()
    };
    let (mut old, mut new) = (open().await, open().await);
    let now = at(0);
    while old.catch_up(now).await.unwrap() > 0 {}
    let delivered = old.deliver_due(now).await.unwrap();
    assert_eq!(delivered.len(), sent.len());
    while new.catch_up(now).await.unwrap() > 0 {}
    assert_eq!(
        new.pending(),
        0,
        "the other dispatcher's outcomes are folded"
    );
    assert!(new.deliver_due(now).await.unwrap().is_empty());
    assert_eq!(receiver.lock().unwrap().received(), sent.as_slice());
    drop(store);
    db.cleanup().await;
}

#[tokio::test]
async fn two_concurrent_subscriptions_with_one_name_make_one_subscription() {
    // review-7 finding 11: both read "no such name", then both appended with ExpectedVersion::Any.
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let url = "https://example.com/hook";
    for round in 0..10 {
        let name = format!("crm-{round}");
        let types = || vec!["TagsAdded".to_owned()];
        let (first, second) = tokio::join!(
            subscribe(&store, &name, url, types(), at(round)),
            subscribe(&store, &name, url, types(), at(round)),
        );
        let outcomes = [first.unwrap(), second.unwrap()];
        let made = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(made, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.iter().any(|outcome| matches!(
                outcome,
                Err(automation::webhook::SubscriptionError::NameTaken { .. })
            )),
            "round {round}: {outcomes:?}"
        );
    }
    let subscriptions = automation::webhook::Subscriptions::load(&store)
        .await
        .unwrap();
    assert_eq!(subscriptions.by_id.len(), 10);
    drop(store);
    db.cleanup().await;
}

#[tokio::test]
async fn a_new_subscription_receives_only_events_after_it() {
    // review-7 finding 10: a dispatcher catching up from its checkpoint scheduled events from
    // before the subscription existed.
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let clock = Arc::new(Mutex::new(at(0)));
    let receiver = Receiver::reliable(clock.clone());
    let url = start_receiver(receiver.clone()).await;
    let ticket = Uuid::now_v7();
    let before = append_ticket_event(&store, ticket, 1).await;
    let subscription = subscribe_receiver(&store, &receiver, &url, at(0)).await;
    let after = append_ticket_event(&store, ticket, 2).await;
    let mut dispatcher = Dispatcher::open(
        store.clone(),
        Arc::from(SIGNING_KEY),
        WebhookClient::new(None).unwrap(),
    )
    .await
    .unwrap();
    let now = at(0);
    while dispatcher.catch_up(now).await.unwrap() > 0 {}
    dispatcher.deliver_due(now).await.unwrap();
    let log = delivery_log(&store, subscription).await.unwrap();
    let scheduled: Vec<Uuid> = log.deliveries.iter().map(|d| d.event_id).collect();
    assert_eq!(scheduled, vec![after], "not {before}");
    assert_eq!(receiver.lock().unwrap().received(), [after].as_slice());
    drop(store);
    db.cleanup().await;
}
