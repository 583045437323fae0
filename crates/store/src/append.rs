//! Appending events: optimistic concurrency, sealing, hash chain, group commit.
//!
//! [`EventStore::append`] resolves the subjects' data keys and serialises the payloads
//! on the caller's task, then hands the append to a committer task (on connections of
//! its own). A committer takes every append waiting at that moment and writes them in
//! one transaction:
//!
//! 1. take the log's advisory lock (position order = commit order, see ADR 0002);
//! 2. read the head (version, hash) of every stream in the batch — except streams every
//!    append expects to be new, which start at the genesis head (should one exist after
//!    all, the `(stream_id, version)` key fails the batch, and the retry below reads it);
//! 3. per append, in arrival order: check the expected version (a stale one is a
//!    [`AppendError::Conflict`] for that append only), seal each payload with
//!    associated data = event id ‖ stream ‖ version ‖ type, chain the hashes;
//! 4. insert every row of the batch in one statement; commit; answer each caller.
//!
//! A batch whose heads are all known without reading the log — streams every append
//! expects to be new (access events), and streams the committers wrote before and
//! remember ([`heads`]) — skips steps 1 and 2 and is the insert alone, committing by
//! itself: the `events` statement trigger takes the lock first, and the insert refuses
//! a row that does not link to its stream's head (migration 0013), so a remembered head
//! the log has moved past costs a retry, never a broken chain.
//!
//! One fsync then serves many appends, which is what lets sealed, chained, serialised
//! appends keep up with plain single-row inserts. If the batch fails as a whole (a
//! duplicate event id, say), each append is retried alone so only the culprit fails.
//!
//! Every insert into `events` also notifies the channel [`APPENDED_CHANNEL`] (the same
//! trigger's `pg_notify`, delivered on commit, dropped on rollback, one per
//! transaction), so a relay waiting in an [`AppendedListener`] reads the new events at
//! once instead of at its next poll.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use carelog_crypto::{chain_hash, ChainHash, Dek};
use carelog_domain::{
    EventHeader, EventId, EventType, KeyId, Metadata, NewEvent, Position, SchemaVersion, StreamId,
    StreamVersion, SubjectId,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgSeverity};
use sqlx::{Connection as _, PgConnection, PgPool, Row};
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{AppendError, StoreError};
use crate::keys::{KeyStore, SubjectKey};
use crate::read::{self, StoredEvent};
use crate::vault::{Opened, Vault};

mod heads;
mod recent;

use heads::{Head, KnownHeads};
pub use recent::RecentCommits;

/// The most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 1_000;

/// The largest event: its serialised payload plus its serialised metadata, in bytes.
///
/// The relay publishes each event as one NATS message whose body carries the sealed
/// payload in base64 (4/3 of its size) beside the metadata (`carelog_bus::message`).
/// NATS refuses a message over the server's `max_payload` (1 MiB by default), and the
/// relay never skips an event, so an event too large to publish would hold back every
/// later one. 640 KiB keeps the largest message under 900 KB. Domain inputs are far
/// smaller (a record's data is at most 64 KiB); this bound is the store's own guarantee.
pub const MAX_EVENT_BYTES: usize = 640 * 1024;

/// What the caller believes the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Exactly this version (`StreamVersion::EMPTY` for a new stream); else a conflict.
    Exact(StreamVersion),
    /// Whatever it is (for streams nobody decides on, e.g. operations streams).
    Any,
}

/// Events to append to one stream.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The stream.
    pub stream: StreamId,
    /// The version the command was decided on.
    pub expected: Expected,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// The result of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stream.
    pub stream: StreamId,
    /// The stream's version after the append (the version of its last event).
    pub version: StreamVersion,
    /// The global positions of the events, in order. A client can wait for read models
    /// to reach the last one to read its own writes.
    pub positions: Vec<Position>,
    /// True when every event was already stored: a retried append, answered as before.
    pub replayed: bool,
}

impl Appended {
    /// The position of the last event.
    pub fn last_position(&self) -> Position {
        *self
            .positions
            .last()
            .expect("an append has at least one event")
    }
}

