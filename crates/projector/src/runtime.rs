//! The runtime of one projection.
//!
//! A [`Projector`] owns the durable pull consumer `<prefix>proj_<name>` on
//! `<prefix>EVENTS` (cumulative acknowledgements, `AckPolicy::All`; delivers everything
//! from the start; created idempotently) and loops:
//!
//! 1. takes the messages that are ready (up to [`ProjectorConfig::batch`]) and decodes
//!    each ([`carelog_bus::decode`]);
//! 2. acknowledges, without applying, every event at or below the checkpoint (a
//!    redelivery, or a duplicate the relay re-published outside the duplicate window),
//!    once the events before it in the batch are committed (see "Acknowledgements");
//! 3. applies the others in ONE PostgreSQL transaction that also advances the
//!    checkpoint — the checkpoint read, the dead-letter check of the batch's streams and
//!    the checkpoint's move to the batch's last event in one statement, the payloads
//!    opened together (one key lookup), the events handed to
//!    [`Projection::apply_batch`] at once — commits; THEN acknowledges them. A crash before the commit applies
//!    nothing (NATS redelivers); a crash after it re-delivers events that step 2 skips:
//!    never skipped, never applied twice (DESIGN.md invariant 7);
//! 4. when an event fails: rolls back (when the batch failed as a whole without naming
//!    the event, as one multi-row statement does, applies it again one event at a time to
//!    find it), commits and acknowledges the events before it,
//!    retries the failing one alone with exponential backoff and jitter, up to
//!    [`ProjectorConfig::max_attempts`] attempts in all; then records it as a `failed`
//!    dead letter in the transaction that moves the checkpoint past it, acknowledges it
//!    and goes on (DESIGN.md invariant 8);
//! 5. an event of a stream that has dead letters is not applied: it is parked as a
//!    `waiting` dead letter (in the batch's transaction), so no stream is ever applied
//!    out of order while the other streams flow. [`crate::dlq`] releases them.
//!
//! Order: events are applied in stream-sequence order. The runtime tracks the last
//! stream sequence it handled (starting at the consumer's acknowledgement floor); a
//! message past a gap (an earlier one was delivered to a connection that died, and is
//! redelivered only after `ack_wait`) is nak'ed with a delay instead of being applied
//! before it.
//!
//! Acknowledgements are cumulative (`AckPolicy::All`): acknowledging stream sequence `S`
//! acknowledges every message up to `S`, so a batch costs NATS one acknowledgement, not
//! one per event. That is sound because the runtime handles stream sequences contiguously
//! (see "Order") and acknowledges a message only once every message before it has been
//! committed or skipped; this is why skipped and terminated messages of a batch are
//! acknowledged after the batch's commit, never before (a duplicate the relay re-published
//! late sits after events not yet applied). A consumer created by an older carelog with
//! explicit acknowledgements is recreated after its acknowledgement floor.
//!
//! Failures of PostgreSQL or NATS themselves (not of the projection, including an
//! [`ApplyError::is_transient`] one) never produce dead letters: the runtime logs them,
//! waits (backoff), and starts over from the checkpoint and the consumer's
//! acknowledgement floor. A session that starts while messages delivered to an earlier
//! one are still unacknowledged (after a crash or such an error) recreates the consumer
//! just after its floor, so they come again at once instead of after `ack_wait`.
//!
//! One projector per projection and prefix is active at a time (a durable consumer
//! shared by two would split the stream): like the relay, each projector holds a
//! dedicated PostgreSQL session ([`carelog_store::projector::ProjectorSession`]) and
//! tries the session advisory lock `hashtext('carelog.projector.' || prefix || '.' ||
//! name)`; the one that gets it is active, the others stand by and try again every
//! [`ProjectorConfig::standby_retry`]. A projector that dies or loses its session frees
//! the lock and a standby takes over from the checkpoint. Batches and DLQ operations are
//! moreover serialised by a transaction advisory lock on the projection.
//!
//! Dead-letter notices: after the transaction that records dead letters commits (a
//! `failed` one in step 4, `waiting` ones in step 5), the projector publishes a notice of
//! each on `<prefix>DLQ`, subject `<prefix>dlq.<projection>`, `Nats-Msg-Id`
//! `<entry id>.<status>.<attempts>` (body and contract: [`carelog_bus::dead_letter`];
//! no PHI, never a payload). The notice is built from the committed `dlq_entries` row
//! (read back after the commit). It is best effort: PostgreSQL is the record; a NATS
//! failure or timeout is logged (ids only) and the projector goes on, so a consumer of the
//! DLQ stream may miss a notice while NATS is down, and may see one twice outside the
//! duplicate window. Retries and discards ([`crate::dlq`]) publish `retried`,
//! `discarded`, `released` and `failed` notices when their caller gives them a
//! publisher.
//!
//! Stopping: [`Projector::run`]'s `shutdown` is a request, not a cancellation: the
//! projector finishes the batch in hand (its commit, checkpoint and acknowledgements),
//! then releases its lock and returns.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use backon::{BackoffBuilder, ExponentialBuilder};
use carelog_bus::dead_letter::{DeadLetterNotice, NoticePublisher};
use carelog_bus::BusConfig;
use carelog_domain::{EventId, EventType, Position};
use carelog_store::projector::{self as pstore, DlqStatus, NewDlqEntry, ProjectorSession};
use carelog_store::{EventStore, Opened, StoreError, StoredEvent};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::{Connection as _, PgConnection, PgPool};
use tokio::sync::watch;

