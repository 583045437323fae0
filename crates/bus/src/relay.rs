//! The relay: follows the event log and publishes every event to JetStream, in position
//! order, exactly once in the stream (within the duplicate window).
//!
//! One relay is active per database and prefix. Every node may run one; each holds a
//! dedicated PostgreSQL session ([`carelog_store::relay::RelaySession`]) and tries the
//! session advisory lock `hashtext('carelog.relay.' || prefix)`. The one that gets it is
//! active; the others stand by and try again every [`RelayConfig::standby_retry`]. When
//! the active relay dies, is aborted or loses its database connection, its session ends,
//! the lock is free, and a standby takes over from the checkpoint.
//!
//! The active relay:
//! 1. makes sure the streams exist ([`crate::ensure_streams`]);
//! 2. reads its checkpoint (`relay_checkpoints`, row named after the prefix);
//! 3. reads the log after it gap-safely ([`carelog_store::read::all`], ADR 0002) in
//!    batches — or, for the events its own process's group commits just wrote, takes
//!    them as they were inserted ([`carelog_store::RecentCommits`]: only a run with no
//!    hole from the cursor on, which is what the read would have returned) — publishes
//!    each event (subject, headers and body per [`crate::message`])
//!    and settles JetStream's acknowledgements in order. In fast mode (below) up to
//!    `PIPELINE_DEPTH` (4) batches are in flight: while the oldest waits for its
//!    acknowledgements, an append wakes the relay to read and send the next;
//! 4. advances the checkpoint to the last event acknowledged — never past one that was
//!    not — on its own session (a relay that lost its session cannot move it). While
//!    events keep coming it saves it at most every [`CHECKPOINT_EVERY`], and once no
//!    wake-up came for that long: a save is a round trip the loop would otherwise
//!    spend reading and sending, and an older checkpoint only means more copies to
//!    drop after a crash (see "Duplicates");
//! 5. when caught up, waits for a wake-up: every appending transaction notifies the
//!    PostgreSQL channel `carelog_appended` on commit
//!    ([`carelog_store::append::AppendedListener`]), which a task of the active relay
//!    listens to on a session of its own. After a wake-up the relay reads at once; if
//!    the gap-safe read still holds the new rows back (an older transaction is in
//!    flight somewhere), it reads again after 1, 2, 4, … ms up to
//!    [`QUICK_RETRY_LAST`]. Without wake-ups it polls every [`RelayConfig::idle_poll`]
//!    anyway: a notification can be lost (listener reconnecting), and a relay whose
//!    listener cannot connect keeps relaying by polling alone while it retries every
//!    [`RelayConfig::standby_retry`]. A relay given its own process's commits
//!    ([`Relay::wake_on_commits`], as `carelog serve` does) is woken by each group
//!    commit directly, and skips the notifications of its process's committers: it takes
//!    their events as handed over, without reading them back (ADR 0002, amendment d).
//!
//! Order on the stream equals position order:
//! - *safe mode*: one event in flight; the next is published only once the previous one
//!   is acknowledged. A relay starts in safe mode and returns to it after any failure.
//! - *fast mode*: after an acknowledgement of a new message with stream sequence `S`, the
//!   following events are pipelined, the `i`-th carrying `Nats-Expected-Last-Sequence:
//!   S + i`, across the batches in flight. JetStream stores a message only if the stream
//!   ends exactly where the message before it was to be stored, so a lost message (a NATS
//!   restart, a leader change in a cluster) makes every later one fail instead of landing
//!   out of order, in its batch and in the batches after it; the relay forgets what is in
//!   flight and re-publishes from the first unacknowledged event in safe mode (JetStream
//!   recognises by message id any later one that did land, in its place).
//!
//! Failures: a failed publish (NATS down, timeout, no stream) is retried with exponential
//! backoff and jitter, for ever; no event is skipped. Commands never wait for any of
//! this: appends do not touch NATS.
//!
//! Duplicates: a crash between a publish and the checkpoint (or a lost acknowledgement)
//! re-publishes events JetStream already holds. JetStream drops them by `Nats-Msg-Id`
//! (the event id) within the stream's `duplicate_window` (`nats/streams.json`, 2 min);
//! a relay down for longer than that after such a crash can store an event twice, the
//! second copy later in the stream. Consumers therefore also skip positions at or below
//! their own checkpoint (DESIGN.md invariant 7).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind};
use backon::{BackoffBuilder, ExponentialBuilder};
use carelog_domain::Position;
use carelog_store::append::Wake;
use carelog_store::relay::RelaySession;
use carelog_store::{Commits, RecentCommits, StoreError, StoredEvent};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::{message, BusConfig, ConfigError};

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Prefix and replicas.
    pub bus: BusConfig,
    /// Events read from the log (and pipelined in fast mode) at a time.
    pub batch: i64,
    /// Longest pause between reads when the relay has caught up and nothing woke it.
    pub idle_poll: Duration,
    /// Listen for appends (`carelog_appended`) to read new events at once instead of at
    /// the next poll.
    pub listen: bool,
    /// Pause between attempts of a standby relay to become active.
    pub standby_retry: Duration,
    /// First retry delay after a failure (then doubled, with jitter).
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// How long to wait for JetStream to acknowledge a message.
    pub ack_timeout: Duration,
}

