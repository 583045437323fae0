//! The layers every route runs through, outermost first (see [`crate::server::router`]):
//!
//! 1. [`request_id`]: accept a sane `X-Request-Id` or make a UUIDv7; echo it.
//! 2. [`client_ip`]: resolve the client address once (trusted proxies only).
//! 3. [`trace`]: one span per request — request id, method, route *template*, status,
//!    latency; never the URI (query strings can hold PHI).
//! 4. [`security_headers`]: `nosniff`, `no-referrer`, `DENY` framing; `no-store` under
//!    `/api` and `/admin`. Outside the layers below so their own answers (429, 413,
//!    replays) carry them too.
//! 5. CORS ([`cors`]): only for configured origins.
//! 6. [`rate_limit`]: per client address; 429 with `Retry-After` and `RateLimit-*`.
//! 7. [`body_limit`]: 413 in the envelope.
//! 8. [`idempotency`]: `Idempotency-Key` on POST — replay, mismatch, in progress.
//! 9. [`panic`]: a panicking handler answers a 500 in the envelope.

pub mod body_limit;
pub mod client_ip;
pub mod cors;
pub mod idempotency;
pub mod panic;
pub mod rate_limit;
pub mod request_id;
pub mod security_headers;
pub mod trace;
