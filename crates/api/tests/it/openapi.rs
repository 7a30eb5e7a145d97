//! The OpenAPI document: `docs/openapi.json` is `api::openapi::document()` (refresh it with
//! `UPDATE_EXPECT=1`), it names every route the router serves, its references resolve, and
//! request bodies and real responses validate against it. The validator is a small JSON Schema
//! checker for the subset the document uses; where serde decides too, both must agree.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};
use store::scratch::ScratchDb;
use tower::ServiceExt;

use api::ApiConfig;

use crate::support::{Reply, TestApi};

/// The router's routes (`crates/api/src/lib.rs`), as `(method, path)`.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/admin/agents"),
    ("get", "/v1/admin/agents"),
    ("post", "/v1/admin/agents/{agent_id}"),
    ("put", "/v1/agents/{agent_id}/presence"),
    ("post", "/v1/admin/teams"),
    ("get", "/v1/admin/teams"),
    ("post", "/v1/admin/customers"),
    ("get", "/v1/admin/customers"),
    ("post", "/v1/admin/tokens"),
    ("get", "/v1/admin/tokens"),
    ("post", "/v1/admin/tokens/{token_id}/revoke"),
    ("post", "/v1/admin/webhooks"),
    ("get", "/v1/admin/webhooks"),
    ("post", "/v1/admin/webhooks/{subscription_id}/unsubscribe"),
    ("get", "/v1/admin/webhooks/{subscription_id}/deliveries"),
    ("post", "/v1/tickets"),
    ("get", "/v1/tickets"),
    ("get", "/v1/queues/next"),
    ("get", "/v1/reports/summary"),
    ("get", "/v1/tickets/{ticket_id}"),
    ("post", "/v1/tickets/{ticket_id}/commands"),
    ("get", "/v1/tickets/{ticket_id}/events"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    ("get", "/v1/audit/verify"),
    ("get", "/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn docs_openapi_json_is_the_document() {
    let text = serde_json::to_string_pretty(&api::openapi::document()).unwrap() + "\n";
    expect_test::expect_file!["../../../../docs/openapi.json"].assert_eq(&text);
}

#[test]
fn the_document_has_every_route_and_nothing_else() {
    let document = api::openapi::document();
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| ((*method).to_owned(), path.clone()))
        })
        .collect();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, routes);
}

#[test]
fn every_reference_resolves_and_every_operation_is_complete() {
    let document = api::openapi::document();
    assert_eq!(document["openapi"], "3.1.0");
    let mut references = vec![];
    collect_references(&document, &mut references);
    assert!(references.len() > 50, "{}", references.len());
    for reference in references {
        assert!(
            resolve(&document, &reference).is_some(),
            "{reference} does not resolve"
        );
    }
    let mut operation_ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|method| item.get(**method).is_some()) {
            let operation = &item[*method];
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(operation_ids.insert(id.to_owned()), "{id} twice");
            assert!(!operation["summary"].as_str().unwrap_or_default().is_empty());
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            let parameters: Vec<Value> = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|parameter| deref(&document, parameter).clone())
                .collect();
            for name in path_parameters(path) {
                assert!(
                    parameters
                        .iter()
                        .any(|parameter| parameter["in"] == "path" && parameter["name"] == name),
                    "{method} {path}: path parameter {name} is not declared"
                );
            }
        }
    }
}

