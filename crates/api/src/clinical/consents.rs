//! `/api/consent/*`, `/api/organizations/:org_id/consents`, `/api/sessions/consents/*`
//! (API.md "Consent").
//!
//! What `GET /api/consent` shows: the caller's own consents — those on the charts linked
//! to their account (as patient) and those granted to or requested by them (as doctor),
//! newest first. An organisation's consents are listed under the organisation.

use axum::extract::State;
use carelog_commands::clinical::{ConsentDecision, PageQuery};
use carelog_domain::consent::ApproveConsent;
use carelog_domain::{ConsentId, OrgId, PatientId, SessionConsentId};
use uuid::Uuid;

use super::dto::{
    ApproveConsentBody, ConsentDto, EmptyBody, GrantConsentBody, GrantSessionConsentBody,
    RequestConsentBody, SessionConsentDto, SessionConsentQuery,
};
use super::gate::Caller;
use crate::envelope::{ApiResponse, Meta};
use crate::error::ApiError;
use crate::extract::{Command, Page, Path, Query};
use crate::openapi::{ErrorBody, ListBody, SuccessBody};
use crate::state::AppState;

fn page_query(page: &Page) -> PageQuery {
    PageQuery {
        offset: page.offset(),
        limit: i64::from(page.limit),
        min_position: None,
    }
}

