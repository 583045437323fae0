//! Rebuilding a read model from the log (`carelog rebuild`), not from NATS.
//!
//! 1. Empty twins of the projection's tables are created in the schema
//!    `carelog_rebuild`.
//! 2. The whole log is replayed into them (gap-safe reads, payloads opened with the
//!    subject keys, batches of `BATCH` events in one transaction each). Meanwhile
//!    queries keep reading the live tables. Three stages run at once, each at most
//!    `PREFETCH` batches ahead of the next: a reader task reads the log
//!    ([`carelog_store::read::all_bulk`]); an opener task drops the events the live
//!    projection set aside, looks up the keys of a batch's subjects in one query and
//!    opens the payloads (AES-256-GCM + JSON) on every core
//!    ([`carelog_store::vault::open_with_keys`], in `spawn_blocking`); this task applies
//!    the batch ([`Projection::fill_batch`]). A projection with a bulk fill
//!    ([`Projection::bulk_sql`]; `audit_feed`: binary `COPY` into an index-less twin)
//!    runs its `before` script on the empty twins and its `after` script (indexes back,
//!    as the live tables define them) once the fill is done, before step 3.
//! 3. Under the projection's lock, the same lock as the runtime's batches: catch up to
//!    the live checkpoint, then swap the twins in. The checkpoint becomes the later of the
//!    two positions; the runtime re-reads it under that lock, so it never applies an
//!    event the new table already holds.
//!
//! Events the live projection set aside in its dead-letter queue are skipped, as the
//! incremental state skipped them, so a rebuild reaches the same state. The queue may
//! change while the twins fill (the live projector dead-letters an event the fill already
//! applied, or an operator retries one it skipped): step 3 compares, under the lock, and
//! starts the rebuild over rather than swap in twins that disagree with it. An event that
//! fails to apply stops the rebuild and leaves the live tables untouched; when a batch
//! fails as a whole, its events are re-applied one at a time (in a savepoint, rolled
//! back) to name the one that failed (a failed `COPY` names the first event of its batch).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use carelog_domain::{EventId, Position};
use carelog_store::projector as pstore;
use carelog_store::read::ReplayHorizon;
use carelog_store::{EventStore, Opened, StoreError, StoredEvent, Vault};
use futures::StreamExt as _;
use sqlx::{Connection as _, PgPool};
use tokio::sync::mpsc;

use crate::{reads_payload, with_unread, BatchApplyError, PayloadFilter, Projection};

/// Events read, opened and applied at a time (one transaction each).
const BATCH: i64 = 10_000;
/// Batches each stage may hold ready ahead of the next one.
const PREFETCH: usize = 2;
/// Position ranges read at once below the replay's horizon (see [`read_ahead`]).
const READERS: usize = 2;
/// Indexes of a twin built at once after a bulk fill ([`build_twin_indexes`]).
const INDEX_BUILDERS: usize = 2;
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
    /// The live projection's dead-letter queue changed under every attempt: events were
    /// set aside or released while the twins were filled, so the fill no longer matched.
    #[error("the dead-letter queue of {projection} changed during each of {attempts} attempts; run the rebuild again when it is settled")]
    DlqKeptChanging {
        /// The projection.
        projection: String,
        /// Attempts made.
        attempts: u32,
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
    /// Attempts it took: a rebuild starts over when the live projection's dead-letter
    /// queue changed while it filled the twins (see [`rebuild`]).
    pub attempts: u32,
    /// The projection's checkpoint after the swap.
    pub checkpoint: Position,
    /// Where the time went.
    pub timings: RebuildTimings,
}

/// Where a rebuild's time went: wall-clock spans of its steps, and how long each task of
/// the pipelined fill was busy (they overlap, so their busy times add up to more than
/// the fill's span).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildTimings {
    /// Creating the empty twins (and dropping their indexes for a bulk fill).
    pub prepare: Duration,
    /// The pipelined fill of the twins (read, open, apply).
    pub fill: Duration,
    /// Reading the log (waiting for PostgreSQL and decoding rows).
    pub read_busy: Duration,
    /// Looking up keys and opening payloads.
    pub open_busy: Duration,
    /// Applying batches to the twins (building rows, `COPY`, commits).
    pub apply_busy: Duration,
    /// Giving the twins their indexes back after a bulk fill.
    pub index: Duration,
    /// Catching up to the live checkpoint and swapping, under the projection's lock.
    pub catch_up_and_swap: Duration,
}