/// How appends are grouped.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// Most events written in one transaction.
    pub max_batch_events: usize,
    /// Committer tasks. One is best: commits are serialised by the log lock anyway, so a
    /// second committer only splits the waiting appends into two smaller batches.
    pub committers: usize,
    /// Appends that may wait for a committer before callers feel back-pressure.
    pub queue: usize,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        Self {
            max_batch_events: 1_024,
            committers: 1,
            queue: 4_096,
        }
    }
}

/// One event ready to be sealed: its plaintext is wiped when dropped.
struct Prepared {
    event_id: EventId,
    event_type: EventType,
    schema_version: SchemaVersion,
    subject: SubjectId,
    key_id: KeyId,
    dek: Dek,
    plaintext: Zeroizing<Vec<u8>>,
    metadata: Metadata,
}

/// An append whose keys are resolved and payloads serialised.
struct Pending {
    stream: StreamId,
    expected: Expected,
    events: Vec<Prepared>,
}

/// A pending append waiting for a committer.
struct Job {
    pending: Pending,
    reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// The event store: appends, reads, opens. Cheap to clone; committers stop when the
/// last clone is dropped, after finishing the batch in hand.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    vault: Vault,
    jobs: mpsc::Sender<Job>,
    /// Events written by this process (see [`EventStore::appended_total`]).
    appended: Arc<AtomicU64>,
    /// Marked changed after each group commit that wrote events ([`EventStore::commits`]).
    committed: Arc<watch::Sender<()>>,
    /// The events of those group commits, once a relay asked for them.
    recent: Arc<RecentCommits>,
    /// Heads the committers wrote, forgotten for streams appended to in a caller's
    /// transaction.
    heads: Arc<KnownHeads>,
}