impl RelayConfig {
    /// The defaults under `bus`.
    pub fn new(bus: BusConfig) -> Self {
        Self {
            bus,
            batch: 500,
            idle_poll: Duration::from_millis(250),
            listen: true,
            standby_retry: Duration::from_secs(1),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    active: AtomicBool,
    checkpoint: AtomicI64,
    acknowledged: AtomicI64,
    published: AtomicU64,
    handed_over: AtomicU64,
}

/// What a relay is doing, readable while it runs (cheap: atomics).
#[derive(Debug, Clone, Default)]
pub struct RelayStatus(Arc<Shared>);

impl RelayStatus {
    /// Whether this relay holds the lock and publishes (false: standby or stopped).
    pub fn is_active(&self) -> bool {
        self.0.active.load(Ordering::Relaxed)
    }

    /// The checkpoint as this relay last read or wrote it.
    pub fn checkpoint(&self) -> Position {
        Position(self.0.checkpoint.load(Ordering::Relaxed))
    }

    /// The last position JetStream acknowledged to this relay, every one before it
    /// acknowledged too: at or ahead of [`RelayStatus::checkpoint`], which follows it
    /// within [`CHECKPOINT_EVERY`] while the relay is busy.
    pub fn acknowledged(&self) -> Position {
        Position(self.0.acknowledged.load(Ordering::Relaxed))
    }

    /// Events this relay had acknowledged by JetStream (duplicates included).
    pub fn published(&self) -> u64 {
        self.0.published.load(Ordering::Relaxed)
    }

    /// Events this relay took from its process's group commits rather than reading them
    /// from the log ([`Relay::wake_on_commits`]).
    pub fn handed_over(&self) -> u64 {
        self.0.handed_over.load(Ordering::Relaxed)
    }
}

/// Warns when the NATS server takes smaller messages than the largest event's: such an
/// event would be retried for ever and hold back every later one (the relay never skips).
/// 0 means not connected yet (nothing known).
fn warn_if_small_max_payload(max_payload: usize) {
    if max_payload > 0 && max_payload < message::MAX_MESSAGE_BYTES {
        tracing::warn!(
            max_payload,
            needed = message::MAX_MESSAGE_BYTES,
            "the NATS server's max_payload is below the largest event message; raise it (nats-server max_payload) or large events will stall the relay"
        );
    }
}

/// Longest time a busy relay keeps acknowledged events out of its saved checkpoint.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);

/// First re-read after a wake-up that found nothing yet (then doubled).
const QUICK_RETRY_FIRST: Duration = Duration::from_millis(1);
/// Last quick re-read after a wake-up; then the relay waits for the next wake-up or
/// [`RelayConfig::idle_poll`].
pub const QUICK_RETRY_LAST: Duration = Duration::from_millis(64);

/// The pause before the next read when the last one found nothing, and the pause after
/// it if that one finds nothing either: after a wake-up the relay re-reads quickly
/// (`quick`: 1, 2, 4, … ms up to [`QUICK_RETRY_LAST`]), else it waits up to `idle_poll`.
fn next_pause(quick: Option<Duration>, idle_poll: Duration) -> (Duration, Option<Duration>) {
    match quick {
        Some(d) => {
            let next = d * 2;
            (d.min(idle_poll), (next <= QUICK_RETRY_LAST).then_some(next))
        }
        None => (idle_poll, None),
    }
}

/// Wake-ups of the active relay: a task listening on `carelog_appended` (reconnecting
/// for ever) and one following this process's commits signal `notify`; stopped when
/// dropped.
struct Waker {
    notify: Arc<tokio::sync::Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Waker {
    /// Starts listening (if `listen`) on a session of its own, and following `commits`.
    fn start(pool: &PgPool, listen: bool, retry: Duration, commits: Option<&Commits>) -> Self {
        let notify = Arc::new(tokio::sync::Notify::new());
        let own = commits.map(|c| Arc::clone(&c.events));
        let listener = listen.then(|| {
            tokio::spawn(listen_for_appends(
                pool.clone(),
                Arc::clone(&notify),
                retry,
                own,
            ))
        });
        let follower =
            commits.map(|c| tokio::spawn(follow_commits(c.changed.clone(), Arc::clone(&notify))));
        Self {
            notify,
            tasks: listener.into_iter().chain(follower).collect(),
        }
    }

    /// Waits for a wake-up, at most `pause`; true when woken. A wake-up that came while
    /// nobody waited is kept for the next call, so none is missed.
    async fn wait(&self, pause: Duration) -> bool {
        tokio::time::timeout(pause, self.notify.notified())
            .await
            .is_ok()
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Signals `notify` after each of this process's group commits, until the store is gone.
async fn follow_commits(mut commits: watch::Receiver<()>, notify: Arc<tokio::sync::Notify>) {
    while commits.changed().await.is_ok() {
        notify.notify_one();
    }
}

/// Listens on `carelog_appended` and signals `notify` for each notification, and once
/// after each (re)connection (appends may have committed unseen). A lost or unreachable
/// session is retried every `retry`; meanwhile the relay polls.
///
/// A notification from one of `own`'s committers is skipped: that committer wakes the
/// relay itself and hands it the events ([`Relay::wake_on_commits`]); reading them back
/// on its notification would only race the hand-over.
async fn listen_for_appends(
    pool: PgPool,
    notify: Arc<tokio::sync::Notify>,
    retry: Duration,
    own: Option<Arc<RecentCommits>>,
) {
    let mut failing = false;
    loop {
        match carelog_store::append::AppendedListener::connect(&pool).await {
            Ok(mut listener) => {
                if failing {
                    tracing::info!("relay listens for appends again");
                }
                notify.notify_one();
                let lost = loop {
                    match listener.wait().await {
                        Ok(Wake::Appended { backend })
                            if own.as_ref().is_some_and(|o| o.is_committer(backend)) => {}
                        Ok(_) => notify.notify_one(),
                        Err(e) => break e,
                    }
                };
                tracing::warn!(error = %lost, "relay lost its append listener; polling until it is back");
                failing = true;
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "relay cannot listen for appends; polling until it can");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(retry).await;
    }
}

/// How the next events are published; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One in flight.
    Safe,
    /// Pipelined; the stream's last sequence is this.
    Fast { last_seq: u64 },
}

/// The relay of one database and prefix; see the module documentation.
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    cfg: RelayConfig,
    status: RelayStatus,
    /// This process's group commits ([`Relay::wake_on_commits`]).
    commits: Option<Commits>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("cfg", &self.cfg)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay reading `pool` and publishing through `client`; refuses a bad prefix or
    /// replica count.
    pub fn new(
        pool: PgPool,
        client: async_nats::Client,
        cfg: RelayConfig,
    ) -> Result<Self, ConfigError> {
        cfg.bus.validate()?;
        let js = jetstream::ContextBuilder::new()
            .ack_timeout(cfg.ack_timeout)
            .build(client);
        Ok(Self {
            pool,
            js,
            cfg,
            status: RelayStatus::default(),
            commits: None,
        })
    }

    /// Also wakes up after each of `commits` (from
    /// [`carelog_store::EventStore::commits`]), and takes the events they wrote from them
    /// rather than reading them back: the events appended in this process are published
    /// as soon as they are committed, a hop sooner than through PostgreSQL's notification
    /// (which still brings the other processes' appends) and without a read of the log.
    #[must_use]
    pub fn wake_on_commits(mut self, commits: Commits) -> Self {
        self.commits = Some(commits);
        self
    }

    /// A handle on this relay's status, valid after [`Relay::run`] took the relay.
    pub fn status(&self) -> RelayStatus {
        self.status.clone()
    }

    /// How many positions the checkpoint of this prefix is behind the head of the log
    /// (whichever relay is active).
    pub async fn lag(&self) -> Result<i64, StoreError> {
        carelog_store::relay::lag(&self.pool, &self.cfg.bus.prefix).await
    }

    /// Runs until `shutdown` completes: stands by, or relays while it holds the lock.
    /// Never returns early: every failure is logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            () = shutdown => {}
            () = self.run_forever() => {}
        }
        self.status.0.active.store(false, Ordering::Relaxed);
        tracing::info!(prefix = %self.cfg.bus.prefix, "relay stopped");
    }

    async fn run_forever(&self) {
        loop {
            let mut session = self.become_active().await;
            self.status.0.active.store(true, Ordering::Relaxed);
            tracing::info!(prefix = %self.cfg.bus.prefix, "relay active");
            if let Err(e) = self.relay(&mut session).await {
                tracing::warn!(error = %e, "relay lost its database session; standing by");
            }
            self.status.0.active.store(false, Ordering::Relaxed);
            session.close().await;
            tokio::time::sleep(self.cfg.standby_retry).await;
        }
    }

    /// Waits until this relay's session holds the prefix's lock.
    async fn become_active(&self) -> RelaySession {
        let prefix = &self.cfg.bus.prefix;
        let mut session: Option<RelaySession> = None;
        let mut said_standby = false;
        loop {
            if session.is_none() {
                match RelaySession::open(&self.pool, prefix).await {
                    Ok(s) => session = Some(s),
                    Err(e) => tracing::warn!(error = %e, "relay cannot reach PostgreSQL; retrying"),
                }
            }
            if let Some(s) = session.as_mut() {
                match s.try_lock().await {
                    Ok(true) => return session.take().expect("just matched"),
                    Ok(false) if !said_standby => {
                        said_standby = true;
                        tracing::info!(%prefix, "another relay is active for this prefix; standing by");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "relay lost its database session; reconnecting");
                        session = None;
                    }
                }
            }
            tokio::time::sleep(self.cfg.standby_retry).await;
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.cfg.min_backoff)
            .with_max_delay(self.cfg.max_backoff)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// Relays while `session` holds the lock; an error means the session is gone.
    async fn relay(&self, session: &mut RelaySession) -> Result<(), StoreError> {
        // `cursor`: the last event JetStream acknowledged (every one before it too);
        // `saved`: the checkpoint as saved, at most `cursor`.
        let mut cursor = session.checkpoint().await?;
        let mut saved = Saved {
            position: cursor,
            at: Instant::now(),
        };
        self.status.0.checkpoint.store(cursor.0, Ordering::Relaxed);
        self.status
            .0
            .acknowledged
            .store(cursor.0, Ordering::Relaxed);
        let mut backoff = self.backoff();
        let mut mode = Mode::Safe;
        // Set the streams up at once, so a NATS that is down at start-up is reported at
        // start-up; when it fails, it is retried before the first publish.
        let mut streams_ready = match crate::ensure_streams(&self.js, &self.cfg.bus).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "relay cannot set up the JetStream streams (is NATS up?); commands are still accepted, events are published once it is back");
                false
            }
        };
        warn_if_small_max_payload(self.js.client().server_info().max_payload);
        let mut last_ping = Instant::now();
        let waker = Waker::start(
            &self.pool,
            self.cfg.listen,
            self.cfg.standby_retry,
            self.commits.as_ref(),
        );
        let mut quick = None;
        // Batches sent in fast mode and not yet settled, oldest first; then the events
        // read after them (or after `cursor`) and not sent yet; `last_read` is the last
        // position of the two. Safe mode never has batches in flight.
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut unsent: Vec<StoredEvent> = Vec::new();
        let mut last_read = cursor;
        // The last read found less than a batch: read again when an append wakes the
        // relay (or at the next poll), not at once.
        let mut caught_up = false;
        loop {
            let room = in_flight.len() < PIPELINE_DEPTH;
            if unsent.is_empty() && room && !caught_up {
                let handed = self.handed_over(last_read);
                if !handed.is_empty() {
                    caught_up = (handed.len() as i64) < self.cfg.batch;
                    unsent = handed;
                    continue;
                }
                match session.read_after(last_read, self.cfg.batch).await {
                    Ok(events) => {
                        caught_up = (events.len() as i64) < self.cfg.batch;
                        unsent = events;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "relay cannot read the log; retrying");
                        if in_flight.is_empty() {
                            tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff))
                                .await;
                            session.ping().await?;
                            continue;
                        }
                    }
                }
            }
            if !unsent.is_empty() && room {
                quick = None;
                if !streams_ready {
                    match crate::ensure_streams(&self.js, &self.cfg.bus).await {
                        Ok(()) => streams_ready = true,
                        Err(e) => {
                            tracing::warn!(error = %e, "relay cannot set up the JetStream streams (is NATS up?); retrying");
                            tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff))
                                .await;
                            continue;
                        }
                    }
                }
                let failed = match mode {
                    Mode::Safe => match self.publish_one(&unsent[0], &mut mode).await {
                        Ok(()) => {
                            self.acknowledged(&mut cursor, unsent[0].position, 1);
                            self.save(session, cursor, &mut saved).await?;
                            last_ping = Instant::now();
                            unsent.remove(0);
                            backoff = self.backoff();
                            None
                        }
                        Err(e) => Some((e, unsent[0].position)),
                    },
                    Mode::Fast { last_seq } => match self.send_batch(&unsent, last_seq).await {
                        Ok(batch) => {
                            mode = Mode::Fast {
                                last_seq: last_seq + unsent.len() as u64,
                            };
                            last_read = unsent.last().map_or(last_read, |e| e.position);
                            unsent.clear();
                            in_flight.push_back(batch);
                            None
                        }
                        Err(e) => {
                            // Nothing of this batch is counted: everything after the
                            // checkpoint is sent again, one at a time first (JetStream
                            // drops what it already holds by message id).
                            let at = unsent[0].position;
                            mode = Mode::Safe;
                            restart(&mut in_flight, &mut unsent, &mut last_read, cursor);
                            caught_up = false;
                            Some((e, at))
                        }
                    },
                };
                if let Some((e, at)) = failed {
                    self.publish_failed(&e, at);
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        streams_ready = false;
                    }
                    tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff)).await;
                }
                continue;
            }
            if let Some(front) = in_flight.front_mut() {
                // Settle the oldest batch; meanwhile an append wakes the relay to read
                // and send on, as long as there is room in the pipeline.
                let acks = tokio::select! {
                    acks = &mut front.acks => acks,
                    () = waker.notify.notified(), if room && unsent.is_empty() => {
                        caught_up = false;
                        continue;
                    }
                };
                let batch = in_flight.pop_front().expect("the front was just awaited");
                if acks.acked > 0 {
                    let position = batch.positions[acks.acked - 1];
                    self.acknowledged(&mut cursor, position, acks.acked);
                    if saved.at.elapsed() >= CHECKPOINT_EVERY {
                        self.save(session, cursor, &mut saved).await?;
                        last_ping = Instant::now();
                    }
                }
                if acks.acked == batch.positions.len() && acks.in_order_up_to.is_some() {
                    backoff = self.backoff();
                    continue;
                }
                // The batch ended early or out of order. Later messages of the pipeline
                // were stored only in their place, if at all (their expected sequences
                // chain them to this batch): start again after the last acknowledged
                // event, one at a time.
                mode = Mode::Safe;
                restart(&mut in_flight, &mut unsent, &mut last_read, cursor);
                caught_up = false;
                if let Some(e) = acks.error {
                    if e.kind() == PublishErrorKind::StreamNotFound {
                        streams_ready = false;
                    }
                    if acks.acked == 0 {
                        self.publish_failed(&e, batch.positions[0]);
                        tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff)).await;
                    }
                }
                continue;
            }
            // Caught up, nothing in flight: wait for an append (or poll). What is
            // acknowledged and not saved yet is saved once no append came for
            // `CHECKPOINT_EVERY` since the last save.
            let unsaved = saved.position < cursor;
            if unsaved && saved.at.elapsed() >= CHECKPOINT_EVERY {
                self.save(session, cursor, &mut saved).await?;
                last_ping = Instant::now();
            } else if last_ping.elapsed() >= self.cfg.standby_retry {
                session.ping().await?;
                last_ping = Instant::now();
            }
            let (mut pause, after) = next_pause(quick, self.cfg.idle_poll);
            if saved.position < cursor {
                pause = pause.min(CHECKPOINT_EVERY.saturating_sub(saved.at.elapsed()));
            }
            quick = if waker.wait(pause).await {
                Some(QUICK_RETRY_FIRST)
            } else {
                after
            };
            caught_up = false;
        }
    }

    /// The events this process's group commits wrote right after `after`, without a
    /// hole, at most a batch (none if it was given no commits, or `after + 1` is not
    /// among them): what reading the log after `after` would return, or a prefix of it.
    fn handed_over(&self, after: Position) -> Vec<StoredEvent> {
        let limit = usize::try_from(self.cfg.batch).unwrap_or(0);
        let events = self
            .commits
            .as_ref()
            .map(|c| c.events.take_after(after, limit))
            .unwrap_or_default();
        self.status
            .0
            .handed_over
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        events
    }

    /// JetStream holds every event up to `position`: the relay goes on after it, and
    /// counts `published` more events.
    fn acknowledged(&self, cursor: &mut Position, position: Position, published: usize) {
        *cursor = position;
        self.status
            .0
            .acknowledged
            .store(position.0, Ordering::Relaxed);
        self.status
            .0
            .published
            .fetch_add(published as u64, Ordering::Relaxed);
    }

    /// Saves the checkpoint at `cursor` on this relay's session.
    async fn save(
        &self,
        session: &mut RelaySession,
        cursor: Position,
        saved: &mut Saved,
    ) -> Result<(), StoreError> {
        session.save_checkpoint(cursor).await?;
        *saved = Saved {
            position: cursor,
            at: Instant::now(),
        };
        self.status.0.checkpoint.store(cursor.0, Ordering::Relaxed);
        Ok(())
    }

    fn publish_failed(&self, error: &jetstream::context::PublishError, position: Position) {
        tracing::warn!(
            error = %error,
            position = position.0,
            "relay cannot publish to JetStream; retrying (nothing is skipped)"
        );
    }

    /// Safe mode: one event, its acknowledgement awaited; a new message (not a
    /// duplicate) switches to fast mode after it.
    async fn publish_one(
        &self,
        event: &StoredEvent,
        mode: &mut Mode,
    ) -> Result<(), jetstream::context::PublishError> {
        let ack = self.send(event, None).await?.await?;
        if !ack.duplicate {
            *mode = Mode::Fast {
                last_seq: ack.sequence,
            };
        }
        Ok(())
    }

    /// Fast mode: sends `events` pipelined after stream sequence `last_seq` (message `i`
    /// expecting the stream to end at `last_seq + i`); their acknowledgements are
    /// awaited later, through the returned batch.
    async fn send_batch(
        &self,
        events: &[StoredEvent],
        last_seq: u64,
    ) -> Result<InFlight, jetstream::context::PublishError> {
        let mut pending = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            pending.push(self.send(event, Some(last_seq + i as u64)).await?);
        }
        Ok(InFlight {
            positions: events.iter().map(|e| e.position).collect(),
            acks: Box::pin(await_in_order(pending, last_seq)),
        })
    }

    async fn send(
        &self,
        event: &StoredEvent,
        expected_last_seq: Option<u64>,
    ) -> Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError> {
        let (mut headers, body) = message::encode(event);
        if let Some(seq) = expected_last_seq {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                seq.to_string().as_str(),
            );
        }
        let subject = self.cfg.bus.subject(
            event.header.stream_id.stream_type(),
            &event.header.event_type,
        );
        self.js
            .publish_with_headers(subject, headers, body.into())
            .await
    }
}

