//! The OpenAPI 3.1 document of the API, generated from the code. Request bodies, query strings
//! and responses are described by the types the handlers parse and build, through `schemars`
//! (JSON Schema 2020-12, the dialect OpenAPI 3.1 uses); error responses come from `ApiError`
//! itself; the paths mirror the router in `lib.rs`. `docs/openapi.json` is this document, and a
//! test keeps the two equal.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::Json;
use domain::Rejection;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::admin::{NewCustomer, NewTeam, NewToken};
use crate::agents::{AgentChanges, NewAgent, PresenceChange};
use crate::directory::{Agent, Customer, Team};
use crate::error::ApiError;
use crate::feed::{FeedQuery, VerifyQuery};
use crate::read::{ListParams, NextParams, ReportParams};
use crate::tickets::{CommandResponse, CreateTicketRequest, TrailQuery};

/// Where `$ref`s point: OpenAPI keeps named schemas under `components/schemas`.
const SCHEMAS_PATH: &str = "/components/schemas";

/// `GET /v1/openapi.json`.
pub async fn openapi_json() -> Json<Value> {
    Json(document())
}

/// The whole document. Deterministic: the same code always yields the same JSON.
pub fn document() -> Value {
    let mut schemas = Schemas::new();
    let mut paths = Map::new();
    for operation in operations(&mut schemas) {
        let item = paths
            .entry(operation.path.to_owned())
            .or_insert_with(|| json!({}));
        item[operation.method] = operation.to_json();
    }
    let problem = problem_schema(&mut schemas);
    let mut component_schemas = schemas.into_definitions();
    component_schemas.insert("Problem".to_owned(), problem);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Docket",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "An event-sourced customer-service ticket engine.",
            "description": "Commands change tickets and answer with the new stream version, the \
                global position and the events written; queries read tickets, their trails and \
                the global event feed directly from the log. The ticket list, the next ticket \
                in queue and reports come from read models, which follow the log closely but not \
                in step: pass `?min_position=` with the `position` a command answered with to \
                read your own writes. Every POST that changes a ticket accepts `Idempotency-Key`; \
                commands accept `If-Match` with a ticket version. Errors are RFC 9457 \
                problem+json.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [
            {"url": "http://127.0.0.1:8080", "description": "`docket serve` on its default address"},
        ],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "tickets", "description": "Ticket commands and reads."},
            {"name": "reports", "description": "Reports over any time range, from events alone."},
            {"name": "events", "description": "The log: global feed, live stream and chain verification."},
            {"name": "admin", "description": "The directory: agents, teams, customers and tokens."},
            {"name": "operations", "description": "Health, readiness, metrics and this document."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token made by `POST /v1/admin/tokens` (or the bootstrap \
                        admin token); it carries a role and, for agents, supervisors and \
                        customers, the identity it acts as.",
                },
            },
            "schemas": component_schemas,
            "parameters": parameters(),
            "headers": headers(),
            "responses": error_responses(),
        },
    })
}

/// Schemas of our types, named ones collected as definitions under `components/schemas`.
/// Requests are described as serde reads them (a field with a default may be left out),
/// responses as serde writes them (an `Option` is there, as `null` when empty).
struct Schemas {
    requests: SchemaGenerator,
    responses: SchemaGenerator,
}

impl Schemas {
    fn new() -> Schemas {
        let settings = SchemaSettings::draft2020_12().with(|settings| {
            settings.definitions_path = SCHEMAS_PATH.into();
            // The document carries no `$schema`: OpenAPI 3.1 names its dialect itself.
            settings.meta_schema = None;
        });
        Schemas {
            requests: settings.clone().for_deserialize().into_generator(),
            responses: settings.for_serialize().into_generator(),
        }
    }

    /// A `$ref` to the definition of `T` as a request body (or `T`'s schema itself for inlined
    /// types such as `u64`).
    fn request<T: JsonSchema>(&mut self) -> Value {
        self.requests.subschema_for::<T>().to_value()
    }

    /// A `$ref` to the definition of `T` as a response body.
    fn response<T: JsonSchema>(&mut self) -> Value {
        self.responses.subschema_for::<T>().to_value()
    }

    /// Every definition. A type used both ways must look the same both ways, or one name
    /// would stand for two schemas.
    fn into_definitions(mut self) -> Map<String, Value> {
        let mut definitions = self.requests.take_definitions(true);
        for (name, schema) in self.responses.take_definitions(true) {
            if let Some(request) = definitions.get(&name) {
                assert_eq!(
                    *request, schema,
                    "{name} reads and writes differently: give the response its own type"
                );
            }
            definitions.insert(name, schema);
        }
        definitions
    }

