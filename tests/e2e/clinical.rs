//! Organisations, patients, clinical records and emergency access over HTTP, against a
//! running server (PostgreSQL, NATS, relay and projectors): tenant isolation on every
//! id-taking route, ORG:STAFF and clinical content, optimistic concurrency, idempotent
//! creation, record versions and voids, history `as_of`, emergency access, membership
//! changes taking effect at once, validation, read-your-writes, the demo seed.
//! The role × action matrix itself is in clinical_matrix.rs.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::app::PASSWORD;
use crate::support::clinical::{id_of, ids, patient_body, record_body, unknown_id};
use crate::support::{eventually, TestApp};

/// A patient (linked to no account) and a record of it, in a clinic.
struct Chart {
    patient: Uuid,
    patient_stream: String,
    record: Uuid,
}

async fn chart(app: &TestApp, org: Uuid, staff: &str, doctor: &str, family: &str) -> Chart {
    let p = app.new_patient(org, staff, family, None).await;
    let patient: Uuid = p["id"].as_str().unwrap().parse().unwrap();
    let r = app.new_record(patient, doctor, "Influenza").await;
    Chart {
        patient,
        patient_stream: p["stream_id"].as_str().unwrap().to_owned(),
        record: r["id"].as_str().unwrap().parse().unwrap(),
    }
}

/// The versions of the streams a test watches, and the length of the log.
async fn snapshot(app: &TestApp, streams: &[String]) -> (Vec<i64>, i64) {
    let mut versions = Vec::new();
    for s in streams {
        versions.push(app.stream_version(s).await);
    }
    (versions, app.log_len().await)
}

