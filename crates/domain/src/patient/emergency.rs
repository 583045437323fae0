//! Emergency ("break-glass") access: a clinician declares an emergency, with a reason,
//! and gets time-boxed read access to one patient. The grant is its own stream
//! (`emergency-<uuid>`, sealed under the patient's key); the access policy reads it back
//! as [`EmergencyFacts`]. It ends by itself at `expires_at`: nothing has to revoke it.

use chrono::{DateTime, Duration, Utc};

use crate::access::EmergencyFacts;
use crate::field::{text, FieldError, Lines};
use crate::ids::{GrantId, PatientId, UserId};

use super::events::EmergencyEvent;

/// The default length of a grant (API.md: 60 minutes).
pub const DEFAULT_EMERGENCY_DURATION: Duration = Duration::minutes(60);
/// The longest grant the configuration may ask for.
pub const MAX_EMERGENCY_DURATION: Duration = Duration::hours(24);

const REASON: FieldError = FieldError::new(
    "reason",
    "is required: 1 to 1000 characters without control characters other than line breaks",
);

/// Why an emergency grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmergencyError {
    /// The reason is missing or malformed (400 naming `reason`).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The configured duration is not within (0, 24 h] (a configuration error).
    #[error("an emergency grant lasts more than zero and at most 24 hours")]
    Duration,
}

/// Grants `user_id` emergency access to `patient_id` from `now` for `duration`. The
/// caller has checked the policy ([`crate::access::Action::EmergencyAccess`]) and that
/// the patient exists; the grant id is the id of the stream the event goes to.
pub fn grant_emergency(
    patient_id: PatientId,
    user_id: UserId,
    reason: &str,
    now: DateTime<Utc>,
    duration: Duration,
) -> Result<EmergencyEvent, EmergencyError> {
    if duration <= Duration::zero() || duration > MAX_EMERGENCY_DURATION {
        return Err(EmergencyError::Duration);
    }
    let reason = text(reason, 1, 1000, Lines::Multi, REASON)?;
    Ok(EmergencyEvent::EmergencyAccessGranted {
        patient_id,
        user_id,
        reason,
        expires_at: now + duration,
    })
}

impl EmergencyEvent {
    /// What the access policy needs to know of the grant `grant_id` (the stream's id).
    pub fn facts(&self, grant_id: GrantId) -> EmergencyFacts {
        let EmergencyEvent::EmergencyAccessGranted {
            patient_id,
            user_id,
            expires_at,
            ..
        } = self;
        EmergencyFacts {
            grant_id,
            patient_id: *patient_id,
            user_id: *user_id,
            expires_at: *expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    fn grant(reason: &str, duration: Duration) -> Result<EmergencyEvent, EmergencyError> {
        grant_emergency(
            PatientId(Uuid::from_u128(1)),
            UserId(Uuid::from_u128(2)),
            reason,
            now(),
            duration,
        )
    }

    #[test]
    fn given_a_reason_when_granted_then_the_grant_expires_after_the_duration() {
        let ev = grant(" unconscious in A&E ", DEFAULT_EMERGENCY_DURATION).unwrap();
        let EmergencyEvent::EmergencyAccessGranted {
            reason, expires_at, ..
        } = &ev;
        assert_eq!(reason, "unconscious in A&E");
        assert_eq!(*expires_at, now() + Duration::minutes(60));
        let facts = ev.facts(GrantId(Uuid::from_u128(9)));
        assert_eq!(facts.user_id, UserId(Uuid::from_u128(2)));
        assert_eq!(facts.expires_at, *expires_at);
    }

    #[test]
    fn given_no_reason_when_granted_then_reason_is_required() {
        for bad in ["", "   ", &"x".repeat(1001)] {
            assert!(matches!(
                grant(bad, DEFAULT_EMERGENCY_DURATION).unwrap_err(),
                EmergencyError::Invalid(f) if f.field == "reason"
            ));
        }
    }

    #[test]
    fn given_a_duration_out_of_range_when_granted_then_refused() {
        for bad in [
            Duration::zero(),
            Duration::seconds(-1),
            Duration::hours(24) + Duration::seconds(1),
        ] {
            assert_eq!(grant("why", bad).unwrap_err(), EmergencyError::Duration);
        }
        assert!(grant("why", MAX_EMERGENCY_DURATION).is_ok());
    }
}
