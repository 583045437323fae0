//! The audit API (API.md "Audit"): entries from the `audit_feed` projection (by
//! resource, by user, by record, searched), the log in order (`/api/audit/events`) and
//! its NDJSON export, client-declared entries, and who may read what — never PHI.

use std::collections::BTreeSet;
use std::time::Duration;

use carelog_domain::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::app::{Resp, TestApp};
use crate::support::clinical::id_of;
use crate::support::eventually;

/// Waits until `audit_feed` holds every event of the log.
async fn caught_up(app: &TestApp) {
    eventually(
        Duration::from_secs(60),
        "audit_feed at the head of the log",
        || async {
            let s = carelog_store::projector_status::status(&app.db.pool, "audit_feed")
                .await
                .unwrap();
            s.head > 0 && s.lag_events == 0
        },
    )
    .await;
}

/// Every page of a paginated audit list (`path` has a query string or not).
async fn all_pages(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    for page in 1.. {
        let r = app
            .get(&format!("{path}{sep}page={page}&limit=100"), Some(token))
            .await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        let items = r.body["data"].as_array().expect("a list").clone();
        let total = r.body["meta"]["total"].as_u64().expect("total");
        out.extend(items.iter().cloned());
        if items.is_empty() || out.len() as u64 >= total {
            assert_eq!(
                out.len() as u64,
                total,
                "{path}: every page adds up to total"
            );
            break;
        }
    }
    out
}