    /// Query parameters from a query-string struct: one per property, inlined.
    fn query<T: JsonSchema>(&mut self) -> Vec<Value> {
        let root = SchemaSettings::draft2020_12()
            .with(|settings| {
                settings.inline_subschemas = true;
                settings.meta_schema = None;
            })
            .into_generator()
            .into_root_schema_for::<T>()
            .to_value();
        let required = root["required"].as_array().cloned().unwrap_or_default();
        let Some(properties) = root["properties"].as_object() else {
            return vec![];
        };
        properties
            .iter()
            .map(|(name, schema)| {
                let mut schema = schema.clone();
                let description = schema.as_object_mut().and_then(|schema| {
                    // "No value" is the parameter's absence, not a JSON `null`.
                    if schema.get("default") == Some(&Value::Null) {
                        schema.remove("default");
                    }
                    schema.remove("description")
                });
                // A query parameter is absent or has a value; it is never JSON `null`.
                if let Some(types) = schema["type"].as_array() {
                    let types: Vec<Value> = types
                        .iter()
                        .filter(|kind| *kind != "null")
                        .cloned()
                        .collect();
                    schema["type"] = match types.as_slice() {
                        [single] => single.clone(),
                        _ => Value::Array(types),
                    };
                }
                // `get_mut`, not indexing: `schema["enum"]` would insert `"enum": null`, which is
                // not a valid schema (schemathesis refused the whole document over it).
                if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
                    values.retain(|value| !value.is_null());
                }
                let mut parameter = json!({
                    "name": name,
                    "in": "query",
                    "required": required.contains(&Value::String(name.clone())),
                    "schema": schema,
                });
                if let Some(description) = description {
                    parameter["description"] = description;
                }
                parameter
            })
            .collect()
    }
}

/// One method on one path.
struct Operation {
    method: &'static str,
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    tag: &'static str,
    /// Whether a bearer token is needed.
    authenticated: bool,
    parameters: Vec<Value>,
    request_body: Option<Value>,
    /// The success response: status, description, headers (component names) and content.
    success: (StatusCode, &'static str, &'static [&'static str], Value),
    /// Error statuses, each answered with problem+json.
    errors: &'static [StatusCode],
}

impl Operation {
    fn to_json(&self) -> Value {
        let (status, description, header_names, content) = &self.success;
        let mut success = json!({ "description": description, "content": content });
        success["headers"] = header_refs(header_names);
        let mut responses = Map::new();
        responses.insert(status.as_u16().to_string(), success);
        for error in self.errors {
            responses.insert(
                error.as_u16().to_string(),
                json!({ "$ref": format!("#/components/responses/{}", response_name(*error)) }),
            );
        }
        let mut operation = json!({
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": [self.tag],
            "responses": responses,
        });
        if !self.parameters.is_empty() {
            operation["parameters"] = Value::Array(self.parameters.clone());
        }
        if let Some(schema) = &self.request_body {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": schema } },
            });
        }
        if !self.authenticated {
            operation["security"] = json!([]);
        }
        operation
    }
}

