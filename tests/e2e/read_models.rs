//! The clinical read models (`patients`, `clinical_records`) built by their projectors
//! from real events through NATS, their queries (filter, pagination, versions), rebuilds
//! that reach the incremental state, erasure, and the inline clinical tables that access
//! decisions read (migrations/0007_clinical.sql).

use std::time::Duration;

use carelog_bus::{BusConfig, Relay, RelayConfig};
use carelog_domain::access::{
    ConsentScope, ConsentStatus, EmergencyFacts, Grantee, Membership, PatientFacts,
};
use carelog_domain::consent::Purpose;
use carelog_domain::patient::{Demographics, PatientEvent, Sex};
use carelog_domain::record::{RecordContent, RecordEvent, RecordKind};
use carelog_domain::{
    ConsentId, GrantId, Metadata, NewEvent, OrgId, PatientId, Position, RecordId, Role, StreamId,
    StreamVersion, UserId,
};
use carelog_projector::clinical_records::ClinicalRecords;
use carelog_projector::patients::Patients;
use carelog_projector::{Projection, Projector, ProjectorConfig};
use carelog_store::clinical;
use carelog_store::consent::{self, ConsentRow};
use carelog_store::read_models as rm;
use carelog_store::{EventStore, Expected};
use chrono::{Duration as Span, NaiveDate, SubsecRound, TimeZone, Utc};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::support::nats::TestNats;
use crate::support::{self, assert_audit_spans_exact, one, TestDb};

fn meta() -> Metadata {
    Metadata {
        request_id: Some("req-read-models".to_owned()),
        ..Metadata::default()
    }
}

fn demographics(given: &str, family: &str) -> Demographics {
    Demographics {
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        birth_date: NaiveDate::from_ymd_opt(1980, 5, 17).unwrap(),
        sex: Sex::Female,
        phone: Some("+33 1 23 45 67 89".to_owned()),
        email: None,
        address: Some("1 rue de la Paix".to_owned()),
        national_id: None,
    }
}

fn content(title: &str, day: u32) -> RecordContent {
    RecordContent {
        code: Some("J10".to_owned()),
        title: title.to_owned(),
        body: format!("{title}: body"),
        data: Some(json!({"temp_c": 38.5})),
        recorded_at: Utc.with_ymd_and_hms(2024, 3, day, 9, 0, 0).unwrap(),
    }
}

async fn append(store: &EventStore, stream: StreamId, version: i64, event: NewEvent) -> Position {
    let done = store
        .append(one(stream, Expected::Exact(StreamVersion(version)), event))
        .await
        .expect("append");
    *done.positions.last().unwrap()
}

async fn register(store: &EventStore, org: OrgId, given: &str, family: &str) -> PatientId {
    let patient = PatientId::new_v7();
    let ev = PatientEvent::PatientRegistered {
        org_id: org,
        demographics: demographics(given, family),
        user_id: None,
    };
    append(
        store,
        patient.stream(),
        0,
        ev.into_new_event(patient, meta()),
    )
    .await;
    patient
}

async fn spawn_relay(db: &TestDb, nats: &TestNats) -> JoinHandle<()> {
    let mut cfg = RelayConfig::new(BusConfig::new(&nats.prefix, 1).unwrap());
    cfg.standby_retry = Duration::from_millis(200);
    cfg.min_backoff = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_millis(500);
    let client = carelog_bus::connect(&nats.url).await.unwrap();
    let relay = Relay::new(db.pool.clone(), client, cfg).unwrap();
    tokio::spawn(relay.run(std::future::pending::<()>()))
}

