//! The consent aggregate: state folded from the `consent-<uuid>` stream, and the
//! decisions taken on it. `apply` cannot fail and holds no rule; the decisions hold
//! every rule (time comes in as an argument).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{ConsentFacts, ConsentScope, ConsentStatus, Grantee};
use crate::field::FieldError;
use crate::ids::{ConsentId, PatientId, StreamVersion, UserId};

use super::events::{ConsentEvent, Purpose};
use super::input::{validate_expires_at, ApproveConsent, GrantConsent, RequestConsent};

/// A decision on an existing consent (named in [`ConsentError::WrongState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentAction {
    /// Approve a requested consent.
    Approve,
    /// Decline a requested consent.
    Decline,
    /// Revoke an active consent.
    Revoke,
}

impl ConsentAction {
    /// The verb, as in the routes.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentAction::Approve => "approve",
            ConsentAction::Decline => "decline",
            ConsentAction::Revoke => "revoke",
        }
    }
}

impl fmt::Display for ConsentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a consent command was refused. Messages carry no PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    /// There is no such consent (404).
    #[error("no such consent")]
    NotFound,
    /// The stream already holds a consent (409).
    #[error("the consent already exists")]
    AlreadyExists,
    /// The action is illegal in the consent's state, e.g. approving a revoked consent
    /// (409).
    #[error("cannot {action} a consent that is {from}")]
    WrongState {
        /// The state the consent is in.
        from: ConsentStatus,
        /// What was asked.
        action: ConsentAction,
    },
    /// An input field broke a rule (400 naming the field).
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// The status shown in views: the lifecycle state, with an active consent past its
/// `expires_at` shown as `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectiveConsentStatus {
    /// Waiting for the patient's answer.
    Requested,
    /// In force.
    Active,
    /// Was active; lapsed at `expires_at`.
    Expired,
    /// Refused by the patient.
    Declined,
    /// Withdrawn by the patient.
    Revoked,
}

impl EffectiveConsentStatus {
    /// The snake_case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectiveConsentStatus::Requested => "requested",
            EffectiveConsentStatus::Active => "active",
            EffectiveConsentStatus::Expired => "expired",
            EffectiveConsentStatus::Declined => "declined",
            EffectiveConsentStatus::Revoked => "revoked",
        }
    }
}

/// What a consent is about, fixed by its first event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentTerms {
    /// The patient who consents.
    pub patient_id: PatientId,
    /// Who may access (for a request: the requesting doctor).
    pub grantee: Grantee,
    /// What.
    pub scope: ConsentScope,
    /// Why.
    pub purpose: Purpose,
    /// Whether a doctor asked for it (`ConsentRequested`) rather than the patient
    /// granting it.
    pub requested: bool,
}

