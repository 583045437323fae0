//! What happens to a consent (`consent-<uuid>`). Who acted (the patient, the requesting
//! doctor) is in the event metadata, never repeated here. Sealed under the patient's key:
//! whom a patient lets see their chart, and why, is theirs, and goes with an erasure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::{ConsentScope, Grantee};
use crate::event::{codec, NewEvent};
use crate::ids::{PatientId, UserId};
use crate::metadata::Metadata;

/// Why access is given (HIPAA's treatment, payment and health-care operations, and
/// research).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Care of the patient.
    Treatment,
    /// Billing and payment.
    Payment,
    /// Health-care operations (quality, administration).
    Operations,
    /// Research.
    Research,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 4] = [
        Purpose::Treatment,
        Purpose::Payment,
        Purpose::Operations,
        Purpose::Research,
    ];

    /// The snake_case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Treatment => "treatment",
            Purpose::Payment => "payment",
            Purpose::Operations => "operations",
            Purpose::Research => "research",
        }
    }
}

/// Events of the `consent-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ConsentEvent {
    /// The patient granted a consent; it is active at once.
    ConsentGranted {
        /// The patient who consents.
        patient_id: PatientId,
        /// Who may access.
        grantee: Grantee,
        /// What.
        scope: ConsentScope,
        /// Why.
        purpose: Purpose,
        /// When it lapses by itself (`None`: until revoked).
        expires_at: Option<DateTime<Utc>>,
    },
    /// A doctor asked the patient for a consent; it waits for the patient's answer.
    ConsentRequested {
        /// The patient asked.
        patient_id: PatientId,
        /// The requesting doctor, who becomes the grantee if the patient approves.
        grantee_user_id: UserId,
        /// What.
        scope: ConsentScope,
        /// Why.
        purpose: Purpose,
    },
    /// The patient approved a requested consent; it is active from now.
    ConsentApproved {
        /// When it lapses by itself (`None`: until revoked).
        expires_at: Option<DateTime<Utc>>,
    },
    /// The patient declined a requested consent.
    ConsentDeclined {},
    /// The patient withdrew an active consent; access stops at once.
    ConsentRevoked {},
}

/// Every consent event type.
pub const KNOWN: [&str; 5] = [
    "ConsentGranted",
    "ConsentRequested",
    "ConsentApproved",
    "ConsentDeclined",
    "ConsentRevoked",
];

impl std::fmt::Debug for ConsentEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl ConsentEvent {
    /// The event type, e.g. `ConsentGranted`.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &KNOWN)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not a consent event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// The event to append to a consent of `patient` (sealed under the patient's key).
    pub fn into_new_event(self, patient: PatientId, metadata: Metadata) -> NewEvent {
        codec::new_event(&self, patient.subject(), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    #[test]
    fn every_consent_event_matches_its_schema_and_round_trips() {
        let patient = PatientId(Uuid::from_u128(2));
        let at: DateTime<Utc> = "2025-07-01T12:00:00Z".parse().unwrap();
        let mut seen = Vec::new();
        for (grantee, expires_at) in [
            (Grantee::Org(OrgId(Uuid::from_u128(1))), Some(at)),
            (Grantee::User(UserId(Uuid::from_u128(3))), None),
        ] {
            let events = [
                ConsentEvent::ConsentGranted {
                    patient_id: patient,
                    grantee,
                    scope: ConsentScope::ClinicalRecords,
                    purpose: Purpose::Treatment,
                    expires_at,
                },
                ConsentEvent::ConsentRequested {
                    patient_id: patient,
                    grantee_user_id: UserId(Uuid::from_u128(3)),
                    scope: ConsentScope::All,
                    purpose: Purpose::Research,
                },
                ConsentEvent::ConsentApproved { expires_at },
                ConsentEvent::ConsentDeclined {},
                ConsentEvent::ConsentRevoked {},
            ];
            for e in events {
                let new = e.clone().into_new_event(patient, Metadata::default());
                check_schema(&new);
                assert_eq!(new.subject, patient.subject());
                let back = ConsentEvent::decode(new.event_type.as_str(), new.payload.clone());
                assert!(back.unwrap().unwrap() == e);
                seen.push(new.event_type.to_string());
            }
        }
        assert_covers(seen, &KNOWN);
    }

    #[test]
    fn given_the_api_names_when_serialised_then_they_are_snake_case() {
        for p in Purpose::ALL {
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::json!(p.as_str())
            );
        }
        for s in ConsentScope::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        for s in crate::access::ConsentStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        let g = Grantee::Org(OrgId(Uuid::nil()));
        assert_eq!(
            serde_json::to_value(g).unwrap(),
            serde_json::json!({"type": "org", "id": Uuid::nil()})
        );
    }

    #[test]
    fn given_an_unknown_field_when_decoded_then_the_payload_is_malformed() {
        let payload = serde_json::json!({"expires_at": null, "by": "x"});
        assert!(ConsentEvent::decode("ConsentApproved", payload)
            .unwrap()
            .is_err());
        let grantee = serde_json::json!({"type": "user", "id": Uuid::nil(), "x": 1});
        assert!(serde_json::from_value::<Grantee>(grantee).is_err());
        assert!(ConsentEvent::decode("ConsentArchived", serde_json::json!({})).is_none());
    }
}
