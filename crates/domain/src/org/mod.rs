//! The organisation aggregate: a name and its members, each with one org role.
//! Memberships are decided here, on the organisation's own stream, so removing a member
//! or changing a role takes effect on the next request whatever a token says.
//!
//! A platform administrator may place a legal-retention hold on the organisation
//! (`LegalHoldPlaced`, `LegalHoldLifted`): while it is in place, no erasure of its
//! patients is approved (the approval answers 409 with the hold's reason).

mod events;
mod input;
mod state;

pub use events::{OrgEvent, KNOWN};
pub use input::{validate_hold_reason, validate_org_name, MAX_HOLD_REASON_CHARS};
pub use state::{OrgError, Organization};
