//! The role × action matrix of API.md "Roles" over HTTP, against a running server
//! (PostgreSQL, NATS, relay and projectors): every kind of caller against every clinical
//! route of the clinical core (crates/api/src/clinical/gate.rs `ROUTES` of API.md
//! "Organisations" and "Patients and clinical records"), on an organisation A, its patient P
//! and P's record R. Each case expects exactly 2xx, 403 or 404 — the decisions of the
//! policy table (crates/domain/src/access/tests.rs), as the client sees them. All cases
//! run, then every mismatch is listed at once.

use serde_json::json;
use uuid::Uuid;

use crate::support::clinical::{id_of, patient_body, record_body, Account};
use crate::support::TestApp;

use Expect::*;
use Route::*;
use Who::*;

/// The answer a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 2xx.
    Ok,
    /// 403 FORBIDDEN.
    Forbidden,
    /// 404 NOT_FOUND.
    NotFound,
    /// 403 FORBIDDEN from the gateway check (`route_allows`: record writes need a doctor),
    /// where the policy table's `decide` alone says NOT_FOUND. The refusal does not
    /// depend on the id, so it reveals nothing of the patient or record (checked below
    /// with ids nobody issued).
    Gateway,
}

/// The callers. "Org…" are members of org A (P's), "OtherOrg…" of org B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    SuperAdmin,
    AppAdmin,
    AppAuditor,
    OrgAdmin,
    OrgDoctor,
    OrgStaff,
    OrgAuditor,
    OtherOrgAdmin,
    OtherOrgDoctor,
    OtherOrgStaff,
    OtherOrgAuditor,
    /// BASE:DOCTOR, no consent (consent comes with a later issue).
    BaseDoctor,
    /// BASE:PATIENT whose account is linked to P.
    PatientOwn,
    /// BASE:PATIENT, someone else.
    PatientOther,
    /// ORG:DOCTOR of org B holding an active emergency grant on P.
    EmergencyDoctor,
}

/// Every route of gate.rs `ROUTES` (`GET /api/patients/:id/clinical-records` and
/// `GET /api/clinical-records/:id` are two routes of one action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    CreateOrg,
    ReadOrg,
    AddMember,
    ListMembers,
    RemoveMember,
    CreatePatient,
    ListPatients,
    ReadPatient,
    UpdatePatient,
    PatientHistory,
    EmergencyAccess,
    CreateRecord,
    ListRecords,
    ReadRecord,
    AmendRecord,
    VoidRecord,
    RecordHistory,
}

const ROUTES: [Route; 17] = [
    CreateOrg,
    ReadOrg,
    AddMember,
    ListMembers,
    RemoveMember,
    CreatePatient,
    ListPatients,
    ReadPatient,
    UpdatePatient,
    PatientHistory,
    EmergencyAccess,
    CreateRecord,
    ListRecords,
    ReadRecord,
    AmendRecord,
    VoidRecord,
    RecordHistory,
];

const CALLERS: [Who; 15] = [
    SuperAdmin,
    AppAdmin,
    AppAuditor,
    OrgAdmin,
    OrgDoctor,
    OrgStaff,
    OrgAuditor,
    OtherOrgAdmin,
    OtherOrgDoctor,
    OtherOrgStaff,
    OtherOrgAuditor,
    BaseDoctor,
    PatientOwn,
    PatientOther,
    EmergencyDoctor,
];

