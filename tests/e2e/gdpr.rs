//! GDPR over HTTP (API.md "GDPR"), against a running server with relay and projectors:
//! erasure requests (confirm required, one open at a time), decisions by platform
//! admins only, legal holds, the erasure itself (crypto-shredding: no PHI left in the
//! database or on NATS, the log intact and verifiable, 410 everywhere, rebuilds bring
//! nothing back), and the export (JSON and FHIR R4, audited, only the patient's data).

use std::collections::HashSet;
use std::time::Duration;

use carelog_domain::{Position, Role};
use carelog_projector::clinical_records::ClinicalRecords;
use carelog_projector::patients::Patients;
use carelog_projector::Projection;
use carelog_store::read_models as rm;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::app::{Resp, Session};
use crate::support::clinical::{id_of, patient_body, record_body, Account, Clinic};
use crate::support::{eventually, TestApp};

/// A random string no other test (and no fixture) could contain.
fn unique(tag: &str) -> String {
    format!("{tag}{}", Uuid::now_v7().simple())
}

/// A patient of `clinic` linked to a new BASE:PATIENT account, with unique
/// demographics, and a record (amended once) written by the clinic's doctor.
struct Subject {
    patient: Uuid,
    account: Account,
    record: Uuid,
    given: String,
    family: String,
    email: String,
    national_id: String,
    record_title: String,
}