fn header_refs(names: &[&str]) -> Value {
    let mut refs = Map::new();
    for name in ["X-Request-Id"].iter().chain(names) {
        refs.insert(
            (*name).to_owned(),
            json!({ "$ref": format!("#/components/headers/{name}") }),
        );
    }
    Value::Object(refs)
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn parameter_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// Errors every authenticated route can answer: no or a bad token, over the rate limit.
const BAD_TOKEN: [StatusCode; 2] = [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS];

const ADMIN_WRITE_ERRORS: &[StatusCode] = &[
    StatusCode::BAD_REQUEST,
    BAD_TOKEN[0],
    StatusCode::FORBIDDEN,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::UNPROCESSABLE_ENTITY,
    BAD_TOKEN[1],
    StatusCode::SERVICE_UNAVAILABLE,
];
const AGENT_WRITE_ERRORS: &[StatusCode] = &[
    StatusCode::BAD_REQUEST,
    BAD_TOKEN[0],
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::CONFLICT,
    StatusCode::PRECONDITION_FAILED,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::UNPROCESSABLE_ENTITY,
    BAD_TOKEN[1],
    StatusCode::SERVICE_UNAVAILABLE,
];
const ADMIN_READ_ERRORS: &[StatusCode] = &[BAD_TOKEN[0], StatusCode::FORBIDDEN, BAD_TOKEN[1]];
const TICKET_COMMAND_ERRORS: &[StatusCode] = &[
    StatusCode::BAD_REQUEST,
    BAD_TOKEN[0],
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::CONFLICT,
    StatusCode::PRECONDITION_FAILED,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::UNPROCESSABLE_ENTITY,
    BAD_TOKEN[1],
    StatusCode::SERVICE_UNAVAILABLE,
];
const TICKET_READ_ERRORS: &[StatusCode] = &[
    StatusCode::BAD_REQUEST,
    BAD_TOKEN[0],
    StatusCode::NOT_FOUND,
    BAD_TOKEN[1],
    StatusCode::SERVICE_UNAVAILABLE,
];
const LIST_ERRORS: &[StatusCode] = &[
    StatusCode::BAD_REQUEST,
    BAD_TOKEN[0],
    BAD_TOKEN[1],
    StatusCode::SERVICE_UNAVAILABLE,
];
const NEXT_TICKET_ERRORS: &[StatusCode] = &[
    StatusCode::BAD_REQUEST,
    BAD_TOKEN[0],
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    BAD_TOKEN[1],
    StatusCode::SERVICE_UNAVAILABLE,
];
const FEED_ERRORS: &[StatusCode] = &[
    StatusCode::BAD_REQUEST,
    BAD_TOKEN[0],
    StatusCode::FORBIDDEN,
    BAD_TOKEN[1],
    StatusCode::SERVICE_UNAVAILABLE,
];
/// A bad query, a missing token or role, the rate limit, the read side behind: as the feed.
const REPORT_ERRORS: &[StatusCode] = FEED_ERRORS;

/// Every route of `crate::router`, in its order.
fn operations(schemas: &mut Schemas) -> Vec<Operation> {
    let ticket_id = parameter_ref("TicketId");
    let command_headers = vec![
        parameter_ref("IdempotencyKey"),
        parameter_ref("IfMatch"),
        parameter_ref("CorrelationId"),
    ];
    vec![
        Operation {
            method: "post",
            path: "/v1/admin/agents",
            operation_id: "createAgent",
            summary: "Register an agent (admin, supervisor)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: Some(schemas.request::<NewAgent>()),
            success: (
                StatusCode::CREATED,
                "The agent, once the directory knows it.",
                &[],
                json_content(schemas.response::<Agent>()),
            ),
            errors: ADMIN_WRITE_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/admin/agents",
            operation_id: "listAgents",
            summary: "List agents (admin, supervisor, auditor, analyst)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "Every agent, by id.",
                &[],
                json_content(schemas.response::<views::AgentList>()),
            ),
            errors: ADMIN_READ_ERRORS,
        },
        Operation {
            method: "post",
            path: "/v1/admin/agents/{agent_id}",
            operation_id: "updateAgent",
            summary: "Change an agent's teams, skills, languages or capacity (admin, supervisor)",
            tag: "admin",
            authenticated: true,
            parameters: vec![parameter_ref("AgentId"), parameter_ref("AgentIfMatch")],
            request_body: Some(schemas.request::<AgentChanges>()),
            success: (
                StatusCode::OK,
                "The agent, once the directory knows the change.",
                &[],
                json_content(schemas.response::<Agent>()),
            ),
            errors: AGENT_WRITE_ERRORS,
        },
        Operation {
            method: "put",
            path: "/v1/agents/{agent_id}/presence",
            operation_id: "changePresence",
            summary: "Change an agent's presence (the agent themselves, supervisor, admin)",
            tag: "admin",
            authenticated: true,
            parameters: vec![parameter_ref("AgentId"), parameter_ref("AgentIfMatch")],
            request_body: Some(schemas.request::<PresenceChange>()),
            success: (
                StatusCode::OK,
                "The agent, once the directory knows the change. Going offline or on vacation \
                    hands the agent's open tickets back to their team's routing when the team \
                    is configured so.",
                &[],
                json_content(schemas.response::<Agent>()),
            ),
            errors: AGENT_WRITE_ERRORS,
        },
        Operation {
            method: "post",
            path: "/v1/admin/teams",
            operation_id: "createTeam",
            summary: "Create a team (admin)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: Some(schemas.request::<NewTeam>()),
            success: (
                StatusCode::CREATED,
                "The team, once the directory knows it.",
                &[],
                json_content(schemas.response::<Team>()),
            ),
            errors: ADMIN_WRITE_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/admin/teams",
            operation_id: "listTeams",
            summary: "List teams (every role but customer and integration)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "Every team, by id.",
                &[],
                json_content(schemas.response::<views::TeamList>()),
            ),
            errors: ADMIN_READ_ERRORS,
        },
        Operation {
            method: "post",
            path: "/v1/admin/customers",
            operation_id: "createCustomer",
            summary: "Register a customer (admin, integration)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: Some(schemas.request::<NewCustomer>()),
            success: (
                StatusCode::CREATED,
                "The customer, once the directory knows it.",
                &[],
                json_content(schemas.response::<Customer>()),
            ),
            errors: ADMIN_WRITE_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/admin/customers",
            operation_id: "listCustomers",
            summary: "List customers (every role but customer and integration)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "Every customer, by id.",
                &[],
                json_content(schemas.response::<views::CustomerList>()),
            ),
            errors: ADMIN_READ_ERRORS,
        },
        Operation {
            method: "post",
            path: "/v1/admin/tokens",
            operation_id: "createToken",
            summary: "Issue a bearer token (admin); its secret is shown once",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: Some(schemas.request::<NewToken>()),
            success: (
                StatusCode::CREATED,
                "The token and its secret.",
                &[],
                json_content(schemas.response::<views::IssuedToken>()),
            ),
            errors: ADMIN_WRITE_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/admin/tokens",
            operation_id: "listTokens",
            summary: "List tokens, without secrets (admin, auditor)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "Every token, by id.",
                &[],
                json_content(schemas.response::<views::TokenList>()),
            ),
            errors: ADMIN_READ_ERRORS,
        },
        Operation {
            method: "post",
            path: "/v1/admin/tokens/{token_id}/revoke",
            operation_id: "revokeToken",
            summary: "Revoke a token (admin)",
            tag: "admin",
            authenticated: true,
            parameters: vec![parameter_ref("TokenId")],
            request_body: None,
            success: (
                StatusCode::OK,
                "The token is revoked.",
                &[],
                json_content(schemas.response::<views::RevokedToken>()),
            ),
            errors: &[
                BAD_TOKEN[0],
                StatusCode::FORBIDDEN,
                StatusCode::NOT_FOUND,
                BAD_TOKEN[1],
                StatusCode::SERVICE_UNAVAILABLE,
            ],
        },
        Operation {
            method: "post",
            path: "/v1/admin/webhooks",
            operation_id: "createWebhook",
            summary:
                "Subscribe a URL to event types (admin); the answer shows the signing secret once",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: Some(schemas.request::<crate::webhooks::NewWebhook>()),
            success: (
                StatusCode::CREATED,
                "The subscription and its secret.",
                &[],
                json_content(schemas.response::<crate::webhooks::CreatedWebhook>()),
            ),
            errors: ADMIN_WRITE_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/admin/webhooks",
            operation_id: "listWebhooks",
            summary: "List live webhook subscriptions (admin, auditor)",
            tag: "admin",
            authenticated: true,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "Every live subscription.",
                &[],
                json_content(schemas.response::<crate::webhooks::WebhookList>()),
            ),
            errors: ADMIN_READ_ERRORS,
        },
        Operation {
            method: "post",
            path: "/v1/admin/webhooks/{subscription_id}/unsubscribe",
            operation_id: "unsubscribeWebhook",
            summary: "End a webhook subscription (admin); its delivery log stays",
            tag: "admin",
            authenticated: true,
            parameters: vec![parameter_ref("SubscriptionId")],
            request_body: None,
            success: (
                StatusCode::OK,
                "The subscription is ended.",
                &[],
                json_content(schemas.response::<crate::webhooks::EndedWebhook>()),
            ),
            errors: &[
                BAD_TOKEN[0],
                StatusCode::FORBIDDEN,
                StatusCode::NOT_FOUND,
                BAD_TOKEN[1],
                StatusCode::SERVICE_UNAVAILABLE,
            ],
        },
        Operation {
            method: "get",
            path: "/v1/admin/webhooks/{subscription_id}/deliveries",
            operation_id: "webhookDeliveries",
            summary: "A subscription's delivery log, newest first (admin, auditor)",
            tag: "admin",
            authenticated: true,
            parameters: {
                let mut parameters = vec![parameter_ref("SubscriptionId")];
                parameters.extend(schemas.query::<crate::webhooks::DeliveryQuery>());
                parameters
            },
            request_body: None,
            success: (
                StatusCode::OK,
                "Each delivery with its attempts and state.",
                &[],
                json_content(schemas.response::<crate::webhooks::DeliveryLogView>()),
            ),
            errors: &[
                StatusCode::BAD_REQUEST,
                BAD_TOKEN[0],
                StatusCode::FORBIDDEN,
                StatusCode::NOT_FOUND,
                BAD_TOKEN[1],
                StatusCode::SERVICE_UNAVAILABLE,
            ],
        },
        Operation {
            method: "post",
            path: "/v1/tickets",
            operation_id: "createTicket",
            summary: "Open a ticket; its id and number are allocated by the server",
            tag: "tickets",
            authenticated: true,
            parameters: command_headers.clone(),
            request_body: Some(schemas.request::<CreateTicketRequest>()),
            success: (
                StatusCode::CREATED,
                "The ticket is created: its stream version, the global position and the events \
                 written.",
                &["ETag", "Location", "Idempotent-Replayed"],
                json_content(schemas.response::<CommandResponse>()),
            ),
            errors: TICKET_COMMAND_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/tickets",
            operation_id: "listTickets",
            summary: "List tickets with filters, text search, a sort and cursor pages",
            tag: "tickets",
            authenticated: true,
            parameters: schemas.query::<ListParams>(),
            request_body: None,
            success: (
                StatusCode::OK,
                "A page of tickets. Customers see only their own, without team, assignee, tags \
                 and priority.",
                &[],
                json_content(schemas.response::<views::TicketPage>()),
            ),
            errors: LIST_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/queues/next",
            operation_id: "getNextTicket",
            summary: "The ticket an agent should work on next (admin, supervisor, agent)",
            tag: "tickets",
            authenticated: true,
            parameters: schemas.query::<NextParams>(),
            request_body: None,
            success: (
                StatusCode::OK,
                "The head of the agent's own queue, else the most urgent head of their teams' \
                 queues (priority, then SLA due time, then age); `null` when all are empty.",
                &[],
                json_content(schemas.response::<views::NextTicket>()),
            ),
            errors: NEXT_TICKET_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/reports/summary",
            operation_id: "getReport",
            summary: "A report over a time range (admin, supervisor, auditor, analyst)",
            tag: "reports",
            authenticated: true,
            parameters: schemas.query::<ReportParams>(),
            request_body: None,
            success: (
                StatusCode::OK,
                "Volume, response and resolution times, reopen and first-contact resolution \
                 rates, backlog by age, CSAT and SLA attainment: JSON, or CSV with \
                 `Accept: text/csv` (a `metric,value` header, then one row per value named by \
                 its path: `first_response.median_seconds`, `created_by_hour.9`, \
                 `backlog_by_age.<1d`; an empty value for `null`).",
                &[],
                json!({
                    "application/json": { "schema": schemas.response::<views::Report>() },
                    "text/csv": { "schema": { "type": "string" } },
                }),
            ),
            errors: REPORT_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/tickets/{ticket_id}",
            operation_id: "getTicket",
            summary: "Read a ticket as of its latest event",
            tag: "tickets",
            authenticated: true,
            parameters: vec![ticket_id.clone()],
            request_body: None,
            success: (
                StatusCode::OK,
                "The ticket. Customers see only their own tickets, without internal fields.",
                &["ETag"],
                json_content(schemas.response::<views::TicketView>()),
            ),
            errors: TICKET_READ_ERRORS,
        },
        Operation {
            method: "post",
            path: "/v1/tickets/{ticket_id}/commands",
            operation_id: "postCommand",
            summary: "Run one command on a ticket",
            tag: "tickets",
            authenticated: true,
            parameters: [vec![ticket_id.clone()], command_headers].concat(),
            request_body: Some(schemas.request::<crate::tickets::TicketCommand>()),
            success: (
                StatusCode::OK,
                "The command is decided: the ticket's stream version, the global position and \
                 the events written (none if it changed nothing).",
                &["ETag", "Idempotent-Replayed"],
                json_content(schemas.response::<CommandResponse>()),
            ),
            errors: TICKET_COMMAND_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/tickets/{ticket_id}/events",
            operation_id: "getTicketTrail",
            summary: "A ticket's trail: every event with actor, time, causation and hashes",
            tag: "tickets",
            authenticated: true,
            parameters: [vec![ticket_id], schemas.query::<TrailQuery>()].concat(),
            request_body: None,
            success: (
                StatusCode::OK,
                "A page of the trail. Customers see only public events, without metadata.",
                &[],
                json_content(schemas.response::<views::TicketTrail>()),
            ),
            errors: TICKET_READ_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/events",
            operation_id: "listEvents",
            summary: "The global event feed in position order (admin, auditor, analyst)",
            tag: "events",
            authenticated: true,
            parameters: schemas.query::<FeedQuery>(),
            request_body: None,
            success: (
                StatusCode::OK,
                "A page of the feed.",
                &[],
                json_content(schemas.response::<views::FeedPage>()),
            ),
            errors: FEED_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/events/stream",
            operation_id: "streamEvents",
            summary: "The global event feed, live, as Server-Sent Events (admin, auditor, analyst)",
            tag: "events",
            authenticated: true,
            parameters: [
                schemas.query::<FeedQuery>(),
                vec![parameter_ref("LastEventId")],
            ]
            .concat(),
            request_body: None,
            success: (
                StatusCode::OK,
                "An endless stream: each event's `id` is its global position, its `event` the \
                 event type and its `data` the event as `GET /v1/events` shows it.",
                &[],
                json!({
                    "text/event-stream": {
                        "schema": { "type": "string" },
                        "itemSchema": schemas.response::<views::FeedEvent>(),
                    },
                }),
            ),
            errors: &[
                StatusCode::BAD_REQUEST,
                BAD_TOKEN[0],
                StatusCode::FORBIDDEN,
                BAD_TOKEN[1],
            ],
        },
        Operation {
            method: "get",
            path: "/v1/audit/verify",
            operation_id: "verifyAudit",
            summary: "Walk both hash chains and report the first broken record (admin, auditor)",
            tag: "events",
            authenticated: true,
            parameters: schemas.query::<VerifyQuery>(),
            request_body: None,
            success: (
                StatusCode::OK,
                "The verification report.",
                &[],
                json_content(schemas.response::<views::VerifyReport>()),
            ),
            errors: FEED_ERRORS,
        },
        Operation {
            method: "get",
            path: "/v1/openapi.json",
            operation_id: "getOpenApi",
            summary: "This document",
            tag: "operations",
            authenticated: false,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "The OpenAPI 3.1 document of this API.",
                &[],
                json_content(json!({ "type": "object" })),
            ),
            errors: &[],
        },
        Operation {
            method: "get",
            path: "/healthz",
            operation_id: "getHealth",
            summary: "Liveness",
            tag: "operations",
            authenticated: false,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "The process answers.",
                &[],
                json_content(schemas.response::<views::Health>()),
            ),
            errors: &[],
        },
        Operation {
            method: "get",
            path: "/readyz",
            operation_id: "getReadiness",
            summary: "Readiness: the store answers and the directory has caught up",
            tag: "operations",
            authenticated: false,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "Ready to serve.",
                &[],
                json_content(schemas.response::<views::Readiness>()),
            ),
            errors: &[StatusCode::SERVICE_UNAVAILABLE],
        },
        Operation {
            method: "get",
            path: "/metrics",
            operation_id: "getMetrics",
            summary: "Prometheus metrics",
            tag: "operations",
            authenticated: false,
            parameters: vec![],
            request_body: None,
            success: (
                StatusCode::OK,
                "Request counts and latency histograms by route and status, append batch sizes, \
                 projection lag and open SSE clients, in the Prometheus text format 0.0.4.",
                &[],
                json!({ "text/plain": { "schema": { "type": "string" } } }),
            ),
            errors: &[],
        },
    ]
}