async fn spawn_projector(
    db: &TestDb,
    store: &EventStore,
    nats: &TestNats,
    projection: Box<dyn Projection>,
) -> JoinHandle<()> {
    let cfg = ProjectorConfig {
        max_attempts: 3,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ack_wait: Duration::from_secs(1),
        gap_delay: Duration::from_millis(100),
        ..ProjectorConfig::default()
    };
    let client = carelog_bus::connect(&nats.url).await.unwrap();
    let projector = Projector::new(
        db.pool.clone(),
        store.clone(),
        client,
        BusConfig::new(&nats.prefix, 1).unwrap(),
        projection,
        cfg,
    )
    .unwrap();
    tokio::spawn(projector.run(std::future::pending::<()>()))
}

async fn reached(db: &TestDb, projection: &str, position: Position) {
    assert!(
        rm::wait_for_projection(&db.pool, projection, position, Duration::from_secs(60))
            .await
            .unwrap(),
        "{projection} reached position {position}"
    );
}

/// A table's rows as JSON text, in a stable order.
async fn dump(db: &TestDb, table: &str) -> Vec<String> {
    let sql = match table {
        "patients" => "SELECT row_to_json(t)::text FROM patients t ORDER BY patient_id",
        "clinical_records" => {
            "SELECT row_to_json(t)::text FROM clinical_records t ORDER BY record_id"
        }
        "clinical_record_versions" => {
            "SELECT row_to_json(t)::text FROM clinical_record_versions t \
             ORDER BY record_id, version"
        }
        _ => unreachable!(),
    };
    sqlx::query_scalar(sql).fetch_all(&db.pool).await.unwrap()
}