/// Attempts a rebuild makes before it gives up on a dead-letter queue that keeps changing.
const ATTEMPTS: u32 = 3;

/// Rebuilds `projection` from the log; `progress(done, total)` is told after each batch.
///
/// The twins must skip exactly the events the live projection has set aside when they
/// are swapped in. The fill reads the dead-letter queue batch by batch; if, by the time
/// of the swap (under the projection's lock, so nothing changes any more), an event
/// filled in was set aside meanwhile, or one skipped was retried and applied, the twins
/// are dropped unswapped and the rebuild starts over, at most `ATTEMPTS` times.
pub async fn rebuild(
    pool: &PgPool,
    store: &EventStore,
    projection: &dyn Projection,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, RebuildError> {
    for attempt in 1..=ATTEMPTS {
        match rebuild_once(pool, store, projection, &mut progress).await? {
            Some(mut report) => {
                report.attempts = attempt;
                return Ok(report);
            }
            None => tracing::info!(
                projection = %projection.name(),
                attempt,
                "the dead-letter queue changed during the rebuild; starting over"
            ),
        }
    }
    Err(RebuildError::DlqKeptChanging {
        projection: projection.name().to_owned(),
        attempts: ATTEMPTS,
    })
}

/// One attempt of [`rebuild`]: `None` when the dead-letter queue changed under it (the
/// live tables are untouched).
async fn rebuild_once(
    pool: &PgPool,
    store: &EventStore,
    projection: &dyn Projection,
    progress: &mut impl FnMut(u64, u64),
) -> Result<Option<RebuildReport>, RebuildError> {
    let name = projection.name();
    let sql = projection
        .rebuild_sql()
        .ok_or_else(|| RebuildError::NotRebuildable(name.to_owned()))?;
    let bulk = projection.bulk_sql();
    let started = Instant::now();
    pstore::rebuild_script(pool, sql.prepare).await?;
    if let Some(bulk) = bulk {
        pstore::rebuild_script(pool, bulk.before).await?;
    }
    // Read up to the head known now. An empty gap-safe read does not mean the end: a
    // transaction still in flight anywhere in the cluster holds later rows back (their
    // snapshot xmin), so wait for them rather than swap in a table that misses them.
    let horizon = carelog_store::read::horizon(pool).await?;
    let total = horizon.head.0.max(0) as u64;
    let prepared = started.elapsed();
    let mut report = RebuildReport {
        applied: 0,
        skipped: 0,
        attempts: 1,
        checkpoint: Position::START,
        timings: RebuildTimings::default(),
    };
    let mut cursor = Position::START;
    let (sender, read) = mpsc::channel(PREFETCH);
    let reader = AbortOnDrop(tokio::spawn(read_ahead(
        pool.clone(),
        horizon,
        horizon.head,
        projection.payload_types(),
        sender,
    )));
    let (sender, mut opened) = mpsc::channel(PREFETCH);
    let opener = AbortOnDrop(tokio::spawn(open_ahead(
        pool.clone(),
        store.vault().clone(),
        name.to_owned(),
        projection.payload_filter(),
        read,
        sender,
    )));
    let mut applying = Duration::ZERO;
    // The events the fill skipped, as the dead-letter queue stood at each batch.
    let mut fill_skipped: HashSet<EventId> = HashSet::new();
    while let Some(batch) = opened.recv().await {
        let batch = batch?;
        fill_skipped.extend(batch.set_aside.iter().copied());
        let began = Instant::now();
        let mut tx = pool.begin().await?;
        // The fill's commits need not wait for their WAL to reach the disk: they only
        // write the twins in `carelog_rebuild`, which nothing reads, and a crash that
        // loses some of them loses a twin the next rebuild drops anyway (the prepare
        // script starts from empty twins). The swap's transaction below keeps the
        // default (`synchronous_commit = on`): its commit flushes the WAL up to its own
        // commit record, so every fill commit before it is durable by then, and the live
        // tables are never replaced by a twin missing rows.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        pstore::rebuild_search_path(&mut tx).await?;
        apply_all(&mut tx, projection, Stage::Fill, &batch, &mut report).await?;
        tx.commit().await?;
        applying += began.elapsed();
        cursor = batch.last;
        progress(report.applied + report.skipped, total.max(cursor.0 as u64));
    }
    let reading = reader.join().await;
    let opening = opener.join().await;
    let filled = started.elapsed();
    if let Some(bulk) = bulk {
        match bulk.parallel_indexes {
            Some(table) => build_twin_indexes(pool, table).await?,
            None => pstore::rebuild_script(pool, bulk.after).await?,
        }
    }
    let indexed = started.elapsed();

    // Catch up to the live checkpoint and swap, under the projection's lock.
    let mut tx = pool.begin().await?;
    pstore::lock(&mut tx, name).await?;
    let live = pstore::checkpoint(&mut *tx, name).await?;
    let entries = pstore::dlq_list(&mut *tx, Some(name)).await?;
    if !fill_agrees(&entries, &fill_skipped, cursor) {
        return Ok(None);
    }
    let skip: HashSet<EventId> = entries.iter().map(|e| e.event_id).collect();
    pstore::rebuild_search_path(&mut tx).await?;
    while cursor < live {
        let batch: Vec<StoredEvent> =
            carelog_store::read::all_bulk(pool, cursor, BATCH, projection.payload_types())
                .await?
                .into_iter()
                .filter(|e| e.position <= live)
                .collect();
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        let batch = open_batch(store.vault(), batch, &skip, projection.payload_filter()).await?;
        apply_all(&mut tx, projection, Stage::CatchUp, &batch, &mut report).await?;
        cursor = last;
    }
    pstore::rebuild_script(&mut *tx, sql.swap).await?;
    report.checkpoint = live.max(cursor);
    pstore::save_checkpoint(&mut tx, name, report.checkpoint).await?;
    tx.commit().await?;
    let t = RebuildTimings {
        prepare: prepared,
        fill: filled - prepared,
        read_busy: reading.unwrap_or_default(),
        open_busy: opening.unwrap_or_default(),
        apply_busy: applying,
        index: indexed - filled,
        catch_up_and_swap: started.elapsed() - indexed,
    };
    report.timings = t;
    let ms = |d: Duration| d.as_millis() as u64;
    tracing::info!(
        projection = %name,
        applied = report.applied,
        skipped = report.skipped,
        checkpoint = report.checkpoint.0,
        total_ms = ms(started.elapsed()),
        prepare_ms = ms(t.prepare),
        fill_ms = ms(t.fill),
        read_busy_ms = ms(t.read_busy),
        open_busy_ms = ms(t.open_busy),
        apply_busy_ms = ms(t.apply_busy),
        index_ms = ms(t.index),
        catch_up_and_swap_ms = ms(t.catch_up_and_swap),
        "projection rebuilt"
    );
    Ok(Some(report))
}

/// Whether the fill, which read the log up to `filled` and skipped `fill_skipped`,
/// skipped exactly the events up to `filled` that the dead-letter queue now sets aside
/// (`entries`, read under the projection's lock).
fn fill_agrees(
    entries: &[pstore::DlqEntry],
    fill_skipped: &HashSet<EventId>,
    filled: Position,
) -> bool {
    let now: HashSet<EventId> = entries
        .iter()
        .filter(|e| e.position <= filled)
        .map(|e| e.event_id)
        .collect();
    now == *fill_skipped
}

/// Gives the filled twin `carelog_rebuild.<table>` the constraints and indexes of the live
/// `table`, [`INDEX_BUILDERS`] indexes at a time (each on its own connection, in its own
/// transaction with more sort memory), then attaches the primary key and unique
/// constraints to their indexes. A duplicate fails here, and the live table stays as it
/// was.
async fn build_twin_indexes(pool: &PgPool, table: &str) -> Result<(), RebuildError> {
    let twin = format!("carelog_rebuild.\"{}\"", table.replace('"', "\"\""));
    let ddl = carelog_store::read::twin_index_ddl(pool, table, &twin).await?;
    let (builds, attach): (Vec<_>, Vec<_>) = ddl.into_iter().partition(|(phase, _)| *phase == 0);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(
        builds.into_iter().map(|(_, sql)| sql).collect::<Vec<_>>(),
    ));
    let builders: Vec<_> = (0..INDEX_BUILDERS)
        .map(|_| {
            let (pool, queue) = (pool.clone(), queue.clone());
            AbortOnDrop(tokio::spawn(build_indexes_from(pool, queue)))
        })
        .collect();
    for builder in builders {
        match builder.join().await {
            Some(built) => built?,
            None => {
                return Err(RebuildError::Store(StoreError::Database(
                    sqlx::Error::WorkerCrashed,
                )))
            }
        }
    }
    let mut tx = pool.begin().await?;
    for (_, sql) in attach {
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One builder of [`build_twin_indexes`]: runs statements taken from `queue` until it is
/// empty, in one transaction with more sort memory.
async fn build_indexes_from(
    pool: PgPool,
    queue: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let conn: &mut sqlx::PgConnection = &mut tx;
    sqlx::query("SELECT set_config('maintenance_work_mem', '256MB', true)")
        .execute(&mut *conn)
        .await?;
    loop {
        let next = queue.lock().map_or(None, |mut q| q.pop());
        let Some(sql) = next else { break };
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    tx.commit().await
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

/// Reads the log up to `horizon.head`, then on up to `target`, into `batches`, ahead of
/// the opener; stops at the first error (sent on) or when the opener hangs up. Returns
/// the time spent reading (summed over the concurrent readers).
///
/// First [`READERS`] readers at once read the position ranges of [`BATCH`] that tile
/// `(START, horizon.head]` ([`carelog_store::read::range_bulk`]), handed on in position
/// order, until the first row of a transaction not older than the horizon's xmin: up to
/// there the ranges hold exactly one gap-safe page of the horizon's snapshot (the proof
/// is on [`carelog_store::read::ReplayHorizon`]). From the last event kept, ordinary
/// gap-safe pages ([`carelog_store::read::all_bulk`]) read on up to `target`.
async fn read_ahead(
    pool: PgPool,
    horizon: ReplayHorizon,
    target: Position,
    payload_types: Option<&'static [&'static str]>,
    batches: mpsc::Sender<Result<Vec<StoredEvent>, StoreError>>,
) -> Duration {
    let mut busy = Duration::ZERO;
    let mut cursor = Position::START;
    let ranges = (0..)
        .map(|i| Position(i * BATCH))
        .take_while(|start| *start < horizon.head)
        .map(|start| (start, Position((start.0 + BATCH).min(horizon.head.0))));
    let mut ranges = futures::stream::iter(ranges)
        .map(|(after, upto)| {
            let pool = pool.clone();
            let task = AbortOnDrop(tokio::spawn(async move {
                let began = Instant::now();
                let page =
                    carelog_store::read::range_bulk(&pool, horizon, after, upto, payload_types)
                        .await;
                (page, began.elapsed())
            }));
            // Dropped unfinished (the reads stop early): the task is aborted.
            async move { task.join().await }
        })
        .buffered(READERS);
    while let Some(read) = ranges.next().await {
        let Some((page, took)) = read else {
            // The reader panicked; the ordinary pages below read on from the cursor.
            break;
        };
        busy += took;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                let _ = batches.send(Err(e)).await;
                return busy;
            }
        };
        // The cursor is the last event kept, never the range's end: the gap-safe pages
        // read on from there (ReplayHorizon's proof covers what was kept, no more).
        if let Some(last) = page.events.last().map(|e| e.position) {
            cursor = last;
            if batches.send(Ok(page.events)).await.is_err() {
                return busy;
            }
        }
        if page.cut {
            break;
        }
    }
    drop(ranges);
    while cursor < target {
        let began = Instant::now();
        let read = carelog_store::read::all_bulk(&pool, cursor, BATCH, payload_types).await;
        busy += began.elapsed();
        let batch = match read {
            Ok(batch) => batch,
            Err(e) => {
                let _ = batches.send(Err(e)).await;
                return busy;
            }
        };
        let Some(last) = batch.last().map(|e| e.position) else {
            tokio::time::sleep(HELD_BACK_PAUSE).await;
            continue;
        };
        cursor = last;
        if batches.send(Ok(batch)).await.is_err() {
            return busy;
        }
    }
    busy
}

/// A batch of the log, opened: the events kept (not set aside) with their payloads.
struct OpenedBatch {
    events: Vec<StoredEvent>,
    opened: Vec<Opened>,
    /// Events of the batch set aside by the live projection (not in `events`).
    set_aside: Vec<EventId>,
    /// The position of the batch's last event, kept or not.
    last: Position,
}

/// Opens the batches of `read` into `out`, ahead of the applier, dropping the events
/// the live projection set aside (looked up again for each batch); stops at the first
/// error (sent on) or when the applier hangs up. Returns the time spent opening.
async fn open_ahead(
    pool: PgPool,
    vault: Vault,
    name: String,
    filter: Option<PayloadFilter>,
    mut read: mpsc::Receiver<Result<Vec<StoredEvent>, StoreError>>,
    out: mpsc::Sender<Result<OpenedBatch, StoreError>>,
) -> Duration {
    let mut busy = Duration::ZERO;
    while let Some(batch) = read.recv().await {
        let began = Instant::now();
        let opened = match batch {
            Ok(batch) => match set_aside(&pool, &name).await {
                Ok(skip) => open_batch(&vault, batch, &skip, filter).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        busy += began.elapsed();
        let failed = opened.is_err();
        if out.send(opened).await.is_err() || failed {
            return busy;
        }
    }
    busy
}

/// Opens the events of `batch` not in `skip`: their subjects' keys in one query, the
/// payloads on every core (in `spawn_blocking`); those the projection's `filter` leaves
/// out are never decrypted ([`Opened::Unread`]).
async fn open_batch(
    vault: &Vault,
    batch: Vec<StoredEvent>,
    skip: &HashSet<EventId>,
    filter: Option<PayloadFilter>,
) -> Result<OpenedBatch, StoreError> {
    let last = batch.last().map_or(Position::START, |e| e.position);
    let (events, set_aside): (Vec<StoredEvent>, Vec<StoredEvent>) = batch
        .into_iter()
        .partition(|e| !skip.contains(&e.header.event_id));
    let set_aside = set_aside.iter().map(|e| e.header.event_id).collect();
    let keys = vault
        .keys()
        .for_read_many(
            events
                .iter()
                .filter(|e| reads_payload(filter, e))
                .map(|e| &e.header.subject),
        )
        .await?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (events, opened) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&StoredEvent> = events.iter().collect();
        let wanted: Vec<&StoredEvent> = refs
            .iter()
            .copied()
            .filter(|e| reads_payload(filter, e))
            .collect();
        let opened = carelog_store::vault::open_with_keys(&keys, &wanted, threads)
            .and_then(|opened| with_unread(&refs, filter, opened));
        (events, opened)
    })
    .await
    .map_err(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        // Cancelled: the runtime is shutting down.
        Err(_) => StoreError::ShuttingDown,
    })?;
    Ok(OpenedBatch {
        opened: opened?,
        events,
        set_aside,
        last,
    })
}

/// Aborts a task when dropped (the rebuild stopped early).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// The task's answer once it has ended (`None` if it panicked).
    async fn join(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Which part of a rebuild applies a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The fill of the empty twins ([`Projection::fill_batch`]).
    Fill,
    /// The catch-up under the lock, into the indexed twins ([`Projection::apply_batch`]).
    CatchUp,
}

/// Applies an opened batch to the twins in one savepoint of `tx`, as `stage` does; on
/// failure, names the event.
async fn apply_all(
    tx: &mut sqlx::PgConnection,
    projection: &dyn Projection,
    stage: Stage,
    batch: &OpenedBatch,
    report: &mut RebuildReport,
) -> Result<(), RebuildError> {
    report.skipped += batch.set_aside.len() as u64;
    if batch.events.is_empty() {
        return Ok(());
    }
    let items: Vec<(&StoredEvent, &Opened)> =
        batch.events.iter().zip(batch.opened.iter()).collect();
    let mut savepoint = tx.begin().await?;
    let applied = match stage {
        Stage::Fill => projection.fill_batch(&mut savepoint, &items).await,
        Stage::CatchUp => projection.apply_batch(&mut savepoint, &items).await,
    };
    match applied {
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
