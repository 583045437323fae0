//! Validation of demographics as typed in (register and PATCH). Every error names the
//! field ([`FieldError`]), never its value: the values are PHI.

use chrono::NaiveDate;

use crate::field::{text, FieldError, Lines};

use super::events::Demographics;

const GIVEN_NAME: FieldError = FieldError::new(
    "given_name",
    "must be 1 to 100 characters without control characters",
);
const FAMILY_NAME: FieldError = FieldError::new(
    "family_name",
    "must be 1 to 100 characters without control characters",
);
const BIRTH_DATE: FieldError =
    FieldError::new("birth_date", "must be a date from 1900-01-01 up to today");
const PHONE: FieldError = FieldError::new(
    "phone",
    "must be 1 to 40 characters of digits, spaces and + - ( )",
);
const EMAIL: FieldError = FieldError::new(
    "email",
    "must be an email address (text@text) of at most 254 characters",
);
const ADDRESS: FieldError = FieldError::new(
    "address",
    "must be 1 to 500 characters without control characters other than line breaks",
);
const NATIONAL_ID: FieldError = FieldError::new(
    "national_id",
    "must be 1 to 64 characters without control characters",
);

/// A given name, trimmed: 1 to 100 characters, no control characters.
pub fn validate_given_name(value: &str) -> Result<String, FieldError> {
    text(value, 1, 100, Lines::Single, GIVEN_NAME)
}

/// A family name, trimmed: 1 to 100 characters, no control characters.
pub fn validate_family_name(value: &str) -> Result<String, FieldError> {
    text(value, 1, 100, Lines::Single, FAMILY_NAME)
}

/// A birth date: not after `today` (handed in: the domain has no clock), not before
/// 1900-01-01.
pub fn validate_birth_date(value: NaiveDate, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");
    if (earliest..=today).contains(&value) {
        Ok(value)
    } else {
        Err(BIRTH_DATE)
    }
}

/// A phone number, trimmed: 1 to 40 characters, digits, spaces and `+ - ( )` only, with
/// at least one digit.
pub fn validate_phone(value: &str) -> Result<String, FieldError> {
    let value = text(value, 1, 40, Lines::Single, PHONE)?;
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')');
    if value.chars().all(allowed) && value.chars().any(|c| c.is_ascii_digit()) {
        Ok(value)
    } else {
        Err(PHONE)
    }
}

/// An email address, trimmed: exactly one `@` with text on both sides, no whitespace,
/// at most 254 characters. Kept as typed (a patient's contact, not a login).
pub fn validate_email(value: &str) -> Result<String, FieldError> {
    let value = text(value, 3, 254, Lines::Single, EMAIL)?;
    let ok = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(value)
    } else {
        Err(EMAIL)
    }
}

/// A postal address, trimmed: 1 to 500 characters; line breaks allowed.
pub fn validate_address(value: &str) -> Result<String, FieldError> {
    text(value, 1, 500, Lines::Multi, ADDRESS)
}

/// A national identifier, trimmed: 1 to 64 characters, no control characters.
pub fn validate_national_id(value: &str) -> Result<String, FieldError> {
    text(value, 1, 64, Lines::Single, NATIONAL_ID)
}

/// Every field of `d` checked and trimmed; the first field in error is named.
pub fn validate_demographics(
    d: Demographics,
    today: NaiveDate,
) -> Result<Demographics, FieldError> {
    Ok(Demographics {
        given_name: validate_given_name(&d.given_name)?,
        family_name: validate_family_name(&d.family_name)?,
        birth_date: validate_birth_date(d.birth_date, today)?,
        sex: d.sex,
        phone: d.phone.as_deref().map(validate_phone).transpose()?,
        email: d.email.as_deref().map(validate_email).transpose()?,
        address: d.address.as_deref().map(validate_address).transpose()?,
        national_id: d
            .national_id
            .as_deref()
            .map(validate_national_id)
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patient::Sex;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

    fn ada() -> Demographics {
        Demographics {
            given_name: " Ada ".into(),
            family_name: "Lovelace".into(),
            birth_date: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
            sex: Sex::Female,
            phone: Some("+44 (20) 7946-0958".into()),
            email: Some("ada@example.org".into()),
            address: Some("12 St James's Square\nLondon".into()),
            national_id: Some("QQ 12 34 56 C".into()),
        }
    }

    #[test]
    fn given_valid_demographics_when_validated_then_they_are_trimmed() {
        let d = validate_demographics(ada(), today()).unwrap();
        assert_eq!(d.given_name, "Ada");
        assert_eq!(d.phone.as_deref(), Some("+44 (20) 7946-0958"));
    }

    #[test]
    fn given_bad_names_when_validated_then_the_name_field_is_named() {
        for bad in ["", "  ", &"x".repeat(101), "a\tb"] {
            assert_eq!(validate_given_name(bad).unwrap_err().field, "given_name");
            assert_eq!(validate_family_name(bad).unwrap_err().field, "family_name");
        }
        assert!(validate_given_name(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn given_a_birth_date_when_validated_then_it_lies_between_1900_and_today() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert!(validate_birth_date(d(1900, 1, 1), today()).is_ok());
        assert!(validate_birth_date(today(), today()).is_ok());
        assert_eq!(
            validate_birth_date(d(1899, 12, 31), today())
                .unwrap_err()
                .field,
            "birth_date"
        );
        assert!(validate_birth_date(d(2025, 6, 2), today()).is_err());
    }

    #[test]
    fn given_phones_when_validated_then_only_dialable_characters_pass() {
        assert!(validate_phone("0123 456").is_ok());
        assert!(validate_phone(&"1".repeat(40)).is_ok());
        for bad in ["", "call me", "+", &"1".repeat(41), "12#34"] {
            assert_eq!(validate_phone(bad).unwrap_err().field, "phone", "{bad:?}");
        }
    }

    #[test]
    fn given_emails_when_validated_then_one_at_with_text_around_it_passes() {
        assert_eq!(validate_email(" a@b ").unwrap(), "a@b");
        let longest = format!("{}@b.org", "a".repeat(248));
        assert!(validate_email(&longest).is_ok());
        assert!(validate_email(&format!("a{longest}")).is_err());
        for bad in ["", "ab", "@b", "a@", "a@@b", "a@b@c", "a b@c"] {
            assert_eq!(validate_email(bad).unwrap_err().field, "email", "{bad:?}");
        }
    }

    #[test]
    fn given_address_and_national_id_when_too_long_then_refused() {
        assert!(validate_address(&"x".repeat(500)).is_ok());
        assert_eq!(
            validate_address(&"x".repeat(501)).unwrap_err().field,
            "address"
        );
        assert!(validate_national_id(&"x".repeat(64)).is_ok());
        assert_eq!(
            validate_national_id(&"x".repeat(65)).unwrap_err().field,
            "national_id"
        );
    }

    #[test]
    fn given_an_optional_field_in_error_when_validated_then_it_is_named_not_shown() {
        let mut d = ada();
        d.email = Some("secret-value".into());
        let Err(err) = validate_demographics(d, today()) else {
            panic!("accepted")
        };
        assert_eq!(err.field, "email");
        assert!(!err.to_string().contains("secret-value"));
    }
}
