//! Rebuilding a read model from the log (`carelog rebuild`), not from NATS.
//!
//! 1. Empty twins of the projection's tables are created in the schema
//!    `carelog_rebuild`.
//! 2. The whole log is replayed into them (gap-safe reads, payloads opened with the
//!    subject keys, batches of 1,000 in one transaction each). Meanwhile queries keep
//!    reading the live tables.
//! 3. Under the projection's lock, the same lock as the runtime's batches: catch up to
//!    the live checkpoint, then swap the twins in. The checkpoint becomes the later of the
//!    two positions; the runtime re-reads it under that lock, so it never applies an
//!    event the new table already holds.
//!
//! Events the live projection set aside in its dead-letter queue are skipped, as the
//! incremental state skipped them, so a rebuild reaches the same state. An event that
//! fails to apply stops the rebuild and leaves the live tables untouched.

use std::collections::HashSet;

use carelog_domain::{EventId, Position};
use carelog_store::projector as pstore;
use carelog_store::{EventStore, StoreError, StoredEvent};
use sqlx::PgPool;

use crate::{ApplyError, Projection};

const BATCH: i64 = 1_000;

/// Why a rebuild stopped (the live tables are unchanged).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The projection has no rebuild scripts.
    #[error("projection {0} cannot be rebuilt")]
    NotRebuildable(String),
    /// An event did not apply.
    #[error("the event at position {position} did not apply: {error}")]
    Apply {
        /// Where.
        position: i64,
        /// Why (no PHI).
        error: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RebuildError {
    fn from(e: sqlx::Error) -> Self {
        RebuildError::Store(StoreError::Database(e))
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Events applied to the new tables.
    pub applied: u64,
    /// Events skipped because the live projection set them aside (DLQ).
    pub skipped: u64,
    /// The projection's checkpoint after the swap.
    pub checkpoint: Position,
}

/// Rebuilds `projection` from the log; `progress(done, total)` is told after each batch.
pub async fn rebuild(
    pool: &PgPool,
    store: &EventStore,
    projection: &dyn Projection,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, RebuildError> {
    let name = projection.name();
    let sql = projection
        .rebuild_sql()
        .ok_or_else(|| RebuildError::NotRebuildable(name.to_owned()))?;
    pstore::rebuild_script(pool, sql.prepare).await?;
    let total = carelog_store::projector_status::status(pool, name)
        .await?
        .head
        .max(0) as u64;
    let mut report = RebuildReport {
        applied: 0,
        skipped: 0,
        checkpoint: Position::START,
    };
    let mut cursor = Position::START;
    // Read up to the head known now. An empty gap-safe read does not mean the end: a
    // transaction still in flight anywhere in the cluster holds later rows back (their
    // snapshot xmin), so wait for them rather than swap in a table that misses them.
    let target = Position(total as i64);
    while cursor < target {
        let skip = set_aside(pool, name).await?;
        let batch = carelog_store::read::all(pool, cursor, BATCH).await?;
        let Some(last) = batch.last().map(|e| e.position) else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let mut tx = pool.begin().await?;
        pstore::rebuild_search_path(&mut tx).await?;
        apply_all(&mut tx, store, projection, &batch, &skip, &mut report).await?;
        tx.commit().await?;
        cursor = last;
        progress(report.applied + report.skipped, total.max(cursor.0 as u64));
    }

    // Catch up to the live checkpoint and swap, under the projection's lock.
    let mut tx = pool.begin().await?;
    pstore::lock(&mut tx, name).await?;
    let live = pstore::checkpoint(&mut *tx, name).await?;
    let skip = set_aside(&mut *tx, name).await?;
    pstore::rebuild_search_path(&mut tx).await?;
    while cursor < live {
        let batch: Vec<StoredEvent> = carelog_store::read::all(pool, cursor, BATCH)
            .await?
            .into_iter()
            .filter(|e| e.position <= live)
            .collect();
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        apply_all(&mut tx, store, projection, &batch, &skip, &mut report).await?;
        cursor = last;
    }
    pstore::rebuild_script(&mut *tx, sql.swap).await?;
    report.checkpoint = live.max(cursor);
    pstore::save_checkpoint(&mut tx, name, report.checkpoint).await?;
    tx.commit().await?;
    tracing::info!(projection = %name, applied = report.applied, skipped = report.skipped, checkpoint = report.checkpoint.0, "projection rebuilt");
    Ok(report)
}

/// Event ids the live projection set aside (failed or waiting dead letters).
async fn set_aside(
    db: impl sqlx::PgExecutor<'_>,
    name: &str,
) -> Result<HashSet<EventId>, StoreError> {
    Ok(pstore::dlq_list(db, Some(name))
        .await?
        .into_iter()
        .map(|e| e.event_id)
        .collect())
}

async fn apply_all(
    tx: &mut sqlx::PgConnection,
    store: &EventStore,
    projection: &dyn Projection,
    batch: &[StoredEvent],
    skip: &HashSet<EventId>,
    report: &mut RebuildReport,
) -> Result<(), RebuildError> {
    for event in batch {
        if skip.contains(&event.header.event_id) {
            report.skipped += 1;
            continue;
        }
        let opened = store.open(event).await?;
        projection
            .apply(tx, event, &opened)
            .await
            .map_err(|e: ApplyError| RebuildError::Apply {
                position: event.position.0,
                error: e.message().to_owned(),
            })?;
        report.applied += 1;
    }
    Ok(())
}
