//! Clinical refusals as API errors (the envelope itself is chosen in `crate::error`).

use carelog_commands::clinical::ClinicalError;
use serde_json::json;

use crate::error::ApiError;

impl From<ClinicalError> for ApiError {
    fn from(e: ClinicalError) -> Self {
        match e {
            ClinicalError::Invalid { field, message } => ApiError::Validation {
                message: format!("{field}: {message}"),
                details: json!({ "fields": [field] }),
            },
            ClinicalError::Forbidden(_) => ApiError::Forbidden,
            ClinicalError::NotFound => ApiError::NotFound,
            ClinicalError::Gone => ApiError::Erased,
            ClinicalError::Conflict(m) => ApiError::Conflict(m),
            ClinicalError::Store(e) => e.into(),
            // A read whose access event could not be appended: refused, retryable.
            ClinicalError::AuditUnavailable => ApiError::Unavailable {
                details: json!({ "checks": { "audit": "down" } }),
            },
            other => ApiError::internal(other),
        }
    }
}
