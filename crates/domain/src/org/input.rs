//! Validation of what an organisation is given: its name, a legal hold's reason.

use crate::field::{text, FieldError, Lines};

/// Why a name is refused.
const NAME: FieldError = FieldError::new(
    "name",
    "must be 1 to 200 characters without control characters",
);

/// Why a legal hold's reason is refused.
const HOLD_REASON: FieldError =
    FieldError::new("reason", "is required: 1 to 500 characters on one line");

/// The longest legal hold reason kept, in characters (`legal_holds.reason`).
pub const MAX_HOLD_REASON_CHARS: usize = 500;

/// A legal hold's reason (an administrator's case reference, not patient data), trimmed:
/// 1 to [`MAX_HOLD_REASON_CHARS`] characters, no control characters.
pub fn validate_hold_reason(reason: &str) -> Result<String, FieldError> {
    text(reason, 1, MAX_HOLD_REASON_CHARS, Lines::Single, HOLD_REASON)
}

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
