//! Rebuilding a read model from the log (`carelog rebuild`), not from NATS.
//!
//! 1. Empty twins of the projection's tables are created in the schema
//!    `carelog_rebuild`.
//! 2. The whole log is replayed into them (gap-safe reads, payloads opened with the
//!    subject keys, batches of 10,000 in one transaction each). Meanwhile queries keep
//!    reading the live tables. A reader task fetches the next batch while the current
//!    one is opened and applied (at most [`PREFETCH`] batches ahead); the keys of a
//!    batch's subjects are looked up in one query ([`carelog_store::Vault::open_batch`]);
//!    the projection applies a batch at once ([`Projection::apply_batch`]: one statement
//!    for `audit_feed`).
//! 3. Under the projection's lock, the same lock as the runtime's batches: catch up to
//!    the live checkpoint, then swap the twins in. The checkpoint becomes the later of the
//!    two positions; the runtime re-reads it under that lock, so it never applies an
//!    event the new table already holds.
//!
//! Events the live projection set aside in its dead-letter queue are skipped, as the
//! incremental state skipped them, so a rebuild reaches the same state. An event that
//! fails to apply stops the rebuild and leaves the live tables untouched; when a batch
//! fails as a whole, its events are re-applied one at a time (in a savepoint, rolled
//! back) to name the one that failed.

use std::collections::HashSet;

use carelog_domain::{EventId, Position};
use carelog_store::projector as pstore;
use carelog_store::{EventStore, Opened, StoreError, StoredEvent};
use sqlx::{Connection as _, PgPool};
use tokio::sync::mpsc;

use crate::{BatchApplyError, Projection};

/// Events read, opened and applied at a time (one transaction each).
const BATCH: i64 = 10_000;
/// Batches the reader task may hold ready ahead of the one being applied.
const PREFETCH: usize = 2;
/// Pause before reading again when in-flight transactions hold the next rows back.
const HELD_BACK_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

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
    let (sender, mut batches) = mpsc::channel(PREFETCH);
    let reader = AbortOnDrop(tokio::spawn(read_ahead(
        pool.clone(),
        cursor,
        target,
        sender,
    )));
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        let Some(last) = batch.last().map(|e| e.position) else {
            continue;
        };
        let skip = set_aside(pool, name).await?;
        let mut tx = pool.begin().await?;
        pstore::rebuild_search_path(&mut tx).await?;
        apply_all(&mut tx, store, projection, &batch, &skip, &mut report).await?;
        tx.commit().await?;
        cursor = last;
        progress(report.applied + report.skipped, total.max(cursor.0 as u64));
    }
    drop(reader);

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

/// Reads the log after `cursor` up to `target` (gap-safe, [`BATCH`] at a time) into
/// `batches`, ahead of the applier; stops at the first error (sent on) or when the
/// applier hangs up.
async fn read_ahead(
    pool: PgPool,
    mut cursor: Position,
    target: Position,
    batches: mpsc::Sender<Result<Vec<StoredEvent>, StoreError>>,
) {
    while cursor < target {
        let batch = match carelog_store::read::all(&pool, cursor, BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                let _ = batches.send(Err(e)).await;
                return;
            }
        };
        let Some(last) = batch.last().map(|e| e.position) else {
            tokio::time::sleep(HELD_BACK_PAUSE).await;
            continue;
        };
        cursor = last;
        if batches.send(Ok(batch)).await.is_err() {
            return;
        }
    }
}

/// Aborts a task when dropped (the rebuild stopped early).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens and applies the events of `batch` not in `skip`, in one savepoint of `tx`.
async fn apply_all(
    tx: &mut sqlx::PgConnection,
    store: &EventStore,
    projection: &dyn Projection,
    batch: &[StoredEvent],
    skip: &HashSet<EventId>,
    report: &mut RebuildReport,
) -> Result<(), RebuildError> {
    let kept: Vec<&StoredEvent> = batch
        .iter()
        .filter(|e| !skip.contains(&e.header.event_id))
        .collect();
    report.skipped += (batch.len() - kept.len()) as u64;
    if kept.is_empty() {
        return Ok(());
    }
    let opened = store.vault().open_batch(&kept).await?;
    let items: Vec<(&StoredEvent, &Opened)> = kept.iter().copied().zip(opened.iter()).collect();
    let mut savepoint = tx.begin().await?;
    match projection.apply_batch(&mut savepoint, &items).await {
        Ok(()) => {
            savepoint.commit().await?;
            report.applied += items.len() as u64;
            Ok(())
        }
        Err(failed) => {
            savepoint.rollback().await?;
            Err(culprit(tx, projection, &items, failed).await?)
        }
    }
}

/// The error naming the event of a failed batch that does not apply: the one the
/// projection named, or else the first that fails alone (tried in a savepoint of `tx`,
/// rolled back).
async fn culprit(
    tx: &mut sqlx::PgConnection,
    projection: &dyn Projection,
    items: &[(&StoredEvent, &Opened)],
    failed: BatchApplyError,
) -> Result<RebuildError, RebuildError> {
    let apply_error = |event: &StoredEvent, error: &crate::ApplyError| RebuildError::Apply {
        position: event.position.0,
        error: error.message().to_owned(),
    };
    if let Some(event) = failed.index.and_then(|i| items.get(i)) {
        return Ok(apply_error(event.0, &failed.error));
    }
    let mut savepoint = tx.begin().await?;
    for (event, opened) in items {
        if let Err(error) = projection.apply(&mut savepoint, event, opened).await {
            savepoint.rollback().await?;
            return Ok(apply_error(event, &error));
        }
    }
    savepoint.rollback().await?;
    // Each event applied alone: the batch as a whole is at fault; name its first event.
    Ok(apply_error(items[0].0, &failed.error))
}