/// One example of every error the API reports on purpose (`Internal` is a bug, not a contract).
fn documented_errors() -> Vec<ApiError> {
    vec![
        ApiError::BadRequest(String::new()),
        ApiError::Unauthenticated,
        ApiError::Forbidden(String::new()),
        ApiError::NotFound(String::new()),
        ApiError::VersionConflict { current_version: 0 },
        ApiError::PreconditionFailed {
            expected: String::new(),
            current_version: 0,
        },
        ApiError::PayloadTooLarge { bytes: 0, max: 0 },
        ApiError::UnsupportedMediaType,
        ApiError::Rejected(Rejection::TicketClosed),
        ApiError::IdempotencyKeyReused { key: String::new() },
        ApiError::Unprocessable(String::new()),
        ApiError::RateLimited {
            limit: 0,
            window_seconds: 0,
            retry_after_seconds: 0,
        },
        ApiError::Unavailable(String::new()),
    ]
}

/// The component name of the problem response for `status`: its reason phrase without spaces.
fn response_name(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("Error")
        .split([' ', '-'])
        .collect()
}

/// One problem+json response per error status, listing the problem types it carries.
fn error_responses() -> Value {
    let mut responses = Map::new();
    for error in documented_errors() {
        let status = error.status();
        let response = responses.entry(response_name(status)).or_insert_with(|| {
            let extra: &[&str] = match status {
                StatusCode::UNAUTHORIZED => &["WWW-Authenticate"],
                StatusCode::TOO_MANY_REQUESTS => &[
                    "Retry-After",
                    "RateLimit-Limit",
                    "RateLimit-Remaining",
                    "RateLimit-Reset",
                ],
                StatusCode::SERVICE_UNAVAILABLE => &["Retry-After"],
                _ => &[],
            };
            json!({
                "description": "",
                "headers": header_refs(extra),
                "content": {
                    "application/problem+json": {
                        "schema": { "$ref": format!("#{SCHEMAS_PATH}/Problem") },
                    },
                },
            })
        });
        let slug = format!("`/problems/{}`", error.slug());
        let description = response["description"].as_str().unwrap_or("").to_owned();
        if !description.contains(&slug) {
            response["description"] = if description.is_empty() {
                Value::String(format!(
                    "{}: problem type {slug}",
                    status.canonical_reason().unwrap_or("Error")
                ))
            } else {
                Value::String(format!("{description}, {slug}"))
            };
        }
    }
    Value::Object(responses)
}