fn ids_of(entries: &[Value]) -> BTreeSet<Uuid> {
    entries
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The event ids of the log matching `sql`'s WHERE (`$1` bound to `arg`).
async fn log_ids(app: &TestApp, where_: &str, arg: &str) -> BTreeSet<Uuid> {
    sqlx::query_scalar::<_, Uuid>(&format!("SELECT event_id FROM events WHERE {where_}"))
        .bind(arg)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn assert_no_phi(r: &Resp, names: &[&str]) {
    let text = r.body.to_string();
    for n in names {
        assert!(!text.contains(n), "PHI {n} in an audit answer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_filters_return_exactly_the_matching_entries() {
    let app = TestApp::spawn_full().await;
    let clinic = app.clinic("Audit Clinic").await;
    let doctor = &clinic.doctor;
    let patient = app
        .new_patient(clinic.id, clinic.staff.token(), "Quillfeather", None)
        .await;
    let patient_id: Uuid = patient["id"].as_str().unwrap().parse().unwrap();
    let record = app
        .new_record(patient_id, doctor.token(), "Influenza")
        .await;
    let record_id: Uuid = record["id"].as_str().unwrap().parse().unwrap();
    let amended = app
        .patch(
            &format!("/api/clinical-records/{record_id}"),
            json!({"title": "Influenza A", "body": "amended"}),
            doctor.token(),
            Some(1),
        )
        .await;
    assert_eq!(amended.status, 200, "{:?}", amended.body);
    // A failed login of the doctor.
    let failed = app
        .post(
            "/api/auth/login",
            json!({"email": doctor.email, "password": "not-the-password-at-all"}),
            None,
        )
        .await;
    assert_eq!(failed.status, 401);
    caught_up(&app).await;
    let auditor = app.platform_user(Role::AppAuditor).await;
    let t = auditor.token.as_str();
    caught_up(&app).await;

    // action + resource type: the one registration.
    let created = all_pages(
        &app,
        "/api/clinical/audit/search?action=create&resource_type=patient",
        t,
    )
    .await;
    assert_eq!(created.len(), 1, "{created:?}");
    let e = &created[0];
    assert_eq!(e["resource_id"], json!(patient_id.to_string()));
    assert_eq!(e["actor"]["user_id"], json!(clinic.staff.id().to_string()));
    assert_eq!(e["actor"]["org_id"], json!(clinic.id.to_string()));
    assert_eq!(e["outcome"], "success");
    assert!(e["request_id"].is_string() && e["time"].is_string());
    assert_eq!(e["service"], "carelog-api");
    assert_eq!(e["endpoint"], "POST /api/organizations/{org_id}/patients");

    // user: exactly what the doctor did, as the log says.
    let by_doctor = all_pages(
        &app,
        &format!("/api/clinical/audit/search?user_id={}", doctor.id()),
        t,
    )
    .await;
    let expected = log_ids(&app, "metadata->>'actor_id' = $1", &doctor.id().to_string()).await;
    assert!(!expected.is_empty());
    assert_eq!(ids_of(&by_doctor), expected);
    let user_route = all_pages(
        &app,
        &format!("/api/clinical/audit/user/{}", doctor.id()),
        t,
    )
    .await;
    assert_eq!(ids_of(&user_route), expected);

    // outcome: the failed login only.
    let failures = all_pages(&app, "/api/clinical/audit/search?outcome=failure", t).await;
    let expected = log_ids(&app, "event_type = $1", "LoginFailed").await;
    assert_eq!(expected.len(), 1);
    assert_eq!(ids_of(&failures), expected);
    assert_eq!(failures[0]["action"], "login");
    assert_eq!(failures[0]["resource_type"], "user");

    // date range: from the record's creation to its amendment, inclusive.
    let (from, to): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as(
            "SELECT min(recorded_at), max(recorded_at) FROM events WHERE stream_id = $1",
        )
        .bind(format!("record-{record_id}"))
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let ranged = all_pages(
        &app,
        &format!(
            "/api/clinical/audit/search?from={}&to={}",
            fmt(from),
            fmt(to)
        ),
        t,
    )
    .await;
    let expected: BTreeSet<Uuid> = sqlx::query_scalar::<_, Uuid>(
        "SELECT event_id FROM events WHERE recorded_at BETWEEN $1 AND $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(expected.len() >= 2);
    assert_eq!(ids_of(&ranged), expected);

    // The record's own audit: created, then amended.
    let record_audit =
        all_pages(&app, &format!("/api/clinical-records/{record_id}/audit"), t).await;
    let actions: Vec<&str> = record_audit
        .iter()
        .filter(|e| e["event_type"] != "AccessRecorded")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "update"]);
    assert!(record_audit
        .iter()
        .all(|e| e["resource_id"] == json!(record_id.to_string())));
    let by_resource = all_pages(
        &app,
        &format!("/api/clinical/audit/resource/clinical_record/{record_id}"),
        t,
    )
    .await;
    assert_eq!(ids_of(&by_resource), ids_of(&record_audit));

    // Bad values: 400 naming the field.
    for (q, field) in [
        ("from=yesterday", "from"),
        ("to=2025-02-30T00:00:00Z", "to"),
        ("user_id=bob", "user_id"),
        ("outcome=perhaps", "outcome"),
        ("page=0", "page"),
    ] {
        let r = app
            .get(&format!("/api/clinical/audit/search?{q}"), Some(t))
            .await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.code(), "VALIDATION_ERROR");
        assert_eq!(r.body["error"]["details"]["fields"][0], field, "{q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_is_ordered_with_no_gaps_under_concurrent_writes_and_exports_as_ndjson() {
    let app = TestApp::spawn_full().await;
    let clinic = app.clinic("Busy Clinic").await;
    let auditor = app.platform_user(Role::AppAuditor).await;
    let t = auditor.token.as_str();

    // 50 concurrent commands (client-declared entries, each a fresh stream appended
    // through the group commit) while a reader pages through the log.
    let record = json!({"resource_type": "organization", "resource_id": clinic.id,
                        "action": "printed", "metadata": {"copies": "1"}});
    let writes = futures::future::join_all((0..50).map(|_| {
        app.post(
            "/api/clinical/audit",
            record.clone(),
            Some(clinic.doctor.token()),
        )
    }));
    let reader = async {
        let mut seen = Vec::new();
        let mut after = 0i64;
        for _ in 0..200 {
            let r = app
                .get(&format!("/api/audit/events?after={after}&limit=7"), Some(t))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            for e in r.body["data"]["events"].as_array().unwrap() {
                seen.push(e["position"].as_i64().unwrap());
                assert_eq!(e["hash"].as_str().unwrap().len(), 64);
                assert!(e.get("payload").is_none());
            }
            after = r.body["data"]["next_after"].as_i64().unwrap();
        }
        (seen, after)
    };
    let (answers, (mut seen, mut after)) = tokio::join!(writes, reader);
    assert!(answers.iter().all(|r| r.status == 201), "{answers:?}");
    // Then to the end.
    loop {
        let r = app
            .get(
                &format!("/api/audit/events?after={after}&limit=100"),
                Some(t),
            )
            .await;
        let events = r.body["data"]["events"].as_array().unwrap().clone();
        if events.is_empty() {
            break;
        }
        seen.extend(events.iter().map(|e| e["position"].as_i64().unwrap()));
        after = r.body["data"]["next_after"].as_i64().unwrap();
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    let log: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(seen, log, "every position of the log, none missing");

    // The export: NDJSON, one line per event, in order.
    let r = app
        .http
        .get(app.url("/api/audit/export"))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let exported: Vec<i64> = lines
        .iter()
        .map(|l| l["position"].as_i64().unwrap())
        .collect();
    let log: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(exported, log);
    assert!(lines.iter().all(|l| l.get("payload").is_none()));
    assert_eq!(
        lines.iter().filter(|l| l["action"] == "printed").count(),
        50,
        "the declared entries, with their action"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auditors_see_no_phi_org_auditors_only_their_org_and_entries_cannot_change() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Clinic A").await;
    let b = app.clinic("Clinic B").await;
    let pa = app
        .new_patient(a.id, a.staff.token(), "Ambersmythe", None)
        .await;
    let pa_id: Uuid = pa["id"].as_str().unwrap().parse().unwrap();
    let pb = app
        .new_patient(b.id, b.staff.token(), "Brackenridge", None)
        .await;
    let pb_id: Uuid = pb["id"].as_str().unwrap().parse().unwrap();
    let ra = app.new_record(pa_id, a.doctor.token(), "Asthma").await;
    let ra_id: Uuid = ra["id"].as_str().unwrap().parse().unwrap();
    let rb = app.new_record(pb_id, b.doctor.token(), "Bronchitis").await;
    let rb_id: Uuid = rb["id"].as_str().unwrap().parse().unwrap();
    // A read of each record (an access event, where they are recorded).
    assert_eq!(
        app.get(
            &format!("/api/clinical-records/{ra_id}"),
            Some(a.doctor.token())
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.get(
            &format!("/api/clinical-records/{rb_id}"),
            Some(b.doctor.token())
        )
        .await
        .status,
        200
    );

    // A client-declared print of A's record; personal data in its metadata is refused.
    let declared = app
        .post(
            "/api/clinical/audit",
            json!({"resource_type": "clinical_record", "resource_id": ra_id,
                   "action": "printed", "metadata": {"printer": "ward-3"}}),
            Some(a.doctor.token()),
        )
        .await;
    assert_eq!(declared.status, 201, "{:?}", declared.body);
    let declared_id = id_of(&declared);
    let refused = app
        .post(
            "/api/clinical/audit",
            json!({"resource_type": "clinical_record", "resource_id": ra_id,
                   "action": "printed", "metadata": {"patient_name": "Ambersmythe"}}),
            Some(a.doctor.token()),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["error"]["details"]["fields"][0], "metadata");
    caught_up(&app).await;

    let phi = [
        "Ambersmythe",
        "Brackenridge",
        "Asthma",
        "Bronchitis",
        "1980-05-17",
        "Test Street",
    ];
    let app_auditor = app.platform_user(Role::AppAuditor).await;
    caught_up(&app).await;
    let everything = [
        "/api/clinical/audit/search?limit=100".to_owned(),
        format!("/api/clinical/audit/resource/patient/{pa_id}"),
        format!("/api/clinical/audit/resource/patient/{pb_id}"),
        format!("/api/clinical-records/{ra_id}/audit"),
        format!("/api/clinical/audit/user/{}", a.doctor.id()),
        "/api/audit/events?limit=1000".to_owned(),
    ];
    for auditor in [
        app_auditor.token.as_str(),
        a.auditor.token(),
        a.admin.token(),
    ] {
        for path in &everything {
            let r = app.get(path, Some(auditor)).await;
            assert_eq!(r.status, 200, "{path}: {:?}", r.body);
            assert_no_phi(&r, &phi);
        }
        let export = app
            .http
            .get(app.url("/api/audit/export"))
            .bearer_auth(auditor)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for n in phi {
            assert!(!export.contains(n), "PHI {n} in the export");
        }
    }

    // The declared print is an entry of A's record, for A's auditor too.
    let printed = all_pages(
        &app,
        "/api/clinical/audit/search?action=printed",
        a.auditor.token(),
    )
    .await;
    assert_eq!(ids_of(&printed), BTreeSet::from([declared_id]));
    assert_eq!(printed[0]["service"], "client");
    assert_eq!(printed[0]["resource_id"], json!(ra_id.to_string()));

    // The doctor's read of A's record is an access event (AccessRecorded), and so an
    // entry with action read, outcome success, for the platform and for A's auditor.
    assert!(!log_ids(&app, "event_type = $1", "AccessRecorded")
        .await
        .is_empty());
    for auditor in [app_auditor.token.as_str(), a.auditor.token()] {
        let listed = all_pages(
            &app,
            &format!(
                "/api/clinical/audit/search?action=read&resource_type=clinical_record&resource_id={ra_id}"
            ),
            auditor,
        )
        .await;
        assert!(
            !listed.is_empty(),
            "the doctor's read of A's record is audited"
        );
        for e in &listed {
            assert_eq!(e["event_type"], "AccessRecorded");
            assert_eq!(e["outcome"], "success");
            assert_eq!(e["actor"]["user_id"], json!(a.doctor.id().to_string()));
            assert_eq!(e["endpoint"], "GET /api/clinical-records/{id}");
        }
    }

    // ORG:AUDITOR of A: nothing of B.
    let b_things: BTreeSet<String> = [b.id, pb_id, rb_id].iter().map(Uuid::to_string).collect();
    let seen_by_a = all_pages(&app, "/api/clinical/audit/search", a.auditor.token()).await;
    assert!(!seen_by_a.is_empty());
    for e in &seen_by_a {
        assert_ne!(e["actor"]["org_id"], json!(b.id.to_string()), "{e}");
        if e["resource_type"] == "audit_trail" {
            // A's own auditors' queries of the trail: the id asked about is the asker's.
            assert_eq!(e["actor"]["org_id"], json!(a.id.to_string()), "{e}");
            continue;
        }
        let rid = e["resource_id"].as_str().unwrap_or("");
        assert!(!b_things.contains(rid), "an entry of B: {e}");
    }
    for path in [
        format!("/api/clinical/audit/resource/patient/{pb_id}"),
        format!("/api/clinical-records/{rb_id}/audit"),
        format!("/api/clinical/audit/user/{}", b.doctor.id()),
    ] {
        let r = app.get(&path, Some(a.auditor.token())).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["meta"]["total"], 0, "{path}: {:?}", r.body);
    }
    let feed = app
        .get("/api/audit/events?limit=1000", Some(a.auditor.token()))
        .await;
    let feed = feed.body["data"]["events"].as_array().unwrap().clone();
    assert!(!feed.is_empty());
    assert!(feed
        .iter()
        .all(|e| e["actor"]["org_id"] == json!(a.id.to_string())));

    // Others: 403.
    for who in [a.doctor.token(), a.staff.token(), b.doctor.token()] {
        for path in [
            "/api/clinical/audit/search",
            "/api/audit/events",
            "/api/audit/export",
        ] {
            let r = app.get(path, Some(who)).await;
            assert_eq!(r.status, 403, "{path}");
            assert_eq!(r.code(), "FORBIDDEN");
        }
    }

    // Entries can be neither changed nor deleted: 405 in the envelope.
    let t = app_auditor.token.as_str();
    for (method, path) in [
        ("DELETE", format!("/api/clinical-records/{ra_id}/audit")),
        ("PUT", format!("/api/clinical-records/{ra_id}/audit")),
        ("DELETE", "/api/clinical/audit/search".to_owned()),
        (
            "PATCH",
            format!("/api/clinical/audit/resource/patient/{pa_id}"),
        ),
        ("DELETE", "/api/audit/events".to_owned()),
        ("PUT", "/api/clinical/audit".to_owned()),
    ] {
        let r = app.call(method, &path, Some(json!({})), t).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
        assert!(r.header("allow").is_some(), "{method} {path}: Allow");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn totals_are_exact_up_to_the_cap_and_say_so_and_ranged_pages_keep_log_order() {
    use carelog_store::audit::{self, AuditFilter, Total};

    let app = TestApp::spawn_full().await;
    let clinic = app.clinic("Capped Clinic").await;
    let doctor = &clinic.doctor;
    let patient = app
        .new_patient(clinic.id, clinic.staff.token(), "Thistlewood", None)
        .await;
    let patient_id: Uuid = patient["id"].as_str().unwrap().parse().unwrap();
    for title in ["Gout", "Sciatica", "Tinnitus"] {
        app.new_record(patient_id, doctor.token(), title).await;
    }
    caught_up(&app).await;
    let auditor = app.platform_user(Role::AppAuditor).await;
    let t = auditor.token.as_str();
    caught_up(&app).await;

    // What the doctor did, as the log says: the total is exact and says so.
    let expected = log_ids(&app, "metadata->>'actor_id' = $1", &doctor.id().to_string()).await;
    let n = expected.len() as i64;
    assert!(n >= 3, "{n} entries of the doctor");
    let path = format!("/api/clinical/audit/search?user_id={}", doctor.id());
    let r = app.get(&path, Some(t)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["meta"]["total"], json!(n), "{:?}", r.body["meta"]);
    assert_eq!(r.body["meta"]["total_exact"], json!(true));
    // Lists that count exactly do not carry the field.
    let patients = app
        .get(
            &format!("/api/organizations/{}/patients", clinic.id),
            Some(clinic.staff.token()),
        )
        .await;
    assert_eq!(patients.status, 200, "{:?}", patients.body);
    assert!(patients.body["meta"]["total"].is_u64());
    assert!(patients.body["meta"].get("total_exact").is_none());

    // The store's count, capped below, at and above the number of matches.
    let filter = AuditFilter {
        actor_id: Some(doctor.id()),
        ..AuditFilter::default()
    };
    let count = |cap| {
        let (pool, filter) = (app.db.pool.clone(), filter.clone());
        async move { audit::count(&pool, &filter, cap).await.unwrap() }
    };
    assert_eq!(
        count(n - 1).await,
        Total {
            value: n - 1,
            exact: false
        }
    );
    assert_eq!(
        count(1).await,
        Total {
            value: 1,
            exact: false
        }
    );
    assert_eq!(
        count(n).await,
        Total {
            value: n,
            exact: true
        }
    );
    assert_eq!(
        count(audit::TOTAL_CAP).await,
        Total {
            value: n,
            exact: true
        }
    );
    // The cap bounds the count only: the pages still reach every entry.
    let all = audit::search(&mut app.db.pool.acquire().await.unwrap(), &filter, 100, 0)
        .await
        .unwrap();
    assert_eq!(all.len() as i64, n);
    let platform = audit::count(&app.db.pool, &AuditFilter::default(), 2)
        .await
        .unwrap();
    assert_eq!(
        platform,
        Total {
            value: 2,
            exact: false
        }
    );

    // A date range (with an action or not), page by page of 2: log order across the
    // pages, every entry once, and each page's total exact.
    let (from, to): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as(
            "SELECT min(recorded_at), max(recorded_at) FROM events \
             WHERE metadata->>'actor_id' = $1",
        )
        .bind(doctor.id().to_string())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .replace('+', "%2B")
    };
    for query in [
        format!("action=create&from={}&to={}", fmt(from), fmt(to)),
        format!("user_id={}&from={}&to={}", doctor.id(), fmt(from), fmt(to)),
    ] {
        let mut positions = Vec::new();
        let mut ids = Vec::new();
        let mut total = None;
        for page in 1.. {
            let r = app
                .get(
                    &format!("/api/clinical/audit/search?{query}&page={page}&limit=2"),
                    Some(t),
                )
                .await;
            assert_eq!(r.status, 200, "{query}: {:?}", r.body);
            assert_eq!(r.body["meta"]["total_exact"], json!(true), "{query}");
            total = Some(r.body["meta"]["total"].as_u64().unwrap());
            let items = r.body["data"].as_array().unwrap().clone();
            if items.is_empty() {
                break;
            }
            for e in &items {
                positions.push(e["position"].as_i64().unwrap());
                ids.push(e["id"].as_str().unwrap().to_owned());
            }
        }
        assert!(positions.len() >= 2, "{query}: {positions:?}");
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{query}: not in log order: {positions:?}"
        );
        assert_eq!(Some(positions.len() as u64), total, "{query}");
        assert_eq!(
            ids.iter().collect::<BTreeSet<_>>().len(),
            ids.len(),
            "{query}"
        );
    }
}

/// Reading the audit trail is itself audited: an auditor's query (with what it was
/// about), an export, a verification, and every refused attempt (a doctor is no
/// auditor). A page of the log's feed is not recorded when allowed, so that paging the
/// feed to its end ends; refused, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_and_refusals_of_the_audit_trail_are_audited_themselves() {
    let app = TestApp::spawn_full().await;
    let a = app.clinic("Clinic A").await;
    let pa = app
        .new_patient(a.id, a.staff.token(), "Quillfeather", None)
        .await;
    let pa_id: Uuid = pa["id"].as_str().unwrap().parse().unwrap();
    let app_auditor = app.platform_user(Role::AppAuditor).await;
    let about = format!("/api/clinical/audit/resource/patient/{pa_id}");
    let ok = |path: String, token: String| {
        let app = &app;
        async move {
            let r = app.get(&path, Some(&token)).await;
            assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        }
    };
    ok(about.clone(), a.auditor.token().to_owned()).await;
    ok(
        "/api/audit/events?limit=5".into(),
        a.auditor.token().to_owned(),
    )
    .await;
    ok("/api/audit/verify".into(), app_auditor.token.clone()).await;
    let export = app
        .http
        .get(app.url("/api/audit/export"))
        .bearer_auth(&app_auditor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    export.text().await.unwrap();
    for path in [
        "/api/audit/events",
        "/api/clinical/audit/search",
        about.as_str(),
    ] {
        let r = app.get(path, Some(a.doctor.token())).await;
        assert_eq!(r.status, 403, "{path}: {:?}", r.body);
    }
    caught_up(&app).await;

    let trail = all_pages(
        &app,
        "/api/clinical/audit/search?resource_type=audit_trail",
        &app_auditor.token,
    )
    .await;
    let of = |user: String, outcome: &str| -> Vec<&Value> {
        trail
            .iter()
            .filter(|e| e["actor"]["user_id"] == json!(user) && e["outcome"] == outcome)
            .collect()
    };
    // The org auditor's query, with every field: who (roles, org), what it was about,
    // from where, through which endpoint.
    let by_auditor = of(a.auditor.id().to_string(), "success");
    assert_eq!(by_auditor.len(), 1, "one recorded read: {by_auditor:?}");
    let e = by_auditor[0];
    assert_eq!(e["event_type"], "AccessRecorded");
    assert_eq!(e["action"], "read");
    assert_eq!(e["resource_id"], json!(pa_id.to_string()));
    assert_eq!(e["actor"]["org_id"], json!(a.id.to_string()));
    assert!(e["actor"]["roles"]
        .as_array()
        .unwrap()
        .contains(&json!("ORG:AUDITOR")));
    assert_eq!(
        e["endpoint"],
        "GET /api/clinical/audit/resource/{resource_type}/{resource_id}"
    );
    assert_eq!(e["service"], "carelog-api");
    assert!(e["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(e["ip"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(e["emergency"], false);
    // The platform auditor's verification and export, about the trail as a whole.
    let mut by_platform: Vec<(String, String, String)> =
        of(app_auditor.user_id.to_string(), "success")
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["endpoint"].as_str().unwrap().to_owned(),
                    e["resource_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    by_platform.sort();
    let nil = Uuid::nil().to_string();
    assert_eq!(
        by_platform,
        [
            ("export".into(), "GET /api/audit/export".into(), nil.clone()),
            ("read".into(), "GET /api/audit/verify".into(), nil.clone()),
        ]
    );
    // The doctor's three refusals, under the doctor's organisation and role there, so
    // that A's own auditor sees them too.
    let denied = of(a.doctor.id().to_string(), "denied");
    for e in &denied {
        assert_eq!(e["actor"]["org_id"], json!(a.id.to_string()), "{e}");
        assert!(e["actor"]["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("ORG:DOCTOR")));
    }
    let seen_by_a = all_pages(
        &app,
        "/api/clinical/audit/search?resource_type=audit_trail&outcome=denied",
        a.auditor.token(),
    )
    .await;
    assert_eq!(ids_of(&seen_by_a).len(), 3, "{seen_by_a:?}");
    let mut refused: Vec<String> = denied
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap().to_owned())
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        [
            "GET /api/audit/events",
            "GET /api/clinical/audit/resource/{resource_type}/{resource_id}",
            "GET /api/clinical/audit/search",
        ]
    );
}
