//! Reads of the audit trail itself (API.md "Audit"): an auditor's query of the entries,
//! of the log's feed or export, or its verification, and every refused attempt at one,
//! append an access event before the answer, as reads of PHI do
//! ([`crate::clinical`]): `resource_type` `audit_trail`, the id of what was asked about
//! (a resource, a user, a record) or the nil UUID for the trail as a whole, and the
//! endpoint. Who may read is decided by the API from current state (the caller's roles
//! and memberships); this records the decision.

use carelog_domain::audit::{AccessEvent, Action, Outcome, ResourceType, API_SERVICE};
use carelog_domain::{OrgId, Role};
use carelog_store::{AppendError, EventStore};
use uuid::Uuid;

use crate::{Actor, Ctx};

/// One access to the audit trail, as decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailAccess {
    /// Read (a query, the feed, a verification) or export.
    pub action: Action,
    /// What was asked about; the nil UUID for the trail as a whole.
    pub about: Uuid,
    /// Allowed (success) or refused (denied).
    pub outcome: Outcome,
    /// The organisation roles of the caller it names: those it was allowed under (an
    /// organisation's admin or auditor), or for a refusal all of the caller's; empty for
    /// a platform role. The entry's `org_id` is the organisation when there is one only,
    /// so that organisation's auditors see it.
    pub under: Vec<(OrgId, Role)>,
}

/// Appends the access event of `access` by `actor` (group commit, a stream of its own).
/// A failure is logged (with the stream, never a filter value) and returned.
pub async fn record(
    store: &EventStore,
    ctx: &Ctx,
    actor: &Actor,
    access: TrailAccess,
) -> Result<(), AppendError> {
    let event = AccessEvent::AccessRecorded {
        action: access.action,
        resource_type: ResourceType::AuditTrail,
        resource_id: access.about,
        outcome: access.outcome,
        service: API_SERVICE.to_owned(),
        endpoint: ctx.command.clone(),
        emergency: false,
        grant_id: None,
    };
    let mut meta = ctx.metadata(Some(actor));
    if let [(org, _)] = access.under.as_slice() {
        meta.org_id = Some(org.0);
    }
    for (_, role) in &access.under {
        let role = role.as_str().to_owned();
        if !meta.roles.contains(&role) {
            meta.roles.push(role);
        }
    }
    crate::access_log::append(store, event, meta)
        .await
        .map(|_| ())
        .map_err(|(stream, e)| {
            tracing::error!(error = %e, stream_id = %stream, "audit trail access not recorded");
            e
        })
}