/// RFC 9457 problem details, with our extensions.
fn problem_schema(schemas: &mut Schemas) -> Value {
    let slugs: Vec<String> = documented_errors()
        .iter()
        .map(|error| format!("/problems/{}", error.slug()))
        .chain(["/problems/internal".to_owned()])
        .collect();
    json!({
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri-reference",
                "description": "The problem type.",
                "examples": slugs,
            },
            "title": { "type": "string", "description": "The status code's reason phrase." },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "detail": {
                "type": "string",
                "description": "What went wrong, precisely enough to fix the request.",
            },
            "current_version": {
                "type": "integer",
                "format": "uint64",
                "minimum": 0,
                "description": "409 and 412: the ticket's current version.",
            },
            "rejection": {
                "$ref": schemas.response::<Rejection>()["$ref"],
                "description": "422 `/problems/command-rejected`: the rule the command broke, \
                    with the blueprint's unmet requirements and allowed transitions.",
            },
        },
    })
}

fn parameters() -> Value {
    json!({
        "TicketId": {
            "name": "ticket_id",
            "in": "path",
            "required": true,
            "description": "The ticket's id; anything but a UUID is a 404.",
            "schema": { "type": "string", "format": "uuid" },
        },
        "AgentId": {
            "name": "agent_id",
            "in": "path",
            "required": true,
            "description": "The agent's id; anything but a UUID is a 404.",
            "schema": { "type": "string", "format": "uuid" },
        },
        "AgentIfMatch": {
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "The agent version (`version` of the agent) the change was decided \
                on; another version is a 412.",
            "schema": { "type": "string" },
        },
        "TokenId": {
            "name": "token_id",
            "in": "path",
            "required": true,
            "description": "The token's id (not its secret).",
            "schema": { "type": "string", "format": "uuid" },
        },
        "SubscriptionId": {
            "name": "subscription_id",
            "in": "path",
            "required": true,
            "description": "The webhook subscription's id.",
            "schema": { "type": "string", "format": "uuid" },
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "A retry with the same key and body returns the original response \
                and writes nothing; the same key with a different body is a 422. Scoped to the \
                token.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": crate::tickets::IDEMPOTENCY_KEY_CHARS_MAX,
            },
        },
        "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "The ticket version the command was decided on (`\"7\"`, `W/\"7\"` \
                or `7`, as the `ETag` gave it); 412 if the ticket moved on.",
            "schema": { "type": "string", "pattern": "^(W/)?\"?[0-9]+\"?$" },
        },
        "CorrelationId": {
            "name": "X-Correlation-Id",
            "in": "header",
            "required": false,
            "description": "Flows into the metadata of the events written; defaults to the \
                command id.",
            "schema": { "type": "string", "format": "uuid" },
        },
        "LastEventId": {
            "name": "Last-Event-ID",
            "in": "header",
            "required": false,
            "description": "Resume after this global position; overrides `after`.",
            "schema": { "type": "string", "pattern": "^[0-9]+$" },
        },
    })
}

