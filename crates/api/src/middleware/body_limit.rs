//! The request body limit (default 1 MiB), answered 413 in the envelope.
//!
//! Two parts: this middleware refuses a `Content-Length` over the limit before anything
//! reads the body; axum's `DefaultBodyLimit` (set to the same limit in
//! [`crate::server::router`]) stops chunked bodies while they are read, which
//! [`Command`](crate::extract::Command) and the idempotency layer turn into 413 too.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The middleware (`from_fn_with_state(limit, body_limit)`).
pub async fn body_limit(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}
