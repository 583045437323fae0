//! The demo data `carelog dev` seeds on its first run: an organisation with members of
//! every org role, an independent doctor, three patients with accounts and records of
//! every kind (Bruno consenting to the independent doctor), a platform auditor. Everything goes through the same commands as the API
//! (with the demo users as actors), so the log tells how the demo came to be.

use anyhow::{Context, Result};
use carelog_commands::clinical::{Caller, Clinical, NewPatient};
use carelog_commands::identity::{Identity, Registration};
use carelog_commands::{Actor, Ctx};
use carelog_domain::access::ConsentScope;
use carelog_domain::consent::{GrantConsent, Purpose};
use carelog_domain::patient::{Demographics, Sex};
use carelog_domain::record::{RecordContent, RecordKind};
use carelog_domain::user::RegistrationRole;
use carelog_domain::{OrgId, Role, SessionId, UserId};
use chrono::{Duration, NaiveDate, Utc};
use serde_json::json;

/// One demo login.
#[derive(Clone)]
pub struct DemoLogin {
    /// The email to log in with.
    pub email: &'static str,
    /// What the account is for, e.g. `ORG:DOCTOR of Riverside Clinic`.
    pub role: &'static str,
}

/// Every demo account, in the order they are printed.
pub const DEMO_LOGINS: [DemoLogin; 9] = [
    DemoLogin {
        email: "orgadmin@riverside.example",
        role: "ORG:ADMIN of Riverside Clinic",
    },
    DemoLogin {
        email: "dr.adams@riverside.example",
        role: "ORG:DOCTOR of Riverside Clinic",
    },
    DemoLogin {
        email: "dr.baker@riverside.example",
        role: "ORG:DOCTOR of Riverside Clinic",
    },
    DemoLogin {
        email: "staff@riverside.example",
        role: "ORG:STAFF of Riverside Clinic",
    },
    DemoLogin {
        email: "dr.solo@practice.example",
        role: "BASE:DOCTOR (independent)",
    },
    DemoLogin {
        email: "alice@patients.example",
        role: "BASE:PATIENT (Alice Martin)",
    },
    DemoLogin {
        email: "bruno@patients.example",
        role: "BASE:PATIENT (Bruno Keller)",
    },
    DemoLogin {
        email: "chloe@patients.example",
        role: "BASE:PATIENT (Chloé Dubois)",
    },
    DemoLogin {
        email: "auditor@carelog.example",
        role: "APP:AUDITOR",
    },
];

/// Seeds the demo data; every demo account gets `password`. `admin` is the SUPER:ADMIN
/// that creates the organisation (and then hands it over to its ORG:ADMIN).
pub async fn seed_demo(
    identity: &Identity,
    clinical: &Clinical,
    admin: UserId,
    password: &str,
) -> Result<()> {
    let ctx = Ctx::cli("dev seed");
    let mut users = Vec::new();
    for (i, login) in DEMO_LOGINS.iter().enumerate() {
        let (first, last) = NAMES[i];
        let (role, platform) = match i {
            4 => (Some(RegistrationRole::Doctor), vec![]),
            5..=7 => (Some(RegistrationRole::Patient), vec![]),
            8 => (Some(RegistrationRole::Staff), vec![Role::AppAuditor]),
            _ => (Some(RegistrationRole::Staff), vec![]),
        };
        let user = identity
            .register(
                &ctx,
                Registration {
                    email: login.email.to_owned(),
                    password: password.to_owned(),
                    first_name: first.to_owned(),
                    last_name: last.to_owned(),
                    role,
                    platform_roles: platform,
                },
            )
            .await
            .with_context(|| format!("cannot register the demo account {}", login.email))?;
        users.push(user.id);
    }

    let admin = caller(clinical, admin, vec![Role::SuperAdmin]).await?;
    let org = clinical
        .create_org(&ctx, &admin, "Riverside Clinic")
        .await?
        .org_id;
    for (i, role) in [
        Role::OrgAdmin,
        Role::OrgDoctor,
        Role::OrgDoctor,
        Role::OrgStaff,
    ]
    .into_iter()
    .enumerate()
    {
        clinical
            .add_member(&ctx, &admin, org, users[i], role)
            .await?;
    }
    // The platform admin hands the organisation over to its own ORG:ADMIN.
    let admin = caller(clinical, admin.actor.user_id, vec![Role::SuperAdmin]).await?;
    clinical
        .remove_member(&ctx, &admin, org, admin.actor.user_id)
        .await?;

    let staff = caller(clinical, users[3], vec![]).await?;
    let doctor = caller(clinical, users[1], vec![]).await?;
    for (i, patient) in PATIENTS.iter().enumerate() {
        seed_patient(
            &ctx,
            clinical,
            &staff,
            &doctor,
            org,
            users[5 + i],
            patient,
            i,
        )
        .await?;
    }
    // Bruno lets the independent doctor see his whole chart, so the tour can show a
    // doctor outside the organisation reading under consent (and Alice's chart still
    // answers 404 to that doctor).
    let bruno = caller(clinical, users[6], vec![Role::BasePatient]).await?;
    clinical
        .grant_consent(
            &ctx,
            &bruno,
            GrantConsent {
                patient_id: None,
                grantee_org_id: None,
                grantee_user_id: Some(users[4]),
                scope: ConsentScope::All,
                purpose: Purpose::Treatment,
                expires_at: None,
            },
        )
        .await?;
    Ok(())
}

