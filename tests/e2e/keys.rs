//! Master-key rotation, refusal of the wrong master key, and data-key creation races.

use carelog_crypto::{Keyring, MasterKey};
use carelog_domain::{StreamVersion, SubjectId};
use carelog_store::keys::{rewrap_all, CacheConfig, SubjectKey};
use carelog_store::{startup_checks, Expected, KeyStore, Opened, StoreError};
use serde_json::json;

use crate::support::{self, event, one, patient_stream, TestDb};

#[tokio::test]
async fn rotating_the_master_key_rewraps_every_key_without_touching_events() {
    let db = TestDb::new().await;
    let old = MasterKey::generate();
    let store = support::store(&db, Keyring::new(old.clone(), []));
    let streams: Vec<_> = (0..5).map(|_| patient_stream()).collect();
    for s in &streams {
        store
            .append(one(
                *s,
                Expected::Any,
                event(s, "A", json!({ "s": s.to_string() })),
            ))
            .await
            .unwrap();
    }
    let before: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT payload, hash FROM events ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap();

    let new = MasterKey::generate();
    let mut seen = 0;
    let n = rewrap_all(&db.pool, &Keyring::new(old.clone(), []), &new, 2, |t| {
        seen = t
    })
    .await
    .unwrap();
    assert_eq!((n, seen), (5, 5));
    assert_eq!(
        rewrap_all(&db.pool, &Keyring::new(old.clone(), []), &new, 2, |_| ())
            .await
            .unwrap(),
        0,
        "idempotent"
    );

    let after: Vec<(Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT payload, hash FROM events ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(before, after, "events untouched");

    // The old key is no longer needed...
    let only_new = Keyring::new(new.clone(), []);
    startup_checks(&db.pool, &only_new).await.unwrap();
    let store = support::store(&db, only_new);
    for s in &streams {
        let ev = store.read_stream(s, StreamVersion::EMPTY, 1).await.unwrap();
        let Opened::Payload(p) = store.open(&ev[0]).await.unwrap() else {
            panic!("erased?")
        };
        assert_eq!(p["s"], s.to_string());
    }
    // ...and no longer enough.
    let err = startup_checks(&db.pool, &Keyring::new(old, []))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused(m) if m.contains(new.id().as_str())));
}

#[tokio::test]
async fn a_wrong_master_key_is_refused_at_start_up_with_a_clear_message() {
    let db = TestDb::new().await;
    let right = MasterKey::generate();
    let store = support::store(&db, Keyring::new(right.clone(), []));
    let s = patient_stream();
    store
        .append(one(s, Expected::Any, event(&s, "A", json!({}))))
        .await
        .unwrap();
    startup_checks(&db.pool, &Keyring::new(right.clone(), []))
        .await
        .unwrap();

    let wrong = MasterKey::generate();
    let err = startup_checks(&db.pool, &Keyring::new(wrong.clone(), []))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(right.id().as_str()) && msg.contains("Wrong master key"),
        "{msg}"
    );
    assert!(
        !msg.contains(&right.to_hex()) && !msg.contains(&wrong.to_hex()),
        "no key material"
    );
}

#[tokio::test]
async fn concurrent_first_use_of_a_subject_creates_one_key() {
    let db = TestDb::new().await;
    let keyring = support::keyring();
    let subject = SubjectId::of_stream(&patient_stream());
    let tasks = (0..8).map(|_| {
        let keys = KeyStore::new(db.pool.clone(), keyring.clone(), CacheConfig::default());
        let subject = subject.clone();
        tokio::spawn(async move { keys.for_write(&subject).await })
    });
    let ids: std::collections::HashSet<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| match r.unwrap().unwrap() {
            SubjectKey::Live(id, _) => id,
            SubjectKey::Destroyed(_) => panic!("destroyed?"),
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_keys")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_database_restored_logically_with_future_transaction_ids_is_refused() {
    let db = TestDb::new().await;
    let keyring = support::keyring();
    let store = support::store(&db, keyring.clone());
    let s = patient_stream();
    store
        .append(one(s, Expected::Any, event(&s, "A", json!({}))))
        .await
        .unwrap();
    startup_checks(&db.pool, &keyring).await.unwrap();

    // What a logical dump restored into a younger cluster looks like: rows whose writing
    // transaction ids lie beyond this cluster's counter.
    let mut admin = db.admin().await;
    sqlx::query(
        "INSERT INTO events (tx_id, event_id, stream_id, stream_type, version, event_type, schema_version,
                             subject_id, key_id, payload, metadata, recorded_at, prev_hash, hash)
         SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 1000000)::text::xid8,
                gen_random_uuid(), stream_id, stream_type, version + 1, event_type, schema_version,
                subject_id, key_id, payload, metadata, recorded_at, hash, hash
         FROM events WHERE stream_id = $1",
    )
    .bind(s.to_string())
    .execute(&mut admin)
    .await
    .unwrap();
    let err = startup_checks(&db.pool, &keyring).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Refused(_)), "{msg}");
    assert!(msg.contains("restored logically"), "{msg}");
}
