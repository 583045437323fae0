//! The relay (crates/bus): every event of the log reaches the JetStream stream exactly
//! once, in position order, sealed — through a NATS outage, with two relays at once, and
//! when the active relay dies.

use std::time::{Duration, Instant};

use carelog_bus::{BusConfig, Relay, RelayConfig, RelayStatus};
use carelog_devstack::NatsServer;
use carelog_domain::{EventId, Position, StreamVersion};
use carelog_store::{EventStore, Expected, StoredEvent};
use serde_json::json;
use uuid::Uuid;

use crate::support::eventually;
use crate::support::nats::TestNats;
use crate::support::{self, event, one, patient_stream, TestDb};

/// A test's relay settings: quick retries so outages and fail-overs are short.
fn relay_config(prefix: &str) -> RelayConfig {
    let mut cfg = RelayConfig::new(BusConfig::new(prefix, 1).expect("valid prefix"));
    cfg.standby_retry = Duration::from_millis(200);
    cfg.min_backoff = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_millis(500);
    cfg.ack_timeout = Duration::from_secs(2);
    cfg
}

/// Starts a relay on its own NATS connection; returns its task and status.
async fn spawn_relay(
    db: &TestDb,
    nats_url: &str,
    prefix: &str,
) -> (tokio::task::JoinHandle<()>, RelayStatus) {
    spawn_relay_with(db, nats_url, relay_config(prefix)).await
}

/// As [`spawn_relay`], with these settings.
async fn spawn_relay_with(
    db: &TestDb,
    nats_url: &str,
    cfg: RelayConfig,
) -> (tokio::task::JoinHandle<()>, RelayStatus) {
    let client = carelog_bus::connect(nats_url)
        .await
        .expect("NATS_URL parses");
    let relay = Relay::new(db.pool.clone(), client, cfg).expect("relay");
    let status = relay.status();
    (
        tokio::spawn(relay.run(std::future::pending::<()>())),
        status,
    )
}

/// As [`spawn_relay_with`], woken by `store`'s group commits and handed their events
/// ([`Relay::wake_on_commits`]); returns once the relay is active.
async fn spawn_relay_on_commits(
    db: &TestDb,
    store: &EventStore,
    nats_url: &str,
    cfg: RelayConfig,
) -> (tokio::task::JoinHandle<()>, RelayStatus) {
    let client = carelog_bus::connect(nats_url).await.unwrap();
    let relay = Relay::new(db.pool.clone(), client, cfg)
        .expect("relay")
        .wake_on_commits(store.commits());
    let status = relay.status();
    let task = tokio::spawn(relay.run(std::future::pending::<()>()));
    eventually(Duration::from_secs(10), "the relay active", || async {
        status.is_active()
    })
    .await;
    (task, status)
}

/// How an event of [`Writers`] is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    /// The relay's own store, group-committed: handed over to the relay.
    Committer,
    /// The relay's own store, in a caller's transaction: in the log only.
    CallersTx,
    /// A second store on the same database, as another node's.
    OtherNode,
}

/// The writers of the hand-over tests: the relay's process's store, another node's, and
/// the marker their payloads carry (it must never reach NATS in clear).
#[derive(Clone)]
struct Writers {
    store: EventStore,
    other_node: EventStore,
    pool: sqlx::PgPool,
    marker: String,
}

impl Writers {
    fn new(db: &TestDb) -> Self {
        let keyring = support::keyring();
        Self {
            store: support::store(db, keyring.clone()),
            other_node: support::store(db, keyring),
            pool: db.pool.clone(),
            marker: format!("PLAINTEXT-{}", Uuid::now_v7().simple()),
        }
    }

    /// Registers a new patient stream, `by` the given path.
    async fn append(&self, by: By) -> carelog_store::Appended {
        let s = patient_stream();
        let req = one(
            s,
            Expected::Any,
            event(&s, "PatientRegistered", json!({"name": self.marker})),
        );
        match by {
            By::Committer => self.store.append(req).await.unwrap(),
            By::OtherNode => self.other_node.append(req).await.unwrap(),
            By::CallersTx => {
                let mut tx = self.pool.begin().await.unwrap();
                let appended = self.store.append_in_tx(&mut tx, req).await.unwrap();
                tx.commit().await.unwrap();
                appended
            }
        }
    }
}

