//! Reading the whole log while writers commit out of order: nothing may be skipped.
//!
//! The hazard (DESIGN.md "Reading the global log without skipping events"): a transaction
//! that took position 41 may commit after the one that took 42; a reader that already
//! moved its cursor past 42 never sees 41. The second test reproduces that with a naive
//! table and reader; the first shows carelog's store does not have it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use carelog_domain::{Position, StreamId};
use carelog_store::Expected;
use serde_json::json;
use sqlx::{Executor, PgPool};
use uuid::Uuid;

use crate::support::{self, event, one, patient_stream, TestDb};

fn jitter(max_ms: u64) -> Duration {
    Duration::from_micros(rand::random::<u64>() % (max_ms * 1000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_reader_sees_every_committed_event_exactly_once_under_concurrent_writers() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let streams: Vec<StreamId> = (0..4).map(|_| patient_stream()).collect();
    // Once the writers are done, the last committed position: the reader stops there.
    // (Not at the first empty page: pg_snapshot_xmin is cluster-wide, so a transaction
    // of another test's database may hold rows back for a moment. Late, never skipped.)
    let target = Arc::new(AtomicI64::new(i64::MAX));

    let reader = {
        let (store, target) = (store.clone(), Arc::clone(&target));
        tokio::spawn(async move {
            let mut cursor = Position::START;
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while cursor.0 < target.load(Ordering::SeqCst) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "reader stuck at {cursor}"
                );
                let page = store.read_all(cursor, 37).await.unwrap();
                for ev in &page {
                    assert!(ev.position > cursor, "positions strictly increase");
                    cursor = ev.position;
                    seen.push((
                        ev.header.event_id.0,
                        ev.header.stream_id,
                        ev.header.version.0,
                    ));
                }
                if page.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            seen
        })
    };

    // 8 writers on 4 shared streams: half append inside their own transactions with
    // random delays before and after (and sometimes roll back), half through group commit.
    let writers = (0..8).map(|w| {
        let (store, pool, streams) = (store.clone(), db.pool.clone(), streams.clone());
        tokio::spawn(async move {
            let mut committed = Vec::new();
            for i in 0..25 {
                let s = streams[(w + i) % streams.len()];
                let ev = event(&s, "Written", json!({ "w": w, "i": i }));
                let id = ev.event_id.0;
                if w % 2 == 0 {
                    let mut tx = pool.begin().await.unwrap();
                    tokio::time::sleep(jitter(3)).await;
                    store
                        .append_in_tx(&mut tx, one(s, Expected::Any, ev))
                        .await
                        .unwrap();
                    tokio::time::sleep(jitter(3)).await;
                    if rand::random::<u8>().is_multiple_of(10) {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                        committed.push(id);
                    }
                } else {
                    tokio::time::sleep(jitter(2)).await;
                    store.append(one(s, Expected::Any, ev)).await.unwrap();
                    committed.push(id);
                }
            }
            committed
        })
    });
    let committed: HashSet<Uuid> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let last: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    target.store(last.expect("events were written"), Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let seen_ids: HashSet<Uuid> = seen.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(seen_ids.len(), seen.len(), "no event seen twice");
    assert_eq!(
        seen_ids, committed,
        "every committed event seen, nothing else"
    );
    let stored: HashSet<Uuid> = sqlx::query_scalar("SELECT event_id FROM events")
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(stored, committed);
    // Each stream's events arrive in version order, without gaps.
    let mut last: HashMap<StreamId, i64> = HashMap::new();
    for (_, stream, version) in seen {
        let prev = last.insert(stream, version).unwrap_or(0);
        assert_eq!(version, prev + 1, "stream {stream} out of order");
    }
}

/// Writers that take a sequence position and commit after a random delay, and a
/// reader that pages by `position > cursor`: the reader skips events for good.
/// Observed on every run so far (PostgreSQL 15, 2 cores): several events of 200 missed
/// in the first round. This is why carelog's store does not work that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_naive_position_reader_misses_late_commits() {
    let db = TestDb::new().await;
    db.pool
        .execute("CREATE TABLE naive_log (position bigserial PRIMARY KEY, id uuid NOT NULL)")
        .await
        .unwrap();
    let mut missed = 0;
    for _round in 0..5 {
        missed = naive_round(&db.pool).await;
        if missed > 0 {
            break;
        }
    }
    assert!(
        missed > 0,
        "the naive reader was expected to skip late commits"
    );
}

async fn naive_round(pool: &PgPool) -> usize {
    let done = Arc::new(AtomicBool::new(false));
    let start: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM naive_log")
        .fetch_one(pool)
        .await
        .unwrap();
    let reader = {
        let (pool, done) = (pool.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = HashSet::new();
            while !done.load(Ordering::SeqCst) {
                let rows: Vec<(i64, Uuid)> = sqlx::query_as(
                    "SELECT position, id FROM naive_log WHERE position > $1 ORDER BY position",
                )
                .bind(cursor)
                .fetch_all(&pool)
                .await
                .unwrap();
                for (p, id) in rows {
                    cursor = p;
                    seen.insert(id);
                }
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
            seen
        })
    };
    let writers = (0..8).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..25 {
                let id = Uuid::now_v7();
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("INSERT INTO naive_log (id) VALUES ($1)")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tokio::time::sleep(jitter(3)).await;
                tx.commit().await.unwrap();
                ids.push(id);
            }
            ids
        })
    });
    let committed: HashSet<Uuid> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    // Let the reader catch up with everything that is now committed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();
    committed.difference(&seen).count()
}

/// A writer that inserts into the log without taking the log lock itself (a hand-written
/// repair, another tool) still waits for it: migration 0010's trigger takes it. Without
/// that, such a row could get a later position, commit first, and let a reader move past
/// the earlier position of a transaction still in flight.
#[tokio::test]
async fn an_insert_that_does_not_take_the_log_lock_still_waits_for_it() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let (s, t) = (patient_stream(), patient_stream());
    let first = store
        .append(one(t, Expected::Any, event(&t, "Written", json!({}))))
        .await
        .unwrap()
        .last_position();

    // A carelog append in flight, holding the lock.
    let mut holder = db.pool.begin().await.unwrap();
    store
        .append_in_tx(
            &mut holder,
            one(s, Expected::Any, event(&s, "Written", json!({}))),
        )
        .await
        .unwrap();

    // A raw insert on another connection (a copy of t's event as its version 2).
    let mut raw = db.admin().await;
    let t_id = t.to_string();
    let inserting = tokio::spawn(async move {
        sqlx::query(
            "INSERT INTO events (event_id, stream_id, stream_type, version, event_type,
                                 schema_version, subject_id, key_id, payload, metadata,
                                 recorded_at, prev_hash, hash)
             SELECT gen_random_uuid(), stream_id, stream_type, version + 1, event_type,
                    schema_version, subject_id, key_id, payload, metadata, recorded_at,
                    hash, hash
             FROM events WHERE stream_id = $1",
        )
        .bind(t_id)
        .execute(&mut raw)
        .await
        .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !inserting.is_finished(),
        "the raw insert waits for the log lock"
    );
    let page = store.read_all(first, 10).await.unwrap();
    assert!(page.is_empty(), "nothing after {first} is visible yet");

    holder.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), inserting)
        .await
        .expect("the raw insert goes on once the lock is free")
        .unwrap();
    let page = store.read_all(first, 10).await.unwrap();
    let streams: Vec<StreamId> = page.iter().map(|e| e.header.stream_id).collect();
    assert_eq!(
        streams,
        [s, t],
        "the held append first, then the raw insert"
    );
}
