//! The organisation aggregate: state folded from the `org-<uuid>` stream, and the
//! decisions taken on it. `apply` cannot fail and holds no rule; the decisions hold every
//! rule (org roles only, one role per member, always at least one ORG:ADMIN).

use std::collections::BTreeMap;

use crate::field::FieldError;
use crate::ids::{OrgId, StreamVersion, UserId};
use crate::roles::Role;

use super::events::OrgEvent;
use super::input::{validate_hold_reason, validate_org_name};

/// Why an organisation command was refused. Messages carry no name and no PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    /// There is no such organisation (404).
    #[error("no such organisation")]
    NotFound,
    /// The stream already holds a creation (409).
    #[error("the organisation already exists")]
    AlreadyExists,
    /// An input field broke a rule (400).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Memberships carry ORG:ADMIN, ORG:DOCTOR, ORG:STAFF or ORG:AUDITOR only (400).
    #[error("a member's role must be ORG:ADMIN, ORG:DOCTOR, ORG:STAFF or ORG:AUDITOR")]
    NotAnOrgRole,
    /// The user is already a member with that very role (409).
    #[error("the user is already a member with this role")]
    AlreadyMember,
    /// The user is not a member (404).
    #[error("the user is not a member of this organisation")]
    NotAMember,
    /// The change would leave the organisation without an ORG:ADMIN (409).
    #[error("an organisation keeps at least one ORG:ADMIN")]
    LastAdmin,
    /// There is no legal hold to lift (404).
    #[error("the organisation has no legal hold")]
    NoLegalHold,
}

/// The state of one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// The organisation.
    pub id: OrgId,
    /// Events applied so far.
    pub version: StreamVersion,
    /// Set by creation.
    pub name: Option<String>,
    /// Members and their org role.
    pub members: BTreeMap<UserId, Role>,
    /// The reason of the legal hold in place, if any (none by default).
    pub legal_hold: Option<String>,
}

impl Organization {
    /// An organisation with no events yet.
    pub fn new(id: OrgId) -> Self {
        Self {
            id,
            version: StreamVersion::EMPTY,
            name: None,
            members: BTreeMap::new(),
            legal_hold: None,
        }
    }

