//! The FHIR R4 form of a patient's export: one `Bundle` of type `collection`.
//!
//! Every resource takes its carelog uuid as `id` and `urn:uuid:<id>` as `fullUrl`, and
//! every `reference` in the bundle is the `fullUrl` of one of its entries: the patient's
//! organisation and every organisation a consent names are included as minimal
//! `Organization` resources (id and identifier: carelog holds no more of them in the
//! export), users are named by identifier only (a logical reference, nothing to resolve).
//!
//! Records map by kind (the current version only, with `meta.versionId`; earlier
//! versions are in the JSON export):
//!
//! | kind           | resource                       | status                                                  |
//! |----------------|--------------------------------|---------------------------------------------------------|
//! | `vital_signs`  | Observation, `vital-signs`     | `final`; `amended` after an amendment; `entered-in-error` when voided |
//! | `lab_result`   | Observation, `laboratory`      | as above                                                |
//! | `note`         | Observation, category text `Clinical note` (no FHIR category fits; DocumentReference is not exported) | as above |
//! | `diagnosis`    | Condition                      | clinicalStatus `active` + verificationStatus `confirmed`; voided: verificationStatus `entered-in-error` and no clinicalStatus (con-5) |
//! | `prescription` | MedicationRequest, intent `order` | `active`; `entered-in-error` when voided             |
//! | `immunization` | Immunization                   | `completed`; `entered-in-error` when voided             |
//!
//! `code.text` (or `medicationCodeableConcept.text`, `vaccineCode.text`) is the title;
//! `coding` carries the record's code when it has one, *without* a `system`: carelog
//! stores codes (ICD-10, LOINC, ATC, CVX...) without saying which, and the export does
//! not guess. The body is `valueString` (Observation) or a `note`; a void adds the note
//! `Entered in error: <reason>`. `data` that is a flat object of numbers, strings and
//! booleans becomes Observation components (code.text = the key); any other `data` is
//! kept verbatim as JSON text in the [`CARELOG_RECORD_DATA_EXTENSION`] extension. Every
//! record resource is tagged with its carelog kind ([`CARELOG_RECORD_KIND_SYSTEM`]).
//!
//! Consents map to `Consent` (scope `patient-privacy`, category LOINC 59284-0, policyRule
//! `OPTIN`, one `permit` provision): requested → `proposed`, active → `active` (or
//! `inactive` once `expires_at` is past at export time), declined → `rejected`,
//! revoked and expired → `inactive`; the grantee is the provision's actor (role `IRCP`),
//! the purpose its `purpose` (TREAT, HPAYMT, HOPERAT, HRESCH), the scope its `class`
//! (resource types), `expires_at` its `period.end`. Session consents map to `Consent`
//! the same way, with their kind as category. Data-subject requests have no FHIR
//! resource here: they are in the JSON export only.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::patient::Sex;
use crate::record::RecordKind;

use super::{
    ConsentExport, ExportConsentPurpose, ExportConsentScope, ExportConsentStatus, ExportGrantee,
    PatientExport, PatientExportBundle, RecordExport, SessionConsentExport,
};

/// The identifier system of a patient's national id, as entered in carelog (carelog does
/// not know which country issued it).
pub const CARELOG_NATIONAL_ID_SYSTEM: &str = "urn:carelog:fhir:national-id";
/// The code system of carelog's record kinds (`meta.tag` of every record resource).
pub const CARELOG_RECORD_KIND_SYSTEM: &str = "urn:carelog:fhir:record-kind";
/// The extension holding a record's structured `data` as JSON text, where FHIR has no
/// element for it.
pub const CARELOG_RECORD_DATA_EXTENSION: &str = "urn:carelog:fhir:record-data";
/// The code system of the kinds of session consent (recording, AI transcription...).
pub const CARELOG_SESSION_CONSENT_KIND_SYSTEM: &str = "urn:carelog:fhir:session-consent-kind";

/// RFC 3986 identifiers: how a carelog uuid is carried as an `Identifier`.
const URI_SYSTEM: &str = "urn:ietf:rfc:3986";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VER_STATUS: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";
const LOINC: &str = "http://loinc.org";

