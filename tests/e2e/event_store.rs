//! Appends: versions, optimistic concurrency, idempotent retries, append-only table.

use carelog_domain::{Position, StreamId, StreamVersion};
use carelog_store::{AppendError, AppendRequest, EventStore, Expected};
use serde_json::json;
use sqlx::{Connection, Executor};

use crate::support::{self, event, one, patient_stream, TestDb};

async fn count_events(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// Starts `stream` with one event `A` (appended as a new stream).
async fn start(store: &EventStore, stream: StreamId) {
    store
        .append(one(
            stream,
            Expected::Exact(StreamVersion::EMPTY),
            event(&stream, "A", json!({})),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn appends_get_consecutive_versions_and_increasing_positions() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    let first = store
        .append(AppendRequest {
            stream: s,
            expected: Expected::Exact(StreamVersion::EMPTY),
            events: vec![
                event(&s, "A", json!({"n": 1})),
                event(&s, "B", json!({"n": 2})),
            ],
        })
        .await
        .unwrap();
    assert_eq!(first.version, StreamVersion(2));
    assert_eq!(first.positions.len(), 2);
    assert!(first.positions[0] < first.positions[1]);
    let second = store
        .append(one(
            s,
            Expected::Exact(StreamVersion(2)),
            event(&s, "C", json!({})),
        ))
        .await
        .unwrap();
    assert_eq!(second.version, StreamVersion(3));
    assert!(second.positions[0] > first.positions[1]);

    let stored = store
        .read_stream(&s, StreamVersion::EMPTY, 100)
        .await
        .unwrap();
    let versions: Vec<i64> = stored.iter().map(|e| e.header.version.0).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(stored[1].prev_hash, stored[0].hash, "the chain links");
    assert_eq!(stored[0].prev_hash, carelog_crypto::GENESIS);
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_writes_nothing() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    start(&store, s).await;
    for stale in [StreamVersion(0), StreamVersion(2), StreamVersion(7)] {
        let err = store
            .append(one(s, Expected::Exact(stale), event(&s, "B", json!({}))))
            .await
            .unwrap_err();
        match err {
            AppendError::Conflict {
                expected, actual, ..
            } => {
                assert_eq!((expected, actual), (stale, StreamVersion(1)));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(count_events(&db).await, 1);
}

#[tokio::test]
async fn of_twenty_concurrent_appends_at_one_version_exactly_one_wins() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    start(&store, s).await;
    let attempts = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(one(
                    s,
                    Expected::Exact(StreamVersion(1)),
                    event(&s, "B", json!({ "i": i })),
                ))
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let (ok, conflicts): (Vec<_>, Vec<_>) = results
        .into_iter()
        .map(|r| r.unwrap())
        .partition(|r| r.is_ok());
    assert_eq!(ok.len(), 1, "exactly one append wins");
    assert!(conflicts
        .iter()
        .all(|r| matches!(r, Err(AppendError::Conflict { .. }))));
    assert_eq!(count_events(&db).await, 2);
}

#[tokio::test]
async fn a_retried_append_is_answered_as_before_and_stored_once() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    let req = one(
        s,
        Expected::Exact(StreamVersion::EMPTY),
        event(&s, "A", json!({"x": 1})),
    );
    let first = store.append(req.clone()).await.unwrap();
    let again = store.append(req.clone()).await.unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(
        (again.version, &again.positions),
        (first.version, &first.positions)
    );
    // Also inside a caller's transaction.
    let mut tx = db.pool.begin().await.unwrap();
    let in_tx = store.append_in_tx(&mut tx, req).await.unwrap();
    tx.commit().await.unwrap();
    assert!(in_tx.replayed);
    assert_eq!(count_events(&db).await, 1);
}

#[tokio::test]
async fn an_event_id_reused_in_another_stream_is_refused() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let (a, b) = (patient_stream(), patient_stream());
    let ev = event(&a, "A", json!({}));
    store
        .append(one(a, Expected::Exact(StreamVersion::EMPTY), ev.clone()))
        .await
        .unwrap();
    let mut moved = ev;
    moved.subject = carelog_domain::SubjectId::of_stream(&b);
    for expected in [Expected::Exact(StreamVersion::EMPTY), Expected::Any] {
        let err = store
            .append(one(b, expected, moved.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, AppendError::DuplicateEventId), "{err:?}");
    }
    assert_eq!(count_events(&db).await, 1);
}

#[tokio::test]
async fn one_bad_append_in_a_batch_fails_alone() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let (a, b) = (patient_stream(), patient_stream());
    let ev = event(&a, "A", json!({}));
    store
        .append(one(a, Expected::Any, ev.clone()))
        .await
        .unwrap();
    // Many good appends racing one that reuses an event id under Expected::Any (which
    // only the unique index can catch inside a batch).
    let mut dup = ev;
    dup.subject = carelog_domain::SubjectId::of_stream(&b);
    let good = (0..30).map(|_| {
        let store = store.clone();
        let s = patient_stream();
        tokio::spawn(async move {
            store
                .append(one(s, Expected::Any, event(&s, "G", json!({}))))
                .await
        })
    });
    let bad = {
        let store = store.clone();
        tokio::spawn(async move { store.append(one(b, Expected::Any, dup)).await })
    };
    let good = futures::future::join_all(good).await;
    assert!(good.into_iter().all(|r| r.unwrap().is_ok()));
    assert!(matches!(
        bad.await.unwrap(),
        Err(AppendError::DuplicateEventId)
    ));
    assert_eq!(count_events(&db).await, 31);
}

/// The committer does not look up the heads of streams every append expects to be new;
/// one that exists after all is caught by the (stream, version) key and gets its conflict,
/// while the new streams of the same batch are written, each starting the chain afresh.
#[tokio::test]
async fn a_new_stream_that_exists_is_a_conflict_even_among_new_streams_in_a_batch() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let taken = patient_stream();
    start(&store, taken).await;
    let fresh: Vec<_> = (0..30).map(|_| patient_stream()).collect();
    let good = fresh.iter().map(|&s| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(one(
                    s,
                    Expected::Exact(StreamVersion::EMPTY),
                    event(&s, "G", json!({})),
                ))
                .await
        })
    });
    let bad = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(one(
                    taken,
                    Expected::Exact(StreamVersion::EMPTY),
                    event(&taken, "B", json!({})),
                ))
                .await
        })
    };
    let good = futures::future::join_all(good).await;
    match bad.await.unwrap() {
        Err(AppendError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (StreamVersion::EMPTY, StreamVersion(1))),
        other => panic!("expected a conflict, got {other:?}"),
    }
    for (s, appended) in fresh.iter().zip(good) {
        assert_eq!(appended.unwrap().unwrap().version, StreamVersion(1));
        let stored = store
            .read_stream(s, StreamVersion::EMPTY, 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].prev_hash, carelog_crypto::GENESIS);
    }
    assert_eq!(count_events(&db).await, 31);
    let report = carelog_store::verify::verify_chain(&db.pool, None)
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn appends_of_no_events_or_too_many_are_refused() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    let empty = AppendRequest {
        stream: s,
        expected: Expected::Any,
        events: vec![],
    };
    assert!(matches!(
        store.append(empty).await,
        Err(AppendError::BadSize { got: 0, .. })
    ));
    let many = AppendRequest {
        stream: s,
        expected: Expected::Any,
        events: (0..1001).map(|_| event(&s, "A", json!({}))).collect(),
    };
    assert!(matches!(
        store.append(many).await,
        Err(AppendError::BadSize { got: 1001, .. })
    ));
    assert_eq!(count_events(&db).await, 0);
}

