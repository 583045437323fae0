//! [`ApiError`]: every way a request can fail, and the one place it becomes HTTP.
//!
//! Handlers, extractors and middleware return `ApiError`; [`ApiError::into_response`]
//! alone chooses the status, the `code`, the headers and the envelope
//! `{"success": false, "error": {"code", "message", "details"}}` of API.md's table. Messages
//! are fixed texts (or texts the raiser wrote for the client), never an inner error's
//! `Display`: a 500 logs its cause chain and answers a generic message.

use std::fmt;

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carelog_store::{AppendError, StoreError};
use serde_json::{json, Value};

/// `RateLimit-Limit`: the requests allowed per window.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: the requests left now.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the allowance is whole again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Why a request failed. See the module docs; API.md's error table is the contract.
#[derive(thiserror::Error)]
pub enum ApiError {
    /// 400 `VALIDATION_ERROR`: malformed JSON, missing/invalid/unknown fields, bad query or
    /// header values. `message` is shown to the client; `details` names the fields
    /// (`{"fields": [...]}`) and must not echo submitted values.
    #[error("validation failed: {message}")]
    Validation {
        /// A short text for the client.
        message: String,
        /// Which fields (or where in the body); `Value::Null` if nothing to add.
        details: Value,
    },
    /// 401 `UNAUTHORIZED`. The reason is logged (no PHI, no token), never sent.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 401 `MFA_REQUIRED`: the password was right, a second factor is owed;
    /// `details.mfa_token` carries the token for `/api/auth/mfa/challenge`.
    #[error("second factor required")]
    MfaRequired {
        /// The short-lived MFA token.
        mfa_token: String,
    },
    /// 403 `FORBIDDEN`: authenticated, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// 404 `NOT_FOUND`: no such resource, or one the caller may not know exists; also
    /// unknown routes.
    #[error("not found")]
    NotFound,
    /// 405 `METHOD_NOT_ALLOWED`: the route exists, not with this method (an extension of
    /// API.md's table).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 `CONFLICT`: stale `If-Match`, duplicate, illegal transition, or an
    /// `Idempotency-Key` whose first request is still running. The text is shown.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 410 `ERASED`: the subject was erased.
    #[error("the subject was erased")]
    Erased,
    /// 413 `PAYLOAD_TOO_LARGE`: the body is over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 422 `IDEMPOTENCY_MISMATCH`: an `Idempotency-Key` reused with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// 423 `ACCOUNT_LOCKED`, with `Retry-After`.
    #[error("account locked")]
    AccountLocked {
        /// Seconds until a login may be tried again.
        retry_after_secs: u64,
    },
    /// 429 `RATE_LIMITED`, with `Retry-After` and `RateLimit-*` (`RateLimit-Remaining: 0`).
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the next request is allowed (≥ 1).
        retry_after_secs: u64,
        /// Requests allowed per window.
        limit: u32,
        /// Seconds until the allowance is whole again.
        reset_secs: u64,
    },
    /// 503 `SERVICE_UNAVAILABLE` (readiness): `details` says which dependency is down, in
    /// words like `"down"`, never an error text.
    #[error("service unavailable")]
    Unavailable {
        /// E.g. `{"checks": {"postgres": "up", "nats": "down"}}`.
        details: Value,
    },
    /// 500 `INTERNAL_ERROR`: anything else. The chain is logged, a generic text sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A credential: never in logs.
            ApiError::MfaRequired { .. } => f.write_str("MfaRequired { mfa_token: .. }"),
            ApiError::Internal(e) => write!(f, "Internal({e:#})"),
            other => write!(f, "{other}"),
        }
    }
}

impl ApiError {
    /// A 400 with a message and the fields at fault: `{"fields": [...]}`.
    pub fn validation_fields(
        message: impl Into<String>,
        fields: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let fields: Vec<String> = fields.into_iter().map(Into::into).collect();
        ApiError::Validation {
            message: message.into(),
            details: json!({ "fields": fields }),
        }
    }