/// Waits, at most `within`, until JetStream acknowledged `appended`'s events to the relay.
async fn relayed(status: &RelayStatus, appended: &carelog_store::Appended, within: Duration) {
    eventually(within, "the events relayed", || async {
        status.acknowledged() >= appended.last_position()
    })
    .await;
}

/// One message as read back from the stream.
struct Relayed {
    subject: String,
    msg_id: String,
    position: String,
    body: Vec<u8>,
}

/// Every message of `<prefix>EVENTS`, in stream order (empty when it does not exist, or
/// while a NATS just restarted does not take connections yet: callers poll).
async fn stream_messages(nats_url: &str, prefix: &str) -> Vec<Relayed> {
    let Ok(client) = async_nats::connect(nats_url).await else {
        return Vec::new();
    };
    let js = async_nats::jetstream::new(client);
    let Ok(stream) = js.get_stream(format!("{prefix}EVENTS")).await else {
        return Vec::new();
    };
    let state = stream.get_info().await.expect("stream info").state;
    let mut out = Vec::new();
    for seq in state.first_sequence.max(1)..=state.last_sequence {
        let m = stream
            .get_raw_message(seq)
            .await
            .expect("message by sequence");
        let header = |name: &str| {
            m.headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        out.push(Relayed {
            subject: m.subject.to_string(),
            msg_id: header("Nats-Msg-Id"),
            position: header("Carelog-Position"),
            body: m.payload.to_vec(),
        });
    }
    out
}

/// The whole log, in position order, once every committed event is visible to the
/// gap-safe reader (a transaction of another test can hold the cluster's xmin back).
async fn log(db: &TestDb) -> Vec<StoredEvent> {
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    loop {
        let events = carelog_store::read::all(&db.pool, Position(0), 100_000)
            .await
            .expect("read the log");
        if events.len() as i64 >= committed {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many messages `<prefix>EVENTS` holds (0 when it does not exist).
async fn stream_len(js: &async_nats::jetstream::Context, prefix: &str) -> u64 {
    match js.get_stream(format!("{prefix}EVENTS")).await {
        Ok(stream) => stream.get_info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Waits until the stream holds as many messages as the log has events.
async fn wait_all_relayed(db: &TestDb, nats_url: &str, prefix: &str) {
    let want = log(db).await.len();
    eventually(
        Duration::from_secs(60),
        "every event on the stream",
        || async { stream_messages(nats_url, prefix).await.len() >= want },
    )
    .await;
}

/// The stream holds exactly the log: the same events, once each, in position order, with
/// type-only subjects, the event id as Nats-Msg-Id, and no plaintext.
async fn assert_stream_is_the_log(db: &TestDb, nats_url: &str, prefix: &str, marker: &str) {
    let log = log(db).await;
    let messages = stream_messages(nats_url, prefix).await;
    let want: Vec<EventId> = log.iter().map(|e| e.header.event_id).collect();
    let got: Vec<EventId> = messages
        .iter()
        .map(|m| {
            carelog_bus::decode(&m.body)
                .expect("a carelog message")
                .header
                .event_id
        })
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "as many messages as events (no loss, no duplicate)"
    );
    assert_eq!(got, want, "the stream is the log, in position order");
    for (m, e) in messages.iter().zip(&log) {
        let h = &e.header;
        assert_eq!(
            m.subject,
            format!(
                "{prefix}events.{}.{}",
                h.stream_id.stream_type(),
                h.event_type
            )
        );
        assert_eq!(m.msg_id, h.event_id.0.to_string());
        assert_eq!(m.position, e.position.0.to_string());
        let body = String::from_utf8(m.body.clone()).expect("JSON body");
        assert!(!body.contains(marker), "plaintext on NATS: {body}");
        assert!(!m.subject.contains(&h.stream_id.uuid().to_string()));
        let back = carelog_bus::decode(&m.body).unwrap();
        assert_eq!(back.position, e.position);
        assert_eq!(back.header, e.header);
        assert_eq!(back.payload, e.payload, "the sealed payload, as stored");
        assert_eq!((back.prev_hash, back.hash), (e.prev_hash, e.hash));
    }
}

/// Appends `n` events carrying `marker` to a new patient stream, one append each.
async fn append_some(store: &EventStore, n: usize, marker: &str) {
    let s = patient_stream();
    for i in 0..n {
        store
            .append(one(
                s,
                Expected::Exact(StreamVersion(i as i64)),
                event(
                    &s,
                    if i == 0 {
                        "PatientRegistered"
                    } else {
                        "PatientUpdated"
                    },
                    json!({"name": marker, "n": i}),
                ),
            ))
            .await
            .expect("append");
    }
}

/// Starts the audit_feed projector on its own NATS connection.
async fn spawn_audit_projector(
    db: &TestDb,
    store: &EventStore,
    nats_url: &str,
    prefix: &str,
) -> tokio::task::JoinHandle<()> {
    let projector = carelog_projector::Projector::new(
        db.pool.clone(),
        store.clone(),
        carelog_bus::connect(nats_url).await.unwrap(),
        BusConfig::new(prefix, 1).unwrap(),
        Box::new(carelog_projector::AuditFeed),
        carelog_projector::ProjectorConfig::default(),
    )
    .unwrap();
    tokio::spawn(projector.run(std::future::pending::<()>()))
}

/// Waits until the audit_feed projection's checkpoint is the log's head.
async fn wait_projected(db: &TestDb) {
    let last = log(db).await.last().unwrap().position;
    eventually(
        Duration::from_secs(60),
        "the read model at the head",
        || async {
            carelog_store::projector::checkpoint(&db.pool, "audit_feed")
                .await
                .is_ok_and(|p| p == last)
        },
    )
    .await;
}

/// audit_feed holds every event of the log exactly once, in position order.
async fn assert_audit_feed_is_the_log(db: &TestDb) {
    let projected: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM audit_feed ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let logged: Vec<Uuid> = log(db).await.iter().map(|e| e.header.event_id.0).collect();
    assert_eq!(projected, logged, "each event in the read model once");
}

fn unique_prefix() -> String {
    format!("r{}_", Uuid::now_v7().simple())
}

#[tokio::test]
async fn nats_stopped_commands_succeed_and_every_event_reaches_the_stream_and_the_read_model() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let mut nats = NatsServer::temporary().await.expect("private nats-server");
    let url = nats.url();
    let prefix = unique_prefix();
    let marker = format!("PLAINTEXT-{}", Uuid::now_v7().simple());
    let (relay, status) = spawn_relay(&db, &url, &prefix).await;
    // A projector on the same NATS: it must ride out the outage too.
    let projector = spawn_audit_projector(&db, &store, &url, &prefix).await;

    append_some(&store, 5, &marker).await;
    wait_all_relayed(&db, &url, &prefix).await;
    assert!(status.is_active());

    nats.stop().await.expect("stop NATS");
    let started = Instant::now();
    for _ in 0..4 {
        append_some(&store, 5, &marker).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "appends must not wait on NATS (took {:?})",
        started.elapsed()
    );
    // Longer than the acknowledgement timeout: the relay's publishes fail and are retried.
    tokio::time::sleep(Duration::from_secs(4)).await;

    nats.start()
        .await
        .expect("start NATS again on the same port");
    assert_eq!(nats.url(), url);
    wait_all_relayed(&db, &url, &prefix).await;
    assert_stream_is_the_log(&db, &url, &prefix, &marker).await;
    let last = log(&db).await.last().unwrap().position;
    eventually(
        Duration::from_secs(10),
        "checkpoint at the head",
        || async {
            carelog_store::relay::checkpoint(&db.pool, &prefix)
                .await
                .unwrap()
                == Some(last)
        },
    )
    .await;
    assert_eq!(
        carelog_store::relay::lag(&db.pool, &prefix).await.unwrap(),
        0
    );
    // Every event reached the read model too, exactly once.
    wait_projected(&db).await;
    assert_audit_feed_is_the_log(&db).await;
    projector.abort();
    relay.abort();
}

/// Terminates every session of the test database but the caller's: what a PostgreSQL
/// restart or fail-over does to carelog's connections.
async fn terminate_sessions(db: &TestDb) -> i64 {
    let mut admin = db.admin().await;
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .expect("terminate the sessions")
}

#[tokio::test]
async fn every_worker_rides_out_postgres_dropping_its_sessions() {
    // The committers, the relay and the projector each hold a connection of their own for
    // good; when PostgreSQL drops them all, the next append must still succeed (on a new
    // connection) and every event still reach the stream and the read model, once each.
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let prefix = nats.prefix.clone();
    let marker = format!("PLAINTEXT-{}", Uuid::now_v7().simple());
    let (relay, status) = spawn_relay(&db, &nats.url, &prefix).await;
    let projector = spawn_audit_projector(&db, &store, &nats.url, &prefix).await;

    for round in 0..3 {
        append_some(&store, 5, &marker).await;
        wait_all_relayed(&db, &nats.url, &prefix).await;
        wait_projected(&db).await;
        if round < 2 {
            let dropped = terminate_sessions(&db).await;
            assert!(
                dropped >= 3,
                "committer, relay and projector sessions: {dropped}"
            );
        }
    }
    assert!(status.is_active());
    assert_stream_is_the_log(&db, &nats.url, &prefix, &marker).await;
    let last = log(&db).await.last().unwrap().position;
    eventually(
        Duration::from_secs(10),
        "checkpoint at the head",
        || async {
            carelog_store::relay::checkpoint(&db.pool, &prefix)
                .await
                .is_ok_and(|c| c == Some(last))
        },
    )
    .await;
    assert_audit_feed_is_the_log(&db).await;
    projector.abort();
    relay.abort();
}

#[tokio::test]
async fn a_relay_woken_by_its_processs_commits_needs_no_notification_and_no_poll() {
    // No PostgreSQL notification and a poll too slow for the test: only the store's own
    // commit signal can bring the new events to the stream in time.
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let mut cfg = relay_config(&nats.prefix);
    cfg.listen = false;
    cfg.idle_poll = Duration::from_secs(60);
    let (relay, status) = spawn_relay_on_commits(&db, &store, &nats.url, cfg).await;
    let marker = &format!("PLAINTEXT-{}", Uuid::now_v7().simple());
    for _ in 0..3 {
        // Idle first: past the quick re-reads that follow a wake-up.
        tokio::time::sleep(Duration::from_millis(300)).await;
        append_some(&store, 2, marker).await;
        let head = log(&db).await.last().unwrap().position;
        eventually(
            Duration::from_secs(5),
            "the new events acknowledged",
            || async { status.acknowledged() >= head },
        )
        .await;
    }
    assert_stream_is_the_log(&db, &nats.url, &nats.prefix, marker).await;
    relay.abort();
}

/// The relay publishes its process's group commits from what the committers hand over,
/// and reads the log for everything else: appends committed in a caller's transaction
/// (never handed over) and a second store's appends (as another node's), which sit
/// between the handed-over ones. No notification and no poll here: only the process's
/// own commits wake the relay, so each time it finds a run that begins after a position
/// it was not handed, and must read that one from the log rather than skip it. Then the
/// same, with every kind of append racing. The stream must be exactly the log, in order.
#[tokio::test]
async fn a_relay_given_its_processs_commits_publishes_them_and_reads_the_rest_from_the_log() {
    let db = TestDb::new().await;
    let writers = Writers::new(&db);
    let nats = TestNats::new().await;
    let mut cfg = relay_config(&nats.prefix);
    cfg.batch = 16;
    cfg.listen = false;
    cfg.idle_poll = Duration::from_secs(60);
    let (relay, status) = spawn_relay_on_commits(&db, &writers.store, &nats.url, cfg).await;
    for by in [By::CallersTx, By::OtherNode, By::CallersTx, By::OtherNode] {
        writers.append(by).await;
        let woken = writers.append(By::Committer).await;
        relayed(&status, &woken, Duration::from_secs(5)).await;
    }
    let racing: Vec<_> = (0..60)
        .map(|i| {
            let writers = writers.clone();
            let by = [By::CallersTx, By::OtherNode, By::Committer][i % 3];
            tokio::spawn(async move { writers.append(by).await })
        })
        .collect();
    for r in racing {
        r.await.unwrap();
    }
    let last = writers.append(By::Committer).await;
    relayed(&status, &last, Duration::from_secs(10)).await;
    assert_eq!(log(&db).await.len(), 69);
    assert_stream_is_the_log(&db, &nats.url, &nats.prefix, &writers.marker).await;
    let handed = status.handed_over();
    assert!(
        (5..69).contains(&handed),
        "the process's own events handed over, the others read: {handed}"
    );
    relay.abort();
}

/// With notifications on, a relay handed its process's commits skips the notifications
/// of its process's committers (they wake it themselves), so it never reads their events
/// back, and still wakes at once for another node's appends and for appends committed in
/// a caller's transaction (no poll here).
#[tokio::test]
async fn a_relay_skips_its_committers_notifications_and_follows_everyone_elses() {
    let db = TestDb::new().await;
    let writers = Writers::new(&db);
    let nats = TestNats::new().await;
    let mut cfg = relay_config(&nats.prefix);
    cfg.idle_poll = Duration::from_secs(60);
    let (relay, status) = spawn_relay_on_commits(&db, &writers.store, &nats.url, cfg).await;
    let mut own = 0;
    for i in 0..12 {
        let by = [By::OtherNode, By::CallersTx, By::Committer, By::Committer][i % 4];
        if by == By::Committer {
            own += 1;
        }
        relayed(&status, &writers.append(by).await, Duration::from_secs(5)).await;
    }
    assert_stream_is_the_log(&db, &nats.url, &nats.prefix, &writers.marker).await;
    assert_eq!(status.handed_over(), own, "every own event handed over");
    relay.abort();
}

#[tokio::test]
async fn a_pipelined_relay_keeps_log_order_when_nats_restarts_with_batches_in_flight() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let mut nats = NatsServer::temporary().await.expect("private nats-server");
    let url = nats.url();
    let prefix = unique_prefix();
    let marker = format!("PLAINTEXT-{}", Uuid::now_v7().simple());
    // Batches of 3, so the relay has several batches in flight while appends go on.
    let mut cfg = relay_config(&prefix);
    cfg.batch = 3;
    let (relay, status) = spawn_relay_with(&db, &url, cfg).await;

    // Four writers, 60 events each, appended while NATS goes down and comes back.
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, marker) = (store.clone(), marker.clone());
            tokio::spawn(async move { append_some(&store, 60, &marker).await })
        })
        .collect();
    eventually(Duration::from_secs(30), "the relay publishing", || async {
        status.published() >= 30
    })
    .await;
    nats.stop().await.expect("stop NATS");
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.start()
        .await
        .expect("start NATS again on the same port");
    for w in writers {
        w.await.expect("writer");
    }
    assert_eq!(log(&db).await.len(), 240);
    wait_all_relayed(&db, &url, &prefix).await;
    assert_stream_is_the_log(&db, &url, &prefix, &marker).await;
    relay.abort();
}