/// The patient's export as a FHIR R4 `Bundle` (type `collection`): the Patient, the
/// Organizations it and its consents name, one resource per record (current version)
/// and one Consent per consent and session consent. Records without any version are
/// left out (a created record always has one).
pub fn to_fhir(bundle: &PatientExportBundle) -> Value {
    let patient = &bundle.patient;
    let patient_ref = urn(patient.patient_id.0);

    let mut entries = vec![patient_resource(patient)];
    let mut orgs = BTreeSet::from([patient.org_id.0]);
    for c in &bundle.consents {
        if let ExportGrantee::OrgId(o) = c.grantee {
            orgs.insert(o.0);
        }
    }
    // The patient's organisation first, then the others in a stable order.
    entries.push(organization_resource(patient.org_id.0));
    orgs.remove(&patient.org_id.0);
    entries.extend(orgs.into_iter().map(organization_resource));

    entries.extend(
        bundle
            .records
            .iter()
            .filter_map(|r| record_resource(r, &patient_ref)),
    );
    entries.extend(
        bundle
            .consents
            .iter()
            .map(|c| consent_resource(c, &patient_ref, bundle.exported_at)),
    );
    entries.extend(
        bundle
            .session_consents
            .iter()
            .map(|c| session_consent_resource(c, &patient_ref)),
    );

    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(bundle.exported_at),
        "entry": entries
            .into_iter()
            .map(|resource| json!({
                "fullUrl": urn_of(&resource),
                "resource": resource,
            }))
            .collect::<Vec<_>>(),
    })
}

/// FHIR `AdministrativeGender` of a carelog sex.
pub(super) fn gender(sex: Sex) -> &'static str {
    match sex {
        Sex::Female => "female",
        Sex::Male => "male",
        Sex::Other => "other",
        Sex::Unknown => "unknown",
    }
}

fn patient_resource(p: &PatientExport) -> Value {
    let d = &p.demographics;
    let mut identifier = vec![json!({ "system": URI_SYSTEM, "value": urn(p.patient_id.0) })];
    if let Some(id) = &d.national_id {
        identifier.push(json!({ "system": CARELOG_NATIONAL_ID_SYSTEM, "value": id }));
    }
    let mut telecom = Vec::new();
    if let Some(phone) = &d.phone {
        telecom.push(json!({ "system": "phone", "value": phone }));
    }
    if let Some(email) = &d.email {
        telecom.push(json!({ "system": "email", "value": email }));
    }
    let mut r = json!({
        "resourceType": "Patient",
        "id": p.patient_id.0.to_string(),
        "meta": { "versionId": p.version.to_string(), "lastUpdated": instant(p.updated_at) },
        "identifier": identifier,
        "active": true,
        "name": [{
            "use": "official",
            "family": d.family_name,
            "given": d.given_name.split_whitespace().collect::<Vec<_>>(),
        }],
        "gender": gender(d.sex),
        "birthDate": date(d.birth_date),
        "managingOrganization": { "reference": urn(p.org_id.0) },
    });
    if !telecom.is_empty() {
        r["telecom"] = Value::Array(telecom);
    }
    if let Some(address) = &d.address {
        r["address"] = json!([{ "text": address }]);
    }
    r
}

fn organization_resource(id: Uuid) -> Value {
    json!({
        "resourceType": "Organization",
        "id": id.to_string(),
        "identifier": [{ "system": URI_SYSTEM, "value": urn(id) }],
    })
}

