//! `carelog project`: the projector workers only (no API, no relay), one per projection
//! of this build, until Ctrl-C or SIGTERM; each then finishes the batch in hand.

use std::process::ExitCode;

use anyhow::{bail, Result};
use carelog_projector::ProjectorConfig;

use crate::config;

pub async fn run() -> Result<ExitCode> {
    let bus = config::bus()?;
    let Some(nats_url) = std::env::var("NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        bail!("NATS_URL is not set: projectors read the events from NATS JetStream");
    };
    let services = super::services::from_env().await?;
    let projectors = services
        .start_projectors(&nats_url, bus, ProjectorConfig::default())
        .await?;
    tracing::info!(projectors = projectors.len(), "carelog is projecting");
    super::dev::wait_for_shutdown().await;
    tracing::info!("stopping the projectors");
    projectors.stop().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
