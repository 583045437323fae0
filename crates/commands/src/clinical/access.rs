//! The policy, asked with facts from current state. Every entry point of the service
//! goes through one of these functions. A refusal the policy decided (403, or a 404 that
//! hides the resource) is recorded as an access event here ([`super::audit`]); a 404
//! because the resource does not exist is not (there is nothing to audit).

use carelog_domain::access::{
    decide, AccessContext, Action, Decision, Grantee, Grounds, PatientFacts, Resource,
};
use carelog_domain::audit::ResourceType;
use carelog_domain::{OrgId, PatientId, RecordId};
use carelog_store::clinical::{
    self as inline, IndexedPatient, IndexedRecord, PatientAccessFacts, RecordAccessFacts,
};
use chrono::{DateTime, Utc};

use super::audit::Accessed;
use super::{Caller, Clinical, ClinicalError};
use crate::context::Ctx;

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

/// Whether a decision is a refusal to record (403, or the policy's 404).
fn is_denial(d: &Decision) -> bool {
    matches!(d, Decision::Deny(_) | Decision::NotFound)
}

impl Clinical {
    /// Decides `action` on the platform or an organisation.
    pub(super) async fn authorize_org(
        &self,
        caller: &Caller,
        action: Action,
        org: Option<OrgId>,
        ctx: &Ctx,
    ) -> Result<Grounds, ClinicalError> {
        let now = ctx.now;
        let resource = match org {
            Some(org) => {
                if !inline::org_exists(self.pool(), org).await? {
                    return Err(ClinicalError::NotFound);
                }
                Resource::Org(org)
            }
            None => Resource::Platform,
        };
        let decision = decide(
            &caller.principal,
            action,
            resource,
            &AccessContext {
                now,
                consents: &[],
                emergency: &[],
            },
        );
        if let (Some(org), true) = (org, is_denial(&decision)) {
            let target = Accessed::new(ResourceType::Organization, org.0, Some(org));
            self.record_denial(ctx, caller, action, target).await;
        }
        verdict(decision)
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
        ctx: &Ctx,
    ) -> Result<PatientAccess, ClinicalError> {
        let facts = self.patient_access(caller, patient, ctx).await?;
        self.authorize_patient_facts(caller, action, facts, as_record, ctx)
            .await
    }

    /// Decides `action` on a patient whose facts were read with something else in the
    /// same statement (a read of demographics: [`inline::patient_read`]).
    pub(super) async fn authorize_patient_facts(
        &self,
        caller: &Caller,
        action: Action,
        facts: PatientAccessFacts,
        as_record: bool,
        ctx: &Ctx,
    ) -> Result<PatientAccess, ClinicalError> {
        let target = Accessed::patient(&facts.indexed.facts);
        let grounds = self
            .decide_on(caller, action, &facts, as_record, ctx, target)
            .await?;
        Ok(PatientAccess {
            indexed: facts.indexed,
            grounds,
        })
    }

    /// Decides `action` on a clinical record.
    pub(super) async fn authorize_record(
        &self,
        caller: &Caller,
        action: Action,
        record: RecordId,
        ctx: &Ctx,
    ) -> Result<RecordAccess, ClinicalError> {
        let facts = inline::record_access(self.pool(), record, caller.actor.user_id, ctx.now)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        self.authorize_record_facts(caller, action, record, facts, ctx)
            .await
    }

    /// Decides `action` on a record whose facts were read with something else in the
    /// same statement (a read of the record: [`inline::record_read`]).
    pub(super) async fn authorize_record_facts(
        &self,
        caller: &Caller,
        action: Action,
        record: RecordId,
        facts: RecordAccessFacts,
        ctx: &Ctx,
    ) -> Result<RecordAccess, ClinicalError> {
        let target = Accessed::new(
            ResourceType::ClinicalRecord,
            record.0,
            Some(facts.patient.indexed.facts.org_id),
        );
        let grounds = self
            .decide_on(caller, action, &facts.patient, true, ctx, target)
            .await?;
        Ok(RecordAccess {
            record: facts.record,
            patient: facts.patient.indexed,
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
        ctx: &Ctx,
    ) -> Result<PatientAccess, ClinicalError> {
        let facts = self.patient_access(caller, patient, ctx).await?;
        let target = Accessed::patient(&facts.indexed.facts);
        let grounds = self
            .decide_with_facts(caller, action, &facts, ctx, target, |facts| {
                Resource::Consent {
                    patient: facts,
                    grantee,
                }
            })
            .await?;
        Ok(PatientAccess {
            indexed: facts.indexed,
            grounds,
        })
    }

    /// What a decision on `patient` reads, now (one statement); a 404 if no such patient.
    async fn patient_access(
        &self,
        caller: &Caller,
        patient: PatientId,
        ctx: &Ctx,
    ) -> Result<PatientAccessFacts, ClinicalError> {
        inline::patient_access(self.pool(), patient, caller.actor.user_id, ctx.now)
            .await?
            .ok_or(ClinicalError::NotFound)
    }

    async fn decide_on(
        &self,
        caller: &Caller,
        action: Action,
        facts: &PatientAccessFacts,
        as_record: bool,
        ctx: &Ctx,
        target: Accessed,
    ) -> Result<Grounds, ClinicalError> {
        self.decide_with_facts(caller, action, facts, ctx, target, |facts| {
            if as_record {
                Resource::Record(facts)
            } else {
                Resource::Patient(facts)
            }
        })
        .await
    }

    /// The decision on a patient-scoped resource, with the patient's consents and the
    /// caller's emergency grants as the inline tables held them at this request: a
    /// revoked or expired consent stops access on the very next request. A refusal is
    /// recorded on `target`.
    async fn decide_with_facts<'a>(
        &self,
        caller: &Caller,
        action: Action,
        facts: &'a PatientAccessFacts,
        ctx: &Ctx,
        target: Accessed,
        resource: impl FnOnce(&'a PatientFacts) -> Resource<'a>,
    ) -> Result<Grounds, ClinicalError> {
        let decision = decide(
            &caller.principal,
            action,
            resource(&facts.indexed.facts),
            &AccessContext {
                now: ctx.now,
                consents: &facts.consents,
                emergency: &facts.emergency,
            },
        );
        if is_denial(&decision) {
            self.record_denial(ctx, caller, action, target).await;
        }
        verdict(decision)
    }
}