/// Each command as a client sends it, and whether serde takes it: the schema must agree.
#[test]
fn command_bodies_validate_as_serde_reads_them() {
    let document = api::openapi::document();
    let schema = json!({ "$ref": "#/components/schemas/Command" });
    let agent = "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b";
    let cases = [
        json!({"type": "assign_agent", "agent": agent}),
        json!({"type": "assign_agent", "agent": agent, "reason": null}),
        json!({"type": "assign_agent", "agent": agent, "reason": "round robin"}),
        json!({"type": "assign_agent", "agent": "not a uuid"}),
        json!({"type": "assign_agent"}),
        json!({"type": "assign_agent", "agent": agent, "priority": "high"}),
        json!({"type": "assign_agents", "agent": agent}),
        json!({"agent": agent}),
        json!({"type": "unassign_agent"}),
        json!({"type": "set_priority", "priority": "urgent", "reason": "outage"}),
        json!({"type": "set_priority", "priority": "critical", "reason": "outage"}),
        json!({"type": "update_fields", "set": {"order": "A-1", "amount": 12, "paid": true}}),
        json!({"type": "update_fields", "set": {"amount": 1.5}}),
        json!({"type": "update_fields", "unset": ["order"], "subject": "New subject"}),
        json!({"type": "transition_ticket", "transition": "solve"}),
        json!({"type": "rate_satisfaction", "score": 5, "comment": "quick"}),
        json!({"type": "rate_satisfaction", "score": 300}),
        json!({"type": "rate_satisfaction", "score": -1}),
        json!({"type": "link_ticket", "other": agent, "kind": "parent"}),
        json!({"type": "link_ticket", "other": agent, "kind": "sibling"}),
        json!({"type": "attach_file", "attachment": {
            "id": agent, "name": "a.png", "content_type": "image/png", "size_bytes": 10,
            "sha256": "00",
        }}),
        json!({"type": "attach_file", "attachment": {"id": agent}, "visibility": "internal"}),
        json!({"type": "apply_sla", "policy_id": "p", "policy_version": 1, "reason": "vip",
            "targets": [{"metric": "first_response", "due_at": "2026-11-02T10:00:00Z"}]}),
        json!({"type": "record_sla_breach", "policy_id": "p", "metric": "m", "due_at": "soon"}),
        json!({"type": "escalate", "level": 2, "reason": "angry", "notify": [agent]}),
        json!({"type": "add_tags", "tags": ["vip", 3]}),
        json!("assign_agent"),
    ];
    for body in cases {
        let serde = serde_json::from_value::<domain::Command>(body.clone());
        let schema_verdict = validate(&document, &schema, &body);
        assert_eq!(
            schema_verdict.is_ok(),
            serde.is_ok(),
            "{body}: schema says {schema_verdict:?}, serde says {:?}",
            serde.err().map(|error| error.to_string())
        );
    }
}