#[rustfmt::skip]
const TABLE: &[(Who, Route, Expect)] = &[
    (SuperAdmin,      CreateOrg,       Ok),
    (SuperAdmin,      ReadOrg,         Ok),
    (SuperAdmin,      AddMember,       Ok),
    (SuperAdmin,      ListMembers,     Ok),
    (SuperAdmin,      RemoveMember,    Ok),
    (SuperAdmin,      CreatePatient,   NotFound),
    (SuperAdmin,      ListPatients,    NotFound),
    (SuperAdmin,      ReadPatient,     NotFound),
    (SuperAdmin,      UpdatePatient,   NotFound),
    (SuperAdmin,      PatientHistory,  NotFound),
    (SuperAdmin,      EmergencyAccess, Ok),
    (SuperAdmin,      CreateRecord,    Gateway),
    (SuperAdmin,      ListRecords,     NotFound),
    (SuperAdmin,      ReadRecord,      NotFound),
    (SuperAdmin,      AmendRecord,     Gateway),
    (SuperAdmin,      VoidRecord,      Gateway),
    (SuperAdmin,      RecordHistory,   NotFound),

    (AppAdmin,        CreateOrg,       Ok),
    (AppAdmin,        ReadOrg,         Ok),
    (AppAdmin,        AddMember,       Ok),
    (AppAdmin,        ListMembers,     Ok),
    (AppAdmin,        RemoveMember,    Ok),
    (AppAdmin,        CreatePatient,   NotFound),
    (AppAdmin,        ListPatients,    NotFound),
    (AppAdmin,        ReadPatient,     NotFound),
    (AppAdmin,        UpdatePatient,   NotFound),
    (AppAdmin,        PatientHistory,  NotFound),
    (AppAdmin,        EmergencyAccess, Forbidden),
    (AppAdmin,        CreateRecord,    Gateway),
    (AppAdmin,        ListRecords,     NotFound),
    (AppAdmin,        ReadRecord,      NotFound),
    (AppAdmin,        AmendRecord,     Gateway),
    (AppAdmin,        VoidRecord,      Gateway),
    (AppAdmin,        RecordHistory,   NotFound),

    (AppAuditor,      CreateOrg,       Forbidden),
    (AppAuditor,      ReadOrg,         NotFound),
    (AppAuditor,      AddMember,       NotFound),
    (AppAuditor,      ListMembers,     NotFound),
    (AppAuditor,      RemoveMember,    NotFound),
    (AppAuditor,      CreatePatient,   NotFound),
    (AppAuditor,      ListPatients,    NotFound),
    (AppAuditor,      ReadPatient,     NotFound),
    (AppAuditor,      UpdatePatient,   NotFound),
    (AppAuditor,      PatientHistory,  Ok),
    (AppAuditor,      EmergencyAccess, Forbidden),
    (AppAuditor,      CreateRecord,    Gateway),
    (AppAuditor,      ListRecords,     NotFound),
    (AppAuditor,      ReadRecord,      NotFound),
    (AppAuditor,      AmendRecord,     Gateway),
    (AppAuditor,      VoidRecord,      Gateway),
    (AppAuditor,      RecordHistory,   Ok),

    (OrgAdmin,        CreateOrg,       Forbidden),
    (OrgAdmin,        ReadOrg,         Ok),
    (OrgAdmin,        AddMember,       Ok),
    (OrgAdmin,        ListMembers,     Ok),
    (OrgAdmin,        RemoveMember,    Ok),
    (OrgAdmin,        CreatePatient,   Ok),
    (OrgAdmin,        ListPatients,    Ok),
    (OrgAdmin,        ReadPatient,     Ok),
    (OrgAdmin,        UpdatePatient,   Ok),
    (OrgAdmin,        PatientHistory,  Ok),
    (OrgAdmin,        EmergencyAccess, Forbidden),
    (OrgAdmin,        CreateRecord,    Forbidden),
    (OrgAdmin,        ListRecords,     Forbidden),
    (OrgAdmin,        ReadRecord,      Forbidden),
    (OrgAdmin,        AmendRecord,     Forbidden),
    (OrgAdmin,        VoidRecord,      Forbidden),
    (OrgAdmin,        RecordHistory,   Forbidden),

    (OrgDoctor,       CreateOrg,       Forbidden),
    (OrgDoctor,       ReadOrg,         Ok),
    (OrgDoctor,       AddMember,       Forbidden),
    (OrgDoctor,       ListMembers,     Ok),
    (OrgDoctor,       RemoveMember,    Forbidden),
    (OrgDoctor,       CreatePatient,   Ok),
    (OrgDoctor,       ListPatients,    Ok),
    (OrgDoctor,       ReadPatient,     Ok),
    (OrgDoctor,       UpdatePatient,   Ok),
    (OrgDoctor,       PatientHistory,  Ok),
    (OrgDoctor,       EmergencyAccess, Ok),
    (OrgDoctor,       CreateRecord,    Ok),
    (OrgDoctor,       ListRecords,     Ok),
    (OrgDoctor,       ReadRecord,      Ok),
    (OrgDoctor,       AmendRecord,     Ok),
    (OrgDoctor,       VoidRecord,      Ok),
    (OrgDoctor,       RecordHistory,   Ok),

    (OrgStaff,        CreateOrg,       Forbidden),
    (OrgStaff,        ReadOrg,         Ok),
    (OrgStaff,        AddMember,       Forbidden),
    (OrgStaff,        ListMembers,     Ok),
    (OrgStaff,        RemoveMember,    Forbidden),
    (OrgStaff,        CreatePatient,   Ok),
    (OrgStaff,        ListPatients,    Ok),
    (OrgStaff,        ReadPatient,     Ok),
    (OrgStaff,        UpdatePatient,   Ok),
    (OrgStaff,        PatientHistory,  Ok),
    (OrgStaff,        EmergencyAccess, Forbidden),
    (OrgStaff,        CreateRecord,    Forbidden),
    (OrgStaff,        ListRecords,     Forbidden),
    (OrgStaff,        ReadRecord,      Forbidden),
    (OrgStaff,        AmendRecord,     Forbidden),
    (OrgStaff,        VoidRecord,      Forbidden),
    (OrgStaff,        RecordHistory,   Forbidden),

    (OrgAuditor,      CreateOrg,       Forbidden),
    (OrgAuditor,      ReadOrg,         Ok),
    (OrgAuditor,      AddMember,       Forbidden),
    (OrgAuditor,      ListMembers,     Ok),
    (OrgAuditor,      RemoveMember,    Forbidden),
    (OrgAuditor,      CreatePatient,   Forbidden),
    (OrgAuditor,      ListPatients,    Forbidden),
    (OrgAuditor,      ReadPatient,     Forbidden),
    (OrgAuditor,      UpdatePatient,   Forbidden),
    (OrgAuditor,      PatientHistory,  Ok),
    (OrgAuditor,      EmergencyAccess, Forbidden),
    (OrgAuditor,      CreateRecord,    Forbidden),
    (OrgAuditor,      ListRecords,     Forbidden),
    (OrgAuditor,      ReadRecord,      Forbidden),
    (OrgAuditor,      AmendRecord,     Forbidden),
    (OrgAuditor,      VoidRecord,      Forbidden),
    (OrgAuditor,      RecordHistory,   Ok),

    (OtherOrgAdmin,   CreateOrg,       Forbidden),
    (OtherOrgAdmin,   ReadOrg,         NotFound),
    (OtherOrgAdmin,   AddMember,       NotFound),
    (OtherOrgAdmin,   ListMembers,     NotFound),
    (OtherOrgAdmin,   RemoveMember,    NotFound),
    (OtherOrgAdmin,   CreatePatient,   NotFound),
    (OtherOrgAdmin,   ListPatients,    NotFound),
    (OtherOrgAdmin,   ReadPatient,     NotFound),
    (OtherOrgAdmin,   UpdatePatient,   NotFound),
    (OtherOrgAdmin,   PatientHistory,  NotFound),
    (OtherOrgAdmin,   EmergencyAccess, Forbidden),
    (OtherOrgAdmin,   CreateRecord,    Gateway),
    (OtherOrgAdmin,   ListRecords,     NotFound),
    (OtherOrgAdmin,   ReadRecord,      NotFound),
    (OtherOrgAdmin,   AmendRecord,     Gateway),
    (OtherOrgAdmin,   VoidRecord,      Gateway),
    (OtherOrgAdmin,   RecordHistory,   NotFound),

    (OtherOrgDoctor,  CreateOrg,       Forbidden),
    (OtherOrgDoctor,  ReadOrg,         NotFound),
    (OtherOrgDoctor,  AddMember,       NotFound),
    (OtherOrgDoctor,  ListMembers,     NotFound),
    (OtherOrgDoctor,  RemoveMember,    NotFound),
    (OtherOrgDoctor,  CreatePatient,   NotFound),
    (OtherOrgDoctor,  ListPatients,    NotFound),
    (OtherOrgDoctor,  ReadPatient,     NotFound),
    (OtherOrgDoctor,  UpdatePatient,   NotFound),
    (OtherOrgDoctor,  PatientHistory,  NotFound),
    (OtherOrgDoctor,  EmergencyAccess, Ok),
    (OtherOrgDoctor,  CreateRecord,    NotFound),
    (OtherOrgDoctor,  ListRecords,     NotFound),
    (OtherOrgDoctor,  ReadRecord,      NotFound),
    (OtherOrgDoctor,  AmendRecord,     NotFound),
    (OtherOrgDoctor,  VoidRecord,      NotFound),
    (OtherOrgDoctor,  RecordHistory,   NotFound),

    (OtherOrgStaff,   CreateOrg,       Forbidden),
    (OtherOrgStaff,   ReadOrg,         NotFound),
    (OtherOrgStaff,   AddMember,       NotFound),
    (OtherOrgStaff,   ListMembers,     NotFound),
    (OtherOrgStaff,   RemoveMember,    NotFound),
    (OtherOrgStaff,   CreatePatient,   NotFound),
    (OtherOrgStaff,   ListPatients,    NotFound),
    (OtherOrgStaff,   ReadPatient,     NotFound),
    (OtherOrgStaff,   UpdatePatient,   NotFound),
    (OtherOrgStaff,   PatientHistory,  NotFound),
    (OtherOrgStaff,   EmergencyAccess, Forbidden),
    (OtherOrgStaff,   CreateRecord,    Gateway),
    (OtherOrgStaff,   ListRecords,     NotFound),
    (OtherOrgStaff,   ReadRecord,      NotFound),
    (OtherOrgStaff,   AmendRecord,     Gateway),
    (OtherOrgStaff,   VoidRecord,      Gateway),
    (OtherOrgStaff,   RecordHistory,   NotFound),

    (OtherOrgAuditor, CreateOrg,       Forbidden),
    (OtherOrgAuditor, ReadOrg,         NotFound),
    (OtherOrgAuditor, AddMember,       NotFound),
    (OtherOrgAuditor, ListMembers,     NotFound),
    (OtherOrgAuditor, RemoveMember,    NotFound),
    (OtherOrgAuditor, CreatePatient,   NotFound),
    (OtherOrgAuditor, ListPatients,    NotFound),
    (OtherOrgAuditor, ReadPatient,     NotFound),
    (OtherOrgAuditor, UpdatePatient,   NotFound),
    (OtherOrgAuditor, PatientHistory,  NotFound),
    (OtherOrgAuditor, EmergencyAccess, Forbidden),
    (OtherOrgAuditor, CreateRecord,    Gateway),
    (OtherOrgAuditor, ListRecords,     NotFound),
    (OtherOrgAuditor, ReadRecord,      NotFound),
    (OtherOrgAuditor, AmendRecord,     Gateway),
    (OtherOrgAuditor, VoidRecord,      Gateway),
    (OtherOrgAuditor, RecordHistory,   NotFound),

    (BaseDoctor,      CreateOrg,       Ok),
    (BaseDoctor,      ReadOrg,         NotFound),
    (BaseDoctor,      AddMember,       NotFound),
    (BaseDoctor,      ListMembers,     NotFound),
    (BaseDoctor,      RemoveMember,    NotFound),
    (BaseDoctor,      CreatePatient,   NotFound),
    (BaseDoctor,      ListPatients,    NotFound),
    (BaseDoctor,      ReadPatient,     NotFound),
    (BaseDoctor,      UpdatePatient,   NotFound),
    (BaseDoctor,      PatientHistory,  NotFound),
    (BaseDoctor,      EmergencyAccess, Ok),
    (BaseDoctor,      CreateRecord,    NotFound),
    (BaseDoctor,      ListRecords,     NotFound),
    (BaseDoctor,      ReadRecord,      NotFound),
    (BaseDoctor,      AmendRecord,     NotFound),
    (BaseDoctor,      VoidRecord,      NotFound),
    (BaseDoctor,      RecordHistory,   NotFound),

    (PatientOwn,      CreateOrg,       Forbidden),
    (PatientOwn,      ReadOrg,         NotFound),
    (PatientOwn,      AddMember,       NotFound),
    (PatientOwn,      ListMembers,     NotFound),
    (PatientOwn,      RemoveMember,    NotFound),
    (PatientOwn,      CreatePatient,   NotFound),
    (PatientOwn,      ListPatients,    NotFound),
    (PatientOwn,      ReadPatient,     Ok),
    (PatientOwn,      UpdatePatient,   Forbidden),
    (PatientOwn,      PatientHistory,  Ok),
    (PatientOwn,      EmergencyAccess, Forbidden),
    (PatientOwn,      CreateRecord,    Forbidden),
    (PatientOwn,      ListRecords,     Ok),
    (PatientOwn,      ReadRecord,      Ok),
    (PatientOwn,      AmendRecord,     Forbidden),
    (PatientOwn,      VoidRecord,      Forbidden),
    (PatientOwn,      RecordHistory,   Ok),

    (PatientOther,    CreateOrg,       Forbidden),
    (PatientOther,    ReadOrg,         NotFound),
    (PatientOther,    AddMember,       NotFound),
    (PatientOther,    ListMembers,     NotFound),
    (PatientOther,    RemoveMember,    NotFound),
    (PatientOther,    CreatePatient,   NotFound),
    (PatientOther,    ListPatients,    NotFound),
    (PatientOther,    ReadPatient,     NotFound),
    (PatientOther,    UpdatePatient,   NotFound),
    (PatientOther,    PatientHistory,  NotFound),
    (PatientOther,    EmergencyAccess, Forbidden),
    (PatientOther,    CreateRecord,    Gateway),
    (PatientOther,    ListRecords,     NotFound),
    (PatientOther,    ReadRecord,      NotFound),
    (PatientOther,    AmendRecord,     Gateway),
    (PatientOther,    VoidRecord,      Gateway),
    (PatientOther,    RecordHistory,   NotFound),

    (EmergencyDoctor, CreateOrg,       Forbidden),
    (EmergencyDoctor, ReadOrg,         NotFound),
    (EmergencyDoctor, AddMember,       NotFound),
    (EmergencyDoctor, ListMembers,     NotFound),
    (EmergencyDoctor, RemoveMember,    NotFound),
    (EmergencyDoctor, CreatePatient,   NotFound),
    (EmergencyDoctor, ListPatients,    NotFound),
    (EmergencyDoctor, ReadPatient,     Ok),
    (EmergencyDoctor, UpdatePatient,   Forbidden),
    (EmergencyDoctor, PatientHistory,  Ok),
    (EmergencyDoctor, EmergencyAccess, Ok),
    (EmergencyDoctor, CreateRecord,    Forbidden),
    (EmergencyDoctor, ListRecords,     Ok),
    (EmergencyDoctor, ReadRecord,      Ok),
    (EmergencyDoctor, AmendRecord,     Forbidden),
    (EmergencyDoctor, VoidRecord,      Forbidden),
    (EmergencyDoctor, RecordHistory,   Ok),
];

