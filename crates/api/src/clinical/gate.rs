//! The gateway check of clinical routes: every route maps to one policy [`Action`], and
//! the [`Caller`] extractor refuses (403) a caller whose roles cannot perform that
//! action anywhere, before the handler runs. A route missing from the table fails
//! closed (500, logged), so a new route cannot skip the policy by accident.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use axum::http::request::Parts;
use axum::http::Method;
use carelog_commands::clinical::Caller as ClinicalCaller;
use carelog_commands::Ctx;
use carelog_domain::access::{route_allows, Action};
use carelog_domain::audit::ResourceType;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

/// Every clinical route and its action.
pub const ROUTES: &[(&str, &str, Action)] = &[
    ("POST", "/api/organizations", Action::CreateOrg),
    ("GET", "/api/organizations/{org_id}", Action::ReadOrg),
    (
        "POST",
        "/api/organizations/{org_id}/members",
        Action::AddMember,
    ),
    (
        "GET",
        "/api/organizations/{org_id}/members",
        Action::ListMembers,
    ),
    (
        "DELETE",
        "/api/organizations/{org_id}/members/{user_id}",
        Action::RemoveMember,
    ),
    (
        "POST",
        "/api/organizations/{org_id}/patients",
        Action::CreatePatient,
    ),
    (
        "GET",
        "/api/organizations/{org_id}/patients",
        Action::ListPatients,
    ),
    ("GET", "/api/patients/{id}", Action::ReadPatient),
    ("PATCH", "/api/patients/{id}", Action::UpdatePatient),
    (
        "GET",
        "/api/patients/{id}/history",
        Action::ReadPatientHistory,
    ),
    (
        "POST",
        "/api/patients/{id}/emergency-access",
        Action::EmergencyAccess,
    ),
    (
        "POST",
        "/api/patients/{id}/clinical-records",
        Action::CreateRecord,
    ),
    (
        "GET",
        "/api/patients/{id}/clinical-records",
        Action::ReadRecord,
    ),
    ("GET", "/api/clinical-records/{id}", Action::ReadRecord),
    ("PATCH", "/api/clinical-records/{id}", Action::AmendRecord),
    (
        "POST",
        "/api/clinical-records/{id}/void",
        Action::VoidRecord,
    ),
    (
        "GET",
        "/api/clinical-records/{id}/history",
        Action::ReadRecordHistory,
    ),
    ("POST", "/api/consent/grant", Action::GrantConsent),
    ("POST", "/api/consent/request", Action::RequestConsent),
    ("POST", "/api/consent/{id}/approve", Action::DecideConsent),
    ("POST", "/api/consent/{id}/decline", Action::DecideConsent),
    ("POST", "/api/consent/{id}/revoke", Action::RevokeConsent),
    ("GET", "/api/consent", Action::ListOwnConsents),
    (
        "GET",
        "/api/organizations/{org_id}/consents",
        Action::ListOrgConsents,
    ),
    (
        "POST",
        "/api/sessions/consents",
        Action::ManageSessionConsent,
    ),
    ("GET", "/api/sessions/consents", Action::ReadSessionConsents),
    (
        "POST",
        "/api/sessions/consents/{id}/revoke",
        Action::ManageSessionConsent,
    ),
    (
        "POST",
        "/api/patients/{id}/erasure-request",
        Action::RequestErasure,
    ),
    ("GET", "/api/patients/{id}/dsr", Action::ReadDsr),
    ("POST", "/api/dsr/{id}/approve", Action::DecideErasure),
    ("POST", "/api/dsr/{id}/reject", Action::DecideErasure),
    ("GET", "/api/patients/{id}/export", Action::Export),
    (
        "PUT",
        "/api/organizations/{org_id}/legal-hold",
        Action::ManageLegalHold,
    ),
    (
        "DELETE",
        "/api/organizations/{org_id}/legal-hold",
        Action::ManageLegalHold,
    ),
];

/// The action of a route, if it is in [`ROUTES`].
pub fn action_for(method: &Method, path: &str) -> Option<Action> {
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, a)| *a)
}

/// The resource a route names in its path (its first parameter), for the access event
/// of a refusal: `None` for routes without one (`POST /api/organizations`,
/// `POST /api/consent/request`) or with a parameter that is not a uuid.
async fn resource_of(
    template: &str,
    parts: &mut Parts,
    state: &AppState,
) -> Option<(ResourceType, Uuid)> {
    let kind = [
        ("/api/patients/{id}", ResourceType::Patient),
        ("/api/clinical-records/{id}", ResourceType::ClinicalRecord),
        ("/api/organizations/{org_id}", ResourceType::Organization),
        ("/api/consent/{id}", ResourceType::Consent),
        ("/api/dsr/{id}", ResourceType::Dsr),
    ]
    .into_iter()
    .find(|(prefix, _)| template.starts_with(prefix))
    .map(|(_, kind)| kind)?;
    let params = RawPathParams::from_request_parts(parts, state).await.ok()?;
    let (_, first) = params.iter().next()?;
    Some((kind, Uuid::parse_str(first).ok()?))
}

/// An authenticated caller that passed the gateway check of the route's action, with
/// their memberships read now.
pub struct Caller {
    /// Who, with roles and memberships.
    pub caller: ClinicalCaller,
    /// The command context (request id, client, endpoint, time).
    pub ctx: Ctx,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated { actor, ctx } = Authenticated::from_request_parts(parts, state).await?;
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let action = action_for(&parts.method, &path).ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "route {} {path} has no policy action",
                parts.method
            ))
        })?;
        let caller = state.clinical.caller(actor).await?;
        if !route_allows(&caller.principal, action) {
            // The refusal is an access event too, when the route names its resource.
            if let Some((kind, id)) = resource_of(&path, parts, state).await {
                state
                    .clinical
                    .record_route_denial(&ctx, &caller, action, kind, id)
                    .await;
            }
            return Err(ApiError::Forbidden);
        }
        Ok(Caller { caller, ctx })
    }
}
