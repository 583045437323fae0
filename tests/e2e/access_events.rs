//! Access events (DESIGN.md invariant 6, API.md "Audit"): every read of PHI and every
//! refusal the policy decided appends one `AccessRecorded` event, on a stream of its
//! own (`access-<uuid>`), before the answer is sent — read back here from the log with
//! `carelog_store::read` and opened with the store.

use std::collections::HashSet;

use carelog_domain::{Position, StreamId, StreamType, StreamVersion, SubjectId};
use carelog_store::{Opened, StoredEvent};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::clinical::Account;
use crate::support::TestApp;

const UA: &str = "access-events-test/1.0";

/// The access events of the log after `after`, opened. Their streams are listed from
/// the event table, then each is read with `carelog_store::read::stream` (committed
/// rows, not behind the gap-safe horizon of `read::all`, which an open transaction of
/// the relay or a projector may hold back).
async fn access_events(app: &TestApp, after: Position) -> Vec<(StoredEvent, Value)> {
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT stream_id FROM events WHERE stream_id LIKE 'access-%' AND position > $1 \
         ORDER BY position",
    )
    .bind(after.0)
    .fetch_all(&app.db.pool)
    .await
    .expect("list access streams");
    let mut out = Vec::new();
    for s in streams {
        let stream: StreamId = s.parse().expect("a stream id");
        assert_eq!(stream.stream_type(), StreamType::Access);
        let events = carelog_store::read::stream(&app.db.pool, &stream, StreamVersion::EMPTY, 10)
            .await
            .expect("read the stream");
        assert_eq!(events.len(), 1, "one event per access stream");
        for e in events {
            let Opened::Payload(p) = app.services.store.open(&e).await.expect("open") else {
                panic!("an access event is never erased");
            };
            out.push((e, p));
        }
    }
    out
}

/// The head of the log now.
async fn head(app: &TestApp) -> Position {
    let p: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    Position(p.unwrap_or(0))
}

/// GET `path` as `who` with a user agent; the answer's status and request id.
async fn get(app: &TestApp, path: &str, who: &Account) -> (u16, Value, String) {
    let r = app
        .call_with("GET", path, None, who.token(), &[("user-agent", UA.into())])
        .await;
    let rid = r
        .header("x-request-id")
        .expect("a request id on every answer")
        .to_owned();
    (r.status, r.body, rid)
}

/// The one access event of request `rid`.
async fn the_event_of(app: &TestApp, after: Position, rid: &str) -> (StoredEvent, Value) {
    let mut of: Vec<_> = access_events(app, after)
        .await
        .into_iter()
        .filter(|(e, _)| e.header.metadata.request_id.as_deref() == Some(rid))
        .collect();
    assert_eq!(of.len(), 1, "exactly one access event for request {rid}");
    of.pop().unwrap()
}

/// A patient of `org` and one record of it.
async fn chart(app: &TestApp, clinic: &crate::support::clinical::Clinic) -> (Uuid, Uuid) {
    let p = app
        .new_patient(clinic.id, clinic.staff.token(), "Audited", None)
        .await;
    let patient: Uuid = p["id"].as_str().unwrap().parse().unwrap();
    let r = app
        .new_record(patient, clinic.doctor.token(), "Influenza")
        .await;
    (patient, r["id"].as_str().unwrap().parse().unwrap())
}

