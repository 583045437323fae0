//! Chain verification and signed checkpoints over HTTP (API.md "Audit";
//! docs/audit-checkpoints.md).
//!
//! - `GET /api/audit/verify?stream_id=`: recomputes the hash chain of one stream (or of the
//!   whole log) and checks the signed checkpoints — SUPER:ADMIN, APP:ADMIN, APP:AUDITOR.
//!   Organisation roles (ORG:ADMIN, ORG:AUDITOR) get 403: the log and its checkpoints span
//!   every organisation.
//! - `GET /api/audit/checkpoints`: the signed checkpoints, newest first (same roles).
//! - `POST /api/audit/checkpoints`: takes a checkpoint now — SUPER:ADMIN, APP:ADMIN.
//! - `GET /api/audit/checkpoints/key`: the checkpoint public key (PASERK `k4.public`),
//!   unauthenticated like `GET /api/auth/keys`: an auditor verifies with it alone.

use axum::extract::State;
use carelog_domain::{Role, StreamId};
use carelog_store::checkpoint::{self, Checkpoint, CheckpointKey, CheckpointReport};
use carelog_store::VerifyReport;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::envelope::ApiResponse;
use crate::error::ApiError;
use crate::extract::Query;
use crate::openapi::{ErrorBody, SuccessBody};
use crate::state::AppState;

/// The verification and checkpoint routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify))
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(checkpoint_key))
}

