//! Helpers of the clinical tests (API.md "Organisations", "Patients and clinical
//! records"): organisations with members of every org role, patients, records, and
//! requests with `If-Match` / `Idempotency-Key`.

use serde_json::{json, Value};
use uuid::Uuid;

use super::app::{Resp, Session, TestApp};

/// A logged-in user and the email they log in with.
#[derive(Debug, Clone)]
pub struct Account {
    /// The login email.
    pub email: String,
    /// The session.
    pub session: Session,
}

impl Account {
    /// The access token.
    pub fn token(&self) -> &str {
        &self.session.token
    }

    /// The user id.
    pub fn id(&self) -> Uuid {
        self.session.user_id
    }
}

/// An organisation created by a BASE:DOCTOR (its first ORG:ADMIN), with one member of
/// every org role. The members registered as STAFF (no base role): they act through
/// their membership only, as the policy table's org callers do.
pub struct Clinic {
    /// The organisation.
    pub id: Uuid,
    /// The BASE:DOCTOR who created it (ORG:ADMIN by creation).
    pub founder: Account,
    /// ORG:ADMIN.
    pub admin: Account,
    /// ORG:DOCTOR.
    pub doctor: Account,
    /// ORG:STAFF.
    pub staff: Account,
    /// ORG:AUDITOR.
    pub auditor: Account,
}

/// A UUID the server never issued.
pub fn unknown_id() -> Uuid {
    Uuid::now_v7()
}

/// A valid patient body.
pub fn patient_body(given: &str, family: &str) -> Value {
    json!({
        "given_name": given,
        "family_name": family,
        "birth_date": "1980-05-17",
        "sex": "female",
        "phone": "+41 44 555 00 00",
        "address": "1 Test Street",
    })
}

/// A valid record body.
pub fn record_body(title: &str, body: &str) -> Value {
    json!({
        "kind": "diagnosis",
        "code": "J10",
        "title": title,
        "body": body,
        "data": {"clinical_status": "active"},
        "recorded_at": "2025-03-01T09:00:00Z",
    })
}

/// `data.id` of an answer, as a UUID.
pub fn id_of(r: &Resp) -> Uuid {
    r.body["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no data.id in {} {:?}", r.status, r.body))
        .parse()
        .expect("uuid")
}

impl TestApp {
    /// A registered, logged-in user with `role` (DOCTOR, PATIENT or STAFF) and their email.
    pub async fn account(&self, role: &str) -> Account {
        let email = format!("{}@example.org", Uuid::now_v7().simple());
        self.register(&email, role).await;
        let session = self.login(&email).await;
        Account { email, session }
    }