/// Every route, called for real: each answer has a documented status, content type and shape.
#[tokio::test]
async fn real_responses_match_the_document() {
    let document = api::openapi::document();
    let config = ApiConfig {
        webhook_signing_key: Some(std::sync::Arc::from(&b"openapi test key"[..])),
        ..ApiConfig::default()
    };
    let api = TestApi::start_with(ScratchDb::sqlite().await, config).await;
    let mut seen = BTreeSet::new();
    let mut check = |method: &str, template: &str, reply: &Reply| {
        conforms(&document, method, template, reply);
        seen.insert((method.to_owned(), template.to_owned()));
    };
    let admin = api.admin.clone();

    let team = api
        .post("/v1/admin/teams", &admin, json!({"name": "Support"}))
        .await;
    check("post", "/v1/admin/teams", &team);
    let agent = api
        .post(
            "/v1/admin/agents",
            &admin,
            json!({"name": "Zhang San", "teams": [team.body["team_id"]]}),
        )
        .await;
    check("post", "/v1/admin/agents", &agent);
    let agent_path = format!(
        "/v1/admin/agents/{}",
        agent.body["agent_id"].as_str().unwrap()
    );
    let updated = api
        .post(
            &agent_path,
            &admin,
            json!({"skills": ["billing"], "languages": ["zh", "en"], "capacity": 8}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["skills"], json!(["billing"]));
    check("post", "/v1/admin/agents/{agent_id}", &updated);
    let stale = api
        .request(
            Method::POST,
            &agent_path,
            Some(&admin),
            Some(json!({"capacity": 9})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{:?}",
        stale.body
    );
    check("post", "/v1/admin/agents/{agent_id}", &stale);
    let presence_path = format!(
        "/v1/agents/{}/presence",
        agent.body["agent_id"].as_str().unwrap()
    );
    let online = api
        .request(
            Method::PUT,
            &presence_path,
            Some(&admin),
            Some(json!({"presence": "online", "reason": "start of shift"})),
            &[],
        )
        .await;
    assert_eq!(online.body["presence"], "online");
    check("put", "/v1/agents/{agent_id}/presence", &online);
    let nobody = api
        .request(
            Method::PUT,
            "/v1/agents/00000000-0000-0000-0000-000000000000/presence",
            Some(&admin),
            Some(json!({"presence": "online"})),
            &[],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    check("put", "/v1/agents/{agent_id}/presence", &nobody);
    let customer = api
        .post(
            "/v1/admin/customers",
            &admin,
            json!({"name": "Chen Jing", "email": "chen@example.com"}),
        )
        .await;
    check("post", "/v1/admin/customers", &customer);
    let token = api
        .post(
            "/v1/admin/tokens",
            &admin,
            json!({"role": "customer", "subject": customer.body["customer_id"], "label": "portal"}),
        )
        .await;
    check("post", "/v1/admin/tokens", &token);
    let unknown_field = api
        .post(
            "/v1/admin/teams",
            &admin,
            json!({"name": "Billing", "nme": "x"}),
        )
        .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    check("post", "/v1/admin/teams", &unknown_field);

    let create = json!({
        "channel": "web",
        "requester": {"id": customer.body["customer_id"], "name": "Chen Jing"},
        "subject": "无法支付 payment failed",
        "description": "The card is declined.",
        "ticket_type": "question",
        "priority": "high",
        "tags": ["billing"],
        "fields": {"order": "A-1", "amount": 12},
    });
    validate(
        &document,
        &json!({"$ref": "#/components/schemas/CreateTicketRequest"}),
        &create,
    )
    .unwrap();
    let created = api
        .request(
            Method::POST,
            "/v1/tickets",
            Some(&admin),
            Some(create),
            &[("idempotency-key", "create-1")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    check("post", "/v1/tickets", &created);
    let ticket = format!(
        "/v1/tickets/{}",
        created.body["ticket_id"].as_str().unwrap()
    );
    let commands = format!("{ticket}/commands");
    let assign = json!({"type": "assign_agent", "agent": agent.body["agent_id"]});
    let assigned = api
        .request(
            Method::POST,
            &commands,
            Some(&admin),
            Some(assign.clone()),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    check("post", "/v1/tickets/{ticket_id}/commands", &assigned);
    for (body, extra, status) in [
        (
            assign,
            ("if-match", "\"1\""),
            StatusCode::PRECONDITION_FAILED,
        ),
        (
            json!({"type": "transition_ticket", "transition": "fly"}),
            ("x-correlation-id", "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"type": "add_tags", "tags": ["a"], "colour": "red"}),
            ("x-correlation-id", "0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = api
            .request(Method::POST, &commands, Some(&admin), Some(body), &[extra])
            .await;
        assert_eq!(reply.status, status, "{}", reply.body);
        check("post", "/v1/tickets/{ticket_id}/commands", &reply);
    }

    let position = assigned.body["position"].as_u64().unwrap();
    let customer_token = token.body["token"].as_str().unwrap().to_owned();
    let agent_id = agent.body["agent_id"].as_str().unwrap();
    let month = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z";
    for (template, path, caller, status) in [
        (
            "/v1/tickets",
            format!("/v1/tickets?min_position={position}&sort=priority&limit=1"),
            &admin,
            StatusCode::OK,
        ),
        (
            "/v1/tickets",
            "/v1/tickets".to_owned(),
            &customer_token,
            StatusCode::OK,
        ),
        (
            "/v1/tickets",
            "/v1/tickets?sort=sideways".to_owned(),
            &admin,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/queues/next",
            format!("/v1/queues/next?agent={agent_id}&min_position={position}"),
            &admin,
            StatusCode::OK,
        ),
        (
            "/v1/queues/next",
            "/v1/queues/next".to_owned(),
            &admin,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/v1/queues/next",
            "/v1/queues/next".to_owned(),
            &customer_token,
            StatusCode::FORBIDDEN,
        ),
        (
            "/v1/reports/summary",
            format!("/v1/reports/summary?{month}&min_position={position}"),
            &admin,
            StatusCode::OK,
        ),
        (
            "/v1/reports/summary",
            format!("/v1/reports/summary?{month}&time_zone=Mars/Olympus"),
            &admin,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let reply = api.get(&path, caller).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.body);
        check("get", template, &reply);
    }
    let listed = api.get("/v1/tickets", &admin).await;
    assert_eq!(listed.body["items"][0]["tags"], json!(["billing"]));
    let own = api.get("/v1/tickets", &customer_token).await;
    assert_eq!(own.body["items"].as_array().unwrap().len(), 1);
    assert!(own.body["items"][0].get("tags").is_none());
    let next = api
        .get(&format!("/v1/queues/next?agent={agent_id}"), &admin)
        .await;
    assert_eq!(next.body["next"]["ticket_id"], created.body["ticket_id"]);
    // A position beyond the end of the log was never written: a 400 at once, not a wait and a
    // 503 (schemathesis counted that 503 as a server error).
    let config = ApiConfig {
        read_wait_max: Duration::from_millis(200),
        ..ApiConfig::default()
    };
    let impatient = TestApi::start_with(ScratchDb::sqlite().await, config).await;
    for (template, path) in [
        ("/v1/tickets", "/v1/tickets?min_position=1000".to_owned()),
        (
            "/v1/reports/summary",
            format!("/v1/reports/summary?{month}&min_position=1000"),
        ),
    ] {
        let beyond = impatient.get(&path, &impatient.admin).await;
        assert_eq!(beyond.status, StatusCode::BAD_REQUEST, "{}", beyond.body);
        assert!(beyond.body["detail"]
            .as_str()
            .unwrap()
            .contains("beyond the end of the log"));
        check("get", template, &beyond);
    }
    impatient.finish().await;
    let csv = api
        .request(
            Method::GET,
            &format!("/v1/reports/summary?{month}"),
            Some(&admin),
            None,
            &[("accept", "text/csv")],
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv
        .body
        .as_str()
        .unwrap()
        .contains("\nbacklog_by_age.7-30d,1\n"));
    check("get", "/v1/reports/summary", &csv);

    for (template, path) in [
        ("/v1/admin/agents", "/v1/admin/agents".to_owned()),
        ("/v1/admin/teams", "/v1/admin/teams".to_owned()),
        ("/v1/admin/customers", "/v1/admin/customers".to_owned()),
        ("/v1/admin/tokens", "/v1/admin/tokens".to_owned()),
        ("/v1/tickets/{ticket_id}", ticket.clone()),
        ("/v1/tickets/{ticket_id}", "/v1/tickets/nope".to_owned()),
        ("/v1/tickets/{ticket_id}/events", format!("{ticket}/events")),
        (
            "/v1/tickets/{ticket_id}/events",
            format!("{ticket}/events?limit=1"),
        ),
        ("/v1/events", "/v1/events?after=1&limit=3".to_owned()),
        ("/v1/audit/verify", "/v1/audit/verify".to_owned()),
        ("/v1/openapi.json", "/v1/openapi.json".to_owned()),
        ("/healthz", "/healthz".to_owned()),
        ("/readyz", "/readyz".to_owned()),
        ("/metrics", "/metrics".to_owned()),
    ] {
        check("get", template, &api.get(&path, &admin).await);
    }
    check(
        "get",
        "/v1/tickets/{ticket_id}",
        &api.get(&ticket, &customer_token).await,
    );
    check(
        "get",
        "/v1/tickets/{ticket_id}/events",
        &api.get(&format!("{ticket}/events"), &customer_token).await,
    );
    check(
        "get",
        "/v1/events",
        &api.get("/v1/events", &customer_token).await,
    );
    let anonymous = api.request(Method::GET, &ticket, None, None, &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    check("get", "/v1/tickets/{ticket_id}", &anonymous);

    // The stream never ends: read its head only.
    let stream = api
        .router
        .clone()
        .oneshot(
            Request::get("/v1/events/stream?after=0")
                .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let stream = Reply {
        status: stream.status(),
        headers: stream.headers().clone(),
        body: Value::Null,
    };
    check("get", "/v1/events/stream", &stream);

    let revoke = format!(
        "/v1/admin/tokens/{}/revoke",
        token.body["token_id"].as_str().unwrap()
    );
    let revoked = api
        .request(Method::POST, &revoke, Some(&admin), None, &[])
        .await;
    check("post", "/v1/admin/tokens/{token_id}/revoke", &revoked);

    let webhook = api
        .post(
            "/v1/admin/webhooks",
            &admin,
            json!({"name": "crm", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(webhook.status, StatusCode::CREATED, "{}", webhook.body);
    check("post", "/v1/admin/webhooks", &webhook);
    let refused = api
        .post(
            "/v1/admin/webhooks",
            &admin,
            json!({"name": "crm", "url": "ftp://nowhere", "event_types": ["*"]}),
        )
        .await;
    check("post", "/v1/admin/webhooks", &refused);
    let webhooks = api.get("/v1/admin/webhooks", &admin).await;
    check("get", "/v1/admin/webhooks", &webhooks);
    let subscription = webhook.body["subscription_id"].as_str().unwrap();
    let deliveries = api
        .get(
            &format!("/v1/admin/webhooks/{subscription}/deliveries?state=pending&limit=5"),
            &admin,
        )
        .await;
    assert_eq!(deliveries.status, StatusCode::OK, "{}", deliveries.body);
    check(
        "get",
        "/v1/admin/webhooks/{subscription_id}/deliveries",
        &deliveries,
    );
    let bad_query = api
        .get(
            &format!("/v1/admin/webhooks/{subscription}/deliveries?state=lost"),
            &admin,
        )
        .await;
    check(
        "get",
        "/v1/admin/webhooks/{subscription_id}/deliveries",
        &bad_query,
    );
    let ended = api
        .request(
            Method::POST,
            &format!("/v1/admin/webhooks/{subscription}/unsubscribe"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    check(
        "post",
        "/v1/admin/webhooks/{subscription_id}/unsubscribe",
        &ended,
    );

    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(seen, routes, "call every route");
    api.finish().await;
}

/// Asserts that `reply` is an answer the document gives to `method template`.
fn conforms(document: &Value, method: &str, template: &str, reply: &Reply) {
    let what = format!("{method} {template} -> {}", reply.status.as_u16());
    assert_ne!(
        reply.body["detail"], "no such route; see /v1/openapi.json",
        "{what}: the router does not serve it"
    );
    let operation = &document["paths"][template][method];
    let response = operation["responses"]
        .get(reply.status.as_str())
        .unwrap_or_else(|| panic!("{what} is not documented: {}", reply.body));
    let response = deref(document, response);
    let content_type = reply.headers[header::CONTENT_TYPE].to_str().unwrap();
    let essence = content_type.split(';').next().unwrap().trim();
    let schema = response["content"]
        .get(essence)
        .unwrap_or_else(|| panic!("{what}: content type {essence} is not documented"))["schema"]
        .clone();
    if essence.ends_with("json") {
        if let Err(error) = validate(document, &schema, &reply.body) {
            panic!("{what}: {error}\n{:#}", reply.body);
        }
    }
    for name in response["headers"].as_object().unwrap().keys() {
        let optional = [
            "Idempotent-Replayed",
            "Location",
            "WWW-Authenticate",
            "Retry-After",
        ];
        assert!(
            optional.contains(&name.as_str()) || reply.headers.contains_key(name.as_str()),
            "{what}: no {name} header"
        );
    }
}

fn collect_references(value: &Value, references: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => references.push(reference.clone()),
                    _ => collect_references(value, references),
                }
            }
        }
        Value::Array(values) => values
            .iter()
            .for_each(|value| collect_references(value, references)),
        _ => {}
    }
}

fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    document.pointer(reference.strip_prefix('#')?)
}

/// The object itself, or what its `$ref` points at.
fn deref<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => resolve(document, reference).unwrap(),
        None => value,
    }
}

fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Checks `value` against `schema`, for the keywords the document uses.
fn validate(document: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let object = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{value} is not allowed")),
        Value::Object(object) => object,
        _ => return Err(format!("{schema} is not a schema")),
    };
    for keyword in object.keys() {
        let known = [
            "$ref",
            "type",
            "const",
            "enum",
            "format",
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "allOf",
            "anyOf",
            "oneOf",
            "description",
            "default",
            "title",
            "examples",
            "pattern",
            "prefixItems",
            "minItems",
            "maxItems",
        ];
        assert!(
            known.contains(&keyword.as_str()),
            "unchecked keyword {keyword}"
        );
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let target = resolve(document, reference).ok_or(format!("{reference} is missing"))?;
        validate(document, target, value)?;
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(types) => types.iter().filter_map(Value::as_str).collect(),
            single => vec![single.as_str().unwrap()],
        };
        if !types.iter().any(|kind| is_type(kind, value)) {
            return Err(format!("{value} is not {types:?}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Err(format!("{value} is not {constant}"));
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(value) {
            return Err(format!("{value} is not one of {values:?}"));
        }
    }
    if let (Some(format), Some(text)) = (schema["format"].as_str(), value.as_str()) {
        let ok = match format {
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            "date-time" => text.parse::<jiff::Timestamp>().is_ok(),
            _ => true,
        };
        if !ok {
            return Err(format!("{text:?} is not a {format}"));
        }
    }
    if let Some(number) = value.as_f64().filter(|_| value.is_number()) {
        if schema["minimum"]
            .as_f64()
            .is_some_and(|minimum| number < minimum)
        {
            return Err(format!("{number} is below {}", schema["minimum"]));
        }
        if schema["maximum"]
            .as_f64()
            .is_some_and(|maximum| number > maximum)
        {
            return Err(format!("{number} is above {}", schema["maximum"]));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min)
            || schema["maxLength"].as_u64().is_some_and(|max| chars > max)
        {
            return Err(format!("{text:?} has the wrong length"));
        }
    }
    if let Some(fields) = value.as_object() {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            if !fields.contains_key(required.as_str().unwrap()) {
                return Err(format!("{value} lacks {required}"));
            }
        }
        for (name, field) in fields {
            match properties.and_then(|properties| properties.get(name)) {
                Some(property) => validate(document, property, field)
                    .map_err(|error| format!("{name}: {error}"))?,
                None => {
                    if let Some(additional) = schema.get("additionalProperties") {
                        validate(document, additional, field)
                            .map_err(|error| format!("unknown field {name}: {error}"))?;
                    }
                }
            }
        }
    }
    if let Some(values) = value.as_array() {
        let count = values.len() as u64;
        if schema["minItems"].as_u64().is_some_and(|min| count < min)
            || schema["maxItems"].as_u64().is_some_and(|max| count > max)
        {
            return Err(format!("{value} has the wrong number of items"));
        }
        // `items` describes what follows the `prefixItems`.
        let prefix = schema["prefixItems"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (index, item) in values.iter().enumerate() {
            let item_schema = match prefix.get(index) {
                Some(schema) => schema,
                None => match schema.get("items") {
                    Some(items) => items,
                    None => continue,
                },
            };
            validate(document, item_schema, item).map_err(|error| format!("[{index}]: {error}"))?;
        }
    }
    for all in schema["allOf"].as_array().into_iter().flatten() {
        validate(document, all, value)?;
    }
    if let Some(any) = schema["anyOf"].as_array() {
        if !any.iter().any(|one| validate(document, one, value).is_ok()) {
            return Err(format!("{value} matches none of anyOf"));
        }
    }
    if let Some(one_of) = schema["oneOf"].as_array() {
        let errors: Vec<String> = one_of
            .iter()
            .filter_map(|one| validate(document, one, value).err())
            .collect();
        if errors.len() + 1 != one_of.len() {
            let matches = one_of.len() - errors.len();
            return Err(format!("{value} matches {matches} of oneOf"));
        }
    }
    Ok(())
}

fn is_type(kind: &str, value: &Value) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => panic!("unknown type {kind}"),
    }
}

/// Every `enum` in the document is an array: a `null` one made schemathesis refuse the document
/// (found by fuzzing the running server).
#[test]
fn every_enum_is_a_list_of_values() {
    fn walk(value: &Value, path: &str, bad: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "enum" && !child.is_array() {
                        bad.push(format!("{path}/enum"));
                    }
                    walk(child, &format!("{path}/{key}"), bad);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}/{index}"), bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    walk(&api::openapi::document(), "", &mut bad);
    assert!(bad.is_empty(), "enums that are not lists: {bad:?}");
}
