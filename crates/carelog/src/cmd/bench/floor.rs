//! The floor of `carelog bench lag`: the least a pipeline of the shape does
//! between an append and a visible read model, with none of carelog's relay or
//! projector in it.
//!
//! - A publisher takes the events this process's committers hand over
//!   ([`EventStore::commits`], as the relay does; from the log, gap-safely, when it fell
//!   behind what they keep) and sends each as one JetStream message,
//!   encoded as the relay encodes it (same headers, `Nats-Msg-Id` = event id, same body),
//!   to a stream made from the same definition as the events stream
//!   (`<prefix>floor_EVENTS`). Batches of up to [`BATCH`] are sent pipelined; a second
//!   task awaits their acknowledgements in order, up to [`AHEAD`] batches behind.
//! - A durable pull consumer with cumulative acknowledgements, pulling [`AHEAD`] batches
//!   ahead as the projector does, gives batches of up to [`BATCH`] messages. Each batch is
//!   one statement on a connection held for good: the positions (read from the
//!   `Carelog-Position` header, the body is not decoded) inserted into `bench_floor`
//!   (primary key only) and its checkpoint updated, committed with PostgreSQL's default
//!   `synchronous_commit`; then the batch's last message is acknowledged.
//!
//! It checks no gaps, keeps no dead letters, opens no payload and writes one narrow row
//! per event: strictly less than the relay and a projector must do. Its lag at a rate
//! bounds from below what any pipeline of this shape (one JetStream message per event, one
//! PostgreSQL transaction per batch) can reach on the same host.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicI64;

use async_nats::jetstream::{self, consumer};
use carelog_domain::Position;
use futures::StreamExt as _;
use sqlx::Connection as _;
use tokio::sync::{mpsc, watch};

use super::*;

/// Events per published batch and per applied transaction (the projector's default).
const BATCH: usize = 500;
/// Batches in flight to JetStream, and pulled ahead by the consumer (as the relay and
/// the projector do).
const AHEAD: usize = 4;

/// How long the publisher goes without events handed over before it reads the log: the
/// committers keep a bounded number of events for it, so a publisher that fell further
/// behind finds a hole, which only the log fills (as the relay does).
const STALLED: Duration = Duration::from_millis(20);

/// The floor's read model and its checkpoint.
const CREATE_SQL: &str = "\
    CREATE TABLE bench_floor (position bigint PRIMARY KEY);\n\
    CREATE TABLE bench_floor_checkpoint (position bigint NOT NULL);\n\
    INSERT INTO bench_floor_checkpoint VALUES (0);";

/// One batch and its checkpoint, in one statement (so one transaction).
const APPLY_SQL: &str = "\
    WITH applied AS (INSERT INTO bench_floor (position) SELECT unnest($1::bigint[]))\n\
    UPDATE bench_floor_checkpoint SET position = $2";

/// The highest position visible in `bench_floor` (0 when empty).
pub(super) const HEAD_SQL: &str = "SELECT coalesce(max(position), 0) FROM bench_floor";

/// A batch sent to JetStream: its acknowledgements, and the last position in it.
type Sent = (Vec<jetstream::context::PublishAckFuture>, i64);

/// The floor's three tasks, stopped on purpose by [`Floor::stop`] or aborted when dropped
/// ([`Running`]).
pub(super) struct Floor {
    running: Running<Result<()>>,
    acknowledged: Arc<AtomicI64>,
    /// Set when a task ended before it was asked to (its error comes with
    /// [`Floor::stop`]).
    ended: Arc<AtomicBool>,
}

