//! The session consent aggregate: state, the grant body, and the decisions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::field::FieldError;
use crate::ids::{OrgId, PatientId, SessionConsentId, StreamVersion, UserId};

use super::events::{SessionConsentEvent, SessionConsentKind};

const EXPIRES_AT: FieldError = FieldError::new("expires_at", "must be in the future");

/// Why a session consent command was refused. Messages carry no PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionConsentError {
    /// There is no such session consent (404).
    #[error("no such session consent")]
    NotFound,
    /// The stream already holds a session consent (409).
    #[error("the session consent already exists")]
    AlreadyExists,
    /// It was revoked already (409).
    #[error("the session consent is revoked")]
    Revoked,
    /// An input field broke a rule (400 naming the field).
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// The status shown in views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionConsentStatus {
    /// In force.
    Active,
    /// Lapsed at `expires_at`.
    Expired,
    /// Withdrawn by the patient.
    Revoked,
}

/// `POST /api/sessions/consents`, by the patient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSessionConsent {
    /// Which of the caller's charts, when their account is linked to more than one
    /// (the API resolves it; the decision takes the resolved id).
    #[serde(default)]
    pub patient_id: Option<PatientId>,
    /// To what.
    pub kind: SessionConsentKind,
    /// Only within this organisation.
    #[serde(default)]
    pub org_id: Option<OrgId>,
    /// Only with this clinician.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// When it lapses (`None`: until revoked); must be in the future.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The state of one session consent (ids and enums only: `Debug` is safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConsent {
    /// The session consent.
    pub id: SessionConsentId,
    /// Events applied so far.
    pub version: StreamVersion,
    /// The patient (set by the grant).
    pub patient_id: Option<PatientId>,
    /// To what (set by the grant).
    pub kind: Option<SessionConsentKind>,
    /// Only within this organisation.
    pub org_id: Option<OrgId>,
    /// Only with this clinician.
    pub user_id: Option<UserId>,
    /// When it lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the patient revoked it.
    pub revoked: bool,
}

impl SessionConsent {
    /// A session consent with no events yet.
    pub fn new(id: SessionConsentId) -> Self {
        Self {
            id,
            version: StreamVersion::EMPTY,
            patient_id: None,
            kind: None,
            org_id: None,
            user_id: None,
            expires_at: None,
            revoked: false,
        }
    }