/// The checkpoint as last saved, and when.
struct Saved {
    position: Position,
    at: Instant,
}

/// Batches the relay may have sent and not yet settled (fast mode): while the oldest
/// waits for its acknowledgements, the next ones are read and sent.
const PIPELINE_DEPTH: usize = 4;

/// A batch sent in fast mode, its acknowledgements awaited in order.
struct InFlight {
    /// The events' positions, in the order sent.
    positions: Vec<Position>,
    acks: Pin<Box<dyn Future<Output = Acks> + Send>>,
}

/// Forgets what was in flight or read and not sent: the relay goes on from `cursor`.
fn restart(
    in_flight: &mut VecDeque<InFlight>,
    unsent: &mut Vec<StoredEvent>,
    last_read: &mut Position,
    cursor: Position,
) {
    in_flight.clear();
    unsent.clear();
    *last_read = cursor;
}

/// What the acknowledgements of a pipelined batch said ([`await_in_order`]).
struct Acks {
    /// Leading messages JetStream holds (stored or recognised as duplicates).
    acked: usize,
    /// The stream's last sequence when every acknowledged message was stored new, right
    /// after the previous one (the batch may go on in fast mode); `None` otherwise.
    in_order_up_to: Option<u64>,
    /// The failure that ended the batch, if any.
    error: Option<jetstream::context::PublishError>,
}

