//! Validation of what an organisation is given: its name.

use crate::field::{text, FieldError, Lines};

/// Why a name is refused.
const NAME: FieldError = FieldError::new(
    "name",
    "must be 1 to 200 characters without control characters",
);

/// An organisation's display name, trimmed: 1 to 200 characters, no control characters.
pub fn validate_org_name(name: &str) -> Result<String, FieldError> {
    text(name, 1, 200, Lines::Single, NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_padded_name_when_validated_then_it_is_trimmed() {
        assert_eq!(validate_org_name("  St Mary ").unwrap(), "St Mary");
    }

    #[test]
    fn given_an_empty_long_or_multiline_name_when_validated_then_name_is_refused() {
        for bad in ["", "  ", &"x".repeat(201), "a\nb"] {
            assert_eq!(validate_org_name(bad).unwrap_err().field, "name");
        }
        assert!(validate_org_name(&"x".repeat(200)).is_ok());
    }
}