/// The state of one consent (ids and enums only: `Debug` is safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The consent.
    pub id: ConsentId,
    /// Events applied so far.
    pub version: StreamVersion,
    /// Set by the first event.
    pub terms: Option<ConsentTerms>,
    /// The lifecycle state (set by the first event).
    pub status: Option<ConsentStatus>,
    /// When it lapses by itself, once active.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Consent {
    /// A consent with no events yet.
    pub fn new(id: ConsentId) -> Self {
        Self {
            id,
            version: StreamVersion::EMPTY,
            terms: None,
            status: None,
            expires_at: None,
        }
    }

    /// The state after `events`, in stream order.
    pub fn fold<'a>(id: ConsentId, events: impl IntoIterator<Item = &'a ConsentEvent>) -> Self {
        let mut consent = Self::new(id);
        for event in events {
            consent.apply(event);
        }
        consent
    }

    /// Whether the consent exists.
    pub fn exists(&self) -> bool {
        self.terms.is_some()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &ConsentEvent) {
        self.version = self.version.next();
        match event {
            ConsentEvent::ConsentGranted {
                patient_id,
                grantee,
                scope,
                purpose,
                expires_at,
            } => {
                self.terms = Some(ConsentTerms {
                    patient_id: *patient_id,
                    grantee: *grantee,
                    scope: *scope,
                    purpose: *purpose,
                    requested: false,
                });
                self.status = Some(ConsentStatus::Active);
                self.expires_at = *expires_at;
            }
            ConsentEvent::ConsentRequested {
                patient_id,
                grantee_user_id,
                scope,
                purpose,
            } => {
                self.terms = Some(ConsentTerms {
                    patient_id: *patient_id,
                    grantee: Grantee::User(*grantee_user_id),
                    scope: *scope,
                    purpose: *purpose,
                    requested: true,
                });
                self.status = Some(ConsentStatus::Requested);
            }
            ConsentEvent::ConsentApproved { expires_at } => {
                self.status = Some(ConsentStatus::Active);
                self.expires_at = *expires_at;
            }
            ConsentEvent::ConsentDeclined {} => self.status = Some(ConsentStatus::Declined),
            ConsentEvent::ConsentRevoked {} => self.status = Some(ConsentStatus::Revoked),
        }
    }

    /// The status to show at `now` (`None` if the consent does not exist): an active
    /// consent whose `expires_at` is not after `now` is expired.
    pub fn effective_status(&self, now: DateTime<Utc>) -> Option<EffectiveConsentStatus> {
        Some(match self.status? {
            ConsentStatus::Requested => EffectiveConsentStatus::Requested,
            ConsentStatus::Active if self.expires_at.is_some_and(|at| at <= now) => {
                EffectiveConsentStatus::Expired
            }
            ConsentStatus::Active => EffectiveConsentStatus::Active,
            ConsentStatus::Declined => EffectiveConsentStatus::Declined,
            ConsentStatus::Revoked => EffectiveConsentStatus::Revoked,
        })
    }

    /// What the access policy needs to know of it (`None` if it does not exist). The
    /// policy itself checks the status and the expiry against its own `now`.
    pub fn facts(&self) -> Option<ConsentFacts> {
        let terms = self.terms?;
        Some(ConsentFacts {
            patient_id: terms.patient_id,
            grantee: terms.grantee,
            scope: terms.scope,
            status: self.status?,
            expires_at: self.expires_at,
        })
    }

    /// The patient grants `input` on their chart `patient_id` (resolved by the caller);
    /// active at once. `now` bounds `expires_at`.
    pub fn grant(
        &self,
        patient_id: PatientId,
        input: &GrantConsent,
        now: DateTime<Utc>,
    ) -> Result<Vec<ConsentEvent>, ConsentError> {
        if self.exists() {
            return Err(ConsentError::AlreadyExists);
        }
        let grantee = input.grantee()?;
        let expires_at = validate_expires_at(input.expires_at, now)?;
        Ok(vec![ConsentEvent::ConsentGranted {
            patient_id,
            grantee,
            scope: input.scope,
            purpose: input.purpose,
            expires_at,
        }])
    }

    /// The doctor `doctor` asks the patient of `input` for a consent to themself.
    pub fn request(
        &self,
        doctor: UserId,
        input: &RequestConsent,
    ) -> Result<Vec<ConsentEvent>, ConsentError> {
        if self.exists() {
            return Err(ConsentError::AlreadyExists);
        }
        Ok(vec![ConsentEvent::ConsentRequested {
            patient_id: input.patient_id,
            grantee_user_id: doctor,
            scope: input.scope,
            purpose: input.purpose,
        }])
    }

    /// The patient approves a requested consent. `now` bounds `expires_at`.
    pub fn approve(
        &self,
        input: &ApproveConsent,
        now: DateTime<Utc>,
    ) -> Result<Vec<ConsentEvent>, ConsentError> {
        self.expect(ConsentStatus::Requested, ConsentAction::Approve)?;
        let expires_at = validate_expires_at(input.expires_at, now)?;
        Ok(vec![ConsentEvent::ConsentApproved { expires_at }])
    }

    /// The patient declines a requested consent.
    pub fn decline(&self) -> Result<Vec<ConsentEvent>, ConsentError> {
        self.expect(ConsentStatus::Requested, ConsentAction::Decline)?;
        Ok(vec![ConsentEvent::ConsentDeclined {}])
    }

    /// The patient revokes an active consent. One that has already lapsed may be revoked
    /// too (it is still `active` in its lifecycle; the revocation records the patient's
    /// intent and changes no access).
    pub fn revoke(&self) -> Result<Vec<ConsentEvent>, ConsentError> {
        self.expect(ConsentStatus::Active, ConsentAction::Revoke)?;
        Ok(vec![ConsentEvent::ConsentRevoked {}])
    }

    /// `Ok` if the consent exists and is in `wanted`.
    fn expect(&self, wanted: ConsentStatus, action: ConsentAction) -> Result<(), ConsentError> {
        match self.status {
            None => Err(ConsentError::NotFound),
            Some(s) if s == wanted => Ok(()),
            Some(from) => Err(ConsentError::WrongState { from, action }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use uuid::Uuid;

    const PATIENT: PatientId = PatientId(Uuid::from_u128(2));
    const DOCTOR: UserId = UserId(Uuid::from_u128(3));

    fn now() -> DateTime<Utc> {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    fn grant_input(expires_at: Option<DateTime<Utc>>) -> GrantConsent {
        GrantConsent {
            patient_id: None,
            grantee_org_id: None,
            grantee_user_id: Some(DOCTOR),
            scope: ConsentScope::Demographics,
            purpose: Purpose::Treatment,
            expires_at,
        }
    }

    fn after(mut c: Consent, events: Vec<ConsentEvent>) -> Consent {
        events.iter().for_each(|e| c.apply(e));
        c
    }

    fn given_a_granted_consent(expires_at: Option<DateTime<Utc>>) -> Consent {
        let c = Consent::new(ConsentId(Uuid::from_u128(9)));
        let events = c.grant(PATIENT, &grant_input(expires_at), now()).unwrap();
        after(c, events)
    }

    fn given_a_requested_consent() -> Consent {
        let c = Consent::new(ConsentId(Uuid::from_u128(9)));
        let input = RequestConsent {
            patient_id: PATIENT,
            scope: ConsentScope::All,
            purpose: Purpose::Research,
        };
        let events = c.request(DOCTOR, &input).unwrap();
        after(c, events)
    }

    fn given_a_declined_consent() -> Consent {
        let c = given_a_requested_consent();
        let events = c.decline().unwrap();
        after(c, events)
    }

    fn given_a_revoked_consent() -> Consent {
        let c = given_a_granted_consent(None);
        let events = c.revoke().unwrap();
        after(c, events)
    }

    #[test]
    fn given_no_consent_when_granted_then_it_is_active_with_its_facts() {
        let at = now() + Duration::days(30);
        let c = given_a_granted_consent(Some(at));
        assert_eq!(c.version, StreamVersion(1));
        assert_eq!(c.status, Some(ConsentStatus::Active));
        assert_eq!(
            c.effective_status(now()),
            Some(EffectiveConsentStatus::Active)
        );
        let facts = c.facts().unwrap();
        assert_eq!(facts.patient_id, PATIENT);
        assert_eq!(facts.grantee, Grantee::User(DOCTOR));
        assert_eq!(facts.scope, ConsentScope::Demographics);
        assert_eq!(facts.expires_at, Some(at));
        assert!(!c.terms.unwrap().requested);
    }

    #[test]
    fn given_an_active_consent_when_its_expiry_passes_then_it_shows_expired() {
        let at = now() + Duration::hours(1);
        let c = given_a_granted_consent(Some(at));
        let shown = |t| c.effective_status(t).unwrap();
        assert_eq!(
            shown(at - Duration::seconds(1)),
            EffectiveConsentStatus::Active
        );
        assert_eq!(shown(at), EffectiveConsentStatus::Expired);
        assert_eq!(
            shown(at + Duration::days(1)),
            EffectiveConsentStatus::Expired
        );
        let forever = given_a_granted_consent(None);
        assert_eq!(
            forever.effective_status(now() + Duration::days(3650)),
            Some(EffectiveConsentStatus::Active)
        );
        assert_eq!(Consent::new(forever.id).effective_status(now()), None);
    }

    #[test]
    fn given_a_grant_with_a_past_expiry_or_no_grantee_when_granted_then_the_field_is_named() {
        let c = Consent::new(ConsentId(Uuid::nil()));
        for at in [now(), now() - Duration::seconds(1)] {
            assert!(matches!(
                c.grant(PATIENT, &grant_input(Some(at)), now()).unwrap_err(),
                ConsentError::Invalid(f) if f.field == "expires_at"
            ));
        }
        let mut nobody = grant_input(None);
        nobody.grantee_user_id = None;
        assert!(matches!(
            c.grant(PATIENT, &nobody, now()).unwrap_err(),
            ConsentError::Invalid(f) if f.field == "grantee_org_id"
        ));
    }

    #[test]
    fn given_a_consent_when_granted_or_requested_again_then_already_exists() {
        let c = given_a_granted_consent(None);
        assert_eq!(
            c.grant(PATIENT, &grant_input(None), now()).unwrap_err(),
            ConsentError::AlreadyExists
        );
        let r = given_a_requested_consent();
        let input = RequestConsent {
            patient_id: PATIENT,
            scope: ConsentScope::All,
            purpose: Purpose::Treatment,
        };
        assert_eq!(
            r.request(DOCTOR, &input).unwrap_err(),
            ConsentError::AlreadyExists
        );
    }

    #[test]
    fn given_a_request_when_approved_then_active_for_the_requesting_doctor() {
        let c = given_a_requested_consent();
        assert_eq!(c.status, Some(ConsentStatus::Requested));
        assert_eq!(c.facts().unwrap().grantee, Grantee::User(DOCTOR));
        assert!(c.terms.unwrap().requested);
        let at = now() + Duration::days(7);
        let input = ApproveConsent {
            expires_at: Some(at),
        };
        let c = after(c.clone(), c.approve(&input, now()).unwrap());
        assert_eq!(c.status, Some(ConsentStatus::Active));
        assert_eq!(c.expires_at, Some(at));
        assert_eq!(c.version, StreamVersion(2));
    }

    #[test]
    fn given_a_request_when_approved_with_a_past_expiry_then_expires_at_is_named() {
        let c = given_a_requested_consent();
        let input = ApproveConsent {
            expires_at: Some(now()),
        };
        assert!(matches!(
            c.approve(&input, now()).unwrap_err(),
            ConsentError::Invalid(f) if f.field == "expires_at"
        ));
    }

    #[test]
    fn given_a_request_when_declined_then_it_is_declined_and_final() {
        let c = given_a_declined_consent();
        assert_eq!(
            c.effective_status(now()),
            Some(EffectiveConsentStatus::Declined)
        );
        assert_eq!(
            c.revoke().unwrap_err(),
            ConsentError::WrongState {
                from: ConsentStatus::Declined,
                action: ConsentAction::Revoke
            }
        );
    }

    #[test]
    fn given_each_state_when_each_action_is_taken_then_only_the_lifecycle_allows_it() {
        let approve = ApproveConsent::default();
        let states = [
            (given_a_requested_consent(), [true, true, false]),
            (given_a_granted_consent(None), [false, false, true]),
            (given_a_declined_consent(), [false, false, false]),
            (given_a_revoked_consent(), [false, false, false]),
        ];
        for (c, allowed) in states {
            let results = [
                (ConsentAction::Approve, c.approve(&approve, now())),
                (ConsentAction::Decline, c.decline()),
                (ConsentAction::Revoke, c.revoke()),
            ];
            for ((action, got), ok) in results.into_iter().zip(allowed) {
                match got {
                    Ok(events) => assert!(ok && events.len() == 1, "{:?} {action}", c.status),
                    Err(e) => {
                        assert!(!ok, "{:?} {action}", c.status);
                        assert_eq!(
                            e,
                            ConsentError::WrongState {
                                from: c.status.unwrap(),
                                action
                            }
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn given_a_lapsed_consent_when_revoked_then_the_revocation_is_recorded() {
        let at = now() + Duration::hours(1);
        let c = given_a_granted_consent(Some(at));
        assert_eq!(c.revoke().unwrap().len(), 1);
        assert_eq!(
            c.effective_status(at + Duration::hours(1)),
            Some(EffectiveConsentStatus::Expired)
        );
    }

    #[test]
    fn given_no_consent_when_acted_on_then_not_found() {
        let c = Consent::new(ConsentId(Uuid::nil()));
        assert_eq!(c.revoke().unwrap_err(), ConsentError::NotFound);
        assert_eq!(c.decline().unwrap_err(), ConsentError::NotFound);
        assert_eq!(
            c.approve(&ApproveConsent::default(), now()).unwrap_err(),
            ConsentError::NotFound
        );
        assert_eq!(c.facts(), None);
    }

    #[test]
    fn given_a_wrong_state_error_when_shown_then_it_names_state_and_action_only() {
        let e = ConsentError::WrongState {
            from: ConsentStatus::Revoked,
            action: ConsentAction::Approve,
        };
        assert_eq!(e.to_string(), "cannot approve a consent that is revoked");
    }
}
