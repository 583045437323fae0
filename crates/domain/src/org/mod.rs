//! The organisation aggregate: a name and its members, each with one org role.
//! Memberships are decided here, on the organisation's own stream, so removing a member
//! or changing a role takes effect on the next request whatever a token says.

mod events;
mod input;
mod state;

pub use events::{OrgEvent, KNOWN};
pub use input::validate_org_name;
pub use state::{OrgError, Organization};
