//! Readiness: whether PostgreSQL answers.

use sqlx::PgPool;

use crate::error::StoreError;

/// Runs a trivial query; `Ok` when the database answers.
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/health_ping.sql"))
        .fetch_one(pool)
        .await?;
    Ok(())
}
