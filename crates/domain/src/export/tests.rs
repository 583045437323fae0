use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::fhir::gender;
use super::*;
use crate::patient::Sex;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const PATIENT: u128 = 0x100;
const ORG: u128 = 0x200;
const OTHER_ORG: u128 = 0x201;
const DOCTOR: u128 = 0x300;
const ACCOUNT: u128 = 0x301;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn record_id(kind: RecordKind) -> RecordId {
    RecordId(id(0x400
        + RecordKind::ALL.iter().position(|k| *k == kind).unwrap()
            as u128))
}

fn content(title: &str, code: Option<&str>, data: Option<Value>, at: &str) -> RecordContent {
    RecordContent {
        code: code.map(Into::into),
        title: title.into(),
        body: format!("{title}: body"),
        data,
        recorded_at: t(at),
    }
}

fn version(v: i64, content: RecordContent, at: &str) -> RecordVersionExport {
    RecordVersionExport {
        version: StreamVersion(v),
        content,
        at: t(at),
    }
}

fn record(kind: RecordKind, versions: Vec<RecordVersionExport>) -> RecordExport {
    RecordExport {
        record_id: record_id(kind),
        kind,
        versions,
        voided: None,
    }
}

/// One record of each kind (vital signs amended, the diagnosis voided), consents in
/// every status, a session consent and a DSR.
fn bundle() -> PatientExportBundle {
    let at = "2025-06-01T12:00:00Z";
    let vitals = record(
        RecordKind::VitalSigns,
        vec![
            version(
                1,
                content("Pulse", Some("8867-4"), Some(json!({"bpm": 72})), at),
                at,
            ),
            version(
                2,
                content(
                    "Pulse",
                    Some("8867-4"),
                    Some(json!({"bpm": 74, "rhythm": "regular", "irregular": false})),
                    at,
                ),
                "2025-06-01T12:30:00.250Z",
            ),
        ],
    );
    let lab = record(
        RecordKind::LabResult,
        vec![version(
            1,
            content(
                "Blood count",
                Some("58410-2"),
                Some(json!({"hb": {"value": 13.5, "unit": "g/dL"}})),
                at,
            ),
            at,
        )],
    );
    let note = record(
        RecordKind::Note,
        vec![version(1, content("Follow-up", None, None, at), at)],
    );
    let mut diagnosis = record(
        RecordKind::Diagnosis,
        vec![version(
            1,
            content("Sore throat", Some("J06.9"), None, at),
            at,
        )],
    );
    diagnosis.voided = Some(VoidExport {
        reason: "wrong patient".into(),
        at: t("2025-06-02T08:00:00Z"),
    });
    let prescription = record(
        RecordKind::Prescription,
        vec![version(
            1,
            content(
                "Amoxicillin",
                Some("J01CA04"),
                Some(json!({"dose_mg": 500})),
                at,
            ),
            at,
        )],
    );
    let immunization = record(
        RecordKind::Immunization,
        vec![version(1, content("MMR", Some("03"), None, at), at)],
    );
    let consent = |n: u128, grantee, status, expires_at: Option<&str>| ConsentExport {
        consent_id: id(n),
        grantee,
        scope: ExportConsentScope::from(crate::access::ConsentScope::ClinicalRecords),
        purpose: ExportConsentPurpose::Treatment,
        status,
        expires_at: expires_at.map(t),
        created_at: t("2025-05-01T09:00:00Z"),
    };
    PatientExportBundle {
        exported_at: t("2025-07-01T10:00:00Z"),
        patient: PatientExport {
            patient_id: PatientId(id(PATIENT)),
            org_id: OrgId(id(ORG)),
            demographics: Demographics {
                given_name: "Ada Augusta".into(),
                family_name: "Lovelace".into(),
                birth_date: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
                sex: Sex::Female,
                phone: Some("+44 20 7946 0958".into()),
                email: Some("ada@example.org".into()),
                address: Some("London".into()),
                national_id: Some("QQ123456C".into()),
            },
            user_id: Some(UserId(id(ACCOUNT))),
            version: StreamVersion(3),
            registered_at: t("2025-01-01T00:00:00Z"),
            updated_at: t("2025-03-01T00:00:00Z"),
        },
        records: vec![vitals, lab, note, diagnosis, prescription, immunization],
        consents: vec![
            consent(
                0x500,
                Grantee::Org(OrgId(id(ORG))).into(),
                ExportConsentStatus::Active,
                None,
            ),
            consent(
                0x501,
                ExportGrantee::OrgId(OrgId(id(OTHER_ORG))),
                ExportConsentStatus::Revoked,
                Some("2026-01-01T00:00:00Z"),
            ),
            consent(
                0x502,
                Grantee::User(UserId(id(DOCTOR))).into(),
                ExportConsentStatus::Requested,
                None,
            ),
            consent(
                0x503,
                ExportGrantee::UserId(UserId(id(DOCTOR))),
                ExportConsentStatus::Active,
                Some("2025-06-30T00:00:00Z"),
            ),
            consent(
                0x504,
                ExportGrantee::UserId(UserId(id(DOCTOR))),
                ExportConsentStatus::Declined,
                None,
            ),
        ],
        session_consents: vec![SessionConsentExport {
            id: id(0x600),
            kind: "ai_transcription".into(),
            status: ExportConsentStatus::Active,
            created_at: t("2025-05-02T09:00:00Z"),
        }],
        dsrs: vec![DsrExport {
            dsr_id: id(0x700),
            kind: "erasure".into(),
            status: "pending".into(),
            requested_at: t("2025-06-15T09:00:00Z"),
            decided_at: None,
        }],
    }
}

