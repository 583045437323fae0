//! Projectors (crates/projector): the relay publishes the log to JetStream, a projector
//! applies it to a read model batch by batch with its checkpoint — exactly once through a
//! crash between commit and acknowledgement — and sets poison events aside in the DLQ
//! while the other streams flow.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carelog_bus::{BusConfig, Relay, RelayConfig};
use carelog_domain::operations::operations_stream;
use carelog_domain::{Metadata, Position, StreamId, StreamVersion};
use carelog_projector::{
    dlq, ApplyError, AuditFeed, BatchApplyError, BoxFuture, Projection, Projector, ProjectorConfig,
};
use carelog_store::projector::DlqStatus;
use carelog_store::{EventStore, Expected, Opened, StoredEvent};
use serde_json::json;
use sqlx::PgConnection;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::support::eventually;
use crate::support::nats::TestNats;
use crate::support::{self, event, one, patient_stream, TestDb};

/// Starts the relay of `nats`'s prefix, with quick retries.
async fn spawn_relay(db: &TestDb, nats: &TestNats) -> JoinHandle<()> {
    let mut cfg = RelayConfig::new(BusConfig::new(&nats.prefix, 1).unwrap());
    cfg.standby_retry = Duration::from_millis(200);
    cfg.min_backoff = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_millis(500);
    let client = carelog_bus::connect(&nats.url).await.unwrap();
    let relay = Relay::new(db.pool.clone(), client, cfg).unwrap();
    tokio::spawn(relay.run(std::future::pending::<()>()))
}

/// A test's projector settings: short backoff, quick redelivery.
fn projector_config() -> ProjectorConfig {
    ProjectorConfig {
        max_attempts: 3,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ack_wait: Duration::from_secs(1),
        gap_delay: Duration::from_millis(100),
        ..ProjectorConfig::default()
    }
}

async fn spawn_projector(
    db: &TestDb,
    store: &EventStore,
    nats: &TestNats,
    projection: Box<dyn Projection>,
    cfg: ProjectorConfig,
) -> JoinHandle<()> {
    let client = carelog_bus::connect(&nats.url).await.unwrap();
    let projector = Projector::new(
        db.pool.clone(),
        store.clone(),
        client,
        BusConfig::new(&nats.prefix, 1).unwrap(),
        projection,
        cfg,
    )
    .unwrap();
    tokio::spawn(projector.run(std::future::pending::<()>()))
}

async fn wait_checkpoint(db: &TestDb, name: &str, at_least: Position) {
    eventually(Duration::from_secs(60), "projection checkpoint", || async {
        carelog_store::projector::checkpoint(&db.pool, name)
            .await
            .unwrap()
            >= at_least
    })
    .await;
}

/// Appends `n` events to `stream` after version `from`; returns their positions.
async fn append_n(store: &EventStore, stream: StreamId, from: i64, n: i64) -> Vec<Position> {
    let mut out = Vec::new();
    for v in from..from + n {
        let ty = if v == 0 {
            "PatientRegistered"
        } else {
            "PatientUpdated"
        };
        let done = store
            .append(one(
                stream,
                Expected::Exact(StreamVersion(v)),
                event(&stream, ty, json!({"n": v})),
            ))
            .await
            .expect("append");
        out.extend(done.positions);
    }
    out
}

/// A test projection: records every application in `probe_applied` (in application
/// order), and fails for the streams in `poisoned`.
#[derive(Clone)]
struct Probe {
    poisoned: Arc<Mutex<HashSet<String>>>,
}

impl Probe {
    async fn new(db: &TestDb) -> Probe {
        sqlx::query(
            "CREATE TABLE probe_applied (seq bigserial PRIMARY KEY, position bigint NOT NULL, \
             stream_id text NOT NULL)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        Probe {
            poisoned: Arc::default(),
        }
    }

    fn poison(&self, stream: &StreamId, on: bool) {
        let mut set = self.poisoned.lock().unwrap();
        if on {
            set.insert(stream.to_string());
        } else {
            set.remove(&stream.to_string());
        }
    }
}

