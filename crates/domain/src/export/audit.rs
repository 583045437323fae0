//! The export is itself audited (GDPR Art. 15/20, DESIGN.md invariant 6): every export
//! appends `PatientDataExported` to a data-subject request stream of its own
//! (`dsr-<uuid>`, kind `export`), never to the patient's stream (which would change the
//! patient's `ETag`). The payload names the patient and the format, no PHI; it is sealed
//! under the patient's key like the rest of their requests, while its type, actor and
//! time stay in the clear for auditors.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{codec, NewEvent};
use crate::ids::PatientId;
use crate::metadata::Metadata;

/// The form an export was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// The JSON export ([`super::PatientExportBundle`]).
    Json,
    /// The FHIR R4 `Bundle` ([`super::to_fhir`]).
    Fhir,
}

impl ExportFormat {
    /// The name, as in `?format=`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Fhir => "fhir",
        }
    }
}

/// Events of an export's `dsr-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ExportEvent {
    /// A patient's data was exported (to the patient, or to an ORG:ADMIN on their behalf:
    /// who is in the metadata).
    PatientDataExported {
        /// Whose data.
        patient_id: PatientId,
        /// In which form.
        format: ExportFormat,
    },
}

/// Every export event type.
pub const EXPORT_EVENTS: [&str; 1] = ["PatientDataExported"];

impl std::fmt::Debug for ExportEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl ExportEvent {
    /// The event type.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &EXPORT_EVENTS)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not an export event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// The event to append, sealed under the patient's key.
    pub fn into_new_event(self, metadata: Metadata) -> NewEvent {
        let ExportEvent::PatientDataExported { patient_id, .. } = &self;
        let subject = patient_id.subject();
        codec::new_event(&self, subject, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    #[test]
    fn the_export_event_matches_its_schema_and_round_trips_under_the_patients_key() {
        let patient = PatientId(Uuid::from_u128(3));
        let mut seen = Vec::new();
        for format in [ExportFormat::Json, ExportFormat::Fhir] {
            let e = ExportEvent::PatientDataExported {
                patient_id: patient,
                format,
            };
            let new = e.clone().into_new_event(Metadata::default());
            check_schema(&new);
            assert_eq!(new.subject, patient.subject());
            let back = ExportEvent::decode(new.event_type.as_str(), new.payload.clone());
            assert!(back.unwrap().unwrap() == e);
            seen.push(new.event_type.to_string());
        }
        assert_covers(seen, &EXPORT_EVENTS);
        assert_eq!(ExportFormat::Fhir.as_str(), "fhir");
    }
}
