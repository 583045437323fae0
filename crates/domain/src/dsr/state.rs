//! The DSR aggregate: the request body, state folded from the `dsr-<uuid>` stream, and
//! the decisions taken on it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::{text, FieldError, Lines};
use crate::ids::{DsrId, PatientId, StreamVersion};

use super::events::DsrEvent;

/// The longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

const REASON: FieldError = FieldError::new(
    "reason",
    "is required: 1 to 1000 characters without control characters other than line breaks",
);
const CONFIRM: FieldError = FieldError::new("confirm", "must be true: erasure cannot be undone");

/// A reason (of a request or a rejection), trimmed: 1 to [`MAX_REASON_CHARS`]
/// characters, line breaks allowed.
pub fn validate_reason(value: &str) -> Result<String, FieldError> {
    text(value, 1, MAX_REASON_CHARS, Lines::Multi, REASON)
}

/// `POST /api/patients/:id/erasure-request`. Both fields default when absent so that
/// the validation, not the JSON reader, names the missing one.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    /// Why (free text: may be PHI, so no `Debug`).
    #[serde(default)]
    pub reason: String,
    /// The requester acknowledges that erasure is final; must be `true`.
    #[serde(default)]
    pub confirm: bool,
}

impl ErasureRequest {
    /// The reason, validated; `confirm` must be `true`.
    pub fn validate(&self) -> Result<String, FieldError> {
        let reason = validate_reason(&self.reason)?;
        if !self.confirm {
            return Err(CONFIRM);
        }
        Ok(reason)
    }
}

/// Where a DSR is: `pending` → `approved` → `completed`, or `pending` → `rejected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsrStatus {
    /// Waiting for a platform administrator.
    Pending,
    /// Approved; the erasure runs (202 while it does).
    Approved,
    /// The erasure ran.
    Completed,
    /// Rejected.
    Rejected,
}

impl DsrStatus {
    /// The snake_case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DsrStatus::Pending => "pending",
            DsrStatus::Approved => "approved",
            DsrStatus::Completed => "completed",
            DsrStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for DsrStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision on an existing DSR (named in [`DsrError::WrongState`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsrAction {
    /// Approve a pending request.
    Approve,
    /// Reject a pending request.
    Reject,
    /// Record that an approved erasure ran.
    Complete,
}

impl DsrAction {
    /// The verb.
    pub fn as_str(self) -> &'static str {
        match self {
            DsrAction::Approve => "approve",
            DsrAction::Reject => "reject",
            DsrAction::Complete => "complete",
        }
    }
}

impl fmt::Display for DsrAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a DSR command was refused. Messages carry no PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsrError {
    /// There is no such request (404).
    #[error("no such data-subject request")]
    NotFound,
    /// The stream already holds a request (409).
    #[error("the data-subject request already exists")]
    AlreadyExists,
    /// The action is illegal in the request's state, e.g. approving a rejected one (409).
    #[error("cannot {action} a data-subject request that is {from}")]
    WrongState {
        /// The state the request is in.
        from: DsrStatus,
        /// What was asked.
        action: DsrAction,
    },
    /// An input field broke a rule (400 naming the field).
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// The state of one DSR. The reasons may be PHI: `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsr {
    /// The request.
    pub id: DsrId,
    /// Events applied so far (shredded ones included).
    pub version: StreamVersion,
    /// The patient to erase (`None` if the request's payload was shredded, or before it).
    pub patient_id: Option<PatientId>,
    /// Where it is (`None` before the request).
    pub status: Option<DsrStatus>,
    /// The requester's reason (`None` once shredded).
    pub reason: Option<String>,
    /// The rejection's reason (`None` unless rejected, or once shredded).
    pub rejection_reason: Option<String>,
}

impl fmt::Debug for Dsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dsr")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("patient_id", &self.patient_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Dsr {
    /// A request with no events yet.
    pub fn new(id: DsrId) -> Self {
        Self {
            id,
            version: StreamVersion::EMPTY,
            patient_id: None,
            status: None,
            reason: None,
            rejection_reason: None,
        }
    }

    /// The state after `events`, in stream order.
    pub fn fold<'a>(id: DsrId, events: impl IntoIterator<Item = &'a DsrEvent>) -> Self {
        let mut dsr = Self::new(id);
        for event in events {
            dsr.apply(event);
        }
        dsr
    }

