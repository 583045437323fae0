//! Encryption at rest, tamper evidence and crypto-shredding, looked at the way an
//! attacker with a copy of the database would.

use carelog_domain::{StreamVersion, SubjectId};
use carelog_store::{verify_chain, Expected, Opened, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::support::{self, event, one, patient_stream, TestDb};

#[tokio::test]
async fn a_plaintext_marker_appears_nowhere_in_a_dump_of_the_database() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let marker = format!("Zyxwvut-{}", Uuid::now_v7().simple());
    let s = patient_stream();
    store
        .append(one(
            s,
            Expected::Any,
            event(
                &s,
                "PatientRegistered",
                json!({ "family_name": marker, "national_id": marker }),
            ),
        ))
        .await
        .unwrap();
    let dump = db.pg_dump(&[]);
    assert!(
        dump.contains(&s.to_string()),
        "the dump holds the event (sanity)"
    );
    assert!(!dump.contains(&marker), "plaintext found in the dump");
    let hex: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !dump.contains(&hex),
        "plaintext found hex-encoded in the dump"
    );
    // ...while carelog itself opens it.
    let stored = store
        .read_stream(&s, StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let Opened::Payload(p) = store.open(&stored[0]).await.unwrap() else {
        panic!("erased?")
    };
    assert_eq!(p["family_name"], marker.as_str());
}

#[tokio::test]
async fn a_flipped_ciphertext_byte_fails_verification_at_that_event_and_does_not_open() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let (s, other) = (patient_stream(), patient_stream());
    for i in 0..3 {
        store
            .append(one(s, Expected::Any, event(&s, "A", json!({ "i": i }))))
            .await
            .unwrap();
        store
            .append(one(
                other,
                Expected::Any,
                event(&other, "A", json!({ "i": i })),
            ))
            .await
            .unwrap();
    }
    assert!(verify_chain(&db.pool, None).await.unwrap().ok);
    let events = store
        .read_stream(&s, StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let target = events[1].position.0;
    db.flip_payload_byte(target).await;

    let report = verify_chain(&db.pool, Some(&s)).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].position, target);
    assert_eq!(report.failures[0].stream_id, s.to_string());
    let whole = verify_chain(&db.pool, None).await.unwrap();
    assert_eq!((whole.ok, whole.checked, whole.streams), (false, 6, 2));
    assert_eq!(whole.failures.len(), 1, "the other stream is intact");
    assert!(verify_chain(&db.pool, Some(&other)).await.unwrap().ok);

    let tampered = store
        .read_stream(&s, StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let err = store.open(&tampered[1]).await.unwrap_err();
    assert!(matches!(err, StoreError::Tampered { position } if position == target));
    assert!(matches!(
        store.open(&tampered[0]).await.unwrap(),
        Opened::Payload(_)
    ));
}

#[tokio::test]
async fn a_ciphertext_copied_onto_another_row_does_not_open() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    for i in 0..2 {
        store
            .append(one(s, Expected::Any, event(&s, "A", json!({ "i": i }))))
            .await
            .unwrap();
    }
    let events = store
        .read_stream(&s, StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let mut admin = db.forger().await;
    sqlx::query("UPDATE events SET payload = (SELECT payload FROM events WHERE position = $1) WHERE position = $2")
        .bind(events[0].position.0)
        .bind(events[1].position.0)
        .execute(&mut admin)
        .await
        .unwrap();
    let moved = store
        .read_stream(&s, StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    assert!(matches!(
        store.open(&moved[1]).await,
        Err(StoreError::Tampered { .. })
    ));
    assert!(!verify_chain(&db.pool, Some(&s)).await.unwrap().ok);
}

#[tokio::test]
async fn a_destroyed_key_makes_its_subject_read_as_erased_and_the_chain_still_verifies() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let (gone, kept) = (patient_stream(), patient_stream());
    for s in [gone, kept] {
        for i in 0..2 {
            store
                .append(one(s, Expected::Any, event(&s, "A", json!({ "i": i }))))
                .await
                .unwrap();
        }
    }
    let subject = SubjectId::of_stream(&gone);
    assert!(store.vault().keys().destroy(&subject).await.unwrap());
    assert!(
        !store.vault().keys().destroy(&subject).await.unwrap(),
        "already destroyed"
    );

    // A fresh store (no cache) and the one that destroyed it agree.
    let fresh = support::store(&db, support::keyring());
    for s in [&store, &fresh] {
        for ev in s
            .read_stream(&gone, StreamVersion::EMPTY, 10)
            .await
            .unwrap()
        {
            assert_eq!(s.open(&ev).await.unwrap(), Opened::Erased);
        }
    }
    for ev in store
        .read_stream(&kept, StreamVersion::EMPTY, 10)
        .await
        .unwrap()
    {
        assert!(matches!(store.open(&ev).await.unwrap(), Opened::Payload(_)));
    }
    let wrapped: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped_key FROM subject_keys WHERE subject_id = $1")
            .bind(subject.as_str())
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(wrapped.is_none(), "no wrapped key is left");
    let report = verify_chain(&db.pool, None).await.unwrap();
    assert!(report.ok && report.checked == 4, "{report:?}");
    // Nothing more can be written for an erased subject.
    let err = store
        .append(one(gone, Expected::Any, event(&gone, "A", json!({}))))
        .await
        .unwrap_err();
    assert!(matches!(err, carelog_store::AppendError::Erased(s) if s == subject));
}
