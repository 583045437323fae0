//! Data-subject requests (GDPR), stream `dsr-<uuid>`: today the erasure of a patient.
//!
//! A request is `pending` until a platform administrator approves or rejects it; an
//! approved request is `completed` once the erasure ran (the patient's key destroyed,
//! read models purged, `PatientErased` on the patient's stream).
//!
//! What survives the erasure: the events that carry free text (the requester's reason,
//! the rejection's reason) are sealed under the patient's key and go with it; the events
//! without payload (`ErasureApproved`, `ErasureCompleted`) are sealed under the `system`
//! subject, so a DSR answers `completed` after the erasure. Its event types and
//! metadata stay in the clear, so [`Dsr::apply_shredded`] folds a stream whose first
//! events can no longer be opened.

mod events;
mod state;

pub use events::{DsrEvent, KNOWN};
pub use state::{
    validate_reason, Dsr, DsrAction, DsrError, DsrStatus, ErasureRequest, MAX_REASON_CHARS,
};
