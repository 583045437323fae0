//! Rate limits per client address (API.md): 300/min under `/api/auth/`, 600/min elsewhere,
//! as two independent GCRA limiters (governor). `/health/*` and `/metrics` are not limited.
//!
//! Every limited answer carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (seconds until the allowance is whole again); a refusal is a 429
//! `RATE_LIMITED` with `Retry-After` (seconds until the next request is allowed, ≥ 1).
//!
//! Limits are per process: behind a load balancer with N nodes a client gets up to N times
//! the allowance. The address comes from [`ClientIp`] (trusted proxies only).

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::{ApiError, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
use crate::extract::ClientIp;
use crate::state::ApiConfig;

type Keyed =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// Forget idle addresses every this many checks, so the maps stay small.
const HOUSEKEEPING_EVERY: u64 = 4_096;

/// One limit: its limiter and its size.
struct Limit {
    limiter: Keyed,
    per_min: u32,
}

impl Limit {
    fn new(per_min: u32) -> Self {
        let per_min = per_min.max(1);
        let quota = Quota::per_minute(NonZeroU32::new(per_min).expect("at least 1"));
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            per_min,
        }
    }

    /// Seconds until `remaining` is back to the full allowance.
    fn reset_secs(&self, remaining: u32) -> u64 {
        let interval = Quota::per_minute(NonZeroU32::new(self.per_min).expect("at least 1"))
            .replenish_interval();
        ceil_secs(interval * self.per_min.saturating_sub(remaining))
    }
}

fn ceil_secs(d: Duration) -> u64 {
    let whole = d.as_secs();
    if d.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole
    }
}

/// The limiters of one router. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    auth: Limit,
    general: Limit,
    checks: AtomicU64,
}

impl RateLimits {
    /// Limiters sized by `config` (none when `rate_limiting_enabled` is false).
    pub fn new(config: &ApiConfig) -> Self {
        if !config.rate_limiting_enabled {
            return Self { inner: None };
        }
        Self {
            inner: Some(Arc::new(Inner {
                auth: Limit::new(config.auth_rate_per_min),
                general: Limit::new(config.rate_per_min),
                checks: AtomicU64::new(0),
            })),
        }
    }
}

/// Whether `path` is exempt (probes and scrapes must not be throttled).
fn exempt(path: &str) -> bool {
    path.starts_with("/health/") || path == "/health" || path == "/metrics"
}

/// Whether `path` falls under the stricter authentication limit.
fn is_auth(path: &str) -> bool {
    path == "/api/auth" || path.starts_with("/api/auth/")
}

/// The middleware (`from_fn_with_state(RateLimits, rate_limit)`).
pub async fn rate_limit(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    let Some(inner) = limits.inner.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if exempt(path) {
        return next.run(req).await;
    }
    let limit = if is_auth(path) {
        &inner.auth
    } else {
        &inner.general
    };
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));

    if inner.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
        for l in [&inner.auth, &inner.general] {
            l.limiter.retain_recent();
            l.limiter.shrink_to_fit();
        }
    }

    match limit.limiter.check_key(&ip) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            let mut res = next.run(req).await;
            let headers = res.headers_mut();
            headers.insert(RATELIMIT_LIMIT, HeaderValue::from(limit.per_min));
            headers.insert(RATELIMIT_REMAINING, HeaderValue::from(remaining));
            headers.insert(
                RATELIMIT_RESET,
                HeaderValue::from(limit.reset_secs(remaining)),
            );
            res
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(limit.limiter.clock().now());
            ApiError::RateLimited {
                retry_after_secs: ceil_secs(wait).max(1),
                limit: limit.per_min,
                reset_secs: limit.reset_secs(0),
            }
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        assert!(exempt("/health/live") && exempt("/metrics"));
        assert!(!exempt("/healthz") && !exempt("/api/health/live"));
        assert!(is_auth("/api/auth/login") && !is_auth("/api/authx"));
    }

    #[test]
    fn reset_is_the_time_to_refill() {
        let l = Limit::new(600);
        assert_eq!(l.reset_secs(600), 0);
        assert_eq!(l.reset_secs(0), 60);
        assert_eq!(l.reset_secs(590), 1);
    }
}
