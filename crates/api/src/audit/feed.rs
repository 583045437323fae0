//! The log itself, in order, from the event store (not the read model):
//! `GET /api/audit/events?after=&limit=` (a page) and `GET /api/audit/export` (all of it,
//! NDJSON, streamed page by page — never built in memory). Both read the log gap-safe
//! ([`carelog_store::read::all`]): an event not returned yet can never appear behind a
//! cursor already handed out. Entries carry metadata, the derived action/resource and the
//! chain hashes — never a payload. The only payloads opened are those sealed under the
//! `system` subject (access records), to name their action; nothing of them is returned
//! but that.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carelog_domain::Position;
use carelog_store::{Opened, StoredEvent};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AuditEntryDto;
use crate::auth::Authenticated;
use crate::envelope::ApiResponse;
use crate::error::ApiError;
use crate::extract::Query;
use crate::openapi::{ErrorBody, SuccessBody};
use crate::state::AppState;

/// The events read from the store per page of the export.
const EXPORT_PAGE: i64 = 1000;
/// The largest `limit` of `GET /api/audit/events`.
const MAX_LIMIT: i64 = 1000;
/// The default `limit`.
const DEFAULT_LIMIT: i64 = 100;

/// One event of the log as an audit feed entry: the audit entry, plus its stream
/// version and chain hashes (hex).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedEntryDto {
    /// The audit entry (its `stream_id` included).
    #[serde(flatten)]
    pub entry: AuditEntryDto,
    /// The stream.
    pub stream_id: String,
    /// The event's version in its stream.
    pub version: i64,
    /// SHA-256 chain hash of the event (hex).
    pub hash: String,
    /// The chain hash of the stream's previous event (hex).
    pub prev_hash: String,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The feed entry of `event`; only an access record sealed under `system` is opened.
async fn entry(state: &AppState, event: &StoredEvent) -> Result<FeedEntryDto, ApiError> {
    let h = &event.header;
    let opened = if carelog_projector::audit_feed::reads_payload(event) {
        state.store.vault().open(event).await?
    } else {
        Opened::Unread
    };
    let row = carelog_projector::audit_feed::row(event, &opened);
    Ok(FeedEntryDto {
        stream_id: row.stream_id.clone(),
        version: h.version.0,
        hash: hex(&event.hash),
        prev_hash: hex(&event.prev_hash),
        entry: AuditEntryDto::from(carelog_store::audit::AuditEntry::from(row)),
    })
}

/// Whether `event` is within `orgs` (`None`: everything).
fn visible(event: &StoredEvent, orgs: Option<&[Uuid]>) -> bool {
    orgs.is_none_or(|orgs| {
        event
            .header
            .metadata
            .org_id
            .is_some_and(|o| orgs.contains(&o))
    })
}

/// `?after=&limit=` of the feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct FeedParams {
    /// The position to read after (0: from the start).
    after: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// A page of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    /// The events, in position order, none missing.
    pub events: Vec<FeedEntryDto>,
    /// The `after` of the next page (the last position read).
    pub next_after: i64,
}

/// The log after `after`, in position order with no gaps: metadata and hashes, never
/// payloads. ORG:ADMIN and ORG:AUDITOR see the events of their organisations only.
#[utoipa::path(get, path = "/api/audit/events", tag = "audit", security(("bearer" = [])),
    params(FeedParams),
    responses((status = 200, body = SuccessBody<FeedPage>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn events(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(params): Query<FeedParams>,
) -> Result<ApiResponse<FeedPage>, ApiError> {
    let after = match params.after.as_deref() {
        None => 0,
        Some(a) => a.parse::<i64>().ok().filter(|a| *a >= 0).ok_or_else(|| {
            ApiError::validation_fields("after must be a position (0 or more)", ["after"])
        })?,
    };
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::validation_fields("limit must be between 1 and 1000", ["limit"])
            })?,
    };
    let orgs = super::scope(&state, &auth, super::TrailRead::feed_page()).await?;
    let page = carelog_store::read::all(&state.pool, Position(after), limit).await?;
    let next_after = page.last().map_or(after, |e| e.position.0);
    let mut events = Vec::with_capacity(page.len());
    for event in page.iter().filter(|e| visible(e, orgs.as_deref())) {
        events.push(entry(&state, event).await?);
    }
    Ok(ApiResponse::ok(FeedPage { events, next_after }).no_store())
}

/// The whole log (ORG:ADMIN, ORG:AUDITOR: their organisations' events) as NDJSON, one
/// feed entry per line, in position order, streamed page by page.
#[utoipa::path(get, path = "/api/audit/export", tag = "audit", security(("bearer" = [])),
    responses((status = 200, content_type = "application/x-ndjson", body = FeedEntryDto),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn export(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    let orgs = super::scope(&state, &auth, super::TrailRead::export()).await?;
    struct Cursor {
        state: AppState,
        orgs: Option<Vec<Uuid>>,
        after: i64,
        done: bool,
    }
    let start = Cursor {
        state,
        orgs,
        after: 0,
        done: false,
    };
    let stream = futures::stream::unfold(start, |mut c| async move {
        if c.done {
            return None;
        }
        let page =
            match carelog_store::read::all(&c.state.pool, Position(c.after), EXPORT_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "audit export: reading the log failed");
                    c.done = true;
                    return Some((Err(std::io::Error::other("reading the log failed")), c));
                }
            };
        if page.is_empty() {
            return None;
        }
        c.done = (page.len() as i64) < EXPORT_PAGE;
        c.after = page.last().map_or(c.after, |e| e.position.0);
        let mut chunk = Vec::with_capacity(page.len() * 512);
        for event in page.iter().filter(|e| visible(e, c.orgs.as_deref())) {
            let line = match entry(&c.state, event).await {
                Ok(entry) => serde_json::to_vec(&entry).map_err(std::io::Error::other),
                Err(_) => Err(std::io::Error::other("opening an access record failed")),
            };
            match line {
                Ok(line) => {
                    chunk.extend_from_slice(&line);
                    chunk.push(b'\n');
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit export: an entry failed");
                    c.done = true;
                    return Some((Err(e), c));
                }
            }
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), c))
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"carelog-audit.ndjson\""),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_lower_case_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
