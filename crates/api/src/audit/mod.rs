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
//! patients and records); everyone else 403 ([`scope`]). Every read of the trail, and
//! every refused attempt, is itself an access event (`resource_type` `audit_trail`;
//! ADR 0013). Entries can be neither changed nor deleted: the audit routes have no PUT,
//! PATCH or DELETE, so those answer 405 `METHOD_NOT_ALLOWED` (in the envelope, with
//! `Allow`).

pub mod declare;
pub mod entries;
pub mod feed;
pub mod verify;

use carelog_commands::audit_trail::{self, TrailAccess};
use carelog_domain::audit::{Action, Outcome};
use carelog_domain::{OrgId, Role};
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

/// What a caller may read of the audit trail: `None` every entry; `Some(orgs)` the
/// entries of these organisations (ORG:ADMIN, ORG:AUDITOR). Any other caller is refused
/// (403). Decided on current state (the caller's roles and memberships), and recorded
/// before the answer ([`carelog_commands::audit_trail`], see [`TrailRead`]). A refusal
/// stands whether or not its record is appended; an allowed read whose record cannot be
/// appended answers 503, as a read of PHI does.
pub async fn scope(
    state: &AppState,
    auth: &Authenticated,
    read: TrailRead,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    decide(state, auth, read, true).await
}

/// As [`scope`], for what only a platform-wide auditor may read (verification, the
/// list of signed checkpoints).
pub async fn platform_only(
    state: &AppState,
    auth: &Authenticated,
    read: TrailRead,
) -> Result<(), ApiError> {
    decide(state, auth, read, false).await.map(|_| ())
}

/// [`scope`], or with `org_scoped` false [`platform_only`]: decided, recorded, answered.
async fn decide(
    state: &AppState,
    auth: &Authenticated,
    read: TrailRead,
    org_scoped: bool,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    if platform_auditor(auth) {
        return recorded(state, auth, read, Some(None), Vec::new()).await;
    }
    let memberships = memberships(state, auth).await?;
    let auditing: Vec<(OrgId, Role)> = memberships
        .iter()
        .copied()
        .filter(|(_, role)| org_scoped && matches!(role, Role::OrgAdmin | Role::OrgAuditor))
        .collect();
    if auditing.is_empty() {
        return recorded(state, auth, read, None, memberships).await;
    }
    let orgs = auditing.iter().map(|(org, _)| org.0).collect();
    recorded(state, auth, read, Some(Some(orgs)), auditing).await
}

/// The caller's organisations and their role in each (current state), which a record of
/// their access names: a refusal under all of them, so that their organisation's
/// auditors see their attempt.
async fn memberships(
    state: &AppState,
    auth: &Authenticated,
) -> Result<Vec<(OrgId, Role)>, ApiError> {
    Ok(
        carelog_store::clinical::memberships_of(&state.pool, auth.actor.user_id)
            .await?
            .into_iter()
            .map(|m| (m.org_id, m.role))
            .collect(),
    )
}

/// SUPER:ADMIN, APP:ADMIN and APP:AUDITOR read the whole trail.
fn platform_auditor(auth: &Authenticated) -> bool {
    [Role::SuperAdmin, Role::AppAdmin, Role::AppAuditor]
        .into_iter()
        .any(|r| auth.actor.has(r))
}

/// A read of the audit trail, as it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrailRead {
    action: Action,
    about: Uuid,
    success_recorded: bool,
}

impl TrailRead {
    /// A query about `about` (a resource, a user, a record).
    pub fn about(about: Uuid) -> Self {
        Self {
            action: Action::Read,
            about,
            success_recorded: true,
        }
    }

    /// A read of the trail as a whole (a search, a verification, the checkpoints).
    pub fn whole() -> Self {
        Self::about(Uuid::nil())
    }

    /// The export of the whole log.
    pub fn export() -> Self {
        Self {
            action: Action::Export,
            ..Self::whole()
        }
    }

    /// A page of the log's feed: only a refusal is recorded. Were each page recorded, a
    /// client paging the feed to its end would never reach it, each page adding an
    /// event after the last (the export of the same log is recorded).
    pub fn feed_page() -> Self {
        Self {
            success_recorded: false,
            ..Self::whole()
        }
    }
}

/// Records the decision `scope` (`None`: refused) on `read`, then answers it. `under`:
/// the caller's organisation roles the record names.
async fn recorded(
    state: &AppState,
    auth: &Authenticated,
    read: TrailRead,
    scope: Option<Option<Vec<Uuid>>>,
    under: Vec<(OrgId, Role)>,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    let access = |outcome| TrailAccess {
        action: read.action,
        about: read.about,
        outcome,
        under,
    };
    let Some(allowed) = scope else {
        let _ = audit_trail::record(
            &state.store,
            &auth.ctx,
            &auth.actor,
            access(Outcome::Denied),
        )
        .await;
        return Err(ApiError::Forbidden);
    };
    if read.success_recorded {
        audit_trail::record(
            &state.store,
            &auth.ctx,
            &auth.actor,
            access(Outcome::Success),
        )
        .await
        .map_err(|_| ApiError::Unavailable {
            details: serde_json::json!({ "checks": { "audit": "down" } }),
        })?;
    }
    Ok(allowed)
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
