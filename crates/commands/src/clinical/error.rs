//! Why a clinical command or query was refused.

use carelog_domain::access::{Decision, DenyReason};
use carelog_domain::consent::ConsentError;
use carelog_domain::dsr::DsrError;
use carelog_domain::field::FieldError;
use carelog_domain::org::OrgError;
use carelog_domain::patient::{EmergencyError, PatientError};
use carelog_domain::record::RecordError;
use carelog_domain::session_consent::SessionConsentError;
use carelog_store::{AppendError, StoreError};

use crate::load::LoadError;

/// A clinical command's or query's refusal. The API maps each to its envelope code.
#[derive(Debug, thiserror::Error)]
pub enum ClinicalError {
    /// A field is invalid (400); `field` names it, the message never quotes its value.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// The policy refused (403).
    #[error("forbidden: {0:?}")]
    Forbidden(DenyReason),
    /// No such resource, or one the caller may not know exists (404).
    #[error("not found")]
    NotFound,
    /// The patient was erased (410).
    #[error("the patient was erased")]
    Gone,
    /// Illegal in the current state, stale version, duplicate (409). Shown to the client.
    #[error("{0}")]
    Conflict(String),
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An append failed for a reason that is not the client's (500).
    #[error(transparent)]
    Append(AppendError),
    /// An aggregate's stream could not be read (500).
    #[error(transparent)]
    Load(LoadError),
    /// The access event of a read could not be appended, so the read is refused (503):
    /// no PHI is answered without its audit record.
    #[error("the audit trail is unavailable")]
    AuditUnavailable,
}

impl From<LoadError> for ClinicalError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Erased => ClinicalError::Gone,
            other => ClinicalError::Load(other),
        }
    }
}

impl From<AppendError> for ClinicalError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict { .. } => ClinicalError::Conflict(
                "the resource changed since it was read; read it again and retry".into(),
            ),
            AppendError::Erased(_) => ClinicalError::Gone,
            AppendError::Store(e) => ClinicalError::Store(e),
            other => ClinicalError::Append(other),
        }
    }
}

impl From<sqlx::Error> for ClinicalError {
    fn from(e: sqlx::Error) -> Self {
        ClinicalError::Store(StoreError::Database(e))
    }
}

impl ClinicalError {
    /// A 400 on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ClinicalError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error a refusing [`Decision`] answers with (`None` for an allow).
    pub fn from_decision(d: Decision) -> Option<Self> {
        match d {
            Decision::Allow(_) => None,
            Decision::Deny(reason) => Some(ClinicalError::Forbidden(reason)),
            Decision::NotFound => Some(ClinicalError::NotFound),
            Decision::Gone => Some(ClinicalError::Gone),
        }
    }
}

impl From<FieldError> for ClinicalError {
    fn from(e: FieldError) -> Self {
        ClinicalError::invalid(e.field, e.rule)
    }
}

impl From<OrgError> for ClinicalError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::Invalid(f) => f.into(),
            OrgError::NotAnOrgRole => ClinicalError::invalid("role", e.to_string()),
            OrgError::NotFound | OrgError::NotAMember | OrgError::NoLegalHold => {
                ClinicalError::NotFound
            }
            OrgError::AlreadyExists | OrgError::AlreadyMember | OrgError::LastAdmin => {
                ClinicalError::Conflict(e.to_string())
            }
        }
    }
}

impl From<PatientError> for ClinicalError {
    fn from(e: PatientError) -> Self {
        match e {
            PatientError::Invalid(f) => f.into(),
            PatientError::NotFound => ClinicalError::NotFound,
            PatientError::Erased => ClinicalError::Gone,
            PatientError::AlreadyRegistered => ClinicalError::Conflict(e.to_string()),
        }
    }
}

impl From<RecordError> for ClinicalError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Invalid(f) => f.into(),
            RecordError::NotFound => ClinicalError::NotFound,
            RecordError::AlreadyExists | RecordError::Voided => {
                ClinicalError::Conflict(e.to_string())
            }
        }
    }
}

impl From<EmergencyError> for ClinicalError {
    fn from(e: EmergencyError) -> Self {
        match e {
            EmergencyError::Invalid(f) => f.into(),
            // The configured duration is refused at start-up; here it is a bug.
            EmergencyError::Duration => ClinicalError::Conflict(e.to_string()),
        }
    }
}

impl From<ConsentError> for ClinicalError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::Invalid(f) => f.into(),
            ConsentError::NotFound => ClinicalError::NotFound,
            ConsentError::AlreadyExists | ConsentError::WrongState { .. } => {
                ClinicalError::Conflict(e.to_string())
            }
        }
    }
}

impl From<SessionConsentError> for ClinicalError {
    fn from(e: SessionConsentError) -> Self {
        match e {
            SessionConsentError::Invalid(f) => f.into(),
            SessionConsentError::NotFound => ClinicalError::NotFound,
            SessionConsentError::AlreadyExists | SessionConsentError::Revoked => {
                ClinicalError::Conflict(e.to_string())
            }
        }
    }
}

impl From<DsrError> for ClinicalError {
    fn from(e: DsrError) -> Self {
        match e {
            DsrError::Invalid(f) => f.into(),
            DsrError::NotFound => ClinicalError::NotFound,
            DsrError::AlreadyExists | DsrError::WrongState { .. } => {
                ClinicalError::Conflict(e.to_string())
            }
        }
    }
}
