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

/// Every stream's hash chain recomputes from its events.
async fn assert_chain_holds(db: &TestDb) {
    let report = carelog_store::verify::verify_chain(&db.pool, None)
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
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
    assert_chain_holds(&db).await;
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
    use carelog_store::append::{AppendedListener, Wake};
    use std::time::Duration;

    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    // As the relay does: the listener in a task of its own, forwarding its wake-ups.
    let mut listener = AppendedListener::connect(&db.pool).await.unwrap();
    let (tx, mut wakes) = tokio::sync::mpsc::unbounded_channel();
    let forward = tokio::spawn(async move {
        while let Wake::Appended { .. } = listener.wait().await.unwrap() {
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

/// The versions of `stream` in the log, in order.
async fn versions(db: &TestDb, stream: StreamId) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM events WHERE stream_id = $1 ORDER BY version")
        .bind(stream.to_string())
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// The committers remember the heads they wrote, so a later batch of the same streams
/// reads none. Another node appending to the stream makes that head stale: an `Any`
/// append on it breaks the `(stream_id, version)` key and is retried on the head read
/// from the log; an exact expectation other than the remembered version reads the head
/// first. Neither is a spurious conflict, and the chain holds.
#[tokio::test]
async fn a_head_another_node_moved_on_is_read_again_and_the_chain_holds() {
    let db = TestDb::new().await;
    let keyring = support::keyring();
    let (a, b) = (
        support::store(&db, keyring.clone()),
        support::store(&db, keyring),
    );
    let s = patient_stream();
    start(&a, s).await;
    let on_a = |expected| one(s, expected, event(&s, "A", json!({})));
    assert_eq!(
        a.append(on_a(Expected::Exact(StreamVersion(1))))
            .await
            .unwrap()
            .version,
        StreamVersion(2)
    );
    // Node b moves the stream on; node a still remembers version 2.
    b.append(one(
        s,
        Expected::Exact(StreamVersion(2)),
        event(&s, "B", json!({})),
    ))
    .await
    .unwrap();
    let any = a.append(on_a(Expected::Any)).await.unwrap();
    assert_eq!(any.version, StreamVersion(4));
    b.append(one(
        s,
        Expected::Exact(StreamVersion(4)),
        event(&s, "B", json!({})),
    ))
    .await
    .unwrap();
    let exact = a.append(on_a(Expected::Exact(StreamVersion(5)))).await;
    assert_eq!(exact.unwrap().version, StreamVersion(6));
    // A stale expectation is still a conflict.
    match a.append(on_a(Expected::Exact(StreamVersion(5)))).await {
        Err(AppendError::Conflict { actual, .. }) => assert_eq!(actual, StreamVersion(6)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(versions(&db, s).await, (1..=6).collect::<Vec<_>>());
    assert_chain_holds(&db).await;
}

/// A remembered head the log no longer has (the database lost a committed transaction:
/// a failover to a standby that had not received it, a restore) must not leave a gap:
/// the insert refuses a row whose predecessor is not in the log (migration 0013), and the
/// append is retried on the head read from the log.
#[tokio::test]
async fn a_remembered_head_the_log_lost_is_refused_by_the_link_check_and_retried() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    start(&store, s).await;
    for v in 1..3 {
        store
            .append(one(
                s,
                Expected::Exact(StreamVersion(v)),
                event(&s, "A", json!({})),
            ))
            .await
            .unwrap();
    }
    // The log loses version 3, which the committer wrote and remembers.
    let mut admin = db.admin().await;
    admin
        .execute("SET session_replication_role = replica")
        .await
        .unwrap();
    sqlx::query("DELETE FROM events WHERE stream_id = $1 AND version = 3")
        .bind(s.to_string())
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();

    let appended = store
        .append(one(s, Expected::Any, event(&s, "A", json!({}))))
        .await
        .unwrap();
    assert_eq!(
        appended.version,
        StreamVersion(3),
        "written on the log's head"
    );
    assert_eq!(versions(&db, s).await, vec![1, 2, 3]);
    assert_chain_holds(&db).await;
}

/// One row for `insert_events.sql`: stream, version, prev_hash, hash.
type Row = (StreamId, i64, Vec<u8>, Vec<u8>);

/// Runs `insert_events.sql` on `rows` in a transaction it rolls back.
async fn insert_rolled_back(db: &TestDb, rows: &[Row]) -> Result<usize, sqlx::Error> {
    let n = rows.len();
    let streams: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    let mut tx = db.pool.begin().await.unwrap();
    let result = sqlx::query(include_str!("../../crates/store/sql/insert_events.sql"))
        .bind((0..n).map(|_| uuid::Uuid::now_v7()).collect::<Vec<_>>())
        .bind(&streams)
        .bind(
            rows.iter()
                .map(|r| r.0.stream_type().to_string())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(vec!["A".to_string(); n])
        .bind(vec![1i16; n])
        .bind(&streams)
        .bind((0..n).map(|_| uuid::Uuid::now_v7()).collect::<Vec<_>>())
        .bind(vec![vec![1u8; 40]; n])
        .bind(vec![json!({}); n])
        .bind(vec![chrono::Utc::now(); n])
        .bind(rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await
        .map(|r| r.len());
    tx.rollback().await.unwrap();
    result
}

/// The insert refuses, as a whole, a batch with a row that skips a version or names
/// another predecessor than the one before it (stored, or earlier in the batch), or one
/// the stream has moved past, whoever sends it.
#[tokio::test]
async fn the_insert_refuses_a_row_that_does_not_link_to_its_streams_head() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let (s, fresh) = (patient_stream(), patient_stream());
    start(&store, s).await;
    let head: Vec<u8> = sqlx::query_scalar("SELECT hash FROM events WHERE stream_id = $1")
        .bind(s.to_string())
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let (genesis, h2, h3) = (vec![0u8; 32], vec![2u8; 32], vec![3u8; 32]);
    let linked: [&[Row]; 2] = [
        &[(s, 2, head.clone(), h2.clone())],
        &[
            (fresh, 1, genesis.clone(), h2.clone()),
            (s, 2, head.clone(), h2.clone()),
            (fresh, 2, h2.clone(), h3.clone()),
            (s, 3, h2.clone(), h3.clone()),
        ],
    ];
    for rows in linked {
        assert_eq!(insert_rolled_back(&db, rows).await.unwrap(), rows.len());
    }
    let unlinked: [&[Row]; 5] = [
        // Skips version 2.
        &[(s, 3, head.clone(), h3.clone())],
        // Names another predecessor.
        &[(s, 2, vec![7u8; 32], h2.clone())],
        // A first event off the genesis hash.
        &[(fresh, 1, h2.clone(), h3.clone())],
        // Skips a version inside the batch.
        &[
            (s, 2, head.clone(), h2.clone()),
            (s, 4, h2.clone(), h3.clone()),
        ],
        // Names another predecessor inside the batch.
        &[
            (s, 2, head.clone(), h2.clone()),
            (s, 3, head.clone(), h3.clone()),
        ],
    ];
    for rows in unlinked {
        let err = insert_rolled_back(&db, rows).await.expect_err("refused");
        assert!(
            err.to_string()
                .contains("of the appended batch does not follow its stream's head"),
            "{rows:?}: {err}"
        );
    }
    // A predecessor the head has moved past: its successor is stored, so the row's
    // `(stream_id, version)` is taken and the insert refuses it by that key.
    store
        .append(one(s, Expected::Any, event(&s, "B", json!({}))))
        .await
        .unwrap();
    let err = insert_rolled_back(&db, &[(s, 2, head.clone(), h2.clone())])
        .await
        .expect_err("refused");
    let code = err.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("23505"), "{err}");
    assert_eq!(count_events(&db).await, 2);
    assert_chain_holds(&db).await;
}

/// What the committers hand a relay in the same process ([`EventStore::commits`]) is
/// what the log holds: the same events at the same positions, byte for byte, whichever
/// path each batch took (new streams, remembered heads, heads read under the lock,
/// several events per append); a conflict hands nothing over; an append in a caller's
/// transaction is in the log only, so the run handed over stops before it.
#[tokio::test]
async fn the_events_handed_to_the_relay_are_the_log_as_stored() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let commits = store.commits();
    let streams: Vec<StreamId> = (0..8).map(|_| patient_stream()).collect();
    // Concurrent appends, so batches mix streams: new ones, then remembered ones (Exact
    // and Any), each append of two events.
    for round in 0..3i64 {
        let appends = streams.iter().enumerate().map(|(i, s)| {
            let (store, s) = (store.clone(), *s);
            let expected = if i % 2 == 0 {
                Expected::Exact(StreamVersion(round * 2))
            } else {
                Expected::Any
            };
            tokio::spawn(async move {
                store
                    .append(AppendRequest {
                        stream: s,
                        expected,
                        events: vec![
                            event(&s, "A", json!({"round": round})),
                            event(&s, "B", json!({"i": i})),
                        ],
                    })
                    .await
            })
        });
        for r in futures::future::join_all(appends).await {
            r.unwrap().unwrap();
        }
    }
    // A stale expectation: refused, nothing handed over.
    let stale = store
        .append(one(
            streams[0],
            Expected::Exact(StreamVersion(1)),
            event(&streams[0], "C", json!({})),
        ))
        .await;
    assert!(matches!(stale, Err(AppendError::Conflict { .. })));
    let handed = commits.events.take_after(Position(0), usize::MAX);
    let log = carelog_store::read::all(&db.pool, Position(0), 1_000)
        .await
        .unwrap();
    assert_eq!(log.len(), 48);
    assert_same_events(&handed, &log);

    // An append in a caller's transaction, then a group commit: the run stops before the
    // former (it is not handed over), and the latter waits behind it.
    let s = streams[1];
    let mut tx = db.pool.begin().await.unwrap();
    let in_tx = store
        .append_in_tx(&mut tx, one(s, Expected::Any, event(&s, "T", json!({}))))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store
        .append(one(s, Expected::Any, event(&s, "U", json!({}))))
        .await
        .unwrap();
    let head = log.last().unwrap().position;
    assert!(commits.events.take_after(head, 10).is_empty());
    let after = carelog_store::read::all(&db.pool, head, 10).await.unwrap();
    assert_eq!(after[0].position, in_tx.last_position());
    let rest = commits.events.take_after(in_tx.last_position(), 10);
    assert_same_events(&rest, &after[1..]);
    assert_chain_holds(&db).await;
}

/// `got` and `want` are the same events, field by field, in the same order.
fn assert_same_events(got: &[carelog_store::StoredEvent], want: &[carelog_store::StoredEvent]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.position, w.position);
        assert_eq!(g.header, w.header);
        assert_eq!(g.payload, w.payload);
        assert_eq!((g.prev_hash, g.hash), (w.prev_hash, w.hash));
    }
}