fn entries(fhir: &Value) -> &Vec<Value> {
    fhir["entry"].as_array().unwrap()
}

/// The resource whose id is `id`.
fn resource(fhir: &Value, id: Uuid) -> &Value {
    let id = id.to_string();
    let found: Vec<_> = entries(fhir)
        .iter()
        .filter(|e| e["resource"]["id"] == json!(id))
        .collect();
    assert_eq!(found.len(), 1, "{id}");
    &found[0]["resource"]
}

/// Every string value under `key`, anywhere in `v`.
fn values_of<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == key {
                    out.push(x);
                }
                values_of(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| values_of(x, key, out)),
        _ => {}
    }
}

fn all<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    values_of(v, key, &mut out);
    out
}

#[test]
fn given_one_record_of_each_kind_when_exported_to_fhir_then_each_gets_its_resource() {
    let b = bundle();
    let fhir = to_fhir(&b);
    assert_eq!(fhir["resourceType"], "Bundle");
    assert_eq!(fhir["type"], "collection");
    assert_eq!(fhir["timestamp"], "2025-07-01T10:00:00Z");
    let expected = [
        (RecordKind::VitalSigns, "Observation"),
        (RecordKind::LabResult, "Observation"),
        (RecordKind::Note, "Observation"),
        (RecordKind::Diagnosis, "Condition"),
        (RecordKind::Prescription, "MedicationRequest"),
        (RecordKind::Immunization, "Immunization"),
    ];
    for (kind, resource_type) in expected {
        let r = resource(&fhir, record_id(kind).0);
        assert_eq!(r["resourceType"], resource_type, "{}", kind.as_str());
        assert_eq!(r["meta"]["tag"][0]["code"], kind.as_str());
    }
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries(&fhir) {
        let t = e["resource"]["resourceType"].as_str().unwrap().to_owned();
        *types.entry(t).or_default() += 1;
    }
    let types: Vec<_> = types.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        types,
        [
            ("Condition", 1),
            ("Consent", 6),
            ("Immunization", 1),
            ("MedicationRequest", 1),
            ("Observation", 3),
            ("Organization", 2),
            ("Patient", 1),
        ]
    );
    let category = |kind| resource(&fhir, record_id(kind).0)["category"][0].clone();
    assert_eq!(
        category(RecordKind::VitalSigns)["coding"][0]["code"],
        "vital-signs"
    );
    assert_eq!(
        category(RecordKind::LabResult)["coding"][0]["code"],
        "laboratory"
    );
    assert_eq!(category(RecordKind::Note)["text"], "Clinical note");
}

#[test]
fn given_a_bundle_when_exported_to_fhir_then_every_reference_resolves_inside_it() {
    let fhir = to_fhir(&bundle());
    let full_urls: BTreeSet<&str> = entries(&fhir)
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    let references = all(&fhir, "reference");
    assert!(references.len() > 10);
    for r in references {
        let Some(r) = r.as_str() else {
            // `provision.actor.reference` is itself a Reference object.
            assert!(r.is_object());
            continue;
        };
        assert!(full_urls.contains(r), "{r} does not resolve");
    }
}

