//! `carelog serve`: the HTTP API and, when `NATS_URL` is set, the relay that publishes
//! the event log to JetStream and the projectors (unless `--no-projectors`).
//! Configuration is validated before anything listens.

use std::process::ExitCode;

use anyhow::{Context, Result};
use carelog_projector::ProjectorConfig;

use crate::config;

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub async fn run(with_projectors: bool) -> Result<ExitCode> {
    let bind = config::bind()?;
    let metrics_bind = config::metrics_bind()?;
    let api = config::api()?;
    let bus = config::bus()?;
    let services = super::services::from_env().await?;
    let nats_url = std::env::var("NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let app = services.router(api, nats_url.as_deref(), &bus).await?;

    let (relay, projectors) = match &nats_url {
        Some(url) => {
            let relay = services.start_relay(url, bus.clone()).await?;
            let projectors = if with_projectors {
                Some(
                    services
                        .start_projectors(url, bus, ProjectorConfig::default())
                        .await?,
                )
            } else {
                None
            };
            (Some(relay), projectors)
        }
        None => {
            tracing::warn!(
                "NATS_URL is not set: events are not published to NATS, no projector runs"
            );
            (None, None)
        }
    };

    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (CARELOG_BIND)"))?;
    // `/metrics` on a listener of its own; stopped once the API has stopped.
    let metrics_server = match metrics_bind {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (CARELOG_METRICS_BIND)"))?;
            tracing::info!(address = %listener.local_addr()?, "metrics are served");
            let app = carelog_api::metrics::router(std::sync::Arc::clone(&services.metrics));
            Some(tokio::spawn(carelog_api::server::serve(
                listener,
                app,
                std::future::pending(),
            )))
        }
        None => None,
    };
    tracing::info!(address = %listener.local_addr()?, "carelog is serving");
    carelog_api::server::serve(listener, app, super::dev::wait_for_shutdown()).await?;
    if let Some(server) = metrics_server {
        server.abort();
    }
    if let Some(projectors) = projectors {
        projectors.stop().await;
    }
    if let Some(relay) = relay {
        relay.stop().await;
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