async fn indexes(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN \
         ('patients', 'clinical_records', 'clinical_record_versions') ORDER BY indexname",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_models_follow_the_log_and_rebuild_to_the_same_state() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let nats = TestNats::new().await;
    let relay = spawn_relay(&db, &nats).await;
    let p_proj = spawn_projector(&db, &store, &nats, Box::new(Patients)).await;
    let r_proj = spawn_projector(&db, &store, &nats, Box::new(ClinicalRecords)).await;

    let (org, other_org) = (OrgId::new_v7(), OrgId::new_v7());
    let ada = register(&store, org, "Ada", "Lovelace").await;
    let _byron = register(&store, org, "Annabella", "Byron").await;
    let _ada2 = register(&store, org, "Augusta", "Lovelace").await;
    let _elsewhere = register(&store, other_org, "Alan", "Lovelace").await;
    let user = UserId::new_v7();
    let updated = PatientEvent::PatientUpdated {
        demographics: demographics("Ada", "King"),
        user_id: Some(user),
    };
    let p_pos = append(&store, ada.stream(), 1, updated.into_new_event(ada, meta())).await;

    let author = UserId::new_v7();
    let record = RecordId::new_v7();
    let created = RecordEvent::RecordCreated {
        patient_id: ada,
        org_id: org,
        kind: RecordKind::Diagnosis,
        content: content("Influenza", 1),
        author_id: author,
    };
    append(
        &store,
        record.stream(),
        0,
        created.into_new_event(ada, meta()),
    )
    .await;
    let amender = UserId::new_v7();
    let amended = RecordEvent::RecordAmended {
        content: content("Influenza A", 2),
        author_id: amender,
    };
    append(
        &store,
        record.stream(),
        1,
        amended.into_new_event(ada, meta()),
    )
    .await;
    let voided_record = RecordId::new_v7();
    let note = RecordEvent::RecordCreated {
        patient_id: ada,
        org_id: org,
        kind: RecordKind::Note,
        content: content("Wrong chart", 5),
        author_id: author,
    };
    append(
        &store,
        voided_record.stream(),
        0,
        note.into_new_event(ada, meta()),
    )
    .await;
    let voided = RecordEvent::RecordVoided {
        reason: "entered in error".to_owned(),
        author_id: amender,
    };
    append(
        &store,
        voided_record.stream(),
        1,
        voided.into_new_event(ada, meta()),
    )
    .await;
    let third = RecordId::new_v7();
    let vitals = RecordEvent::RecordCreated {
        patient_id: ada,
        org_id: org,
        kind: RecordKind::VitalSigns,
        content: content("Vitals", 3),
        author_id: author,
    };
    let r_pos = append(
        &store,
        third.stream(),
        0,
        vitals.into_new_event(ada, meta()),
    )
    .await;
    let head = p_pos.max(r_pos);
    reached(&db, "patients", head).await;
    reached(&db, "clinical_records", head).await;

    // Patients: the update applied, filter and pagination.
    let row = rm::get_patient(&db.pool, ada).await.unwrap().unwrap();
    assert_eq!(
        (row.given_name.as_str(), row.family_name.as_str()),
        ("Ada", "King")
    );
    assert_eq!(row.user_id, Some(user));
    assert_eq!(row.org_id, org);
    assert_eq!(row.version, StreamVersion(2));
    assert_eq!(row.position, p_pos);
    assert_eq!(row.sex, "female");
    assert_eq!(
        row.birth_date,
        NaiveDate::from_ymd_opt(1980, 5, 17).unwrap()
    );
    assert!(row.updated_at > row.created_at);
    assert!(!format!("{row:?}").contains("King"), "Debug shows no PHI");

    let (all, total) = rm::list_patients(&db.pool, org, None, 0, 10).await.unwrap();
    assert_eq!(total, 3, "the other organisation's patient is not listed");
    let given: Vec<_> = all.iter().map(|p| p.given_name.as_str()).collect();
    assert_eq!(given, ["Ada", "Annabella", "Augusta"], "registration order");
    let (lovelace, total) = rm::list_patients(&db.pool, org, Some("Lovelace"), 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 1, "exact family name match (Ada is now King)");
    assert_eq!(lovelace[0].given_name, "Augusta");
    let (page2, total) = rm::list_patients(&db.pool, org, None, 1, 1).await.unwrap();
    assert_eq!((page2.len(), total), (1, 3));
    assert_eq!(page2[0].given_name, "Annabella");
    let (beyond, total) = rm::list_patients(&db.pool, org, None, 10, 5).await.unwrap();
    assert_eq!((beyond.len(), total), (0, 3), "an empty page still counts");
    let (none, total) = rm::list_patients(&db.pool, org, Some("Nobody"), 0, 5)
        .await
        .unwrap();
    assert_eq!((none.len(), total), (0, 0));
    assert!(rm::get_patient(&db.pool, PatientId::new_v7())
        .await
        .unwrap()
        .is_none());

    // Records: current version, versions, voided hidden from the list.
    let current = rm::get_record(&db.pool, record).await.unwrap().unwrap();
    assert_eq!(current.title, "Influenza A");
    assert_eq!(current.kind, "diagnosis");
    assert_eq!(current.status, "active");
    assert_eq!(current.version, StreamVersion(2));
    assert_eq!(current.author_id, amender);
    assert_eq!(current.org_id, org);
    assert_eq!(current.data, Some(json!({"temp_c": 38.5})));
    let versions = rm::record_versions(&db.pool, record).await.unwrap();
    let summary: Vec<_> = versions
        .iter()
        .map(|v| {
            (
                v.version.0,
                v.change.as_str(),
                v.title.as_str(),
                v.author_id,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "created", "Influenza", author),
            (2, "amended", "Influenza A", amender)
        ]
    );
    let gone = rm::get_record(&db.pool, voided_record)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.status, "voided");
    assert_eq!(gone.void_reason.as_deref(), Some("entered in error"));
    let history = rm::record_versions(&db.pool, voided_record).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].change, "voided");
    assert_eq!(
        history[1].title, "Wrong chart",
        "the voided content is kept"
    );
    assert_eq!(history[1].reason.as_deref(), Some("entered in error"));
    assert_eq!(history[1].author_id, amender);
    let (listed, total) = rm::list_records(&db.pool, ada, 0, 10).await.unwrap();
    assert_eq!(total, 2, "voided records are not listed");
    let ids: Vec<_> = listed.iter().map(|r| r.record_id).collect();
    assert_eq!(ids, [third, record], "most recently observed first");
    let (p2, total) = rm::list_records(&db.pool, ada, 1, 1).await.unwrap();
    assert_eq!((p2.len(), total, p2[0].record_id), (1, 2, record));

    // Rebuild: the same state, the same index names (ensure_schemas stays a no-op).
    let before_idx = indexes(&db).await;
    let tables = ["patients", "clinical_records", "clinical_record_versions"];
    let mut before = Vec::new();
    for t in tables {
        before.push(dump(&db, t).await);
    }
    for projection in [&Patients as &dyn Projection, &ClinicalRecords] {
        carelog_projector::rebuild(&db.pool, &store, projection, |_, _| {})
            .await
            .unwrap();
    }
    for (t, rows) in tables.iter().zip(&before) {
        assert_eq!(&dump(&db, t).await, rows, "rebuilt {t} equals incremental");
    }
    carelog_projector::schemas::ensure_schemas(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        indexes(&db).await,
        before_idx,
        "same indexes after a rebuild"
    );

    // The live projectors carry on into the swapped-in tables.
    let again = PatientEvent::PatientUpdated {
        demographics: demographics("Ada", "Lovelace"),
        user_id: Some(user),
    };
    let pos = append(&store, ada.stream(), 2, again.into_new_event(ada, meta())).await;
    reached(&db, "patients", pos).await;
    let (lovelace, _) = rm::list_patients(&db.pool, org, Some("Lovelace"), 0, 10)
        .await
        .unwrap();
    assert_eq!(lovelace.len(), 2);

    // Erasure: once the patient's key is destroyed, a rebuild keeps nothing of them.
    assert!(store.vault().keys().destroy(&ada.subject()).await.unwrap());
    for projection in [&Patients as &dyn Projection, &ClinicalRecords] {
        carelog_projector::rebuild(&db.pool, &store, projection, |_, _| {})
            .await
            .unwrap();
    }
    assert!(rm::get_patient(&db.pool, ada).await.unwrap().is_none());
    for r in [record, voided_record, third] {
        assert!(rm::get_record(&db.pool, r).await.unwrap().is_none());
        assert!(rm::record_versions(&db.pool, r).await.unwrap().is_empty());
    }
    assert_eq!(
        rm::list_patients(&db.pool, org, None, 0, 10)
            .await
            .unwrap()
            .1,
        2
    );

    p_proj.abort();
    r_proj.abort();
    relay.abort();
}

