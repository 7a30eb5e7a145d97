//! Queries answered by the read models (crate `projections`): the ticket list with filters,
//! sort and cursor pages, the agent's next ticket, and reports as JSON or CSV. Every query
//! accepts `?min_position=` and waits, bounded, until the read side has applied that position.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{AgentId, Channel, CustomerId, Priority, StateCategory, TeamId};
use jiff::Timestamp;
use projections::reports::ReportQuery;
use projections::tickets::{ListQuery, TicketFilter, TicketSort};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Principal;
use crate::body::ApiQuery;
use crate::directory::ApiRole;
use crate::error::ApiError;
use crate::AppState;

/// Rows per page when the caller does not say.
const PAGE_DEFAULT: usize = 50;

impl AppState {
    /// Waits until every read model has applied `min_position` (read your writes).
    pub(crate) async fn read_side_at(&self, min_position: Option<u64>) -> Result<(), ApiError> {
        let Some(position) = min_position else {
            return Ok(());
        };
        if self.inner.projections.position() >= position {
            return Ok(());
        }
        // A position the log has not reached was never written: waiting would not help.
        let (head, _) = self.inner.store.head().await?;
        if position > head {
            return Err(ApiError::BadRequest(format!(
                "min_position {position} is beyond the end of the log ({head})"
            )));
        }
        if self
            .inner
            .projections
            .wait_for(position, self.inner.config.read_wait_max)
            .await
        {
            Ok(())
        } else {
            Err(ApiError::ReadSideBehind {
                position: self.inner.projections.position(),
                wanted: position,
            })
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub state: Option<String>,
    /// new, open, pending, solved or closed.
    pub status: Option<StateCategory>,
    pub team: Option<Uuid>,
    pub assignee: Option<Uuid>,
    #[serde(default)]
    pub unassigned: bool,
    pub priority: Option<Priority>,
    pub requester: Option<Uuid>,
    pub tag: Option<String>,
    pub channel: Option<Channel>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    /// Ranges are half-open: `[created_from, created_to)`.
    #[schemars(with = "Option<crate::openapi::Rfc3339>")]
    pub created_from: Option<Timestamp>,
    #[schemars(with = "Option<crate::openapi::Rfc3339>")]
    pub created_to: Option<Timestamp>,
    #[schemars(with = "Option<crate::openapi::Rfc3339>")]
    pub updated_from: Option<Timestamp>,
    #[schemars(with = "Option<crate::openapi::Rfc3339>")]
    pub updated_to: Option<Timestamp>,
    /// Words of the subject or the public messages (Chinese and English).
    pub q: Option<String>,
    #[serde(default)]
    #[schemars(with = "crate::openapi::views::TicketSort")]
    pub sort: TicketSort,
    /// Rows per page (default 50).
    #[schemars(range(min = 1, max = projections::tickets::PAGE_LIMIT_MAX))]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page, with the same sort.
    pub cursor: Option<String>,
    /// Wait, up to a bound, until the read side has applied this global position (the
    /// `position` a command answered with: read your own writes); 503 if it does not in time.
    pub min_position: Option<u64>,
}

/// `GET /v1/tickets`: customers see only their own tickets, without internal fields.
pub async fn list_tickets(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    state.read_side_at(params.min_position).await?;
    let customer = principal.role == ApiRole::Customer;
    if customer {
        // Filtering on what a customer may not see would reveal it.
        let internal = [
            ("team", params.team.is_some()),
            ("assignee", params.assignee.is_some()),
            ("unassigned", params.unassigned),
            ("priority", params.priority.is_some()),
            ("tag", params.tag.is_some()),
            ("sort=priority", params.sort == TicketSort::Priority),
        ];
        if let Some((name, _)) = internal.iter().find(|(_, used)| *used) {
            return Err(ApiError::BadRequest(format!(
                "customers cannot filter or sort by {name}: it is internal"
            )));
        }
    }
    let requester = if customer {
        principal.subject
    } else {
        params.requester
    };
    let query = ListQuery {
        filter: TicketFilter {
            state: params.state,
            category: params.status,
            team: params.team.map(TeamId),
            assignee: params.assignee.map(AgentId),
            unassigned: params.unassigned,
            priority: params.priority,
            requester: requester.map(CustomerId),
            tag: params.tag,
            channel: params.channel,
            ticket_type: params.ticket_type,
            created_from: params.created_from,
            created_to: params.created_to,
            updated_from: params.updated_from,
            updated_to: params.updated_to,
            text: params.q,
        },
        sort: params.sort,
        limit: params.limit.unwrap_or(PAGE_DEFAULT),
        cursor: params.cursor,
    };
    let page = state
        .inner
        .projections
        .tickets
        .read()
        .list(&query)
        .map_err(|error| ApiError::BadRequest(error.to_string()))?;
    if !customer {
        // Straight to text: no JSON tree built and dropped on the way.
        return Ok(Json(ListPage {
            items: &page.items,
            next_cursor: page.next_cursor.as_deref(),
        })
        .into_response());
    }
    let mut items =
        serde_json::to_value(&page.items).map_err(|error| ApiError::Internal(error.to_string()))?;
    if customer {
        for item in items.as_array_mut().into_iter().flatten() {
            if let Some(item) = item.as_object_mut() {
                for internal in ["team", "assignee", "tags", "priority", "customer_upset"] {
                    item.remove(internal);
                }
            }
        }
    }
    Ok(Json(json!({ "items": items, "next_cursor": page.next_cursor })).into_response())
}

/// A page of the ticket list as staff see it.
#[derive(Serialize)]
struct ListPage<'a> {
    items: &'a [projections::tickets::TicketRow],
    next_cursor: Option<&'a str>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NextParams {
    /// The agent to ask for; agents and supervisors default to themselves, admins must say.
    pub agent: Option<Uuid>,
    /// Wait, up to a bound, until the read side has applied this global position (the
    /// `position` a command answered with: read your own writes); 503 if it does not in time.
    pub min_position: Option<u64>,
}

/// `GET /v1/queues/next`: the ticket the agent should work on next: their own queue first, then
/// the most urgent head of their teams' queues (priority, then SLA due time, then age).
pub async fn next_ticket(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<NextParams>,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[ApiRole::Admin, ApiRole::Supervisor, ApiRole::Agent])?;
    state.read_side_at(params.min_position).await?;
    let agent = match (principal.role, params.agent) {
        (ApiRole::Agent, Some(agent)) if Some(agent) != principal.subject => {
            return Err(ApiError::Forbidden(
                "an agent asks only for their own next ticket".to_owned(),
            ))
        }
        (_, Some(agent)) => agent,
        (_, None) => principal
            .subject
            .ok_or_else(|| ApiError::BadRequest("say which agent: ?agent=<id>".to_owned()))?,
    };
    let teams: Vec<TeamId> = state
        .directory()
        .agents
        .get(&agent)
        .map(|known| known.teams.iter().copied().map(TeamId).collect())
        .ok_or_else(|| ApiError::NotFound(format!("no agent {agent}")))?;
    let next = state
        .inner
        .projections
        .queues
        .read()
        .next_for_agent(AgentId(agent), &teams);
    Ok(Json(json!({ "agent": agent, "next": next })))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// The range is `[from, to)`.
    #[schemars(with = "crate::openapi::Rfc3339")]
    pub from: Timestamp,
    #[schemars(with = "crate::openapi::Rfc3339")]
    pub to: Timestamp,
    /// IANA time zone for the by-hour and by-weekday buckets (default UTC).
    pub time_zone: Option<String>,
    pub team: Option<Uuid>,
    pub agent: Option<Uuid>,
    pub channel: Option<Channel>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    pub priority: Option<Priority>,
    /// Wait, up to a bound, until the read side has applied this global position (the
    /// `position` a command answered with: read your own writes); 503 if it does not in time.
    pub min_position: Option<u64>,
}