#[test]
fn given_a_bundle_when_exported_to_fhir_then_ids_are_unique_and_full_urls_are_their_urns() {
    let fhir = to_fhir(&bundle());
    let mut seen = BTreeSet::new();
    for e in entries(&fhir) {
        let id = e["resource"]["id"].as_str().unwrap();
        assert!(seen.insert(id.to_owned()), "{id} twice");
        assert_eq!(
            Uuid::parse_str(id).unwrap().hyphenated().to_string(),
            id,
            "a canonical uuid"
        );
        assert_eq!(e["fullUrl"], json!(format!("urn:uuid:{id}")));
    }
}

#[test]
fn given_a_bundle_when_exported_to_fhir_then_nothing_is_about_another_patient() {
    let b = bundle();
    let fhir = to_fhir(&b);
    let patient_ref = format!("urn:uuid:{}", id(PATIENT));
    let patients: Vec<_> = entries(&fhir)
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .collect();
    assert_eq!(patients.len(), 1);
    assert_eq!(patients[0]["fullUrl"], json!(patient_ref));
    for key in ["subject", "patient"] {
        for s in all(&fhir, key) {
            assert_eq!(s["reference"], json!(patient_ref), "{key}");
        }
    }
    // Every uuid named anywhere is one of the bundle's own.
    let mut known: BTreeSet<Uuid> = [PATIENT, ORG, OTHER_ORG, DOCTOR, 0x600]
        .into_iter()
        .chain(0x500..=0x504)
        .map(id)
        .collect();
    known.extend(b.records.iter().map(|r| r.record_id.0));
    let text = fhir.to_string();
    for (i, _) in text.match_indices("urn:uuid:") {
        let start = i + "urn:uuid:".len();
        let u = Uuid::parse_str(&text[start..start + 36]).unwrap();
        assert!(known.contains(&u), "{u} is not the bundle's");
    }
}

