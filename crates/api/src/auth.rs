//! Bearer authentication: a token is looked up by the SHA-256 of its secret in the directory,
//! must not be revoked, and yields the caller's role and identity. Every authenticated request
//! also passes the caller's rate limit here.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::directory::{self, ApiRole};
use crate::error::ApiError;
use crate::AppState;

/// Shortest accepted token secret (an operator-chosen `DOCKET_ADMIN_TOKEN` included).
pub const TOKEN_CHARS_MIN: usize = 24;

/// A new random token: `dkt_` and 64 hex digits (256 bits from the OS generator).
pub fn new_token_secret() -> String {
    let random: String = [Uuid::new_v4(), Uuid::new_v4()]
        .iter()
        .flat_map(|uuid| *uuid.as_bytes())
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("dkt_{random}")
}

/// The authenticated caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub token_id: Uuid,
    pub role: ApiRole,
    /// The agent or customer the token acts as, if any.
    pub subject: Option<Uuid>,
}

impl Principal {
    pub fn require(&self, allowed: &[ApiRole]) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                format!("role {:?} may not do this", self.role).to_lowercase(),
            ))
        }
    }

    /// How the caller appears in event metadata.
    pub fn actor_json(&self) -> serde_json::Value {
        serde_json::json!({ "role": self.role, "id": self.subject, "token_id": self.token_id })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Principal, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated)?;
        let value = header.to_str().map_err(|_| ApiError::Unauthenticated)?;
        let secret = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        let principal = {
            let directory = state.directory();
            let token = directory
                .token_by_hash(&directory::hash_token(secret))
                .ok_or(ApiError::Unauthenticated)?;
            Principal {
                token_id: token.token_id,
                role: token.role,
                subject: token.subject,
            }
        };
        state
            .inner
            .limiter
            .check(principal.token_id, std::time::Instant::now())?;
        parts.extensions.insert(principal);
        Ok(principal)
    }
}
