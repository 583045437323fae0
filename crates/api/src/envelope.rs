//! The success envelope: `{"success": true, "data": …}` (lists add `"meta"`).
//!
//! Handlers return `Result<ApiResponse<T>, ApiError>`:
//!
//! ```ignore
//! Ok(ApiResponse::created(patient).etag(version))     // 201, ETag: "<version>"
//! Ok(ApiResponse::list(items, Meta::new(page, total))) // 200 with meta
//! Ok(ApiResponse::no_content())                        // 204, no body
//! ```

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carelog_domain::StreamVersion;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::Page;

/// Pagination facts of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Meta {
    /// The page returned (from 1).
    pub page: u32,
    /// The page size asked for.
    pub limit: u32,
    /// How many items there are in all; where `total_exact` is false, a lower bound
    /// (the count stopped there).
    pub total: u64,
    /// Set by lists that cap their count (the audit entries): whether `total` is the
    /// exact number of items (false: there are more than `total`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_exact: Option<bool>,
}

impl Meta {
    /// The meta of `page` of a list of `total` items.
    pub fn new(page: Page, total: u64) -> Self {
        Self {
            page: page.page,
            limit: page.limit,
            total,
            total_exact: None,
        }
    }

    /// The meta of `page` of a list whose count stopped at `total` unless `exact`.
    pub fn counted(page: Page, total: u64, exact: bool) -> Self {
        Self {
            total_exact: Some(exact),
            ..Self::new(page, total)
        }
    }
}

#[derive(Serialize)]
struct Body<'a, T> {
    success: bool,
    data: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a Meta>,
}

/// A successful answer: status, `data`, optional `meta`, `ETag` and cache headers.
#[derive(Debug, Clone)]
#[must_use = "an ApiResponse does nothing unless returned"]
pub struct ApiResponse<T> {
    status: StatusCode,
    data: Option<T>,
    meta: Option<Meta>,
    etag: Option<StreamVersion>,
    location: Option<String>,
    no_store: bool,
}

impl<T: Serialize> ApiResponse<T> {
    fn with_status(status: StatusCode, data: T) -> Self {
        Self {
            status,
            data: Some(data),
            meta: None,
            etag: None,
            location: None,
            no_store: false,
        }
    }

    /// 200 with `data`.
    pub fn ok(data: T) -> Self {
        Self::with_status(StatusCode::OK, data)
    }

    /// 201 with the new resource as `data`.
    pub fn created(data: T) -> Self {
        Self::with_status(StatusCode::CREATED, data)
    }

    /// 202: accepted, work continues after the answer.
    pub fn accepted(data: T) -> Self {
        Self::with_status(StatusCode::ACCEPTED, data)
    }

    /// 200 with a page of items and its [`Meta`].
    pub fn list(data: T, meta: Meta) -> Self {
        Self {
            meta: Some(meta),
            ..Self::with_status(StatusCode::OK, data)
        }
    }

    /// Sets `ETag: "<version>"` (the stream version of a single resource).
    pub fn etag(mut self, version: StreamVersion) -> Self {
        self.etag = Some(version);
        self
    }

    /// Sets `Location` (e.g. of a created resource).
    pub fn location(mut self, uri: impl Into<String>) -> Self {
        self.location = Some(uri.into());
        self
    }

    /// Sets `Cache-Control: no-store` (already the default under `/api`, see
    /// [`crate::middleware::security_headers`]).
    pub fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }
}

impl ApiResponse<()> {
    /// 204, no body (DELETE, logout).
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            data: None,
            meta: None,
            etag: None,
            location: None,
            no_store: false,
        }
    }
}

/// The `ETag` value of a stream version: `"<n>"`.
pub fn etag_value(version: StreamVersion) -> HeaderValue {
    HeaderValue::try_from(format!("\"{}\"", version.0)).expect("digits are a valid header value")
}

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        let mut response = match &self.data {
            None => self.status.into_response(),
            Some(data) => {
                let body = Body {
                    success: true,
                    data,
                    meta: self.meta.as_ref(),
                };
                match serde_json::to_vec(&body) {
                    Ok(bytes) => (
                        self.status,
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        bytes,
                    )
                        .into_response(),
                    Err(e) => return ApiError::internal(e).into_response(),
                }
            }
        };
        let headers = response.headers_mut();
        if let Some(version) = self.etag {
            headers.insert(header::ETAG, etag_value(version));
        }
        if let Some(location) = self.location {
            match HeaderValue::try_from(location) {
                Ok(v) => {
                    headers.insert(header::LOCATION, v);
                }
                Err(e) => return ApiError::internal(e).into_response(),
            }
        }
        if self.no_store {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        response
    }
}