impl EventStore {
    /// Starts the committer tasks on the current Tokio runtime.
    pub fn start(pool: PgPool, keys: KeyStore, cfg: GroupCommitConfig) -> Self {
        let (jobs, rx) = mpsc::channel(cfg.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let appended = Arc::new(AtomicU64::new(0));
        let committed = Arc::new(watch::Sender::new(()));
        let recent = Arc::new(RecentCommits::default());
        let heads = Arc::new(KnownHeads::default());
        let committers = cfg.committers.max(1);
        // The committers' own connections, beside `pool`: a group commit never queues for a
        // connection behind the requests it is about to answer (under load, readers hold
        // every pooled connection), and it holds the log lock for every other writer.
        for _ in 0..committers {
            tokio::spawn(run_committer(
                OwnConnection::new(
                    (*pool.connect_options()).clone(),
                    pool.options().get_acquire_timeout(),
                    Arc::clone(&recent),
                ),
                Arc::clone(&rx),
                cfg.max_batch_events,
                Arc::clone(&heads),
                Written {
                    events: Arc::clone(&appended),
                    committed: Arc::clone(&committed),
                    recent: Arc::clone(&recent),
                },
            ));
        }
        Self {
            pool,
            vault: Vault::new(keys),
            jobs,
            appended,
            committed,
            recent,
            heads,
        }
    }

    /// The group commits of this process, for a reader of the log in the same process
    /// (the relay): a wake-up after each, so it reads at once without waiting for
    /// PostgreSQL to deliver the commit's `carelog_appended` notification, and the events
    /// they wrote, so it need not read them back ([`RecentCommits`]). From this call on,
    /// the committers keep their events for it. Appends of other processes, and
    /// [`EventStore::append_in_tx`] (committed by its caller), are seen through the
    /// notification and the log only.
    pub fn commits(&self) -> Commits {
        self.recent.enable();
        Commits {
            changed: self.committed.subscribe(),
            events: Arc::clone(&self.recent),
        }
    }

    /// Events this process wrote to the log since it started (for metrics): every event
    /// of a committed group-commit append, and every event [`EventStore::append_in_tx`]
    /// wrote (counted when it returns, before the caller commits). Replayed appends
    /// write nothing and count nothing.
    pub fn appended_total(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The vault (sealing and opening).
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Appends `req` atomically, or nothing of it, in a transaction shared with the
    /// other appends waiting at the same moment (group commit).
    pub async fn append(&self, req: AppendRequest) -> Result<Appended, AppendError> {
        let pending = self.prepare(req, None).await?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { pending, reply })
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Appends `req` inside the caller's transaction, for commands that must change an
    /// inline table (sessions, lockout, ...) atomically with their events. The log lock
    /// is taken here and held until the caller commits, so do the other writes first
    /// and commit promptly after. Nothing is visible to readers before that commit.
    pub async fn append_in_tx(
        &self,
        tx: &mut PgConnection,
        req: AppendRequest,
    ) -> Result<Appended, AppendError> {
        let pending = self.prepare(req, Some(&mut *tx)).await?;
        // Whether or not the caller commits, a committer's head of this stream is stale.
        self.heads.forget([&pending.stream]);
        let mut results = write_pending(tx, &[&pending], true, false).await?.results;
        let result = results.pop().expect("one result per append");
        self.appended.fetch_add(
            events_written(std::slice::from_ref(&result)),
            Ordering::Relaxed,
        );
        result
    }

    /// Checks the size, resolves each subject's key (created on first use; a destroyed
    /// one refuses the append) and serialises each payload. Inside a caller's transaction
    /// (`conn`), the keys are resolved on its connection, never on a second one.
    async fn prepare(
        &self,
        req: AppendRequest,
        mut conn: Option<&mut PgConnection>,
    ) -> Result<Pending, AppendError> {
        let n = req.events.len();
        if n == 0 || n > MAX_EVENTS_PER_APPEND {
            return Err(AppendError::BadSize {
                got: n,
                max: MAX_EVENTS_PER_APPEND,
            });
        }
        // Serialise and measure every event before any key is resolved: a refused append
        // creates no data key.
        let mut serialised = Vec::with_capacity(n);
        for ev in req.events {
            let plaintext = Zeroizing::new(
                serde_json::to_vec(&ev.payload).expect("a JSON value always serialises"),
            );
            let metadata = serde_json::to_vec(&ev.metadata)
                .expect("metadata always serialises")
                .len();
            let bytes = plaintext.len() + metadata;
            if bytes > MAX_EVENT_BYTES {
                return Err(AppendError::TooLarge {
                    bytes,
                    max: MAX_EVENT_BYTES,
                });
            }
            serialised.push((ev, plaintext));
        }
        let mut keys: HashMap<SubjectId, (KeyId, Dek)> = HashMap::new();
        let mut events = Vec::with_capacity(n);
        for (ev, plaintext) in serialised {
            if !keys.contains_key(&ev.subject) {
                let key = match conn.as_deref_mut() {
                    Some(conn) => self.vault.keys().for_write_in(conn, &ev.subject).await?,
                    None => self.vault.keys().for_write(&ev.subject).await?,
                };
                match key {
                    SubjectKey::Live(id, dek) => keys.insert(ev.subject.clone(), (id, dek)),
                    SubjectKey::Destroyed(_) => return Err(AppendError::Erased(ev.subject)),
                };
            }
            let (key_id, dek) = keys[&ev.subject].clone();
            events.push(Prepared {
                event_id: ev.event_id,
                event_type: ev.event_type,
                schema_version: ev.schema_version,
                subject: ev.subject,
                key_id,
                dek,
                plaintext,
                metadata: ev.metadata,
            });
        }
        Ok(Pending {
            stream: req.stream,
            expected: req.expected,
            events,
        })
    }

    /// Up to `limit` events of `stream` after version `after`.
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        read::stream(&self.pool, stream, after, limit).await
    }

    /// Up to `limit` events of the whole log after `after`, gap-safe.
    pub async fn read_all(
        &self,
        after: Position,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        read::all(&self.pool, after, limit).await
    }

    /// Opens a stored event's payload (or says it was erased).
    pub async fn open(&self, event: &StoredEvent) -> Result<Opened, StoreError> {
        self.vault.open(event).await
    }
}

async fn run_committer(
    mut conn: OwnConnection,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_events: usize,
    known: Arc<KnownHeads>,
    written: Written,
) {
    loop {
        let first = {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => job,
                None => return,
            }
        };
        let mut batch = vec![first];
        let keep = written.recent.is_enabled();
        match write_batch(&mut conn, &rx, &mut batch, max_events, &known, keep).await {
            Ok(outcome) => {
                known.remember(outcome.heads);
                // Before the wake-up `answer` sends: the relay it wakes finds them.
                written.recent.add(outcome.committed);
                answer(&written, batch, outcome.results);
            }
            Err(e) => {
                conn.after_error(&e);
                // It may have committed or not; and a wrong head may be why it failed.
                known.forget(batch.iter().map(|j| &j.pending.stream));
                retry_alone(&mut conn, batch, e, &written).await;
            }
        }
    }
}

