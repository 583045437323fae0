//! Session consents (`session_consent-<uuid>`): a patient's consent to the recording of
//! their clinical sessions, or to the AI transcription of them (`/api/sessions/consents`).
//! Optionally limited to one organisation and one clinician, and in time. Granted and
//! revoked by the patient (the access policy's matter, [`crate::access`]); it lapses by
//! itself at `expires_at`. Sealed under the patient's key.

mod events;
mod state;

pub use events::{SessionConsentEvent, SessionConsentKind, KNOWN};
pub use state::{GrantSessionConsent, SessionConsent, SessionConsentError, SessionConsentStatus};
