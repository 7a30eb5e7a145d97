//! The API's one error type and its one mapping to HTTP: RFC 9457 problem+json. Internal detail
//! is logged, never returned; every client mistake gets a precise, actionable message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::Rejection;
use serde_json::json;
use store::{AppendError, StoreError};

/// Seconds a client should wait before retrying when the store is unreachable.
const RETRY_AFTER_UNAVAILABLE_SECONDS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or malformed bearer token")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed here")]
    MethodNotAllowed { method: String },
    #[error("the ticket moved on to version {current_version}; reload it and decide again")]
    VersionConflict { current_version: u64 },
    #[error("If-Match {expected} does not match the ticket's version {current_version}")]
    PreconditionFailed {
        expected: String,
        current_version: u64,
    },
    #[error("the request body is {bytes} bytes; the most is {max}")]
    PayloadTooLarge { bytes: usize, max: usize },
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    Rejected(Rejection),
    #[error("Idempotency-Key {key:?} was used with a different request body")]
    IdempotencyKeyReused { key: String },
    #[error("{0}")]
    Unprocessable(String),
    #[error("rate limit of {limit} requests per {window_seconds} s exceeded")]
    RateLimited {
        limit: u64,
        window_seconds: u64,
        retry_after_seconds: u64,
    },
    #[error("the event store is unavailable; retry shortly")]
    Unavailable(String),
    #[error(
        "the read side is at position {position} and has not reached {wanted} yet; retry shortly"
    )]
    ReadSideBehind { position: u64, wanted: u64 },
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if error.is_transient() || matches!(error, StoreError::Closed) {
            ApiError::Unavailable(error.to_string())
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

impl From<AppendError> for ApiError {
    fn from(error: AppendError) -> ApiError {
        match error {
            AppendError::WrongExpectedVersion { actual, .. } => ApiError::VersionConflict {
                current_version: actual.unwrap_or(0),
            },
            AppendError::CommandIdReused { .. } => ApiError::Unprocessable(error.to_string()),
            AppendError::Invalid(invalid) => ApiError::Unprocessable(invalid.to_string()),
            AppendError::Store(store) => store.into(),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> ApiError {
        match rejection {
            Rejection::TicketNotFound => ApiError::NotFound("the ticket does not exist".to_owned()),
            // To a customer, someone else's ticket does not exist: saying "not yours" would tell
            // them which ticket ids are real.
            Rejection::NotOwnTicket => ApiError::NotFound("the ticket does not exist".to_owned()),
            Rejection::AgentNotFound => ApiError::NotFound("the agent does not exist".to_owned()),
            Rejection::RoleNotAllowed { .. }
            | Rejection::InternalNotForCustomers
            | Rejection::NotOwnPresence => ApiError::Forbidden(rejection.to_string()),
            rejection => ApiError::Rejected(rejection),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::VersionConflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Rejected(_)
            | ApiError::IdempotencyKeyReused { .. }
            | ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::ReadSideBehind { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type's short name; the `type` URI is `/problems/<slug>`.
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::VersionConflict { .. } => "version-conflict",
            ApiError::PreconditionFailed { .. } => "precondition-failed",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::Rejected(_) => "command-rejected",
            ApiError::IdempotencyKeyReused { .. } => "idempotency-key-reused",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Unavailable(_) => "store-unavailable",
            ApiError::ReadSideBehind { .. } => "read-side-behind",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({
            "type": format!("/problems/{}", self.slug()),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        match &self {
            ApiError::VersionConflict { current_version }
            | ApiError::PreconditionFailed {
                current_version, ..
            } => {
                body["current_version"] = json!(current_version);
            }
            ApiError::Rejected(rejection) => {
                body["rejection"] = serde_json::to_value(rejection).unwrap_or_default();
            }
            ApiError::Unavailable(detail) | ApiError::Internal(detail) => {
                tracing::error!(%detail, status = status.as_u16(), "request failed");
                if matches!(self, ApiError::Internal(_)) {
                    body["detail"] = json!("internal error; the server log has the details");
                }
            }
            _ => {}
        }
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unavailable(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECONDS),
                );
            }
            ApiError::RateLimited {
                limit,
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
                headers.insert("ratelimit-limit", HeaderValue::from(*limit));
                headers.insert("ratelimit-remaining", HeaderValue::from(0u64));
                headers.insert("ratelimit-reset", HeaderValue::from(*retry_after_seconds));
            }
            ApiError::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