/// A committer's connection, held for good rather than taken from a pool for each
/// batch: a pool pings a connection when it hands it out and again when it gets it
/// back, two more round trips per group commit, one of them on every append's path.
/// Opened on first use; after a failure that may have broken it, opened anew. Its
/// backend is known to `recent` while it is open ([`RecentCommits::is_committer`]).
struct OwnConnection {
    options: PgConnectOptions,
    /// How long opening it may take (the pool's acquire timeout).
    timeout: std::time::Duration,
    conn: Option<PgConnection>,
    recent: Arc<RecentCommits>,
    /// The process id of the open connection's backend.
    backend: Option<u32>,
}

impl OwnConnection {
    fn new(
        options: PgConnectOptions,
        timeout: std::time::Duration,
        recent: Arc<RecentCommits>,
    ) -> Self {
        Self {
            options,
            timeout,
            conn: None,
            recent,
            backend: None,
        }
    }

    /// The connection, opened if there is none.
    async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let mut conn =
                    tokio::time::timeout(self.timeout, PgConnection::connect_with(&self.options))
                        .await
                        .map_err(|_| sqlx::Error::PoolTimedOut)??;
                let backend: i32 = sqlx::query_scalar(include_str!("../sql/backend_pid.sql"))
                    .fetch_one(&mut conn)
                    .await?;
                let backend = u32::try_from(backend).unwrap_or_default();
                self.recent.committer_connected(backend);
                self.backend = Some(backend);
                conn
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// Forgets the connection after `error`, unless PostgreSQL answered it with an
    /// ordinary error (a constraint, say): then the session is sound, and the failed
    /// transaction was rolled back when it was dropped. A FATAL one (the backend was
    /// terminated, the server shuts down) ends the session, as does any I/O error.
    fn after_error(&mut self, error: &sqlx::Error) {
        let session_sound = error
            .as_database_error()
            .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
            .is_some_and(|e| matches!(e.severity(), PgSeverity::Error));
        if !session_sound {
            self.conn = None;
            if let Some(backend) = self.backend.take() {
                self.recent.committer_gone(backend);
            }
        }
    }
}

/// Writes `batch`, topped up with every append queued by then, in one transaction.
///
/// A batch whose every head is known without reading the log ([`KnownHeads::for_batch`]:
/// new streams, and streams the committers remember) is one statement in a transaction
/// of its own: the insert, which takes the log lock itself before it allocates a
/// position and notifies the relays (the `events` statement trigger, migrations 0010 and
/// 0012), checks that every row links to its stream's head (migration 0013), and
/// commits. One round trip, where a batch that must read heads takes four (begin and
/// lock, heads, insert, commit): under load every round trip waits for a busy CPU, and
/// the commit's length is what the next batch's callers wait for.
///
/// Otherwise the batch is topped up again once the log lock is held — the lock is held
/// through each commit's fsync, so the appends that queued meanwhile share this one.
async fn write_batch(
    own: &mut OwnConnection,
    rx: &Mutex<mpsc::Receiver<Job>>,
    batch: &mut Vec<Job>,
    max_events: usize,
    known: &KnownHeads,
    keep: bool,
) -> Result<Outcome, sqlx::Error> {
    let conn = own.get().await?;
    top_up(rx, batch, max_events).await;
    if let Some(heads) = known.for_batch(&pending_of(batch)) {
        return write_locked(conn, &pending_of(batch), heads, false, keep).await;
    }
    let mut tx = conn.begin_with(BEGIN_AND_LOCK_LOG).await?;
    top_up(rx, batch, max_events).await;
    let pending = pending_of(batch);
    let heads = stream_heads(&mut tx, &pending, false).await?;
    let outcome = write_locked(&mut tx, &pending, heads, false, keep).await?;
    tx.commit().await?;
    Ok(outcome)
}

