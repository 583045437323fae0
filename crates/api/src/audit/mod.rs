//! Audit (API.md "Audit"): who did what, when, to which resource — never PHI.
//!
//! - [`entries`]: queries of the `audit_feed` projection — by resource, by user, by
//!   clinical record, and a filtered search (paginated).
//! - [`feed`]: the log itself in order (`GET /api/audit/events`, gap-safe: metadata and
//!   hashes, never payloads) and its NDJSON export (`GET /api/audit/export`, streamed).
//! - [`declare`]: `POST /api/clinical/audit`, a client-declared entry (`ClientAuditDeclared`).
//! - [`verify`]: chain verification and checkpoints.
//!
//! Who may read: SUPER:ADMIN, APP:ADMIN and APP:AUDITOR everything; ORG:ADMIN and
//! ORG:AUDITOR the entries within their organisations (and about their organisations'
//! patients and records); everyone else 403 ([`scope`]). Entries can be neither changed
//! nor deleted: the audit routes have no PUT, PATCH or DELETE, so those answer 405
//! `METHOD_NOT_ALLOWED` (in the envelope, with `Allow`).

pub mod declare;
pub mod entries;
pub mod feed;
pub mod verify;

use carelog_domain::Role;
use carelog_store::audit::AuditEntry;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

/// The audit query routes (the verification routes are [`verify::routes`]).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(declare::declare))
        .routes(routes!(entries::by_resource))
        .routes(routes!(entries::by_user))
        .routes(routes!(entries::by_record))
        .routes(routes!(entries::search))
        .routes(routes!(feed::events))
        .routes(routes!(feed::export))
}

/// What a caller may read: `None` every entry; `Some(orgs)` the entries of these
/// organisations (ORG:ADMIN, ORG:AUDITOR). Any other caller is refused (403).
pub async fn scope(state: &AppState, auth: &Authenticated) -> Result<Option<Vec<Uuid>>, ApiError> {
    if [Role::SuperAdmin, Role::AppAdmin, Role::AppAuditor]
        .into_iter()
        .any(|r| auth.actor.has(r))
    {
        return Ok(None);
    }
    let orgs: Vec<Uuid> = carelog_store::clinical::memberships_of(&state.pool, auth.actor.user_id)
        .await?
        .into_iter()
        .filter(|m| matches!(m.role, Role::OrgAdmin | Role::OrgAuditor))
        .map(|m| m.org_id.0)
        .collect();
    if orgs.is_empty() {
        Err(ApiError::Forbidden)
    } else {
        Ok(Some(orgs))
    }
}

/// Who acted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorDto {
    /// The user (null for the platform itself).
    pub user_id: Option<Uuid>,
    /// The roles they acted with.
    pub roles: Vec<String>,
    /// The organisation they acted within.
    pub org_id: Option<Uuid>,
}

/// An audit entry: metadata only, never PHI.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntryDto {
    /// The event id.
    pub id: Uuid,
    /// Its place in the log.
    pub position: i64,
    /// When it was recorded.
    pub time: DateTime<Utc>,
    /// Who.
    pub actor: ActorDto,
    /// create, read, update, delete, login, logout, export, erase, grant, revoke,
    /// emergency_access, ...
    pub action: String,
    /// patient, clinical_record, user, organization, consent, ...
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// success, denied or failure.
    pub outcome: String,
    /// `X-Request-Id`.
    pub request_id: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The service that recorded it.
    pub service: Option<String>,
    /// The endpoint (method and route template) or CLI command.
    pub endpoint: Option<String>,
    /// The event type.
    pub event_type: String,
    /// Under emergency ("break-glass") access.
    pub emergency: bool,
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.event_id,
            position: e.position,
            time: e.recorded_at,
            actor: ActorDto {
                user_id: e.actor_id,
                roles: e.roles,
                org_id: e.org_id,
            },
            action: e.action,
            resource_type: e.resource_type,
            resource_id: e.resource_id,
            outcome: e.outcome,
            request_id: e.request_id,
            ip: e.ip,
            user_agent: e.user_agent,
            service: e.service,
            endpoint: e.endpoint,
            event_type: e.event_type,
            emergency: e.emergency,
        }
    }
}
