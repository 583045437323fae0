//! Audit entries from the `audit_feed` projection: by resource, by user, by clinical
//! record, and a filtered search. Paginated (`?page=&limit=`), in log order, scoped to
//! the caller ([`super::scope`]).

use axum::extract::State;
use axum::http::request::Parts;
use carelog_store::audit::{self, AuditFilter};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::AuditEntryDto;
use crate::auth::Authenticated;
use crate::envelope::{ApiResponse, Meta};
use crate::error::ApiError;
use crate::extract::{Page, Path};
use crate::openapi::{ErrorBody, ListBody};
use crate::state::AppState;

/// One page of the entries matching `filter`, scoped to the caller. The total is
/// counted up to [`audit::TOTAL_CAP`]: above it, `total` is the cap and `total_exact`
/// false.
async fn page_of(
    state: &AppState,
    auth: &Authenticated,
    mut filter: AuditFilter,
    about: Uuid,
    page: Page,
) -> Result<ApiResponse<Vec<AuditEntryDto>>, ApiError> {
    filter.orgs = super::scope(state, auth, super::TrailRead::about(about)).await?;
    let (total, entries) = audit::page(
        &state.pool,
        &filter,
        audit::TOTAL_CAP,
        i64::from(page.limit),
        page.offset(),
    )
    .await?;
    let items = entries.into_iter().map(AuditEntryDto::from).collect();
    let meta = Meta::counted(page, total.value.max(0) as u64, total.exact);
    Ok(ApiResponse::list(items, meta).no_store())
}

/// The entries about one resource (`resource_type`: patient, clinical_record, user,
/// organization, consent, dsr, ...).
#[utoipa::path(get, path = "/api/clinical/audit/resource/{resource_type}/{resource_id}", tag = "audit",
    security(("bearer" = [])), params(("resource_type" = String, Path), ("resource_id" = Uuid, Path), Page),
    responses((status = 200, body = ListBody<AuditEntryDto>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn by_resource(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((resource_type, resource_id)): Path<(String, Uuid)>,
    page: Page,
) -> Result<ApiResponse<Vec<AuditEntryDto>>, ApiError> {
    let resource_type = word(&resource_type, "resource_type")?;
    let filter = AuditFilter {
        resource_type: Some(resource_type),
        resource_id: Some(resource_id.to_string()),
        ..AuditFilter::default()
    };
    page_of(&state, &auth, filter, resource_id, page).await
}

/// What one user did.
#[utoipa::path(get, path = "/api/clinical/audit/user/{user_id}", tag = "audit",
    security(("bearer" = [])), params(("user_id" = Uuid, Path), Page),
    responses((status = 200, body = ListBody<AuditEntryDto>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn by_user(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(user_id): Path<Uuid>,
    page: Page,
) -> Result<ApiResponse<Vec<AuditEntryDto>>, ApiError> {
    let filter = AuditFilter {
        actor_id: Some(user_id),
        ..AuditFilter::default()
    };
    page_of(&state, &auth, filter, user_id, page).await
}

/// The entries about one clinical record (its creation, amendments, voiding, reads).
#[utoipa::path(get, path = "/api/clinical-records/{id}/audit", tag = "audit",
    security(("bearer" = [])), params(("id" = Uuid, Path), Page),
    responses((status = 200, body = ListBody<AuditEntryDto>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn by_record(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    page: Page,
) -> Result<ApiResponse<Vec<AuditEntryDto>>, ApiError> {
    let filter = AuditFilter {
        resource_type: Some("clinical_record".to_owned()),
        resource_id: Some(id.to_string()),
        ..AuditFilter::default()
    };
    page_of(&state, &auth, filter, id, page).await
}

/// The filters of a search; every one exact, all optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchParams {
    /// create, read, update, login, ...
    action: Option<String>,
    /// patient, clinical_record, user, ...
    resource_type: Option<String>,
    /// The resource's id (a UUID).
    resource_id: Option<String>,
    /// The actor.
    user_id: Option<String>,
    /// success, denied or failure.
    outcome: Option<String>,
    /// At or after (RFC 3339).
    from: Option<String>,
    /// At or before (RFC 3339).
    to: Option<String>,
    /// The page, from 1.
    #[param(ignore)]
    #[allow(dead_code)]
    page: Option<String>,
    /// Items per page.
    #[param(ignore)]
    #[allow(dead_code)]
    limit: Option<String>,
}

/// A lower-case word (a-z, 0-9, `_`; 1 to 64), else a 400 naming `field`.
fn word(value: &str, field: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::validation_fields(
            format!("{field} must be 1 to 64 characters of a-z, 0-9 and _"),
            [field],
        ))
    }
}

fn time(value: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::validation_fields(format!("{field} must be an RFC 3339 timestamp"), [field])
        })
}

fn uuid(value: &str, field: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value)
        .map_err(|_| ApiError::validation_fields(format!("{field} must be a UUID"), [field]))
}