fn pending_of(batch: &[Job]) -> Vec<&Pending> {
    batch.iter().map(|j| &j.pending).collect()
}

/// Adds the appends queued now to `batch`, up to `max_events` events.
async fn top_up(rx: &Mutex<mpsc::Receiver<Job>>, batch: &mut Vec<Job>, max_events: usize) {
    let mut rx = rx.lock().await;
    let mut size: usize = batch.iter().map(|j| j.pending.events.len()).sum();
    while size < max_events {
        match rx.try_recv() {
            Ok(job) => {
                size += job.pending.events.len();
                batch.push(job);
            }
            Err(_) => break,
        }
    }
}

/// After a batch failed as a whole (e.g. a reused event id that only the unique index
/// caught), retries each append alone, checking its ids first, so that only the culprit
/// fails and it fails with a precise error.
async fn retry_alone(
    own: &mut OwnConnection,
    batch: Vec<Job>,
    cause: sqlx::Error,
    written: &Written,
) {
    tracing::debug!(error = %cause, appends = batch.len(), "group commit failed; retrying appends alone");
    for job in batch {
        let result = async {
            let mut tx = own.get().await?.begin().await?;
            let mut r = write_pending(&mut tx, &[&job.pending], true, false)
                .await?
                .results;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(r.pop().expect("one result per append"))
        }
        .await;
        if let Err(e) = &result {
            own.after_error(e);
        }
        answer(
            written,
            vec![job],
            vec![result.unwrap_or_else(|e| Err(e.into()))],
        );
    }
}

/// Answers each caller of a committed batch; counts the events it wrote.
///
/// Wakes the relay when any append stands, a replayed one included: after a batch whose
/// commit was lost in transit, the retry finds its events stored and replays them, and
/// the relay ignored that commit's notification (it came from a committer).
fn answer(written: &Written, batch: Vec<Job>, results: Vec<Result<Appended, AppendError>>) {
    written
        .events
        .fetch_add(events_written(&results), Ordering::Relaxed);
    if results.iter().any(Result::is_ok) {
        written.committed.send_replace(());
    }
    for (job, result) in batch.into_iter().zip(results) {
        // The caller may have gone away (cancelled request): the append stands anyway.
        let _ = job.reply.send(result);
    }
}

/// What a committer tells the rest of the process about the events it wrote.
struct Written {
    /// Counts them ([`EventStore::appended_total`]).
    events: Arc<AtomicU64>,
    /// Marked changed after each commit that wrote some ([`EventStore::commits`]).
    committed: Arc<watch::Sender<()>>,
    /// Given the events of each commit, when a relay asked for them.
    recent: Arc<RecentCommits>,
}

/// What [`EventStore::commits`] gives a reader of the log in the same process.
#[derive(Debug, Clone)]
pub struct Commits {
    /// Marked changed after each group commit that wrote events.
    pub changed: watch::Receiver<()>,
    /// The events those group commits wrote, by position.
    pub events: Arc<RecentCommits>,
}

/// Events written by these outcomes (replays and failures write none).
fn events_written(results: &[Result<Appended, AppendError>]) -> u64 {
    results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|a| !a.replayed)
        .map(|a| a.positions.len() as u64)
        .sum()
}

/// Rows of one batch, column by column, for `insert_events.sql`.
#[derive(Default)]
struct Columns {
    event_id: Vec<Uuid>,
    stream_id: Vec<String>,
    stream_type: Vec<String>,
    version: Vec<i64>,
    event_type: Vec<String>,
    schema_version: Vec<i16>,
    subject_id: Vec<String>,
    key_id: Vec<Uuid>,
    payload: Vec<Vec<u8>>,
    metadata: Vec<serde_json::Value>,
    recorded_at: Vec<DateTime<Utc>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    /// Each row's header and hashes, kept to hand the committed events over
    /// ([`RecentCommits`]); empty unless asked for.
    kept: Vec<(EventHeader, ChainHash, ChainHash)>,
    keep: bool,
}

