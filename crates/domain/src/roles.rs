//! Roles (API.md "Roles"). A user holds at most one base role, any platform roles
//! granted, and (later) organisation memberships each with one org role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Every role name carelog knows, as written in tokens, metadata and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Platform super-administrator: grants platform roles.
    SuperAdmin,
    /// Platform administrator.
    AppAdmin,
    /// Platform-wide, read-only auditor.
    AppAuditor,
    /// Administrator of one organisation.
    OrgAdmin,
    /// Doctor within an organisation.
    OrgDoctor,
    /// Staff within an organisation.
    OrgStaff,
    /// Auditor within an organisation.
    OrgAuditor,
    /// Independent doctor.
    BaseDoctor,
    /// Patient account.
    BasePatient,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 9] = [
        Role::SuperAdmin,
        Role::AppAdmin,
        Role::AppAuditor,
        Role::OrgAdmin,
        Role::OrgDoctor,
        Role::OrgStaff,
        Role::OrgAuditor,
        Role::BaseDoctor,
        Role::BasePatient,
    ];

    /// The role's name, e.g. `SUPER:ADMIN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "SUPER:ADMIN",
            Role::AppAdmin => "APP:ADMIN",
            Role::AppAuditor => "APP:AUDITOR",
            Role::OrgAdmin => "ORG:ADMIN",
            Role::OrgDoctor => "ORG:DOCTOR",
            Role::OrgStaff => "ORG:STAFF",
            Role::OrgAuditor => "ORG:AUDITOR",
            Role::BaseDoctor => "BASE:DOCTOR",
            Role::BasePatient => "BASE:PATIENT",
        }
    }

    /// Platform roles are granted by a SUPER:ADMIN (or the CLI for the first one).
    pub fn is_platform(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::AppAdmin | Role::AppAuditor)
    }

    /// Org roles are held through a membership of one organisation.
    pub fn is_org(self) -> bool {
        matches!(
            self,
            Role::OrgAdmin | Role::OrgDoctor | Role::OrgStaff | Role::OrgAuditor
        )
    }

    /// Base roles come with registration.
    pub fn is_base(self) -> bool {
        matches!(self, Role::BaseDoctor | Role::BasePatient)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom("unknown role"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("ADMIN".parse::<Role>().is_err());
    }

    #[test]
    fn platform_and_base_roles_are_told_apart() {
        assert!(Role::AppAuditor.is_platform() && !Role::AppAuditor.is_base());
        assert!(Role::BasePatient.is_base() && !Role::OrgStaff.is_platform());
        assert!(Role::OrgAuditor.is_org() && !Role::AppAuditor.is_org());
    }
}
