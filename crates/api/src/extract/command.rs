//! [`Command<T>`]: a JSON command body, strictly parsed.
//!
//! - The `Content-Type` must be `application/json` (or `application/*+json`): else 400.
//! - Over the body limit: 413 (the limit is [`crate::state::ApiConfig::body_limit`]).
//! - Malformed JSON: 400 with `details: {"line", "column"}`.
//! - Unknown, missing or invalid fields: 400 with `details: {"fields": ["path.to.field"]}`.
//!   `T` must carry `#[serde(deny_unknown_fields)]` (and not use `#[serde(flatten)]`, which
//!   disables it) so no field can be mass-assigned.
//!
//! - As `Option<Command<T>>`, an empty body and a JSON `null` are `None`; any other body
//!   follows the rules above.
//!
//! No error repeats a submitted value: serde's messages ("invalid type: string \"…\"") are
//! replaced by fixed texts; only field *names* are echoed.

use axum::body::Bytes;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

/// A command body of type `T`. See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Command<T>(pub T);

impl<S, T> FromRequest<S> for Command<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(not_json());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::validation("the request body could not be read"),
            }
        })?;
        parse(&bytes).map(Command)
    }
}

impl<S, T> OptionalFromRequest<S> for Command<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                _ => ApiError::validation("the request body could not be read"),
            }
        })?;
        if bytes.trim_ascii().is_empty() {
            return Ok(None);
        }
        if !json {
            return Err(not_json());
        }
        if bytes.trim_ascii() == b"null" {
            return Ok(None);
        }
        parse(&bytes).map(|t| Some(Command(t)))
    }
}

fn not_json() -> ApiError {
    ApiError::Validation {
        message: "expected a JSON body (Content-Type: application/json)".into(),
        details: json!({ "content_type": "application/json" }),
    }
}

/// Whether the request says its body is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(Ok(value)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as a `T` with [`Command`]'s error rules (also for bodies read elsewhere).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(from_path_error)?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::Validation {
        message: "malformed JSON".into(),
        details: json!({ "line": e.line(), "column": e.column() }),
    }
}

/// Longest field name echoed back.
const MAX_FIELD_NAME: usize = 64;

fn from_path_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;

    let inner = e.inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => malformed(inner),
        Category::Data => {
            let parent = path_string(e.path());
            let text = inner.to_string();
            let (message, field) = if let Some(name) = backticked(&text, "unknown field `") {
                // The path already ends at the unknown key.
                let field = if parent.is_empty() { name } else { parent };
                ("unknown field", Some(field))
            } else if let Some(name) = backticked(&text, "missing field `") {
                ("missing field", Some(join(&parent, &name)))
            } else if parent.is_empty() {
                ("the body is not a JSON object of the expected shape", None)
            } else {
                ("invalid value", Some(parent))
            };
            ApiError::validation_fields(message, field)
        }
    }
}

/// `a.b[2].c` from serde_path_to_error's path (empty for the root). For an unknown field
/// the path ends at that field; for a missing one, at its parent object.
fn path_string(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;

    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&sanitize(key));
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// The name in serde's "unknown field `name`, expected …" and "missing field `name`".
fn backticked(text: &str, prefix: &str) -> Option<String> {
    let rest = text.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some(sanitize(&rest[..end]))
}

/// Field names are client-chosen: keep them short and printable.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cmd {
        name: String,
        inner: Option<Inner>,
        list: Option<Vec<Inner>>,
    }

    fn details(body: &str) -> Value {
        match parse::<Cmd>(body.as_bytes()).unwrap_err() {
            ApiError::Validation { details, .. } => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_missing_and_invalid_fields_are_named_without_values() {
        assert_eq!(
            details(r#"{"name":"a","role":"SUPER:ADMIN"}"#),
            json!({"fields": ["role"]})
        );
        assert_eq!(details(r#"{}"#), json!({"fields": ["name"]}));
        assert_eq!(
            details(r#"{"name":"a","inner":{"n":"secret-value"}}"#),
            json!({"fields": ["inner.n"]})
        );
        assert_eq!(
            details(r#"{"name":"a","list":[{"n":1},{"n":1,"x":2}]}"#),
            json!({"fields": ["list[1].x"]})
        );
        assert!(!details(r#"{"name":5}"#).to_string().contains('5'));
    }

    #[test]
    fn malformed_json_says_where() {
        assert_eq!(
            details("{\n  \"name\": }"),
            json!({"line": 2, "column": 11})
        );
        assert!(details(r#"{"name":"a"} trailing"#)["line"].is_number());
    }
}
