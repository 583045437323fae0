//! Connecting, migrating, and refusing to serve a database that is not safe to serve.

use std::str::FromStr;
use std::time::Duration;

use carelog_crypto::{KekId, Keyring};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use crate::error::StoreError;

/// How the pool is sized and bounded.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Connections in the pool.
    pub max_connections: u32,
    /// A session idle inside a transaction longer than this is ended by PostgreSQL, so a
    /// stuck client cannot hold the log's xmin (and with it every reader) back for long.
    pub idle_in_transaction_timeout: Duration,
    /// How long to wait for a connection from the pool.
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            idle_in_transaction_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Opens a pool to `url` with carelog's session settings.
pub async fn connect(url: &str, cfg: &PoolConfig) -> Result<PgPool, StoreError> {
    let idle_ms = cfg.idle_in_transaction_timeout.as_millis().to_string();
    let options = PgConnectOptions::from_str(url)?
        .application_name("carelog")
        .options([("idle_in_transaction_session_timeout", idle_ms.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .acquire_timeout(cfg.acquire_timeout)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies the migrations in `migrations/` (idempotent; sqlx takes its own lock).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::migrate!("../../migrations")
        .run(pool)
        .await
        .map_err(|e| StoreError::Database(e.into()))
}

/// Refuses, with a message an operator can act on, a database that this process must
/// not serve: one restored logically into a younger cluster (its transaction ids are
/// ahead, so gap-safe readers would hide its rows), or one whose data keys are wrapped
/// by a master key this process was not given.
pub async fn startup_checks(pool: &PgPool, keyring: &Keyring) -> Result<(), StoreError> {
    check_xid_horizon(pool).await?;
    check_keyring(pool, keyring).await
}

async fn check_xid_horizon(pool: &PgPool) -> Result<(), StoreError> {
    let row = sqlx::query(include_str!("../sql/xid_horizon.sql"))
        .fetch_one(pool)
        .await?;
    let ahead: bool = row.try_get("ahead")?;
    if ahead {
        let max: String = row.try_get("max_tx_id")?;
        let next: String = row.try_get("next_xid")?;
        return Err(StoreError::Refused(format!(
            "the event table holds transaction ids up to {max}, but this PostgreSQL cluster \
             is only at {next}: the database was restored logically into another cluster. \
             Gap-safe readers would hide those events. Restore physically (pg_basebackup), \
             or advance the cluster's transaction counter past {max} before serving it."
        )));
    }
    Ok(())
}

async fn check_keyring(pool: &PgPool, keyring: &Keyring) -> Result<(), StoreError> {
    let rows = sqlx::query(include_str!("../sql/key_kek_ids.sql"))
        .fetch_all(pool)
        .await?;
    for row in rows {
        let id = KekId::from_stored(row.try_get("kek_id")?);
        if !keyring.contains(&id) {
            return Err(StoreError::Refused(format!(
                "the database holds data keys wrapped by master key {id}, which is not \
                 configured (CARELOG_MASTER_KEY is key {}). Wrong master key? During a \
                 rotation, give the old key in CARELOG_PREVIOUS_MASTER_KEYS.",
                keyring.primary().id()
            )));
        }
    }
    Ok(())
}
