//! `/api/organizations/:org_id/patients`, `/api/patients/*`.

use axum::extract::State;
use carelog_commands::clinical::{NewPatient, PageQuery};
use carelog_domain::patient::{Demographics, DemographicsPatch};
use carelog_domain::{OrgId, PatientId, UserId};
use uuid::Uuid;

use super::dto::{
    CreatePatientBody, GrantDto, HistoryQuery, PatientDto, PatientHistoryDto, PatientListQuery,
    ReasonBody, UpdatePatientBody,
};
use super::gate::Caller;
use super::min_position;
use crate::envelope::{ApiResponse, Meta};
use crate::error::ApiError;
use crate::extract::{Command, IfMatch, Page, Path, Query};
use crate::openapi::{ErrorBody, ListBody, SuccessBody};
use crate::state::AppState;

/// Register a patient (ORG:ADMIN, ORG:DOCTOR, ORG:STAFF of the organisation).
#[utoipa::path(post, path = "/api/organizations/{org_id}/patients", tag = "patients",
    params(("org_id" = Uuid, Path)), request_body = CreatePatientBody,
    responses((status = 201, body = SuccessBody<PatientDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn create_patient(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
    Command(body): Command<CreatePatientBody>,
) -> Result<ApiResponse<PatientDto>, ApiError> {
    let new = NewPatient {
        demographics: Demographics {
            given_name: body.given_name,
            family_name: body.family_name,
            birth_date: body.birth_date,
            sex: body.sex,
            phone: body.phone,
            email: body.email,
            address: body.address,
            national_id: body.national_id,
        },
        user_id: body.user_id.map(UserId),
    };
    let patient = state
        .clinical
        .register_patient(&ctx, &caller, OrgId(org_id), new)
        .await?;
    let (version, id) = (patient.version, patient.patient_id);
    Ok(ApiResponse::created(patient.into())
        .etag(version)
        .location(format!("/api/patients/{id}")))
}

/// The organisation's patients, paginated (`?family_name=` exact match).
#[utoipa::path(get, path = "/api/organizations/{org_id}/patients", tag = "patients",
    params(("org_id" = Uuid, Path), Page, PatientListQuery),
    responses((status = 200, body = ListBody<PatientDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_patients(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
    page: Page,
    Query(q): Query<PatientListQuery>,
) -> Result<ApiResponse<Vec<PatientDto>>, ApiError> {
    let family = q
        .family_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let (patients, total) = state
        .clinical
        .list_patients(
            &ctx,
            &caller,
            OrgId(org_id),
            family,
            PageQuery {
                offset: page.offset(),
                limit: i64::from(page.limit),
                min_position: min_position(q.min_position)?,
            },
        )
        .await?;
    let items = patients.into_iter().map(Into::into).collect();
    Ok(ApiResponse::list(
        items,
        Meta::new(page, total.max(0) as u64),
    ))
}

/// A patient's demographics.
#[utoipa::path(get, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SuccessBody<PatientDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub(super) async fn get_patient(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<PatientDto>, ApiError> {
    let (patient, _grounds) = state.clinical.patient(&ctx, &caller, PatientId(id)).await?;
    let version = patient.version;
    Ok(ApiResponse::ok(patient.into()).etag(version))
}

/// Update demographics (`If-Match`: the version read; a stale one is a 409).
#[utoipa::path(patch, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the version read, e.g. \"3\"")),
    request_body = UpdatePatientBody,
    responses((status = 200, body = SuccessBody<PatientDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn update_patient(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Command(body): Command<UpdatePatientBody>,
) -> Result<ApiResponse<PatientDto>, ApiError> {
    let patch = DemographicsPatch {
        given_name: body.given_name,
        family_name: body.family_name,
        birth_date: body.birth_date,
        sex: body.sex,
        phone: body.phone,
        email: body.email,
        address: body.address,
        national_id: body.national_id,
        user_id: body.user_id.map(|u| u.map(UserId)),
    };
    let patient = state
        .clinical
        .update_patient(&ctx, &caller, PatientId(id), if_match, patch)
        .await?;
    let version = patient.version;
    Ok(ApiResponse::ok(patient.into()).etag(version))
}

/// The patient as of a time (`?as_of=`; clinicians get the state, auditors the events only).
#[utoipa::path(get, path = "/api/patients/{id}/history", tag = "patients",
    params(("id" = Uuid, Path), HistoryQuery),
    responses((status = 200, body = SuccessBody<PatientHistoryDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn patient_history(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<HistoryQuery>,
) -> Result<ApiResponse<PatientHistoryDto>, ApiError> {
    let history = state
        .clinical
        .patient_history(&ctx, &caller, PatientId(id), q.as_of)
        .await?;
    Ok(ApiResponse::ok(history.into()))
}

/// Break-glass: time-boxed access to a patient for the caller (ORG:DOCTOR, BASE:DOCTOR,
/// SUPER:ADMIN); `reason` required; audited.
#[utoipa::path(post, path = "/api/patients/{id}/emergency-access", tag = "patients",
    params(("id" = Uuid, Path)), request_body = ReasonBody,
    responses((status = 201, body = SuccessBody<GrantDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn emergency_access(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    Command(body): Command<ReasonBody>,
) -> Result<ApiResponse<GrantDto>, ApiError> {
    let grant = state
        .clinical
        .emergency_access(&ctx, &caller, PatientId(id), &body.reason)
        .await?;
    Ok(ApiResponse::created(grant.into()))
}
