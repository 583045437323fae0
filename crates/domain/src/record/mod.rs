//! The clinical record aggregate: created, amended (every version kept), voided.

mod events;
mod input;
mod state;

pub use events::{RecordContent, RecordEvent, RecordKind, KNOWN};
pub use input::{
    validate_code, validate_content, validate_data, validate_recorded_at, validate_void_reason,
    MAX_DATA_BYTES, MAX_RECORDED_AT_SKEW,
};
pub use state::{ClinicalRecord, RecordError, RecordVersion};