impl SearchParams {
    fn parse(parts_query: &str) -> Result<AuditFilter, ApiError> {
        let p: SearchParams = crate::extract::Query::<SearchParams>::parse(parts_query)?;
        let outcome = match p.outcome.as_deref() {
            None => None,
            Some(o @ ("success" | "denied" | "failure")) => Some(o.to_owned()),
            Some(_) => {
                return Err(ApiError::validation_fields(
                    "outcome must be success, denied or failure",
                    ["outcome"],
                ))
            }
        };
        let filter = AuditFilter {
            action: p.action.as_deref().map(|a| word(a, "action")).transpose()?,
            resource_type: p
                .resource_type
                .as_deref()
                .map(|r| word(r, "resource_type"))
                .transpose()?,
            resource_id: p
                .resource_id
                .as_deref()
                .map(|r| uuid(r, "resource_id").map(|u| u.to_string()))
                .transpose()?,
            actor_id: p
                .user_id
                .as_deref()
                .map(|u| uuid(u, "user_id"))
                .transpose()?,
            outcome,
            from: p.from.as_deref().map(|t| time(t, "from")).transpose()?,
            to: p.to.as_deref().map(|t| time(t, "to")).transpose()?,
            orgs: None,
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            if from > to {
                return Err(ApiError::validation_fields(
                    "from must not be after to",
                    ["from", "to"],
                ));
            }
        }
        Ok(filter)
    }
}

/// The filter of a search request (`?action=&resource_type=&resource_id=&user_id=
/// &outcome=&from=&to=`, plus `page` and `limit`).
pub(super) struct Search(AuditFilter);

impl axum::extract::FromRequestParts<AppState> for Search {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        SearchParams::parse(parts.uri.query().unwrap_or("")).map(Search)
    }
}

/// Entries matching every given filter exactly, in log order.
#[utoipa::path(get, path = "/api/clinical/audit/search", tag = "audit",
    security(("bearer" = [])), params(SearchParams, Page),
    responses((status = 200, body = ListBody<AuditEntryDto>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn search(
    State(state): State<AppState>,
    auth: Authenticated,
    page: Page,
    Search(filter): Search,
) -> Result<ApiResponse<Vec<AuditEntryDto>>, ApiError> {
    page_of(&state, &auth, filter, Uuid::nil(), page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_field() {
        for (q, field) in [
            ("from=yesterday", "from"),
            ("to=2025-13-01", "to"),
            ("user_id=bob", "user_id"),
            ("outcome=maybe", "outcome"),
            ("action=DROP%20TABLE", "action"),
            ("resource_id=x", "resource_id"),
            ("colour=red", "colour"),
        ] {
            let Err(ApiError::Validation { details, .. }) = SearchParams::parse(q) else {
                panic!("{q} accepted");
            };
            assert_eq!(details["fields"][0], field, "{q}");
        }
    }

    #[test]
    fn good_values_become_the_filter() {
        let f = SearchParams::parse(
            "action=login&outcome=failure&from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00%2B01:00&page=2",
        )
        .expect("valid");
        assert_eq!(f.action.as_deref(), Some("login"));
        assert_eq!(f.outcome.as_deref(), Some("failure"));
        assert!(f.from.is_some() && f.to.is_some());
    }
}