fn headers() -> Value {
    let integer = json!({ "type": "integer", "minimum": 0 });
    json!({
        "X-Request-Id": {
            "description": "The id of this request's span in the server log.",
            "schema": { "type": "string", "format": "uuid" },
        },
        "ETag": {
            "description": "The ticket's version, quoted (`\"7\"`); send it back as `If-Match`.",
            "schema": { "type": "string" },
        },
        "Location": {
            "description": "The new ticket: `/v1/tickets/{ticket_id}`.",
            "schema": { "type": "string", "format": "uri-reference" },
        },
        "Idempotent-Replayed": {
            "description": "`true` when the response is the original answer to an earlier \
                request with the same `Idempotency-Key`.",
            "schema": { "type": "string", "enum": ["true"] },
        },
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": integer,
        },
        "RateLimit-Limit": {
            "description": "Requests the token may make in a burst.",
            "schema": integer,
        },
        "RateLimit-Remaining": {
            "description": "Requests left now.",
            "schema": integer,
        },
        "RateLimit-Reset": {
            "description": "Seconds until a request is allowed again.",
            "schema": integer,
        },
        "WWW-Authenticate": {
            "description": "`Bearer`.",
            "schema": { "type": "string" },
        },
    })
}

/// The JSON Schema of a `jiff::Timestamp` as serde writes it: RFC 3339 text.
fn timestamp_schema(_: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "format": "date-time" })
}

/// A `jiff::Timestamp` for `#[schemars(with = ...)]`, where `schema_with` cannot go because
/// the field is an `Option` (which `with` sees, so the field is not required).
pub(crate) struct Rfc3339;

impl JsonSchema for Rfc3339 {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Rfc3339".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> schemars::Schema {
        timestamp_schema(generator)
    }
}

