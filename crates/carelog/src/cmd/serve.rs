//! `carelog serve`: the HTTP API and, when `NATS_URL` is set, the relay that publishes
//! the event log to JetStream (projectors once they exist). Configuration is validated
//! before anything listens.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::config;

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub async fn run() -> Result<ExitCode> {
    let bind = config::bind()?;
    let api = config::api()?;
    let bus = config::bus()?;
    let services = super::services::from_env().await?;
    let nats_url = std::env::var("NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let app = services.router(api, nats_url.as_deref()).await?;

    let relay = match &nats_url {
        Some(url) => Some(services.start_relay(url, bus).await?),
        None => {
            tracing::warn!("NATS_URL is not set: events are not published to NATS");
            None
        }
    };

    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (CARELOG_BIND)"))?;
    tracing::info!(address = %listener.local_addr()?, "carelog is serving");
    carelog_api::server::serve(listener, app, super::dev::wait_for_shutdown()).await?;
    if let Some(relay) = relay {
        relay.stop().await;
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
