//! The bodies of the consent commands, as typed in. Unknown fields are refused (no mass
//! assignment); every rule breaks with a [`FieldError`] naming the field.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::access::{ConsentScope, Grantee};
use crate::field::FieldError;
use crate::ids::{OrgId, PatientId, UserId};

use super::events::Purpose;

const GRANTEE: FieldError = FieldError::new(
    "grantee_org_id",
    "or grantee_user_id: exactly one of the two is required",
);
const EXPIRES_AT: FieldError = FieldError::new("expires_at", "must be in the future");

/// `POST /api/consent/grant`, by the patient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConsent {
    /// Which of the caller's charts, when their account is linked to more than one
    /// (the API resolves it; the decision takes the resolved id).
    #[serde(default)]
    pub patient_id: Option<PatientId>,
    /// An organisation as grantee (its ORG:DOCTORs benefit).
    #[serde(default)]
    pub grantee_org_id: Option<OrgId>,
    /// A doctor as grantee.
    #[serde(default)]
    pub grantee_user_id: Option<UserId>,
    /// What.
    pub scope: ConsentScope,
    /// Why.
    pub purpose: Purpose,
    /// When it lapses (`None`: until revoked); must be in the future.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl GrantConsent {
    /// The one grantee named.
    pub fn grantee(&self) -> Result<Grantee, FieldError> {
        match (self.grantee_org_id, self.grantee_user_id) {
            (Some(org), None) => Ok(Grantee::Org(org)),
            (None, Some(user)) => Ok(Grantee::User(user)),
            _ => Err(GRANTEE),
        }
    }
}

/// `POST /api/consent/request`, by a doctor (who becomes the grantee).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestConsent {
    /// The patient asked.
    pub patient_id: PatientId,
    /// What.
    pub scope: ConsentScope,
    /// Why.
    pub purpose: Purpose,
}

/// `POST /api/consent/:id/approve`, by the patient (the body may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveConsent {
    /// When it lapses (`None`: until revoked); must be in the future.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `expires_at`, if in the future of `now`.
pub(crate) fn validate_expires_at(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    match expires_at {
        Some(at) if at <= now => Err(EXPIRES_AT),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn given_a_grant_body_when_read_then_exactly_one_grantee_is_required() {
        let org = Uuid::from_u128(1);
        let body = |extra: &str| {
            format!(r#"{{"scope": "clinical_records", "purpose": "treatment"{extra}}}"#)
        };
        let g: GrantConsent =
            serde_json::from_str(&body(&format!(r#", "grantee_org_id": "{org}""#))).unwrap();
        assert_eq!(g.grantee(), Ok(Grantee::Org(OrgId(org))));
        let none: GrantConsent = serde_json::from_str(&body("")).unwrap();
        assert_eq!(none.grantee().unwrap_err().field, "grantee_org_id");
        let both: GrantConsent = serde_json::from_str(&body(&format!(
            r#", "grantee_org_id": "{org}", "grantee_user_id": "{org}""#
        )))
        .unwrap();
        assert!(both.grantee().is_err());
    }

    #[test]
    fn given_unknown_fields_or_names_when_read_then_refused() {
        assert!(serde_json::from_str::<GrantConsent>(
            r#"{"scope": "all", "purpose": "treatment", "status": "active"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<GrantConsent>(
            r#"{"scope": "everything", "purpose": "treatment"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<RequestConsent>(
            r#"{"patient_id": "00000000-0000-0000-0000-000000000001", "scope": "all", "purpose": "marketing"}"#
        )
        .is_err());
        assert_eq!(
            serde_json::from_str::<ApproveConsent>("{}").unwrap(),
            ApproveConsent::default()
        );
    }

    #[test]
    fn given_an_expiry_not_in_the_future_when_validated_then_expires_at_is_named() {
        let now: DateTime<Utc> = "2025-06-01T12:00:00Z".parse().unwrap();
        assert_eq!(validate_expires_at(Some(now), now), Err(EXPIRES_AT));
        assert_eq!(validate_expires_at(None, now), Ok(None));
        let later = now + chrono::Duration::seconds(1);
        assert_eq!(validate_expires_at(Some(later), now), Ok(Some(later)));
    }
}