impl Projection for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a StoredEvent,
        opened: &'a Opened,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            assert!(matches!(opened, Opened::Payload(_)), "opened before apply");
            let stream = event.header.stream_id.to_string();
            if self.poisoned.lock().unwrap().contains(&stream) {
                return Err(ApplyError::new("probe: this stream is poisoned"));
            }
            sqlx::query("INSERT INTO probe_applied (position, stream_id) VALUES ($1, $2)")
                .bind(event.position.0)
                .bind(stream)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    /// Like one multi-row statement: a poisoned event fails the whole batch without
    /// saying which (the runtime must find it by applying one at a time).
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        Box::pin(async move {
            for (event, opened) in events {
                self.apply(&mut *tx, event, opened)
                    .await
                    .map_err(|error| BatchApplyError { index: None, error })?;
            }
            Ok(())
        })
    }
}

/// (position, applications) of every applied event.
async fn applications(db: &TestDb) -> HashMap<i64, i64> {
    sqlx::query_as::<_, (i64, i64)>(
        "SELECT position, count(*) FROM probe_applied GROUP BY position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// The positions applied for `stream`, in application order.
async fn applied_in_order(db: &TestDb, stream: &StreamId) -> Vec<Position> {
    sqlx::query_scalar::<_, i64>(
        "SELECT position FROM probe_applied WHERE stream_id = $1 ORDER BY seq",
    )
    .bind(stream.to_string())
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(Position)
    .collect()
}

#[tokio::test]
async fn the_audit_feed_holds_exactly_the_logs_events() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let relay = spawn_relay(&db, &nats).await;
    let projector =
        spawn_projector(&db, &store, &nats, Box::new(AuditFeed), projector_config()).await;

    let mut positions = Vec::new();
    for _ in 0..3 {
        positions.extend(append_n(&store, patient_stream(), 0, 8).await);
    }
    positions.sort();
    wait_checkpoint(&db, AuditFeed::NAME, *positions.last().unwrap()).await;

    let log = carelog_store::read::all(&db.pool, Position(0), 1000)
        .await
        .unwrap();
    assert_eq!(log.len(), positions.len());
    let rows = sqlx::query_as::<_, (i64, Uuid, String, String, String, Option<String>)>(
        "SELECT position, event_id, stream_id, stream_type, event_type, request_id \
         FROM audit_feed ORDER BY position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), log.len(), "one row per event, no more");
    for (row, e) in rows.iter().zip(&log) {
        let h = &e.header;
        assert_eq!(row.0, e.position.0);
        assert_eq!(row.1, h.event_id.0);
        assert_eq!(row.2, h.stream_id.to_string());
        assert_eq!(row.3, h.stream_id.stream_type().as_str());
        assert_eq!(row.4, h.event_type.as_str());
        assert_eq!(row.5, h.metadata.request_id);
    }
    assert_eq!(dlq::depth(&db.pool).await.unwrap(), 0);
    projector.abort();
    relay.abort();
}

/// A projector acknowledges cumulatively (one acknowledgement per batch). A durable
/// consumer left by an older carelog with explicit acknowledgements is recreated after
/// its floor with cumulative ones, and every event is still applied exactly once.
#[tokio::test]
async fn a_consumer_with_explicit_acks_is_recreated_cumulative_and_nothing_is_skipped() {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let bus = BusConfig::new(&nats.prefix, 1).unwrap();
    let js = nats.jetstream();
    carelog_bus::ensure_streams(&js, &bus).await.unwrap();
    let stream = js.get_stream(bus.events_stream()).await.unwrap();
    let durable = format!("{}proj_{}", nats.prefix, AuditFeed::NAME);
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();

    let relay = spawn_relay(&db, &nats).await;
    let mut positions = append_n(&store, patient_stream(), 0, 6).await;
    let projector =
        spawn_projector(&db, &store, &nats, Box::new(AuditFeed), projector_config()).await;
    positions.extend(append_n(&store, patient_stream(), 0, 6).await);
    wait_checkpoint(&db, AuditFeed::NAME, *positions.last().unwrap()).await;

    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer(&durable).await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.config.ack_policy, AckPolicy::All);
    assert_eq!(
        applications_of_the_feed(&db).await,
        positions.iter().map(|p| p.0).collect::<Vec<_>>(),
        "each event once, in order"
    );
    // Everything applied was acknowledged: nothing is left to redeliver.
    eventually(
        Duration::from_secs(10),
        "no acknowledgement pending",
        || {
            let mut consumer = consumer.clone();
            async move { consumer.info().await.unwrap().num_ack_pending == 0 }
        },
    )
    .await;
    projector.abort();
    relay.abort();
}

/// Acknowledgements are cumulative, so a message the projector skips (a copy of an event
/// at or below its checkpoint, as a relay re-publishes one outside the duplicate window)
/// is acknowledged only once the events before it are committed: acknowledged at once,
/// it would acknowledge an event still unapplied before it, which a crash would then lose.
#[tokio::test]
async fn a_late_copy_behind_an_unapplied_event_does_not_acknowledge_it() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let probe = Probe::new(&db).await;
    let relay = spawn_relay(&db, &nats).await;
    let config = || ProjectorConfig {
        max_attempts: 1000,
        standby_retry: Duration::from_millis(100),
        ..projector_config()
    };
    let fine = patient_stream();
    let early = append_n(&store, fine, 0, 3).await;
    let projector = spawn_projector(&db, &store, &nats, Box::new(probe.clone()), config()).await;
    wait_checkpoint(&db, "probe", early[2]).await;
    projector.abort();

    // An event the projection cannot apply yet, then a late copy of an early event.
    let sick = patient_stream();
    probe.poison(&sick, true);
    let unapplied = append_n(&store, sick, 0, 1).await;
    let js = nats.jetstream();
    let bus = BusConfig::new(&nats.prefix, 1).unwrap();
    eventually(Duration::from_secs(30), "the event relayed", || async {
        let stream = js.get_stream(bus.events_stream()).await.unwrap();
        stream.get_info().await.unwrap().state.messages == 4
    })
    .await;
    let copied = store
        .read_stream(&fine, StreamVersion::EMPTY, 1)
        .await
        .unwrap()
        .remove(0);
    let (mut headers, body) = carelog_bus::encode(&copied);
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("late-copy-{}", Uuid::now_v7()).as_str(),
    );
    js.publish_with_headers(
        bus.subject(
            copied.header.stream_id.stream_type(),
            &copied.header.event_type,
        ),
        headers,
        body.into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    // A projector receives both, fails the event again and again, and dies.
    let projector = spawn_projector(&db, &store, &nats, Box::new(probe.clone()), config()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    projector.abort();
    assert!(applied_in_order(&db, &sick).await.is_empty());

    // Once the cause is fixed, the next projector gets the event again and applies it.
    probe.poison(&sick, false);
    let projector = spawn_projector(&db, &store, &nats, Box::new(probe.clone()), config()).await;
    wait_checkpoint(&db, "probe", unapplied[0]).await;
    assert_eq!(applied_in_order(&db, &sick).await, unapplied);
    assert!(
        applications(&db).await.values().all(|&n| n == 1),
        "each event applied once; the copy skipped"
    );
    projector.abort();
    relay.abort();
}

/// The positions in `audit_feed`, in order.
async fn applications_of_the_feed(db: &TestDb) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM audit_feed ORDER BY position")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// The audit feed reads clear metadata only: it never decrypts a person's payload. A
/// payload that cannot be opened (one bit flipped, so AES-GCM refuses it) is projected
/// and rebuilt like any other, where opening it would have dead-lettered it.
#[tokio::test]
async fn the_audit_feed_never_opens_a_persons_payload() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let stream = patient_stream();
    let positions = append_n(&store, stream, 0, 3).await;
    let tampered = positions[1];
    db.flip_payload_byte(tampered.0).await;
    // Read by stream, not with the gap-safe `read::all`: a transaction of another test's
    // database may hold the log's recent rows back for a moment (pg_snapshot_xmin is
    // cluster-wide).
    let events = store
        .read_stream(&stream, StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let bad = events.iter().find(|e| e.position == tampered).unwrap();
    assert!(
        store.open(bad).await.is_err(),
        "the flipped payload no longer opens"
    );

    let nats = TestNats::new().await;
    let relay = spawn_relay(&db, &nats).await;
    let projector =
        spawn_projector(&db, &store, &nats, Box::new(AuditFeed), projector_config()).await;
    wait_checkpoint(&db, AuditFeed::NAME, *positions.last().unwrap()).await;
    let projected: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM audit_feed ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let want: Vec<i64> = positions.iter().map(|p| p.0).collect();
    assert_eq!(projected, want);
    assert_eq!(dlq::depth(&db.pool).await.unwrap(), 0);
    projector.abort();
    relay.abort();

    let report = carelog_projector::rebuild(&db.pool, &store, &AuditFeed, |_, _| {})
        .await
        .expect("the rebuild opens no person's payload either");
    assert_eq!(report.checkpoint, *positions.last().unwrap());
    let rebuilt: Vec<i64> = sqlx::query_scalar("SELECT position FROM audit_feed ORDER BY position")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(rebuilt, want);
}

/// The crash test's `ack_wait`: the default, far longer than the catch-up it allows.
const ACK_WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_crash_between_commit_and_ack_applies_every_event_exactly_once_without_waiting_for_ack_wait(
) {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let probe = Probe::new(&db).await;
    let relay = spawn_relay(&db, &nats).await;

    let (a, b) = (patient_stream(), patient_stream());
    let mut positions = append_n(&store, a, 0, 15).await;
    positions.extend(append_n(&store, b, 0, 15).await);
    // Everything on the stream before the projector starts: its first batch is large.
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    eventually(Duration::from_secs(30), "all relayed", || async {
        match js.get_stream(format!("{}EVENTS", nats.prefix)).await {
            Ok(mut s) => s.info().await.is_ok_and(|i| i.state.messages >= 30),
            Err(_) => false,
        }
    })
    .await;

    let crashing = spawn_projector(
        &db,
        &store,
        &nats,
        Box::new(probe.clone()),
        ProjectorConfig {
            fail_after_commit: true,
            ack_wait: ACK_WAIT,
            ..projector_config()
        },
    )
    .await;
    tokio::time::timeout(Duration::from_secs(30), crashing)
        .await
        .expect("the crash hook stops the projector")
        .unwrap();
    let committed = carelog_store::projector::checkpoint(&db.pool, "probe")
        .await
        .unwrap();
    assert!(
        committed > Position(0),
        "a batch was committed before the crash"
    );
    assert!(!applications(&db).await.is_empty());

    // Restart, and keep appending while the unacknowledged batch is redelivered. The
    // consumer's ack_wait is long; the restarted projector must not wait for it.
    let projector = spawn_projector(
        &db,
        &store,
        &nats,
        Box::new(probe.clone()),
        ProjectorConfig {
            ack_wait: ACK_WAIT,
            ..projector_config()
        },
    )
    .await;
    positions.extend(append_n(&store, a, 15, 10).await);
    positions.sort();
    tokio::time::timeout(
        ACK_WAIT / 3,
        wait_checkpoint(&db, "probe", *positions.last().unwrap()),
    )
    .await
    .expect("caught up well before the unacknowledged messages' ack_wait ran out");
    // Any redelivery would come now and must be skipped.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let applied = applications(&db).await;
    assert_eq!(applied.len(), positions.len(), "no event skipped");
    for p in &positions {
        assert_eq!(applied.get(&p.0), Some(&1), "position {} applied once", p.0);
    }
    let order = applied_in_order(&db, &a).await;
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "a stream is applied in order");
    projector.abort();
    relay.abort();
}

