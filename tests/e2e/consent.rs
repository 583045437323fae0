//! Consent end to end (API.md "Consent"): a doctor outside the patient's organisation
//! reads and writes only while an approved, unexpired consent in scope lasts — decided on
//! the inline `consents` table, so a revoke or an expiry stops access on the very next
//! request; only the patient grants, approves, declines and revokes; wrong states are
//! 409; listings show each caller their own; session consents.

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::clinical::{id_of, ids, record_body, status_of, unknown_id};
use crate::support::TestApp;

/// The answers of an outside doctor on the patient's chart and records:
/// (GET patient, GET records list, GET record, POST record).
async fn reach(app: &TestApp, token: &str, patient: Uuid, record: Uuid) -> [u16; 4] {
    [
        app.get(&format!("/api/patients/{patient}"), Some(token))
            .await
            .status,
        app.get(
            &format!("/api/patients/{patient}/clinical-records"),
            Some(token),
        )
        .await
        .status,
        app.get(&format!("/api/clinical-records/{record}"), Some(token))
            .await
            .status,
        app.post(
            &format!("/api/patients/{patient}/clinical-records"),
            record_body("Follow-up", "Seen under consent"),
            Some(token),
        )
        .await
        .status,
    ]
}

fn request_body(patient: Uuid, scope: &str) -> Value {
    json!({"patient_id": patient, "scope": scope, "purpose": "treatment"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outside_doctor_gets_in_only_after_the_patient_approves_and_is_out_at_once_on_revoke() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let p = app
        .patient_account(a.id, a.staff.token(), "Consenting")
        .await;
    let record = id_of_value(&app.new_record(p.patient, a.doctor.token(), "Asthma").await);
    let outsider = app.account("DOCTOR").await;
    let stranger = app.account("DOCTOR").await;

    // Before any consent: nothing of the patient exists for the outsider.
    assert_eq!(
        reach(&app, outsider.token(), p.patient, record).await,
        [404; 4]
    );

    // The doctor asks; a request opens nothing.
    let r = app
        .post(
            "/api/consent/request",
            request_body(p.patient, "all"),
            Some(outsider.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(status_of(&r), "requested");
    assert_eq!(r.body["data"]["grantee_user_id"], json!(outsider.id()));
    assert_eq!(r.body["data"]["requested_by"], json!(outsider.id()));
    let consent = id_of(&r);
    assert_eq!(
        reach(&app, outsider.token(), p.patient, record).await,
        [404; 4]
    );

    // Only the patient approves: the grantee and the org's admin know of it (403), a
    // stranger learns nothing (404).
    for (who, token, expected) in [
        ("the requesting doctor", outsider.token(), 403),
        ("the org's ORG:ADMIN", a.admin.token(), 403),
        ("a stranger doctor", stranger.token(), 404),
    ] {
        let r = app.consent_action(consent, "approve", token).await;
        assert_eq!(r.status, expected, "{who}: {:?}", r.body);
    }
    let r = app.consent_action(consent, "approve", p.token()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(status_of(&r), "active");

    // Approved, scope `all`: demographics, records, writing a record.
    assert_eq!(
        reach(&app, outsider.token(), p.patient, record).await,
        [200, 200, 200, 201]
    );
    assert_eq!(
        reach(&app, stranger.token(), p.patient, record).await,
        [404; 4]
    );

    // Revoked: refused on the very next request.
    let r = app
        .consent_action(consent, "revoke", outsider.token())
        .await;
    assert_eq!(r.status, 403, "only the patient revokes: {:?}", r.body);
    let r = app.consent_action(consent, "revoke", p.token()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(status_of(&r), "revoked");
    assert_eq!(
        reach(&app, outsider.token(), p.patient, record).await,
        [404; 4]
    );

    // Acting on it in the wrong state: 409, and nothing is appended.
    let before = app.stream_version(&format!("consent-{consent}")).await;
    for action in ["approve", "decline", "revoke"] {
        let r = app.consent_action(consent, action, p.token()).await;
        assert_eq!(r.status, 409, "{action}: {:?}", r.body);
        assert_eq!(r.code(), "CONFLICT");
    }
    assert_eq!(
        app.stream_version(&format!("consent-{consent}")).await,
        before
    );
    assert_eq!(before, 3, "requested, approved, revoked");
    let r = app.consent_action(unknown_id(), "approve", p.token()).await;
    assert_eq!(r.status, 404);
}

fn id_of_value(v: &Value) -> Uuid {
    v["id"].as_str().expect("id").parse().expect("uuid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declined_request_opens_nothing_and_cannot_be_approved_later() {
    let app = TestApp::spawn().await;
    let a = app.clinic("Org A").await;
    let p = app
        .patient_account(a.id, a.staff.token(), "Declining")
        .await;
    let doctor = app.account("DOCTOR").await;
    let r = app
        .post(
            "/api/consent/request",
            request_body(p.patient, "demographics"),
            Some(doctor.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let consent = id_of(&r);
    let r = app.consent_action(consent, "decline", p.token()).await;
    assert_eq!((r.status, status_of(&r)), (200, "declined"), "{:?}", r.body);
    let r = app.consent_action(consent, "approve", p.token()).await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{:?}", r.body);
    let r = app
        .get(
            &format!("/api/patients/{}", p.patient),
            Some(doctor.token()),
        )
        .await;
    assert_eq!(r.status, 404);
    // A patient is not a doctor: asking is refused by role.
    let r = app
        .post(
            "/api/consent/request",
            request_body(p.patient, "all"),
            Some(p.token()),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = app
        .post(
            "/api/consent/request",
            request_body(unknown_id(), "all"),
            Some(doctor.token()),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consent_opens_only_its_scope() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let p = app.patient_account(a.id, a.staff.token(), "Scoped").await;
    let record = id_of_value(&app.new_record(p.patient, a.doctor.token(), "Eczema").await);

    // Demographics: the chart, not the records (the doctor knows the patient: 403).
    let demo = app.account("DOCTOR").await;
    let c = app
        .consent_to(
            p.token(),
            json!({"grantee_user_id": demo.id()}),
            "demographics",
        )
        .await;
    assert_eq!(
        reach(&app, demo.token(), p.patient, record).await,
        [200, 403, 403, 403]
    );

    // Clinical records: the records (read and write), not the chart.
    let clin = app.account("DOCTOR").await;
    app.consent_to(
        p.token(),
        json!({"grantee_user_id": clin.id()}),
        "clinical_records",
    )
    .await;
    assert_eq!(
        reach(&app, clin.token(), p.patient, record).await,
        [403, 200, 200, 201]
    );

    // A consent to someone else opens nothing for the first doctor's colleagues.
    let other = app.account("DOCTOR").await;
    assert_eq!(
        reach(&app, other.token(), p.patient, record).await,
        [404; 4]
    );

    // Granted consents are active at once and revocable by the patient.
    let r = app.consent_action(c, "revoke", p.token()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        app.get(&format!("/api/patients/{}", p.patient), Some(demo.token()))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_consent_stops_access_at_once() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let p = app.patient_account(a.id, a.staff.token(), "Expiring").await;
    let doctor = app.account("DOCTOR").await;
    let expires_at = Utc::now() + Duration::hours(1);
    let r = app
        .grant_consent(
            p.token(),
            json!({"grantee_user_id": doctor.id(), "scope": "all", "purpose": "treatment",
                   "expires_at": expires_at}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(status_of(&r), "active");
    let consent = id_of(&r);
    let path = format!("/api/patients/{}", p.patient);
    assert_eq!(app.get(&path, Some(doctor.token())).await.status, 200);

    // Time passes (set up directly in the inline table, as an operator could): the very
    // next request is refused, and the listing says `expired`.
    sqlx::query(
        "UPDATE consents SET expires_at = now() - interval '1 second' WHERE consent_id = $1",
    )
    .bind(consent)
    .execute(&app.db.pool)
    .await
    .expect("expire the consent");
    assert_eq!(app.get(&path, Some(doctor.token())).await.status, 404);
    let r = app.get("/api/consent", Some(p.token())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"][0]["id"], json!(consent));
    assert_eq!(r.body["data"][0]["status"], "expired");

    // An expiry not in the future is refused, naming the field.
    let r = app
        .grant_consent(
            p.token(),
            json!({"grantee_user_id": doctor.id(), "scope": "all", "purpose": "treatment",
                   "expires_at": Utc::now() - Duration::minutes(1)}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "VALIDATION_ERROR"));
    assert_eq!(r.body["error"]["details"]["fields"], json!(["expires_at"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consent_to_an_organisation_lets_its_doctors_read_and_no_one_else() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Org A").await;
    let b = app.clinic("Org B").await;
    let p = app.patient_account(a.id, a.staff.token(), "Referred").await;
    let record = id_of_value(
        &app.new_record(p.patient, a.doctor.token(), "Fracture")
            .await,
    );
    let consent = app
        .consent_to(
            p.token(),
            json!({"grantee_org_id": b.id}),
            "clinical_records",
        )
        .await;

    let r = app
        .get(
            &format!("/api/clinical-records/{record}"),
            Some(b.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .get(
            &format!("/api/patients/{}/clinical-records", p.patient),
            Some(b.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Only doctors of the grantee organisation: its staff, admin and auditor get nothing.
    for (who, token) in [
        ("ORG:STAFF of B", b.staff.token()),
        ("ORG:ADMIN of B", b.admin.token()),
        ("ORG:AUDITOR of B", b.auditor.token()),
    ] {
        let r = app
            .get(&format!("/api/clinical-records/{record}"), Some(token))
            .await;
        assert_eq!(r.status, 404, "{who}: {:?}", r.body);
    }
    // A member of the grantee organisation may not decide on the consent.
    let r = app.consent_action(consent, "revoke", b.admin.token()).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = app.consent_action(consent, "revoke", p.token()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .get(
            &format!("/api/clinical-records/{record}"),
            Some(b.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listings_show_each_caller_their_own_and_each_organisation_its_own() {
    let app = TestApp::spawn().await;
    let a = app.clinic("Org A").await;
    let b = app.clinic("Org B").await;
    let c = app.clinic("Org C").await;
    let p = app.patient_account(a.id, a.staff.token(), "Listed").await;
    let q = app.patient_account(a.id, a.staff.token(), "Other").await;
    let doctor = app.account("DOCTOR").await;

    let to_b = app
        .consent_to(p.token(), json!({"grantee_org_id": b.id}), "all")
        .await;
    let to_doctor = app
        .consent_to(
            p.token(),
            json!({"grantee_user_id": doctor.id()}),
            "demographics",
        )
        .await;
    let r = app
        .post(
            "/api/consent/request",
            request_body(q.patient, "all"),
            Some(doctor.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let requested = id_of(&r);

    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    let list = |token: String, path: String| {
        let app = &app;
        async move {
            let r = app.get(&path, Some(&token)).await;
            assert_eq!(r.status, 200, "{path}: {:?}", r.body);
            (
                sorted(ids(&r)),
                r.body["meta"]["total"].as_u64().unwrap_or(0),
            )
        }
    };
    let own = "/api/consent".to_owned();
    assert_eq!(
        list(p.token().to_owned(), own.clone()).await,
        (sorted(vec![to_b, to_doctor]), 2),
        "the patient sees their own"
    );
    assert_eq!(
        list(q.token().to_owned(), own.clone()).await,
        (vec![requested], 1)
    );
    assert_eq!(
        list(doctor.token().to_owned(), own.clone()).await,
        (sorted(vec![to_doctor, requested]), 2),
        "the doctor sees those granted to or requested by them"
    );
    assert_eq!(list(c.doctor.token().to_owned(), own).await, (vec![], 0));

    let of = |org: Uuid| format!("/api/organizations/{org}/consents");
    assert_eq!(
        list(a.admin.token().to_owned(), of(a.id)).await,
        (sorted(vec![to_b, to_doctor, requested]), 3),
        "on its patients"
    );
    assert_eq!(list(a.doctor.token().to_owned(), of(a.id)).await.1, 3);
    assert_eq!(
        list(b.admin.token().to_owned(), of(b.id)).await,
        (vec![to_b], 1),
        "granted to it"
    );
    assert_eq!(
        list(c.admin.token().to_owned(), of(c.id)).await,
        (vec![], 0)
    );
    // Paging.
    let r = app
        .get(
            &format!("{}?limit=1&page=2", of(a.id)),
            Some(a.admin.token()),
        )
        .await;
    assert_eq!(ids(&r).len(), 1);
    assert_eq!(r.body["meta"]["total"], 3);

    // Another organisation's list: 404 to outsiders, 403 to members who may not see it.
    for (who, token, expected) in [
        ("ORG:ADMIN of C", c.admin.token(), 404),
        ("ORG:DOCTOR of B", b.doctor.token(), 404),
        ("the patient", p.token(), 404),
        ("ORG:STAFF of A", a.staff.token(), 403),
        ("ORG:AUDITOR of A", a.auditor.token(), 403),
    ] {
        let r = app.get(&of(a.id), Some(token)).await;
        assert_eq!(r.status, expected, "{who}: {:?}", r.body);
    }
    let r = app.get("/api/consent", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_patient_grants_and_bad_bodies_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let a = app.clinic("Org A").await;
    let p = app.patient_account(a.id, a.staff.token(), "Strict").await;
    let doctor = app.account("DOCTOR").await;
    let grant = |extra: Value| {
        let mut body =
            json!({"grantee_user_id": doctor.id(), "scope": "all", "purpose": "treatment"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let log = app.log_len().await;

    // Unknown fields are refused (no mass assignment of a status, say), naming them.
    for (path, body, token, field) in [
        (
            "/api/consent/grant",
            grant(json!({"status": "active"})),
            p.token(),
            "status",
        ),
        (
            "/api/consent/request",
            json!({"patient_id": p.patient, "scope": "all", "purpose": "treatment",
                   "grantee_user_id": doctor.id()}),
            doctor.token(),
            "grantee_user_id",
        ),
        (
            "/api/sessions/consents",
            json!({"kind": "recording", "status": "revoked"}),
            p.token(),
            "status",
        ),
    ] {
        let r = app.post(path, body, Some(token)).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR"),
            "{path}: {:?}",
            r.body
        );
        assert_eq!(
            r.body["error"]["details"]["fields"],
            json!([field]),
            "{path}"
        );
    }
    for (body, field) in [
        (
            json!({"scope": "all", "purpose": "treatment"}),
            "grantee_org_id",
        ),
        (grant(json!({"scope": "everything"})), "scope"),
        (grant(json!({"purpose": "marketing"})), "purpose"),
        (
            grant(json!({"grantee_user_id": unknown_id()})),
            "grantee_user_id",
        ),
        (
            json!({"grantee_org_id": unknown_id(), "scope": "all", "purpose": "treatment"}),
            "grantee_org_id",
        ),
    ] {
        let r = app.grant_consent(p.token(), body.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR"),
            "{body}: {:?}",
            r.body
        );
        assert_eq!(
            r.body["error"]["details"]["fields"],
            json!([field]),
            "{body}"
        );
    }
    let r = app
        .call(
            "POST",
            &format!("/api/consent/{}/approve", unknown_id()),
            Some(json!({"expires_at": null, "scope": "all"})),
            p.token(),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);

    // Not the patient: a doctor with no chart is refused; naming someone else's chart
    // reveals nothing; the org's staff cannot grant on the patient's behalf.
    let r = app.grant_consent(doctor.token(), grant(json!({}))).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = app
        .grant_consent(doctor.token(), grant(json!({"patient_id": p.patient})))
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = app
        .grant_consent(a.staff.token(), grant(json!({"patient_id": p.patient})))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(app.log_len().await, log, "nothing was appended");

    // Several charts linked to one account: `patient_id` is required.
    app.new_patient(a.id, a.staff.token(), "Second", Some(p.account.id()))
        .await;
    let r = app.grant_consent(p.token(), grant(json!({}))).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "VALIDATION_ERROR"),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["fields"], json!(["patient_id"]));
    let r = app
        .grant_consent(p.token(), grant(json!({"patient_id": p.patient})))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["data"]["patient_id"], json!(p.patient));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_consents_are_granted_listed_and_revoked_once() {
    let app = TestApp::spawn().await;
    let a = app.clinic("Org A").await;
    let p = app.patient_account(a.id, a.staff.token(), "Recorded").await;
    let outsider = app.account("DOCTOR").await;

    let r = app
        .post(
            "/api/sessions/consents",
            json!({"kind": "recording", "org_id": a.id}),
            Some(p.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(status_of(&r), "active");
    assert_eq!(r.body["data"]["patient_id"], json!(p.patient));
    let recording = id_of(&r);
    let r = app
        .post(
            "/api/sessions/consents",
            json!({"patient_id": p.patient, "kind": "ai_transcription"}),
            Some(p.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let transcription = id_of(&r);

    // Listed for the patient (own charts) and for the org's doctors by patient id.
    let mut both = vec![recording, transcription];
    both.sort();
    let r = app.get("/api/sessions/consents", Some(p.token())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut got = ids(&r);
    got.sort();
    assert_eq!(got, both);
    let by_patient = format!("/api/sessions/consents?patient_id={}", p.patient);
    let r = app.get(&by_patient, Some(a.doctor.token())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["meta"]["total"], 2);
    for (who, token, expected) in [
        ("ORG:STAFF", a.staff.token(), 403),
        ("an outside doctor", outsider.token(), 404),
    ] {
        let r = app.get(&by_patient, Some(token)).await;
        assert_eq!(r.status, expected, "{who}: {:?}", r.body);
    }
    // A doctor holding a consent on the patient reads them too.
    app.consent_to(
        p.token(),
        json!({"grantee_user_id": outsider.id()}),
        "demographics",
    )
    .await;
    assert_eq!(
        app.get(&by_patient, Some(outsider.token())).await.status,
        200
    );

    // Only the patient revokes, once.
    let revoke = format!("/api/sessions/consents/{recording}/revoke");
    let r = app.call("POST", &revoke, None, a.doctor.token()).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = app.call("POST", &revoke, None, p.token()).await;
    assert_eq!((r.status, status_of(&r)), (200, "revoked"), "{:?}", r.body);
    let r = app.call("POST", &revoke, None, p.token()).await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{:?}", r.body);
    let r = app
        .call(
            "POST",
            &format!("/api/sessions/consents/{}/revoke", unknown_id()),
            None,
            p.token(),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app.get("/api/sessions/consents", Some(p.token())).await;
    let statuses: Vec<(String, String)> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(statuses.contains(&(recording.to_string(), "revoked".to_owned())));
    assert!(statuses.contains(&(transcription.to_string(), "active".to_owned())));

    // Bad bodies name the field.
    let r = app
        .post(
            "/api/sessions/consents",
            json!({"kind": "recording", "org_id": unknown_id()}),
            Some(p.token()),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["details"]["fields"], json!(["org_id"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_seed_has_bruno_consent_to_the_independent_doctor() {
    let app = TestApp::spawn_full().await;
    let admin = app.super_admin().await;
    carelog::seed::seed_demo(
        &app.services.identity,
        &app.services.clinical,
        carelog_domain::UserId(admin.user_id),
        crate::support::app::PASSWORD,
    )
    .await
    .expect("demo seeded");
    let solo = app.login("dr.solo@practice.example").await.token;
    let bruno = app.login("bruno@patients.example").await.token;
    for token in [&solo, &bruno] {
        let r = app.get("/api/consent", Some(token)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["meta"]["total"], 1, "{:?}", r.body);
        assert_eq!(r.body["data"][0]["status"], "active");
        assert_eq!(r.body["data"][0]["scope"], "all");
    }
    let r = app.get("/api/consent", Some(&bruno)).await;
    let chart = r.body["data"][0]["patient_id"].as_str().unwrap().to_owned();
    let r = app
        .get(&format!("/api/patients/{chart}"), Some(&solo))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["given_name"], "Bruno");
}
