//! Rebuilding a read model from the log: the same state as built incrementally, queries
//! answered throughout, and the live projector carrying on afterwards.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use carelog_projector::AuditFeed;

use crate::support::nats::TestNats;
use crate::support::{assert_audit_spans_exact, eventually, TestApp};

async fn feed(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_feed a ORDER BY position")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

/// How many rows `table` holds.
async fn rows(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&app.db.pool)
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
    // An access record (a logged-out token refused with 401): the one kind of payload
    // audit_feed reads, which the rebuild must fetch and open (the others it never does).
    let gone = app.user("PATIENT").await;
    let out = app
        .post(
            "/api/auth/logout",
            serde_json::json!(null),
            Some(&gone.token),
        )
        .await;
    assert!(out.status < 300, "{:?}", out.body);
    let refused = app.get("/api/audit/checkpoints", Some(&gone.token)).await;
    assert_eq!(refused.status, 401);
    caught_up(&app).await;
    let before = feed(&app).await;
    assert!(before.len() >= 10);
    assert!(
        before
            .iter()
            .any(|row| row.contains("\"action\":\"authenticate\"")),
        "the access record is in the feed"
    );

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
    assert_audit_spans_exact(&app.db.pool, "after the rebuild").await;

    // The live projector carries on into the swapped-in table, without doubles.
    app.user("DOCTOR").await;
    caught_up(&app).await;
    let after = feed(&app).await;
    assert!(after.len() > before.len());
    let events = rows(&app, "events").await;
    assert_eq!(after.len() as i64, events, "one row per event, none twice");
    assert_audit_spans_exact(&app.db.pool, "after the live projector carried on").await;
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
    let feed_rows = rows(&app, "audit_feed").await;
    let events = rows(&app, "events").await;
    assert_eq!(feed_rows, events);
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

/// One replay of the log as a rebuild reads it: position ranges of `range` read
/// `readers` at a time under one horizon, handed on in order up to the first row of a
/// recent transaction, then gap-safe pages up to the horizon's head. Returns the events
/// (position, id) and whether the ranges were cut.
async fn replay_in_ranges(
    pool: &sqlx::PgPool,
    range: i64,
    readers: usize,
) -> (Vec<(i64, uuid::Uuid)>, bool) {
    use carelog_domain::Position;
    use carelog_store::read;
    use futures::StreamExt as _;
    let horizon = read::horizon(pool).await.unwrap();
    let ranges = (0..)
        .map(|i| Position(i * range))
        .take_while(|start| *start < horizon.head)
        .map(|start| (start, Position((start.0 + range).min(horizon.head.0))));
    let mut pages = futures::stream::iter(ranges)
        .map(|(after, upto)| {
            let pool = pool.clone();
            tokio::spawn(async move { read::range_bulk(&pool, horizon, after, upto, None).await })
        })
        .buffered(readers);
    let mut seen = Vec::new();
    let mut cursor = Position::START;
    let mut cut = false;
    while let Some(page) = pages.next().await {
        let page = page.unwrap().unwrap();
        for e in &page.events {
            assert!(e.position > cursor, "positions strictly increase");
            cursor = e.position;
            seen.push((e.position.0, e.header.event_id.0));
        }
        if page.cut {
            cut = true;
            break;
        }
    }
    drop(pages);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while cursor < horizon.head {
        assert!(tokio::time::Instant::now() < deadline, "stuck at {cursor}");
        let page = read::all_bulk(pool, cursor, 11, None).await.unwrap();
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for e in &page {
            assert!(e.position > cursor, "positions strictly increase");
            cursor = e.position;
            seen.push((e.position.0, e.header.event_id.0));
        }
    }
    (seen, cut)
}

/// The rebuild's parallel read (ranges under one horizon, then gap-safe pages) while
/// writers commit out of order, some holding their transactions open, some rolling back:
/// every replay returns exactly the log's events up to where it stopped, in order, none
/// missing, none twice (as `gap_safe_reads` checks for the ordinary reader).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replays_read_in_ranges_return_exactly_the_log_under_concurrent_writers() {
    use carelog_store::Expected;
    use serde_json::json;
    let db = crate::support::TestDb::new().await;
    let store = crate::support::store(&db, crate::support::keyring());
    let streams: Vec<carelog_domain::StreamId> =
        (0..4).map(|_| crate::support::patient_stream()).collect();
    let jitter = |max_ms: u64| Duration::from_micros(rand::random::<u64>() % (max_ms * 1000));
    // A transaction of the cluster holding an xid while the writers start: the rows
    // written meanwhile are not older than every transaction in flight, so the replays
    // of that time cut their ranges and wait in the gap-safe pages until it ends.
    let mut blocker = db.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let blocker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        blocker.commit().await.unwrap();
    });
    let done = Arc::new(AtomicBool::new(false));
    let replayer = {
        let (pool, done) = (db.pool.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let mut replays = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                replays.push(replay_in_ranges(&pool, 3, 4).await);
                if finished {
                    return replays;
                }
            }
        })
    };
    let writers = (0..8).map(|w| {
        let (store, pool, streams) = (store.clone(), db.pool.clone(), streams.clone());
        tokio::spawn(async move {
            for i in 0..25 {
                let s = streams[(w + i) % streams.len()];
                let ev = crate::support::event(&s, "Written", json!({ "w": w, "i": i }));
                if w % 2 == 0 {
                    let mut tx = pool.begin().await.unwrap();
                    tokio::time::sleep(jitter(3)).await;
                    store
                        .append_in_tx(&mut tx, crate::support::one(s, Expected::Any, ev))
                        .await
                        .unwrap();
                    tokio::time::sleep(jitter(3)).await;
                    if rand::random::<u8>().is_multiple_of(10) {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                    }
                } else {
                    tokio::time::sleep(jitter(2)).await;
                    store
                        .append(crate::support::one(s, Expected::Any, ev))
                        .await
                        .unwrap();
                }
            }
        })
    });
    for w in futures::future::join_all(writers).await {
        w.unwrap();
    }
    blocker.await.unwrap();
    done.store(true, Ordering::SeqCst);
    let replays = replayer.await.unwrap();
    let log: Vec<(i64, uuid::Uuid)> =
        sqlx::query_as("SELECT position, event_id FROM events ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(log.len() > 150, "the writers wrote ({})", log.len());
    assert!(replays.len() >= 2, "replays ran during the writes");
    for (seen, _) in &replays {
        let upto = seen.last().map_or(0, |e| e.0);
        let expected: Vec<(i64, uuid::Uuid)> =
            log.iter().copied().take_while(|e| e.0 <= upto).collect();
        assert_eq!(
            seen, &expected,
            "a replay is exactly the log up to where it stopped"
        );
    }
    let (last, _) = replays.last().unwrap();
    assert_eq!(last, &log, "the replay after the writes is the whole log");
    let cut = replays.iter().filter(|r| r.1).count();
    eprintln!(
        "{} replays, {cut} cut by a recent transaction",
        replays.len()
    );
    assert!(
        cut >= 1,
        "some replay met a recent transaction in its ranges"
    );
}

