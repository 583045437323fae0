//! What happens to a session consent. Who acted is in the event metadata.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{codec, NewEvent};
use crate::ids::{OrgId, PatientId, UserId};
use crate::metadata::Metadata;

/// What the patient consents to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionConsentKind {
    /// The clinical session may be recorded.
    Recording,
    /// The session may be transcribed by an AI service.
    AiTranscription,
}

impl SessionConsentKind {
    /// Every kind.
    pub const ALL: [SessionConsentKind; 2] = [
        SessionConsentKind::Recording,
        SessionConsentKind::AiTranscription,
    ];

    /// The snake_case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionConsentKind::Recording => "recording",
            SessionConsentKind::AiTranscription => "ai_transcription",
        }
    }
}

/// Events of the `session_consent-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum SessionConsentEvent {
    /// The patient consented.
    SessionConsentGranted {
        /// The patient.
        patient_id: PatientId,
        /// To what.
        kind: SessionConsentKind,
        /// Only within this organisation (`None`: any).
        org_id: Option<OrgId>,
        /// Only with this clinician (`None`: any).
        user_id: Option<UserId>,
        /// When it lapses by itself (`None`: until revoked).
        expires_at: Option<DateTime<Utc>>,
    },
    /// The patient withdrew it.
    SessionConsentRevoked {},
}

/// Every session consent event type.
pub const KNOWN: [&str; 2] = ["SessionConsentGranted", "SessionConsentRevoked"];

impl std::fmt::Debug for SessionConsentEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl SessionConsentEvent {
    /// The event type, e.g. `SessionConsentGranted`.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &KNOWN)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not a session
    /// consent event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// The event to append to a session consent of `patient` (sealed under the
    /// patient's key).
    pub fn into_new_event(self, patient: PatientId, metadata: Metadata) -> NewEvent {
        codec::new_event(&self, patient.subject(), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    #[test]
    fn every_session_consent_event_matches_its_schema_and_round_trips() {
        let patient = PatientId(Uuid::from_u128(2));
        let mut seen = Vec::new();
        for full in [true, false] {
            let events = [
                SessionConsentEvent::SessionConsentGranted {
                    patient_id: patient,
                    kind: if full {
                        SessionConsentKind::AiTranscription
                    } else {
                        SessionConsentKind::Recording
                    },
                    org_id: full.then_some(OrgId(Uuid::from_u128(1))),
                    user_id: full.then_some(UserId(Uuid::from_u128(3))),
                    expires_at: full.then(|| "2025-07-01T12:00:00Z".parse().unwrap()),
                },
                SessionConsentEvent::SessionConsentRevoked {},
            ];
            for e in events {
                let new = e.clone().into_new_event(patient, Metadata::default());
                check_schema(&new);
                assert_eq!(new.subject, patient.subject());
                let back =
                    SessionConsentEvent::decode(new.event_type.as_str(), new.payload.clone());
                assert!(back.unwrap().unwrap() == e);
                seen.push(new.event_type.to_string());
            }
        }
        assert_covers(seen, &KNOWN);
        for k in SessionConsentKind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
    }
}
