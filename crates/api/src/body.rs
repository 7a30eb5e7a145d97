//! JSON request bodies: checked for content type and size before parsing, and parsed with
//! errors that name the offending field, line and column. The raw bytes are kept, so an
//! idempotent retry can be compared with the original request.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Largest request body: a command with an event at the store's limit, plus room for framing.
pub const BODY_BYTES_MAX: usize = store::EVENT_BYTES_MAX + 64 * 1024;

#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    /// SHA-256 of the body as received, hex.
    pub sha256: String,
    /// The body as received, for a second parse into a more specific type.
    pub bytes: Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<JsonBody<T>, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !(essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if let Some(bytes) = declared.filter(|bytes| *bytes > BODY_BYTES_MAX) {
            return Err(ApiError::PayloadTooLarge {
                bytes,
                max: BODY_BYTES_MAX,
            });
        }
        let bytes: Bytes = axum::body::to_bytes(request.into_body(), BODY_BYTES_MAX)
            .await
            .map_err(|_| ApiError::PayloadTooLarge {
                bytes: BODY_BYTES_MAX + 1,
                max: BODY_BYTES_MAX,
            })?;
        let value = parse(&bytes)?;
        let sha256 = crate::directory::hex(&Sha256::digest(&bytes));
        Ok(JsonBody {
            value,
            sha256,
            bytes,
        })
    }
}

/// Parses JSON with a message that says where and what: serde's own messages name unknown and
/// missing fields (`unknown field `priorty`, expected one of …`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let what = match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "malformed JSON"
            }
            _ => "invalid request",
        };
        ApiError::BadRequest(format!("{what}: {error}"))
    })
}

/// Query parameters, parsed with errors as problem+json that name the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<ApiQuery<T>, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|query| ApiQuery(query.0))
            .map_err(|rejection| {
                ApiError::BadRequest(format!("query string: {}", rejection.body_text()))
            })
    }
}
