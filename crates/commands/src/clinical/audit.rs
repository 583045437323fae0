//! Access events (DESIGN.md invariant 6, API.md "Audit"): every read of PHI and every
//! refusal the policy decided appends one `AccessRecorded` event
//! ([`carelog_domain::audit`]) before the answer is sent.
//!
//! - **Where.** Refusals are recorded where the policy is asked ([`super::access`]:
//!   `Deny` → 403 and the policy's `NotFound` → 404, for every patient, record,
//!   consent and organisation decision); successful reads by the read entry points once
//!   they hold the answer (patient, patient history, record, record list, record
//!   history, export; and an organisation's patient list, a page of demographics,
//!   recorded on the organisation). The record list is recorded on the patient
//!   (`resource_type` `patient`, the endpoint tells it apart). An auditor's `AuditOnly` history is a read of metadata, recorded
//!   the same way (action `read`).
//! - **How.** Through [`crate::access_log`]: each event is the single event of a fresh
//!   `access-<uuid>` stream, so concurrent readers never conflict and share group-commit
//!   transactions. Sealed under the
//!   `system` subject (no PHI). The metadata is the command's (actor, roles, request id,
//!   client address, user agent, endpoint, time) with the organisation of the resource
//!   and the caller's role in it added.
//! - **If the append fails.** A read answers 503 (`AuditUnavailable`): no PHI leaves
//!   without its audit record (an export's own `PatientDataExported` is committed by
//!   then; the client retries). A refusal still answers its 403/404 (it discloses
//!   nothing, and a different status would tell a hidden resource from a missing one);
//!   the failure is logged at error level.

use carelog_domain::access::{Action as PolicyAction, Grounds, PatientFacts};
use carelog_domain::audit::{AccessEvent, Action, Outcome, ResourceType, API_SERVICE};
use carelog_domain::{OrgId, RecordId};
use uuid::Uuid;

use super::access::RecordAccess;
use super::{Caller, Clinical, ClinicalError};
use crate::context::Ctx;

/// The resource an access is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Accessed {
    /// Its kind.
    pub resource_type: ResourceType,
    /// Its id.
    pub resource_id: Uuid,
    /// The organisation holding it (the metadata's `org_id`).
    pub org: Option<OrgId>,
}

impl Accessed {
    /// A resource of `resource_type`.
    pub fn new(resource_type: ResourceType, resource_id: Uuid, org: Option<OrgId>) -> Self {
        Self {
            resource_type,
            resource_id,
            org,
        }
    }

    /// A patient (demographics, history, the list of their records, their export).
    pub fn patient(facts: &PatientFacts) -> Self {
        Self::new(
            ResourceType::Patient,
            facts.patient_id.0,
            Some(facts.org_id),
        )
    }

    /// A clinical record.
    pub fn record(id: RecordId, access: &RecordAccess) -> Self {
        Self::new(
            ResourceType::ClinicalRecord,
            id.0,
            Some(access.patient.facts.org_id),
        )
    }
}

impl Clinical {
    /// Appends the access event of `action` on `target` (group commit). `grounds`: what
    /// allowed it (an emergency grant is flagged and named).
    pub(super) async fn record_access(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        action: PolicyAction,
        target: Accessed,
        outcome: Outcome,
        grounds: Option<Grounds>,
    ) -> Result<(), ClinicalError> {
        let grant_id = match grounds {
            Some(Grounds::Emergency(grant)) => Some(grant),
            _ => None,
        };
        let event = AccessEvent::AccessRecorded {
            action: Action::of(action),
            resource_type: target.resource_type,
            resource_id: target.resource_id,
            outcome,
            service: API_SERVICE.to_owned(),
            endpoint: ctx.command.clone(),
            emergency: grant_id.is_some(),
            grant_id,
        };
        let mut meta = ctx.metadata(Some(&caller.actor));
        if let Some(org) = target.org {
            meta.org_id = Some(org.0);
            for m in caller
                .principal
                .memberships
                .iter()
                .filter(|m| m.org_id == org)
            {
                let role = m.role.as_str().to_owned();
                if !meta.roles.contains(&role) {
                    meta.roles.push(role);
                }
            }
        }
        crate::access_log::append(self.store(), event, meta)
            .await
            .map_err(|(stream, e)| {
                tracing::error!(
                    error = %e,
                    stream_id = %stream,
                    resource_type = target.resource_type.as_str(),
                    resource_id = %target.resource_id,
                    "access event not recorded"
                );
                ClinicalError::AuditUnavailable
            })?;
        Ok(())
    }

    /// Records a successful read of `target` (after the answer is in hand, before it is
    /// returned). A failed append fails the read (503).
    pub(super) async fn record_read(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        action: PolicyAction,
        target: Accessed,
        grounds: Grounds,
    ) -> Result<(), ClinicalError> {
        self.record_access(ctx, caller, action, target, Outcome::Success, Some(grounds))
            .await
    }

    /// Records a refusal the policy decided. The refusal is answered whatever happens
    /// here; a failed append is logged (by [`Self::record_access`]).
    pub(super) async fn record_denial(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        action: PolicyAction,
        target: Accessed,
    ) {
        let _ = self
            .record_access(ctx, caller, action, target, Outcome::Denied, None)
            .await;
    }

    /// Records a refusal of the route-level (gateway) check: the caller's roles cannot
    /// perform `action` anywhere, so the resource was not even looked up (no
    /// organisation in the metadata).
    pub async fn record_route_denial(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        action: PolicyAction,
        resource_type: ResourceType,
        resource_id: Uuid,
    ) {
        let target = Accessed::new(resource_type, resource_id, None);
        self.record_denial(ctx, caller, action, target).await;
    }
}
