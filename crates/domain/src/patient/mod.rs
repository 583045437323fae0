//! The patient aggregate (demographics, linked account, erasure) and emergency access
//! grants. Once `PatientErased`, every decision on the patient answers
//! [`PatientError::Erased`] (410).

mod emergency;
mod events;
mod input;
mod state;

pub use emergency::{
    grant_emergency, EmergencyError, DEFAULT_EMERGENCY_DURATION, MAX_EMERGENCY_DURATION,
};
pub use events::{Demographics, EmergencyEvent, PatientEvent, Sex, KNOWN};
pub use input::{
    validate_address, validate_birth_date, validate_demographics, validate_email,
    validate_family_name, validate_given_name, validate_national_id, validate_phone,
};
pub use state::{DemographicsPatch, Patient, PatientError};