#[tokio::test]
async fn an_append_in_a_rolled_back_transaction_leaves_nothing() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    let mut tx = db.pool.begin().await.unwrap();
    let appended = store
        .append_in_tx(
            &mut tx,
            one(
                s,
                Expected::Exact(StreamVersion::EMPTY),
                event(&s, "A", json!({})),
            ),
        )
        .await
        .unwrap();
    assert!(appended.positions[0] > Position(0));
    tx.rollback().await.unwrap();
    assert_eq!(count_events(&db).await, 0);
}

#[tokio::test]
async fn the_event_table_refuses_update_delete_and_truncate_for_its_owner_and_superusers() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    store
        .append(one(s, Expected::Any, event(&s, "A", json!({}))))
        .await
        .unwrap();
    let owner: String =
        sqlx::query_scalar("SELECT tableowner::text FROM pg_tables WHERE tablename = 'events'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let me: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(owner, me, "carelog's role owns the table");

    let changes = [
        "UPDATE events SET event_type = 'B'",
        "DELETE FROM events",
        "TRUNCATE events",
    ];
    let mut app = db.pool.acquire().await.unwrap();
    for sql in changes {
        let err = app.execute(sql).await.expect_err(sql);
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    // Even after the owner grants itself the privileges back, the triggers refuse.
    app.execute(format!("GRANT UPDATE, DELETE, TRUNCATE ON events TO {me}").as_str())
        .await
        .unwrap();
    for sql in changes {
        let err = app.execute(sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    // And for a superuser too.
    let mut admin = db.admin().await;
    for sql in changes {
        let err = admin.execute(sql).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    admin.close().await.unwrap();
    assert_eq!(count_events(&db).await, 1);
}

/// Every committed insert into the log wakes a listening relay, whichever way it was
/// written (a group commit of new streams is a single self-committing INSERT; a grouped
/// append to an existing stream; an append inside a caller's transaction; a raw INSERT),
/// and a rolled-back one does not.
#[tokio::test]
async fn every_committed_insert_wakes_the_listener_and_a_rolled_back_one_does_not() {
    use carelog_store::append::AppendedListener;
    use std::time::Duration;

    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    // As the relay does: the listener in a task of its own, forwarding its wake-ups.
    let mut listener = AppendedListener::connect(&db.pool).await.unwrap();
    let (tx, mut wakes) = tokio::sync::mpsc::unbounded_channel();
    let forward = tokio::spawn(async move {
        while listener.wait().await.unwrap() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    let mut woken =
        async |within: Duration| tokio::time::timeout(within, wakes.recv()).await.is_ok();
    let s = patient_stream();
    start(&store, s).await;
    assert!(
        woken(Duration::from_secs(5)).await,
        "a batch of new streams"
    );
    store
        .append(one(
            s,
            Expected::Exact(StreamVersion(1)),
            event(&s, "B", json!({})),
        ))
        .await
        .unwrap();
    assert!(woken(Duration::from_secs(5)).await, "a grouped append");

    for commit in [false, true] {
        let mut tx = db.pool.begin().await.unwrap();
        store
            .append_in_tx(
                &mut tx,
                one(
                    s,
                    Expected::Exact(StreamVersion(2)),
                    event(&s, "C", json!({})),
                ),
            )
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
            assert!(
                woken(Duration::from_secs(5)).await,
                "an append in a transaction"
            );
        } else {
            tx.rollback().await.unwrap();
            assert!(!woken(Duration::from_millis(500)).await, "rolled back");
        }
    }

    // Another writer (a hand-made copy of the last row under a new id and version).
    let copied = sqlx::query(
        "INSERT INTO events (event_id, stream_id, stream_type, version, event_type, \
         schema_version, subject_id, key_id, payload, metadata, recorded_at, prev_hash, hash) \
         SELECT gen_random_uuid(), stream_id, stream_type, version + 1, event_type, \
         schema_version, subject_id, key_id, payload, metadata, recorded_at, hash, hash \
         FROM events ORDER BY position DESC LIMIT 1",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(copied.rows_affected(), 1);
    assert!(woken(Duration::from_secs(5)).await, "a raw insert");
    forward.abort();
}
