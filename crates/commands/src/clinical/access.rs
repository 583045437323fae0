//! The policy, asked with facts from current state. Every entry point of the service
//! goes through one of these functions.

use carelog_domain::access::{
    decide, AccessContext, Action, ConsentFacts, Decision, EmergencyFacts, Grantee, Grounds,
    PatientFacts, Resource,
};
use carelog_domain::{OrgId, PatientId, RecordId};
use carelog_store::clinical::{self as inline, IndexedPatient, IndexedRecord};
use chrono::{DateTime, Utc};

use super::{Caller, Clinical, ClinicalError};

/// A patient the caller may act on, with the grounds the policy gave.
pub(super) struct PatientAccess {
    pub indexed: IndexedPatient,
    pub grounds: Grounds,
}

/// A record the caller may act on.
pub(super) struct RecordAccess {
    pub record: IndexedRecord,
    pub patient: IndexedPatient,
    pub grounds: Grounds,
}

fn verdict(d: Decision) -> Result<Grounds, ClinicalError> {
    match d {
        Decision::Allow(g) => Ok(g),
        other => Err(ClinicalError::from_decision(other).expect("a refusal")),
    }
}

impl Clinical {
    /// Decides `action` on the platform or an organisation.
    pub(super) async fn authorize_org(
        &self,
        caller: &Caller,
        action: Action,
        org: Option<OrgId>,
        now: DateTime<Utc>,
    ) -> Result<Grounds, ClinicalError> {
        let resource = match org {
            Some(org) => {
                if !inline::org_exists(self.pool(), org).await? {
                    return Err(ClinicalError::NotFound);
                }
                Resource::Org(org)
            }
            None => Resource::Platform,
        };
        let ctx = AccessContext {
            now,
            consents: &[],
            emergency: &[],
        };
        verdict(decide(&caller.principal, action, resource, &ctx))
    }

    /// Decides `action` on what belongs to the caller themself (their own consents).
    pub(super) fn authorize_own(
        &self,
        caller: &Caller,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<Grounds, ClinicalError> {
        let ctx = AccessContext {
            now,
            consents: &[],
            emergency: &[],
        };
        verdict(decide(&caller.principal, action, Resource::Own, &ctx))
    }

    /// Decides `action` on a patient (`as_record`: on their clinical records).
    pub(super) async fn authorize_patient(
        &self,
        caller: &Caller,
        action: Action,
        patient: PatientId,
        as_record: bool,
        now: DateTime<Utc>,
    ) -> Result<PatientAccess, ClinicalError> {
        let indexed = inline::patient_facts(self.pool(), patient)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let grounds = self
            .decide_on(caller, action, &indexed.facts, as_record, now)
            .await?;
        Ok(PatientAccess { indexed, grounds })
    }

    /// Decides `action` on a clinical record.
    pub(super) async fn authorize_record(
        &self,
        caller: &Caller,
        action: Action,
        record: RecordId,
        now: DateTime<Utc>,
    ) -> Result<RecordAccess, ClinicalError> {
        let indexed = inline::record_patient(self.pool(), record)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let patient = inline::patient_facts(self.pool(), indexed.patient_id)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let grounds = self
            .decide_on(caller, action, &patient.facts, true, now)
            .await?;
        Ok(RecordAccess {
            record: indexed,
            patient,
            grounds,
        })
    }

    /// Decides `action` (approve, decline, revoke) on a consent of `patient` to
    /// `grantee`.
    pub(super) async fn authorize_consent(
        &self,
        caller: &Caller,
        action: Action,
        patient: PatientId,
        grantee: Grantee,
        now: DateTime<Utc>,
    ) -> Result<PatientAccess, ClinicalError> {
        let indexed = inline::patient_facts(self.pool(), patient)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let facts = &indexed.facts;
        let grounds = self
            .decide_with_facts(caller, action, facts, now, |facts| Resource::Consent {
                patient: facts,
                grantee,
            })
            .await?;
        Ok(PatientAccess { indexed, grounds })
    }

    async fn decide_on(
        &self,
        caller: &Caller,
        action: Action,
        facts: &PatientFacts,
        as_record: bool,
        now: DateTime<Utc>,
    ) -> Result<Grounds, ClinicalError> {
        self.decide_with_facts(caller, action, facts, now, |facts| {
            if as_record {
                Resource::Record(facts)
            } else {
                Resource::Patient(facts)
            }
        })
        .await
    }

    /// The decision on a patient-scoped resource, with the patient's consents and the
    /// caller's emergency grants read now from the inline tables: a revoked or expired
    /// consent stops access on the very next request.
    async fn decide_with_facts<'a>(
        &self,
        caller: &Caller,
        action: Action,
        facts: &'a PatientFacts,
        now: DateTime<Utc>,
        resource: impl FnOnce(&'a PatientFacts) -> Resource<'a>,
    ) -> Result<Grounds, ClinicalError> {
        let emergency: Vec<EmergencyFacts> =
            inline::emergency_grants(self.pool(), facts.patient_id, caller.actor.user_id, now)
                .await?;
        let consents: Vec<ConsentFacts> =
            carelog_store::consent::consent_facts(self.pool(), facts.patient_id).await?;
        let ctx = AccessContext {
            now,
            consents: &consents,
            emergency: &emergency,
        };
        verdict(decide(&caller.principal, action, resource(facts), &ctx))
    }
}