/// `Report::backlog_by_age`: `[bucket, tickets]` pairs, in the order of `BACKLOG_BUCKETS`.
fn backlog_schema(_: &mut SchemaGenerator) -> schemars::Schema {
    let buckets: Vec<&str> = projections::reports::BACKLOG_BUCKETS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    schemars::json_schema!({
        "type": "array",
        "items": {
            "type": "array",
            "prefixItems": [
                { "type": "string", "enum": buckets },
                { "type": "integer", "format": "uint64", "minimum": 0 },
            ],
            "minItems": 2,
            "maxItems": 2,
        },
    })
}

/// Responses the handlers build with `json!`, described as types. They are never constructed:
/// the `openapi` test sends real requests and validates every answer against this document, so
/// a handler and its description cannot drift apart unnoticed.
pub mod views {
    use std::collections::BTreeMap;

    use domain::{
        AgentId, AttachmentId, BlueprintRef, Channel, CustomerId, FieldValue, LinkKind, Priority,
        StateCategory, TeamId, TicketId, TicketNumber, Visibility,
    };
    use schemars::JsonSchema;
    use serde::Serialize;
    use serde_json::Value;
    use uuid::Uuid;

    use super::{backlog_schema, timestamp_schema, Rfc3339};
    use crate::directory::{Agent, ApiRole, Customer, Team, TokenInfo};

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct AgentList {
        pub agents: Vec<Agent>,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct TeamList {
        pub teams: Vec<Team>,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct CustomerList {
        pub customers: Vec<Customer>,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct TokenList {
        pub tokens: Vec<TokenInfo>,
    }

    /// A new token. `token` is the secret: it is shown here once and stored only as a hash.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct IssuedToken {
        pub token_id: Uuid,
        pub role: ApiRole,
        pub subject: Option<Uuid>,
        pub token: String,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct RevokedToken {
        pub token_id: Uuid,
        #[schemars(extend("const" = true))]
        pub revoked: bool,
    }

    /// A ticket as of its latest event. The fields after `merged_into` are internal: staff see
    /// them, customers never.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct TicketView {
        pub id: TicketId,
        pub number: u64,
        /// The number as people write it: `#10042`.
        pub display_number: String,
        /// The ticket's version: the number of its events.
        pub version: u64,
        pub channel: Channel,
        pub requester: CustomerId,
        /// The ticket type, which chose the blueprint.
        #[serde(rename = "type")]
        pub ticket_type: String,
        pub subject: String,
        pub description: String,
        /// The blueprint state the ticket is in.
        pub state: String,
        pub category: StateCategory,
        pub attachments: Vec<AttachmentView>,
        pub merged_into: Option<TicketId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub priority: Option<Priority>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub tags: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub fields: Option<BTreeMap<String, FieldValue>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub blueprint: Option<BlueprintRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub team: Option<Option<TeamId>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub assignee: Option<Option<AgentId>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub collaborators: Option<Vec<AgentId>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub links: Option<Vec<LinkView>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub merged_duplicates: Option<Vec<TicketId>>,
        /// How often the ticket was solved.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub resolutions: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub escalation_level: Option<u8>,
        /// The sentiment rule flagged the customer as upset (see the `CustomerUpsetFlagged`
        /// event for the rule and evidence). Staff only.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub customer_upset: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub sla_clocks: Option<Vec<SlaClockView>>,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct AttachmentView {
        pub id: AttachmentId,
        pub content_type: String,
        pub visibility: Visibility,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct LinkView {
        pub ticket: TicketId,
        pub kind: LinkKind,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct SlaClockView {
        pub policy_id: String,
        pub metric: String,
        #[schemars(schema_with = "timestamp_schema")]
        pub due_at: jiff::Timestamp,
        pub warned: bool,
        pub breached: bool,
    }

    /// An event of the log. `metadata`, `command_id` and the hashes are shown to staff only.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct FeedEvent {
        /// The event's global position.
        pub position: u64,
        pub stream_id: String,
        pub stream_version: u64,
        pub event_id: Uuid,
        /// The event type, e.g. `TicketCreated`.
        #[serde(rename = "type")]
        pub event_type: String,
        pub schema_version: u32,
        #[schemars(schema_with = "timestamp_schema")]
        pub recorded_at: jiff::Timestamp,
        /// The event's payload (docs/domain.md describes each type).
        pub data: Value,
        /// Actor, command, correlation and causation ids, time.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub metadata: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub command_id: Option<Uuid>,
        /// Lowercase hex SHA-256 (docs/HASH_CHAIN.md).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub stream_hash: Option<String>,
        /// Lowercase hex SHA-256 (docs/HASH_CHAIN.md).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub global_hash: Option<String>,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct TicketTrail {
        pub ticket_id: TicketId,
        pub events: Vec<FeedEvent>,
        /// Pass as `from_version` for the next page; `null` on the last page.
        pub next_from_version: Option<u64>,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct FeedPage {
        pub events: Vec<FeedEvent>,
        /// Pass as `after` for the next page.
        pub next_after: u64,
    }

    /// The result of walking both hash chains from `from` to `to`.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct VerifyReport {
        pub from: u64,
        pub to: u64,
        pub checked: u64,
        /// The global hash of the last record checked, hex: keep it elsewhere, and a later
        /// verification proves the log up to there was not rewritten wholesale.
        pub last_global_hash: String,
        pub first_break: Option<ChainBreak>,
    }

    /// Where and how a chain breaks.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct ChainBreak {
        pub position: u64,
        pub stream_id: Option<String>,
        pub reason: String,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct Health {
        #[schemars(extend("const" = "ok"))]
        pub status: String,
    }

    #[derive(Debug, Serialize, JsonSchema)]
    pub struct Readiness {
        #[schemars(extend("const" = "ready"))]
        pub status: String,
        pub log_position: u64,
    }

    /// The order of a list, as `projections::tickets::TicketSort` reads it; ties are broken by
    /// ticket id. `priority`: most urgent first, then oldest first.
    #[derive(Debug, JsonSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum TicketSort {
        CreatedAsc,
        CreatedDesc,
        UpdatedAsc,
        UpdatedDesc,
        Priority,
    }

    // A new sort in `projections` does not compile here until the document lists it.
    const _: fn(projections::tickets::TicketSort) -> TicketSort = |sort| {
        use projections::tickets::TicketSort as Sort;
        match sort {
            Sort::CreatedAsc => TicketSort::CreatedAsc,
            Sort::CreatedDesc => TicketSort::CreatedDesc,
            Sort::UpdatedAsc => TicketSort::UpdatedAsc,
            Sort::UpdatedDesc => TicketSort::UpdatedDesc,
            Sort::Priority => TicketSort::Priority,
        }
    };

    /// A page of `GET /v1/tickets` (`projections::tickets::TicketPage`).
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct TicketPage {
        pub items: Vec<TicketRow>,
        /// Pass as `cursor` for the next page; `null` on the last page.
        pub next_cursor: Option<String>,
    }

    /// One ticket as lists show it (`projections::tickets::TicketRow`). `priority`, `team`,
    /// `assignee`, `tags` and `customer_upset` are internal: staff see them, customers never.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct TicketRow {
        pub id: TicketId,
        pub number: TicketNumber,
        pub subject: String,
        pub channel: Channel,
        pub requester: CustomerId,
        pub ticket_type: String,
        /// The blueprint state the ticket is in.
        pub state: String,
        pub category: StateCategory,
        #[schemars(schema_with = "timestamp_schema")]
        pub created_at: jiff::Timestamp,
        #[schemars(schema_with = "timestamp_schema")]
        pub updated_at: jiff::Timestamp,
        /// The ticket's version: what `If-Match` compares.
        pub version: u64,
        /// Public replies and customer messages, the creation not counted.
        pub messages: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Priority")]
        pub priority: Option<Priority>,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<TeamId>")]
        pub team: Option<Option<TeamId>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<AgentId>")]
        pub assignee: Option<Option<AgentId>>,
        /// Sorted, each once.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Vec<String>")]
        pub tags: Option<Vec<String>>,
        /// The sentiment rule flagged the customer as upset (see the `CustomerUpsetFlagged`
        /// event); internal.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schemars(with = "bool")]
        pub customer_upset: Option<bool>,
    }

    /// The answer of `GET /v1/queues/next`.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct NextTicket {
        pub agent: AgentId,
        /// `null` when the agent's queue and their teams' queues are empty.
        pub next: Option<QueueEntry>,
    }