async fn subject(app: &TestApp, clinic: &Clinic) -> Subject {
    let account = app.account("PATIENT").await;
    let (given, family) = (unique("Given"), unique("Family"));
    let email = format!("{}@erase.example.org", unique("mail"));
    let national_id = unique("NID");
    let mut body = patient_body(&given, &family);
    body["email"] = json!(email);
    body["national_id"] = json!(national_id);
    body["user_id"] = json!(account.id());
    let r = app
        .post_patient(clinic.id, clinic.staff.token(), body)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let patient = id_of(&r);
    let record_title = unique("Title");
    let r = app
        .post(
            &format!("/api/patients/{patient}/clinical-records"),
            record_body(&record_title, &format!("{record_title} body")),
            Some(clinic.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let record = id_of(&r);
    let r = app
        .patch(
            &format!("/api/clinical-records/{record}"),
            json!({"body": format!("{record_title} amended")}),
            clinic.doctor.token(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    Subject {
        patient,
        account,
        record,
        given,
        family,
        email,
        national_id,
        record_title,
    }
}

fn erasure_path(patient: Uuid) -> String {
    format!("/api/patients/{patient}/erasure-request")
}

async fn request_erasure(app: &TestApp, patient: Uuid, token: &str) -> Uuid {
    let r = app
        .post(
            &erasure_path(patient),
            json!({"reason": "I am moving abroad", "confirm": true}),
            Some(token),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["data"]["status"], "pending");
    assert_eq!(r.body["data"]["kind"], "erasure");
    id_of(&r)
}

async fn approve(app: &TestApp, dsr: Uuid, token: &str) -> Resp {
    app.post(&format!("/api/dsr/{dsr}/approve"), json!({}), Some(token))
        .await
}

async fn admins(app: &TestApp) -> (Session, Session) {
    (
        app.super_admin().await,
        app.platform_user(Role::AppAdmin).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erasure_request_needs_confirm_and_only_platform_admins_decide_it() {
    let app = TestApp::spawn_full().await;
    let clinic = app.clinic("GDPR decisions").await;
    let s = subject(&app, &clinic).await;
    let (_, app_admin) = admins(&app).await;
    let me = s.account.token();

    // confirm missing or false: 400 naming `confirm`; unknown fields: 400.
    for body in [
        json!({"reason": "please"}),
        json!({"reason": "please", "confirm": false}),
    ] {
        let r = app.post(&erasure_path(s.patient), body, Some(me)).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(r.code(), "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["fields"], json!(["confirm"]));
    }
    let r = app
        .post(
            &erasure_path(s.patient),
            json!({"reason": "x", "confirm": true, "status": "approved"}),
            Some(me),
        )
        .await;
    assert_eq!(r.status, 400);
    // Who may ask: the patient, the org's ORG:ADMIN; not its doctor, nor a stranger.
    let r = app
        .post(
            &erasure_path(s.patient),
            json!({"reason": "x", "confirm": true}),
            Some(clinic.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let stranger = app.account("PATIENT").await;
    let r = app
        .post(
            &erasure_path(s.patient),
            json!({"reason": "x", "confirm": true}),
            Some(stranger.token()),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);

    let dsr = request_erasure(&app, s.patient, me).await;
    // One open erasure per patient.
    let r = app
        .post(
            &erasure_path(s.patient),
            json!({"reason": "again", "confirm": true}),
            Some(clinic.admin.token()),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.code(), "CONFLICT");

    // Only SUPER:ADMIN and APP:ADMIN decide.
    for token in [
        me,
        clinic.admin.token(),
        clinic.doctor.token(),
        clinic.staff.token(),
        clinic.auditor.token(),
        clinic.founder.token(),
    ] {
        let r = approve(&app, dsr, token).await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert_eq!(r.code(), "FORBIDDEN");
        let r = app
            .post(
                &format!("/api/dsr/{dsr}/reject"),
                json!({"reason": "no"}),
                Some(token),
            )
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
    }
    let auditor = app.platform_user(Role::AppAuditor).await;
    assert_eq!(approve(&app, dsr, &auditor.token).await.status, 403);

    // The patient, the org admin and platform admins list the requests.
    for token in [me, clinic.admin.token(), app_admin.token.as_str()] {
        let r = app
            .get(&format!("/api/patients/{}/dsr", s.patient), Some(token))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["data"][0]["id"], json!(dsr));
        assert_eq!(r.body["data"][0]["status"], "pending");
    }
    let r = app
        .get(
            &format!("/api/patients/{}/dsr", s.patient),
            Some(clinic.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 403);

    // Rejected (with a reason): then it cannot be approved, and a new request may be made.
    let r = app
        .post(
            &format!("/api/dsr/{dsr}/reject"),
            json!({"reason": ""}),
            Some(&app_admin.token),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["details"]["fields"], json!(["reason"]));
    let r = app
        .post(
            &format!("/api/dsr/{dsr}/reject"),
            json!({"reason": "retention period not over"}),
            Some(&app_admin.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["status"], "rejected");
    assert_eq!(r.body["data"]["decided_by"], json!(app_admin.user_id));
    let r = approve(&app, dsr, &app_admin.token).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    let r = approve(&app, Uuid::now_v7(), &app_admin.token).await;
    assert_eq!(r.status, 404);
    let second = request_erasure(&app, s.patient, clinic.admin.token()).await;
    assert_ne!(second, dsr);
    // The patient is untouched.
    let r = app
        .get(&format!("/api/patients/{}", s.patient), Some(me))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legal_hold_blocks_the_approval_with_its_reason_until_it_is_lifted() {
    let app = TestApp::spawn_full().await;
    let clinic = app.clinic("GDPR hold").await;
    let s = subject(&app, &clinic).await;
    let (super_admin, app_admin) = admins(&app).await;
    let hold = format!("/api/organizations/{}/legal-hold", clinic.id);
    let dsr = request_erasure(&app, s.patient, s.account.token()).await;

    // Only platform admins manage holds; there is none by default.
    let r = app.delete(&hold, &super_admin.token).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    for token in [clinic.admin.token(), s.account.token()] {
        let r = app
            .call("PUT", &hold, Some(json!({"reason": "mine"})), token)
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
    }
    let r = app
        .call(
            "PUT",
            &hold,
            Some(json!({"reason": " "})),
            &super_admin.token,
        )
        .await;
    assert_eq!(r.status, 400);
    let reason = "litigation case 2026-0042";
    let r = app
        .call(
            "PUT",
            &hold,
            Some(json!({"reason": reason})),
            &super_admin.token,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["reason"], reason);
    let org_version = app.stream_version(&format!("org-{}", clinic.id)).await;

    // Approval under the hold: 409 naming it, nothing changes.
    let log = app.log_len().await;
    let r = approve(&app, dsr, &app_admin.token).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.code(), "CONFLICT");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(reason), "{message}");
    assert_eq!(app.log_len().await, log, "nothing appended");
    let r = app
        .get(
            &format!("/api/patients/{}", s.patient),
            Some(s.account.token()),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .get(
            &format!("/api/patients/{}/dsr", s.patient),
            Some(&app_admin.token),
        )
        .await;
    assert_eq!(r.body["data"][0]["status"], "pending");

    // Lifted (an event on the org stream each time): the approval goes through.
    let r = app.delete(&hold, &app_admin.token).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        app.stream_version(&format!("org-{}", clinic.id)).await,
        org_version + 1
    );
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = $1 AND event_type LIKE 'LegalHold%' ORDER BY version",
    )
    .bind(format!("org-{}", clinic.id))
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(types, ["LegalHoldPlaced", "LegalHoldLifted"]);
    let r = approve(&app, dsr, &app_admin.token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["status"], "completed");
    // Approving again: the request's state answers.
    let r = approve(&app, dsr, &super_admin.token).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
}

/// Every message payload and header of `<prefix>EVENTS`, as text.
async fn nats_messages(app: &TestApp) -> Vec<String> {
    let nats = app.nats.as_ref().expect("a full app has NATS");
    let js = nats.jetstream();
    let Ok(mut stream) = js.get_stream(format!("{}EVENTS", nats.prefix)).await else {
        return Vec::new();
    };
    let state = stream.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    for seq in state.first_sequence.max(1)..=state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        let mut text = String::from_utf8_lossy(&m.payload).into_owned();
        text.push_str(&format!("{:?}", m.headers));
        out.push(text);
    }
    out
}

/// Waits until the relay published the whole log and both clinical projections applied it.
async fn settled(app: &TestApp) {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(max(position), 0) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    for name in [Patients::NAME, ClinicalRecords::NAME] {
        assert!(
            rm::wait_for_projection(&app.db.pool, name, Position(head), Duration::from_secs(20))
                .await
                .unwrap(),
            "{name} reaches {head}"
        );
    }
    let log = app.log_len().await as usize;
    eventually(
        Duration::from_secs(20),
        "the relay publishes the log",
        || async { nats_messages(app).await.len() >= log },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_erasure_shreds_the_patient_everywhere_and_keeps_the_log_verifiable() {
    let app = TestApp::spawn_full().await;
    let clinic = app.clinic("GDPR erasure").await;
    let s = subject(&app, &clinic).await;
    let (_, app_admin) = admins(&app).await;
    let p = s.patient;
    // An emergency grant (sealed under the patient's key too).
    let outsider = app.account("DOCTOR").await;
    let r = app
        .post(
            &format!("/api/patients/{p}/emergency-access"),
            json!({"reason": format!("{} unconscious", s.family)}),
            Some(outsider.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    settled(&app).await;
    assert!(rm::get_patient(&app.db.pool, carelog_domain::PatientId(p))
        .await
        .unwrap()
        .is_some());
    let patient_events_before = app.stream_version(&format!("patient-{p}")).await;

    let dsr = request_erasure(&app, p, s.account.token()).await;
    let r = approve(&app, dsr, &app_admin.token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["status"], "completed");
    assert!(r.body["data"]["completed_at"].is_string());

    // Every patient route answers 410 ERASED, to every caller who knew the patient.
    let rec = s.record;
    let gone: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("GET", format!("/api/patients/{p}"), None, s.account.token()),
        (
            "GET",
            format!("/api/patients/{p}"),
            None,
            clinic.staff.token(),
        ),
        (
            "PATCH",
            format!("/api/patients/{p}"),
            Some(json!({"phone": "1"})),
            clinic.staff.token(),
        ),
        (
            "GET",
            format!("/api/patients/{p}/history"),
            None,
            clinic.doctor.token(),
        ),
        (
            "GET",
            format!("/api/patients/{p}/clinical-records"),
            None,
            clinic.doctor.token(),
        ),
        (
            "POST",
            format!("/api/patients/{p}/clinical-records"),
            Some(record_body("t", "b")),
            clinic.doctor.token(),
        ),
        (
            "GET",
            format!("/api/clinical-records/{rec}"),
            None,
            s.account.token(),
        ),
        (
            "PATCH",
            format!("/api/clinical-records/{rec}"),
            Some(json!({"body": "x"})),
            clinic.doctor.token(),
        ),
        (
            "POST",
            format!("/api/clinical-records/{rec}/void"),
            Some(json!({"reason": "x"})),
            clinic.doctor.token(),
        ),
        (
            "GET",
            format!("/api/clinical-records/{rec}/history"),
            None,
            clinic.doctor.token(),
        ),
        (
            "GET",
            format!("/api/patients/{p}/export"),
            None,
            s.account.token(),
        ),
        (
            "GET",
            format!("/api/patients/{p}/export?format=fhir"),
            None,
            clinic.admin.token(),
        ),
        (
            "POST",
            format!("/api/patients/{p}/emergency-access"),
            Some(json!({"reason": "again"})),
            clinic.doctor.token(),
        ),
        (
            "POST",
            erasure_path(p),
            Some(json!({"reason": "again", "confirm": true})),
            s.account.token(),
        ),
    ];
    for (method, path, body, token) in gone {
        let r = app.call(method, &path, body, token).await;
        assert_eq!(r.status, 410, "{method} {path}: {:?}", r.body);
        assert_eq!(r.code(), "ERASED", "{method} {path}");
    }
    // The request still answers, completed.
    let r = app
        .get(&format!("/api/patients/{p}/dsr"), Some(&app_admin.token))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"][0]["status"], "completed");
    // The patient's account is a subject of its own: it still logs in.
    app.login(&s.account.email).await;

    // The log is intact: every event of the patient is still there, plus PatientErased;
    // the whole chain verifies.
    assert_eq!(
        app.stream_version(&format!("patient-{p}")).await,
        patient_events_before + 1
    );
    let last: String = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(format!("patient-{p}"))
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(last, "PatientErased");
    let report = carelog_store::verify_chain(&app.db.pool, None)
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    let dsr_types: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM events WHERE stream_id = $1 ORDER BY version")
            .bind(format!("dsr-{dsr}"))
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        dsr_types,
        ["ErasureRequested", "ErasureApproved", "ErasureCompleted"]
    );

    // Nothing of the patient is readable in the database or on NATS.
    settled(&app).await;
    let secrets = [
        s.given.as_str(),
        s.family.as_str(),
        s.email.as_str(),
        s.national_id.as_str(),
        s.record_title.as_str(),
    ];
    let has_pg_dump = std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_pg_dump {
        let dump = app.db.pg_dump(&["--data-only"]);
        assert!(
            dump.contains(&p.to_string()),
            "the dump is of this database"
        );
        for secret in secrets {
            assert!(!dump.contains(secret), "the database dump holds {secret}");
        }
    } else {
        eprintln!("SKIPPED the pg_dump check: pg_dump is not installed (postgresql-client)");
    }
    let messages = nats_messages(&app).await;
    assert!(!messages.is_empty());
    for m in &messages {
        for secret in secrets {
            assert!(!m.contains(secret), "a NATS message holds {secret}");
        }
    }

    // Read models are purged, and a rebuild does not bring the rows back.
    let pid = carelog_domain::PatientId(p);
    let record = carelog_domain::RecordId(rec);
    assert!(rm::get_patient(&app.db.pool, pid).await.unwrap().is_none());
    assert!(rm::get_record(&app.db.pool, record)
        .await
        .unwrap()
        .is_none());
    for projection in [&Patients as &dyn Projection, &ClinicalRecords] {
        carelog_projector::rebuild(&app.db.pool, &app.services.store, projection, |_, _| {})
            .await
            .unwrap();
    }
    assert!(rm::get_patient(&app.db.pool, pid).await.unwrap().is_none());
    assert!(rm::get_record(&app.db.pool, record)
        .await
        .unwrap()
        .is_none());
    assert!(rm::record_versions(&app.db.pool, record)
        .await
        .unwrap()
        .is_empty());
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM clinical_records WHERE patient_id = $1")
            .bind(p)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(left, 0);
}

/// Every `"reference"` string anywhere in `v`.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                match (k.as_str(), x) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => references(x, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_export_holds_everything_of_the_patient_and_nothing_of_anyone_else() {
    let app = TestApp::spawn_full().await;
    let clinic = app.clinic("GDPR export").await;
    let s = subject(&app, &clinic).await;
    let other = subject(&app, &clinic).await;
    let (_, app_admin) = admins(&app).await;
    let p = s.patient;
    // A second record, voided.
    let r = app
        .post(
            &format!("/api/patients/{p}/clinical-records"),
            record_body("Wrong chart", "entered in error"),
            Some(clinic.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 201);
    let voided = id_of(&r);
    let r = app
        .post(
            &format!("/api/clinical-records/{voided}/void"),
            json!({"reason": "wrong patient"}),
            Some(clinic.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A consent and a session consent of the patient, as their inline rows (the export
    // reads those rows; the consent routes are tested on their own).
    let consent = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO consents (consent_id, patient_id, grantee_org_id, scope, purpose, status, \
         created_at, updated_at, version, position) \
         VALUES ($1, $2, $3, 'clinical_records', 'treatment', 'active', now(), now(), 1, 1)",
    )
    .bind(consent)
    .bind(p)
    .bind(clinic.id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let session_consent = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO session_consents (consent_id, patient_id, kind, status, created_at, \
         updated_at, version, position) VALUES ($1, $2, 'recording', 'active', now(), now(), 1, 1)",
    )
    .bind(session_consent)
    .bind(p)
    .execute(&app.db.pool)
    .await
    .unwrap();
    // A rejected erasure request.
    let dsr = request_erasure(&app, p, s.account.token()).await;
    let r = app
        .post(
            &format!("/api/dsr/{dsr}/reject"),
            json!({"reason": "not yet"}),
            Some(&app_admin.token),
        )
        .await;
    assert_eq!(r.status, 200);

    // Who may export: the patient and the org's ORG:ADMIN; not its doctor nor strangers.
    let path = format!("/api/patients/{p}/export");
    assert_eq!(
        app.get(&path, Some(clinic.doctor.token())).await.status,
        403
    );
    assert_eq!(app.get(&path, Some(&app_admin.token)).await.status, 404);
    assert_eq!(
        app.get(&format!("{path}?format=xml"), Some(s.account.token()))
            .await
            .status,
        400
    );
    let patient_version = app.stream_version(&format!("patient-{p}")).await;

    let r = app.get(&path, Some(s.account.token())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let e = &r.body["data"];
    assert_eq!(e["patient"]["patient_id"], json!(p));
    assert_eq!(e["patient"]["org_id"], json!(clinic.id));
    assert_eq!(e["patient"]["user_id"], json!(s.account.id()));
    let d = &e["patient"]["demographics"];
    assert_eq!(d["given_name"], s.given.as_str());
    assert_eq!(d["family_name"], s.family.as_str());
    assert_eq!(d["email"], s.email.as_str());
    assert_eq!(d["national_id"], s.national_id.as_str());
    let records = e["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    let amended = records
        .iter()
        .find(|r| r["record_id"] == json!(s.record))
        .expect("the amended record");
    let versions = amended["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["content"]["title"], s.record_title.as_str());
    assert_eq!(
        versions[1]["content"]["body"],
        format!("{} amended", s.record_title)
    );
    assert!(amended["voided"].is_null());
    let void = records
        .iter()
        .find(|r| r["record_id"] == json!(voided))
        .expect("the voided record");
    assert_eq!(void["voided"]["reason"], "wrong patient");
    assert_eq!(e["consents"][0]["consent_id"], json!(consent));
    assert_eq!(e["consents"][0]["grantee"], json!({"org_id": clinic.id}));
    assert_eq!(e["session_consents"][0]["id"], json!(session_consent));
    let dsrs: Vec<(Value, Value)> = e["dsrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["kind"].clone(), d["status"].clone()))
        .collect();
    assert_eq!(
        dsrs,
        [
            (json!("erasure"), json!("rejected")),
            (json!("export"), json!("completed"))
        ],
        "the export lists itself"
    );
    let text = r.body.to_string();
    for foreign in [
        other.patient.to_string(),
        other.record.to_string(),
        other.given.clone(),
        other.email.clone(),
    ] {
        assert!(!text.contains(&foreign), "the export holds {foreign}");
    }

    // FHIR: a collection Bundle, unique ids, every reference resolves inside it.
    let r = app
        .get(&format!("{path}?format=fhir"), Some(clinic.admin.token()))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/fhir+json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let b = &r.body;
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "collection");
    let entries = b["entry"].as_array().unwrap();
    let mut full_urls = HashSet::new();
    let mut ids = HashSet::new();
    let mut types = Vec::new();
    for entry in entries {
        let url = entry["fullUrl"].as_str().unwrap().to_owned();
        assert!(full_urls.insert(url.clone()), "duplicate fullUrl {url}");
        let res = &entry["resource"];
        let key = format!(
            "{}/{}",
            res["resourceType"].as_str().unwrap(),
            res["id"].as_str().unwrap()
        );
        assert!(ids.insert(key.clone()), "duplicate id {key}");
        types.push(res["resourceType"].as_str().unwrap().to_owned());
    }
    assert!(types.iter().any(|t| t == "Patient"));
    assert!(types.iter().any(|t| t == "Condition"), "{types:?}");
    assert!(types.iter().any(|t| t == "Consent"), "{types:?}");
    let mut refs = Vec::new();
    references(b, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        assert!(
            full_urls.contains(&reference),
            "{reference} does not resolve"
        );
    }
    let text = b.to_string();
    assert!(text.contains(&p.to_string()));
    assert!(!text.contains(&other.patient.to_string()));
    assert!(!text.contains(&other.record.to_string()));

    // Each export is audited on a stream of its own; the patient's stream (its ETag) is
    // untouched.
    let audited: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "SELECT stream_id, (metadata->>'actor_id')::uuid FROM events \
         WHERE event_type = 'PatientDataExported' ORDER BY position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited.iter().all(|(s, _)| s.starts_with("dsr-")));
    assert_eq!(audited[0].1, Some(s.account.id()));
    assert_eq!(audited[1].1, Some(clinic.admin.id()));
    assert_eq!(
        app.stream_version(&format!("patient-{p}")).await,
        patient_version
    );
}