/// The patient grants a consent on their chart (to an organisation or a doctor).
#[utoipa::path(post, path = "/api/consent/grant", tag = "consent",
    request_body = GrantConsentBody,
    responses((status = 201, body = SuccessBody<ConsentDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn grant_consent(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Command(body): Command<GrantConsentBody>,
) -> Result<ApiResponse<ConsentDto>, ApiError> {
    let consent = state
        .clinical
        .grant_consent(&ctx, &caller, body.into())
        .await?;
    let version = consent.version;
    Ok(ApiResponse::created(consent.into()).etag(version))
}

/// A doctor asks a patient for a consent (the caller is the grantee).
#[utoipa::path(post, path = "/api/consent/request", tag = "consent",
    request_body = RequestConsentBody,
    responses((status = 201, body = SuccessBody<ConsentDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn request_consent(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Command(body): Command<RequestConsentBody>,
) -> Result<ApiResponse<ConsentDto>, ApiError> {
    let consent = state
        .clinical
        .request_consent(&ctx, &caller, body.into())
        .await?;
    let version = consent.version;
    Ok(ApiResponse::created(consent.into()).etag(version))
}

async fn decide(
    state: &AppState,
    Caller { caller, ctx }: Caller,
    id: Uuid,
    decision: ConsentDecision,
) -> Result<ApiResponse<ConsentDto>, ApiError> {
    let consent = state
        .clinical
        .decide_consent(&ctx, &caller, ConsentId(id), decision)
        .await?;
    let version = consent.version;
    Ok(ApiResponse::ok(consent.into()).etag(version))
}

/// The patient approves a doctor's request (optionally until `expires_at`).
#[utoipa::path(post, path = "/api/consent/{id}/approve", tag = "consent",
    params(("id" = Uuid, Path)), request_body(content = Option<ApproveConsentBody>),
    responses((status = 200, body = SuccessBody<ConsentDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn approve_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    body: Option<Command<ApproveConsentBody>>,
) -> Result<ApiResponse<ConsentDto>, ApiError> {
    let input = ApproveConsent {
        expires_at: body.and_then(|Command(b)| b.expires_at),
    };
    decide(&state, caller, id, ConsentDecision::Approve(input)).await
}

/// The patient declines a doctor's request.
#[utoipa::path(post, path = "/api/consent/{id}/decline", tag = "consent",
    params(("id" = Uuid, Path)), request_body(content = Option<EmptyBody>),
    responses((status = 200, body = SuccessBody<ConsentDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn decline_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _body: Option<Command<EmptyBody>>,
) -> Result<ApiResponse<ConsentDto>, ApiError> {
    decide(&state, caller, id, ConsentDecision::Decline).await
}

/// The patient withdraws a consent: access stops on the very next request.
#[utoipa::path(post, path = "/api/consent/{id}/revoke", tag = "consent",
    params(("id" = Uuid, Path)), request_body(content = Option<EmptyBody>),
    responses((status = 200, body = SuccessBody<ConsentDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn revoke_consent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    _body: Option<Command<EmptyBody>>,
) -> Result<ApiResponse<ConsentDto>, ApiError> {
    decide(&state, caller, id, ConsentDecision::Revoke).await
}

/// The caller's own consents: on their charts (as patient), and granted to or requested
/// by them (as doctor); newest first.
#[utoipa::path(get, path = "/api/consent", tag = "consent",
    params(Page),
    responses((status = 200, body = ListBody<ConsentDto>), (status = 401, body = ErrorBody)))]
pub(super) async fn list_own_consents(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    page: Page,
) -> Result<ApiResponse<Vec<ConsentDto>>, ApiError> {
    let (consents, total) = state
        .clinical
        .own_consents(&ctx, &caller, page_query(&page))
        .await?;
    let items = consents.into_iter().map(Into::into).collect();
    Ok(ApiResponse::list(
        items,
        Meta::new(page, total.max(0) as u64),
    ))
}

/// The consents granted to the organisation and those on its patients (its ORG:ADMIN
/// and ORG:DOCTOR; platform admins).
#[utoipa::path(get, path = "/api/organizations/{org_id}/consents", tag = "consent",
    params(("org_id" = Uuid, Path), Page),
    responses((status = 200, body = ListBody<ConsentDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_org_consents(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
    page: Page,
) -> Result<ApiResponse<Vec<ConsentDto>>, ApiError> {
    let (consents, total) = state
        .clinical
        .org_consents(&ctx, &caller, OrgId(org_id), page_query(&page))
        .await?;
    let items = consents.into_iter().map(Into::into).collect();
    Ok(ApiResponse::list(
        items,
        Meta::new(page, total.max(0) as u64),
    ))
}

/// The patient consents to a clinical session being recorded, or to AI transcription.
#[utoipa::path(post, path = "/api/sessions/consents", tag = "consent",
    request_body = GrantSessionConsentBody,
    responses((status = 201, body = SuccessBody<SessionConsentDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn grant_session_consent(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Command(body): Command<GrantSessionConsentBody>,
) -> Result<ApiResponse<SessionConsentDto>, ApiError> {
    let consent = state
        .clinical
        .grant_session_consent(&ctx, &caller, body.into())
        .await?;
    let version = consent.version;
    Ok(ApiResponse::created(consent.into()).etag(version))
}

/// Session consents of `?patient_id=` (the patient; ORG:DOCTORs of their organisation;
/// doctors holding a consent on them), else of the caller's own charts; newest first.
#[utoipa::path(get, path = "/api/sessions/consents", tag = "consent",
    params(Page, SessionConsentQuery),
    responses((status = 200, body = ListBody<SessionConsentDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_session_consents(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    page: Page,
    Query(q): Query<SessionConsentQuery>,
) -> Result<ApiResponse<Vec<SessionConsentDto>>, ApiError> {
    let (consents, total) = state
        .clinical
        .session_consents(
            &ctx,
            &caller,
            q.patient_id.map(PatientId),
            page_query(&page),
        )
        .await?;
    let items = consents.into_iter().map(Into::into).collect();
    Ok(ApiResponse::list(
        items,
        Meta::new(page, total.max(0) as u64),
    ))
}

/// The patient withdraws a session consent (twice: 409).
#[utoipa::path(post, path = "/api/sessions/consents/{id}/revoke", tag = "consent",
    params(("id" = Uuid, Path)), request_body(content = Option<EmptyBody>),
    responses((status = 200, body = SuccessBody<SessionConsentDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn revoke_session_consent(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    _body: Option<Command<EmptyBody>>,
) -> Result<ApiResponse<SessionConsentDto>, ApiError> {
    let consent = state
        .clinical
        .revoke_session_consent(&ctx, &caller, SessionConsentId(id))
        .await?;
    let version = consent.version;
    Ok(ApiResponse::ok(consent.into()).etag(version))
}
