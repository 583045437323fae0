//! Operations (API.md "Operations"): the dead-letter queue and the projections, for
//! SUPER:ADMIN and APP:ADMIN. Retry and discard are commands: each appends an event
//! naming who did it and, when given (`{"reason": "…"}`), why (in the same transaction as
//! the DLQ change), and publishes the DLQ notices on NATS when this process has NATS.

use axum::extract::State;
use carelog_domain::Role;
use carelog_projector::{dlq, DlqError};
use carelog_store::projector::DlqEntry;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::envelope::{ApiResponse, Meta};
use crate::error::ApiError;
use crate::extract::{Command, Page, Path};
use crate::openapi::{ErrorBody, ListBody, SuccessBody};
use crate::state::AppState;

/// The operations routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dlq))
        .routes(routes!(dlq_depth))
        .routes(routes!(retry))
        .routes(routes!(discard))
        .routes(routes!(projections))
}

/// The optional body of a retry or discard: why (at most 500 characters; recorded in the
/// audit event, never shown in the DLQ listing).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorReason {
    reason: Option<String>,
}

/// The operator of a retry or discard: the caller, why, and the process's notice
/// publisher.
fn operator<'a>(
    state: &'a AppState,
    auth: &Authenticated,
    body: Option<Command<OperatorReason>>,
) -> dlq::Operator<'a> {
    dlq::Operator {
        metadata: auth.ctx.metadata(Some(&auth.actor)),
        reason: body.and_then(|Command(b)| b.reason),
        notices: state.dlq_notices.as_ref(),
    }
}

/// One dead letter. Its `error` is the projection's own message: no PHI.
#[derive(Serialize, ToSchema)]
pub struct DlqEntryDto {
    id: Uuid,
    projection: String,
    stream_id: String,
    event_id: Uuid,
    position: i64,
    /// `failed` (could not be applied) or `waiting` (parked behind a failed one).
    status: String,
    /// Why it failed (null for a waiting entry).
    error: Option<String>,
    attempts: i32,
    first_failed_at: Option<DateTime<Utc>>,
    last_failed_at: Option<DateTime<Utc>>,
}

impl From<DlqEntry> for DlqEntryDto {
    fn from(e: DlqEntry) -> Self {
        Self {
            id: e.id,
            projection: e.projection,
            stream_id: e.stream_id,
            event_id: e.event_id.0,
            position: e.position.0,
            status: e.status.as_str().to_owned(),
            error: e.error,
            attempts: e.attempts,
            first_failed_at: e.first_failed_at,
            last_failed_at: e.last_failed_at,
        }
    }
}

/// The DLQ's size against its alert threshold.
#[derive(Serialize, ToSchema)]
pub struct DepthDto {
    depth: i64,
    threshold: i64,
    alert: bool,
}

/// What a retry or discard released.
#[derive(Serialize, ToSchema)]
pub struct ReleasedDto {
    /// Waiting events of the stream applied after it.
    applied: usize,
    /// A waiting event that failed in turn (now the stream's failed entry).
    failed: Option<Uuid>,
    /// The event recording who did it.
    audit_event_id: Uuid,
}

/// One projection's progress.
#[derive(Serialize, ToSchema)]
pub struct ProjectionDto {
    name: String,
    position: i64,
    lag_events: i64,
    lag_seconds: f64,
    /// `ok`, `behind` (lagging), or `blocked` (a failed DLQ entry holds a stream).
    status: &'static str,
}