#[tokio::test]
async fn a_poison_event_goes_to_the_dlq_its_stream_waits_and_retry_or_discard_release_it() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let probe = Probe::new(&db).await;
    let (a, b, c, d) = (
        patient_stream(),
        patient_stream(),
        patient_stream(),
        patient_stream(),
    );
    probe.poison(&a, true);
    probe.poison(&b, true);
    let relay = spawn_relay(&db, &nats).await;
    let projector = spawn_projector(
        &db,
        &store,
        &nats,
        Box::new(probe.clone()),
        projector_config(),
    )
    .await;

    let a1 = append_n(&store, a, 0, 2).await;
    let c1 = append_n(&store, c, 0, 3).await;
    let b1 = append_n(&store, b, 0, 2).await;
    let a2 = append_n(&store, a, 2, 1).await;
    let d1 = append_n(&store, d, 0, 3).await;
    wait_checkpoint(&db, "probe", d1[2]).await;

    // Other streams flowed; the poisoned ones did not.
    let applied = applications(&db).await;
    for p in c1.iter().chain(&d1) {
        assert_eq!(applied.get(&p.0), Some(&1));
    }
    for p in a1.iter().chain(&a2).chain(&b1) {
        assert!(!applied.contains_key(&p.0), "poisoned stream applied");
    }
    let entries = dlq::list(&db.pool, Some("probe")).await.unwrap();
    let of = |s: &StreamId| -> Vec<(Position, DlqStatus)> {
        entries
            .iter()
            .filter(|e| e.stream_id == s.to_string())
            .map(|e| (e.position, e.status))
            .collect()
    };
    assert_eq!(
        of(&a),
        vec![
            (a1[0], DlqStatus::Failed),
            (a1[1], DlqStatus::Waiting),
            (a2[0], DlqStatus::Waiting)
        ]
    );
    assert_eq!(
        of(&b),
        vec![(b1[0], DlqStatus::Failed), (b1[1], DlqStatus::Waiting)]
    );
    let failed_a = entries
        .iter()
        .find(|e| e.position == a1[0])
        .unwrap()
        .clone();
    assert_eq!(failed_a.attempts, 3, "max_attempts");
    assert_eq!(
        failed_a.error.as_deref(),
        Some("probe: this stream is poisoned")
    );
    assert!(failed_a.first_failed_at.unwrap() <= failed_a.last_failed_at.unwrap());
    assert_eq!(dlq::depth(&db.pool).await.unwrap(), 5);

    // A later event of the poisoned stream waits too.
    let a3 = append_n(&store, a, 3, 1).await;
    wait_checkpoint(&db, "probe", a3[0]).await;
    assert_eq!(dlq::depth(&db.pool).await.unwrap(), 6);
    assert!(applied_in_order(&db, &a).await.is_empty());

    // Retrying before the cause is fixed changes only the entry.
    let who = Metadata {
        actor_id: Some(Uuid::now_v7()),
        ..Metadata::operator("dlq retry", "req-dlq".into(), chrono::Utc::now())
    };
    let failed_b = entries
        .iter()
        .find(|e| e.position == b1[0])
        .unwrap()
        .clone();
    let op = |reason: Option<&str>| dlq::Operator {
        metadata: who.clone(),
        reason: reason.map(str::to_owned),
        notices: None,
    };
    let err = dlq::retry(&db.pool, &store, &probe, failed_b.id, op(None))
        .await
        .unwrap_err();
    assert!(matches!(err, dlq::DlqError::StillFailing(_)), "{err}");
    let again = dlq::list(&db.pool, Some("probe")).await.unwrap();
    let b_entry = again.iter().find(|e| e.id == failed_b.id).unwrap();
    assert_eq!(b_entry.attempts, 4);
    assert_eq!(b_entry.status, DlqStatus::Failed);
    assert_eq!(again.len(), 6, "nothing else changed");
    // A waiting entry cannot be retried on its own.
    let waiting_a = again.iter().find(|e| e.position == a1[1]).unwrap();
    assert!(matches!(
        dlq::retry(&db.pool, &store, &probe, waiting_a.id, op(None)).await,
        Err(dlq::DlqError::NotFailed)
    ));
    // A reason too long is refused before anything changes.
    assert!(matches!(
        dlq::retry(
            &db.pool,
            &store,
            &probe,
            failed_a.id,
            op(Some(&"x".repeat(501)))
        )
        .await,
        Err(dlq::DlqError::BadReason)
    ));
    assert_eq!(dlq::depth(&db.pool).await.unwrap(), 6);

    // Fix the cause, retry: stream A catches up, in order.
    probe.poison(&a, false);
    let released = dlq::retry(
        &db.pool,
        &store,
        &probe,
        failed_a.id,
        op(Some(" cause fixed ")),
    )
    .await
    .unwrap();
    assert_eq!(released.applied, 3);
    assert_eq!(released.failed, None);
    assert_eq!(
        applied_in_order(&db, &a).await,
        vec![a1[0], a1[1], a2[0], a3[0]]
    );
    // New events of A flow again, after the released ones.
    let a4 = append_n(&store, a, 4, 1).await;
    wait_checkpoint(&db, "probe", a4[0]).await;
    assert_eq!(
        applied_in_order(&db, &a).await,
        vec![a1[0], a1[1], a2[0], a3[0], a4[0]]
    );

    // Discard B's poison event: it is never applied; the one behind it is.
    probe.poison(&b, false);
    let discarded = dlq::discard(&db.pool, &store, &probe, failed_b.id, op(Some("bad data")))
        .await
        .unwrap();
    assert_eq!(discarded.applied, 1);
    assert_eq!(applied_in_order(&db, &b).await, vec![b1[1]]);
    assert_eq!(dlq::depth(&db.pool).await.unwrap(), 0);
    assert!(matches!(
        dlq::discard(&db.pool, &store, &probe, failed_b.id, op(None)).await,
        Err(dlq::DlqError::NotFound)
    ));

    // Retry and discard are recorded in the operations stream, with who did them and why.
    let ops = carelog_store::read::stream(&db.pool, &operations_stream(), StreamVersion(0), 100)
        .await
        .unwrap();
    let mut seen = Vec::new();
    for e in &ops {
        let Opened::Payload(p) = store.open(e).await.unwrap() else {
            panic!("operations are never erased")
        };
        assert_eq!(e.header.metadata.actor_id, who.actor_id);
        seen.push((
            e.header.event_type.as_str().to_owned(),
            p["projection"].as_str().unwrap().to_owned(),
            p["position"].as_i64().unwrap(),
            p["reason"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            (
                "DlqEntryRetried".to_owned(),
                "probe".to_owned(),
                a1[0].0,
                "cause fixed".to_owned()
            ),
            (
                "DlqEntryDiscarded".to_owned(),
                "probe".to_owned(),
                b1[0].0,
                "bad data".to_owned()
            ),
        ]
    );
    assert_eq!(released.audit_event, ops[0].header.event_id);
    projector.abort();
    relay.abort();
}

/// Every notice on `<prefix>DLQ` so far, in stream order, with its raw body and
/// `Nats-Msg-Id`.
async fn dlq_notices(
    nats: &TestNats,
) -> Vec<(carelog_bus::DeadLetterNotice, Vec<u8>, String, String)> {
    let js = nats.jetstream();
    let Ok(mut stream) = js.get_stream(format!("{}DLQ", nats.prefix)).await else {
        return Vec::new();
    };
    let state = stream.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let m = stream.get_raw_message(seq).await.unwrap();
        let notice = carelog_bus::dead_letter::decode(&m.payload).expect("a DLQ notice");
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        out.push((notice, m.payload.to_vec(), id, m.subject.to_string()));
    }
    out
}