fn assert_payload(p: &Value, action: &str, kind: &str, id: Uuid, outcome: &str, endpoint: &str) {
    assert_eq!(p["action"], action, "{p}");
    assert_eq!(p["resource_type"], kind, "{p}");
    assert_eq!(p["resource_id"], json!(id), "{p}");
    assert_eq!(p["outcome"], outcome, "{p}");
    assert_eq!(p["service"], "carelog-api", "{p}");
    assert_eq!(p["endpoint"], endpoint, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_doctors_reads_of_a_patient_and_a_record_are_each_recorded_once_with_every_field() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Audit A").await;
    let (patient, record) = chart(&app, &a).await;

    for (path, kind, id, endpoint) in [
        (
            format!("/api/patients/{patient}"),
            "patient",
            patient,
            "GET /api/patients/{id}",
        ),
        (
            format!("/api/clinical-records/{record}"),
            "clinical_record",
            record,
            "GET /api/clinical-records/{id}",
        ),
        (
            format!("/api/patients/{patient}/clinical-records"),
            "patient",
            patient,
            "GET /api/patients/{id}/clinical-records",
        ),
        (
            format!("/api/organizations/{}/patients", a.id),
            "organization",
            a.id,
            "GET /api/organizations/{org_id}/patients",
        ),
        (
            format!("/api/patients/{patient}/history"),
            "patient",
            patient,
            "GET /api/patients/{id}/history",
        ),
        (
            format!("/api/clinical-records/{record}/history"),
            "clinical_record",
            record,
            "GET /api/clinical-records/{id}/history",
        ),
    ] {
        let before = head(&app).await;
        let (status, body, rid) = get(&app, &path, &a.doctor).await;
        assert_eq!(status, 200, "{path}: {body}");
        let (e, p) = the_event_of(&app, before, &rid).await;
        assert_payload(&p, "read", kind, id, "success", endpoint);
        assert_eq!(p["emergency"], false);
        assert_eq!(p["grant_id"], Value::Null);
        assert_eq!(e.header.event_type.as_str(), "AccessRecorded");
        assert_eq!(e.header.schema_version.0, 1);
        assert_eq!(e.header.version.0, 1, "the single event of its stream");
        assert_eq!(e.header.subject, SubjectId::system());
        let m = &e.header.metadata;
        assert_eq!(m.actor_id, Some(a.doctor.id()));
        assert!(m.roles.contains(&"ORG:DOCTOR".to_owned()), "{:?}", m.roles);
        assert_eq!(m.org_id, Some(a.id));
        assert_eq!(m.request_id.as_deref(), Some(rid.as_str()));
        assert_eq!(m.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(m.user_agent.as_deref(), Some(UA));
        assert_eq!(m.command.as_deref(), Some(endpoint));
        assert!(m.time.is_some());
        // The payload names no PHI.
        assert!(!p.to_string().contains("Audited"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_decided_by_the_policy_are_recorded_as_denied() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Audit A").await;
    let b = app.clinic("Audit B").await;
    let (patient, record) = chart(&app, &a).await;

    // ORG:STAFF never see clinical content: 403.
    let before = head(&app).await;
    let path = format!("/api/clinical-records/{record}");
    let (status, _, rid) = get(&app, &path, &a.staff).await;
    assert_eq!(status, 403);
    let (e, p) = the_event_of(&app, before, &rid).await;
    assert_payload(
        &p,
        "read",
        "clinical_record",
        record,
        "denied",
        "GET /api/clinical-records/{id}",
    );
    assert_eq!(e.header.metadata.actor_id, Some(a.staff.id()));
    assert_eq!(e.header.metadata.org_id, Some(a.id));

    // An outsider: 404 (the policy hides the chart), recorded all the same.
    let before = head(&app).await;
    let (status, _, rid) = get(&app, &format!("/api/patients/{patient}"), &b.doctor).await;
    assert_eq!(status, 404);
    let (e, p) = the_event_of(&app, before, &rid).await;
    assert_payload(
        &p,
        "read",
        "patient",
        patient,
        "denied",
        "GET /api/patients/{id}",
    );
    assert_eq!(e.header.metadata.actor_id, Some(b.doctor.id()));

    // A refusal of the route-level check (no doctor may void): 403, recorded.
    let before = head(&app).await;
    let r = app
        .call(
            "POST",
            &format!("/api/clinical-records/{record}/void"),
            Some(json!({"reason": "no"})),
            a.staff.token(),
        )
        .await;
    assert_eq!(r.status, 403);
    let rid = r.header("x-request-id").unwrap().to_owned();
    let (_, p) = the_event_of(&app, before, &rid).await;
    assert_payload(
        &p,
        "delete",
        "clinical_record",
        record,
        "denied",
        "POST /api/clinical-records/{id}/void",
    );

    // An id nobody issued is not a policy decision: nothing to record.
    let before = head(&app).await;
    let (status, _, rid) = get(
        &app,
        &format!("/api/patients/{}", Uuid::now_v7()),
        &b.doctor,
    )
    .await;
    assert_eq!(status, 404);
    assert!(access_events(&app, before).await.iter().all(|(e, _)| e
        .header
        .metadata
        .request_id
        .as_deref()
        != Some(rid.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_emergency_read_is_flagged_and_names_its_grant_but_not_its_reason() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Audit A").await;
    let b = app.clinic("Audit B").await;
    let (patient, record) = chart(&app, &a).await;
    let reason = "unconscious in the emergency room";
    let r = app
        .post(
            &format!("/api/patients/{patient}/emergency-access"),
            json!({ "reason": reason }),
            Some(b.doctor.token()),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let grant = r.body["data"]["id"].as_str().unwrap().to_owned();

    for (path, kind, id) in [
        (format!("/api/patients/{patient}"), "patient", patient),
        (
            format!("/api/clinical-records/{record}"),
            "clinical_record",
            record,
        ),
    ] {
        let before = head(&app).await;
        let (status, body, rid) = get(&app, &path, &b.doctor).await;
        assert_eq!(status, 200, "{body}");
        let (e, p) = the_event_of(&app, before, &rid).await;
        assert_eq!(p["action"], "read");
        assert_eq!(p["resource_type"], kind);
        assert_eq!(p["resource_id"], json!(id));
        assert_eq!(p["outcome"], "success");
        assert_eq!(p["emergency"], true);
        assert_eq!(p["grant_id"], json!(grant));
        assert!(
            !p.to_string().contains(reason),
            "the reason is not repeated"
        );
        assert_eq!(e.header.metadata.actor_id, Some(b.doctor.id()));
        assert_eq!(e.header.metadata.org_id, Some(a.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_reads_are_all_recorded_and_group_committed() {
    const READERS: usize = 64;
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Audit A").await;
    let (_, record) = chart(&app, &a).await;
    let path = format!("/api/clinical-records/{record}");
    // Warm up (the read model has the record).
    assert_eq!(get(&app, &path, &a.doctor).await.0, 200);

    let before = head(&app).await;
    let reads = (0..READERS).map(|_| get(&app, &path, &a.doctor));
    let answers = futures::future::join_all(reads).await;
    let mut rids = HashSet::new();
    for (status, body, rid) in answers {
        assert_eq!(status, 200, "{body}");
        rids.insert(rid);
    }
    assert_eq!(rids.len(), READERS);

    let events = access_events(&app, before).await;
    let recorded: HashSet<String> = events
        .iter()
        .filter_map(|(e, _)| e.header.metadata.request_id.clone())
        .collect();
    assert_eq!(events.len(), READERS, "one event per read");
    assert_eq!(recorded, rids, "every read recorded");
    let streams: HashSet<_> = events.iter().map(|(e, _)| e.header.stream_id).collect();
    assert_eq!(streams.len(), READERS, "each on a stream of its own");

    let (n, txs): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT tx_id) FROM events \
         WHERE stream_id LIKE 'access-%' AND position > $1",
    )
    .bind(before.0)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(n, READERS as i64);
    eprintln!("{n} access events in {txs} transactions");
    assert!(
        txs < n,
        "group commit batches access events: {n} events in {txs} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_and_an_auditors_history_are_recorded_too() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Audit A").await;
    let (patient, record) = chart(&app, &a).await;

    // The ORG:ADMIN exports on the patient's behalf.
    let before = head(&app).await;
    let path = format!("/api/patients/{patient}/export");
    let (status, body, rid) = get(&app, &path, &a.admin).await;
    assert_eq!(status, 200, "{body}");
    let (e, p) = the_event_of(&app, before, &rid).await;
    assert_payload(
        &p,
        "export",
        "patient",
        patient,
        "success",
        "GET /api/patients/{id}/export",
    );
    assert!(e.header.metadata.roles.contains(&"ORG:ADMIN".to_owned()));

    // The ORG:AUDITOR's history is metadata only, and a read all the same.
    for (path, kind, id, endpoint) in [
        (
            format!("/api/patients/{patient}/history"),
            "patient",
            patient,
            "GET /api/patients/{id}/history",
        ),
        (
            format!("/api/clinical-records/{record}/history"),
            "clinical_record",
            record,
            "GET /api/clinical-records/{id}/history",
        ),
    ] {
        let before = head(&app).await;
        let (status, body, rid) = get(&app, &path, &a.auditor).await;
        assert_eq!(status, 200, "{body}");
        let (e, p) = the_event_of(&app, before, &rid).await;
        assert_payload(&p, "read", kind, id, "success", endpoint);
        assert!(e.header.metadata.roles.contains(&"ORG:AUDITOR".to_owned()));
    }
}

/// The claims of a token we issued (its message, not verified: the test only reads it).
fn claims_of(token: &str) -> carelog_crypto::Claims {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let body = token.strip_prefix("v4.public.").expect("a v4.public token");
    let body = body.split_once('.').map_or(body, |(b, _)| b);
    let raw = URL_SAFE_NO_PAD.decode(body).expect("base64url");
    serde_json::from_slice(&raw[..raw.len() - 64]).expect("carelog claims")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_genuine_token_refused_with_401_is_recorded_with_its_user_but_a_forged_one_is_not() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Audit A").await;
    let (patient, _) = chart(&app, &a).await;
    let path = format!("/api/patients/{patient}");
    let keys = carelog_crypto::TokenKeys::new(&app.token_key, &[], "carelog", "carelog")
        .expect("the app's token key");

    // Expired: the signature is ours, so the user and session are known.
    let mut claims = claims_of(a.doctor.token());
    let sid = claims.sid;
    claims.iat -= chrono::Duration::hours(2);
    claims.nbf -= chrono::Duration::hours(2);
    claims.exp = chrono::Utc::now() - chrono::Duration::minutes(5);
    let expired = keys.sign(&claims);
    let before = head(&app).await;
    let r = app
        .call_with("GET", &path, None, &expired, &[("user-agent", UA.into())])
        .await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    let rid = r.header("x-request-id").unwrap().to_owned();
    let (e, p) = the_event_of(&app, before, &rid).await;
    assert_payload(
        &p,
        "authenticate",
        "session",
        sid,
        "denied",
        "GET /api/patients/{id}",
    );
    let m = &e.header.metadata;
    assert_eq!(m.actor_id, Some(a.doctor.id()));
    assert_eq!(m.user_agent.as_deref(), Some(UA));
    assert_eq!(m.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.header.subject, SubjectId::system());

    // Revoked: after a logout the same (unexpired) token is refused and recorded.
    let r = app
        .post("/api/auth/logout", json!(null), Some(a.doctor.token()))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let before = head(&app).await;
    let (status, _, rid) = get(&app, &path, &a.doctor).await;
    assert_eq!(status, 401);
    let (e, p) = the_event_of(&app, before, &rid).await;
    assert_payload(
        &p,
        "authenticate",
        "session",
        sid,
        "denied",
        "GET /api/patients/{id}",
    );
    assert_eq!(e.header.metadata.actor_id, Some(a.doctor.id()));

    // The audit projection lists it under the user, as denied.
    let auditor = app.platform_user(carelog_domain::Role::AppAuditor).await;
    let search = format!(
        "/api/clinical/audit/search?user_id={}&action=authenticate&outcome=denied",
        a.doctor.id()
    );
    crate::support::eventually(
        std::time::Duration::from_secs(60),
        "both refusals in the audit projection",
        || async {
            let r = app.get(&search, Some(&auditor.token)).await;
            r.body["data"].as_array().is_some_and(|d| d.len() == 2)
        },
    )
    .await;
    let listed = app.get(&search, Some(&auditor.token)).await.body["data"].clone();
    for entry in listed.as_array().unwrap() {
        assert_eq!(entry["resource_type"], "session");
        assert_eq!(entry["resource_id"], json!(sid));
        assert_eq!(entry["outcome"], "denied");
    }

    // A forged token names nobody we know: a 401 and nothing recorded.
    let mut forged = a.doctor.token().to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let before = head(&app).await;
    let r = app.call_with("GET", &path, None, &forged, &[]).await;
    assert_eq!(r.status, 401);
    assert!(access_events(&app, before).await.is_empty());
}
