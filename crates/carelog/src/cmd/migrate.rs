//! `carelog migrate`: apply the migrations, then check the database is servable.

use std::process::ExitCode;

use anyhow::Result;

use crate::config;

pub async fn run() -> Result<ExitCode> {
    let pool = super::cli_pool(&config::database_url()?).await?;
    carelog_store::migrate(&pool).await?;
    carelog_projector::schemas::ensure_schemas(&pool).await?;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}