/// An event the live projection sets aside while a rebuild is filling its twins (after
/// the fill applied it) must not be in the swapped-in table: the rebuild notices under
/// the projection's lock that its fill no longer matches the dead-letter queue and
/// starts over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_dead_lettered_during_the_rebuild_is_not_in_the_rebuilt_table() {
    let app = TestApp::spawn().await;
    app.user("PATIENT").await;
    let (position, event_id, stream_id): (i64, uuid::Uuid, String) = sqlx::query_as(
        "SELECT position, event_id, stream_id FROM events ORDER BY position DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let events = rows(&app, "events").await;

    // After the first filled batch (which holds the whole log), the live projection
    // dead-letters the last event.
    let pool = app.db.pool.clone();
    let mut first = true;
    let report =
        carelog_projector::rebuild(&app.db.pool, &app.services.store, &AuditFeed, |_, _| {
            if std::mem::take(&mut first) {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(async {
                        sqlx::query(
                        "INSERT INTO dlq_entries (id, projection, stream_id, event_id, position,
                                                  error, attempts, first_failed_at,
                                                  last_failed_at, status)
                         VALUES (gen_random_uuid(), 'audit_feed', $1, $2, $3, 'test', 3,
                                 now(), now(), 'failed')",
                    )
                    .bind(&stream_id)
                    .bind(event_id)
                    .bind(position)
                    .execute(&pool)
                    .await
                    .unwrap();
                    })
                });
            }
        })
        .await
        .unwrap();

    assert_eq!(report.attempts, 2, "the changed queue made it start over");
    assert_eq!(report.skipped, 1);
    assert_eq!(report.applied as i64, events - 1);
    let rows: Vec<i64> = sqlx::query_scalar("SELECT position FROM audit_feed ORDER BY position")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(rows.len() as i64, events - 1);
    assert!(
        !rows.contains(&position),
        "the dead-lettered event is not in the table"
    );
}