    /// One queued ticket (`projections::queues::QueueEntry`).
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct QueueEntry {
        pub ticket_id: TicketId,
        pub priority: Priority,
        /// The earliest deadline of its unfinished SLA clocks; `null` without one.
        #[schemars(with = "Option<Rfc3339>")]
        pub due_at: Option<jiff::Timestamp>,
        #[schemars(schema_with = "timestamp_schema")]
        pub created_at: jiff::Timestamp,
    }

    /// A report over `[from, to)` (`projections::reports::Report`; docs/projections.md defines
    /// each number). Hours and weekdays are counted in the query's time zone.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct Report {
        /// Tickets created in the range.
        pub created: u64,
        /// Entries into a solved state in the range.
        pub solved: u64,
        /// Hour 0 first.
        pub created_by_hour: [u64; 24],
        /// Monday first.
        pub created_by_weekday: [u64; 7],
        /// Hour 0 first.
        pub solved_by_hour: [u64; 24],
        /// Monday first.
        pub solved_by_weekday: [u64; 7],
        /// Creation to first public reply, for tickets created in the range.
        pub first_response: Durations,
        /// Creation to first solve, for tickets first solved in the range.
        pub resolution: Durations,
        /// Tickets first solved in the range; the base of the two rates below.
        pub first_solved: u64,
        /// 0 to 1; `null` when nothing was first solved.
        pub reopen_rate: Option<f64>,
        /// First-contact resolution, 0 to 1; `null` when nothing was first solved.
        pub fcr_rate: Option<f64>,
        /// Tickets open at `to`, by age.
        #[schemars(schema_with = "backlog_schema")]
        pub backlog_by_age: Vec<(String, u64)>,
        pub csat_count: u64,
        /// 1 to 5; `null` without ratings.
        pub csat_average: Option<f64>,
        /// Ratings 1 to 5, in that order.
        pub csat_distribution: [u64; 5],
        pub sla_met: u64,
        pub sla_breached: u64,
        /// Met over met and breached, 0 to 1; `null` when no clock was due.
        pub sla_attainment: Option<f64>,
    }

    /// Median and 90th percentile (nearest rank) of a set of durations, in seconds.
    #[derive(Debug, Serialize, JsonSchema)]
    pub struct Durations {
        pub count: u64,
        /// `null` when `count` is 0.
        pub median_seconds: Option<i64>,
        /// `null` when `count` is 0.
        pub p90_seconds: Option<i64>,
    }
}