/// The resource of a record's current version (`None` for a record with no version).
fn record_resource(r: &RecordExport, patient_ref: &str) -> Option<Value> {
    let current = r.current()?;
    let c = &current.content;
    let voided = r.voided.is_some();
    let amended = r.versions.len() > 1;
    let subject = json!({ "reference": patient_ref });
    let concept = concept(c.code.as_deref(), &c.title);
    let mut notes = Vec::new();
    let mut data_extension = c.data.clone();

    let mut res = match r.kind {
        RecordKind::VitalSigns | RecordKind::LabResult | RecordKind::Note => {
            let status = if voided {
                "entered-in-error"
            } else if amended {
                "amended"
            } else {
                "final"
            };
            let category = match r.kind {
                RecordKind::VitalSigns => observation_category("vital-signs", "Vital Signs"),
                RecordKind::LabResult => observation_category("laboratory", "Laboratory"),
                _ => json!({ "text": "Clinical note" }),
            };
            let mut o = json!({
                "resourceType": "Observation",
                "status": status,
                "category": [category],
                "code": concept,
                "subject": subject,
                "effectiveDateTime": instant(c.recorded_at),
                "valueString": c.body,
            });
            if let Some(components) = c.data.as_ref().and_then(components) {
                o["component"] = Value::Array(components);
                data_extension = None;
            }
            o
        }
        RecordKind::Diagnosis => {
            let mut o = json!({
                "resourceType": "Condition",
                "verificationStatus": coded(
                    CONDITION_VER_STATUS,
                    if voided { "entered-in-error" } else { "confirmed" },
                ),
                "code": concept,
                "subject": subject,
                "recordedDate": instant(c.recorded_at),
            });
            // con-5: no clinicalStatus on an entered-in-error Condition.
            if !voided {
                o["clinicalStatus"] = coded(CONDITION_CLINICAL, "active");
            }
            notes.push(json!({ "text": c.body }));
            o
        }
        RecordKind::Prescription => {
            notes.push(json!({ "text": c.body }));
            json!({
                "resourceType": "MedicationRequest",
                "status": if voided { "entered-in-error" } else { "active" },
                "intent": "order",
                "medicationCodeableConcept": concept,
                "subject": subject,
                "authoredOn": instant(c.recorded_at),
            })
        }
        RecordKind::Immunization => {
            notes.push(json!({ "text": c.body }));
            let first = r.versions.first().unwrap_or(current);
            json!({
                "resourceType": "Immunization",
                "status": if voided { "entered-in-error" } else { "completed" },
                "vaccineCode": concept,
                "patient": subject,
                "occurrenceDateTime": instant(c.recorded_at),
                "recorded": instant(first.at),
            })
        }
    };

    if let Some(v) = &r.voided {
        notes.push(json!({
            "text": format!("Entered in error: {}", v.reason),
            "time": instant(v.at),
        }));
    }
    if !notes.is_empty() {
        res["note"] = Value::Array(notes);
    }
    if let Some(data) = data_extension {
        res["extension"] = json!([{
            "url": CARELOG_RECORD_DATA_EXTENSION,
            "valueString": data.to_string(),
        }]);
    }
    let last_updated = match &r.voided {
        Some(v) if v.at > current.at => v.at,
        _ => current.at,
    };
    res["id"] = json!(r.record_id.0.to_string());
    res["meta"] = json!({
        "versionId": current.version.to_string(),
        "lastUpdated": instant(last_updated),
        "tag": [{ "system": CARELOG_RECORD_KIND_SYSTEM, "code": r.kind.as_str() }],
    });
    Some(res)
}

/// Observation components of `data` when it is a non-empty flat object of numbers,
/// strings and booleans; `None` otherwise.
fn components(data: &Value) -> Option<Vec<Value>> {
    let object = data.as_object().filter(|o| !o.is_empty())?;
    object
        .iter()
        .map(|(key, value)| {
            let (element, value) = match value {
                Value::Number(n) => ("valueQuantity", json!({ "value": n })),
                Value::String(s) => ("valueString", json!(s)),
                Value::Bool(b) => ("valueBoolean", json!(b)),
                _ => return None,
            };
            let mut c = Map::new();
            c.insert("code".into(), json!({ "text": key }));
            c.insert(element.into(), value);
            Some(Value::Object(c))
        })
        .collect()
}

