//! [`Query<T>`]: a typed query string with envelope rejections.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Query parameters (`?family_name=&from=`) as a `T`. A missing, duplicated or invalid
/// parameter is a 400 naming it, never repeating its value (query strings can hold PHI).
/// Unknown parameters are ignored unless `T` denies them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    /// Parses a query string (without the `?`).
    pub fn parse(query: &str) -> Result<T, ApiError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            let path = e.path().to_string();
            let text = e.inner().to_string();
            let named = ["missing field `", "unknown field `", "duplicate field `"]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .and_then(|rest| rest.split('`').next())
                .map(|name| {
                    name.chars()
                        .filter(|c| !c.is_control())
                        .take(64)
                        .collect::<String>()
                });
            let field = match named {
                Some(name) => Some(name),
                None if path != "." => Some(path),
                None => None,
            };
            ApiError::validation_fields("invalid query parameter", field)
        })
    }
}

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::parse(parts.uri.query().unwrap_or("")).map(Query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Search {
        family_name: String,
        limit: Option<u32>,
    }

    #[test]
    fn errors_name_the_parameter_not_the_value() {
        assert_eq!(
            Query::<Search>::parse("family_name=Doe&x=1")
                .unwrap()
                .family_name,
            "Doe"
        );
        for (q, field) in [
            ("limit=1", "family_name"),
            ("family_name=a&limit=Smith", "limit"),
        ] {
            let ApiError::Validation { details, .. } = Query::<Search>::parse(q).unwrap_err()
            else {
                panic!("validation error expected");
            };
            assert_eq!(details, json!({"fields": [field]}), "{q}");
            assert!(!details.to_string().contains("Smith"));
        }
    }
}