    /// A 400 with just a message.
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            details: Value::Null,
        }
    }

    /// A 500 from any error (its chain is logged when answered).
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::MfaRequired { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Erased => StatusCode::GONE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::AccountLocked { .. } => StatusCode::LOCKED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The envelope's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "VALIDATION_ERROR",
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::MfaRequired { .. } => "MFA_REQUIRED",
            ApiError::Forbidden => "FORBIDDEN",
            ApiError::NotFound => "NOT_FOUND",
            ApiError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::Erased => "ERASED",
            ApiError::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ApiError::IdempotencyMismatch => "IDEMPOTENCY_MISMATCH",
            ApiError::AccountLocked { .. } => "ACCOUNT_LOCKED",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::Unavailable { .. } => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

/// `value` as a header value (digits only, always valid).
fn secs(value: u64) -> HeaderValue {
    HeaderValue::from(value)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let (message, details): (String, Value) = match self {
            ApiError::Validation { message, details } => (message, details),
            ApiError::Unauthorized(reason) => {
                tracing::info!(reason = %reason, "request unauthorized");
                headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
                ("authentication required".into(), Value::Null)
            }
            ApiError::MfaRequired { mfa_token } => (
                "a second factor is required".into(),
                json!({ "mfa_token": mfa_token }),
            ),
            ApiError::Forbidden => ("not allowed".into(), Value::Null),
            ApiError::NotFound => ("not found".into(), Value::Null),
            ApiError::MethodNotAllowed => {
                ("method not allowed on this resource".into(), Value::Null)
            }
            ApiError::Conflict(message) => (message, Value::Null),
            ApiError::Erased => ("the subject was erased".into(), Value::Null),
            ApiError::PayloadTooLarge => ("request body is too large".into(), Value::Null),
            ApiError::IdempotencyMismatch => (
                "Idempotency-Key was already used with a different request".into(),
                Value::Null,
            ),
            ApiError::AccountLocked { retry_after_secs } => {
                headers.push((header::RETRY_AFTER, secs(retry_after_secs.max(1))));
                (
                    "account locked after too many failed logins".into(),
                    json!({ "retry_after_secs": retry_after_secs.max(1) }),
                )
            }
            ApiError::RateLimited {
                retry_after_secs,
                limit,
                reset_secs,
            } => {
                let retry = retry_after_secs.max(1);
                headers.push((header::RETRY_AFTER, secs(retry)));
                headers.push((RATELIMIT_LIMIT, HeaderValue::from(limit)));
                headers.push((RATELIMIT_REMAINING, HeaderValue::from_static("0")));
                headers.push((RATELIMIT_RESET, secs(reset_secs.max(retry))));
                (
                    "too many requests".into(),
                    json!({ "retry_after_secs": retry }),
                )
            }
            ApiError::Unavailable { details } => ("a dependency is unavailable".into(), details),
            ApiError::Internal(e) => {
                // The chain of causes, for operators; no request data reaches here.
                tracing::error!(error = %format_args!("{e:#}"), "request failed");
                ("internal error".into(), Value::Null)
            }
        };
        let body = json!({
            "success": false,
            "error": { "code": code, "message": message, "details": details },
        });
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().extend(headers);
        response
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict {
                expected, actual, ..
            } => ApiError::Conflict(format!(
                "the resource is at version {actual}, not the expected {expected}"
            )),
            AppendError::DuplicateEventId => {
                ApiError::Conflict("this command was already applied differently".into())
            }
            AppendError::Erased(_) => ApiError::Erased,
            AppendError::BadSize { got, max } => ApiError::validation(format!(
                "a command produces 1 to {max} events, this one {got}"
            )),
            AppendError::TooLarge { .. } => ApiError::PayloadTooLarge,
            AppendError::Store(e) => ApiError::from(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(anyhow::Error::new(e))
    }
}