async fn caller(clinical: &Clinical, user: UserId, roles: Vec<Role>) -> Result<Caller> {
    let actor = Actor {
        user_id: user,
        session_id: SessionId(uuid::Uuid::nil()),
        roles,
        mfa: false,
    };
    Ok(clinical.caller(actor).await?)
}

const NAMES: [(&str, &str); 9] = [
    ("Olivia", "Grant"),
    ("Amira", "Adams"),
    ("Ben", "Baker"),
    ("Sam", "Reyes"),
    ("Sofia", "Solo"),
    ("Alice", "Martin"),
    ("Bruno", "Keller"),
    ("Chloé", "Dubois"),
    ("Ari", "Auditor"),
];

struct DemoPatient {
    given: &'static str,
    family: &'static str,
    birth: (i32, u32, u32),
    sex: Sex,
}

const PATIENTS: [DemoPatient; 3] = [
    DemoPatient {
        given: "Alice",
        family: "Martin",
        birth: (1984, 3, 14),
        sex: Sex::Female,
    },
    DemoPatient {
        given: "Bruno",
        family: "Keller",
        birth: (1957, 11, 2),
        sex: Sex::Male,
    },
    DemoPatient {
        given: "Chloé",
        family: "Dubois",
        birth: (2015, 6, 30),
        sex: Sex::Female,
    },
];

/// Kind, code, title, body, structured data.
type DemoRecord = (
    RecordKind,
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<serde_json::Value>,
);

#[allow(clippy::too_many_arguments)]
async fn seed_patient(
    ctx: &Ctx,
    clinical: &Clinical,
    staff: &Caller,
    doctor: &Caller,
    org: OrgId,
    account: UserId,
    p: &DemoPatient,
    i: usize,
) -> Result<()> {
    let (y, m, d) = p.birth;
    let patient = clinical
        .register_patient(
            ctx,
            staff,
            org,
            NewPatient {
                demographics: Demographics {
                    given_name: p.given.to_owned(),
                    family_name: p.family.to_owned(),
                    birth_date: NaiveDate::from_ymd_opt(y, m, d).expect("a valid date"),
                    sex: p.sex,
                    phone: Some(format!("+41 44 555 01 0{i}")),
                    email: Some(format!("{}@patients.example", p.given.to_lowercase())),
                    address: Some(format!("{} Riverside Road, Zürich", 10 + i)),
                    national_id: Some(format!("756.0000.000{i}.0{i}")),
                },
                user_id: Some(account),
            },
        )
        .await?;
    let day = Duration::days(1);
    let now = Utc::now();
    let records: [DemoRecord; 6] = [
        (
            RecordKind::Note,
            None,
            "First consultation",
            "Patient reports fatigue for two weeks; no fever.",
            None,
        ),
        (
            RecordKind::Diagnosis,
            Some("E55.9"),
            "Vitamin D deficiency",
            "Confirmed by the laboratory result.",
            Some(json!({"clinical_status": "active"})),
        ),
        (
            RecordKind::Prescription,
            Some("A11CC05"),
            "Colecalciferol 20,000 IU",
            "One capsule weekly for 8 weeks.",
            Some(json!({"dose": "20000 IU", "frequency": "weekly", "weeks": 8})),
        ),
        (
            RecordKind::LabResult,
            Some("1989-3"),
            "25-hydroxyvitamin D",
            "Below the reference range.",
            Some(json!({"value": 12.5, "unit": "ng/mL", "reference": "30-100"})),
        ),
        (
            RecordKind::Immunization,
            Some("CVX 140"),
            "Influenza vaccine",
            "Left deltoid, lot FL-2026-11.",
            Some(json!({"lot": "FL-2026-11", "site": "left deltoid"})),
        ),
        (
            RecordKind::VitalSigns,
            None,
            "Vital signs",
            "Measured at rest.",
            Some(json!({"systolic": 122, "diastolic": 78, "heart_rate": 64, "unit": "mmHg/bpm"})),
        ),
    ];
    for (n, (kind, code, title, body, data)) in records.into_iter().enumerate() {
        clinical
            .create_record(
                ctx,
                doctor,
                patient.patient_id,
                kind,
                RecordContent {
                    code: code.map(str::to_owned),
                    title: title.to_owned(),
                    body: body.to_owned(),
                    data,
                    recorded_at: now - day * (30 - 4 * n as i32),
                },
            )
            .await?;
    }
    Ok(())
}