impl Columns {
    /// Columns that also keep what [`Columns::into_events`] needs, when `keep`.
    fn keeping(keep: bool) -> Self {
        Self {
            keep,
            ..Self::default()
        }
    }

    /// The stored events of the rows, at the positions the insert gave them (none
    /// unless kept).
    fn into_events(self, positions: &HashMap<Uuid, Position>) -> Vec<StoredEvent> {
        self.kept
            .into_iter()
            .zip(self.payload)
            .map(|((header, prev_hash, hash), payload)| StoredEvent {
                position: positions[&header.event_id.0],
                header,
                payload,
                prev_hash,
                hash,
            })
            .collect()
    }

    fn push(&mut self, header: &EventHeader, payload: Vec<u8>, prev: &ChainHash, hash: &ChainHash) {
        if self.keep {
            self.kept.push((header.clone(), *prev, *hash));
        }
        self.event_id.push(header.event_id.0);
        self.stream_id.push(header.stream_id.to_string());
        self.stream_type
            .push(header.stream_id.stream_type().to_string());
        self.version.push(header.version.0);
        self.event_type.push(header.event_type.to_string());
        self.schema_version.push(header.schema_version.0);
        self.subject_id.push(header.subject.to_string());
        self.key_id.push(header.key_id.0);
        self.payload.push(payload);
        self.metadata
            .push(serde_json::to_value(&header.metadata).expect("metadata serialises"));
        self.recorded_at.push(header.recorded_at);
        self.prev_hash.push(prev.to_vec());
        self.hash.push(hash.to_vec());
    }
}

/// What the batch decided for one append before the insert.
enum Planned {
    Write {
        stream: StreamId,
        version: StreamVersion,
        ids: Vec<Uuid>,
    },
    Done(Result<Appended, AppendError>),
}

/// Opens a transaction and takes the log lock in it, in one round trip (simple query
/// protocol): what every group commit starts with.
const BEGIN_AND_LOCK_LOG: &str = concat!("BEGIN;\n", include_str!("../sql/lock_log.sql"));

