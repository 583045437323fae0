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
/// projector runtime does after its last attempt; returns the entry id.
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
