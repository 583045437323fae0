//! `carelog check`: the start-up checks of `serve`, without serving — configuration and
//! keys parse, the database is reachable and migrated, its data keys are wrapped by a
//! configured master key, and its transaction ids are not ahead of the cluster.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::config;

pub async fn run() -> Result<ExitCode> {
    let keyring = config::keyring()?;
    let pool = super::cli_pool(&config::database_url()?)
        .await
        .context("cannot reach PostgreSQL at DATABASE_URL")?;
    carelog_store::startup_checks(&pool, &keyring).await?;
    println!(
        "ok: configuration, master key {} and database accepted",
        keyring.primary().id()
    );
    Ok(ExitCode::SUCCESS)
}