/// `GET /v1/reports/summary`: volume, response and resolution times, reopen and first-contact
/// resolution rates, backlog by age, CSAT and SLA attainment over `[from, to)`, from events
/// alone; CSV with `Accept: text/csv`.
pub async fn report(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> Result<Response, ApiError> {
    principal.require(&[
        ApiRole::Admin,
        ApiRole::Supervisor,
        ApiRole::Analyst,
        ApiRole::Auditor,
    ])?;
    state.read_side_at(params.min_position).await?;
    if params.from >= params.to {
        return Err(ApiError::BadRequest("from must be before to".to_owned()));
    }
    let mut query = ReportQuery::new(params.from, params.to);
    if let Some(zone) = &params.time_zone {
        query.time_zone = jiff::tz::TimeZone::get(zone).map_err(|_| {
            ApiError::BadRequest(format!("time_zone {zone:?} is not an IANA time zone"))
        })?;
    }
    query.team = params.team.map(TeamId);
    query.agent = params.agent.map(AgentId);
    query.channel = params.channel;
    query.ticket_type = params.ticket_type;
    query.priority = params.priority;
    let report = state.inner.projections.reports.read().report(&query);
    let value =
        serde_json::to_value(&report).map_err(|error| ApiError::Internal(error.to_string()))?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if !wants_csv {
        return Ok(Json(value).into_response());
    }
    let mut csv = String::from("metric,value\n");
    flatten("", &value, &mut csv);
    let mut response = csv.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(response)
}

/// One CSV row per leaf: `first_response.median_seconds,120`, `created_by_hour.9,4`.
fn flatten(prefix: &str, value: &Value, out: &mut String) {
    let name = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(key, value)| flatten(&name(key), value, out)),
        Value::Array(items) => match items.as_slice() {
            // Backlog buckets are (name, count) pairs.
            pairs
                if pairs.iter().all(|item| {
                    item.as_array()
                        .is_some_and(|pair| pair.len() == 2 && pair[0].is_string())
                }) =>
            {
                for pair in pairs {
                    let pair = pair.as_array().expect("checked");
                    flatten(&name(pair[0].as_str().expect("checked")), &pair[1], out);
                }
            }
            items => items
                .iter()
                .enumerate()
                .for_each(|(index, value)| flatten(&name(&index.to_string()), value, out)),
        },
        Value::Null => out.push_str(&format!("{prefix},\n")),
        other => out.push_str(&format!("{prefix},{other}\n")),
    }
}