use crate::{valid_name, ApplyError, Projection};

/// How a projector paces itself.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Most events applied in one transaction.
    pub batch: usize,
    /// Attempts at an event before it goes to the DLQ (the first one included).
    pub max_attempts: u32,
    /// First retry delay (then doubled, with jitter).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// The consumer's `ack_wait`: how long NATS waits for an acknowledgement before it
    /// redelivers (only set when the consumer is created).
    pub ack_wait: Duration,
    /// How long a message delivered past a gap is held back before NATS offers it again.
    pub gap_delay: Duration,
    /// Pause between attempts of a standby projector to become active.
    pub standby_retry: Duration,
    /// How often the active projector checks that its lock session is alive.
    pub lock_check: Duration,
    /// FOR TESTS ONLY: stop [`Projector::run`] right after the first commit, before the
    /// acknowledgements, as a crash there would.
    pub fail_after_commit: bool,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            max_attempts: 5,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            ack_wait: Duration::from_secs(30),
            gap_delay: Duration::from_millis(500),
            standby_retry: Duration::from_secs(1),
            lock_check: Duration::from_secs(5),
            fail_after_commit: false,
        }
    }
}

/// Projector batches pulled from JetStream ahead at once.
const PULL_BATCHES: usize = 4;

/// A projector that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The projection's name is not `[a-z0-9_]{1,64}`.
    #[error("projection name must be 1 to 64 lowercase letters, digits or `_`")]
    BadName,
    /// The bus prefix or replicas are refused.
    #[error(transparent)]
    Bus(#[from] carelog_bus::ConfigError),
}

/// Why a session of the loop ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("the message stream ended")]
    StreamEnded,
    #[error("{0}")]
    Transient(ApplyError),
    /// The test hook [`ProjectorConfig::fail_after_commit`].
    #[error("stopped after commit (test hook)")]
    CrashHook,
}

impl From<sqlx::Error> for SessionEnd {
    fn from(e: sqlx::Error) -> Self {
        SessionEnd::Store(StoreError::Database(e))
    }
}

/// One message ready to be applied.
struct Item {
    event: StoredEvent,
    msg: jetstream::Message,
}

enum Outcome {
    /// Committed; the events parked as `waiting` dead letters in the transaction.
    Applied { parked: Vec<(EventId, EventType)> },
    /// Rolled back: the event at `index` (when known) failed to apply.
    Failed {
        index: Option<usize>,
        error: ApplyError,
    },
}

/// An [`Outcome`] whose failing event is known ([`Projector::try_locate`]).
enum Located {
    /// Committed; the events parked as `waiting` dead letters in the transaction.
    Applied { parked: Vec<(EventId, EventType)> },
    /// Rolled back: the event at `index` failed to apply.
    Failed { index: usize, error: ApplyError },
}

/// How [`Projector::try_apply`] applies a batch.
#[derive(Debug, Clone, Copy)]
enum Apply {
    /// Opened together, applied by [`Projection::apply_batch`].
    Batch,
    /// Opened and applied one event at a time (names the event that fails).
    Each,
}