/// Awaits the acknowledgements of a batch pipelined after stream sequence `last_seq`,
/// in order, stopping at the first that is not a new message right after the previous
/// one: the later messages expected it before them, so they failed.
async fn await_in_order(pending: Vec<jetstream::context::PublishAckFuture>, last_seq: u64) -> Acks {
    let mut acks = Acks {
        acked: 0,
        in_order_up_to: Some(last_seq),
        error: None,
    };
    for ack in pending {
        let Some(seq) = acks.in_order_up_to else {
            break;
        };
        match ack.await {
            Ok(ack) if !ack.duplicate && ack.sequence == seq + 1 => {
                acks.acked += 1;
                acks.in_order_up_to = Some(ack.sequence);
            }
            Ok(_) => {
                // Held (a duplicate, or stored elsewhere in the stream than expected):
                // count it, and go on one at a time.
                acks.acked += 1;
                acks.in_order_up_to = None;
            }
            Err(e) => {
                acks.error = Some(e);
                acks.in_order_up_to = None;
            }
        }
    }
    acks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_wake_up_reads_are_retried_quickly_then_idle() {
        let idle = Duration::from_millis(250);
        let mut quick = Some(QUICK_RETRY_FIRST);
        let mut pauses = Vec::new();
        while quick.is_some() {
            let (pause, after) = next_pause(quick, idle);
            pauses.push(pause.as_millis());
            quick = after;
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(next_pause(None, idle), (idle, None));
        // A quick pause never exceeds the idle poll.
        let (pause, _) = next_pause(Some(Duration::from_millis(64)), Duration::from_millis(10));
        assert_eq!(pause, Duration::from_millis(10));
    }
}
