//! Validation of a record's content as typed in (create and amend). Every error names
//! the field ([`FieldError`]), never its value: the values are PHI.

use chrono::{DateTime, Duration, Utc};

use crate::field::{text, FieldError, Lines};

use super::events::RecordContent;

/// How far in the future of `now` a `recorded_at` may lie (clock skew of the client).
pub const MAX_RECORDED_AT_SKEW: Duration = Duration::minutes(5);
/// The largest `data`, serialised as JSON.
pub const MAX_DATA_BYTES: usize = 64 * 1024;

const TITLE: FieldError = FieldError::new(
    "title",
    "must be 1 to 200 characters without control characters",
);
const BODY: FieldError = FieldError::new(
    "body",
    "must be 1 to 100000 characters without control characters other than line breaks and tabs",
);
const CODE: FieldError = FieldError::new("code", "must be 1 to 64 printable ASCII characters");
const DATA: FieldError = FieldError::new("data", "must be at most 64 KiB of JSON");
const RECORDED_AT: FieldError = FieldError::new(
    "recorded_at",
    "must not be more than 5 minutes in the future",
);
const REASON: FieldError = FieldError::new(
    "reason",
    "is required: 1 to 1000 characters without control characters other than line breaks",
);

/// Every field of `content` checked (strings trimmed), `now` bounding `recorded_at`.
pub fn validate_content(
    content: RecordContent,
    now: DateTime<Utc>,
) -> Result<RecordContent, FieldError> {
    Ok(RecordContent {
        code: content.code.as_deref().map(validate_code).transpose()?,
        title: text(&content.title, 1, 200, Lines::Single, TITLE)?,
        body: text(&content.body, 1, 100_000, Lines::Multi, BODY)?,
        data: content.data.map(validate_data).transpose()?,
        recorded_at: validate_recorded_at(content.recorded_at, now)?,
    })
}

/// A code (ICD-10, LOINC...), trimmed: 1 to 64 printable ASCII characters.
pub fn validate_code(code: &str) -> Result<String, FieldError> {
    let code = code.trim();
    if (1..=64).contains(&code.len()) && code.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Ok(code.to_owned())
    } else {
        Err(CODE)
    }
}

/// Any JSON value of at most [`MAX_DATA_BYTES`] once serialised.
pub fn validate_data(data: serde_json::Value) -> Result<serde_json::Value, FieldError> {
    let size = serde_json::to_vec(&data).map_err(|_| DATA)?.len();
    if size <= MAX_DATA_BYTES {
        Ok(data)
    } else {
        Err(DATA)
    }
}

/// A time at most [`MAX_RECORDED_AT_SKEW`] after `now`.
pub fn validate_recorded_at(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, FieldError> {
    if at <= now + MAX_RECORDED_AT_SKEW {
        Ok(at)
    } else {
        Err(RECORDED_AT)
    }
}

/// Why a record is voided, trimmed: required, at most 1000 characters.
pub fn validate_void_reason(reason: &str) -> Result<String, FieldError> {
    text(reason, 1, 1000, Lines::Multi, REASON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    fn note() -> RecordContent {
        RecordContent {
            code: Some(" J06.9 ".into()),
            title: " Sore throat ".into(),
            body: "Seen today.\nRest advised.".into(),
            data: Some(json!({"temp_c": 38.2})),
            recorded_at: now(),
        }
    }

    fn field_of(c: RecordContent) -> &'static str {
        match validate_content(c, now()) {
            Err(e) => e.field,
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn given_valid_content_when_validated_then_strings_are_trimmed() {
        let c = validate_content(note(), now()).unwrap();
        assert_eq!(c.code.as_deref(), Some("J06.9"));
        assert_eq!(c.title, "Sore throat");
        assert_eq!(c.body, "Seen today.\nRest advised.");
    }

    #[test]
    fn given_a_bad_title_when_validated_then_title_is_named() {
        for bad in ["", " ", &"x".repeat(201), "a\nb"] {
            assert_eq!(
                field_of(RecordContent {
                    title: bad.into(),
                    ..note()
                }),
                "title"
            );
        }
    }

    #[test]
    fn given_a_bad_body_when_validated_then_body_is_named() {
        assert_eq!(
            field_of(RecordContent {
                body: "".into(),
                ..note()
            }),
            "body"
        );
        let long = "x".repeat(100_001);
        assert_eq!(
            field_of(RecordContent {
                body: long,
                ..note()
            }),
            "body"
        );
        assert!(validate_content(
            RecordContent {
                body: "x".repeat(100_000),
                ..note()
            },
            now()
        )
        .is_ok());
    }

    #[test]
    fn given_codes_when_validated_then_only_short_printable_ascii_passes() {
        assert!(validate_code(&"A".repeat(64)).is_ok());
        for bad in ["", &"A".repeat(65), "J06\u{e9}", "J\n06"] {
            assert_eq!(validate_code(bad).unwrap_err().field, "code", "{bad:?}");
        }
    }

    #[test]
    fn given_data_when_validated_then_it_is_bounded_by_its_serialised_size() {
        assert!(validate_data(json!([1, "two", {"three": null}])).is_ok());
        let big = json!({ "x": "y".repeat(MAX_DATA_BYTES) });
        assert_eq!(validate_data(big).unwrap_err().field, "data");
    }

    #[test]
    fn given_recorded_at_when_validated_then_at_most_five_minutes_ahead_passes() {
        assert!(validate_recorded_at(now() + Duration::minutes(5), now()).is_ok());
        assert!(validate_recorded_at(now() - Duration::days(3650), now()).is_ok());
        let late = now() + Duration::minutes(5) + Duration::seconds(1);
        assert_eq!(
            validate_recorded_at(late, now()).unwrap_err().field,
            "recorded_at"
        );
    }

    #[test]
    fn given_a_void_reason_when_validated_then_it_is_required() {
        assert_eq!(
            validate_void_reason(" entered in error ").unwrap(),
            "entered in error"
        );
        assert_eq!(validate_void_reason("  ").unwrap_err().field, "reason");
        assert!(validate_void_reason(&"x".repeat(1001)).is_err());
    }
}
