//! Where a projection stands (`GET /admin/projections`).

use sqlx::{PgPool, Row};

use crate::error::StoreError;

/// A projection's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    /// Its checkpoint: the last position applied (or set aside in the DLQ).
    pub position: i64,
    /// The log's last position.
    pub head: i64,
    /// Positions behind the head (rolled-back gaps included).
    pub lag_events: i64,
    /// Age of the oldest event not yet applied, in seconds (0 when caught up).
    pub lag_seconds: f64,
    /// Failed DLQ entries of this projection.
    pub failed: i64,
}

/// The progress of projection `name`.
pub async fn status(pool: &PgPool, name: &str) -> Result<ProjectionStatus, StoreError> {
    let r = sqlx::query(include_str!("../sql/projector_status.sql"))
        .bind(name)
        .fetch_one(pool)
        .await?;
    let position: i64 = r.try_get("position")?;
    let head: i64 = r.try_get("head")?;
    Ok(ProjectionStatus {
        position,
        head,
        lag_events: (head - position).max(0),
        lag_seconds: r.try_get("lag_seconds")?,
        failed: r.try_get("failed")?,
    })
}