    /// Whether the request exists.
    pub fn exists(&self) -> bool {
        self.status.is_some()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &DsrEvent) {
        self.version = self.version.next();
        match event {
            DsrEvent::ErasureRequested { patient_id, reason } => {
                self.patient_id = Some(*patient_id);
                self.reason = Some(reason.clone());
                self.status = Some(DsrStatus::Pending);
            }
            DsrEvent::ErasureApproved {} => self.status = Some(DsrStatus::Approved),
            DsrEvent::ErasureRejected { reason } => {
                self.rejection_reason = Some(reason.clone());
                self.status = Some(DsrStatus::Rejected);
            }
            DsrEvent::ErasureCompleted {} => self.status = Some(DsrStatus::Completed),
        }
    }

    /// Folds in an event whose payload can no longer be opened (its patient was erased):
    /// the status follows from the event type, which is stored in the clear; the reason
    /// and the patient id are gone (the inline index keeps the patient id). An unknown
    /// type only counts in the version.
    pub fn apply_shredded(&mut self, event_type: &str) {
        self.version = self.version.next();
        self.status = match event_type {
            "ErasureRequested" => Some(DsrStatus::Pending),
            "ErasureApproved" => Some(DsrStatus::Approved),
            "ErasureRejected" => Some(DsrStatus::Rejected),
            "ErasureCompleted" => Some(DsrStatus::Completed),
            _ => self.status,
        };
    }

    /// The erasure of `patient_id` is requested with `input` (reason required, `confirm`
    /// true).
    pub fn request(
        &self,
        patient_id: PatientId,
        input: &ErasureRequest,
    ) -> Result<Vec<DsrEvent>, DsrError> {
        if self.exists() {
            return Err(DsrError::AlreadyExists);
        }
        let reason = input.validate()?;
        Ok(vec![DsrEvent::ErasureRequested { patient_id, reason }])
    }

    /// A platform administrator approves a pending request.
    pub fn approve(&self) -> Result<Vec<DsrEvent>, DsrError> {
        self.expect(DsrStatus::Pending, DsrAction::Approve)?;
        Ok(vec![DsrEvent::ErasureApproved {}])
    }

    /// A platform administrator rejects a pending request, with a reason.
    pub fn reject(&self, reason: &str) -> Result<Vec<DsrEvent>, DsrError> {
        self.expect(DsrStatus::Pending, DsrAction::Reject)?;
        let reason = validate_reason(reason)?;
        Ok(vec![DsrEvent::ErasureRejected { reason }])
    }

    /// The approved erasure ran.
    pub fn complete(&self) -> Result<Vec<DsrEvent>, DsrError> {
        self.expect(DsrStatus::Approved, DsrAction::Complete)?;
        Ok(vec![DsrEvent::ErasureCompleted {}])
    }

