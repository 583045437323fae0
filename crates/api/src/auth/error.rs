//! Identity refusals as API errors (the envelope itself is chosen in `crate::error`).

use carelog_commands::identity::IdentityError;
use serde_json::json;

use crate::error::ApiError;

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid { field, message } => ApiError::Validation {
                message: format!("{field}: {message}"),
                details: json!({ "fields": [field] }),
            },
            IdentityError::WeakPassword(why) => ApiError::Validation {
                message: why.to_string(),
                details: json!({ "fields": ["password"] }),
            },
            IdentityError::EmailTaken => {
                ApiError::Conflict("an account with this email already exists".into())
            }
            IdentityError::InvalidCredentials => {
                ApiError::Unauthorized("invalid email or password".into())
            }
            IdentityError::MfaRequired { mfa_token } => ApiError::MfaRequired { mfa_token },
            IdentityError::Locked { retry_after } => ApiError::AccountLocked {
                retry_after_secs: retry_after,
            },
            IdentityError::Unauthenticated(_) => {
                ApiError::Unauthorized("authentication required".into())
            }
            IdentityError::Forbidden(_) => ApiError::Forbidden,
            IdentityError::NotFound => ApiError::NotFound,
            IdentityError::Conflict(m) => ApiError::Conflict(m),
            IdentityError::Store(e) => e.into(),
            IdentityError::Append(e) => e.into(),
        }
    }
}