    /// The state after `events`, in stream order (history `as_of` folds a prefix).
    pub fn fold<'a>(id: OrgId, events: impl IntoIterator<Item = &'a OrgEvent>) -> Self {
        let mut org = Self::new(id);
        for event in events {
            org.apply(event);
        }
        org
    }

    /// Whether the organisation exists.
    pub fn exists(&self) -> bool {
        self.name.is_some()
    }

    /// `user`'s org role, if a member.
    pub fn role_of(&self, user: UserId) -> Option<Role> {
        self.members.get(&user).copied()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &OrgEvent) {
        self.version = self.version.next();
        match event {
            OrgEvent::OrganizationCreated { name, .. } => self.name = Some(name.clone()),
            OrgEvent::MemberAdded { user_id, role }
            | OrgEvent::MemberRoleChanged { user_id, role } => {
                self.members.insert(*user_id, *role);
            }
            OrgEvent::MemberRemoved { user_id } => {
                self.members.remove(user_id);
            }
            OrgEvent::LegalHoldPlaced { reason } => self.legal_hold = Some(reason.clone()),
            OrgEvent::LegalHoldLifted {} => self.legal_hold = None,
        }
    }

    /// Creates the organisation; `creator` becomes its first ORG:ADMIN.
    pub fn create(&self, name: &str, creator: UserId) -> Result<Vec<OrgEvent>, OrgError> {
        if self.exists() {
            return Err(OrgError::AlreadyExists);
        }
        let name = validate_org_name(name)?;
        Ok(vec![
            OrgEvent::OrganizationCreated {
                name,
                created_by: creator,
            },
            OrgEvent::MemberAdded {
                user_id: creator,
                role: Role::OrgAdmin,
            },
        ])
    }

    /// Adds `user` with `role`, or changes the role of a member.
    pub fn add_member(&self, user: UserId, role: Role) -> Result<Vec<OrgEvent>, OrgError> {
        self.check_exists()?;
        if !role.is_org() {
            return Err(OrgError::NotAnOrgRole);
        }
        match self.role_of(user) {
            None => Ok(vec![OrgEvent::MemberAdded {
                user_id: user,
                role,
            }]),
            Some(current) if current == role => Err(OrgError::AlreadyMember),
            Some(current) => {
                if current == Role::OrgAdmin && self.is_last_admin(user) {
                    return Err(OrgError::LastAdmin);
                }
                Ok(vec![OrgEvent::MemberRoleChanged {
                    user_id: user,
                    role,
                }])
            }
        }
    }

    /// Removes a member.
    pub fn remove_member(&self, user: UserId) -> Result<Vec<OrgEvent>, OrgError> {
        self.check_exists()?;
        if self.role_of(user).is_none() {
            return Err(OrgError::NotAMember);
        }
        if self.is_last_admin(user) {
            return Err(OrgError::LastAdmin);
        }
        Ok(vec![OrgEvent::MemberRemoved { user_id: user }])
    }

    /// Places a legal hold with `reason` (a case reference, 1 to 500 characters on one
    /// line), or replaces the reason of the hold in place; nothing if it is the same.
    pub fn place_legal_hold(&self, reason: &str) -> Result<Vec<OrgEvent>, OrgError> {
        self.check_exists()?;
        let reason = validate_hold_reason(reason)?;
        if self.legal_hold.as_deref() == Some(reason.as_str()) {
            return Ok(vec![]);
        }
        Ok(vec![OrgEvent::LegalHoldPlaced { reason }])
    }

    /// Lifts the legal hold in place.
    pub fn lift_legal_hold(&self) -> Result<Vec<OrgEvent>, OrgError> {
        self.check_exists()?;
        if self.legal_hold.is_none() {
            return Err(OrgError::NoLegalHold);
        }
        Ok(vec![OrgEvent::LegalHoldLifted {}])
    }

    fn check_exists(&self) -> Result<(), OrgError> {
        if self.exists() {
            Ok(())
        } else {
            Err(OrgError::NotFound)
        }
    }

    /// Whether `user` is the only ORG:ADMIN.
    fn is_last_admin(&self, user: UserId) -> bool {
        self.role_of(user) == Some(Role::OrgAdmin)
            && self
                .members
                .values()
                .filter(|r| **r == Role::OrgAdmin)
                .count()
                == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn user(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    const CREATOR: u128 = 1;

    fn given_an_org_created_by_the_creator() -> Organization {
        let org = Organization::new(OrgId(Uuid::from_u128(100)));
        let events = org.create("St Mary", user(CREATOR)).unwrap();
        Organization::fold(org.id, &events)
    }

    fn after(mut org: Organization, events: Vec<OrgEvent>) -> Organization {
        events.iter().for_each(|e| org.apply(e));
        org
    }

    #[test]
    fn given_no_org_when_created_then_the_creator_is_its_first_admin() {
        let org = given_an_org_created_by_the_creator();
        assert!(org.exists());
        assert_eq!(org.name.as_deref(), Some("St Mary"));
        assert_eq!(org.role_of(user(CREATOR)), Some(Role::OrgAdmin));
        assert_eq!(org.version, StreamVersion(2));
    }

    #[test]
    fn given_an_org_when_created_again_then_it_already_exists() {
        let org = given_an_org_created_by_the_creator();
        assert_eq!(
            org.create("Other", user(2)).unwrap_err(),
            OrgError::AlreadyExists
        );
    }

    #[test]
    fn given_no_org_when_created_with_a_blank_name_then_the_name_field_is_refused() {
        let org = Organization::new(OrgId(Uuid::nil()));
        let err = org.create(" ", user(1)).unwrap_err();
        assert!(matches!(err, OrgError::Invalid(f) if f.field == "name"));
    }

    #[test]
    fn given_no_org_when_a_member_is_added_or_removed_then_it_is_not_found() {
        let org = Organization::new(OrgId(Uuid::nil()));
        assert_eq!(
            org.add_member(user(2), Role::OrgDoctor).unwrap_err(),
            OrgError::NotFound
        );
        assert_eq!(org.remove_member(user(2)).unwrap_err(), OrgError::NotFound);
    }

    #[test]
    fn given_an_org_when_a_new_user_is_added_then_member_added() {
        let org = given_an_org_created_by_the_creator();
        let events = org.add_member(user(2), Role::OrgDoctor).unwrap();
        assert!(
            events
                == [OrgEvent::MemberAdded {
                    user_id: user(2),
                    role: Role::OrgDoctor
                }]
        );
        assert_eq!(after(org, events).role_of(user(2)), Some(Role::OrgDoctor));
    }

    #[test]
    fn given_an_org_when_a_non_org_role_is_given_then_it_is_refused() {
        let org = given_an_org_created_by_the_creator();
        for role in [
            Role::SuperAdmin,
            Role::AppAdmin,
            Role::AppAuditor,
            Role::BaseDoctor,
            Role::BasePatient,
        ] {
            assert_eq!(
                org.add_member(user(2), role).unwrap_err(),
                OrgError::NotAnOrgRole
            );
        }
    }

    #[test]
    fn given_a_member_when_added_with_the_same_role_then_conflict() {
        let org = given_an_org_created_by_the_creator();
        let org = after(
            org.clone(),
            org.add_member(user(2), Role::OrgStaff).unwrap(),
        );
        assert_eq!(
            org.add_member(user(2), Role::OrgStaff).unwrap_err(),
            OrgError::AlreadyMember
        );
    }

    #[test]
    fn given_a_member_when_added_with_another_role_then_the_role_changes() {
        let org = given_an_org_created_by_the_creator();
        let org = after(
            org.clone(),
            org.add_member(user(2), Role::OrgStaff).unwrap(),
        );
        let events = org.add_member(user(2), Role::OrgAuditor).unwrap();
        assert!(matches!(
            events[..],
            [OrgEvent::MemberRoleChanged {
                role: Role::OrgAuditor,
                ..
            }]
        ));
        let org = after(org, events);
        assert_eq!(org.role_of(user(2)), Some(Role::OrgAuditor));
        assert_eq!(org.members.len(), 2);
    }

    #[test]
    fn given_the_last_admin_when_demoted_or_removed_then_conflict() {
        let org = given_an_org_created_by_the_creator();
        assert_eq!(
            org.add_member(user(CREATOR), Role::OrgDoctor).unwrap_err(),
            OrgError::LastAdmin
        );
        assert_eq!(
            org.remove_member(user(CREATOR)).unwrap_err(),
            OrgError::LastAdmin
        );
    }

    #[test]
    fn given_two_admins_when_one_is_demoted_or_removed_then_it_is_allowed() {
        let org = given_an_org_created_by_the_creator();
        let org = after(
            org.clone(),
            org.add_member(user(2), Role::OrgAdmin).unwrap(),
        );
        assert!(org.add_member(user(CREATOR), Role::OrgDoctor).is_ok());
        let events = org.remove_member(user(CREATOR)).unwrap();
        assert!(
            events
                == [OrgEvent::MemberRemoved {
                    user_id: user(CREATOR)
                }]
        );
        let org = after(org, events);
        assert_eq!(org.role_of(user(CREATOR)), None);
    }

    #[test]
    fn given_a_non_member_when_removed_then_not_a_member() {
        let org = given_an_org_created_by_the_creator();
        assert_eq!(
            org.remove_member(user(9)).unwrap_err(),
            OrgError::NotAMember
        );
    }

    #[test]
    fn given_an_org_when_a_legal_hold_is_placed_replaced_and_lifted_then_it_follows() {
        let org = given_an_org_created_by_the_creator();
        assert_eq!(org.legal_hold, None, "none by default");
        assert_eq!(org.lift_legal_hold().unwrap_err(), OrgError::NoLegalHold);
        let org = after(org.clone(), org.place_legal_hold(" case 17 ").unwrap());
        assert_eq!(org.legal_hold.as_deref(), Some("case 17"));
        assert!(org.place_legal_hold("case 17").unwrap().is_empty());
        let org = after(org.clone(), org.place_legal_hold("case 18").unwrap());
        assert_eq!(org.legal_hold.as_deref(), Some("case 18"));
        let org = after(org.clone(), org.lift_legal_hold().unwrap());
        assert_eq!(org.legal_hold, None);
        for bad in ["", "  ", "a\nb", &"x".repeat(501)] {
            assert!(matches!(
                org.place_legal_hold(bad).unwrap_err(),
                OrgError::Invalid(f) if f.field == "reason"
            ));
        }
        let none = Organization::new(OrgId(Uuid::nil()));
        assert_eq!(none.place_legal_hold("x").unwrap_err(), OrgError::NotFound);
    }

    #[test]
    fn given_a_member_when_removed_then_they_are_gone() {
        let org = given_an_org_created_by_the_creator();
        let org = after(
            org.clone(),
            org.add_member(user(2), Role::OrgDoctor).unwrap(),
        );
        let org = after(org.clone(), org.remove_member(user(2)).unwrap());
        assert_eq!(org.role_of(user(2)), None);
        assert_eq!(org.version, StreamVersion(4));
    }
}