fn consent_resource(c: &ConsentExport, patient_ref: &str, now: DateTime<Utc>) -> Value {
    let lapsed = c.expires_at.is_some_and(|e| e <= now);
    let status = match c.status {
        ExportConsentStatus::Active if lapsed => "inactive",
        s => consent_status(s),
    };
    let actor = match c.grantee {
        ExportGrantee::OrgId(o) => json!({ "reference": urn(o.0) }),
        ExportGrantee::UserId(u) => json!({
            "type": "Practitioner",
            "identifier": { "system": URI_SYSTEM, "value": urn(u.0) },
            "display": "carelog user",
        }),
    };
    let purpose = match c.purpose {
        ExportConsentPurpose::Treatment => "TREAT",
        ExportConsentPurpose::Payment => "HPAYMT",
        ExportConsentPurpose::Operations => "HOPERAT",
        ExportConsentPurpose::Research => "HRESCH",
    };
    let classes: &[&str] = match c.scope {
        ExportConsentScope::All => &[
            "Patient",
            "Observation",
            "Condition",
            "MedicationRequest",
            "Immunization",
        ],
        ExportConsentScope::Demographics => &["Patient"],
        ExportConsentScope::ClinicalRecords => &[
            "Observation",
            "Condition",
            "MedicationRequest",
            "Immunization",
        ],
    };
    let mut provision = json!({
        "type": "permit",
        "actor": [{ "role": coded(PARTICIPATION_TYPE, "IRCP"), "reference": actor }],
        "purpose": [{ "system": ACT_REASON, "code": purpose }],
        "class": classes
            .iter()
            .map(|t| json!({ "system": RESOURCE_TYPES, "code": t }))
            .collect::<Vec<_>>(),
    });
    if let Some(end) = c.expires_at {
        provision["period"] = json!({ "end": instant(end) });
    }
    let mut r = consent_base(c.consent_id, status, patient_ref, c.created_at);
    r["provision"] = provision;
    r
}

fn session_consent_resource(c: &SessionConsentExport, patient_ref: &str) -> Value {
    let mut r = consent_base(c.id, consent_status(c.status), patient_ref, c.created_at);
    r["category"]
        .as_array_mut()
        .expect("consent_base sets a category array")
        .push(json!({
            "coding": [{ "system": CARELOG_SESSION_CONSENT_KIND_SYSTEM, "code": c.kind }],
            "text": c.kind,
        }));
    r["provision"] = json!({ "type": "permit" });
    r
}

/// The parts every Consent shares: scope patient-privacy (ppc-2: a patient), category
/// LOINC 59284-0 "Patient consent", policyRule OPTIN (ppc-1).
fn consent_base(id: Uuid, status: &str, patient_ref: &str, at: DateTime<Utc>) -> Value {
    json!({
        "resourceType": "Consent",
        "id": id.to_string(),
        "status": status,
        "scope": coded(CONSENT_SCOPE, "patient-privacy"),
        "category": [{ "coding": [{ "system": LOINC, "code": "59284-0" }], "text": "Patient consent" }],
        "patient": { "reference": patient_ref },
        "dateTime": instant(at),
        "policyRule": coded(ACT_CODE, "OPTIN"),
    })
}

/// FHIR `ConsentState` of a carelog consent status.
fn consent_status(s: ExportConsentStatus) -> &'static str {
    match s {
        ExportConsentStatus::Requested => "proposed",
        ExportConsentStatus::Active => "active",
        ExportConsentStatus::Declined => "rejected",
        ExportConsentStatus::Revoked | ExportConsentStatus::Expired => "inactive",
    }
}

fn observation_category(code: &str, display: &str) -> Value {
    json!({ "coding": [{ "system": OBSERVATION_CATEGORY, "code": code, "display": display }] })
}

fn coded(system: &str, code: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code }] })
}

/// A CodeableConcept: the title as text, the code (system unknown) as coding.
fn concept(code: Option<&str>, text: &str) -> Value {
    let mut c = json!({ "text": text });
    if let Some(code) = code {
        c["coding"] = json!([{ "code": code }]);
    }
    c
}

/// `urn:uuid:<id>`: the fullUrl of the entry whose resource has that id.
fn urn(id: Uuid) -> String {
    format!("urn:uuid:{}", id.hyphenated())
}

fn urn_of(resource: &Value) -> String {
    format!("urn:uuid:{}", resource["id"].as_str().unwrap_or_default())
}

/// A FHIR `instant` (also a valid `dateTime`): RFC 3339, UTC, `Z`.
fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A FHIR `date`: `YYYY-MM-DD`.
fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}
