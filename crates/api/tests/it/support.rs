//! A test server per backend: a fresh store, the router, a manual clock, an admin token, and a
//! client whose answers are `(status, body)` so that tests read as tables.

use std::sync::{Arc, Mutex};

use api::{ApiConfig, AppState, Clock};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use jiff::Timestamp;
use serde_json::{json, Value};
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
        TestApi::start_with(db, ApiConfig::default()).await
    }

    /// A test server with its own settings, for example a tiny rate limit.
    pub async fn start_with(db: ScratchDb, config: ApiConfig) -> TestApi {
        let store = store::Store::open_with(db.config.clone()).await.unwrap();
        let clock = Arc::new(ManualClock(Mutex::new(
            "2026-11-02T09:00:00Z".parse().unwrap(),
        )));
        let state = AppState::start(
            store,
            domain::BlueprintCatalog::builtin(),
            clock.clone(),
            config,
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
        call(&self.router, method, path, token, body, extra).await
    }

    /// Sends a request built by the test and returns the response with its body unread (for
    /// streams and for bodies the helpers would not build).
    pub async fn send(&self, request: Request<Body>) -> axum::response::Response {
        self.router.clone().oneshot(request).await.unwrap()
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
    each_backend_with(ApiConfig::default(), scenario).await;
}

/// Runs `scenario` on every backend, with the API configured by `config`.
pub async fn each_backend_with<F, Fut>(config: ApiConfig, scenario: F)
where
    F: Fn(TestApi) -> Fut,
    Fut: std::future::Future<Output = TestApi>,
{
    for db in ScratchDb::all().await {
        let api = TestApi::start_with(db, config.clone()).await;
        scenario(api).await.finish().await;
    }
}

/// Every role the API knows, in the order tables show them.
pub const ROLES: [&str; 7] = [
    "admin",
    "supervisor",
    "agent",
    "customer",
    "auditor",
    "analyst",
    "integration",
];

/// A small workspace: a team, two agents, two customers, and a token for every role (agent and
/// supervisor tokens act as the first agent, customer tokens as the first customer).
pub struct World {
    pub team: Value,
    pub agent: Value,
    pub other_agent: Value,
    pub customer: Value,
    pub other_customer: Value,
    /// `(role, token)` for every role in `ROLES`.
    pub tokens: Vec<(&'static str, String)>,
}

impl World {
    pub async fn new(api: &TestApi) -> World {
        let team = api
            .post("/v1/admin/teams", &api.admin, json!({"name": "Support"}))
            .await
            .body;
        let mut agents = Vec::new();
        for name in ["Zhang San", "Li Si"] {
            let reply = api
                .post(
                    "/v1/admin/agents",
                    &api.admin,
                    json!({"name": name, "teams": [team["team_id"]]}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            agents.push(reply.body);
        }
        let mut customers = Vec::new();
        for name in ["Chen Jing", "Wang Fang"] {
            let reply = api
                .post("/v1/admin/customers", &api.admin, json!({"name": name}))
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            customers.push(reply.body);
        }
        let mut tokens = Vec::new();
        for role in ROLES {
            let subject = match role {
                "agent" | "supervisor" => Some(&agents[0]["agent_id"]),
                "customer" => Some(&customers[0]["customer_id"]),
                _ => None,
            };
            tokens.push((role, api.token(role, subject).await));
        }
        let other_customer = customers.pop().unwrap();
        let customer = customers.pop().unwrap();
        let other_agent = agents.pop().unwrap();
        let agent = agents.pop().unwrap();
        World {
            team,
            agent,
            other_agent,
            customer,
            other_customer,
            tokens,
        }
    }

    pub fn token(&self, role: &str) -> &str {
        let (_, token) = self
            .tokens
            .iter()
            .find(|(name, _)| *name == role)
            .unwrap_or_else(|| panic!("no role {role}"));
        token
    }

    /// A request body for `POST /v1/tickets` on behalf of `customer`.
    pub fn new_ticket(customer: &Value) -> Value {
        json!({
            "channel": "web",
            "requester": {"id": customer["customer_id"], "name": "Chen Jing"},
            "subject": "无法支付 payment failed",
            "description": "The card is declined.",
            "ticket_type": "question",
        })
    }

    /// Creates a ticket for `customer` as the admin and returns its id.
    pub async fn ticket_for(&self, api: &TestApi, customer: &Value) -> String {
        let reply = api
            .post("/v1/tickets", &api.admin, World::new_ticket(customer))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.body["ticket_id"].as_str().unwrap().to_owned()
    }
}

/// One request through `router` (a test server's, or another node's), its answer read whole.
pub async fn call(
    router: &Router,
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
    let response = router.clone().oneshot(request).await.unwrap();
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

/// The `[automation]` section of a `docket.toml` text, compiled.
pub fn automation_section(text: &str) -> Arc<automation::Automation> {
    #[derive(serde::Deserialize)]
    struct File {
        automation: automation::AutomationSection,
    }
    let file: File = toml::from_str(text).unwrap();
    Arc::new(file.automation.compile().unwrap())
}