impl Floor {
    /// Creates its table and stream under `prefix` and starts publishing from the end of
    /// the log.
    pub(super) async fn start(
        pool: &PgPool,
        scratch_url: &str,
        store: &EventStore,
        nats_url: &str,
        prefix: &str,
    ) -> Result<Self> {
        sqlx::raw_sql(CREATE_SQL)
            .execute(pool)
            .await
            .context("creating bench_floor")?;
        let client = carelog_bus::connect(nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {nats_url}"))?;
        let js = jetstream::new(client);
        let bus = carelog_bus::BusConfig::new(format!("{prefix}floor_"), 1)?;
        carelog_bus::ensure_streams(&js, &bus)
            .await
            .context("creating the floor's stream")?;
        let consumer = js
            .get_stream(bus.events_stream())
            .await
            .context("opening the floor's stream")?
            .create_consumer(consumer::pull::Config {
                durable_name: Some("floor".to_owned()),
                ack_policy: consumer::AckPolicy::All,
                max_ack_pending: (BATCH * AHEAD * 2) as i64,
                ..Default::default()
            })
            .await
            .context("creating the floor's consumer")?;
        let conn = sqlx::PgConnection::connect(scratch_url)
            .await
            .context("connecting the floor's consumer")?;
        let from = Position(last_position(pool).await?);
        let acknowledged = Arc::new(AtomicI64::new(from.0));
        let (stop, stopped) = watch::channel(false);
        let (sent, to_await) = mpsc::channel(AHEAD);
        let ended = Arc::new(AtomicBool::new(false));
        let spawn = |task: Pin<Box<dyn Future<Output = Result<()>> + Send>>| {
            let (ended, stopped) = (Arc::clone(&ended), stopped.clone());
            tokio::spawn(async move {
                let outcome = task.await;
                if !*stopped.borrow() {
                    ended.store(true, Ordering::Relaxed);
                }
                outcome
            })
        };
        let tasks = vec![
            spawn(Box::pin(publish(
                Source {
                    pool: pool.clone(),
                    commits: store.commits(),
                },
                js,
                bus,
                from,
                sent,
                stopped.clone(),
            ))),
            spawn(Box::pin(await_acks(to_await, Arc::clone(&acknowledged)))),
            spawn(Box::pin(apply(consumer, conn, stopped.clone()))),
        ];
        Ok(Self {
            running: Running { stop, tasks },
            acknowledged,
            ended,
        })
    }

    /// The last position JetStream acknowledged to the publisher, or an error once a
    /// task ended early.
    pub(super) fn published(&self) -> Box<dyn Fn() -> Result<i64> + Send> {
        let (acknowledged, ended) = (Arc::clone(&self.acknowledged), Arc::clone(&self.ended));
        Box::new(move || {
            if ended.load(Ordering::Relaxed) {
                bail!("the floor stopped early");
            }
            Ok(acknowledged.load(Ordering::Relaxed))
        })
    }

    /// Stops the tasks (at most 10 s) and gives the first error any of them met.
    pub(super) async fn stop(self) -> Result<()> {
        let joined = self
            .running
            .stop()
            .await
            .context("the floor did not stop within 10 s")?;
        for task in joined {
            task.context("a floor task panicked")??;
        }
        Ok(())
    }
}

/// Where the publisher gets committed events from.
struct Source {
    pool: PgPool,
    commits: carelog_store::Commits,
}

/// Sends every event committed after `from`, in position order, until stopped.
async fn publish(
    source: Source,
    js: jetstream::Context,
    bus: carelog_bus::BusConfig,
    from: Position,
    sent: mpsc::Sender<Sent>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut changed = source.commits.changed.clone();
    let mut cursor = from;
    let mut progressed = Instant::now();
    // The last batch came from the log: read on until the handed-over events follow.
    let mut from_log = false;
    loop {
        loop {
            let mut run = source.commits.events.take_after(cursor, BATCH);
            if run.is_empty() && (from_log || progressed.elapsed() >= STALLED) {
                run = carelog_store::read::all(&source.pool, cursor, BATCH as i64)
                    .await
                    .context("reading the log")?;
                from_log = !run.is_empty();
            } else {
                from_log = false;
            }
            let Some(last) = run.last().map(|e| e.position) else {
                break;
            };
            let mut acks = Vec::with_capacity(run.len());
            for event in &run {
                let (headers, body) = carelog_bus::encode(event);
                let subject = bus.subject(
                    event.header.stream_id.stream_type(),
                    &event.header.event_type,
                );
                acks.push(
                    js.publish_with_headers(subject, headers, body.into())
                        .await
                        .context("publishing a floor message")?,
                );
            }
            sent.send((acks, last.0))
                .await
                .map_err(|_| anyhow!("the floor's acknowledgement task ended"))?;
            cursor = last;
            progressed = Instant::now();
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            changed = changed.changed() => if changed.is_err() {
                return Ok(());
            },
            () = tokio::time::sleep(STALLED) => {}
        }
    }
}

/// Awaits each sent batch's acknowledgements in order, then moves `acknowledged`.
async fn await_acks(mut sent: mpsc::Receiver<Sent>, acknowledged: Arc<AtomicI64>) -> Result<()> {
    while let Some((acks, last)) = sent.recv().await {
        for ack in acks {
            ack.await
                .context("JetStream did not store a floor message")?;
        }
        acknowledged.store(last, Ordering::Relaxed);
    }
    Ok(())
}

/// Applies what the consumer delivers, one transaction per batch, until stopped.
async fn apply(
    consumer: consumer::Consumer<consumer::pull::Config>,
    mut conn: sqlx::PgConnection,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let messages = consumer
        .stream()
        .max_messages_per_batch(BATCH * AHEAD)
        .messages()
        .await
        .context("pulling from the floor's consumer")?;
    let mut chunks = messages.ready_chunks(BATCH);
    let mut checkpoint = 0;
    loop {
        let chunk = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return Ok(()),
            // Unconstrained, as the projector's: tokio's cooperative budget would end
            // every chunk at 128 messages.
            chunk = tokio::task::unconstrained(chunks.next()) => match chunk {
                Some(chunk) => chunk,
                None => bail!("the floor's consumer stopped delivering"),
            },
        };
        let mut positions = Vec::with_capacity(chunk.len());
        let mut last = None;
        for msg in chunk {
            let msg = msg.map_err(|e| anyhow!("receiving a floor message: {e}"))?;
            let position = position_of(&msg)?;
            // A redelivery of what is applied already.
            if position > checkpoint {
                positions.push(position);
            }
            last = Some(msg);
        }
        if let Some(&to) = positions.last() {
            sqlx::query(APPLY_SQL)
                .bind(&positions)
                .bind(to)
                .execute(&mut conn)
                .await
                .context("applying a floor batch")?;
            checkpoint = to;
        }
        if let Some(msg) = last {
            msg.ack()
                .await
                .map_err(|e| anyhow!("acknowledging a floor batch: {e}"))?;
        }
    }
}

/// The position a floor message carries in its `Carelog-Position` header.
fn position_of(msg: &jetstream::Message) -> Result<i64> {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(carelog_bus::HEADER_POSITION))
        .and_then(|v| v.as_str().parse().ok())
        .context("a floor message without a position header")
}