/// The runtime of one projection; see the module documentation.
pub struct Projector {
    pool: PgPool,
    store: EventStore,
    js: jetstream::Context,
    notices: NoticePublisher,
    bus: BusConfig,
    projection: Box<dyn Projection>,
    cfg: ProjectorConfig,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("projection", &self.projection.name())
            .field("bus", &self.bus)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Projector {
    /// A projector of `projection` reading `<prefix>EVENTS` through `client`.
    pub fn new(
        pool: PgPool,
        store: EventStore,
        client: async_nats::Client,
        bus: BusConfig,
        projection: Box<dyn Projection>,
        cfg: ProjectorConfig,
    ) -> Result<Self, ProjectorError> {
        bus.validate()?;
        if !valid_name(projection.name()) {
            return Err(ProjectorError::BadName);
        }
        Ok(Self {
            pool,
            store,
            notices: NoticePublisher::new(client.clone(), &bus),
            js: jetstream::new(client),
            bus,
            projection,
            cfg,
        })
    }

    /// The durable consumer's name, `<prefix>proj_<name>`.
    pub fn consumer_name(&self) -> String {
        format!("{}proj_{}", self.bus.prefix, self.projection.name())
    }

    /// Runs until `shutdown` completes (or, in tests, the crash hook fires): stands by,
    /// or projects while it holds the projection's lock. On `shutdown` it finishes the
    /// batch in hand, releases the lock and returns. Never returns early otherwise: every
    /// failure of PostgreSQL or NATS is logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let name = self.projection.name().to_owned();
        let (stop_tx, stop_rx) = watch::channel(false);
        let work = self.run_forever(Stop(stop_rx));
        tokio::pin!(work);
        tokio::select! {
            () = shutdown => {
                let _ = stop_tx.send(true);
                work.await;
            }
            () = &mut work => {}
        }
        tracing::info!(projection = %name, "projector stopped");
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.cfg.min_backoff)
            .with_max_delay(self.cfg.max_backoff)
            .with_jitter()
            .without_max_times()
            .build()
    }

    async fn run_forever(&self, mut stop: Stop) {
        let mut backoff = self.backoff();
        loop {
            let Some(mut lock) = self.become_active(&mut stop).await else {
                return;
            };
            tracing::info!(projection = %self.projection.name(), prefix = %self.bus.prefix, "projector active");
            let result = self.session(&mut lock, &mut stop).await;
            lock.close().await;
            match result {
                Ok(()) | Err(SessionEnd::CrashHook) => return,
                Err(e) => {
                    tracing::warn!(projection = %self.projection.name(), error = %e, "projector interrupted; starting over from its checkpoint");
                }
            }
            if stop
                .sleep(backoff.next().unwrap_or(self.cfg.max_backoff))
                .await
            {
                return;
            }
        }
    }

    /// Waits until this projector's session holds the projection's lock; `None` when
    /// asked to stop first.
    async fn become_active(&self, stop: &mut Stop) -> Option<ProjectorSession> {
        let name = self.projection.name();
        let mut session: Option<ProjectorSession> = None;
        let mut said_standby = false;
        loop {
            if stop.is_stopped() {
                if let Some(s) = session {
                    s.close().await;
                }
                return None;
            }
            if session.is_none() {
                match ProjectorSession::open(&self.pool, &self.bus.prefix, name).await {
                    Ok(s) => session = Some(s),
                    Err(e) => {
                        tracing::warn!(projection = %name, error = %e, "projector cannot reach PostgreSQL; retrying");
                    }
                }
            }
            if let Some(s) = session.as_mut() {
                match s.try_lock().await {
                    Ok(true) => return session,
                    Ok(false) if !said_standby => {
                        said_standby = true;
                        tracing::info!(projection = %name, prefix = %self.bus.prefix, "another projector is active for this projection; standing by");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(projection = %name, error = %e, "projector lost its database session; reconnecting");
                        session = None;
                    }
                }
            }
            if stop.sleep(self.cfg.standby_retry).await {
                if let Some(s) = session {
                    s.close().await;
                }
                return None;
            }
        }
    }

    /// The durable consumer, and its acknowledgement floor (stream sequence; 0 when
    /// nothing was ever acknowledged).
    ///
    /// Messages delivered to an earlier session and never acknowledged (a crash, or a
    /// session ended by an error) would only be redelivered after `ack_wait` (30 s by
    /// default), and the session nak's everything past that gap meanwhile: the projection
    /// would stand still. This projector holds the projection's lock, so no one else
    /// consumes: when the consumer has such pending deliveries, it is deleted and created
    /// again from the message after its floor, which delivers them at once. Messages
    /// between the floor and the checkpoint are acknowledged without being applied, as
    /// always. A consumer with explicit acknowledgements (made by an older carelog) is
    /// recreated the same way, with cumulative ones.
    async fn consumer(
        &self,
    ) -> Result<(consumer::Consumer<consumer::pull::Config>, u64), SessionEnd> {
        let nats = |e: &dyn std::fmt::Display| SessionEnd::Nats(e.to_string());
        carelog_bus::ensure_streams(&self.js, &self.bus)
            .await
            .map_err(|e| nats(&e))?;
        let stream = self
            .js
            .get_stream(self.bus.events_stream())
            .await
            .map_err(|e| nats(&e))?;
        let name = self.consumer_name();
        let config = |deliver_policy| consumer::pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("carelog projection {}", self.projection.name())),
            ack_policy: consumer::AckPolicy::All,
            deliver_policy,
            ack_wait: self.cfg.ack_wait,
            max_deliver: -1,
            // Room for the pulled-ahead batches, unacknowledged until applied.
            max_ack_pending: i64::try_from(self.cfg.batch.max(1) * PULL_BATCHES * 2)
                .unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut existing = stream
            .get_or_create_consumer(&name, config(consumer::DeliverPolicy::All))
            .await
            .map_err(|e| nats(&e))?;
        let info = existing.info().await.map_err(|e| nats(&e))?;
        let floor = info.ack_floor.stream_sequence;
        let cumulative = info.config.ack_policy == consumer::AckPolicy::All;
        if info.num_ack_pending == 0 && cumulative {
            return Ok((existing, floor));
        }
        tracing::info!(
            projection = %self.projection.name(),
            pending = info.num_ack_pending,
            floor,
            cumulative,
            "unacknowledged deliveries of an earlier session, or explicit acknowledgements; recreating the consumer after its floor"
        );
        stream.delete_consumer(&name).await.map_err(|e| nats(&e))?;
        let deliver = if floor == 0 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: floor + 1,
            }
        };
        let fresh = stream
            .create_consumer(config(deliver))
            .await
            .map_err(|e| nats(&e))?;
        Ok((fresh, floor))
    }

    /// One session: from the checkpoint and the consumer's acknowledgement floor until
    /// an error, or `Ok` once asked to stop (between batches).
    async fn session(
        &self,
        lock: &mut ProjectorSession,
        stop: &mut Stop,
    ) -> Result<(), SessionEnd> {
        let name = self.projection.name();
        let (consumer, floor) = self.consumer().await?;
        // The last stream sequence handled: the acknowledgement floor, or just before the
        // stream's first message for a new consumer.
        let mut last_seq = if floor > 0 {
            floor
        } else {
            let mut stream = self
                .js
                .get_stream(self.bus.events_stream())
                .await
                .map_err(|e| SessionEnd::Nats(e.to_string()))?;
            let state = &stream
                .info()
                .await
                .map_err(|e| SessionEnd::Nats(e.to_string()))?
                .state;
            state.first_sequence.saturating_sub(1)
        };
        let mut checkpoint = pstore::checkpoint(&self.pool, name).await?;
        // Pull in batches well above a projector batch, so that while one batch is being
        // applied the next is already buffered: the chunks below then fill up to
        // `cfg.batch` under load instead of to what one small pull delivered.
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.cfg.batch.max(1) * PULL_BATCHES)
            .messages()
            .await
            .map_err(|e| SessionEnd::Nats(e.to_string()))?;
        let mut chunks = messages.ready_chunks(self.cfg.batch.max(1));
        tracing::info!(projection = %name, checkpoint = checkpoint.0, "projector running");
        let mut lock_check = tokio::time::interval(self.cfg.lock_check);
        lock_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let chunk = tokio::select! {
                biased;
                () = stop.stopped() => return Ok(()),
                _ = lock_check.tick() => {
                    lock.ping().await?;
                    continue;
                }
                // Unconstrained: tokio's cooperative budget (128 polls) would otherwise end
                // every chunk at 128 messages however many are buffered.
                chunk = tokio::task::unconstrained(chunks.next()) => match chunk {
                    Some(chunk) => chunk,
                    None => break,
                },
            };
            let mut items = Vec::with_capacity(chunk.len());
            // Acknowledged (or terminated) only after the batch's commit: a cumulative
            // acknowledgement covers the messages before it, which may be items.
            let mut after_commit = Vec::new();
            let mut held_back = false;
            for msg in chunk {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(projection = %name, error = %e, "projector cannot receive from JetStream; waiting");
                        continue;
                    }
                };
                let seq = match msg.info() {
                    Ok(i) => i.stream_sequence,
                    Err(_) => continue, // not a JetStream message
                };
                if held_back || seq > last_seq + 1 {
                    // An earlier message is missing: keep this one for after it.
                    if !held_back {
                        tracing::debug!(projection = %name, stream_sequence = seq, last_seq, "a message past a gap; holding the rest of the batch back");
                    }
                    held_back = true;
                    let _ = msg.ack_with(AckKind::Nak(Some(self.cfg.gap_delay))).await;
                    continue;
                }
                if seq <= last_seq {
                    // Handled already (its acknowledgement was lost).
                    after_commit.push((msg, AckKind::Ack));
                    continue;
                }
                last_seq = seq;
                let event = match carelog_bus::decode(&msg.payload) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(projection = %name, stream_sequence = seq, error = %e, "not a carelog event on the events stream; terminated");
                        after_commit.push((msg, AckKind::Term));
                        continue;
                    }
                };
                if event.position <= checkpoint {
                    after_commit.push((msg, AckKind::Ack));
                    continue;
                }
                items.push(Item { event, msg });
            }
            if let Some(last) = items.last() {
                let to = last.event.position;
                let began = std::time::Instant::now();
                self.process(lock.connection(), &items).await?;
                tracing::debug!(projection = %name, events = items.len(), ms = began.elapsed().as_secs_f64() * 1e3, "batch");
                checkpoint = checkpoint.max(to);
            }
            for (msg, kind) in after_commit {
                let _ = msg.ack_with(kind).await;
            }
        }
        Err(SessionEnd::StreamEnded)
    }

    /// Applies `items` (see the module documentation, steps 3 to 5).
    async fn process(&self, conn: &mut PgConnection, items: &[Item]) -> Result<(), SessionEnd> {
        let mut start = 0;
        let mut attempts = 0u32;
        let mut first_failed_at: Option<DateTime<Utc>> = None;
        let mut backoff = self.backoff();
        while start < items.len() {
            let end = if attempts > 0 { start + 1 } else { items.len() };
            match self.try_locate(conn, &items[start..end]).await? {
                Located::Applied { parked } => {
                    ack(&items[start..end]).await;
                    self.notify(&parked).await;
                    start = end;
                    attempts = 0;
                    first_failed_at = None;
                    backoff = self.backoff();
                }
                Located::Failed { index: 0, error } => {
                    attempts += 1;
                    let first = *first_failed_at.get_or_insert_with(Utc::now);
                    let item = &items[start];
                    if attempts >= self.cfg.max_attempts.max(1) {
                        self.dead_letter(conn, item, &error, attempts, first)
                            .await?;
                        ack(std::slice::from_ref(item)).await;
                        start += 1;
                        attempts = 0;
                        first_failed_at = None;
                        backoff = self.backoff();
                    } else {
                        tracing::warn!(
                            projection = %self.projection.name(),
                            position = item.event.position.0,
                            attempts,
                            error = %error,
                            "projection failed to apply an event; retrying"
                        );
                        tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff)).await;
                    }
                }
                Located::Failed { index, error } => {
                    // Commit the events before the failing one, then retry it alone.
                    if let Located::Applied { parked } =
                        self.try_locate(conn, &items[start..start + index]).await?
                    {
                        ack(&items[start..start + index]).await;
                        self.notify(&parked).await;
                        start += index;
                        attempts = 1;
                        first_failed_at = Some(Utc::now());
                        tracing::warn!(
                            projection = %self.projection.name(),
                            position = items[start].event.position.0,
                            error = %error,
                            "projection failed to apply an event; retrying"
                        );
                        tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff)).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// [`Self::try_apply`] as a batch; when that fails without naming the event, once
    /// more one event at a time, which names it.
    async fn try_locate(
        &self,
        conn: &mut PgConnection,
        items: &[Item],
    ) -> Result<Located, SessionEnd> {
        let outcome = match self.try_apply(conn, items, Apply::Batch).await? {
            Outcome::Failed { index: None, .. } => self.try_apply(conn, items, Apply::Each).await?,
            outcome => outcome,
        };
        Ok(match outcome {
            Outcome::Applied { parked } => Located::Applied { parked },
            // `Apply::Each` always names the event; were it not to, the first one is
            // retried alone, which names it or applies it.
            Outcome::Failed { index, error } => Located::Failed {
                index: index.unwrap_or(0),
                error,
            },
        })
    }

    /// One transaction: applies (or parks) `items` and advances the checkpoint to the
    /// last; on the first failure of the projection, rolls back and says which event
    /// failed when it is known.
    ///
    /// [`Apply::Batch`] opens the payloads together (one key lookup) and hands them to
    /// [`Projection::apply_batch`]; a failure there may not name its event (one
    /// multi-row statement), so [`Projector::process`] then tries again with
    /// [`Apply::Each`], which applies the events one at a time and names it.
    async fn try_apply(
        &self,
        conn: &mut PgConnection,
        items: &[Item],
        mode: Apply,
    ) -> Result<Outcome, SessionEnd> {
        let name = self.projection.name();
        let mut tx = conn.begin().await?;
        pstore::lock(&mut tx, name).await?;
        let mut streams: Vec<String> = items
            .iter()
            .map(|item| item.event.header.stream_id.to_string())
            .collect();
        streams.sort_unstable();
        streams.dedup();
        // Re-read under the lock: a rebuild may have swapped in a table that already
        // holds these events (and moved the checkpoint past them). The same statement
        // moves the checkpoint to the batch's last event, in this transaction.
        let last = items.last().map_or(Position(0), |i| i.event.position);
        let (stored, blocked) = pstore::batch_state(&mut tx, name, &streams, last).await?;
        let fresh: Vec<(usize, &StoredEvent)> = items
            .iter()
            .enumerate()
            .map(|(index, item)| (index, &item.event))
            .filter(|(_, event)| event.position > stored)
            .collect();
        let mut parked = Vec::new();
        let mut to_apply = Vec::with_capacity(fresh.len());
        for (index, event) in fresh {
            if blocked.contains(&event.header.stream_id.to_string()) {
                pstore::dlq_insert(
                    &mut tx,
                    NewDlqEntry {
                        projection: name,
                        event,
                        status: DlqStatus::Waiting,
                        error: None,
                        attempts: 0,
                        first_failed_at: None,
                    },
                )
                .await?;
                parked.push((event.header.event_id, event.header.event_type.clone()));
            } else {
                to_apply.push((index, event));
            }
        }
        let failed = match mode {
            Apply::Batch => self.apply_batch(&mut tx, &to_apply).await?,
            Apply::Each => self.apply_each(&mut tx, &to_apply).await?,
        };
        if let Some((index, error)) = failed {
            tx.rollback().await?;
            if error.is_transient() {
                return Err(SessionEnd::Transient(error));
            }
            return Ok(Outcome::Failed { index, error });
        }
        tx.commit().await?;
        if self.cfg.fail_after_commit {
            return Err(SessionEnd::CrashHook);
        }
        Ok(Outcome::Applied { parked })
    }

    /// [`Apply::Batch`]: the failure, if any, with the index in the batch of its event
    /// when known.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[(usize, &StoredEvent)],
    ) -> Result<Option<(Option<usize>, ApplyError)>, SessionEnd> {
        let refs: Vec<&StoredEvent> = events.iter().map(|(_, e)| *e).collect();
        let filter = self.projection.payload_filter();
        let opened = match crate::open_filtered(self.store.vault(), &refs, filter).await {
            Ok(opened) => opened,
            Err(StoreError::Database(e)) => return Err(SessionEnd::Store(e.into())),
            Err(e) => return Ok(Some((None, ApplyError::from(e)))),
        };
        let pairs: Vec<(&StoredEvent, &Opened)> = refs.into_iter().zip(opened.iter()).collect();
        Ok(self
            .projection
            .apply_batch(tx, &pairs)
            .await
            .err()
            .map(|e| (e.index.map(|i| events[i].0), e.error)))
    }

    /// [`Apply::Each`]: the failure, if any, with the index in the batch of its event.
    async fn apply_each(
        &self,
        tx: &mut PgConnection,
        events: &[(usize, &StoredEvent)],
    ) -> Result<Option<(Option<usize>, ApplyError)>, SessionEnd> {
        let filter = self.projection.payload_filter();
        for (index, event) in events {
            let applied = match crate::open_one(self.store.vault(), event, filter).await {
                Ok(opened) => self.projection.apply(&mut *tx, event, &opened).await,
                Err(StoreError::Database(e)) => return Err(SessionEnd::Store(e.into())),
                Err(e) => Err(ApplyError::from(e)),
            };
            if let Err(error) = applied {
                return Ok(Some((Some(*index), error)));
            }
        }
        Ok(None)
    }

    /// Records `item` as a failed dead letter and moves the checkpoint past it.
    async fn dead_letter(
        &self,
        conn: &mut PgConnection,
        item: &Item,
        error: &ApplyError,
        attempts: u32,
        first_failed_at: DateTime<Utc>,
    ) -> Result<(), SessionEnd> {
        let name = self.projection.name();
        let event = &item.event;
        tracing::error!(
            projection = %name,
            position = event.position.0,
            event_id = %event.header.event_id.0,
            attempts,
            error = %error,
            "projection cannot apply an event; sent to the DLQ (its stream waits behind it)"
        );
        let mut tx = conn.begin().await?;
        pstore::lock(&mut tx, name).await?;
        pstore::dlq_insert(
            &mut tx,
            NewDlqEntry {
                projection: name,
                event,
                status: DlqStatus::Failed,
                error: Some(error.message()),
                attempts: i32::try_from(attempts).unwrap_or(i32::MAX),
                first_failed_at: Some(first_failed_at),
            },
        )
        .await?;
        pstore::save_checkpoint(&mut tx, name, event.position).await?;
        tx.commit().await?;
        self.notify(&[(event.header.event_id, event.header.event_type.clone())])
            .await;
        Ok(())
    }

    /// Publishes the notices of the dead letters just committed for `events` (see the
    /// module documentation): best effort, never fails.
    async fn notify(&self, events: &[(EventId, EventType)]) {
        if events.is_empty() {
            return;
        }
        let name = self.projection.name();
        // The rows as committed (their ids, times and attempts).
        let entries = match pstore::dlq_list(&self.pool, Some(name)).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(projection = %name, error = %e, "cannot read back dead letters; their notices are not published");
                return;
            }
        };
        let types: std::collections::HashMap<EventId, &EventType> =
            events.iter().map(|(id, ty)| (*id, ty)).collect();
        let notices: Vec<DeadLetterNotice> = entries
            .iter()
            .filter_map(|e| {
                let ty = types.get(&e.event_id)?;
                Some(DeadLetterNotice::of_entry(e, (*ty).clone()))
            })
            .collect();
        self.notices.publish(&notices).await;
    }
}

/// The request to stop, as the projector's loops see it.
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop is requested (never, if its sender is gone without one).
    async fn stopped(&mut self) {
        while !self.is_stopped() {
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sleeps for `d`, or less when a stop is requested; true when it was.
    async fn sleep(&mut self, d: Duration) -> bool {
        tokio::select! {
            () = self.stopped() => true,
            () = tokio::time::sleep(d) => self.is_stopped(),
        }
    }
}

/// Acknowledges `items` (after their commit) and every message before them: one
/// cumulative acknowledgement of the last. A lost acknowledgement only means a
/// redelivery, which the checkpoint skips.
async fn ack(items: &[Item]) {
    if let Some(last) = items.last() {
        if let Err(e) = last.msg.ack().await {
            tracing::debug!(error = %e, "acknowledgement not sent; the redelivery will be skipped");
        }
    }
}
