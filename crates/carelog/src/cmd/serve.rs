//! `carelog serve`: the HTTP API (and, unless `--no-projectors`, the relay and the
//! projectors once they exist). Configuration is validated before anything listens.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use carelog_api::auth::LoginThrottle;
use carelog_api::state::{ApiConfig, AppState};
use carelog_store::idempotency::{IdempotencyConfig, IdempotencyStore};

use super::services::Services;
use crate::config;

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub async fn run() -> Result<ExitCode> {
    let bind = config::bind()?;
    let api = config::api()?;
    let services = Services::start().await?;
    let state = app_state(&services, api).await?;
    let app = carelog_api::server::router(state, carelog_api::auth::routes());
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (CARELOG_BIND)"))?;
    tracing::info!(address = %listener.local_addr()?, "carelog is serving");
    carelog_api::server::serve(listener, app, super::dev::wait_for_shutdown()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The API's shared state over `services`.
pub async fn app_state(services: &Services, api: ApiConfig) -> Result<AppState> {
    let nats = match std::env::var("NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(
            async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect(url.as_str())
                .await
                .context("NATS_URL is not a valid NATS address")?,
        ),
        _ => None,
    };
    Ok(AppState {
        config: Arc::new(api),
        pool: services.pool.clone(),
        store: services.store.clone(),
        nats,
        idempotency: IdempotencyStore::new(
            services.pool.clone(),
            services.system_key.clone(),
            IdempotencyConfig::default(),
        ),
        identity: services.identity.clone(),
        login_throttle: Arc::new(LoginThrottle::default()),
    })
}