#[test]
fn given_amended_and_voided_records_when_exported_to_fhir_then_the_current_version_and_status_show()
{
    let fhir = to_fhir(&bundle());
    let vitals = resource(&fhir, record_id(RecordKind::VitalSigns).0);
    assert_eq!(vitals["status"], "amended");
    assert_eq!(vitals["meta"]["versionId"], "2");
    assert_eq!(vitals["meta"]["lastUpdated"], "2025-06-01T12:30:00.250Z");
    assert_eq!(vitals["code"]["coding"][0]["code"], "8867-4");
    assert_eq!(vitals["code"]["text"], "Pulse");
    let components: BTreeMap<&str, &Value> = vitals["component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["code"]["text"].as_str().unwrap(), c))
        .collect();
    assert_eq!(components["bpm"]["valueQuantity"]["value"], 74);
    assert_eq!(components["rhythm"]["valueString"], "regular");
    assert_eq!(components["irregular"]["valueBoolean"], false);
    assert!(vitals.get("extension").is_none(), "data went to components");

    let lab = resource(&fhir, record_id(RecordKind::LabResult).0);
    assert_eq!(lab["status"], "final");
    assert!(lab.get("component").is_none());
    let data: Value =
        serde_json::from_str(lab["extension"][0]["valueString"].as_str().unwrap()).unwrap();
    assert_eq!(data, json!({"hb": {"value": 13.5, "unit": "g/dL"}}));

    let note = resource(&fhir, record_id(RecordKind::Note).0);
    assert_eq!(note["valueString"], "Follow-up: body");
    assert!(note["code"].get("coding").is_none(), "no code, no coding");

    let condition = resource(&fhir, record_id(RecordKind::Diagnosis).0);
    assert_eq!(
        condition["verificationStatus"]["coding"][0]["code"],
        "entered-in-error"
    );
    assert!(condition.get("clinicalStatus").is_none(), "con-5");
    assert_eq!(condition["meta"]["lastUpdated"], "2025-06-02T08:00:00Z");
    assert_eq!(
        condition["note"][1]["text"],
        "Entered in error: wrong patient"
    );

    let prescription = resource(&fhir, record_id(RecordKind::Prescription).0);
    assert_eq!(prescription["status"], "active");
    assert_eq!(prescription["intent"], "order");
    assert_eq!(
        prescription["medicationCodeableConcept"]["text"],
        "Amoxicillin"
    );
    assert!(prescription["extension"][0]["valueString"].is_string());

    let immunization = resource(&fhir, record_id(RecordKind::Immunization).0);
    assert_eq!(immunization["status"], "completed");
    assert_eq!(immunization["vaccineCode"]["coding"][0]["code"], "03");
}

#[test]
fn given_voided_records_of_every_kind_when_exported_then_each_is_entered_in_error() {
    let mut b = bundle();
    for r in &mut b.records {
        r.voided = Some(VoidExport {
            reason: "duplicate".into(),
            at: t("2025-06-03T00:00:00Z"),
        });
    }
    let fhir = to_fhir(&b);
    for kind in RecordKind::ALL {
        let r = resource(&fhir, record_id(kind).0);
        let status = if kind == RecordKind::Diagnosis {
            &r["verificationStatus"]["coding"][0]["code"]
        } else {
            &r["status"]
        };
        assert_eq!(status, "entered-in-error", "{}", kind.as_str());
    }
}

#[test]
fn given_consents_when_exported_to_fhir_then_statuses_and_actors_map() {
    let fhir = to_fhir(&bundle());
    let status = |n| resource(&fhir, id(n))["status"].clone();
    assert_eq!(status(0x500), "active");
    assert_eq!(status(0x501), "inactive", "revoked");
    assert_eq!(status(0x502), "proposed", "requested");
    assert_eq!(status(0x503), "inactive", "active but past expires_at");
    assert_eq!(status(0x504), "rejected", "declined");
    assert_eq!(status(0x600), "active", "session consent");

    let to_org = resource(&fhir, id(0x501));
    assert_eq!(to_org["scope"]["coding"][0]["code"], "patient-privacy");
    assert_eq!(to_org["policyRule"]["coding"][0]["code"], "OPTIN");
    let provision = &to_org["provision"];
    assert_eq!(
        provision["actor"][0]["reference"]["reference"],
        json!(format!("urn:uuid:{}", id(OTHER_ORG)))
    );
    assert_eq!(provision["period"]["end"], "2026-01-01T00:00:00Z");
    assert_eq!(provision["purpose"][0]["code"], "TREAT");
    let classes: Vec<_> = provision["class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert!(!classes.contains(&"Patient"), "clinical records only");

    let to_user = &resource(&fhir, id(0x502))["provision"]["actor"][0]["reference"];
    assert!(to_user.get("reference").is_none(), "a logical reference");
    assert_eq!(
        to_user["identifier"]["value"],
        json!(format!("urn:uuid:{}", id(DOCTOR)))
    );

    let session = resource(&fhir, id(0x600));
    assert_eq!(
        session["category"][1]["coding"][0]["code"],
        "ai_transcription"
    );
    assert!(
        !fhir.to_string().contains(&id(0x700).to_string()),
        "DSRs are JSON only"
    );
}

#[test]
fn given_a_patient_when_exported_to_fhir_then_demographics_map() {
    let fhir = to_fhir(&bundle());
    let p = resource(&fhir, id(PATIENT));
    assert_eq!(p["name"][0]["family"], "Lovelace");
    assert_eq!(p["name"][0]["given"], json!(["Ada", "Augusta"]));
    assert_eq!(p["gender"], "female");
    assert_eq!(p["birthDate"], "1990-12-10");
    assert_eq!(p["meta"]["versionId"], "3");
    assert_eq!(p["identifier"][1]["system"], CARELOG_NATIONAL_ID_SYSTEM);
    assert_eq!(p["identifier"][1]["value"], "QQ123456C");
    assert_eq!(
        p["telecom"],
        json!([
            {"system": "phone", "value": "+44 20 7946 0958"},
            {"system": "email", "value": "ada@example.org"},
        ])
    );
    assert_eq!(p["address"][0]["text"], "London");
    assert_eq!(
        p["managingOrganization"]["reference"],
        json!(format!("urn:uuid:{}", id(ORG)))
    );
    assert_eq!(resource(&fhir, id(ORG))["resourceType"], "Organization");
}

#[test]
fn given_a_patient_without_optional_demographics_when_exported_then_they_are_left_out() {
    let mut b = bundle();
    let d = &mut b.patient.demographics;
    d.phone = None;
    d.email = None;
    d.address = None;
    d.national_id = None;
    let fhir = to_fhir(&b);
    let p = resource(&fhir, id(PATIENT));
    assert!(p.get("telecom").is_none());
    assert!(p.get("address").is_none());
    assert_eq!(p["identifier"].as_array().unwrap().len(), 1);
}

#[test]
fn every_sex_maps_to_its_fhir_gender() {
    let cases = [
        (Sex::Female, "female"),
        (Sex::Male, "male"),
        (Sex::Other, "other"),
        (Sex::Unknown, "unknown"),
    ];
    for (sex, expected) in cases {
        assert_eq!(gender(sex), expected);
        let mut b = bundle();
        b.patient.demographics.sex = sex;
        assert_eq!(resource(&to_fhir(&b), id(PATIENT))["gender"], expected);
    }
}

/// `YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm)`: a FHIR instant, hence a dateTime.
fn is_fhir_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[10] == b'T'
        && (s.ends_with('Z') || b[b.len() - 6] == b'+' || b[b.len() - 6] == b'-')
        && DateTime::parse_from_rfc3339(s).is_ok()
}

fn is_fhir_date(s: &str) -> bool {
    s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

#[test]
fn given_a_bundle_when_exported_to_fhir_then_dates_are_valid_fhir_dates() {
    let fhir = to_fhir(&bundle());
    let keys = [
        "timestamp",
        "lastUpdated",
        "effectiveDateTime",
        "recordedDate",
        "authoredOn",
        "occurrenceDateTime",
        "recorded",
        "dateTime",
        "end",
        "time",
    ];
    let mut checked = 0;
    for key in keys {
        for v in all(&fhir, key) {
            let s = v.as_str().unwrap();
            assert!(is_fhir_date_time(s), "{key}: {s}");
            checked += 1;
        }
    }
    assert!(checked > 20);
    assert!(is_fhir_date(
        resource(&fhir, id(PATIENT))["birthDate"].as_str().unwrap()
    ));
    assert!(!is_fhir_date_time("2025-06-01"));
    assert!(!is_fhir_date_time("2025-06-01 12:00:00Z"));
    assert!(!is_fhir_date("1990-1-1"));
}

#[test]
fn given_a_bundle_when_serialised_as_json_then_it_round_trips_with_every_version() {
    let b = bundle();
    let json = serde_json::to_value(&b).unwrap();
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>(),
        [
            "consents",
            "dsrs",
            "exported_at",
            "patient",
            "records",
            "session_consents"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .iter()
        .collect()
    );
    assert_eq!(json["records"][0]["kind"], "vital_signs");
    assert_eq!(json["records"][0]["versions"][0]["version"], 1);
    assert_eq!(json["records"][0]["versions"][1]["version"], 2);
    assert_eq!(
        json["records"][0]["versions"][0]["content"]["data"]["bpm"],
        72
    );
    assert_eq!(json["records"][3]["voided"]["reason"], "wrong patient");
    assert_eq!(json["consents"][0]["grantee"], json!({"org_id": id(ORG)}));
    assert_eq!(
        json["consents"][2]["grantee"],
        json!({"user_id": id(DOCTOR)})
    );
    assert_eq!(json["consents"][0]["scope"], "clinical_records");
    assert_eq!(json["consents"][0]["purpose"], "treatment");
    assert_eq!(json["consents"][2]["status"], "requested");
    assert_eq!(json["dsrs"][0]["kind"], "erasure");
    assert_eq!(json["patient"]["demographics"]["sex"], "female");

    let text = serde_json::to_string(&b).unwrap();
    let back: PatientExportBundle = serde_json::from_str(&text).unwrap();
    assert!(back == b);
    let versions: usize = back.records.iter().map(|r| r.versions.len()).sum();
    assert_eq!(versions, 7);
}

#[test]
fn given_a_record_without_versions_when_exported_to_fhir_then_it_is_left_out() {
    let mut b = bundle();
    b.records[2].versions.clear();
    let fhir = to_fhir(&b);
    let id = record_id(RecordKind::Note).0.to_string();
    assert!(entries(&fhir)
        .iter()
        .all(|e| e["resource"]["id"] != json!(id)));
}