#[tokio::test]
async fn dead_letters_are_announced_on_the_dlq_stream_without_phi() {
    use carelog_bus::dead_letter::{NoticePublisher, NoticeStatus};

    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let probe = Probe::new(&db).await;
    let a = patient_stream();
    probe.poison(&a, true);
    let relay = spawn_relay(&db, &nats).await;
    let projector = spawn_projector(
        &db,
        &store,
        &nats,
        Box::new(probe.clone()),
        projector_config(),
    )
    .await;

    // Two events of a poisoned stream, with a recognisable name in their payloads.
    let marker = format!("Ada Lovelace {}", Uuid::now_v7());
    let mut positions = Vec::new();
    for v in 0..2 {
        let ty = if v == 0 {
            "PatientRegistered"
        } else {
            "PatientUpdated"
        };
        let done = store
            .append(one(
                a,
                Expected::Exact(StreamVersion(v)),
                event(&a, ty, json!({"name": marker, "n": v})),
            ))
            .await
            .expect("append");
        positions.extend(done.positions);
    }
    wait_checkpoint(&db, "probe", positions[1]).await;
    let entries = dlq::list(&db.pool, Some("probe")).await.unwrap();
    assert_eq!(entries.len(), 2);
    let (failed, waiting) = (&entries[0], &entries[1]);
    assert_eq!(failed.status, DlqStatus::Failed);

    // The projector announced both, after their commit.
    eventually(Duration::from_secs(20), "two DLQ notices", || async {
        dlq_notices(&nats).await.len() >= 2
    })
    .await;
    let notices = dlq_notices(&nats).await;
    assert_eq!(notices.len(), 2, "one notice per dead letter");
    let (n, _, msg_id, subject) = &notices[0];
    assert_eq!(subject, &format!("{}dlq.probe", nats.prefix));
    assert_eq!(n.projection, "probe");
    assert_eq!(n.dlq_entry_id, failed.id);
    assert_eq!(n.event_id, failed.event_id);
    assert_eq!(n.position, positions[0]);
    assert_eq!(n.stream_id, a.to_string());
    assert_eq!(n.event_type.as_str(), "PatientRegistered");
    assert_eq!(n.status, NoticeStatus::Failed);
    assert_eq!(n.attempts, 3);
    assert_eq!(n.error.as_deref(), Some("probe: this stream is poisoned"));
    assert_eq!(n.first_failed_at, failed.first_failed_at);
    assert_eq!(n.last_failed_at, failed.last_failed_at);
    assert_eq!(msg_id, &format!("{}.failed.3", failed.id));
    let (w, _, _, _) = &notices[1];
    assert_eq!(w.dlq_entry_id, waiting.id);
    assert_eq!(w.status, NoticeStatus::Waiting);
    assert_eq!(w.position, positions[1]);
    assert_eq!(w.error, None);

    // A notice published again is a duplicate within the window.
    let client = carelog_bus::connect(&nats.url).await.unwrap();
    let bus = BusConfig::new(&nats.prefix, 1).unwrap();
    let publisher = NoticePublisher::new(client, &bus);
    assert_eq!(publisher.publish(std::slice::from_ref(n)).await, 1);
    assert_eq!(
        dlq_notices(&nats).await.len(),
        2,
        "deduplicated by Nats-Msg-Id"
    );

    // A retry with a publisher announces the settled entry and the released one.
    probe.poison(&a, false);
    let who = Metadata::operator("dlq retry", "req-dlq".into(), chrono::Utc::now());
    let operator = dlq::Operator {
        metadata: who,
        reason: None,
        notices: Some(&publisher),
    };
    let released = dlq::retry(&db.pool, &store, &probe, failed.id, operator)
        .await
        .unwrap();
    assert_eq!(released.applied, 1);
    let notices = dlq_notices(&nats).await;
    let states: Vec<(Uuid, NoticeStatus)> = notices
        .iter()
        .map(|(n, _, _, _)| (n.dlq_entry_id, n.status))
        .collect();
    assert_eq!(
        states,
        vec![
            (failed.id, NoticeStatus::Failed),
            (waiting.id, NoticeStatus::Waiting),
            (failed.id, NoticeStatus::Retried),
            (waiting.id, NoticeStatus::Released),
        ]
    );

    // No payload, sealed or open, in any notice.
    for (_, body, _, _) in &notices {
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("Ada Lovelace"),
            "plaintext in a notice: {text}"
        );
        assert!(!text.contains("payload"), "{text}");
    }
    projector.abort();
    relay.abort();
}
