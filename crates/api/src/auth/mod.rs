//! Authentication over HTTP (API.md "Auth", "Platform roles"): the bearer/cookie
//! extractor, login throttling per client address, cookies, and the `/api/auth/*` and
//! `/api/admin/users/*` routes. Every decision is taken by `carelog-commands`' identity
//! service; this module only translates HTTP to commands and back.

mod actor;
mod cookies;
mod error;
mod routes;
mod throttle;

pub use actor::Authenticated;
pub use routes::routes;
pub use throttle::LoginThrottle;

use axum::extract::MatchedPath;
use carelog_commands::Ctx;

use crate::extract::RequestMeta;

/// The command context of a request: request id, client, endpoint template, now.
pub fn ctx(meta: &RequestMeta, method: &str, path: Option<&MatchedPath>) -> Ctx {
    Ctx {
        request_id: meta.request_id.clone(),
        ip: Some(meta.ip.to_string()),
        user_agent: meta.user_agent.clone(),
        command: format!("{method} {}", path.map(MatchedPath::as_str).unwrap_or("?")),
        now: chrono::Utc::now(),
        operator: false,
    }
}
