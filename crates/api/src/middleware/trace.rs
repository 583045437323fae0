//! The request span: ids and facts only. The URI is never recorded — the route template
//! (`/api/patients/{id}`) says which handler ran without the ids or query values.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::Response;
use tracing::Span;

use crate::middleware::request_id::X_REQUEST_ID;

/// `make_span_with` of the `TraceLayer`.
pub fn make_span(req: &Request) -> Span {
    let request_id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("(unmatched)");
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = %route,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

/// `on_response` of the `TraceLayer`: records status and latency, logs one line.
pub fn on_response<B>(res: &Response<B>, latency: Duration, span: &Span) {
    let status = res.status().as_u16();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    span.record("status", status);
    span.record("latency_ms", latency_ms);
    tracing::info!(status, latency_ms, "request completed");
}