    /// The state after `events`, in stream order.
    pub fn fold<'a>(
        id: SessionConsentId,
        events: impl IntoIterator<Item = &'a SessionConsentEvent>,
    ) -> Self {
        let mut consent = Self::new(id);
        for event in events {
            consent.apply(event);
        }
        consent
    }

    /// Whether it exists.
    pub fn exists(&self) -> bool {
        self.patient_id.is_some()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &SessionConsentEvent) {
        self.version = self.version.next();
        match event {
            SessionConsentEvent::SessionConsentGranted {
                patient_id,
                kind,
                org_id,
                user_id,
                expires_at,
            } => {
                self.patient_id = Some(*patient_id);
                self.kind = Some(*kind);
                self.org_id = *org_id;
                self.user_id = *user_id;
                self.expires_at = *expires_at;
            }
            SessionConsentEvent::SessionConsentRevoked {} => self.revoked = true,
        }
    }

    /// The status to show at `now` (`None` if it does not exist).
    pub fn status(&self, now: DateTime<Utc>) -> Option<SessionConsentStatus> {
        self.exists().then(|| {
            if self.revoked {
                SessionConsentStatus::Revoked
            } else if self.expires_at.is_some_and(|at| at <= now) {
                SessionConsentStatus::Expired
            } else {
                SessionConsentStatus::Active
            }
        })
    }

    /// Whether it allows `kind` at `now`, in organisation `org` with clinician
    /// `clinician`: in force, of that kind, and not limited to another organisation or
    /// clinician.
    pub fn allows(
        &self,
        kind: SessionConsentKind,
        org: Option<OrgId>,
        clinician: UserId,
        now: DateTime<Utc>,
    ) -> bool {
        self.status(now) == Some(SessionConsentStatus::Active)
            && self.kind == Some(kind)
            && self.org_id.is_none_or(|o| Some(o) == org)
            && self.user_id.is_none_or(|u| u == clinician)
    }

    /// The patient `patient_id` (resolved by the caller) grants `input`. `now` bounds
    /// `expires_at`.
    pub fn grant(
        &self,
        patient_id: PatientId,
        input: &GrantSessionConsent,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionConsentEvent>, SessionConsentError> {
        if self.exists() {
            return Err(SessionConsentError::AlreadyExists);
        }
        if input.expires_at.is_some_and(|at| at <= now) {
            return Err(EXPIRES_AT.into());
        }
        Ok(vec![SessionConsentEvent::SessionConsentGranted {
            patient_id,
            kind: input.kind,
            org_id: input.org_id,
            user_id: input.user_id,
            expires_at: input.expires_at,
        }])
    }

    /// The patient revokes it (a lapsed one too: the revocation records their intent).
    pub fn revoke(&self) -> Result<Vec<SessionConsentEvent>, SessionConsentError> {
        if !self.exists() {
            Err(SessionConsentError::NotFound)
        } else if self.revoked {
            Err(SessionConsentError::Revoked)
        } else {
            Ok(vec![SessionConsentEvent::SessionConsentRevoked {}])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use uuid::Uuid;

    const PATIENT: PatientId = PatientId(Uuid::from_u128(2));
    const ORG: OrgId = OrgId(Uuid::from_u128(1));
    const CLINICIAN: UserId = UserId(Uuid::from_u128(3));

    fn now() -> DateTime<Utc> {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    fn input(expires_at: Option<DateTime<Utc>>) -> GrantSessionConsent {
        GrantSessionConsent {
            patient_id: None,
            kind: SessionConsentKind::AiTranscription,
            org_id: Some(ORG),
            user_id: None,
            expires_at,
        }
    }

    fn given_a_granted_session_consent(expires_at: Option<DateTime<Utc>>) -> SessionConsent {
        let c = SessionConsent::new(SessionConsentId(Uuid::from_u128(9)));
        let events = c.grant(PATIENT, &input(expires_at), now()).unwrap();
        SessionConsent::fold(c.id, &events)
    }

    #[test]
    fn given_no_session_consent_when_granted_then_it_allows_its_kind_in_its_org() {
        let c = given_a_granted_session_consent(None);
        assert_eq!(c.status(now()), Some(SessionConsentStatus::Active));
        let t = SessionConsentKind::AiTranscription;
        assert!(c.allows(t, Some(ORG), CLINICIAN, now()));
        assert!(!c.allows(SessionConsentKind::Recording, Some(ORG), CLINICIAN, now()));
        assert!(!c.allows(t, Some(OrgId(Uuid::nil())), CLINICIAN, now()));
        assert!(!c.allows(t, None, CLINICIAN, now()));
    }

    #[test]
    fn given_a_session_consent_when_its_expiry_passes_then_it_allows_nothing() {
        let at = now() + Duration::hours(1);
        let c = given_a_granted_session_consent(Some(at));
        assert_eq!(c.status(at), Some(SessionConsentStatus::Expired));
        assert!(!c.allows(
            SessionConsentKind::AiTranscription,
            Some(ORG),
            CLINICIAN,
            at
        ));
    }

    #[test]
    fn given_a_past_expiry_when_granted_then_expires_at_is_named() {
        let c = SessionConsent::new(SessionConsentId(Uuid::nil()));
        assert!(matches!(
            c.grant(PATIENT, &input(Some(now())), now()).unwrap_err(),
            SessionConsentError::Invalid(f) if f.field == "expires_at"
        ));
    }

    #[test]
    fn given_a_session_consent_when_revoked_twice_then_the_second_is_a_conflict() {
        let c = given_a_granted_session_consent(None);
        let revoked = c.revoke().unwrap();
        let mut c = c;
        revoked.iter().for_each(|e| c.apply(e));
        assert_eq!(c.status(now()), Some(SessionConsentStatus::Revoked));
        assert!(!c.allows(
            SessionConsentKind::AiTranscription,
            Some(ORG),
            CLINICIAN,
            now()
        ));
        assert_eq!(c.revoke().unwrap_err(), SessionConsentError::Revoked);
        assert_eq!(
            c.grant(PATIENT, &input(None), now()).unwrap_err(),
            SessionConsentError::AlreadyExists
        );
    }

    #[test]
    fn given_no_session_consent_when_revoked_then_not_found() {
        let c = SessionConsent::new(SessionConsentId(Uuid::nil()));
        assert_eq!(c.revoke().unwrap_err(), SessionConsentError::NotFound);
        assert_eq!(c.status(now()), None);
    }

    #[test]
    fn given_a_grant_body_with_an_unknown_field_when_read_then_refused() {
        assert!(serde_json::from_str::<GrantSessionConsent>(
            r#"{"kind": "recording", "revoked": true}"#
        )
        .is_err());
        let ok: GrantSessionConsent =
            serde_json::from_str(r#"{"kind": "ai_transcription"}"#).unwrap();
        assert_eq!(ok.kind, SessionConsentKind::AiTranscription);
    }
}
