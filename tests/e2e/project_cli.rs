//! `carelog project` and `carelog dlq list|retry|discard` as an operator runs them: the
//! binary, against a test database and a test NATS prefix.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use carelog_bus::{BusConfig, Relay, RelayConfig};
use carelog_crypto::{Keyring, MasterKey};
use carelog_domain::operations::operations_stream;
use carelog_domain::StreamVersion;
use carelog_projector::AuditFeed;
use carelog_store::projector::{self as pstore, DlqStatus, NewDlqEntry};
use carelog_store::{EventStore, Expected, StoredEvent};
use serde_json::json;
use uuid::Uuid;

use crate::support::nats::TestNats;
use crate::support::{self, event, one, patient_stream, TestDb};

/// The keys the binary is started with (and the test's store uses).
struct Keys {
    master: MasterKey,
    token: String,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            master: MasterKey::generate(),
            token: carelog_crypto::token_key::generate_paserk_secret(),
        }
    }

    fn store(&self, db: &TestDb) -> EventStore {
        support::store(db, Keyring::new(self.master.clone(), []))
    }
}

fn command(db: &TestDb, keys: &Keys, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carelog"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("CARELOG_MASTER_KEY", keys.master.to_hex())
        .env("CARELOG_TOKEN_KEY", &keys.token)
        .env("LOG_FORMAT", "pretty")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd
}

