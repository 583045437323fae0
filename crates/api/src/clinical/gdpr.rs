//! GDPR (API.md "GDPR"): `/api/patients/:id/erasure-request`, `/api/patients/:id/dsr`,
//! `/api/dsr/:id/approve|reject`, `/api/patients/:id/export`, and the legal holds of
//! `/api/organizations/:org_id/legal-hold`.
//!
//! The JSON export answers in the envelope (`data` is the export); `?format=fhir`
//! answers the FHIR R4 `Bundle` itself, as `application/fhir+json`. Both carry
//! `Cache-Control: no-store`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carelog_commands::clinical::{DsrView, LegalHoldView};
use carelog_domain::dsr::ErasureRequest;
use carelog_domain::export::{to_fhir, ExportFormat};
use carelog_domain::{DsrId, OrgId, PatientId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::dto::ReasonBody;
use super::gate::Caller;
use crate::envelope::ApiResponse;
use crate::error::ApiError;
use crate::extract::{Command, Path, Query};
use crate::openapi::{ErrorBody, SuccessBody};
use crate::state::AppState;

/// `POST /api/patients/:id/erasure-request`. Both fields are read even when absent, so
/// that the validation names the missing one (400 `confirm` when it is not `true`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequestBody {
    /// Why (free text; kept sealed under the patient's key, erased with them).
    #[serde(default)]
    pub reason: String,
    /// Must be `true`: erasure cannot be undone.
    #[serde(default)]
    pub confirm: bool,
}

/// A data-subject request.
#[derive(Serialize, ToSchema)]
pub struct DsrDto {
    pub id: Uuid,
    pub stream_id: String,
    pub patient_id: Uuid,
    /// `erasure` or `export`.
    pub kind: String,
    /// `pending`, `approved`, `completed` or `rejected`.
    pub status: String,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The request stream's version (also the `ETag`).
    pub version: i64,
    /// The position of its last event.
    pub position: i64,
}

impl From<DsrView> for DsrDto {
    fn from(v: DsrView) -> Self {
        Self {
            id: v.dsr_id.0,
            stream_id: v.dsr_id.stream().to_string(),
            patient_id: v.patient_id.0,
            kind: v.kind.to_owned(),
            status: v.status.as_str().to_owned(),
            requested_by: v.requested_by.0,
            requested_at: v.requested_at,
            decided_by: v.decided_by.map(|u| u.0),
            decided_at: v.decided_at,
            completed_at: v.completed_at,
            version: v.version.0,
            position: v.position.0,
        }
    }
}

/// A legal hold on an organisation.
#[derive(Serialize, ToSchema)]
pub struct LegalHoldDto {
    pub org_id: Uuid,
    /// The administrator's case reference.
    pub reason: String,
    pub placed_by: Uuid,
    pub placed_at: DateTime<Utc>,
    /// The organisation stream's version.
    pub version: i64,
}

impl From<LegalHoldView> for LegalHoldDto {
    fn from(v: LegalHoldView) -> Self {
        Self {
            org_id: v.org_id.0,
            reason: v.reason,
            placed_by: v.placed_by.0,
            placed_at: v.placed_at,
            version: v.version.0,
        }
    }
}

/// `?format=json` (default) or `?format=fhir`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (the export in the envelope) or `fhir` (a FHIR R4 Bundle).
    pub format: Option<String>,
}

