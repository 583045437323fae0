//! `GET /health/live` and `GET /health/ready`: for orchestrators; unauthenticated, not rate
//! limited, no internals in the answers.

use std::time::Duration;

use axum::extract::State;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::envelope::ApiResponse;
use crate::error::ApiError;
use crate::openapi::{ErrorBody, SuccessBody};
use crate::state::AppState;

/// How long a dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The health routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// Always `live`.
    #[schema(example = "live")]
    pub status: &'static str,
}

/// State of one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Reachable.
    Up,
    /// Unreachable or failing.
    Down,
    /// Not used by this process (e.g. NATS on a node built without it).
    NotConfigured,
}

/// Readiness: each dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// PostgreSQL.
    pub postgres: Check,
    /// NATS.
    pub nats: Check,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses((status = 200, description = "The process is up", body = SuccessBody<Live>))
)]
pub async fn live() -> ApiResponse<Live> {
    ApiResponse::ok(Live { status: "live" })
}

/// PostgreSQL and NATS are reachable.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "Every dependency is reachable", body = SuccessBody<Ready>),
        (status = 503, description = "A dependency is down (`details.checks` says which)", body = ErrorBody),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<ApiResponse<Ready>, ApiError> {
    let postgres =
        match tokio::time::timeout(CHECK_TIMEOUT, carelog_store::health::ping(&state.pool)).await {
            Ok(Ok(())) => Check::Up,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: PostgreSQL check failed");
                Check::Down
            }
            Err(_) => {
                tracing::warn!("readiness: PostgreSQL check timed out");
                Check::Down
            }
        };
    let nats = match &state.nats {
        None => Check::NotConfigured,
        Some(client) => match client.connection_state() {
            async_nats::connection::State::Connected => Check::Up,
            _ => Check::Down,
        },
    };
    if postgres == Check::Down || nats == Check::Down {
        return Err(ApiError::Unavailable {
            details: json!({ "checks": { "postgres": postgres, "nats": nats } }),
        });
    }
    Ok(ApiResponse::ok(Ready {
        status: "ready",
        postgres,
        nats,
    }))
}
