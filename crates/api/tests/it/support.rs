//! A test server per backend: a fresh store, the router, a manual clock, an admin token, and a
//! client whose answers are `(status, body)` so that tests read as tables.

use std::sync::{Arc, Mutex};

use api::{ApiConfig, AppState, Clock};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use jiff::Timestamp;
use serde_json::Value;
use store::scratch::ScratchDb;
use tower::ServiceExt;

#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn advance(&self, seconds: i64) {
        let mut now = self.0.lock().unwrap();
        *now = now
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

pub struct TestApi {
    pub db: ScratchDb,
    pub state: AppState,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    pub admin: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApi {
    pub async fn start(db: ScratchDb) -> TestApi {
        let store = store::Store::open_with(db.config.clone()).await.unwrap();
        let clock = Arc::new(ManualClock(Mutex::new(
            "2026-11-02T09:00:00Z".parse().unwrap(),
        )));
        let state = AppState::start(
            store,
            domain::BlueprintCatalog::builtin(),
            clock.clone(),
            ApiConfig::default(),
        )
        .await
        .unwrap();
        let admin = state
            .issue_token(api::ApiRole::Admin, None, "test admin")
            .await
            .unwrap();
        let router = api::router(state.clone());
        TestApi {
            db,
            state,
            router,
            clock,
            admin,
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    /// Creates what a ticket needs and returns a token for `role` acting as `subject`.
    pub async fn token(&self, role: &str, subject: Option<&Value>) -> String {
        let reply = self
            .post(
                "/v1/admin/tokens",
                &self.admin,
                serde_json::json!({"role": role, "subject": subject}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn finish(self) {
        drop(self.router);
        drop(self.state);
        self.db.cleanup().await;
    }
}

/// Runs `scenario` on every backend.
pub async fn each_backend<F, Fut>(scenario: F)
where
    F: Fn(TestApi) -> Fut,
    Fut: std::future::Future<Output = TestApi>,
{
    for db in ScratchDb::all().await {
        let api = TestApi::start(db).await;
        scenario(api).await.finish().await;
    }
}
