//! The user account aggregate: registration, platform roles, MFA, lockout, sessions.
//!
//! Identity decisions that must be current (credentials, lockout, sessions, roles) are
//! also kept in inline tables written in the same transaction as these events (see
//! `carelog-store`'s `identity` module); the events are the audit trail and carry the
//! personal data (sealed under the user's own key).

mod events;
mod input;
pub mod lockout;
pub mod session;
mod state;

pub use events::{SessionEvent, UserEvent};
pub use input::{normalize_email, validate_name, InputError, RegistrationRole};
pub use state::{Profile, User, UserError};
