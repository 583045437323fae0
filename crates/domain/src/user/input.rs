//! Validation of what a person types in: emails, names, the registration role.

use serde::{Deserialize, Serialize};

use crate::roles::Role;

/// Why an input was refused; the API turns it into a 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not an email address we accept.
    #[error("must be an email address")]
    Email,
    /// Empty, too long, or with control characters.
    #[error("must be 1 to 100 characters without control characters")]
    Name,
}

/// What a person registers as (API.md `registration_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RegistrationRole {
    /// An independent doctor: base role BASE:DOCTOR.
    Doctor,
    /// A patient: base role BASE:PATIENT.
    Patient,
    /// Staff: no base role; acts through organisation memberships.
    Staff,
}

impl RegistrationRole {
    /// The base role it gives.
    pub fn base_role(self) -> Option<Role> {
        match self {
            RegistrationRole::Doctor => Some(Role::BaseDoctor),
            RegistrationRole::Patient => Some(Role::BasePatient),
            RegistrationRole::Staff => None,
        }
    }
}

/// The canonical form of an email (trimmed, lower-case), or why it is refused. Only the
/// shape is checked: one `@`, a non-empty local part, a dotted domain, ≤ 254 bytes.
pub fn normalize_email(email: &str) -> Result<String, InputError> {
    let email = email.trim().to_lowercase();
    let Some((local, domain)) = email.split_once('@') else {
        return Err(InputError::Email);
    };
    let ok = email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(email)
    } else {
        Err(InputError::Email)
    }
}

/// A first or last name, trimmed; 1 to 100 characters, no control characters.
pub fn validate_name(name: &str) -> Result<String, InputError> {
    let name = name.trim();
    let n = name.chars().count();
    if (1..=100).contains(&n) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(InputError::Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_shape_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.ORG ").unwrap(),
            "ada@example.org"
        );
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@",
            "ada@example",
            "a da@example.org",
            "ada@@x.org",
            "ada@.org",
        ] {
            assert_eq!(normalize_email(bad), Err(InputError::Email), "{bad:?}");
        }
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(validate_name(" Ada ").unwrap(), "Ada");
        assert!(validate_name("").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
        assert!(validate_name("a\nb").is_err());
    }

    #[test]
    fn staff_registration_gives_no_base_role() {
        assert_eq!(RegistrationRole::Staff.base_role(), None);
        assert_eq!(RegistrationRole::Doctor.base_role(), Some(Role::BaseDoctor));
    }
}