    /// A request with a bearer token and, if given, a JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, token: &str) -> Resp {
        self.call_with(method, path, body, token, &[]).await
    }

    /// As [`TestApp::call`], with extra headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: &str,
        headers: &[(&str, String)],
    ) -> Resp {
        let method: reqwest::Method = method.parse().expect("method");
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        self.send(req).await
    }

    /// PATCH `body` with `If-Match: "<version>"` when given.
    pub async fn patch(&self, path: &str, body: Value, token: &str, if_match: Option<i64>) -> Resp {
        let headers: Vec<(&str, String)> = if_match
            .map(|v| ("If-Match", format!("\"{v}\"")))
            .into_iter()
            .collect();
        self.call_with("PATCH", path, Some(body), token, &headers)
            .await
    }

    /// `POST /api/organizations` as `token`; the organisation's id.
    pub async fn create_org(&self, token: &str, name: &str) -> Uuid {
        let r = self
            .post("/api/organizations", json!({"name": name}), Some(token))
            .await;
        assert_eq!(r.status, 201, "create org: {:?}", r.body);
        id_of(&r)
    }

    /// `POST /api/organizations/:org/members` `{email, role}` as `token`.
    pub async fn add_member(&self, org: Uuid, token: &str, email: &str, role: &str) -> Resp {
        self.post(
            &format!("/api/organizations/{org}/members"),
            json!({"email": email, "role": role}),
            Some(token),
        )
        .await
    }

    /// A new STAFF-registered account added to `org` with `role` by `admin_token`.
    pub async fn member(&self, org: Uuid, admin_token: &str, role: &str) -> Account {
        let account = self.account("STAFF").await;
        let r = self
            .add_member(org, admin_token, &account.email, role)
            .await;
        assert_eq!(r.status, 201, "add {role}: {:?}", r.body);
        account
    }

    /// An organisation founded by a new BASE:DOCTOR, with an ORG:ADMIN, an ORG:DOCTOR,
    /// an ORG:STAFF and an ORG:AUDITOR.
    pub async fn clinic(&self, name: &str) -> Clinic {
        let founder = self.account("DOCTOR").await;
        let id = self.create_org(founder.token(), name).await;
        let admin = self.member(id, founder.token(), "ORG:ADMIN").await;
        let doctor = self.member(id, admin.token(), "ORG:DOCTOR").await;
        let staff = self.member(id, admin.token(), "ORG:STAFF").await;
        let auditor = self.member(id, admin.token(), "ORG:AUDITOR").await;
        Clinic {
            id,
            founder,
            admin,
            doctor,
            staff,
            auditor,
        }
    }

    /// `POST /api/organizations/:org/patients` as `token`.
    pub async fn post_patient(&self, org: Uuid, token: &str, body: Value) -> Resp {
        self.post(
            &format!("/api/organizations/{org}/patients"),
            body,
            Some(token),
        )
        .await
    }

    /// A new patient of `org` (registered by `token`), linked to `account` if given;
    /// the `data` of the answer.
    pub async fn new_patient(
        &self,
        org: Uuid,
        token: &str,
        family: &str,
        account: Option<Uuid>,
    ) -> Value {
        let mut body = patient_body("Pat", family);
        if let Some(user) = account {
            body["user_id"] = json!(user);
        }
        let r = self.post_patient(org, token, body).await;
        assert_eq!(r.status, 201, "create patient: {:?}", r.body);
        r.body["data"].clone()
    }

    /// A new record of `patient` written by `token`; the `data` of the answer.
    pub async fn new_record(&self, patient: Uuid, token: &str, title: &str) -> Value {
        let r = self
            .post(
                &format!("/api/patients/{patient}/clinical-records"),
                record_body(title, &format!("{title}: first version")),
                Some(token),
            )
            .await;
        assert_eq!(r.status, 201, "create record: {:?}", r.body);
        r.body["data"].clone()
    }

    /// The number of events in a stream (its version), read from the log.
    pub async fn stream_version(&self, stream_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
            .bind(stream_id)
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }

    /// The number of events in the whole log that change state: access events (one
    /// `access-<uuid>` stream each, appended by every read of PHI and every refusal) are
    /// left out, so "a refusal changes nothing" still holds.
    pub async fn log_len(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id NOT LIKE 'access-%'")
            .fetch_one(&self.db.pool)
            .await
            .expect("count events")
    }
}

/// `data` as a list's ids.
pub fn ids(r: &Resp) -> Vec<Uuid> {
    r.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {} {:?}", r.status, r.body))
        .iter()
        .map(|v| v["id"].as_str().expect("id").parse().expect("uuid"))
        .collect()
}

// ---- consent (API.md "Consent") ------------------------------------------------------

/// A patient with an account of their own: a BASE:PATIENT login and the chart linked to
/// it in an organisation.
pub struct PatientAccount {
    /// The patient's login.
    pub account: Account,
    /// The chart.
    pub patient: Uuid,
}

impl PatientAccount {
    /// The access token.
    pub fn token(&self) -> &str {
        self.account.token()
    }
}

/// `data.status` of an answer.
pub fn status_of(r: &Resp) -> &str {
    r.body["data"]["status"].as_str().unwrap_or("")
}

impl TestApp {
    /// A new BASE:PATIENT account with a chart in `org` (registered by `staff_token`)
    /// linked to it.
    pub async fn patient_account(
        &self,
        org: Uuid,
        staff_token: &str,
        family: &str,
    ) -> PatientAccount {
        let account = self.account("PATIENT").await;
        let data = self
            .new_patient(org, staff_token, family, Some(account.id()))
            .await;
        PatientAccount {
            account,
            patient: data["id"].as_str().expect("id").parse().expect("uuid"),
        }
    }

    /// `POST /api/consent/grant` `body` as `token`.
    pub async fn grant_consent(&self, token: &str, body: Value) -> Resp {
        self.post("/api/consent/grant", body, Some(token)).await
    }

    /// `POST /api/consent/:id/<action>` (approve, decline, revoke) as `token`, no body.
    pub async fn consent_action(&self, id: Uuid, action: &str, token: &str) -> Resp {
        self.call("POST", &format!("/api/consent/{id}/{action}"), None, token)
            .await
    }

    /// A consent of the patient behind `patient_token` to `grantee` (`{"grantee_user_id":
    /// …}` or `{"grantee_org_id": …}`) with `scope`, for treatment; its id.
    pub async fn consent_to(&self, patient_token: &str, grantee: Value, scope: &str) -> Uuid {
        let mut body = json!({"scope": scope, "purpose": "treatment"});
        for (k, v) in grantee.as_object().expect("grantee object") {
            body[k] = v.clone();
        }
        let r = self.grant_consent(patient_token, body).await;
        assert_eq!(r.status, 201, "grant consent: {:?}", r.body);
        id_of(&r)
    }
}
