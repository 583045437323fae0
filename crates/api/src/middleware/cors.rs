//! CORS for the configured origins only; none by default (no CORS headers at all).

use axum::http::{header, HeaderName, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
use crate::middleware::idempotency::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use crate::middleware::request_id::X_REQUEST_ID;
use crate::state::ApiConfig;

/// `X-Requested-With` (required on cookie-authenticated writes).
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

/// The CORS layer, or `None` when no origin is configured.
pub fn layer(config: &ApiConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(config.cors_origins.iter().cloned()))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                IDEMPOTENCY_KEY,
                X_REQUEST_ID,
                X_REQUESTED_WITH,
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                X_REQUEST_ID,
                IDEMPOTENT_REPLAYED,
                RATELIMIT_LIMIT,
                RATELIMIT_REMAINING,
                RATELIMIT_RESET,
            ])
            // Cookies (SameSite=Strict) are part of the auth contract.
            .allow_credentials(true)
            .max_age(std::time::Duration::from_secs(600)),
    )
}