/// Route-level check: platform administrators only.
fn require_admin(auth: &Authenticated) -> Result<(), ApiError> {
    if auth.actor.has(Role::SuperAdmin) || auth.actor.has(Role::AppAdmin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn dlq_error(e: DlqError) -> ApiError {
    match e {
        DlqError::NotFound => ApiError::NotFound,
        DlqError::WrongProjection(_) | DlqError::NotFailed => {
            ApiError::Conflict("only a failed entry can be retried or discarded".into())
        }
        DlqError::StillFailing(error) => {
            ApiError::Conflict(format!("the event still fails: {}", error.message()))
        }
        DlqError::EventMissing => ApiError::Conflict("the entry's event is not in the log".into()),
        DlqError::BadReason => ApiError::validation_fields(
            "reason must be at most 500 characters of text",
            Some("reason".to_owned()),
        ),
        other => ApiError::internal(other),
    }
}

/// Finds the entry and the projection it belongs to.
async fn entry_projection(
    state: &AppState,
    id: Uuid,
) -> Result<std::sync::Arc<dyn carelog_projector::Projection>, ApiError> {
    let entry = dlq::list(&state.pool, None)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or(ApiError::NotFound)?;
    carelog_projector::find(&entry.projection).ok_or_else(|| {
        ApiError::Conflict("the entry's projection is not part of this build".into())
    })
}

/// The dead letters, in position order.
#[utoipa::path(get, path = "/admin/dlq", tag = "operations", security(("bearer" = [])), params(Page),
    responses((status = 200, body = ListBody<DlqEntryDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_dlq(
    State(state): State<AppState>,
    auth: Authenticated,
    page: Page,
) -> Result<ApiResponse<Vec<DlqEntryDto>>, ApiError> {
    require_admin(&auth)?;
    let all = dlq::list(&state.pool, None).await?;
    let total = all.len() as u64;
    let items = all
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit as usize)
        .map(DlqEntryDto::from)
        .collect();
    Ok(ApiResponse::list(items, Meta::new(page, total)))
}

/// How many events are set aside, and whether that is above the alert threshold.
#[utoipa::path(get, path = "/admin/dlq/depth", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = SuccessBody<DepthDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn dlq_depth(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<ApiResponse<DepthDto>, ApiError> {
    require_admin(&auth)?;
    let depth = dlq::depth(&state.pool).await?;
    let threshold = state.config.dlq_alert_threshold;
    Ok(ApiResponse::ok(DepthDto {
        depth,
        threshold,
        alert: depth > threshold,
    }))
}

/// Re-apply a failed event, then the events of its stream waiting behind it.
#[utoipa::path(post, path = "/admin/dlq/{id}/retry", tag = "operations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "DLQ entry id")),
    request_body(content = Option<OperatorReason>, description = "optional: why"),
    responses((status = 200, body = SuccessBody<ReleasedDto>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "still failing, or not a failed entry", body = ErrorBody)))]
async fn retry(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    body: Option<Command<OperatorReason>>,
) -> Result<ApiResponse<ReleasedDto>, ApiError> {
    require_admin(&auth)?;
    let projection = entry_projection(&state, id).await?;
    let op = operator(&state, &auth, body);
    let released = dlq::retry(&state.pool, &state.store, projection.as_ref(), id, op)
        .await
        .map_err(dlq_error)?;
    Ok(ApiResponse::ok(ReleasedDto {
        applied: released.applied,
        failed: released.failed,
        audit_event_id: released.audit_event.0,
    }))
}

/// Drop a failed event from its projection (it stays in the log) and release its stream.
#[utoipa::path(delete, path = "/admin/dlq/{id}", tag = "operations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "DLQ entry id")),
    request_body(content = Option<OperatorReason>, description = "optional: why"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn discard(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    body: Option<Command<OperatorReason>>,
) -> Result<ApiResponse<()>, ApiError> {
    require_admin(&auth)?;
    let projection = entry_projection(&state, id).await?;
    let op = operator(&state, &auth, body);
    dlq::discard(&state.pool, &state.store, projection.as_ref(), id, op)
        .await
        .map_err(dlq_error)?;
    Ok(ApiResponse::no_content())
}

/// Every projection: checkpoint, lag in events and seconds, status.
#[utoipa::path(get, path = "/admin/projections", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = SuccessBody<Vec<ProjectionDto>>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn projections(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<ApiResponse<Vec<ProjectionDto>>, ApiError> {
    require_admin(&auth)?;
    let mut out = Vec::new();
    for p in carelog_projector::registry() {
        let s = carelog_store::projector_status::status(&state.pool, p.name()).await?;
        let status = if s.failed > 0 {
            "blocked"
        } else if s.lag_events > 0 {
            "behind"
        } else {
            "ok"
        };
        out.push(ProjectionDto {
            name: p.name().to_owned(),
            position: s.position,
            lag_events: s.lag_events,
            lag_seconds: s.lag_seconds,
            status,
        });
    }
    Ok(ApiResponse::ok(out))
}
