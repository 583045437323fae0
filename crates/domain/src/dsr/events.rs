//! What happens to a data-subject request. Who acted is in the event metadata.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{codec, NewEvent};
use crate::ids::{PatientId, SubjectId};
use crate::metadata::Metadata;

/// Events of the `dsr-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DsrEvent {
    /// The erasure of a patient was requested (by the patient, or by an ORG:ADMIN on
    /// their behalf).
    ErasureRequested {
        /// The patient to erase.
        patient_id: PatientId,
        /// Why (free text: may be PHI).
        reason: String,
    },
    /// A platform administrator approved it; the erasure runs.
    ErasureApproved {},
    /// A platform administrator rejected it.
    ErasureRejected {
        /// Why (free text: may be PHI).
        reason: String,
    },
    /// The erasure ran.
    ErasureCompleted {},
}

/// Every DSR event type.
pub const KNOWN: [&str; 4] = [
    "ErasureRequested",
    "ErasureApproved",
    "ErasureRejected",
    "ErasureCompleted",
];

impl std::fmt::Debug for DsrEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl DsrEvent {
    /// The event type, e.g. `ErasureRequested`.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &KNOWN)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not a DSR event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// Whose key seals it: the patient's for the events carrying a reason (it goes with
    /// the erasure), `system` for those without payload (they outlive it; the
    /// completion is written after the patient's key is gone).
    pub fn subject(&self, patient: PatientId) -> SubjectId {
        match self {
            DsrEvent::ErasureRequested { .. } | DsrEvent::ErasureRejected { .. } => {
                patient.subject()
            }
            DsrEvent::ErasureApproved {} | DsrEvent::ErasureCompleted {} => SubjectId::system(),
        }
    }

    /// The event to append to a DSR on `patient`, sealed under [`Self::subject`].
    pub fn into_new_event(self, patient: PatientId, metadata: Metadata) -> NewEvent {
        let subject = self.subject(patient);
        codec::new_event(&self, subject, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    #[test]
    fn every_dsr_event_matches_its_schema_and_round_trips() {
        let patient = PatientId(Uuid::from_u128(2));
        let events = [
            DsrEvent::ErasureRequested {
                patient_id: patient,
                reason: "moving abroad".into(),
            },
            DsrEvent::ErasureApproved {},
            DsrEvent::ErasureRejected {
                reason: "legal hold".into(),
            },
            DsrEvent::ErasureCompleted {},
        ];
        let mut seen = Vec::new();
        for e in events {
            let new = e.clone().into_new_event(patient, Metadata::default());
            check_schema(&new);
            let back = DsrEvent::decode(new.event_type.as_str(), new.payload.clone());
            assert!(back.unwrap().unwrap() == e);
            seen.push(new.event_type.to_string());
        }
        assert_covers(seen, &KNOWN);
    }

    #[test]
    fn given_a_dsr_event_when_sealed_then_reasons_go_with_the_patient_and_the_rest_outlives_it() {
        let patient = PatientId(Uuid::from_u128(2));
        let requested = DsrEvent::ErasureRequested {
            patient_id: patient,
            reason: "x".into(),
        };
        let rejected = DsrEvent::ErasureRejected { reason: "y".into() };
        assert_eq!(requested.subject(patient), patient.subject());
        assert_eq!(rejected.subject(patient), patient.subject());
        assert_eq!(
            DsrEvent::ErasureApproved {}.subject(patient),
            SubjectId::system()
        );
        assert_eq!(
            DsrEvent::ErasureCompleted {}.subject(patient),
            SubjectId::system()
        );
    }
}
