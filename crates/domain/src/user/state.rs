//! The user aggregate: state folded from the `user-<uuid>` stream, and the decisions
//! taken on it. `apply` cannot fail and holds no rule; the decisions hold every rule.

use std::collections::BTreeSet;

use crate::ids::{StreamVersion, UserId};
use crate::roles::Role;

use super::events::UserEvent;
use super::input::RegistrationRole;

/// A person's profile (personal data: no `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// Normalised email.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
}

/// Why a user command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// There is no such user.
    #[error("no such user")]
    NotFound,
    /// The stream already holds a registration.
    #[error("the user is already registered")]
    AlreadyRegistered,
    /// Only platform roles are granted this way.
    #[error("only SUPER:ADMIN, APP:ADMIN and APP:AUDITOR can be granted or revoked here")]
    NotAPlatformRole,
    /// The actor may not do this.
    #[error("only a SUPER:ADMIN may change platform roles")]
    Forbidden,
    /// The last SUPER:ADMIN cannot give the role up by their own hand.
    #[error("a SUPER:ADMIN cannot revoke their own SUPER:ADMIN role")]
    SelfDemotion,
}

/// The state of one account.
#[derive(Clone)]
pub struct User {
    /// The account.
    pub id: UserId,
    /// Events applied so far.
    pub version: StreamVersion,
    /// Set by registration.
    pub profile: Option<Profile>,
    /// BASE:DOCTOR, BASE:PATIENT or none.
    pub base_role: Option<Role>,
    /// Platform roles held.
    pub platform_roles: BTreeSet<Role>,
    /// Whether a second factor is required at login.
    pub mfa_enabled: bool,
}

impl User {
    /// An account with no events yet.
    pub fn new(id: UserId) -> Self {
        Self {
            id,
            version: StreamVersion::EMPTY,
            profile: None,
            base_role: None,
            platform_roles: BTreeSet::new(),
            mfa_enabled: false,
        }
    }

    /// Whether the account exists.
    pub fn exists(&self) -> bool {
        self.profile.is_some()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &UserEvent) {
        self.version = self.version.next();
        match event {
            UserEvent::UserRegistered {
                email,
                first_name,
                last_name,
                base_role,
            } => {
                self.profile = Some(Profile {
                    email: email.clone(),
                    first_name: first_name.clone(),
                    last_name: last_name.clone(),
                });
                self.base_role = *base_role;
            }
            UserEvent::RoleGranted { role } => {
                self.platform_roles.insert(*role);
            }
            UserEvent::RoleRevoked { role } => {
                self.platform_roles.remove(role);
            }
            UserEvent::MfaEnabled {} => self.mfa_enabled = true,
            UserEvent::MfaDisabled {} => self.mfa_enabled = false,
            UserEvent::MfaEnrolled {}
            | UserEvent::LoginFailed { .. }
            | UserEvent::AccountLocked { .. } => {}
        }
    }

    /// Every role held: base role first, then platform roles.
    pub fn roles(&self) -> Vec<Role> {
        self.base_role
            .into_iter()
            .chain(self.platform_roles.iter().copied())
            .collect()
    }

    /// Registers the account; `roles` are platform roles given at creation (CLI only).
    pub fn register(
        &self,
        profile: Profile,
        registration: Option<RegistrationRole>,
        platform_roles: &[Role],
    ) -> Result<Vec<UserEvent>, UserError> {
        if self.exists() {
            return Err(UserError::AlreadyRegistered);
        }
        if platform_roles.iter().any(|r| !r.is_platform()) {
            return Err(UserError::NotAPlatformRole);
        }
        let mut events = vec![UserEvent::UserRegistered {
            email: profile.email,
            first_name: profile.first_name,
            last_name: profile.last_name,
            base_role: registration.and_then(RegistrationRole::base_role),
        }];
        let unique: BTreeSet<Role> = platform_roles.iter().copied().collect();
        events.extend(
            unique
                .into_iter()
                .map(|role| UserEvent::RoleGranted { role }),
        );
        Ok(events)
    }

    /// Grants a platform role; nothing to do if it is already held.
    pub fn grant_role(
        &self,
        actor_roles: &[Role],
        role: Role,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.check_role_change(actor_roles, role)?;
        if self.platform_roles.contains(&role) {
            return Ok(vec![]);
        }
        Ok(vec![UserEvent::RoleGranted { role }])
    }

    /// Revokes a platform role; nothing to do if it is not held.
    pub fn revoke_role(
        &self,
        actor: UserId,
        actor_roles: &[Role],
        role: Role,
    ) -> Result<Vec<UserEvent>, UserError> {
        self.check_role_change(actor_roles, role)?;
        if actor == self.id && role == Role::SuperAdmin {
            return Err(UserError::SelfDemotion);
        }
        if !self.platform_roles.contains(&role) {
            return Ok(vec![]);
        }
        Ok(vec![UserEvent::RoleRevoked { role }])
    }

    fn check_role_change(&self, actor_roles: &[Role], role: Role) -> Result<(), UserError> {
        if !actor_roles.contains(&Role::SuperAdmin) {
            return Err(UserError::Forbidden);
        }
        if !self.exists() {
            return Err(UserError::NotFound);
        }
        if !role.is_platform() {
            return Err(UserError::NotAPlatformRole);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn registered() -> User {
        let mut u = User::new(UserId(Uuid::now_v7()));
        let profile = Profile {
            email: "a@b.org".into(),
            first_name: "A".into(),
            last_name: "B".into(),
        };
        for e in u
            .register(profile, Some(RegistrationRole::Doctor), &[])
            .unwrap()
        {
            u.apply(&e);
        }
        u
    }

    #[test]
    fn registration_gives_the_base_role_once() {
        let u = registered();
        assert_eq!(u.roles(), [Role::BaseDoctor]);
        assert_eq!(u.version, StreamVersion(1));
        let again = Profile {
            email: "x@y.org".into(),
            first_name: "X".into(),
            last_name: "Y".into(),
        };
        assert_eq!(
            u.register(again, None, &[]).unwrap_err(),
            UserError::AlreadyRegistered
        );
    }

    #[test]
    fn only_a_super_admin_changes_platform_roles_and_only_platform_ones() {
        let u = registered();
        assert_eq!(
            u.grant_role(&[Role::AppAdmin], Role::AppAuditor)
                .unwrap_err(),
            UserError::Forbidden
        );
        assert_eq!(
            u.grant_role(&[Role::SuperAdmin], Role::OrgAdmin)
                .unwrap_err(),
            UserError::NotAPlatformRole
        );
        let events = u.grant_role(&[Role::SuperAdmin], Role::AppAuditor).unwrap();
        let mut u2 = u.clone();
        u2.apply(&events[0]);
        assert!(u2
            .grant_role(&[Role::SuperAdmin], Role::AppAuditor)
            .unwrap()
            .is_empty());
        assert_eq!(u2.roles(), [Role::BaseDoctor, Role::AppAuditor]);
    }

    #[test]
    fn a_super_admin_cannot_demote_themselves() {
        let mut u = registered();
        u.apply(&UserEvent::RoleGranted {
            role: Role::SuperAdmin,
        });
        assert_eq!(
            u.revoke_role(u.id, &[Role::SuperAdmin], Role::SuperAdmin)
                .unwrap_err(),
            UserError::SelfDemotion
        );
    }
}
