//! What every handler can reach: configuration and the adapters. Built once by the binary.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::HeaderValue;
use carelog_store::idempotency::IdempotencyStore;
use carelog_store::EventStore;
use sqlx::PgPool;

/// The HTTP layer's settings (validated by the binary's config before they get here).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body, in bytes (413 above). Default 1 MiB.
    pub body_limit: usize,
    /// Origins allowed by CORS, exactly as browsers send them (`https://app.example`).
    /// Default none: no CORS headers.
    pub cors_origins: Vec<HeaderValue>,
    /// Proxies whose `X-Forwarded-For` is believed (`CARELOG_TRUSTED_PROXIES`), exact
    /// addresses. Default none.
    pub trusted_proxies: Vec<IpAddr>,
    /// Whether the main router serves `GET /metrics`; false when `CARELOG_METRICS_BIND`
    /// gives it a listener of its own. Default true.
    pub metrics_route: bool,
    /// `RATE_LIMITING_ENABLED`; default true.
    pub rate_limiting_enabled: bool,
    /// Requests per minute and client address under `/api/auth/`. Default 300.
    pub auth_rate_per_min: u32,
    /// Requests per minute and client address elsewhere. Default 600.
    pub rate_per_min: u32,
    /// `GET /admin/dlq/depth` says `alert: true` above this many entries
    /// (`CARELOG_DLQ_ALERT_THRESHOLD`). Default 100.
    pub dlq_alert_threshold: i64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_route: true,
            rate_limiting_enabled: true,
            auth_rate_per_min: 300,
            rate_per_min: 600,
            dlq_alert_threshold: 100,
        }
    }
}

/// The state of every route. Cheap to clone (handles and `Arc`s). Feature work adds its
/// services (token keys, sessions, ...) as further `pub` fields.
#[derive(Clone)]
pub struct AppState {
    /// HTTP settings.
    pub config: Arc<ApiConfig>,
    /// The PostgreSQL pool (for the store's functions; the API runs no SQL itself).
    pub pool: PgPool,
    /// The event store.
    pub store: EventStore,
    /// NATS, if this process uses it (readiness reports it).
    pub nats: Option<async_nats::Client>,
    /// Publishes the DLQ notices of retries and discards (`None`: no NATS here).
    pub dlq_notices: Option<carelog_bus::dead_letter::NoticePublisher>,
    /// Idempotency records, sealed with the `system` subject's key
    /// (`IdempotencyStore::for_system` at start-up).
    pub idempotency: IdempotencyStore,
    /// Accounts, logins, sessions, platform roles.
    pub identity: carelog_commands::identity::Identity,
    /// Organisations, patients, clinical records, emergency access.
    pub clinical: carelog_commands::clinical::Clinical,
    /// Failed logins per client address (API.md: > 100 in 15 min → 429).
    pub login_throttle: Arc<crate::auth::LoginThrottle>,
    /// The process's metrics (request metrics recorded here; `GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl FromRef<AppState> for Arc<crate::metrics::Metrics> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.metrics)
    }
}

impl FromRef<AppState> for Arc<ApiConfig> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.config)
    }
}
