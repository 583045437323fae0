//! What happens to a clinical record (`record-<uuid>`). Sealed under the key of the
//! record's patient, so erasing the patient makes the record unreadable too. A record is
//! never deleted: it is amended (every version kept) or voided (with a reason).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{codec, NewEvent};
use crate::ids::{OrgId, PatientId, UserId};
use crate::metadata::Metadata;

/// The kind of a clinical record (each maps to a FHIR resource on export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A free-text clinical note.
    Note,
    /// A diagnosis (FHIR Condition).
    Diagnosis,
    /// A prescription (FHIR MedicationRequest).
    Prescription,
    /// A laboratory result (FHIR Observation, laboratory).
    LabResult,
    /// An immunization (FHIR Immunization).
    Immunization,
    /// Vital signs (FHIR Observation, vital-signs).
    VitalSigns,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Note,
        RecordKind::Diagnosis,
        RecordKind::Prescription,
        RecordKind::LabResult,
        RecordKind::Immunization,
        RecordKind::VitalSigns,
    ];

    /// The snake_case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Note => "note",
            RecordKind::Diagnosis => "diagnosis",
            RecordKind::Prescription => "prescription",
            RecordKind::LabResult => "lab_result",
            RecordKind::Immunization => "immunization",
            RecordKind::VitalSigns => "vital_signs",
        }
    }
}

/// The clinical content of one version of a record: PHI, so no `Debug`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordContent {
    /// A code (ICD-10, LOINC, ATC, CVX, ...), when there is one.
    pub code: Option<String>,
    /// A short title.
    pub title: String,
    /// The text.
    pub body: String,
    /// Structured data (values, units, dosage...).
    pub data: Option<Value>,
    /// When the clinical fact was observed or decided.
    pub recorded_at: DateTime<Utc>,
}

/// Events of the `record-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RecordEvent {
    /// The record was written (version 1).
    RecordCreated {
        /// Whose record.
        patient_id: PatientId,
        /// The patient's organisation when it was written.
        org_id: OrgId,
        /// What kind of record.
        kind: RecordKind,
        /// The content.
        content: RecordContent,
        /// The clinician who wrote it.
        author_id: UserId,
    },
    /// A new version replaced the content; earlier versions stay in the stream.
    RecordAmended {
        /// The content of the new version.
        content: RecordContent,
        /// The clinician who amended it.
        author_id: UserId,
    },
    /// The record was voided (entered in error): hidden from lists, kept in history.
    RecordVoided {
        /// Why.
        reason: String,
        /// The clinician who voided it.
        author_id: UserId,
    },
}

/// Every record event type.
pub const KNOWN: [&str; 3] = ["RecordCreated", "RecordAmended", "RecordVoided"];

impl std::fmt::Debug for RecordEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl RecordEvent {
    /// The event type, e.g. `RecordAmended`.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &KNOWN)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not a record event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// The event to append to a record of `patient` (sealed under the patient's key).
    pub fn into_new_event(self, patient: PatientId, metadata: Metadata) -> NewEvent {
        codec::new_event(&self, patient.subject(), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    fn content(data: Option<Value>) -> RecordContent {
        RecordContent {
            code: data.as_ref().map(|_| "8867-4".to_owned()),
            title: "Pulse".into(),
            body: "Regular.".into(),
            data,
            recorded_at: "2025-06-01T12:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn every_record_event_matches_its_schema_and_round_trips() {
        let patient = PatientId(Uuid::from_u128(2));
        let author_id = UserId(Uuid::from_u128(3));
        let mut seen = Vec::new();
        for data in [Some(serde_json::json!({"bpm": 72})), None] {
            let events = [
                RecordEvent::RecordCreated {
                    patient_id: patient,
                    org_id: OrgId(Uuid::from_u128(1)),
                    kind: RecordKind::VitalSigns,
                    content: content(data.clone()),
                    author_id,
                },
                RecordEvent::RecordAmended {
                    content: content(data),
                    author_id,
                },
                RecordEvent::RecordVoided {
                    reason: "wrong patient".into(),
                    author_id,
                },
            ];
            for e in events {
                let new = e.clone().into_new_event(patient, Metadata::default());
                check_schema(&new);
                assert_eq!(new.subject, patient.subject());
                let back = RecordEvent::decode(new.event_type.as_str(), new.payload.clone());
                assert!(back.unwrap().unwrap() == e);
                seen.push(new.event_type.to_string());
            }
        }
        assert_covers(seen, &KNOWN);
    }

    #[test]
    fn every_kind_has_its_api_name() {
        for kind in RecordKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.as_str()));
        }
    }
}
