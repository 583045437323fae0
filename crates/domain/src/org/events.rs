//! What happens to an organisation. The event type is the variant name; the payload is
//! the variant's fields (`schemas/v1/<Type>.json`). Sealed under the organisation's own
//! key; they name users by id only, never by email or name.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::{codec, NewEvent};
use crate::ids::{OrgId, UserId};
use crate::metadata::Metadata;
use crate::roles::Role;

/// Events of the `org-<uuid>` stream.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum OrgEvent {
    /// The organisation was created; its creator became its first ORG:ADMIN (a
    /// `MemberAdded` event follows in the same append).
    OrganizationCreated {
        /// Display name.
        name: String,
        /// Who created it.
        created_by: UserId,
    },
    /// A user became a member with an org role.
    MemberAdded {
        /// The member.
        user_id: UserId,
        /// ORG:ADMIN, ORG:DOCTOR, ORG:STAFF or ORG:AUDITOR.
        role: Role,
    },
    /// A member's org role changed.
    MemberRoleChanged {
        /// The member.
        user_id: UserId,
        /// The new org role.
        role: Role,
    },
    /// A member left or was removed.
    MemberRemoved {
        /// The former member.
        user_id: UserId,
    },
    /// A platform administrator placed a legal-retention hold on the organisation's
    /// records (or replaced its reason): erasures of its patients cannot be approved
    /// while it is in place.
    LegalHoldPlaced {
        /// The administrator's case reference (not patient data).
        reason: String,
    },
    /// The legal hold was lifted.
    LegalHoldLifted {},
}

/// Every organisation event type.
pub const KNOWN: [&str; 6] = [
    "OrganizationCreated",
    "MemberAdded",
    "MemberRoleChanged",
    "MemberRemoved",
    "LegalHoldPlaced",
    "LegalHoldLifted",
];

impl std::fmt::Debug for OrgEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl OrgEvent {
    /// The event type, e.g. `MemberAdded`.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &KNOWN)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not an org event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// The event to append to `org`'s stream.
    pub fn into_new_event(self, org: OrgId, metadata: Metadata) -> NewEvent {
        codec::new_event(&self, org.subject(), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_covers, check_schema};
    use uuid::Uuid;

    fn all() -> Vec<OrgEvent> {
        let user_id = UserId(Uuid::from_u128(1));
        vec![
            OrgEvent::OrganizationCreated {
                name: "St Mary".into(),
                created_by: user_id,
            },
            OrgEvent::MemberAdded {
                user_id,
                role: Role::OrgAdmin,
            },
            OrgEvent::MemberRoleChanged {
                user_id,
                role: Role::OrgAuditor,
            },
            OrgEvent::MemberRemoved { user_id },
            OrgEvent::LegalHoldPlaced {
                reason: "case 2025-17".into(),
            },
            OrgEvent::LegalHoldLifted {},
        ]
    }

    #[test]
    fn every_org_event_matches_its_schema_and_round_trips() {
        let org = OrgId(Uuid::from_u128(9));
        let seen = all().into_iter().map(|e| {
            let new = e.clone().into_new_event(org, Metadata::default());
            check_schema(&new);
            assert_eq!(new.subject, org.subject());
            let back = OrgEvent::decode(new.event_type.as_str(), new.payload.clone());
            assert!(back.unwrap().unwrap() == e);
            new.event_type.to_string()
        });
        assert_covers(seen, &KNOWN);
    }

    #[test]
    fn a_non_org_role_does_not_decode() {
        let payload = serde_json::json!({"user_id": Uuid::nil(), "role": "NURSE"});
        assert!(OrgEvent::decode("MemberAdded", payload).unwrap().is_err());
        assert!(OrgEvent::decode("PatientRegistered", serde_json::json!({})).is_none());
    }
}