/// Takes the log lock for the rest of the transaction (ADR 0002).
async fn lock_log(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../sql/lock_log.sql"))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Writes appends inside an open transaction: log lock, heads of every stream, then
/// [`write_locked`].
async fn write_pending(
    tx: &mut PgConnection,
    batch: &[&Pending],
    check_ids_first: bool,
    keep: bool,
) -> Result<Outcome, sqlx::Error> {
    lock_log(tx).await?;
    let heads = stream_heads(tx, batch, check_ids_first).await?;
    write_locked(tx, batch, heads, check_ids_first, keep).await
}

/// What a written batch answers, and the heads it left.
struct Outcome {
    /// Per append, in batch order: written, replayed, or refused alone (a conflict).
    results: Vec<Result<Appended, AppendError>>,
    /// The head of each stream the batch wrote to, once it is committed.
    heads: Vec<(StreamId, Head)>,
    /// The events written, as stored, when asked to keep them (else empty).
    committed: Vec<StoredEvent>,
}

/// With the log lock held (or, on a connection outside a transaction, taken by the insert
/// itself), on `heads` (a stream absent from it is empty): per-append decision, one
/// insert. Per-append outcomes (conflicts, replays) are in the returned results; an `Err`
/// means the batch as a whole failed (and a transaction must be rolled back: nothing was
/// written).
async fn write_locked(
    tx: &mut PgConnection,
    batch: &[&Pending],
    mut heads: HashMap<StreamId, Head>,
    check_ids_first: bool,
    keep: bool,
) -> Result<Outcome, sqlx::Error> {
    // Truncated to microseconds: what PostgreSQL stores is what was hashed.
    let now =
        DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is in range");

    let mut cols = Columns::keeping(keep);
    let mut plans = Vec::with_capacity(batch.len());
    for job in batch {
        let head = heads.get(&job.stream).copied().unwrap_or(Head::EMPTY);
        let stale = matches!(job.expected, Expected::Exact(v) if v != head.version);
        if stale || check_ids_first {
            if let Some(done) = replay_or_conflict(tx, job, head, stale).await? {
                plans.push(Planned::Done(done));
                continue;
            }
        }
        let new_head = seal_and_chain(job, head, now, &mut cols);
        heads.insert(job.stream, new_head);
        plans.push(Planned::Write {
            stream: job.stream,
            version: new_head.version,
            ids: job.events.iter().map(|e| e.event_id.0).collect(),
        });
    }

    let positions = insert(tx, &cols).await?;
    let committed = cols.into_events(&positions);
    let mut written: Vec<StreamId> = plans
        .iter()
        .filter_map(|plan| match plan {
            Planned::Write { stream, .. } => Some(*stream),
            Planned::Done(_) => None,
        })
        .collect();
    written.sort_unstable();
    written.dedup();
    let heads = written.into_iter().map(|s| (s, heads[&s])).collect();
    let results = plans
        .into_iter()
        .map(|plan| match plan {
            Planned::Done(result) => result,
            Planned::Write {
                stream,
                version,
                ids,
            } => Ok(Appended {
                stream,
                version,
                positions: ids.iter().map(|id| positions[id]).collect(),
                replayed: false,
            }),
        })
        .collect();
    Ok(Outcome {
        results,
        heads,
        committed,
    })
}

/// The heads of the batch's streams. A stream that every append of the batch expects to
/// be new (`Expected::Exact(EMPTY)`, as access events do) is not looked up unless `all`:
/// it starts at the genesis head. Should it exist after all, its first insert breaks the
/// `(stream_id, version)` key, the batch fails as a whole, and each append is retried
/// alone with `all` set, where the culprit gets its conflict (or replay).
async fn stream_heads(
    tx: &mut PgConnection,
    batch: &[&Pending],
    all: bool,
) -> Result<HashMap<StreamId, Head>, sqlx::Error> {
    let names: Vec<String> = batch
        .iter()
        .filter(|j| all || j.expected != Expected::Exact(StreamVersion::EMPTY))
        .map(|j| j.stream)
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|s| s.to_string())
        .collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(include_str!("../sql/stream_heads.sql"))
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
    let mut heads = HashMap::with_capacity(rows.len());
    for row in rows {
        let stream: String = row.try_get("stream_id")?;
        let hash: Vec<u8> = row.try_get("hash")?;
        let (Ok(stream), Ok(hash)) = (
            stream.parse::<StreamId>(),
            ChainHash::try_from(hash.as_slice()),
        ) else {
            return Err(sqlx::Error::Protocol(
                "corrupt stream head in the event table".into(),
            ));
        };
        let version = StreamVersion(row.try_get("version")?);
        heads.insert(stream, Head { version, hash });
    }
    Ok(heads)
}

/// For an append that is stale (or must be checked before writing): if all its events
/// are already stored in this stream, it is a retry — answer as the first time. Else a
/// stale append is a conflict, and ids stored elsewhere are a duplicate. `None`: write it.
async fn replay_or_conflict(
    tx: &mut PgConnection,
    job: &Pending,
    head: Head,
    stale: bool,
) -> Result<Option<Result<Appended, AppendError>>, sqlx::Error> {
    let ids: Vec<Uuid> = job.events.iter().map(|e| e.event_id.0).collect();
    let rows = sqlx::query(include_str!("../sql/find_events_by_id.sql"))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    let stream = job.stream.to_string();
    let mut found: HashMap<Uuid, (i64, i64)> = HashMap::new();
    for row in &rows {
        if row.try_get::<String, _>("stream_id")? != stream {
            return Ok(Some(Err(AppendError::DuplicateEventId)));
        }
        found.insert(
            row.try_get("event_id")?,
            (row.try_get("version")?, row.try_get("position")?),
        );
    }
    if found.len() == ids.len() {
        let mut stored: Vec<(i64, i64)> = ids.iter().map(|id| found[id]).collect();
        stored.sort_unstable();
        return Ok(Some(Ok(Appended {
            stream: job.stream,
            version: StreamVersion(stored.last().expect("non-empty").0),
            positions: stored.iter().map(|&(_, p)| Position(p)).collect(),
            replayed: true,
        })));
    }
    if !found.is_empty() {
        return Ok(Some(Err(AppendError::DuplicateEventId)));
    }
    if stale {
        let Expected::Exact(expected) = job.expected else {
            unreachable!("only exact expectations are stale")
        };
        return Ok(Some(Err(AppendError::Conflict {
            stream: job.stream,
            expected,
            actual: head.version,
        })));
    }
    Ok(None)
}