#[tokio::test]
async fn wait_for_projection_times_out_below_the_position() {
    let db = TestDb::new().await;
    let t0 = std::time::Instant::now();
    let ok = rm::wait_for_projection(
        &db.pool,
        "patients",
        Position(1),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    assert!(!ok);
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(
        rm::wait_for_projection(&db.pool, "patients", Position(0), Duration::ZERO)
            .await
            .unwrap()
    );
}

/// What an access decision on `patient` by `user` at `at` reads.
async fn access(
    db: &TestDb,
    patient: PatientId,
    user: UserId,
    at: chrono::DateTime<Utc>,
) -> Option<clinical::PatientAccessFacts> {
    clinical::patient_access(&db.pool, patient, user, at)
        .await
        .unwrap()
}

#[tokio::test]
async fn inline_clinical_tables_round_trip() {
    let db = TestDb::new().await;
    let now = Utc::now();
    let (org, other) = (OrgId::new_v7(), OrgId::new_v7());
    let (doc, staff) = (UserId::new_v7(), UserId::new_v7());
    let mut tx = db.pool.begin().await.unwrap();
    clinical::insert_org(&mut tx, org, now).await.unwrap();
    clinical::insert_org(&mut tx, other, now).await.unwrap();
    clinical::upsert_member(&mut tx, org, doc, Role::OrgAdmin, now)
        .await
        .unwrap();
    clinical::upsert_member(&mut tx, org, staff, Role::OrgStaff, now + Span::seconds(1))
        .await
        .unwrap();
    clinical::upsert_member(&mut tx, other, doc, Role::OrgDoctor, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(clinical::org_exists(&db.pool, org).await.unwrap());
    assert!(!clinical::org_exists(&db.pool, OrgId::new_v7())
        .await
        .unwrap());

    // A role change keeps when they joined; memberships are current.
    let mut tx = db.pool.begin().await.unwrap();
    clinical::upsert_member(&mut tx, org, doc, Role::OrgDoctor, now + Span::hours(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut mine = clinical::memberships_of(&db.pool, doc).await.unwrap();
    mine.sort_by_key(|m| m.org_id);
    let mut expected = vec![
        Membership {
            org_id: org,
            role: Role::OrgDoctor,
        },
        Membership {
            org_id: other,
            role: Role::OrgDoctor,
        },
    ];
    expected.sort_by_key(|m| m.org_id);
    assert_eq!(mine, expected);
    let members = clinical::members_of(&db.pool, org).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!((members[0].0, members[0].1), (doc, Role::OrgDoctor));
    assert_eq!((members[1].0, members[1].1), (staff, Role::OrgStaff));
    assert!(
        (members[0].2 - now).num_milliseconds().abs() < 1,
        "added_at kept"
    );

    // A platform role is not an org role: refused by the table.
    let mut tx = db.pool.begin().await.unwrap();
    assert!(
        clinical::upsert_member(&mut tx, org, staff, Role::SuperAdmin, now)
            .await
            .is_err()
    );
    tx.rollback().await.unwrap();

    let mut tx = db.pool.begin().await.unwrap();
    clinical::remove_member(&mut tx, org, staff).await.unwrap();
    tx.commit().await.unwrap();
    assert!(clinical::memberships_of(&db.pool, staff)
        .await
        .unwrap()
        .is_empty());

    // Patient facts: upserts move forward only; erasure is set once.
    let patient = PatientId::new_v7();
    let account = UserId::new_v7();
    let mut facts = PatientFacts {
        patient_id: patient,
        org_id: org,
        user_id: None,
        erased: false,
    };
    let mut tx = db.pool.begin().await.unwrap();
    clinical::upsert_patient_index(&mut tx, &facts, StreamVersion(1), Position(10))
        .await
        .unwrap();
    facts.user_id = Some(account);
    clinical::upsert_patient_index(&mut tx, &facts, StreamVersion(2), Position(12))
        .await
        .unwrap();
    let stale = PatientFacts {
        user_id: None,
        ..facts
    };
    clinical::upsert_patient_index(&mut tx, &stale, StreamVersion(1), Position(10))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let got = access(&db, patient, doc, now).await.unwrap().indexed;
    assert_eq!(got.facts, facts);
    assert_eq!(
        (got.version, got.position),
        (StreamVersion(2), Position(12))
    );
    assert_eq!(
        clinical::patients_of_user(&db.pool, account).await.unwrap(),
        [patient]
    );
    assert!(access(&db, PatientId::new_v7(), doc, now).await.is_none());

    // A read of demographics gets the same facts and, once projected, the row.
    carelog_projector::schemas::ensure_schemas(&db.pool)
        .await
        .unwrap();
    let (read, row) = clinical::patient_read(&db.pool, patient, doc, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, access(&db, patient, doc, now).await.unwrap());
    assert!(row.is_none(), "not projected yet");
    let mut tx = db.pool.begin().await.unwrap();
    let place = rm::EventPlace {
        version: StreamVersion(2),
        position: Position(12),
        at: now.trunc_subsecs(6),
    };
    rm::patient_insert(
        &mut tx,
        patient,
        org,
        Some(account),
        &demographics("Ada", "Byron"),
        place,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let (read, row) = clinical::patient_read(&db.pool, patient, doc, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.indexed, got);
    let row = row.expect("projected");
    assert_eq!(
        Some(&row),
        rm::get_patient(&db.pool, patient).await.unwrap().as_ref()
    );
    assert_eq!((row.given_name.as_str(), row.org_id), ("Ada", org));
    assert!(
        clinical::patient_read(&db.pool, PatientId::new_v7(), doc, now)
            .await
            .unwrap()
            .is_none()
    );

    // Records point at their patient.
    let record = RecordId::new_v7();
    let mut tx = db.pool.begin().await.unwrap();
    clinical::upsert_record_index(&mut tx, record, patient, StreamVersion(1), Position(13))
        .await
        .unwrap();
    clinical::upsert_record_index(&mut tx, record, patient, StreamVersion(2), Position(15))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let on_record = clinical::record_access(&db.pool, record, doc, now)
        .await
        .unwrap()
        .unwrap();
    let r = on_record.record;
    assert_eq!(
        (r.patient_id, r.version, r.position),
        (patient, StreamVersion(2), Position(15))
    );
    assert_eq!(
        on_record.patient,
        access(&db, patient, doc, now).await.unwrap()
    );
    assert!(
        clinical::record_access(&db.pool, RecordId::new_v7(), doc, now)
            .await
            .unwrap()
            .is_none()
    );

    // A read of the record gets the same facts and, once projected, the row.
    let (read, row) = clinical::record_read(&db.pool, record, doc, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, on_record);
    assert!(row.is_none(), "not projected yet");
    let new = rm::NewRecord {
        record_id: record,
        patient_id: patient,
        org_id: org,
        kind: RecordKind::Note,
        author_id: doc,
    };
    let mut tx = db.pool.begin().await.unwrap();
    rm::record_insert(&mut tx, &new, &content("Flu", 3), place)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let (read, row) = clinical::record_read(&db.pool, record, doc, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, on_record);
    let row = row.expect("projected");
    assert_eq!(
        Some(&row),
        rm::get_record(&db.pool, record).await.unwrap().as_ref()
    );
    assert_eq!((row.title.as_str(), row.patient_id), ("Flu", patient));
    assert!(
        clinical::record_read(&db.pool, RecordId::new_v7(), doc, now)
            .await
            .unwrap()
            .is_none()
    );

    // Emergency grants: only running ones count.
    let active = EmergencyFacts {
        grant_id: GrantId::new_v7(),
        patient_id: patient,
        user_id: doc,
        expires_at: now + Span::minutes(60),
    };
    let expired = EmergencyFacts {
        grant_id: GrantId::new_v7(),
        expires_at: now - Span::minutes(1),
        ..active
    };
    let someone_else = EmergencyFacts {
        grant_id: GrantId::new_v7(),
        user_id: staff,
        ..active
    };
    let mut tx = db.pool.begin().await.unwrap();
    clinical::insert_emergency_grant(&mut tx, &active, now - Span::minutes(1))
        .await
        .unwrap();
    clinical::insert_emergency_grant(&mut tx, &expired, now - Span::minutes(61))
        .await
        .unwrap();
    clinical::insert_emergency_grant(&mut tx, &someone_else, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let grants = access(&db, patient, doc, now).await.unwrap().emergency;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].grant_id, active.grant_id);
    assert_eq!(grants[0].user_id, doc);
    assert!(
        (grants[0].expires_at - active.expires_at)
            .num_milliseconds()
            .abs()
            < 1
    );
    assert!(
        access(&db, patient, doc, now + Span::minutes(61))
            .await
            .unwrap()
            .emergency
            .is_empty(),
        "it expires by itself"
    );

    // Consents: those in force count (their expiry is the policy's to compare), in
    // id order, whoever the grantee; revoked, declined and requested ones do not.
    let consent = |grantee, scope, status, expires_at| ConsentRow {
        consent_id: ConsentId::new_v7(),
        patient_id: patient,
        grantee,
        scope,
        purpose: Purpose::Treatment,
        status,
        expires_at,
        requested_by: None,
        created_at: now,
        updated_at: now,
        version: StreamVersion(1),
        position: Position(30),
    };
    let to_org = consent(
        Grantee::Org(other),
        ConsentScope::ClinicalRecords,
        ConsentStatus::Active,
        // PostgreSQL keeps microseconds.
        Some((now + Span::days(30)).trunc_subsecs(6)),
    );
    let to_user = consent(
        Grantee::User(staff),
        ConsentScope::All,
        ConsentStatus::Active,
        None,
    );
    let mut tx = db.pool.begin().await.unwrap();
    for row in [
        to_org,
        to_user,
        consent(
            Grantee::Org(org),
            ConsentScope::All,
            ConsentStatus::Revoked,
            None,
        ),
        consent(
            Grantee::Org(org),
            ConsentScope::All,
            ConsentStatus::Declined,
            None,
        ),
        consent(
            Grantee::User(doc),
            ConsentScope::All,
            ConsentStatus::Requested,
            None,
        ),
    ] {
        consent::upsert_consent(&mut tx, &row).await.unwrap();
    }
    tx.commit().await.unwrap();
    let got = access(&db, patient, doc, now).await.unwrap();
    assert_eq!(got.consents, [to_org.facts(), to_user.facts()]);
    assert_eq!(got.emergency.len(), 1, "grants and consents side by side");
    let nobody = access(&db, patient, UserId::new_v7(), now).await.unwrap();
    assert!(nobody.emergency.is_empty(), "grants are the caller's own");
    assert_eq!(nobody.consents.len(), 2, "consents are the patient's");

    // Erasure is recorded once and hides the chart from the account's list.
    let mut tx = db.pool.begin().await.unwrap();
    clinical::mark_patient_erased(&mut tx, patient, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let erased = access(&db, patient, doc, now).await.unwrap().indexed;
    assert!(erased.facts.erased);
    let mut tx = db.pool.begin().await.unwrap();
    let later = PatientFacts {
        erased: false,
        ..facts
    };
    clinical::upsert_patient_index(&mut tx, &later, StreamVersion(3), Position(20))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(
        access(&db, patient, doc, now)
            .await
            .unwrap()
            .indexed
            .facts
            .erased,
        "an erasure is never cleared"
    );
    assert!(clinical::patients_of_user(&db.pool, account)
        .await
        .unwrap()
        .is_empty());
}

/// A date range with more matches than the search sorts in memory (10,000) is paged by
/// an ordered scan over the positions of the spans that meet the range
/// (`audit_feed_spans`). The page must be exactly the matches in log order, including
/// an entry stamped later than the entries after it (its timestamp was taken before the
/// log lock, as between two writers), one stamped earlier than the entries before it,
/// and one applied long after the entries around it (a retried dead letter), in a span
/// whose other entries all lie before the range.
#[tokio::test]
async fn a_long_date_range_pages_exactly_in_log_order() {
    use carelog_store::audit::{self, AuditFilter};

    let db = TestDb::new().await;
    carelog_projector::schemas::ensure_schemas(&db.pool)
        .await
        .unwrap();
    // 70,000 entries, one second apart in position order, but for three: position 4,990
    // is stamped 20 s late (inside a range that starts at 5,000 s) and position 60,005
    // 20 s early (inside a range that ends at 60,000 s); position 99, a `read`, is
    // stamped at 30,000 s and applied last, on its own. Every third one is a `read`.
    for positions in ["g <> 99", "g = 99"] {
        sqlx::query(&format!(
            "INSERT INTO audit_feed (position, event_id, stream_id, stream_type, event_type, \
               recorded_at, action, resource_type, outcome) \
             SELECT g, gen_random_uuid(), 'access-' || g, 'access', 'AccessRecorded', \
               timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => \
                 CASE g WHEN 4990 THEN 5010 WHEN 60005 THEN 59990 WHEN 99 THEN 30000 \
                        ELSE g END), \
               CASE WHEN g % 3 = 0 THEN 'read' ELSE 'update' END, 'patient', 'success' \
             FROM generate_series(1, 70000) AS g WHERE {positions}"
        ))
        .execute(&db.pool)
        .await
        .unwrap();
    }
    assert_audit_spans_exact(&db.pool, "after the late insert").await;
    sqlx::query("ANALYZE audit_feed")
        .execute(&db.pool)
        .await
        .unwrap();
    let at = |s: i64| Utc.timestamp_opt(1_767_225_600 + s, 0).unwrap();
    let (from, to) = (at(5000), at(60000));
    for action in [None, Some("read")] {
        let filter = AuditFilter {
            action: action.map(str::to_owned),
            from: Some(from),
            to: Some(to),
            ..AuditFilter::default()
        };
        for offset in [0, 950, 54_950] {
            let got: Vec<i64> =
                audit::search(&mut db.pool.acquire().await.unwrap(), &filter, 50, offset)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.position)
                    .collect();
            let want: Vec<i64> = sqlx::query_scalar(
                "SELECT position FROM audit_feed \
                 WHERE recorded_at BETWEEN $1 AND $2 AND ($3::text IS NULL OR action = $3) \
                 ORDER BY position LIMIT 50 OFFSET $4",
            )
            .bind(from)
            .bind(to)
            .bind(action)
            .bind(offset)
            .fetch_all(&db.pool)
            .await
            .unwrap();
            assert_eq!(got, want, "action {action:?}, offset {offset}");
        }
    }
    // The two misplaced entries are where the log puts them.
    let first = audit::search(
        &mut db.pool.acquire().await.unwrap(),
        &AuditFilter {
            from: Some(from),
            to: Some(to),
            ..AuditFilter::default()
        },
        2,
        0,
    )
    .await
    .unwrap();
    let first: Vec<i64> = first.iter().map(|e| e.position).collect();
    assert_eq!(first, [99, 4990]);
}

/// A feed filled before `audit_feed_spans` existed (an older carelog) gets its spans
/// when the read models' schemas are ensured at start-up, and keeps them from then on.
#[tokio::test]
async fn spans_are_derived_once_for_a_feed_filled_before_them() {
    let db = TestDb::new().await;
    carelog_projector::schemas::ensure_schemas(&db.pool)
        .await
        .unwrap();
    let fill = |positions: &'static str| {
        format!(
            "INSERT INTO audit_feed (position, event_id, stream_id, stream_type, event_type, \
               recorded_at, action, resource_type, outcome) \
             SELECT g, gen_random_uuid(), 'access-' || g, 'access', 'AccessRecorded', \
               timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => g), 'read', \
               'patient', 'success' \
             FROM generate_series({positions}) AS g"
        )
    };
    sqlx::raw_sql("DROP TRIGGER audit_feed_spans_track ON audit_feed; DROP TABLE audit_feed_spans")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(&fill("1, 9000"))
        .execute(&db.pool)
        .await
        .unwrap();
    carelog_projector::schemas::ensure_schemas(&db.pool)
        .await
        .unwrap();
    assert_audit_spans_exact(&db.pool, "derived at start-up").await;
    let spans: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed_spans")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(spans, 3, "positions 1..=9,000 lie in spans 0, 1 and 2");
    // Ensured again (another start-up): nothing derived twice; later inserts kept.
    carelog_projector::schemas::ensure_schemas(&db.pool)
        .await
        .unwrap();
    sqlx::query(&fill("9001, 13000"))
        .execute(&db.pool)
        .await
        .unwrap();
    assert_audit_spans_exact(&db.pool, "after later inserts").await;
}