fn carelog(db: &TestDb, keys: &Keys, args: &[&str]) -> Output {
    command(db, keys, args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run carelog")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Appends one patient event; returns it as stored.
async fn append_one(db: &TestDb, store: &EventStore) -> StoredEvent {
    let s = patient_stream();
    let ev = event(&s, "PatientRegistered", json!({"name": "Ada"}));
    let id = ev.event_id;
    store
        .append(one(s, Expected::Exact(StreamVersion(0)), ev))
        .await
        .expect("append");
    pstore::read_event(&db.pool, id)
        .await
        .unwrap()
        .expect("the event just appended")
}

async fn audit_feed_has(db: &TestDb, event: &StoredEvent) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM audit_feed WHERE event_id = $1)")
        .bind(event.header.event_id.0)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn dlq_list_of_an_empty_queue_and_retry_of_an_unknown_entry() {
    let db = TestDb::new().await;
    let keys = Keys::new();

    let out = carelog(&db, &keys, &["dlq", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the header: {stdout}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("PROJECTION"));

    let out = carelog(&db, &keys, &["dlq", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!([]));

    let out = carelog(&db, &keys, &["dlq", "list", "--projection", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let id = Uuid::now_v7().to_string();
    for verb in ["retry", "discard"] {
        let out = carelog(&db, &keys, &["dlq", verb, &id]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("not found"), "{}", text(&out));
    }
    let out = carelog(&db, &keys, &["dlq", "retry", "not-a-uuid"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[tokio::test]
async fn dlq_retry_applies_the_event_and_records_the_operator() {
    let db = TestDb::new().await;
    let keys = Keys::new();
    let store = keys.store(&db);
    let ev = append_one(&db, &store).await;

    // A failed dead letter of audit_feed, as its projector would have left it.
    let mut tx = db.pool.begin().await.unwrap();
    pstore::dlq_insert(
        &mut tx,
        NewDlqEntry {
            projection: AuditFeed::NAME,
            event: &ev,
            status: DlqStatus::Failed,
            error: Some("database error SQLSTATE 40001"),
            attempts: 5,
            first_failed_at: Some(chrono::Utc::now()),
        },
    )
    .await
    .unwrap();
    pstore::save_checkpoint(&mut tx, AuditFeed::NAME, ev.position)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let out = carelog(&db, &keys, &["dlq", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["projection"], AuditFeed::NAME);
    assert_eq!(rows[0]["status"], "failed");
    assert_eq!(rows[0]["attempts"], 5);
    assert_eq!(rows[0]["position"], ev.position.0);
    assert_eq!(rows[0]["event_id"], ev.header.event_id.0.to_string());
    let id = rows[0]["id"].as_str().unwrap().to_owned();

    let table = carelog(&db, &keys, &["dlq", "list"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.contains(&id) && table.contains("SQLSTATE 40001"),
        "{table}"
    );
    assert!(!audit_feed_has(&db, &ev).await);

    let out = carelog(&db, &keys, &["dlq", "retry", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(audit_feed_has(&db, &ev).await, "retried into audit_feed");
    assert_eq!(carelog_projector::dlq::depth(&db.pool).await.unwrap(), 0);

    let ops = carelog_store::read::stream(&db.pool, &operations_stream(), StreamVersion(0), 10)
        .await
        .unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].header.event_type.as_str(), "DlqEntryRetried");
    assert_eq!(ops[0].header.metadata.roles, vec!["OPERATOR".to_owned()]);

    // Done: a second retry finds nothing.
    let again = carelog(&db, &keys, &["dlq", "retry", &id]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
}

#[tokio::test]
async fn carelog_project_projects_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let keys = Keys::new();
    let store = keys.store(&db);
    let nats = TestNats::new().await;

    let mut cfg = RelayConfig::new(BusConfig::new(&nats.prefix, 1).unwrap());
    cfg.standby_retry = Duration::from_millis(200);
    let relay = Relay::new(
        db.pool.clone(),
        carelog_bus::connect(&nats.url).await.unwrap(),
        cfg,
    )
    .unwrap();
    let relay = tokio::spawn(relay.run(std::future::pending::<()>()));

    let log = std::env::temp_dir().join(format!("carelog-project-{}.log", Uuid::now_v7()));
    let mut child = command(
        &db,
        &keys,
        &["project"],
        &[
            ("NATS_URL", nats.url.as_str()),
            ("CARELOG_NATS_PREFIX", nats.prefix.as_str()),
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .expect("spawn carelog project");
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(append_one(&db, &store).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for ev in &events {
        while !audit_feed_has(&db, ev).await {
            assert!(
                child.try_wait().unwrap().is_none(),
                "carelog project exited: {}",
                logs()
            );
            assert!(Instant::now() < deadline, "not projected: {}", logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("carelog project did not stop on SIGTERM: {}", logs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", logs());
    assert!(logs().contains("projector stopped"), "{}", logs());
    let _ = std::fs::remove_file(&log);
    relay.abort();
}

/// Whether some session holds the projector lock of `name` under `prefix`.
async fn projector_lock_held(db: &TestDb, prefix: &str, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND objsubid = 1 AND objid::bigint = \
         (hashtext('carelog.projector.' || $1 || '.' || $2)::bigint & 4294967295))",
    )
    .bind(prefix)
    .bind(name)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn one_projector_per_projection_is_active_and_a_standby_takes_over_after_a_stop() {
    use carelog_projector::{Projector, ProjectorConfig};

    let db = TestDb::new().await;
    let keys = Keys::new();
    let store = keys.store(&db);
    let nats = TestNats::new().await;
    let bus = BusConfig::new(&nats.prefix, 1).unwrap();
    let relay = Relay::new(
        db.pool.clone(),
        carelog_bus::connect(&nats.url).await.unwrap(),
        RelayConfig::new(bus.clone()),
    )
    .unwrap();
    let relay = tokio::spawn(relay.run(std::future::pending::<()>()));
    let cfg = ProjectorConfig {
        standby_retry: Duration::from_millis(100),
        ack_wait: Duration::from_secs(1),
        ..ProjectorConfig::default()
    };
    let projector = |cfg: ProjectorConfig| {
        let (db, store, bus, url) = (
            db.pool.clone(),
            store.clone(),
            bus.clone(),
            nats.url.clone(),
        );
        async move {
            Projector::new(
                db,
                store,
                carelog_bus::connect(&url).await.unwrap(),
                bus,
                Box::new(AuditFeed),
                cfg,
            )
            .unwrap()
        }
    };
    let wait_projected = |ev: StoredEvent| {
        let db = &db;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !audit_feed_has(db, &ev).await {
                assert!(Instant::now() < deadline, "not projected");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let a = tokio::spawn(projector(cfg.clone()).await.run(async {
        let _ = stopped_a.await;
    }));
    wait_projected(append_one(&db, &store).await).await;
    assert!(projector_lock_held(&db, &nats.prefix, AuditFeed::NAME).await);

    // B stands by while A is active.
    let b = tokio::spawn(projector(cfg).await.run(std::future::pending::<()>()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.is_finished());

    // A stops on request (between batches) and releases the lock; B takes over.
    stop_a.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), a)
        .await
        .expect("A stops on request")
        .unwrap();
    wait_projected(append_one(&db, &store).await).await;
    assert!(projector_lock_held(&db, &nats.prefix, AuditFeed::NAME).await);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "each event applied once");
    b.abort();
    relay.abort();
}
