//! [`Page`]: `?page=&limit=` of list endpoints.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

/// A page of a list: `page` ≥ 1 (default 1), `limit` 1..=100 (default 20). Other query
/// parameters are left to other extractors; out-of-range or non-numeric values are a 400.
/// Document it on a handler with `params(Page)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The page, from 1.
    #[param(minimum = 1, default = 1)]
    pub page: u32,
    /// Items per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            page: 1,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl Page {
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// The largest page size.
    pub const MAX_LIMIT: u32 = 100;

    /// How many items come before this page (for `OFFSET`).
    pub fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.limit)
    }

    /// Parses a query string (without the `?`).
    pub fn from_query(query: &str) -> Result<Page, ApiError> {
        #[derive(Deserialize)]
        struct Raw {
            page: Option<String>,
            limit: Option<String>,
        }
        let raw: Raw = serde_urlencoded::from_str(query).map_err(|_| {
            ApiError::validation_fields("page and limit may appear once each", ["page", "limit"])
        })?;
        let page = match raw.page {
            None => 1,
            Some(p) => match p.parse::<u32>() {
                Ok(p) if p >= 1 => p,
                _ => {
                    return Err(ApiError::validation_fields(
                        "page must be 1 or more",
                        ["page"],
                    ))
                }
            },
        };
        let limit = match raw.limit {
            None => Self::DEFAULT_LIMIT,
            Some(l) => match l.parse::<u32>() {
                Ok(l) if (1..=Self::MAX_LIMIT).contains(&l) => l,
                _ => {
                    return Err(ApiError::validation_fields(
                        "limit must be between 1 and 100",
                        ["limit"],
                    ))
                }
            },
        };
        Ok(Page { page, limit })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Page::from_query(parts.uri.query().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bounds_and_other_parameters() {
        assert_eq!(Page::from_query("").unwrap(), Page::default());
        assert_eq!(
            Page::from_query("family_name=x&page=3&limit=100").unwrap(),
            Page {
                page: 3,
                limit: 100
            }
        );
        assert_eq!(Page::from_query("page=3&limit=10").unwrap().offset(), 20);
        for bad in [
            "page=0",
            "limit=0",
            "limit=101",
            "page=x",
            "page=-1",
            "page=1&page=2",
        ] {
            assert!(Page::from_query(bad).is_err(), "{bad}");
        }
    }
}