#[tokio::test]
async fn a_relay_started_while_nats_is_down_publishes_everything_once_it_is_up() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let mut nats = NatsServer::temporary().await.expect("private nats-server");
    let url = nats.url();
    nats.stop().await.unwrap();
    let prefix = unique_prefix();
    let marker = format!("PLAINTEXT-{}", Uuid::now_v7().simple());

    let (relay, _status) = spawn_relay(&db, &url, &prefix).await;
    append_some(&store, 7, &marker).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    nats.start().await.unwrap();
    wait_all_relayed(&db, &url, &prefix).await;
    assert_stream_is_the_log(&db, &url, &prefix, &marker).await;
    relay.abort();
}

#[tokio::test]
async fn two_relays_at_once_lose_nothing_reorder_nothing_and_fail_over() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let prefix = nats.prefix.clone();
    let marker = format!("PLAINTEXT-{}", Uuid::now_v7().simple());

    let (a, a_status) = spawn_relay(&db, &nats.url, &prefix).await;
    let (b, b_status) = spawn_relay(&db, &nats.url, &prefix).await;

    // Concurrent writers while both relays run.
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, marker) = (store.clone(), marker.clone());
            tokio::spawn(async move { append_some(&store, 25, &marker).await })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    wait_all_relayed(&db, &nats.url, &prefix).await;
    assert_stream_is_the_log(&db, &nats.url, &prefix, &marker).await;
    assert!(
        a_status.is_active() != b_status.is_active(),
        "exactly one relay is active (a: {}, b: {})",
        a_status.is_active(),
        b_status.is_active()
    );

    // Kill the active one mid-stream: the standby takes over from the checkpoint.
    let (active, standby_status) = if a_status.is_active() {
        (a, b_status.clone())
    } else {
        (b, a_status.clone())
    };
    let before = log(&db).await.len() as u64;
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (store, marker) = (store.clone(), marker.clone());
            tokio::spawn(async move { append_some(&store, 60, &marker).await })
        })
        .collect();
    let js = nats.jetstream();
    eventually(
        Duration::from_secs(20),
        "the active relay publishes some new events",
        || async { stream_len(&js, &prefix).await >= before + 10 },
    )
    .await;
    active.abort();
    let _ = active.await;
    for w in writers {
        w.await.unwrap();
    }
    eventually(
        Duration::from_secs(20),
        "the standby takes over",
        || async { standby_status.is_active() },
    )
    .await;
    wait_all_relayed(&db, &nats.url, &prefix).await;
    assert_stream_is_the_log(&db, &nats.url, &prefix, &marker).await;
    // The checkpoint follows the acknowledgements.
    let last = log(&db).await.last().map(|e| e.position);
    eventually(
        Duration::from_secs(10),
        "checkpoint at the head",
        || async {
            carelog_store::relay::checkpoint(&db.pool, &prefix)
                .await
                .unwrap()
                == last
        },
    )
    .await;
}

