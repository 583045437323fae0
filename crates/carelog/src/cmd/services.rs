//! Services built from the environment (failing closed on any bad setting).

use anyhow::{Context, Result};
use carelog::app::Services;
use carelog_crypto::password::PasswordHasher;
use carelog_store::PoolConfig;

use crate::config;

/// Reads and validates the configuration, connects, and starts the services.
pub async fn from_env() -> Result<Services> {
    let keyring = config::keyring()?;
    let tokens = config::token_keys()?;
    let identity = config::identity()?;
    let clinical = config::clinical()?;
    let pool = carelog_store::connect(&config::database_url()?, &PoolConfig::default())
        .await
        .context("cannot reach PostgreSQL at DATABASE_URL")?;
    let services =
        Services::start(pool, keyring, tokens, identity, PasswordHasher::default()).await?;
    Ok(services.with_clinical(clinical))
}
