//! What happens to a user account and its sessions. The event type is the variant name;
//! the payload is the variant's fields (schemas/v1/<Type>.json). Payloads are sealed under
//! the user's key: they may hold personal data (email, names), never secrets (no password
//! hash, no TOTP secret, no token).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::NewEvent;
use crate::ids::UserId;
use crate::metadata::Metadata;
use crate::roles::Role;

/// Events of the `user-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::enum_variant_names)]
pub enum UserEvent {
    /// An account was created.
    UserRegistered {
        /// Normalised email.
        email: String,
        /// Given name.
        first_name: String,
        /// Family name.
        last_name: String,
        /// BASE:DOCTOR, BASE:PATIENT or none (staff).
        base_role: Option<Role>,
    },
    /// A platform role was granted.
    RoleGranted {
        /// The role.
        role: Role,
    },
    /// A platform role was revoked.
    RoleRevoked {
        /// The role.
        role: Role,
    },
    /// A TOTP secret was issued, not yet confirmed.
    MfaEnrolled {},
    /// A TOTP code confirmed the secret: MFA is on.
    MfaEnabled {},
    /// MFA was turned off (with password and code).
    MfaDisabled {},
    /// A login or MFA challenge failed.
    LoginFailed {
        /// `password` or `mfa`.
        reason: String,
    },
    /// Too many failures: locked until `until`.
    AccountLocked {
        /// End of the lock.
        until: DateTime<Utc>,
        /// Failures that led to it.
        failures: u32,
    },
}

/// Events of the `session-<uuid>` stream (sealed under the user's key too).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::enum_variant_names)]
pub enum SessionEvent {
    /// A login succeeded (password, and the second factor when it is on).
    SessionStarted {
        /// Whose session.
        user_id: UserId,
        /// Whether a second factor was checked.
        mfa: bool,
    },
    /// The refresh token was used and rotated.
    SessionRefreshed {},
    /// A spent refresh token was presented again: theft suspected.
    RefreshReuseDetected {},
    /// The session ended.
    SessionRevoked {
        /// `logout`, `refresh_reuse`, `idle`, `expired` or `admin`.
        reason: String,
    },
}

impl std::fmt::Debug for UserEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl std::fmt::Debug for SessionEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(variant_name(self))
    }
}

impl UserEvent {
    /// The event type, e.g. `UserRegistered`.
    pub fn event_type_name(&self) -> &'static str {
        variant_name(self)
    }

    /// Decodes a stored payload of type `event_type`; `None` if the type is not a user event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        decode(event_type, payload)
    }

    /// The event to append for `user`.
    pub fn into_new_event(self, user: UserId, metadata: Metadata) -> NewEvent {
        new_event(&self, user, metadata)
    }
}

impl SessionEvent {
    /// Decodes a stored payload of type `event_type`; `None` if the type is not a session event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        decode(event_type, payload)
    }

    /// The event to append for a session of `user`.
    pub fn into_new_event(self, user: UserId, metadata: Metadata) -> NewEvent {
        new_event(&self, user, metadata)
    }
}

fn variant_name<T: Serialize>(event: &T) -> &'static str {
    crate::event::codec::variant_name(event, &KNOWN)
}

/// Every identity event type.
pub const KNOWN: [&str; 12] = [
    "UserRegistered",
    "RoleGranted",
    "RoleRevoked",
    "MfaEnrolled",
    "MfaEnabled",
    "MfaDisabled",
    "LoginFailed",
    "AccountLocked",
    "SessionStarted",
    "SessionRefreshed",
    "RefreshReuseDetected",
    "SessionRevoked",
];

fn decode<T: for<'de> Deserialize<'de>>(
    event_type: &str,
    payload: Value,
) -> Option<Result<T, serde_json::Error>> {
    crate::event::codec::decode(event_type, payload)
}

fn new_event<T: Serialize>(event: &T, user: UserId, metadata: Metadata) -> NewEvent {
    crate::event::codec::new_event(event, user.subject(), metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn events_round_trip_through_type_and_payload() {
        let ev = UserEvent::UserRegistered {
            email: "a@b.org".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            base_role: Some(Role::BasePatient),
        };
        let user = UserId(Uuid::nil());
        let new = ev.clone().into_new_event(user, Metadata::default());
        assert_eq!(new.event_type.as_str(), "UserRegistered");
        assert_eq!(new.subject, user.subject());
        assert!(
            new.payload.get("UserRegistered").is_none(),
            "payload is the fields only"
        );
        let back = UserEvent::decode("UserRegistered", new.payload)
            .unwrap()
            .unwrap();
        assert!(back == ev);
        assert!(UserEvent::decode("SessionStarted", serde_json::json!({})).is_none());
        assert!(
            SessionEvent::decode("SessionRevoked", serde_json::json!({"reason": 1}))
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn debug_shows_the_type_only() {
        let ev = UserEvent::UserRegistered {
            email: "secret@b.org".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            base_role: None,
        };
        assert_eq!(format!("{ev:?}"), "UserRegistered");
    }
}

#[cfg(test)]
mod schema_tests {
    //! Each event's payload must match its schema in `schemas/v1/<Type>.json`.
    use super::*;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    #[test]
    fn every_identity_event_matches_its_schema() {
        let user = UserId(Uuid::nil());
        let m = Metadata::default;
        let users = [
            UserEvent::UserRegistered {
                email: "a@b.org".into(),
                first_name: "A".into(),
                last_name: "B".into(),
                base_role: None,
            },
            UserEvent::RoleGranted {
                role: Role::AppAuditor,
            },
            UserEvent::RoleRevoked {
                role: Role::AppAuditor,
            },
            UserEvent::MfaEnrolled {},
            UserEvent::MfaEnabled {},
            UserEvent::MfaDisabled {},
            UserEvent::LoginFailed {
                reason: "password".into(),
            },
            UserEvent::AccountLocked {
                until: chrono::Utc::now(),
                failures: 10,
            },
        ];
        let sessions = [
            SessionEvent::SessionStarted {
                user_id: user,
                mfa: true,
            },
            SessionEvent::SessionRefreshed {},
            SessionEvent::RefreshReuseDetected {},
            SessionEvent::SessionRevoked {
                reason: "logout".into(),
            },
        ];
        let seen = users
            .into_iter()
            .map(|e| e.into_new_event(user, m()))
            .chain(sessions.into_iter().map(|e| e.into_new_event(user, m())))
            .map(|n| {
                check_schema(&n);
                n.event_type.to_string()
            });
        assert_covers(seen, &KNOWN);
    }
}