#[tokio::test]
async fn streams_are_ensured_idempotently_under_the_prefix() {
    let nats = TestNats::new().await;
    let js = nats.jetstream();
    let cfg = BusConfig::new(nats.prefix.clone(), 1).unwrap();
    carelog_bus::ensure_streams(&js, &cfg)
        .await
        .expect("create");
    carelog_bus::ensure_streams(&js, &cfg).await.expect("again");
    let mut names = nats.streams().await;
    names.sort();
    assert_eq!(
        names,
        [
            format!("{}DLQ", nats.prefix),
            format!("{}EVENTS", nats.prefix)
        ]
    );
    let info = js
        .get_stream(format!("{}EVENTS", nats.prefix))
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.subjects, [format!("{}events.>", nats.prefix)]);
    assert_eq!(info.config.num_replicas, 1);
    assert!(info.config.duplicate_window >= Duration::from_secs(60));
    assert!(
        BusConfig::new("a.b", 1).is_err(),
        "a prefix with a dot cannot name a stream"
    );
}

/// One event of `s` whose payload and metadata serialise to exactly `bytes`, its
/// payload a note starting with `marker`.
fn event_of_size(
    s: &carelog_domain::StreamId,
    bytes: usize,
    marker: &str,
) -> carelog_domain::NewEvent {
    let mut ev = event(s, "PatientRegistered", json!({"note": marker}));
    let base = serde_json::to_vec(&ev.payload).unwrap().len()
        + serde_json::to_vec(&ev.metadata).unwrap().len();
    ev.payload = json!({"note": format!("{marker}{}", "y".repeat(bytes - base))});
    ev
}

