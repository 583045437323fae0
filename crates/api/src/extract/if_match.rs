//! [`IfMatch`]: the stream version an update was decided on, from `If-Match: "<n>"`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use carelog_domain::StreamVersion;

use crate::error::ApiError;

/// The version in `If-Match` (`None`: no header, or `*`). A handler turns `Some(v)` into
/// `Expected::Exact(v)`; a stale version then answers 409 from the store's conflict.
/// Anything but `"<n>"` (n ≥ 0; the quotes may be left out), `*` or nothing is a 400.
/// Weak tags (`W/"n"`) are refused: `If-Match` compares strongly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IfMatch(pub Option<StreamVersion>);

impl IfMatch {
    /// Parses one header value.
    pub fn parse(value: &[u8]) -> Result<IfMatch, ApiError> {
        let invalid = || {
            ApiError::validation_fields(
                "If-Match must be a quoted version, e.g. \"3\"",
                ["If-Match"],
            )
        };
        let text = std::str::from_utf8(value).map_err(|_| invalid())?.trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let digits = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        Ok(IfMatch(Some(StreamVersion(n))))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(header::IF_MATCH).iter();
        let Some(value) = values.next() else {
            return Ok(IfMatch(None));
        };
        if values.next().is_some() {
            return Err(ApiError::validation_fields(
                "only one If-Match header is allowed",
                ["If-Match"],
            ));
        }
        IfMatch::parse(value.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_garbage_is_refused() {
        assert_eq!(
            IfMatch::parse(b"\"3\"").unwrap(),
            IfMatch(Some(StreamVersion(3)))
        );
        assert_eq!(
            IfMatch::parse(b"7").unwrap(),
            IfMatch(Some(StreamVersion(7)))
        );
        assert_eq!(IfMatch::parse(b"*").unwrap(), IfMatch(None));
        for bad in [
            &b"W/\"3\""[..],
            b"\"-1\"",
            b"\"\"",
            b"abc",
            b"\"1,2\"",
            b"99999999999999999999",
        ] {
            assert!(IfMatch::parse(bad).is_err(), "{bad:?}");
        }
    }
}