/// Seals the job's events on top of `head` into `cols`; returns the new head.
fn seal_and_chain(job: &Pending, mut head: Head, now: DateTime<Utc>, cols: &mut Columns) -> Head {
    for ev in &job.events {
        let header = EventHeader {
            event_id: ev.event_id,
            stream_id: job.stream,
            version: head.version.next(),
            event_type: ev.event_type.clone(),
            schema_version: ev.schema_version,
            subject: ev.subject.clone(),
            key_id: ev.key_id,
            metadata: ev.metadata.clone(),
            recorded_at: now,
        };
        let sealed = Vault::seal(&ev.dek, &header, &ev.plaintext);
        let hash = chain_hash(&head.hash, &header, &sealed);
        cols.push(&header, sealed, &head.hash, &hash);
        head = Head {
            version: header.version,
            hash,
        };
    }
    head
}

async fn insert(
    tx: &mut PgConnection,
    c: &Columns,
) -> Result<HashMap<Uuid, Position>, sqlx::Error> {
    if c.event_id.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(include_str!("../sql/insert_events.sql"))
        .bind(&c.event_id)
        .bind(&c.stream_id)
        .bind(&c.stream_type)
        .bind(&c.version)
        .bind(&c.event_type)
        .bind(&c.schema_version)
        .bind(&c.subject_id)
        .bind(&c.key_id)
        .bind(&c.payload)
        .bind(&c.metadata)
        .bind(&c.recorded_at)
        .bind(&c.prev_hash)
        .bind(&c.hash)
        .fetch_all(&mut *tx)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("event_id")?, Position(r.try_get("position")?))))
        .collect()
}

/// The PostgreSQL channel every appending transaction notifies on commit (per database).
pub const APPENDED_CHANNEL: &str = "carelog_appended";

/// A dedicated session listening on [`APPENDED_CHANNEL`]: wakes a reader of the log
/// (the relay) as soon as a transaction that appended commits. A wake-up is a hint, not
/// a delivery guarantee: notifications sent while the session was down are lost, so a
/// reader must still poll now and then.
pub struct AppendedListener {
    inner: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for AppendedListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendedListener").finish_non_exhaustive()
    }
}

impl AppendedListener {
    /// Opens a connection of its own (with `pool`'s settings, outside the pool, so it
    /// never holds a pooled connection) and listens.
    pub async fn connect(pool: &PgPool) -> Result<Self, StoreError> {
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with((*pool.connect_options()).clone())
            .await?;
        let mut inner = sqlx::postgres::PgListener::connect_with(&own).await?;
        inner.ignore_pool_close_event(true);
        inner.listen(APPENDED_CHANNEL).await?;
        Ok(Self { inner })
    }

    /// Waits for the next wake-up. An error: PostgreSQL cannot be reached.
    ///
    /// Not cancel-safe: run it in a task of its own and forward the wake-ups.
    pub async fn wait(&mut self) -> Result<Wake, StoreError> {
        Ok(match self.inner.try_recv().await? {
            Some(n) => Wake::Appended {
                backend: n.process_id(),
            },
            None => Wake::Reconnected,
        })
    }
}

/// What woke an [`AppendedListener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A transaction that appended committed, on this PostgreSQL backend (process id).
    Appended {
        /// The process id of the backend that committed it.
        backend: u32,
    },
    /// The connection was lost and re-established: notifications may have been missed
    /// in between, read the log anyway.
    Reconnected,
}