#[tokio::test]
async fn the_largest_event_the_store_takes_is_relayed_and_a_larger_one_changes_nothing() {
    use carelog_store::{AppendError, MAX_EVENT_BYTES};
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let s = patient_stream();
    let marker = format!("large-{}", Uuid::now_v7().simple());

    let refused = store
        .append(one(
            s,
            Expected::Exact(StreamVersion(0)),
            event_of_size(&s, MAX_EVENT_BYTES + 1, &marker),
        ))
        .await;
    assert!(
        matches!(refused, Err(AppendError::TooLarge { bytes, max })
            if bytes == MAX_EVENT_BYTES + 1 && max == MAX_EVENT_BYTES),
        "{refused:?}"
    );
    assert!(log(&db).await.is_empty(), "nothing appended");
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_keys WHERE subject_id = $1")
        .bind(carelog_domain::SubjectId::of_stream(&s).to_string())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(keys, 0, "a refused append creates no data key");

    // The largest event, then a small one behind it: both reach the stream, in order.
    store
        .append(one(
            s,
            Expected::Exact(StreamVersion(0)),
            event_of_size(&s, MAX_EVENT_BYTES, &marker),
        ))
        .await
        .expect("an event of exactly the limit is taken");
    store
        .append(one(
            s,
            Expected::Exact(StreamVersion(1)),
            event(&s, "PatientUpdated", json!({"n": 1})),
        ))
        .await
        .expect("append after it");
    let (relay, _) = spawn_relay(&db, &nats.url, &nats.prefix).await;
    wait_all_relayed(&db, &nats.url, &nats.prefix).await;
    assert_stream_is_the_log(&db, &nats.url, &nats.prefix, &marker).await;
    let largest = stream_messages(&nats.url, &nats.prefix).await[0].body.len();
    assert!(
        largest > MAX_EVENT_BYTES,
        "the large event was relayed whole"
    );
    assert!(largest <= carelog_bus::MAX_MESSAGE_BYTES, "{largest} bytes");
    relay.abort();
}