/// Request the erasure of a patient (the patient, or an ORG:ADMIN of their organisation);
/// `confirm` must be `true`. 202: a platform administrator decides.
#[utoipa::path(post, path = "/api/patients/{id}/erasure-request", tag = "gdpr",
    params(("id" = Uuid, Path)), request_body = ErasureRequestBody,
    responses((status = 202, body = SuccessBody<DsrDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub(super) async fn request_erasure(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    Command(body): Command<ErasureRequestBody>,
) -> Result<ApiResponse<DsrDto>, ApiError> {
    let input = ErasureRequest {
        reason: body.reason,
        confirm: body.confirm,
    };
    let dsr = state
        .clinical
        .request_erasure(&ctx, &caller, PatientId(id), &input)
        .await?;
    let version = dsr.version;
    Ok(ApiResponse::accepted(dsr.into()).etag(version))
}

/// A patient's data-subject requests, oldest first (the patient, an ORG:ADMIN of their
/// organisation, platform admins; answered after the erasure too).
#[utoipa::path(get, path = "/api/patients/{id}/dsr", tag = "gdpr",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SuccessBody<Vec<DsrDto>>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_dsrs(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<Vec<DsrDto>>, ApiError> {
    let dsrs = state
        .clinical
        .list_dsrs(&ctx, &caller, PatientId(id))
        .await?;
    Ok(ApiResponse::ok(dsrs.into_iter().map(Into::into).collect()))
}

/// Approve a pending erasure (SUPER:ADMIN, APP:ADMIN) and execute it: the patient's key
/// is destroyed, read models purged, the patient answers 410 from then on. 200 with the
/// request `completed`; 409 under a legal hold (with its reason) or in another state.
#[utoipa::path(post, path = "/api/dsr/{id}/approve", tag = "gdpr",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SuccessBody<DsrDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn approve_erasure(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<DsrDto>, ApiError> {
    let dsr = state
        .clinical
        .approve_erasure(&ctx, &caller, DsrId(id))
        .await?;
    let version = dsr.version;
    Ok(ApiResponse::ok(dsr.into()).etag(version))
}

/// Reject a pending erasure, with a reason (SUPER:ADMIN, APP:ADMIN).
#[utoipa::path(post, path = "/api/dsr/{id}/reject", tag = "gdpr",
    params(("id" = Uuid, Path)), request_body = ReasonBody,
    responses((status = 200, body = SuccessBody<DsrDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn reject_erasure(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    Command(body): Command<ReasonBody>,
) -> Result<ApiResponse<DsrDto>, ApiError> {
    let dsr = state
        .clinical
        .reject_erasure(&ctx, &caller, DsrId(id), &body.reason)
        .await?;
    let version = dsr.version;
    Ok(ApiResponse::ok(dsr.into()).etag(version))
}

/// Everything held on a patient (the patient, an ORG:ADMIN of their organisation):
/// demographics, every record with every version, consents, session consents, DSRs.
/// `?format=fhir`: a FHIR R4 Bundle (`application/fhir+json`). Audited.
#[utoipa::path(get, path = "/api/patients/{id}/export", tag = "gdpr",
    params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, description = "the export (JSON in the envelope, or a FHIR R4 Bundle)", body = SuccessBody<serde_json::Value>),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub(super) async fn export_patient(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => ExportFormat::Json,
        Some("fhir") => ExportFormat::Fhir,
        Some(_) => {
            return Err(ApiError::validation_fields(
                "format must be json or fhir",
                ["format"],
            ))
        }
    };
    let bundle = state
        .clinical
        .export_patient(&ctx, &caller, PatientId(id), format)
        .await?;
    match format {
        ExportFormat::Json => Ok(ApiResponse::ok(bundle).no_store().into_response()),
        ExportFormat::Fhir => {
            let bytes = serde_json::to_vec(&to_fhir(&bundle)).map_err(ApiError::internal)?;
            Ok((
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/fhir+json"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                bytes,
            )
                .into_response())
        }
    }
}

/// Place a legal hold on an organisation, or replace its reason (SUPER:ADMIN,
/// APP:ADMIN): no erasure of its patients is approved while it is in place.
#[utoipa::path(put, path = "/api/organizations/{org_id}/legal-hold", tag = "gdpr",
    params(("org_id" = Uuid, Path)), request_body = ReasonBody,
    responses((status = 200, body = SuccessBody<LegalHoldDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn place_legal_hold(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
    Command(body): Command<ReasonBody>,
) -> Result<ApiResponse<LegalHoldDto>, ApiError> {
    let hold = state
        .clinical
        .place_legal_hold(&ctx, &caller, OrgId(org_id), &body.reason)
        .await?;
    Ok(ApiResponse::ok(hold.into()))
}

/// Lift the legal hold on an organisation (SUPER:ADMIN, APP:ADMIN); 404 if none.
#[utoipa::path(delete, path = "/api/organizations/{org_id}/legal-hold", tag = "gdpr",
    params(("org_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn lift_legal_hold(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(org_id): Path<Uuid>,
) -> Result<ApiResponse<()>, ApiError> {
    state
        .clinical
        .lift_legal_hold(&ctx, &caller, OrgId(org_id))
        .await?;
    Ok(ApiResponse::no_content())
}
