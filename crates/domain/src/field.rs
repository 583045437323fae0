//! Field-level validation shared by the aggregates' inputs (organisation names,
//! demographics, record content, reasons). A [`FieldError`] names the field and the rule
//! it broke, never the value: values may be PHI, and the API turns the error into a 400
//! whose `details` say which field to fix.

/// An input field that broke a rule. Carries the field's API name and a fixed sentence,
/// never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct FieldError {
    /// The field as named in the API (`given_name`, `birth_date`, `title`...).
    pub field: &'static str,
    /// What is expected of it, e.g. "must be 1 to 100 characters without control characters".
    pub rule: &'static str,
}

impl FieldError {
    /// `field` broke `rule`.
    pub const fn new(field: &'static str, rule: &'static str) -> Self {
        Self { field, rule }
    }
}

/// Whether control characters other than line breaks and tabs are refused, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    /// One line: no control character at all (names, titles, codes).
    Single,
    /// Free text: `\n`, `\r` and `\t` allowed, other control characters refused.
    Multi,
}

/// `value` trimmed, if it has `min..=max` characters and no forbidden control character.
pub(crate) fn text(
    value: &str,
    min: usize,
    max: usize,
    lines: Lines,
    err: FieldError,
) -> Result<String, FieldError> {
    let value = value.trim();
    let n = value.chars().count();
    let forbidden = |c: char| match lines {
        Lines::Single => c.is_control(),
        Lines::Multi => c.is_control() && !matches!(c, '\n' | '\r' | '\t'),
    };
    if (min..=max).contains(&n) && !value.chars().any(forbidden) {
        Ok(value.to_owned())
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: FieldError = FieldError::new("x", "must be short");

    #[test]
    fn given_padded_text_when_checked_then_it_is_trimmed() {
        assert_eq!(text("  ab ", 1, 2, Lines::Single, E).unwrap(), "ab");
    }

    #[test]
    fn given_text_out_of_bounds_when_checked_then_the_field_is_named_not_the_value() {
        let err = text("abc", 1, 2, Lines::Single, E).unwrap_err();
        assert_eq!(err.to_string(), "x must be short");
        assert!(text("   ", 1, 2, Lines::Single, E).is_err());
    }

    #[test]
    fn given_line_breaks_when_checked_then_only_free_text_accepts_them() {
        assert!(text("a\nb", 1, 9, Lines::Single, E).is_err());
        assert!(text("a\nb\tc", 1, 9, Lines::Multi, E).is_ok());
        assert!(text("a\u{7}b", 1, 9, Lines::Multi, E).is_err());
    }

    #[test]
    fn given_multibyte_text_when_checked_then_characters_are_counted_not_bytes() {
        assert!(text("éé", 1, 2, Lines::Single, E).is_ok());
    }
}
