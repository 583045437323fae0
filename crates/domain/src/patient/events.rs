//! What happens to a patient (`patient-<uuid>`) and to emergency access grants on them
//! (`emergency-<uuid>`). Every payload here is PHI and is sealed under the patient's key,
//! so erasing the patient makes all of it unreadable — except `PatientErased`, which
//! carries no PHI and is sealed under the `system` subject (the patient's key is
//! destroyed in the same transaction, and the fact of the erasure must stay readable).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{codec, NewEvent};
use crate::ids::{DsrId, OrgId, PatientId, SubjectId, UserId};
use crate::metadata::Metadata;

/// Administrative sex (FHIR `AdministrativeGender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Other.
    Other,
    /// Unknown.
    Unknown,
}

impl Sex {
    /// The lowercase name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

/// A patient's demographics: PHI, so no `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    /// Given name(s).
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Administrative sex.
    pub sex: Sex,
    /// Phone number.
    pub phone: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Postal address, one free-text field.
    pub address: Option<String>,
    /// National identifier (e.g. social security number).
    pub national_id: Option<String>,
}

/// Events of the `patient-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PatientEvent {
    /// The patient was registered by an organisation.
    PatientRegistered {
        /// The organisation that holds the patient's chart.
        org_id: OrgId,
        /// Demographics.
        demographics: Demographics,
        /// The patient's own account, when they have one.
        user_id: Option<UserId>,
    },
    /// Demographics (or the linked account) changed; the event carries the whole new
    /// state, so history `as_of` is a fold and every version is complete on its own.
    PatientUpdated {
        /// The demographics after the change.
        demographics: Demographics,
        /// The linked account after the change.
        user_id: Option<UserId>,
    },
    /// The patient was erased (GDPR) by a data-subject request: the last event of the
    /// stream; every earlier payload is unreadable for good. No PHI.
    PatientErased {
        /// The request that erased them.
        dsr_id: DsrId,
    },
}

/// Events of the `emergency-<uuid>` stream: one break-glass grant.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum EmergencyEvent {
    /// A clinician declared an emergency and was granted time-boxed access to a patient.
    EmergencyAccessGranted {
        /// The patient.
        patient_id: PatientId,
        /// Who was granted access.
        user_id: UserId,
        /// Why (free text: may be PHI, hence sealed under the patient's key).
        reason: String,
        /// When the grant ends by itself.
        expires_at: DateTime<Utc>,
    },
}

/// Every patient and emergency event type.
pub const KNOWN: [&str; 4] = [
    "PatientRegistered",
    "PatientUpdated",
    "PatientErased",
    "EmergencyAccessGranted",
];

impl std::fmt::Debug for PatientEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl std::fmt::Debug for EmergencyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(codec::variant_name(self, &KNOWN))
    }
}

impl PatientEvent {
    /// The event type, e.g. `PatientRegistered`.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &KNOWN)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not a patient event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// Whose key seals it: the patient's, except `PatientErased` (no PHI), sealed under
    /// `system` since it is appended as the patient's key is destroyed.
    pub fn subject(&self, patient: PatientId) -> SubjectId {
        match self {
            PatientEvent::PatientErased { .. } => SubjectId::system(),
            PatientEvent::PatientRegistered { .. } | PatientEvent::PatientUpdated { .. } => {
                patient.subject()
            }
        }
    }

    /// The event to append to `patient`'s stream, sealed under [`Self::subject`].
    pub fn into_new_event(self, patient: PatientId, metadata: Metadata) -> NewEvent {
        let subject = self.subject(patient);
        codec::new_event(&self, subject, metadata)
    }
}

impl EmergencyEvent {
    /// Decodes a stored payload of type `event_type`; `None` if it is not an emergency event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// The event to append to a grant's stream (sealed under its patient's key).
    pub fn into_new_event(self, metadata: Metadata) -> NewEvent {
        let EmergencyEvent::EmergencyAccessGranted { patient_id, .. } = &self;
        let subject = patient_id.subject();
        codec::new_event(&self, subject, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    fn demographics(full: bool) -> Demographics {
        Demographics {
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            birth_date: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
            sex: Sex::Female,
            phone: full.then(|| "+44 20 7946 0958".into()),
            email: full.then(|| "ada@example.org".into()),
            address: full.then(|| "London".into()),
            national_id: full.then(|| "QQ123456C".into()),
        }
    }

    #[test]
    fn every_patient_and_emergency_event_matches_its_schema_and_round_trips() {
        let patient = PatientId(Uuid::from_u128(2));
        let m = Metadata::default;
        let mut seen = Vec::new();
        for full in [true, false] {
            let patients = [
                PatientEvent::PatientRegistered {
                    org_id: OrgId(Uuid::from_u128(1)),
                    demographics: demographics(full),
                    user_id: full.then_some(UserId(Uuid::from_u128(3))),
                },
                PatientEvent::PatientUpdated {
                    demographics: demographics(full),
                    user_id: None,
                },
            ];
            for e in patients {
                let new = e.clone().into_new_event(patient, m());
                check_schema(&new);
                assert_eq!(new.subject, patient.subject());
                let back = PatientEvent::decode(new.event_type.as_str(), new.payload.clone());
                assert!(back.unwrap().unwrap() == e);
                seen.push(new.event_type.to_string());
            }
        }
        let erased = PatientEvent::PatientErased {
            dsr_id: DsrId(Uuid::from_u128(5)),
        };
        let new = erased.clone().into_new_event(patient, m());
        check_schema(&new);
        assert_eq!(
            new.subject,
            SubjectId::system(),
            "outlives the patient's key"
        );
        let back = PatientEvent::decode(new.event_type.as_str(), new.payload.clone());
        assert!(back.unwrap().unwrap() == erased);
        seen.push(new.event_type.to_string());
        let grant = EmergencyEvent::EmergencyAccessGranted {
            patient_id: patient,
            user_id: UserId(Uuid::from_u128(4)),
            reason: "unconscious".into(),
            expires_at: "2025-06-01T13:00:00Z".parse().unwrap(),
        };
        let new = grant.clone().into_new_event(m());
        check_schema(&new);
        assert_eq!(
            new.subject,
            patient.subject(),
            "sealed under the patient's key"
        );
        let back = EmergencyEvent::decode(new.event_type.as_str(), new.payload.clone());
        assert!(back.unwrap().unwrap() == grant);
        seen.push(new.event_type.to_string());
        assert_covers(seen, &KNOWN);
    }

    #[test]
    fn debug_shows_the_type_only() {
        let e = PatientEvent::PatientUpdated {
            demographics: demographics(true),
            user_id: None,
        };
        assert_eq!(format!("{e:?}"), "PatientUpdated");
    }
}
