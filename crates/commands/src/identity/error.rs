//! Why an identity command was refused.

use carelog_crypto::password::PasswordRejection;
use carelog_store::{AppendError, StoreError};

/// An identity command's refusal. The API maps each to its envelope code.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A field is invalid (400); `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why, for the user.
        message: String,
    },
    /// The password policy refused a new password (400 on `password`).
    #[error("password: {0}")]
    WeakPassword(PasswordRejection),
    /// Another account has this email (409).
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Unknown email or wrong password, or a wrong second factor (401); the same answer
    /// for both so that accounts cannot be enumerated.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Password accepted; the second factor is owed (401 MFA_REQUIRED).
    #[error("a second factor is required")]
    MfaRequired {
        /// The single-purpose token to present with the code.
        mfa_token: String,
    },
    /// Too many failures (423).
    #[error("the account is locked")]
    Locked {
        /// Seconds until it unlocks.
        retry_after: u64,
    },
    /// No valid session or token (401); the reason is for logs only.
    #[error("not authenticated: {0}")]
    Unauthenticated(&'static str),
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such account (404).
    #[error("no such user")]
    NotFound,
    /// Illegal in the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The append failed.
    #[error(transparent)]
    Append(#[from] AppendError),
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        IdentityError::Store(StoreError::Database(e))
    }
}

impl From<carelog_domain::user::UserError> for IdentityError {
    fn from(e: carelog_domain::user::UserError) -> Self {
        use carelog_domain::user::UserError as E;
        match e {
            E::NotFound => IdentityError::NotFound,
            E::AlreadyRegistered => IdentityError::Conflict(e.to_string()),
            E::NotAPlatformRole => IdentityError::Invalid {
                field: "role",
                message: e.to_string(),
            },
            E::Forbidden => IdentityError::Forbidden(e.to_string()),
            E::SelfDemotion => IdentityError::Conflict(e.to_string()),
        }
    }
}
