//! `/api/patients/:id/clinical-records`, `/api/clinical-records/*`.

use axum::extract::State;
use carelog_commands::clinical::{PageQuery, RecordPatch};
use carelog_domain::record::RecordContent;
use carelog_domain::{PatientId, RecordId};
use uuid::Uuid;

use super::dto::{
    AmendRecordBody, CreateRecordBody, MinPositionQuery, ReasonBody, RecordDto, RecordHistoryDto,
};
use super::gate::Caller;
use super::min_position;
use crate::envelope::{ApiResponse, Meta};
use crate::error::ApiError;
use crate::extract::{Command, IfMatch, Page, Path, Query};
use crate::openapi::{ErrorBody, ListBody, SuccessBody};
use crate::state::AppState;

/// Write a clinical record (ORG:DOCTOR of the patient's organisation; a doctor with consent).
#[utoipa::path(post, path = "/api/patients/{id}/clinical-records", tag = "clinical-records",
    params(("id" = Uuid, Path)), request_body = CreateRecordBody,
    responses((status = 201, body = SuccessBody<RecordDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn create_record(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    Command(body): Command<CreateRecordBody>,
) -> Result<ApiResponse<RecordDto>, ApiError> {
    let content = RecordContent {
        code: body.code,
        title: body.title,
        body: body.body,
        data: body.data,
        recorded_at: body.recorded_at,
    };
    let record = state
        .clinical
        .create_record(&ctx, &caller, PatientId(id), body.kind, content)
        .await?;
    let (version, rid) = (record.version, record.record_id);
    Ok(ApiResponse::created(record.into())
        .etag(version)
        .location(format!("/api/clinical-records/{rid}")))
}

/// The patient's clinical records (voided ones excluded), newest first.
#[utoipa::path(get, path = "/api/patients/{id}/clinical-records", tag = "clinical-records",
    params(("id" = Uuid, Path), Page, MinPositionQuery),
    responses((status = 200, body = ListBody<RecordDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_records(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    page: Page,
    Query(q): Query<MinPositionQuery>,
) -> Result<ApiResponse<Vec<RecordDto>>, ApiError> {
    let (records, total, _grounds) = state
        .clinical
        .list_records(
            &ctx,
            &caller,
            PatientId(id),
            PageQuery {
                offset: page.offset(),
                limit: i64::from(page.limit),
                min_position: min_position(q.min_position)?,
            },
        )
        .await?;
    let items = records.into_iter().map(Into::into).collect();
    Ok(ApiResponse::list(
        items,
        Meta::new(page, total.max(0) as u64),
    ))
}

/// A clinical record (its current version).
#[utoipa::path(get, path = "/api/clinical-records/{id}", tag = "clinical-records",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SuccessBody<RecordDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get_record(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<RecordDto>, ApiError> {
    let (record, _grounds) = state.clinical.record(&ctx, &caller, RecordId(id)).await?;
    let version = record.version;
    Ok(ApiResponse::ok(record.into()).etag(version))
}

/// Amend a record: a new version (`If-Match`); every earlier version is kept.
#[utoipa::path(patch, path = "/api/clinical-records/{id}", tag = "clinical-records",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the version read, e.g. \"1\"")),
    request_body = AmendRecordBody,
    responses((status = 200, body = SuccessBody<RecordDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn amend_record(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    IfMatch(if_match): IfMatch,
    Command(body): Command<AmendRecordBody>,
) -> Result<ApiResponse<RecordDto>, ApiError> {
    let patch = RecordPatch {
        code: body.code,
        title: body.title,
        body: body.body,
        data: body.data,
        recorded_at: body.recorded_at,
    };
    let record = state
        .clinical
        .amend_record(&ctx, &caller, RecordId(id), if_match, patch)
        .await?;
    let version = record.version;
    Ok(ApiResponse::ok(record.into()).etag(version))
}

/// Void a record (entered in error; `reason` required): hidden from lists, kept in history.
#[utoipa::path(post, path = "/api/clinical-records/{id}/void", tag = "clinical-records",
    params(("id" = Uuid, Path)), request_body = ReasonBody,
    responses((status = 200, body = SuccessBody<RecordDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn void_record(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
    Command(body): Command<ReasonBody>,
) -> Result<ApiResponse<RecordDto>, ApiError> {
    let record = state
        .clinical
        .void_record(&ctx, &caller, RecordId(id), &body.reason)
        .await?;
    let version = record.version;
    Ok(ApiResponse::ok(record.into()).etag(version))
}

/// Every version of a record (auditors: without content).
#[utoipa::path(get, path = "/api/clinical-records/{id}/history", tag = "clinical-records",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SuccessBody<RecordHistoryDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn record_history(
    State(state): State<AppState>,
    Caller { caller, ctx }: Caller,
    Path(id): Path<Uuid>,
) -> Result<ApiResponse<RecordHistoryDto>, ApiError> {
    let history = state
        .clinical
        .record_history(&ctx, &caller, RecordId(id))
        .await?;
    Ok(ApiResponse::ok(history.into()))
}
