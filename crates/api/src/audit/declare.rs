//! `POST /api/clinical/audit`: a client declares an action the server did not see (a
//! chart printed, say); it is recorded as a `ClientAuditDeclared` event, the single
//! event of a fresh `access-<uuid>` stream, sealed under the `system` subject. Its
//! `metadata` is bounded and may not hold personal data
//! ([`carelog_domain::audit_client`]). The actor is the caller; any authenticated user may
//! declare (it only adds to the log, under their name).

use axum::extract::State;
use carelog_domain::audit_client::{ClientAudit, ClientAuditInput};
use carelog_domain::EventId;
use carelog_store::{AppendRequest, Expected};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::envelope::ApiResponse;
use crate::error::ApiError;
use crate::extract::Command;
use crate::openapi::{ErrorBody, SuccessBody};
use crate::state::AppState;

/// A declaration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareBody {
    /// patient, clinical_record, organization, consent, dsr, user or session_consent.
    resource_type: String,
    /// The resource's id (UUID).
    resource_id: String,
    /// What was done, e.g. `printed` (a-z, 0-9, `_`; at most 32).
    action: String,
    /// Context: at most 16 keys of short strings (≤ 4 KB); no personal data (keys such as
    /// `name`, `email`, `note` are refused).
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// The recorded declaration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Declared {
    /// The event id (the entry's id in the audit queries).
    id: Uuid,
    /// Its place in the log.
    position: i64,
    /// Its stream (`access-<uuid>`).
    stream_id: String,
    action: String,
    resource_type: String,
    resource_id: Uuid,
}

/// Record a client-declared audit entry.
#[utoipa::path(post, path = "/api/clinical/audit", tag = "audit", security(("bearer" = [])),
    request_body = DeclareBody,
    responses((status = 201, body = SuccessBody<Declared>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody)))]
pub(super) async fn declare(
    State(state): State<AppState>,
    auth: Authenticated,
    Command(body): Command<DeclareBody>,
) -> Result<ApiResponse<Declared>, ApiError> {
    let audit = ClientAuditInput {
        resource_type: body.resource_type,
        resource_id: body.resource_id,
        action: body.action,
        metadata: body.metadata,
    }
    .validate()
    .map_err(|e| ApiError::validation_fields(e.to_string(), [e.field]))?;
    let stream = ClientAudit::stream(Uuid::now_v7());
    let event_id = EventId::new_v7();
    let answer = Declared {
        id: event_id.0,
        position: 0,
        stream_id: stream.to_string(),
        action: audit.action.clone(),
        resource_type: audit.resource_type.clone(),
        resource_id: audit.resource_id,
    };
    let metadata = auth.ctx.metadata(Some(&auth.actor));
    let event = audit.into_new_event(event_id, &auth.ctx.command, metadata);
    let appended = state
        .store
        .append(AppendRequest {
            stream,
            expected: Expected::Exact(carelog_domain::StreamVersion::EMPTY),
            events: vec![event],
        })
        .await?;
    let position = appended.positions.first().map_or(0, |p| p.0);
    Ok(ApiResponse::created(Declared { position, ..answer }))
}