fn require_admin(auth: &Authenticated) -> Result<(), ApiError> {
    if auth.actor.has(Role::SuperAdmin) || auth.actor.has(Role::AppAdmin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

async fn signing_key(state: &AppState) -> Result<CheckpointKey, ApiError> {
    Ok(CheckpointKey::load(state.store.vault().keys()).await?)
}

/// `?stream_id=` of `GET /api/audit/verify` (default: the whole log).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Only this stream (e.g. `patient-<uuid>`); the checkpoints are checked either way.
    pub stream_id: Option<String>,
}

/// One failure: the first broken event of a stream, or (`stream_id` `"*"`) a signed
/// checkpoint that no longer matches the log or whose signature does not verify.
#[derive(Serialize, ToSchema)]
pub struct FailureDto {
    stream_id: String,
    position: i64,
    /// The event's version in its stream (0 for a checkpoint failure).
    version: i64,
    reason: String,
}

/// The signed checkpoints' part of a verification.
#[derive(Serialize, ToSchema)]
pub struct CheckpointCheckDto {
    ok: bool,
    /// How many checkpoints there are (each signature is checked).
    checkpoints: u64,
    /// The latest checkpoint, whose digest was recomputed from the log.
    latest_position: Option<i64>,
    /// The key the signatures were checked with (`k4.pid.…`).
    key_id: Option<String>,
}

impl From<CheckpointReport> for CheckpointCheckDto {
    fn from(r: CheckpointReport) -> Self {
        Self {
            ok: r.ok,
            checkpoints: r.checkpoints,
            latest_position: r.latest_position,
            key_id: r.key_id,
        }
    }
}

/// The outcome of a verification.
#[derive(Serialize, ToSchema)]
pub struct VerifyDto {
    ok: bool,
    /// Events whose chain link was checked.
    checked: u64,
    /// Streams checked.
    streams: u64,
    failures: Vec<FailureDto>,
    checkpoint: Option<CheckpointCheckDto>,
}

impl From<VerifyReport> for VerifyDto {
    fn from(r: VerifyReport) -> Self {
        Self {
            ok: r.ok,
            checked: r.checked,
            streams: r.streams,
            failures: r
                .failures
                .into_iter()
                .map(|f| FailureDto {
                    stream_id: f.stream_id,
                    position: f.position,
                    version: f.version,
                    reason: f.reason,
                })
                .collect(),
            checkpoint: r.checkpoint.map(CheckpointCheckDto::from),
        }
    }
}

/// A signed checkpoint (digest and signature in hex).
#[derive(Serialize, ToSchema)]
pub struct CheckpointDto {
    id: i64,
    /// The last log position covered.
    position: i64,
    /// SHA-256 of the stream heads as of `position` (docs/audit-checkpoints.md), hex.
    digest: String,
    /// Ed25519 over `carelog-checkpoint-v1 <position> <digest>`, hex.
    signature: String,
    /// PASERK id (`k4.pid.…`) of the public key that verifies it.
    key_id: String,
    created_at: DateTime<Utc>,
}

impl From<Checkpoint> for CheckpointDto {
    fn from(c: Checkpoint) -> Self {
        Self {
            id: c.id,
            position: c.position,
            digest: hex::encode(&c.digest),
            signature: hex::encode(&c.signature),
            key_id: c.key_id,
            created_at: c.created_at,
        }
    }
}

/// The checkpoint public key.
#[derive(Serialize, ToSchema)]
pub struct CheckpointKeyDto {
    /// Always `Ed25519`.
    algorithm: &'static str,
    /// PASERK id (`k4.pid.…`): the `key_id` of the checkpoints it verifies.
    key_id: String,
    /// PASERK `k4.public.…`: base64url (no padding) of the raw 32-byte public key.
    public_key: String,
    /// What is signed: `carelog-checkpoint-v1 <position> <hex digest>`.
    message_format: &'static str,
}

/// Recompute the hash chain of one stream (or of the whole log) and check the signed
/// checkpoints.
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit", security(("bearer" = [])), params(VerifyQuery),
    responses((status = 200, body = SuccessBody<VerifyDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn verify(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<VerifyQuery>,
) -> Result<ApiResponse<VerifyDto>, ApiError> {
    let stream = q
        .stream_id
        .map(|s| s.parse::<StreamId>())
        .transpose()
        .map_err(|_| {
            ApiError::validation_fields(
                "stream_id must be a stream id like patient-<uuid>",
                ["stream_id"],
            )
        })?;
    super::platform_only(&state, &auth, super::TrailRead::whole()).await?;
    let key = signing_key(&state).await?;
    let report =
        carelog_store::verify_log(&state.pool, stream.as_ref(), Some(key.verifier())).await?;
    Ok(ApiResponse::ok(report.into()))
}

/// The signed checkpoints, newest first.
#[utoipa::path(get, path = "/api/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = SuccessBody<Vec<CheckpointDto>>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_checkpoints(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<ApiResponse<Vec<CheckpointDto>>, ApiError> {
    super::platform_only(&state, &auth, super::TrailRead::whole()).await?;
    let all = checkpoint::list(&state.pool).await?;
    Ok(ApiResponse::ok(
        all.into_iter().map(CheckpointDto::from).collect(),
    ))
}

/// Take a signed checkpoint of the log now (at the last position no transaction in flight
/// can still write below).
#[utoipa::path(post, path = "/api/audit/checkpoints", tag = "audit", security(("bearer" = [])),
    responses((status = 201, body = SuccessBody<CheckpointDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_checkpoint(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<ApiResponse<CheckpointDto>, ApiError> {
    require_admin(&auth)?;
    let key = signing_key(&state).await?;
    let metadata = auth.ctx.metadata(Some(&auth.actor));
    let taken = carelog_commands::audit_checkpoint::take(&state.store, &key, metadata).await?;
    Ok(ApiResponse::created(taken.into()))
}

/// The public key that verifies the checkpoints' signatures.
#[utoipa::path(get, path = "/api/audit/checkpoints/key", tag = "audit",
    responses((status = 200, body = SuccessBody<CheckpointKeyDto>)))]
async fn checkpoint_key(
    State(state): State<AppState>,
) -> Result<ApiResponse<CheckpointKeyDto>, ApiError> {
    let key = signing_key(&state).await?;
    let v = key.verifier();
    Ok(ApiResponse::ok(CheckpointKeyDto {
        algorithm: "Ed25519",
        key_id: v.key_id().to_owned(),
        public_key: v.public_paserk().to_owned(),
        message_format: "carelog-checkpoint-v1 <position> <hex digest>",
    }))
}