/// Everyone and everything the cases act on.
struct World {
    org_a: Uuid,
    /// ORG:ADMIN of A (sets up victims of RemoveMember).
    a_admin: String,
    /// ORG:DOCTOR of A (writes the records VoidRecord cases void).
    a_doctor: String,
    /// P, linked to PatientOwn's account.
    patient: Uuid,
    /// Another patient of A: emergency access cases are declared on it, so that the
    /// grants they create change no other case.
    patient_2: Uuid,
    /// A record of P.
    record: Uuid,
    callers: Vec<(Who, Account)>,
}

impl World {
    fn token(&self, who: Who) -> &str {
        self.callers
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, a)| a.token())
            .expect("every caller is set up")
    }
}

async fn world(app: &TestApp) -> World {
    let a = app.clinic("Org A").await;
    let b = app.clinic("Org B").await;
    let emergency = app.member(b.id, b.admin.token(), "ORG:DOCTOR").await;
    let base_doctor = app.account("DOCTOR").await;
    let patient_own = app.account("PATIENT").await;
    let patient_other = app.account("PATIENT").await;
    let platform = |role| async move {
        let s = app.platform_user(role).await;
        Account {
            email: String::new(),
            session: s,
        }
    };
    let super_admin = platform(carelog_domain::Role::SuperAdmin).await;
    let app_admin = platform(carelog_domain::Role::AppAdmin).await;
    let app_auditor = platform(carelog_domain::Role::AppAuditor).await;

    let patient = app
        .new_patient(a.id, a.staff.token(), "Matrix", Some(patient_own.id()))
        .await;
    let patient: Uuid = patient["id"].as_str().unwrap().parse().unwrap();
    let patient_2 = app.new_patient(a.id, a.staff.token(), "Second", None).await;
    let patient_2: Uuid = patient_2["id"].as_str().unwrap().parse().unwrap();
    let record = app.new_record(patient, a.doctor.token(), "Influenza").await;
    let record: Uuid = record["id"].as_str().unwrap().parse().unwrap();
    let r = app
        .post(
            &format!("/api/patients/{patient}/emergency-access"),
            json!({"reason": "unconscious in the emergency room"}),
            Some(emergency.token()),
        )
        .await;
    assert_eq!(r.status, 201, "emergency grant: {:?}", r.body);

    World {
        org_a: a.id,
        a_admin: a.admin.token().to_owned(),
        a_doctor: a.doctor.token().to_owned(),
        patient,
        patient_2,
        record,
        callers: vec![
            (SuperAdmin, super_admin),
            (AppAdmin, app_admin),
            (AppAuditor, app_auditor),
            (OrgAdmin, a.admin),
            (OrgDoctor, a.doctor),
            (OrgStaff, a.staff),
            (OrgAuditor, a.auditor),
            (OtherOrgAdmin, b.admin),
            (OtherOrgDoctor, b.doctor),
            (OtherOrgStaff, b.staff),
            (OtherOrgAuditor, b.auditor),
            (BaseDoctor, base_doctor),
            (PatientOwn, patient_own),
            (PatientOther, patient_other),
            (EmergencyDoctor, emergency),
        ],
    }
}

