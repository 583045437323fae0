//! carelog's command pipeline: for every command, load the current state it is decided
//! on (an aggregate's stream, and for security decisions the inline tables written with
//! it), let `carelog-domain` decide, then seal and append the events — with the inline
//! rows, in one transaction where the decision needs them.
//!
//! The HTTP API and the CLI both call this crate, so a rule cannot differ between them.
//! It knows nothing of HTTP: errors are [`identity::IdentityError`]s, which the API
//! maps to its envelope in one place.

mod access_log;
pub mod audit_checkpoint;
pub mod audit_trail;
pub mod clinical;
pub mod context;
pub mod identity;
pub mod load;

pub use context::{Actor, Ctx};