// ---- tenant isolation ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_of_another_org_using_ids_of_org_a_gets_404_on_every_route_and_nothing_changes() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let b = app.clinic("Org B").await;
    let c = chart(&app, a.id, a.staff.token(), a.doctor.token(), "Isolated").await;
    let (org, p, rec) = (a.id, c.patient, c.record);
    let streams = [
        format!("org-{org}"),
        c.patient_stream.clone(),
        format!("record-{rec}"),
    ];
    let before = snapshot(&app, &streams).await;

    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/organizations/{org}"), None),
        (
            "POST",
            format!("/api/organizations/{org}/members"),
            Some(json!({"email": b.staff.email, "role": "ORG:ADMIN"})),
        ),
        ("GET", format!("/api/organizations/{org}/members"), None),
        (
            "DELETE",
            format!("/api/organizations/{org}/members/{}", a.doctor.id()),
            None,
        ),
        (
            "POST",
            format!("/api/organizations/{org}/patients"),
            Some(patient_body("Intruder", "Planted")),
        ),
        ("GET", format!("/api/organizations/{org}/patients"), None),
        ("GET", format!("/api/patients/{p}"), None),
        (
            "PATCH",
            format!("/api/patients/{p}"),
            Some(json!({"family_name": "Tampered"})),
        ),
        ("GET", format!("/api/patients/{p}/history"), None),
        (
            "POST",
            format!("/api/patients/{p}/clinical-records"),
            Some(record_body("Planted", "Planted record")),
        ),
        ("GET", format!("/api/patients/{p}/clinical-records"), None),
        ("GET", format!("/api/clinical-records/{rec}"), None),
        (
            "PATCH",
            format!("/api/clinical-records/{rec}"),
            Some(json!({"body": "tampered"})),
        ),
        (
            "POST",
            format!("/api/clinical-records/{rec}/void"),
            Some(json!({"reason": "tampered"})),
        ),
        ("GET", format!("/api/clinical-records/{rec}/history"), None),
    ];
    // Every org role of B; the doctor is the one who may write records somewhere.
    let mut failures = Vec::new();
    for (who, token) in [
        ("ORG:ADMIN of B", b.admin.token()),
        ("ORG:DOCTOR of B", b.doctor.token()),
        ("ORG:STAFF of B", b.staff.token()),
        ("ORG:AUDITOR of B", b.auditor.token()),
    ] {
        for (method, path, body) in &cases {
            let r = app.call(method, path, body.clone(), token).await;
            // Non-doctors are refused record writes by the gateway (403) whatever the id:
            // that says nothing of the record's existence.
            let writes_records =
                (*method != "GET" && path.contains("clinical-records")) && !who.contains("DOCTOR");
            let expected = if writes_records { 403 } else { 404 };
            if r.status != expected {
                failures.push(format!(
                    "{who} {method} {path}: expected {expected}, got {} {:?}",
                    r.status, r.body
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Ids nobody issued answer the same as ids of another org.
    for path in [
        format!("/api/organizations/{}", unknown_id()),
        format!("/api/patients/{}", unknown_id()),
        format!("/api/clinical-records/{}", unknown_id()),
    ] {
        assert_eq!(
            app.call("GET", &path, None, b.doctor.token()).await.status,
            404
        );
    }

    assert_eq!(snapshot(&app, &streams).await, before, "nothing changed");
    let list = format!("/api/organizations/{org}/patients");
    eventually(Duration::from_secs(10), "A's list shows P", || async {
        let r = app.get(&list, Some(a.staff.token())).await;
        r.body["meta"]["total"] == 1
    })
    .await;
    let r = app.get(&list, Some(a.staff.token())).await;
    assert_eq!(ids(&r), vec![p], "only P, nothing planted");
    let r = app
        .get(&format!("/api/patients/{p}"), Some(a.staff.token()))
        .await;
    assert_eq!(r.body["data"]["family_name"], "Isolated");
    let r = app
        .get(
            &format!("/api/clinical-records/{rec}"),
            Some(a.doctor.token()),
        )
        .await;
    assert_eq!(r.body["data"]["status"], "active");
    assert_eq!(r.body["data"]["version"], 1);
    let r = app
        .get(
            &format!("/api/organizations/{org}/members"),
            Some(a.admin.token()),
        )
        .await;
    let members = r.body["data"].as_array().unwrap();
    assert!(members.iter().all(|m| m["email"] != json!(b.staff.email)));
    assert!(members.iter().any(|m| m["user_id"] == json!(a.doctor.id())));
}

// ---- ORG:STAFF -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn org_staff_see_demographics_and_never_clinical_content() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let c = chart(&app, a.id, a.staff.token(), a.doctor.token(), "Staffed").await;
    let staff = a.staff.token();

    let r = app
        .get(&format!("/api/patients/{}", c.patient), Some(staff))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["family_name"], "Staffed");
    let r = app
        .get(&format!("/api/patients/{}/history", c.patient), Some(staff))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["state"]["family_name"], "Staffed");

    for path in [
        format!("/api/patients/{}/clinical-records", c.patient),
        format!("/api/clinical-records/{}", c.record),
        format!("/api/clinical-records/{}/history", c.record),
    ] {
        let r = app.get(&path, Some(staff)).await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{path}");
        let text = r.body.to_string();
        assert!(!text.contains("Influenza"), "{path} leaks content: {text}");
    }
    let r = app
        .post(
            &format!("/api/patients/{}/clinical-records", c.patient),
            record_body("By staff", "not allowed"),
            Some(staff),
        )
        .await;
    assert_eq!(r.status, 403);
}

// ---- concurrency ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_if_match_is_a_conflict_and_twenty_concurrent_updates_of_one_version_let_one_win() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let p = app
        .new_patient(a.id, a.staff.token(), "Concurrent", None)
        .await;
    let id = p["id"].as_str().unwrap().to_owned();
    let stream = p["stream_id"].as_str().unwrap().to_owned();
    let path = format!("/api/patients/{id}");

    let r = app.get(&path, Some(a.staff.token())).await;
    assert_eq!(r.header("etag"), Some("\"1\""));
    let r = app
        .patch(
            &path,
            json!({"given_name": "Two"}),
            a.staff.token(),
            Some(1),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["version"], 2);
    assert_eq!(r.header("etag"), Some("\"2\""));
    let r = app
        .patch(
            &path,
            json!({"given_name": "Stale"}),
            a.staff.token(),
            Some(1),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"));
    assert_eq!(app.stream_version(&stream).await, 2);

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (http, url, token) = (
                app.http.clone(),
                app.url(&path),
                a.doctor.token().to_owned(),
            );
            tokio::spawn(async move {
                http.patch(url)
                    .bearer_auth(token)
                    .header("If-Match", "\"2\"")
                    .json(&json!({"given_name": format!("Racer{i}")}))
                    .send()
                    .await
                    .expect("sent")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let conflict = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((ok, conflict), (1, 19), "statuses: {statuses:?}");
    assert_eq!(app.stream_version(&stream).await, 3);
    let r = app.get(&path, Some(a.staff.token())).await;
    assert_eq!(r.body["data"]["version"], 3);
    assert!(r.body["data"]["given_name"]
        .as_str()
        .unwrap()
        .starts_with("Racer"));
}

// ---- idempotency ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_replay_registers_one_patient() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let path = format!("/api/organizations/{}/patients", a.id);
    let key = vec![("Idempotency-Key", format!("key-{}", Uuid::now_v7()))];
    let body = patient_body("Once", "Only");
    let first = app
        .call_with("POST", &path, Some(body.clone()), a.staff.token(), &key)
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let second = app
        .call_with("POST", &path, Some(body), a.staff.token(), &key)
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_eq!(id_of(&first), id_of(&second));

    // One patient in the inline index (written with the event) ...
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM patient_index WHERE org_id = $1")
        .bind(a.id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // ... and in the list, once the read model has applied the registration.
    let position = first.body["data"]["position"].as_i64().unwrap();
    eventually(
        Duration::from_secs(10),
        "the patients projection",
        || async {
            let cp = carelog_store::projector::checkpoint(&app.db.pool, "patients")
                .await
                .unwrap();
            cp.0 >= position
        },
    )
    .await;
    let r = app.get(&path, Some(a.staff.token())).await;
    assert_eq!(r.body["meta"]["total"], 1, "{:?}", r.body);
    assert_eq!(ids(&r), vec![id_of(&first)]);

    // The same key with another body is refused.
    let r = app
        .call_with(
            "POST",
            &path,
            Some(patient_body("Other", "Body")),
            a.staff.token(),
            &key,
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "IDEMPOTENCY_MISMATCH"));
}

// ---- record versions -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn amending_keeps_every_version_and_a_void_hides_the_record_from_lists_only() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let doctor = a.doctor.token();
    let c = chart(&app, a.id, a.staff.token(), doctor, "Versioned").await;
    let rec = format!("/api/clinical-records/{}", c.record);
    let list = format!("/api/patients/{}/clinical-records", c.patient);

    let r = app
        .patch(&rec, json!({"body": "second version"}), doctor, Some(1))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["version"], 2);
    assert_eq!(r.body["data"]["body"], "second version");
    let r = app.get(&rec, Some(doctor)).await;
    assert_eq!(r.body["data"]["body"], "second version");
    assert_eq!(r.header("etag"), Some("\"2\""));

    let r = app.get(&format!("{rec}/history"), Some(doctor)).await;
    assert_eq!(r.status, 200);
    let versions = r.body["data"]["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["body"], "Influenza: first version");
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["body"], "second version");

    // A void needs a reason.
    let stream = format!("record-{}", c.record);
    for body in [json!({}), json!({"reason": ""}), json!({"reason": "   "})] {
        let r = app
            .post(&format!("{rec}/void"), body.clone(), Some(doctor))
            .await;
        assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR"), "{body}");
    }
    assert_eq!(app.stream_version(&stream).await, 2);

    let r = app
        .post(
            &format!("{rec}/void"),
            json!({"reason": "entered in error"}),
            Some(doctor),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["status"], "voided");
    let position = r.body["data"]["position"].as_i64().unwrap();

    let r = app
        .get(&format!("{list}?min_position={position}"), Some(doctor))
        .await;
    assert_eq!(r.status, 200);
    assert!(ids(&r).is_empty(), "voided record listed: {:?}", r.body);
    assert_eq!(r.body["meta"]["total"], 0);

    let r = app.get(&format!("{rec}/history"), Some(doctor)).await;
    let versions = r.body["data"]["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2]["change"], "voided");
    assert_eq!(versions[2]["reason"], "entered in error");
    assert_eq!(versions[0]["body"], "Influenza: first version");

    // A voided record is not amended (nor voided twice).
    let r = app
        .patch(&rec, json!({"body": "after void"}), doctor, Some(3))
        .await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{:?}", r.body);
    let r = app
        .post(
            &format!("{rec}/void"),
            json!({"reason": "again"}),
            Some(doctor),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{:?}", r.body);
    assert_eq!(app.stream_version(&stream).await, 3);
}

// ---- history as_of -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_as_of_a_past_time_shows_the_state_then_and_auditors_get_events_only() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let p = app.new_patient(a.id, a.staff.token(), "Before", None).await;
    let id = p["id"].as_str().unwrap().to_owned();
    // The same clock as the server's: the time between the two commands.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = app
        .patch(
            &format!("/api/patients/{id}"),
            json!({"family_name": "After"}),
            a.staff.token(),
            Some(1),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let as_of = between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let url = format!("/api/patients/{id}/history?as_of={}", urlencode(&as_of));
    let r = app.get(&url, Some(a.doctor.token())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["state"]["family_name"], "Before");
    assert_eq!(r.body["data"]["version"], 1);
    assert_eq!(r.body["data"]["events"].as_array().unwrap().len(), 1);

    let r = app
        .get(
            &format!("/api/patients/{id}/history"),
            Some(a.doctor.token()),
        )
        .await;
    assert_eq!(r.body["data"]["state"]["family_name"], "After");
    assert_eq!(r.body["data"]["events"].as_array().unwrap().len(), 2);

    let r = app.get(&url, Some(a.auditor.token())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["data"]["state"].is_null(), "{:?}", r.body);
    assert_eq!(r.body["data"]["events"].as_array().unwrap().len(), 1);
    assert!(!r.body.to_string().contains("Before"));

    let r = app
        .get(
            &format!("/api/patients/{id}/history?as_of=yesterday"),
            Some(a.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 400);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

// ---- emergency access ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emergency_access_needs_a_reason_opens_the_chart_and_expires_by_itself() {
    let cfg = carelog_commands::clinical::ClinicalConfig {
        emergency_duration: chrono::Duration::seconds(2),
        ..Default::default()
    };
    let app = TestApp::spawn_full_with(cfg).await;
    let a = app.clinic("Org A").await;
    let b = app.clinic("Org B").await;
    let c = chart(&app, a.id, a.staff.token(), a.doctor.token(), "Emergency").await;
    let doctor = b.doctor.token();
    let patient = format!("/api/patients/{}", c.patient);
    let records = format!("{patient}/clinical-records");
    let record = format!("/api/clinical-records/{}", c.record);

    assert_eq!(app.get(&patient, Some(doctor)).await.status, 404);
    assert_eq!(app.get(&records, Some(doctor)).await.status, 404);

    let before = app.log_len().await;
    for body in [json!({}), json!({"reason": ""}), json!({"reason": "  "})] {
        let r = app
            .post(
                &format!("{patient}/emergency-access"),
                body.clone(),
                Some(doctor),
            )
            .await;
        assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR"), "{body}");
    }
    assert_eq!(
        app.log_len().await,
        before,
        "a refused grant leaves no event"
    );
    assert_eq!(app.get(&patient, Some(doctor)).await.status, 404);
    let r = app
        .post(
            &format!("/api/patients/{}/emergency-access", unknown_id()),
            json!({"reason": "unconscious"}),
            Some(doctor),
        )
        .await;
    assert_eq!(r.status, 404);

    let r = app
        .post(
            &format!("{patient}/emergency-access"),
            json!({"reason": "unconscious in the emergency room"}),
            Some(doctor),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["patient_id"], json!(c.patient));
    assert!(d["id"].as_str().is_some());
    let expires: chrono::DateTime<Utc> = d["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires - Utc::now();
    assert!(
        left > chrono::Duration::zero() && left <= chrono::Duration::seconds(2),
        "{left}"
    );

    let r = app.get(&patient, Some(doctor)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["family_name"], "Emergency");
    let r = app.get(&records, Some(doctor)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(ids(&r), vec![c.record]);
    assert_eq!(app.get(&record, Some(doctor)).await.status, 200);
    // Read-only: no writing under an emergency grant.
    let r = app
        .post(&records, record_body("Under emergency", "x"), Some(doctor))
        .await;
    assert_eq!(r.status, 403);
    // Another doctor of B holds no grant.
    let other = app.member(b.id, b.admin.token(), "ORG:DOCTOR").await;
    assert_eq!(app.get(&patient, Some(other.token())).await.status, 404);

    eventually(Duration::from_secs(6), "the grant expires", || async {
        app.get(&patient, Some(doctor)).await.status == 404
    })
    .await;
    assert!(Utc::now() >= expires);
    assert_eq!(app.get(&records, Some(doctor)).await.status, 404);
    assert_eq!(app.get(&record, Some(doctor)).await.status, 404);
}

// ---- memberships ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_member_is_refused_on_the_next_request_with_the_same_token() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let c = chart(&app, a.id, a.staff.token(), a.doctor.token(), "Removal").await;
    let doctor = a.doctor.token();
    let patient = format!("/api/patients/{}", c.patient);
    assert_eq!(app.get(&patient, Some(doctor)).await.status, 200);

    let r = app
        .delete(
            &format!("/api/organizations/{}/members/{}", a.id, a.doctor.id()),
            a.admin.token(),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // The token is still valid ...
    let r = app.get("/api/auth/me", Some(doctor)).await;
    assert_eq!(r.status, 200);
    // ... but the membership is gone.
    assert_eq!(app.get(&patient, Some(doctor)).await.status, 404);
    let r = app
        .get(&format!("/api/clinical-records/{}", c.record), Some(doctor))
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(
        app.get(&format!("/api/organizations/{}", a.id), Some(doctor))
            .await
            .status,
        404
    );
    let r = app
        .post(
            &format!("/api/patients/{}/clinical-records", c.patient),
            record_body("After removal", "x"),
            Some(doctor),
        )
        .await;
    assert_eq!(r.status, 403, "no longer a doctor anywhere: {:?}", r.body);

    // A role change applies at once too: staff made auditor loses the patient list.
    let path = format!("/api/organizations/{}/patients", a.id);
    assert_eq!(app.get(&path, Some(a.staff.token())).await.status, 200);
    let r = app
        .add_member(a.id, a.admin.token(), &a.staff.email, "ORG:AUDITOR")
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(app.get(&path, Some(a.staff.token())).await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn me_lists_the_callers_memberships() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let b = app.clinic("Org B").await;
    let r = app
        .add_member(b.id, b.admin.token(), &a.doctor.email, "ORG:STAFF")
        .await;
    assert_eq!(r.status, 201);
    let r = app.get("/api/auth/me", Some(a.doctor.token())).await;
    assert_eq!(r.status, 200);
    let mut got: Vec<(String, String)> = r.body["data"]["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["org_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (a.id.to_string(), "ORG:DOCTOR".to_owned()),
        (b.id.to_string(), "ORG:STAFF".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
    let r = app.get("/api/auth/me", Some(a.founder.token())).await;
    assert_eq!(
        r.body["data"]["memberships"],
        json!([{"org_id": a.id, "role": "ORG:ADMIN"}])
    );
}

// ---- validation ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_bodies_are_refused_with_the_field_named_and_change_nothing() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let c = chart(&app, a.id, a.staff.token(), a.doctor.token(), "Valid").await;
    let before = app.log_len().await;
    let patients = format!("/api/organizations/{}/patients", a.id);
    let mut with_unknown = patient_body("Mass", "Assigned");
    with_unknown["org_id"] = json!(Uuid::now_v7());
    let mut bad_date = patient_body("Bad", "Date");
    bad_date["birth_date"] = json!("1980-13-45");
    let mut future = patient_body("Future", "Born");
    future["birth_date"] = json!("2999-01-01");
    let mut bad_sex = patient_body("Bad", "Sex");
    bad_sex["sex"] = json!("robot");
    let mut blank = patient_body("", "Blank");
    blank["given_name"] = json!("  ");
    let mut bad_kind = record_body("Kind", "x");
    bad_kind["kind"] = json!("horoscope");
    let mut bad_record_unknown = record_body("Unknown", "x");
    bad_record_unknown["author_id"] = json!(a.founder.id());

    let records = format!("/api/patients/{}/clinical-records", c.patient);
    let cases: Vec<(&str, String, Value, &str, &str)> = vec![
        ("POST", patients.clone(), with_unknown, "org_id", "staff"),
        ("POST", patients.clone(), bad_date, "birth_date", "staff"),
        ("POST", patients.clone(), future, "birth_date", "staff"),
        ("POST", patients.clone(), bad_sex, "sex", "staff"),
        ("POST", patients.clone(), blank, "given_name", "staff"),
        (
            "PATCH",
            format!("/api/patients/{}", c.patient),
            json!({"birth_date": "17/05/1980"}),
            "birth_date",
            "staff",
        ),
        (
            "PATCH",
            format!("/api/patients/{}", c.patient),
            json!({"org_id": Uuid::now_v7()}),
            "org_id",
            "staff",
        ),
        ("POST", records.clone(), bad_kind, "kind", "doctor"),
        (
            "POST",
            records.clone(),
            bad_record_unknown,
            "author_id",
            "doctor",
        ),
        (
            "PATCH",
            format!("/api/clinical-records/{}", c.record),
            json!({"version": 7}),
            "version",
            "doctor",
        ),
        (
            "POST",
            format!("/api/organizations/{}/members", a.id),
            json!({"email": a.staff.email, "role": "SUPER:ADMIN"}),
            "role",
            "admin",
        ),
        (
            "POST",
            "/api/organizations".to_owned(),
            json!({"name": "Org", "owner": a.staff.id()}),
            "owner",
            "founder",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, field, who) in cases {
        let token = match who {
            "staff" => a.staff.token(),
            "doctor" => a.doctor.token(),
            "admin" => a.admin.token(),
            _ => a.founder.token(),
        };
        let r = app.call(method, &path, Some(body.clone()), token).await;
        let fields = r.body["error"]["details"]["fields"].to_string();
        if r.status != 400 || r.code() != "VALIDATION_ERROR" || !fields.contains(field) {
            failures.push(format!(
                "{method} {path} {body}: expected 400 naming {field}, got {} {:?}",
                r.status, r.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        app.log_len().await,
        before,
        "a refused command appends nothing"
    );
    eventually(
        Duration::from_secs(10),
        "the list shows the patient",
        || async {
            let r = app.get(&patients, Some(a.staff.token())).await;
            r.body["meta"]["total"] == 1
        },
    )
    .await;
    let r = app
        .get(
            &format!("/api/patients/{}", c.patient),
            Some(a.staff.token()),
        )
        .await;
    assert_eq!(r.body["data"]["birth_date"], "1980-05-17");
    assert_eq!(r.body["data"]["version"], 1);
}

// ---- read your writes ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_reads_its_own_writes_and_filters_by_exact_family_name() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let staff = a.staff.token();
    let path = format!("/api/organizations/{}/patients", a.id);

    let r = app
        .post_patient(a.id, staff, patient_body("Jane", "Smith"))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.header("etag"), Some("\"1\""));
    let id = id_of(&r);
    let position = r.body["data"]["position"].as_i64().unwrap();
    let got = app.get(&format!("/api/patients/{id}"), Some(staff)).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["data"]["family_name"], "Smith");
    assert_eq!(got.body["data"]["given_name"], "Jane");
    assert_eq!(got.header("cache-control"), Some("no-store"));
    let r = app
        .get(&format!("{path}?min_position={position}"), Some(staff))
        .await;
    assert_eq!(r.status, 200);
    assert!(ids(&r).contains(&id), "{:?}", r.body);

    let r = app
        .post_patient(a.id, staff, patient_body("John", "Smithson"))
        .await;
    let smithson = id_of(&r);
    let position = r.body["data"]["position"].as_i64().unwrap();
    let r = app
        .get(
            &format!("{path}?family_name=Smith&min_position={position}"),
            Some(staff),
        )
        .await;
    assert_eq!(ids(&r), vec![id]);
    assert_eq!(r.body["meta"]["total"], 1);
    let r = app
        .get(&format!("{path}?family_name=Smithson"), Some(staff))
        .await;
    assert_eq!(ids(&r), vec![smithson]);
    let r = app
        .get(&format!("{path}?family_name=Smi"), Some(staff))
        .await;
    assert!(ids(&r).is_empty());
    let r = app
        .get(&format!("{path}?limit=1&page=2"), Some(staff))
        .await;
    assert_eq!(r.body["meta"]["total"], 2);
    assert_eq!(ids(&r).len(), 1);

    // A record written is read back at once, by id and in the list.
    let rec = app.new_record(id, a.doctor.token(), "Fresh").await;
    let rid: Uuid = rec["id"].as_str().unwrap().parse().unwrap();
    let r = app
        .get(
            &format!("/api/clinical-records/{rid}"),
            Some(a.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["title"], "Fresh");
    let pos = rec["position"].as_i64().unwrap();
    let r = app
        .get(
            &format!("/api/patients/{id}/clinical-records?min_position={pos}"),
            Some(a.doctor.token()),
        )
        .await;
    assert_eq!(ids(&r), vec![rid]);
}

// ---- demo seed -----------------------------------------------------------------------

async fn login_as(app: &TestApp, email: &str) -> String {
    app.login(email).await.token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_seed_gives_every_demo_login_what_its_role_says() {
    let app = TestApp::spawn_full().await;
    let admin = app.super_admin().await;
    carelog::seed::seed_demo(
        &app.services.identity,
        &app.services.clinical,
        carelog_domain::UserId(admin.user_id),
        PASSWORD,
    )
    .await
    .expect("demo seeded");
    for login in carelog::seed::DEMO_LOGINS {
        let r = app
            .post(
                "/api/auth/login",
                json!({"email": login.email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(
            r.status, 200,
            "{} ({}): {:?}",
            login.email, login.role, r.body
        );
    }

    let org_admin = login_as(&app, "orgadmin@riverside.example").await;
    // The one organisation of the demo (`/api/auth/me` would tell, see
    // me_lists_the_callers_memberships).
    let org: Uuid = sqlx::query_scalar("SELECT org_id FROM organizations")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let patients_path = format!("/api/organizations/{org}/patients");
    // The platform admin handed the org over: no longer a member.
    let r = app
        .get(
            &format!("/api/organizations/{org}/members"),
            Some(&org_admin),
        )
        .await;
    let member_ids: Vec<&Value> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["user_id"])
        .collect();
    assert_eq!(member_ids.len(), 4, "{:?}", r.body);
    assert!(!member_ids.contains(&&json!(admin.user_id)));

    let mut patients = Vec::new();
    eventually(
        Duration::from_secs(10),
        "the demo patients are listed",
        || {
            let (app, path, token) = (&app, &patients_path, &org_admin);
            async move { app.get(path, Some(token)).await.body["meta"]["total"] == 3 }
        },
    )
    .await;
    let r = app.get(&patients_path, Some(&org_admin)).await;
    for p in r.body["data"].as_array().unwrap() {
        patients.push((
            p["family_name"].as_str().unwrap().to_owned(),
            p["id"].as_str().unwrap().to_owned(),
        ));
    }
    patients.sort();
    let alice = &patients.iter().find(|(f, _)| f == "Martin").unwrap().1;
    let bruno = &patients.iter().find(|(f, _)| f == "Keller").unwrap().1;
    let alice_records = format!("/api/patients/{alice}/clinical-records");

    // ORG:ADMIN: patients yes, records no.
    assert_eq!(app.get(&alice_records, Some(&org_admin)).await.status, 403);
    // ORG:DOCTORs: six records of every kind.
    for email in ["dr.adams@riverside.example", "dr.baker@riverside.example"] {
        let t = login_as(&app, email).await;
        let mut kinds = Vec::new();
        eventually(
            Duration::from_secs(10),
            "the demo records are listed",
            || {
                let (app, path, t) = (&app, &alice_records, &t);
                async move { app.get(path, Some(t)).await.body["meta"]["total"] == 6 }
            },
        )
        .await;
        let r = app.get(&alice_records, Some(&t)).await;
        for rec in r.body["data"].as_array().unwrap() {
            kinds.push(rec["kind"].as_str().unwrap().to_owned());
        }
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "diagnosis",
                "immunization",
                "lab_result",
                "note",
                "prescription",
                "vital_signs"
            ],
            "{email}"
        );
    }
    // ORG:STAFF: the patient list, never records.
    let staff = login_as(&app, "staff@riverside.example").await;
    assert_eq!(app.get(&patients_path, Some(&staff)).await.status, 200);
    assert_eq!(app.get(&alice_records, Some(&staff)).await.status, 403);
    // BASE:DOCTOR: not of the org, no consent: nothing exists.
    let solo = login_as(&app, "dr.solo@practice.example").await;
    assert_eq!(app.get(&patients_path, Some(&solo)).await.status, 404);
    assert_eq!(
        app.get(&format!("/api/patients/{alice}"), Some(&solo))
            .await
            .status,
        404
    );
    assert_eq!(app.get(&alice_records, Some(&solo)).await.status, 404);
    // The patient: own chart and records, not another patient's.
    let alice_token = login_as(&app, "alice@patients.example").await;
    let r = app
        .get(&format!("/api/patients/{alice}"), Some(&alice_token))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["given_name"], "Alice");
    let r = app.get(&alice_records, Some(&alice_token)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["meta"]["total"], 6);
    assert_eq!(
        app.get(&format!("/api/patients/{bruno}"), Some(&alice_token))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&patients_path, Some(&alice_token)).await.status,
        404
    );
    // APP:AUDITOR: history metadata, never the state.
    let auditor = login_as(&app, "auditor@carelog.example").await;
    let r = app
        .get(&format!("/api/patients/{alice}/history"), Some(&auditor))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["data"]["state"].is_null());
    assert!(!r.body["data"]["events"].as_array().unwrap().is_empty());
    assert_eq!(
        app.get(&format!("/api/patients/{alice}"), Some(&auditor))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_member_who_may_not_add_members_cannot_probe_which_emails_have_accounts() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let known = app.account("PATIENT").await;
    let before = app.log_len().await;
    for email in [known.email.as_str(), "nobody-here@example.org"] {
        let r = app
            .add_member(a.id, a.doctor.token(), email, "ORG:STAFF")
            .await;
        assert_eq!(r.status, 403, "{email}: {:?}", r.body);
    }
    assert_eq!(app.log_len().await, before, "a refusal changes nothing");
}

/// Registering a patient creates the patient's data key inside the command's
/// transaction: 50 registrations at once on a 12-connection pool must all succeed (a key
/// fetched on a second pooled connection while the transaction holds one would exhaust
/// the pool and answer 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_registrations_all_succeed_on_a_small_pool() {
    let app = TestApp::spawn().await;
    let clinic = app.clinic("Busy Clinic").await;
    let answers = futures::future::join_all((0..50).map(|i| {
        app.post_patient(
            clinic.id,
            clinic.staff.token(),
            patient_body("Pat", &format!("Busy{i}")),
        )
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM subject_keys WHERE subject_id LIKE 'patient-%'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(keys, 50, "one data key per patient");
}