/// Runs one case: sets up what it consumes, sends the request, answers the status.
async fn run(app: &TestApp, w: &World, who: Who, route: Route) -> (u16, String) {
    let token = w.token(who);
    let (org, p, rec) = (w.org_a, w.patient, w.record);
    let r = match route {
        CreateOrg => {
            app.call(
                "POST",
                "/api/organizations",
                Some(json!({"name": "New org"})),
                token,
            )
            .await
        }
        ReadOrg => {
            app.call("GET", &format!("/api/organizations/{org}"), None, token)
                .await
        }
        AddMember => {
            let newcomer = app.account("STAFF").await;
            app.add_member(org, token, &newcomer.email, "ORG:STAFF")
                .await
        }
        ListMembers => {
            app.call(
                "GET",
                &format!("/api/organizations/{org}/members"),
                None,
                token,
            )
            .await
        }
        RemoveMember => {
            let victim = app.member(org, &w.a_admin, "ORG:STAFF").await;
            let path = format!("/api/organizations/{org}/members/{}", victim.id());
            app.call("DELETE", &path, None, token).await
        }
        CreatePatient => {
            let path = format!("/api/organizations/{org}/patients");
            app.call("POST", &path, Some(patient_body("New", "Patient")), token)
                .await
        }
        ListPatients => {
            app.call(
                "GET",
                &format!("/api/organizations/{org}/patients"),
                None,
                token,
            )
            .await
        }
        ReadPatient => {
            app.call("GET", &format!("/api/patients/{p}"), None, token)
                .await
        }
        UpdatePatient => {
            let body = json!({"given_name": format!("{who:?}")});
            app.patch(&format!("/api/patients/{p}"), body, token, None)
                .await
        }
        PatientHistory => {
            app.call("GET", &format!("/api/patients/{p}/history"), None, token)
                .await
        }
        EmergencyAccess => {
            let path = format!("/api/patients/{}/emergency-access", w.patient_2);
            app.call("POST", &path, Some(json!({"reason": "matrix"})), token)
                .await
        }
        CreateRecord => {
            let path = format!("/api/patients/{p}/clinical-records");
            app.call("POST", &path, Some(record_body("New", "New record")), token)
                .await
        }
        ListRecords => {
            let path = format!("/api/patients/{p}/clinical-records");
            app.call("GET", &path, None, token).await
        }
        ReadRecord => {
            app.call("GET", &format!("/api/clinical-records/{rec}"), None, token)
                .await
        }
        AmendRecord => {
            let body = json!({"body": format!("amended by {who:?}")});
            app.patch(&format!("/api/clinical-records/{rec}"), body, token, None)
                .await
        }
        VoidRecord => {
            let fresh = app.new_record(p, &w.a_doctor, "To void").await;
            let id: Uuid = fresh["id"].as_str().unwrap().parse().unwrap();
            let path = format!("/api/clinical-records/{id}/void");
            app.call(
                "POST",
                &path,
                Some(json!({"reason": "entered in error"})),
                token,
            )
            .await
        }
        RecordHistory => {
            let path = format!("/api/clinical-records/{rec}/history");
            app.call("GET", &path, None, token).await
        }
    };
    (r.status, r.code().to_owned())
}

