//! `/api/organizations/*`.

use axum::extract::State;
use carelog_domain::{OrgId, Role, UserId};
use uuid::Uuid;

use super::dto::{AddMemberBody, CreateOrgBody, MemberDto, OrgDto};
use super::gate::Caller;
use crate::envelope::ApiResponse;
use crate::error::ApiError;
use crate::extract::{Command, Path};
use crate::openapi::{ErrorBody, SuccessBody};
use crate::state::AppState;

/// Create an organisation (BASE:DOCTOR, APP:ADMIN, SUPER:ADMIN); the caller becomes its ORG:ADMIN.
#[utoipa::path(post, path = "/api/organizations", tag = "organizations", request_body = CreateOrgBody,
    responses((status = 201, body = SuccessBody<OrgDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn create_org(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Command(body): Command<CreateOrgBody>,
) -> Result<ApiResponse<OrgDto>, ApiError> {
    let org = state.clinical.create_org(&ctx, &caller, &body.name).await?;
    let version = org.version;
    Ok(ApiResponse::created(org.into()).etag(version))
}

/// An organisation (its members; SUPER:ADMIN and APP:ADMIN).
#[utoipa::path(get, path = "/api/organizations/{org_id}", tag = "organizations",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = SuccessBody<OrgDto>), (status = 404, body = ErrorBody)))]
pub(super) async fn get_org(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
) -> Result<ApiResponse<OrgDto>, ApiError> {
    let org = state.clinical.org(&ctx, &caller, OrgId(org_id)).await?;
    let version = org.version;
    Ok(ApiResponse::ok(org.into()).etag(version))
}

/// Add a member by email, or change their org role (the org's ORG:ADMIN).
#[utoipa::path(post, path = "/api/organizations/{org_id}/members", tag = "organizations",
    params(("org_id" = Uuid, Path)), request_body = AddMemberBody,
    responses((status = 201, body = SuccessBody<MemberDto>), (status = 200, description = "role changed", body = SuccessBody<MemberDto>),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn add_member(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
    Command(body): Command<AddMemberBody>,
) -> Result<ApiResponse<MemberDto>, ApiError> {
    let role: Role = body
        .role
        .parse()
        .ok()
        .filter(|r: &Role| {
            matches!(
                r,
                Role::OrgAdmin | Role::OrgDoctor | Role::OrgStaff | Role::OrgAuditor
            )
        })
        .ok_or_else(|| {
            ApiError::validation_fields(
                "role must be ORG:ADMIN, ORG:DOCTOR, ORG:STAFF or ORG:AUDITOR",
                ["role"],
            )
        })?;
    state
        .clinical
        .may_add_member(&ctx, &caller, OrgId(org_id))
        .await?;
    let user = state
        .identity
        .find_by_email(&body.email)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (member, new) = state
        .clinical
        .add_member(&ctx, &caller, OrgId(org_id), user, role)
        .await?;
    let dto = with_profile(&state, member.into()).await;
    Ok(if new {
        ApiResponse::created(dto)
    } else {
        ApiResponse::ok(dto)
    })
}

/// The members of an organisation (any member).
#[utoipa::path(get, path = "/api/organizations/{org_id}/members", tag = "organizations",
    params(("org_id" = Uuid, Path)),
    responses((status = 200, body = SuccessBody<Vec<MemberDto>>), (status = 404, body = ErrorBody)))]
pub(super) async fn list_members(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
) -> Result<ApiResponse<Vec<MemberDto>>, ApiError> {
    let members = state.clinical.members(&ctx, &caller, OrgId(org_id)).await?;
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        out.push(with_profile(&state, m.into()).await);
    }
    Ok(ApiResponse::ok(out))
}

/// Remove a member (the org's ORG:ADMIN); effective on their next request.
#[utoipa::path(delete, path = "/api/organizations/{org_id}/members/{user_id}", tag = "organizations",
    params(("org_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn remove_member(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path((org_id, user_id)): Path<(Uuid, Uuid)>,
) -> Result<ApiResponse<()>, ApiError> {
    state
        .clinical
        .remove_member(&ctx, &caller, OrgId(org_id), UserId(user_id))
        .await?;
    Ok(ApiResponse::no_content())
}

/// Adds the member's email and names (from their own stream) to a member entry.
async fn with_profile(state: &AppState, mut dto: MemberDto) -> MemberDto {
    if let Ok(user) = state.identity.user_view(UserId(dto.user_id)).await {
        dto.email = Some(user.email);
        dto.first_name = Some(user.first_name);
        dto.last_name = Some(user.last_name);
    }
    dto
}
