//! Rebuilding a read model from the log: the same state as built incrementally, queries
//! answered throughout, and the live projector carrying on afterwards.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use carelog_projector::AuditFeed;

use crate::support::nats::TestNats;
use crate::support::{eventually, TestApp};

async fn feed(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_feed a ORDER BY position")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

async fn caught_up(app: &TestApp) {
    eventually(
        Duration::from_secs(60),
        "audit_feed at the head of the log",
        || async {
            let s = carelog_store::projector_status::status(&app.db.pool, "audit_feed")
                .await
                .unwrap();
            s.head > 0 && s.lag_events == 0
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_reaches_the_incremental_state_while_queries_keep_answering() {
    let app = TestApp::spawn().await;
    let nats = TestNats::new().await;
    let bus = || carelog_bus::BusConfig::new(nats.prefix.clone(), 1).unwrap();
    let relay = app.services.start_relay(&nats.url, bus()).await.unwrap();
    let projectors = app
        .services
        .start_projectors(
            &nats.url,
            bus(),
            carelog_projector::ProjectorConfig::default(),
        )
        .await
        .unwrap();
    for _ in 0..5 {
        app.user("PATIENT").await;
    }
    caught_up(&app).await;
    let before = feed(&app).await;
    assert!(before.len() >= 10);

    // A reader hammering the live table during the rebuild.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (pool, stop) = (app.db.pool.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let n: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
                    .fetch_one(&pool)
                    .await;
                answers.push(n.map_err(|e| e.to_string()));
            }
            answers
        })
    };
    let mut calls = 0;
    let report =
        carelog_projector::rebuild(&app.db.pool, &app.services.store, &AuditFeed, |_, _| {
            calls += 1
        })
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let answers = reader.await.unwrap();
    assert!(!answers.is_empty());
    for a in &answers {
        let n = a.as_ref().expect("every query during the rebuild answered");
        assert!(
            *n as usize >= before.len(),
            "the live table never looked partial ({n})"
        );
    }
    assert!(calls >= 1, "progress was reported");
    assert_eq!(report.applied as usize, before.len());
    assert_eq!(
        feed(&app).await,
        before,
        "rebuilt state equals the incremental state"
    );

    // The live projector carries on into the swapped-in table, without doubles.
    app.user("DOCTOR").await;
    caught_up(&app).await;
    let after = feed(&app).await;
    assert!(after.len() > before.len());
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(after.len() as i64, events, "one row per event, none twice");
    projectors.stop().await;
    relay.stop().await;
}

#[tokio::test]
async fn carelog_rebuild_through_the_binary() {
    let app = TestApp::spawn().await;
    app.user("PATIENT").await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_carelog"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.db.url)
            .env("CARELOG_MASTER_KEY", app.master_key.to_hex())
            .env("CARELOG_TOKEN_KEY", &app.token_key)
            .env("LOG_FORMAT", "pretty")
            .output()
            .unwrap()
    };
    let out = run(&["rebuild", "audit_feed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("rebuilt audit_feed:"), "{text}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, events);
    assert!(run(&["rebuild", "--all"]).status.success());
    let unknown = run(&["rebuild", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no projection named"));
    assert_eq!(
        run(&["rebuild"]).status.code(),
        Some(2),
        "a name or --all is required"
    );
}