fn matches(expect: Expect, status: u16, code: &str) -> bool {
    match expect {
        Ok => (200..300).contains(&status),
        Forbidden | Gateway => status == 403 && code == "FORBIDDEN",
        NotFound => status == 404 && code == "NOT_FOUND",
    }
}

#[test]
fn the_table_covers_every_caller_and_every_route_once() {
    assert_eq!(TABLE.len(), CALLERS.len() * ROUTES.len());
    for who in CALLERS {
        for route in ROUTES {
            let n = TABLE
                .iter()
                .filter(|(w, r, _)| *w == who && *r == route)
                .count();
            assert_eq!(n, 1, "{who:?} {route:?}");
        }
    }
    // The clinical core: every route of gate.rs whose action is one of API.md
    // "Organisations" / "Patients and clinical records". Consent and GDPR routes have
    // their own behaviour tests (consent.rs, gdpr.rs) over the same policy table.
    use carelog_domain::access::Action as A;
    const CORE: [A; 16] = [
        A::CreateOrg,
        A::ReadOrg,
        A::AddMember,
        A::ListMembers,
        A::RemoveMember,
        A::CreatePatient,
        A::ListPatients,
        A::ReadPatient,
        A::UpdatePatient,
        A::ReadPatientHistory,
        A::EmergencyAccess,
        A::CreateRecord,
        A::ReadRecord,
        A::AmendRecord,
        A::VoidRecord,
        A::ReadRecordHistory,
    ];
    let core = carelog_api::clinical::gate::ROUTES
        .iter()
        .filter(|(_, _, action)| CORE.contains(action))
        .count();
    assert_eq!(
        ROUTES.len(),
        core,
        "one route class per clinical-core route of gate.rs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_caller_against_every_clinical_route_gets_the_answer_of_the_table() {
    let app = TestApp::spawn_full().await;
    let nats = app.nats.as_ref().expect("spawn_full runs NATS");
    crate::support::eventually(
        std::time::Duration::from_secs(10),
        "the relay sets up the streams under the test's prefix",
        || async { !nats.streams().await.is_empty() },
    )
    .await;
    let w = world(&app).await;
    let mut failures = Vec::new();
    for &(who, route, expect) in TABLE {
        let (status, code) = run(&app, &w, who, route).await;
        if !matches(expect, status, &code) {
            failures.push(format!(
                "{who:?} {route:?}: expected {expect:?}, got {status} {code}"
            ));
        }
        if expect == Gateway {
            // The same answer for ids nobody issued: the 403 reveals nothing.
            let unknown = Uuid::now_v7();
            let (method, path, body) = match route {
                CreateRecord => (
                    "POST",
                    format!("/api/patients/{unknown}/clinical-records"),
                    record_body("New", "x"),
                ),
                AmendRecord => (
                    "PATCH",
                    format!("/api/clinical-records/{unknown}"),
                    json!({"body": "x"}),
                ),
                _ => (
                    "POST",
                    format!("/api/clinical-records/{unknown}/void"),
                    json!({"reason": "x"}),
                ),
            };
            let r = app.call(method, &path, Some(body), w.token(who)).await;
            if r.status != status {
                failures.push(format!(
                    "{who:?} {route:?} on an unknown id: {} where a real id gets {status}",
                    r.status
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        TABLE.len(),
        failures.join("\n")
    );
    // The patient and record the cases acted on still exist for their org's doctor.
    let r = app
        .call(
            "GET",
            &format!("/api/clinical-records/{}", w.record),
            None,
            &w.a_doctor,
        )
        .await;
    assert_eq!(r.status, 200);
    let _ = id_of(&r);
}
