//! `carelog project`, `carelog serve --no-projectors` and `carelog dlq
//! list|retry|discard` as an operator runs them: the binary, against a test database and
//! a test NATS prefix.

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

/// A child `carelog` process, stopped with SIGTERM (then killed) on drop.
struct Child {
    child: std::process::Child,
    log: std::path::PathBuf,
    what: &'static str,
}

impl Child {
    fn spawn(mut cmd: Command, what: &'static str) -> Child {
        let log = std::env::temp_dir().join(format!("carelog-{what}-{}.log", Uuid::now_v7()));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn carelog {what}: {e}"));
        Child { child, log, what }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with its logs) when it has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("carelog {} exited ({status}): {}", self.what, self.logs());
        }
    }

    /// SIGTERM, then waits (at most 20 s) for a clean exit.
    async fn stop(mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "carelog {} did not stop on SIGTERM: {}",
                self.what,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status.code(), Some(0), "{}", self.logs());
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("address")
        .port()
}

/// Whether `<prefix>EVENTS` holds the event (published by the relay).
async fn in_events_stream(nats: &TestNats, event: &StoredEvent) -> bool {
    let js = nats.jetstream();
    let Ok(stream) = js.get_stream(format!("{}EVENTS", nats.prefix)).await else {
        return false;
    };
    let subject = format!(
        "{}events.{}.{}",
        nats.prefix,
        event.header.stream_id.stream_type().as_str(),
        event.header.event_type.as_str()
    );
    match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(m) => carelog_bus::decode(&m.payload)
            .map(|e| e.header.event_id == event.header.event_id)
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether the durable consumer of `projection` exists under the test's prefix.
async fn projector_consumer_exists(nats: &TestNats, projection: &str) -> bool {
    let js = nats.jetstream();
    let Ok(stream) = js.get_stream(format!("{}EVENTS", nats.prefix)).await else {
        return false;
    };
    stream
        .consumer_info(format!("{}proj_{projection}", nats.prefix))
        .await
        .is_ok()
}

#[tokio::test]
async fn serve_no_projectors_relays_but_does_not_project_until_carelog_project_runs() {
    let db = TestDb::new().await;
    let keys = Keys::new();
    let store = keys.store(&db);
    let nats = TestNats::new().await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let nats_env = [
        ("NATS_URL", nats.url.as_str()),
        ("CARELOG_NATS_PREFIX", nats.prefix.as_str()),
    ];
    let mut serve_env = nats_env.to_vec();
    serve_env.push(("CARELOG_BIND", bind.as_str()));
    serve_env.push(("RATE_LIMITING_ENABLED", "false"));
    let mut serve = Child::spawn(
        command(&db, &keys, &["serve", "--no-projectors"], &serve_env),
        "serve",
    );

    // Up: it answers HTTP.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("http://{bind}/health/live"))
        .send()
        .await
        .is_err()
    {
        serve.assert_running();
        assert!(
            Instant::now() < deadline,
            "serve did not start: {}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Its relay publishes a new event to the prefix's EVENTS stream...
    let ev = append_one(&db, &store).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !in_events_stream(&nats, &ev).await {
        serve.assert_running();
        assert!(Instant::now() < deadline, "not relayed: {}", serve.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // ...but nothing projects it: no projector consumer, no projector lock, checkpoint 0.
    tokio::time::sleep(Duration::from_secs(2)).await;
    serve.assert_running();
    assert!(
        !audit_feed_has(&db, &ev).await,
        "projected by serve --no-projectors"
    );
    assert_eq!(
        pstore::checkpoint(&db.pool, AuditFeed::NAME).await.unwrap(),
        carelog_domain::Position(0)
    );
    assert!(!projector_consumer_exists(&nats, AuditFeed::NAME).await);
    assert!(!projector_lock_held(&db, &nats.prefix, AuditFeed::NAME).await);

    // `carelog project` applies it.
    let mut project = Child::spawn(command(&db, &keys, &["project"], &nats_env), "project");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !audit_feed_has(&db, &ev).await {
        project.assert_running();
        assert!(
            Instant::now() < deadline,
            "not projected: {}",
            project.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(pstore::checkpoint(&db.pool, AuditFeed::NAME).await.unwrap() >= ev.position);
    assert!(projector_consumer_exists(&nats, AuditFeed::NAME).await);

    project.stop().await;
    serve.stop().await;
}

#[tokio::test]
async fn dlq_discard_drops_the_event_records_the_operator_and_announces_it() {
    use carelog_bus::dead_letter::NoticeStatus;
    use carelog_store::Opened;

    let db = TestDb::new().await;
    let keys = Keys::new();
    let store = keys.store(&db);
    let nats = TestNats::new().await;
    let bus = BusConfig::new(&nats.prefix, 1).unwrap();
    carelog_bus::ensure_streams(&nats.jetstream(), &bus)
        .await
        .unwrap();
    let ev = append_one(&db, &store).await;

    // A failed dead letter of audit_feed, as its projector would have left it.
    let mut tx = db.pool.begin().await.unwrap();
    pstore::dlq_insert(
        &mut tx,
        NewDlqEntry {
            projection: AuditFeed::NAME,
            event: &ev,
            status: DlqStatus::Failed,
            error: Some("database error SQLSTATE 23514 on constraint audit_feed_check"),
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
    let entries = carelog_projector::dlq::list(&db.pool, None).await.unwrap();
    assert_eq!(entries.len(), 1);
    let id = entries[0].id.to_string();

    let nats_env = [
        ("NATS_URL", nats.url.as_str()),
        ("CARELOG_NATS_PREFIX", nats.prefix.as_str()),
    ];
    let run = |args: &[&str]| {
        command(&db, &keys, args, &nats_env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run carelog")
    };
    let out = run(&["dlq", "discard", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("discarded dead letter"),
        "{}",
        text(&out)
    );

    // Gone, never applied.
    let out = carelog(&db, &keys, &["dlq", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!([]));
    assert_eq!(carelog_projector::dlq::depth(&db.pool).await.unwrap(), 0);
    assert!(
        !audit_feed_has(&db, &ev).await,
        "a discarded event is not applied"
    );

    // Recorded as a command of the operator.
    let ops = carelog_store::read::stream(&db.pool, &operations_stream(), StreamVersion(0), 10)
        .await
        .unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].header.event_type.as_str(), "DlqEntryDiscarded");
    assert_eq!(ops[0].header.metadata.roles, vec!["OPERATOR".to_owned()]);
    assert_eq!(
        ops[0].header.metadata.command.as_deref(),
        Some("dlq discard")
    );
    let Opened::Payload(p) = store.open(&ops[0]).await.unwrap() else {
        panic!("operations are never erased")
    };
    assert_eq!(p["projection"], AuditFeed::NAME);
    assert_eq!(p["event_id"], ev.header.event_id.0.to_string());
    assert_eq!(p["position"], ev.position.0);

    // Announced on the prefix's DLQ stream.
    let stream = nats.jetstream().get_stream(bus.dlq_stream()).await.unwrap();
    let m = stream
        .get_last_raw_message_by_subject(&format!("{}dlq.{}", nats.prefix, AuditFeed::NAME))
        .await
        .expect("a DLQ notice");
    let notice = carelog_bus::dead_letter::decode(&m.payload).unwrap();
    assert_eq!(notice.status, NoticeStatus::Discarded);
    assert_eq!(notice.dlq_entry_id.to_string(), id);
    assert_eq!(notice.event_id, ev.header.event_id);
    assert_eq!(notice.event_type.as_str(), "PatientRegistered");
    assert!(!String::from_utf8_lossy(&m.payload).contains("Ada"));

    // A second discard of the same entry fails clearly and changes nothing.
    let again = run(&["dlq", "discard", &id]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains(&format!("dead letter {id} not found")),
        "{}",
        text(&again)
    );
    let ops = carelog_store::read::stream(&db.pool, &operations_stream(), StreamVersion(0), 10)
        .await
        .unwrap();
    assert_eq!(ops.len(), 1, "nothing recorded by the failed discard");
}
