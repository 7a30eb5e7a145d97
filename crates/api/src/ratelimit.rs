//! Per-token rate limits: a token bucket per token, refilled continuously. Generous by default;
//! operators tune them in `docket.toml`. Over the limit is a 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

use crate::error::ApiError;

/// Most tokens whose buckets are remembered; idle buckets beyond it are forgotten (they are full).
pub const BUCKETS_MAX: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests a token may make in a burst.
    pub burst: u64,
    /// Requests per second a token may sustain.
    pub per_second: u64,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            burst: 2_000,
            per_second: 1_000,
        }
    }
}

#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, token_id: Uuid, now: Instant) -> Result<(), ApiError> {
        let RateLimit { burst, per_second } = self.limit;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(&token_id) {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(token_id).or_insert((burst as f64, now));
        let refilled = now.saturating_duration_since(*last).as_secs_f64() * per_second as f64;
        *tokens = (*tokens + refilled).min(burst as f64);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait_seconds = ((1.0 - *tokens) / per_second.max(1) as f64).ceil().max(1.0) as u64;
            Err(ApiError::RateLimited {
                limit: burst,
                window_seconds: 1,
                retry_after_seconds: wait_seconds,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refilled_over_time() {
        let limiter = Limiter::new(RateLimit {
            burst: 3,
            per_second: 2,
        });
        let token = Uuid::from_u128(1);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.check(token, start).unwrap();
        }
        assert!(matches!(
            limiter.check(token, start),
            Err(ApiError::RateLimited {
                retry_after_seconds: 1,
                ..
            })
        ));
        // Another token has its own bucket.
        limiter.check(Uuid::from_u128(2), start).unwrap();
        // Half a second refills one request at 2 per second.
        limiter
            .check(token, start + Duration::from_millis(500))
            .unwrap();
        assert!(limiter
            .check(token, start + Duration::from_millis(500))
            .is_err());
    }
}
