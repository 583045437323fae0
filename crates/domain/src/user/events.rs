//! What happens to a user account and its sessions. The event type is the variant name;
//! the payload is the variant's fields (schemas/v1/<Type>.json). Payloads are sealed under
//! the user's key: they may hold personal data (email, names), never secrets (no password
//! hash, no TOTP secret, no token).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::NewEvent;
use crate::ids::{EventId, EventType, SchemaVersion, UserId};
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

/// Variant name and fields of an externally tagged enum value.
fn split<T: Serialize>(event: &T) -> (String, Value) {
    match serde_json::to_value(event).expect("events serialise") {
        Value::Object(map) if map.len() == 1 => map.into_iter().next().expect("one entry"),
        _ => unreachable!("events are struct variants"),
    }
}

fn variant_name<T: Serialize>(event: &T) -> &'static str {
    // Event type names are few and static; leak-free lookup through a match on the name.
    let (name, _) = split(event);
    KNOWN
        .iter()
        .find(|k| **k == name)
        .copied()
        .expect("every variant is listed in KNOWN")
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
    let mut map = serde_json::Map::new();
    map.insert(event_type.to_owned(), payload);
    match serde_json::from_value::<T>(Value::Object(map)) {
        Ok(e) => Some(Ok(e)),
        // An unknown variant is "not mine"; anything else is a malformed payload.
        Err(e) if e.to_string().starts_with("unknown variant") => None,
        Err(e) => Some(Err(e)),
    }
}

fn new_event<T: Serialize>(event: &T, user: UserId, metadata: Metadata) -> NewEvent {
    let (name, payload) = split(event);
    NewEvent {
        event_id: EventId::new_v7(),
        event_type: EventType::try_from(name).expect("variant names are valid event types"),
        schema_version: SchemaVersion(1),
        subject: user.subject(),
        payload,
        metadata,
    }
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
    //! Each event's payload must match its schema in `schemas/v1/<Type>.json`: the same
    //! property names, every required one present, no other.
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn schema(name: &str) -> Value {
        let text = match name {
            "UserRegistered" => include_str!("../../../../schemas/v1/UserRegistered.json"),
            "RoleGranted" => include_str!("../../../../schemas/v1/RoleGranted.json"),
            "RoleRevoked" => include_str!("../../../../schemas/v1/RoleRevoked.json"),
            "MfaEnrolled" => include_str!("../../../../schemas/v1/MfaEnrolled.json"),
            "MfaEnabled" => include_str!("../../../../schemas/v1/MfaEnabled.json"),
            "MfaDisabled" => include_str!("../../../../schemas/v1/MfaDisabled.json"),
            "LoginFailed" => include_str!("../../../../schemas/v1/LoginFailed.json"),
            "AccountLocked" => include_str!("../../../../schemas/v1/AccountLocked.json"),
            "SessionStarted" => include_str!("../../../../schemas/v1/SessionStarted.json"),
            "SessionRefreshed" => include_str!("../../../../schemas/v1/SessionRefreshed.json"),
            "RefreshReuseDetected" => {
                include_str!("../../../../schemas/v1/RefreshReuseDetected.json")
            }
            "SessionRevoked" => include_str!("../../../../schemas/v1/SessionRevoked.json"),
            other => panic!("no schema for {other}"),
        };
        serde_json::from_str(text).expect("schema is JSON")
    }

    fn check(new: &NewEvent) {
        let name = new.event_type.as_str();
        let s = schema(name);
        assert_eq!(s["additionalProperties"], json!(false), "{name}");
        let props = s["properties"].as_object().expect("properties");
        let payload = new.payload.as_object().expect("object payload");
        for key in payload.keys() {
            assert!(
                props.contains_key(key),
                "{name}: {key} is not in the schema"
            );
        }
        for req in s["required"].as_array().expect("required") {
            assert!(
                payload.contains_key(req.as_str().unwrap()),
                "{name}: {req} missing"
            );
        }
        assert_eq!(new.schema_version.0, 1);
    }

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
        let mut seen: Vec<String> = users
            .into_iter()
            .map(|e| e.into_new_event(user, m()))
            .chain(sessions.into_iter().map(|e| e.into_new_event(user, m())))
            .map(|n| {
                check(&n);
                n.event_type.to_string()
            })
            .collect();
        seen.sort();
        let mut known: Vec<String> = KNOWN.iter().map(|k| k.to_string()).collect();
        known.sort();
        assert_eq!(seen, known, "every known event type is covered");
    }
}
