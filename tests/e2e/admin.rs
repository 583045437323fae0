//! The operations API (`/admin/dlq*`, `/admin/projections`): platform administrators
//! only; retry and discard are audited commands.

use carelog_domain::operations::operations_stream;
use carelog_domain::{Role, StreamVersion};
use carelog_store::projector::{self as pstore, DlqStatus, NewDlqEntry};
use carelog_store::Expected;
use serde_json::json;
use uuid::Uuid;

use crate::support::{event, one, patient_stream, TestApp};

/// Appends one event and sets it aside as a failed dead letter of `audit_feed`, as the
/// projector runtime does after its last attempt; returns the entry id. With projectors
/// running (`spawn_full`), waits until `audit_feed` has applied it, then takes its row
/// back out, so the entry is the only way it returns.
async fn poisoned(app: &TestApp) -> Uuid {
    let s = patient_stream();
    let store = &app.services.store;
    store
        .append(one(
            s,
            Expected::Any,
            event(&s, "PatientRegistered", json!({"x": 1})),
        ))
        .await
        .unwrap();
    let ev = store
        .read_stream(&s, StreamVersion::EMPTY, 1)
        .await
        .unwrap()
        .remove(0);
    if app.nats.is_some() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while pstore::checkpoint(&app.db.pool, "audit_feed")
            .await
            .unwrap()
            < ev.position
        {
            assert!(
                std::time::Instant::now() < deadline,
                "audit_feed never caught up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        sqlx::query("DELETE FROM audit_feed WHERE event_id = $1")
            .bind(ev.header.event_id.0)
            .execute(&app.db.pool)
            .await
            .unwrap();
    }
    let mut tx = app.db.pool.begin().await.unwrap();
    pstore::dlq_insert(
        &mut tx,
        NewDlqEntry {
            projection: "audit_feed",
            event: &ev,
            status: DlqStatus::Failed,
            error: Some("simulated failure"),
            attempts: 5,
            first_failed_at: Some(chrono::Utc::now()),
        },
    )
    .await
    .unwrap();
    pstore::save_checkpoint(&mut tx, "audit_feed", ev.position)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let entries = carelog_projector::dlq::list(&app.db.pool, None)
        .await
        .unwrap();
    entries
        .iter()
        .find(|e| e.event_id == ev.header.event_id)
        .expect("entry")
        .id
}

#[tokio::test]
async fn only_platform_administrators_reach_the_operations_api() {
    let app = TestApp::spawn().await;
    let doctor = app.user("DOCTOR").await;
    let auditor = app.platform_user(Role::AppAuditor).await;
    let admin = app.platform_user(Role::AppAdmin).await;
    for path in ["/admin/dlq", "/admin/dlq/depth", "/admin/projections"] {
        assert_eq!(app.get(path, None).await.status, 401, "{path}");
        for who in [&doctor, &auditor] {
            let r = app.get(path, Some(&who.token)).await;
            assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{path}");
        }
        assert_eq!(
            app.get(path, Some(&admin.token)).await.status,
            200,
            "{path}"
        );
    }
    let id = Uuid::now_v7();
    let r = app
        .post(
            &format!("/admin/dlq/{id}/retry"),
            json!(null),
            Some(&doctor.token),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        app.delete(&format!("/admin/dlq/{id}"), &doctor.token)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_dead_letter_is_listed_counted_retried_and_the_retry_is_audited() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let id = poisoned(&app).await;

    let list = app.get("/admin/dlq", Some(&admin.token)).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["meta"]["total"], 1);
    let entry = &list.body["data"][0];
    assert_eq!(entry["id"], id.to_string());
    assert_eq!(
        (entry["status"].as_str(), entry["attempts"].as_i64()),
        (Some("failed"), Some(5))
    );
    assert_eq!(entry["error"], "simulated failure");
    let depth = app.get("/admin/dlq/depth", Some(&admin.token)).await;
    assert_eq!(
        depth.body["data"],
        json!({"depth": 1, "threshold": 100, "alert": false})
    );
    let projections = app.get("/admin/projections", Some(&admin.token)).await;
    let feed = &projections.body["data"][0];
    assert_eq!(
        (feed["name"].as_str(), feed["status"].as_str()),
        (Some("audit_feed"), Some("blocked"))
    );

    let missing = app
        .post(
            &format!("/admin/dlq/{}/retry", Uuid::now_v7()),
            json!(null),
            Some(&admin.token),
        )
        .await;
    assert_eq!((missing.status, missing.code()), (404, "NOT_FOUND"));
    let malformed = app
        .post(
            "/admin/dlq/not-a-uuid/retry",
            json!(null),
            Some(&admin.token),
        )
        .await;
    assert_eq!(malformed.status, 400);

    let r = app
        .post(
            &format!("/admin/dlq/{id}/retry"),
            json!(null),
            Some(&admin.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let depth = app.get("/admin/dlq/depth", Some(&admin.token)).await;
    assert_eq!(depth.body["data"]["depth"], 0);
    let again = app
        .post(
            &format!("/admin/dlq/{id}/retry"),
            json!(null),
            Some(&admin.token),
        )
        .await;
    assert_eq!(again.status, 404, "a retried entry is gone");
    let fed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(fed, 1, "the retried event reached the read model");

    let ops = app
        .services
        .store
        .read_stream(&operations_stream(), StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let retried = ops
        .iter()
        .find(|e| e.header.event_type.as_str() == "DlqEntryRetried")
        .expect("audited");
    assert_eq!(retried.header.metadata.actor_id, Some(admin.user_id));
}

#[tokio::test]
async fn a_dead_letter_is_discarded_and_the_depth_alert_follows_the_threshold() {
    let app = TestApp::spawn_with(
        carelog_api::state::ApiConfig {
            rate_limiting_enabled: false,
            dlq_alert_threshold: 0,
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let admin = app.super_admin().await;
    let id = poisoned(&app).await;
    let depth = app.get("/admin/dlq/depth", Some(&admin.token)).await;
    assert_eq!(
        depth.body["data"],
        json!({"depth": 1, "threshold": 0, "alert": true})
    );
    let r = app.delete(&format!("/admin/dlq/{id}"), &admin.token).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let depth = app.get("/admin/dlq/depth", Some(&admin.token)).await;
    assert_eq!(
        depth.body["data"],
        json!({"depth": 0, "threshold": 0, "alert": false})
    );
    let fed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(fed, 0, "a discarded event is not applied");
    let ops = app
        .services
        .store
        .read_stream(&operations_stream(), StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    assert!(ops
        .iter()
        .any(|e| e.header.event_type.as_str() == "DlqEntryDiscarded"));
}

#[tokio::test]
async fn retry_and_discard_through_the_api_record_why_and_publish_their_notices() {
    let app = TestApp::spawn_full().await;
    let admin = app.super_admin().await;
    let nats = app.nats.as_ref().expect("nats");
    let retried = poisoned(&app).await;
    let discarded = poisoned(&app).await;

    // A reason that is not text of at most 500 characters is refused; nothing changes.
    for bad in [json!({"reason": "x".repeat(501)}), json!({"why": "typo"})] {
        let r = app
            .post(
                &format!("/admin/dlq/{retried}/retry"),
                bad,
                Some(&admin.token),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR"),
            "{:?}",
            r.body
        );
    }
    let depth = app.get("/admin/dlq/depth", Some(&admin.token)).await;
    assert_eq!(depth.body["data"]["depth"], 2);

    let r = app
        .post(
            &format!("/admin/dlq/{retried}/retry"),
            json!({"reason": "schema fixed in 1.4.2"}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .send(
            app.http
                .delete(app.url(&format!("/admin/dlq/{discarded}")))
                .bearer_auth(&admin.token)
                .json(&json!({"reason": "test data"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Why is in the audit events, with who.
    let ops = app
        .services
        .store
        .read_stream(&operations_stream(), StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for e in &ops {
        let carelog_store::Opened::Payload(p) = app.services.store.open(e).await.unwrap() else {
            panic!("operations are never erased")
        };
        assert_eq!(e.header.metadata.actor_id, Some(admin.user_id));
        reasons.push((e.header.event_type.as_str().to_owned(), p["reason"].clone()));
    }
    assert_eq!(
        reasons,
        vec![
            ("DlqEntryRetried".to_owned(), json!("schema fixed in 1.4.2")),
            ("DlqEntryDiscarded".to_owned(), json!("test data")),
        ]
    );

    // The notices are on `<prefix>DLQ`: one per settled entry, no reason (free text
    // stays in the sealed log).
    let js = nats.jetstream();
    let mut stream = js
        .get_stream(format!("{}DLQ", nats.prefix))
        .await
        .expect("the DLQ stream exists");
    let state = stream.info().await.unwrap().state.clone();
    let mut seen = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        assert!(!String::from_utf8_lossy(&m.payload).contains("schema fixed"));
        let n = carelog_bus::dead_letter::decode(&m.payload).expect("a DLQ notice");
        seen.push((n.dlq_entry_id, n.status));
    }
    use carelog_bus::dead_letter::NoticeStatus;
    assert!(seen.contains(&(retried, NoticeStatus::Retried)), "{seen:?}");
    assert!(
        seen.contains(&(discarded, NoticeStatus::Discarded)),
        "{seen:?}"
    );
}
