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
//!    batches, publishes each event (subject, headers and body per [`crate::message`])
//!    and waits for JetStream's acknowledgements in order;
//! 4. advances the checkpoint to the last event acknowledged — never past one that was
//!    not — on its own session (a relay that lost its session cannot move it);
//! 5. when caught up, polls every [`RelayConfig::idle_poll`].
//!
//! Order on the stream equals position order:
//! - *safe mode*: one event in flight; the next is published only once the previous one
//!   is acknowledged. A relay starts in safe mode and returns to it after any failure.
//! - *fast mode*: after an acknowledgement of a new message with stream sequence `S`, a
//!   batch is pipelined, message `i` carrying `Nats-Expected-Last-Sequence: S + i`.
//!   JetStream stores message `i` only if the stream ends exactly where the previous
//!   message of the batch was stored, so a lost message (a NATS restart, a leader change
//!   in a cluster) makes every later one of the batch fail instead of landing out of
//!   order; the relay re-publishes from the first unacknowledged event in safe mode.
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

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind};
use backon::{BackoffBuilder, ExponentialBuilder};
use carelog_domain::Position;
use carelog_store::relay::RelaySession;
use carelog_store::{StoreError, StoredEvent};
use sqlx::PgPool;

use crate::{message, BusConfig, ConfigError};

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Prefix and replicas.
    pub bus: BusConfig,
    /// Events read from the log (and pipelined in fast mode) at a time.
    pub batch: i64,
    /// Pause between reads when the relay has caught up.
    pub idle_poll: Duration,
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
            idle_poll: Duration::from_millis(75),
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
    published: AtomicU64,
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

    /// Events this relay had acknowledged by JetStream (duplicates included).
    pub fn published(&self) -> u64 {
        self.0.published.load(Ordering::Relaxed)
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
        })
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
        let mut cursor = session.checkpoint().await?;
        self.status.0.checkpoint.store(cursor.0, Ordering::Relaxed);
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
        let mut last_ping = Instant::now();
        loop {
            let events = match carelog_store::read::all(&self.pool, cursor, self.cfg.batch).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "relay cannot read the log; retrying");
                    tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff)).await;
                    session.ping().await?;
                    continue;
                }
            };
            if events.is_empty() {
                if last_ping.elapsed() >= self.cfg.standby_retry {
                    session.ping().await?;
                    last_ping = Instant::now();
                }
                tokio::time::sleep(self.cfg.idle_poll).await;
                continue;
            }
            let mut done = 0;
            while done < events.len() {
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
                match self.publish(&events[done..], &mut mode).await {
                    Ok(0) => {}
                    Ok(n) => {
                        done += n;
                        let position = events[done - 1].position;
                        session.save_checkpoint(position).await?;
                        last_ping = Instant::now();
                        cursor = position;
                        self.status
                            .0
                            .checkpoint
                            .store(position.0, Ordering::Relaxed);
                        self.status
                            .0
                            .published
                            .fetch_add(n as u64, Ordering::Relaxed);
                        backoff = self.backoff();
                    }
                    Err(e) => {
                        if e.kind() == PublishErrorKind::StreamNotFound {
                            streams_ready = false;
                        }
                        tracing::warn!(
                            error = %e,
                            position = events[done].position.0,
                            "relay cannot publish to JetStream; retrying (nothing is skipped)"
                        );
                        tokio::time::sleep(backoff.next().unwrap_or(self.cfg.max_backoff)).await;
                    }
                }
            }
        }
    }

    /// Publishes a prefix of `events`; returns how many leading events JetStream holds
    /// now (acknowledged, as new messages or as duplicates).
    async fn publish(
        &self,
        events: &[StoredEvent],
        mode: &mut Mode,
    ) -> Result<usize, jetstream::context::PublishError> {
        match *mode {
            Mode::Safe => {
                let ack = self.send(&events[0], None).await?.await?;
                if !ack.duplicate {
                    *mode = Mode::Fast {
                        last_seq: ack.sequence,
                    };
                }
                Ok(1)
            }
            Mode::Fast { last_seq } => {
                let mut pending = Vec::with_capacity(events.len());
                let mut error = None;
                for (i, event) in events.iter().enumerate() {
                    match self.send(event, Some(last_seq + i as u64)).await {
                        Ok(ack) => pending.push(ack),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                let (mut acked, mut seq, mut in_order) = (0, last_seq, error.is_none());
                for ack in pending {
                    if !in_order {
                        break; // later messages expected this one before them: they fail
                    }
                    match ack.await {
                        Ok(ack) if !ack.duplicate && ack.sequence == seq + 1 => {
                            acked += 1;
                            seq = ack.sequence;
                        }
                        Ok(_) => {
                            // Held (a duplicate, or stored elsewhere in the stream than
                            // expected): count it, and go on one at a time.
                            acked += 1;
                            in_order = false;
                        }
                        Err(e) => {
                            error = Some(e);
                            in_order = false;
                        }
                    }
                }
                *mode = if in_order {
                    Mode::Fast { last_seq: seq }
                } else {
                    Mode::Safe
                };
                match error {
                    Some(e) if acked == 0 => Err(e),
                    _ => Ok(acked),
                }
            }
        }
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
