//! The consent aggregate (`consent-<uuid>`): a patient's permission for a doctor or an
//! organisation to see their data, for a purpose, in a scope, possibly until a time.
//!
//! A consent starts either granted by the patient (active at once) or requested by a
//! doctor (then approved → active, or declined by the patient). An active consent is
//! revoked by the patient, or lapses by itself at `expires_at` (no event: expiry is
//! computed from the time, so it stops access at once). Who may act is the access
//! policy's matter ([`crate::access`]); this module holds the lifecycle and the input
//! rules. The access policy reads a consent back as [`crate::access::ConsentFacts`].

mod events;
mod input;
mod state;

pub use events::{ConsentEvent, Purpose, KNOWN};
pub use input::{ApproveConsent, GrantConsent, RequestConsent};
pub use state::{Consent, ConsentAction, ConsentError, ConsentTerms, EffectiveConsentStatus};