    fn expect(&self, wanted: DsrStatus, action: DsrAction) -> Result<(), DsrError> {
        match self.status {
            None => Err(DsrError::NotFound),
            Some(s) if s == wanted => Ok(()),
            Some(from) => Err(DsrError::WrongState { from, action }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const PATIENT: PatientId = PatientId(Uuid::from_u128(2));

    fn input(reason: &str, confirm: bool) -> ErasureRequest {
        ErasureRequest {
            reason: reason.into(),
            confirm,
        }
    }

    fn after(mut d: Dsr, events: Vec<DsrEvent>) -> Dsr {
        events.iter().for_each(|e| d.apply(e));
        d
    }

    fn given_a_pending_request() -> Dsr {
        let d = Dsr::new(DsrId(Uuid::from_u128(5)));
        let events = d.request(PATIENT, &input(" moving abroad ", true)).unwrap();
        after(d, events)
    }

    fn given_an_approved_request() -> Dsr {
        let d = given_a_pending_request();
        let events = d.approve().unwrap();
        after(d, events)
    }

    fn given_a_rejected_request() -> Dsr {
        let d = given_a_pending_request();
        let events = d.reject("legal hold").unwrap();
        after(d, events)
    }

    fn given_a_completed_request() -> Dsr {
        let d = given_an_approved_request();
        let events = d.complete().unwrap();
        after(d, events)
    }

    #[test]
    fn given_no_request_when_requested_then_pending_with_the_trimmed_reason() {
        let d = given_a_pending_request();
        assert_eq!(d.status, Some(DsrStatus::Pending));
        assert_eq!(d.patient_id, Some(PATIENT));
        assert_eq!(d.reason.as_deref(), Some("moving abroad"));
        assert_eq!(d.version, StreamVersion(1));
        assert!(
            !format!("{d:?}").contains("abroad"),
            "Debug leaves reasons out"
        );
    }

    #[test]
    fn given_a_request_without_confirm_or_reason_when_requested_then_the_field_is_named() {
        let d = Dsr::new(DsrId(Uuid::nil()));
        let field = |i: ErasureRequest| match d.request(PATIENT, &i).unwrap_err() {
            DsrError::Invalid(f) => f.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(input("why", false)), "confirm");
        assert_eq!(field(input("", true)), "reason");
        assert_eq!(field(input("  \n ", true)), "reason");
        assert_eq!(
            field(input(&"x".repeat(MAX_REASON_CHARS + 1), true)),
            "reason"
        );
        assert_eq!(field(input("a\u{0}b", true)), "reason");
        assert!(d
            .request(PATIENT, &input(&"x".repeat(MAX_REASON_CHARS), true))
            .is_ok());
    }

    #[test]
    fn given_a_json_body_when_read_then_missing_fields_are_left_to_validation() {
        let empty: ErasureRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.validate().unwrap_err().field, "reason");
        let unconfirmed: ErasureRequest = serde_json::from_str(r#"{"reason": "r"}"#).unwrap();
        assert_eq!(unconfirmed.validate().unwrap_err().field, "confirm");
        assert!(serde_json::from_str::<ErasureRequest>(
            r#"{"reason": "r", "confirm": true, "status": "approved"}"#
        )
        .is_err());
    }

    #[test]
    fn given_a_pending_request_when_approved_and_completed_then_completed() {
        let d = given_a_completed_request();
        assert_eq!(d.status, Some(DsrStatus::Completed));
        assert_eq!(d.version, StreamVersion(3));
    }

    #[test]
    fn given_a_pending_request_when_rejected_then_rejected_with_a_reason() {
        let d = given_a_rejected_request();
        assert_eq!(d.status, Some(DsrStatus::Rejected));
        assert_eq!(d.rejection_reason.as_deref(), Some("legal hold"));
        let p = given_a_pending_request();
        assert!(matches!(
            p.reject("   ").unwrap_err(),
            DsrError::Invalid(f) if f.field == "reason"
        ));
    }

    #[test]
    fn given_each_state_when_each_action_is_taken_then_only_the_lifecycle_allows_it() {
        let states = [
            (given_a_pending_request(), [true, true, false]),
            (given_an_approved_request(), [false, false, true]),
            (given_a_rejected_request(), [false, false, false]),
            (given_a_completed_request(), [false, false, false]),
        ];
        for (d, allowed) in states {
            let results = [
                (DsrAction::Approve, d.approve()),
                (DsrAction::Reject, d.reject("because")),
                (DsrAction::Complete, d.complete()),
            ];
            for ((action, got), ok) in results.into_iter().zip(allowed) {
                match got {
                    Ok(events) => assert!(ok && events.len() == 1, "{:?} {action}", d.status),
                    Err(e) => {
                        assert!(!ok, "{:?} {action}", d.status);
                        assert_eq!(
                            e,
                            DsrError::WrongState {
                                from: d.status.unwrap(),
                                action
                            }
                        );
                    }
                }
            }
        }
        let e = DsrError::WrongState {
            from: DsrStatus::Rejected,
            action: DsrAction::Approve,
        };
        assert_eq!(
            e.to_string(),
            "cannot approve a data-subject request that is rejected"
        );
    }

    #[test]
    fn given_no_request_when_acted_on_then_not_found_and_a_second_request_conflicts() {
        let d = Dsr::new(DsrId(Uuid::nil()));
        assert_eq!(d.approve().unwrap_err(), DsrError::NotFound);
        assert_eq!(d.reject("x").unwrap_err(), DsrError::NotFound);
        assert_eq!(d.complete().unwrap_err(), DsrError::NotFound);
        assert_eq!(
            given_a_pending_request()
                .request(PATIENT, &input("again", true))
                .unwrap_err(),
            DsrError::AlreadyExists
        );
    }

    #[test]
    fn given_an_erased_patient_when_the_stream_is_folded_with_shredded_payloads_then_completed() {
        let mut d = Dsr::new(DsrId(Uuid::from_u128(5)));
        d.apply_shredded("ErasureRequested");
        assert_eq!(d.status, Some(DsrStatus::Pending));
        d.apply(&DsrEvent::ErasureApproved {});
        d.apply(&DsrEvent::ErasureCompleted {});
        assert_eq!(d.status, Some(DsrStatus::Completed));
        assert_eq!(d.version, StreamVersion(3));
        assert_eq!(d.reason, None);
        let mut rejected = Dsr::new(d.id);
        rejected.apply_shredded("ErasureRequested");
        rejected.apply_shredded("ErasureRejected");
        rejected.apply_shredded("SomethingNew");
        assert_eq!(rejected.status, Some(DsrStatus::Rejected));
        assert_eq!(rejected.version, StreamVersion(3));
    }
}
