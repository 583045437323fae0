//! The httpOnly, Secure, SameSite=Strict cookies web clients authenticate with.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::AppendHeaders;

use carelog_commands::identity::Issued;

/// The access-token cookie.
pub const ACCESS_COOKIE: &str = "paseto_token";
/// The refresh-token cookie (sent only to `/api/auth`).
pub const REFRESH_COOKIE: &str = "refresh_token";

/// Two `Set-Cookie` headers: appended, not inserted (an array of header pairs would
/// `insert`, and the second cookie would silently replace the first).
type SetCookies = AppendHeaders<[(HeaderName, HeaderValue); 2]>;

/// `Set-Cookie` headers for a freshly issued session.
pub fn set(issued: &Issued, access_secs: i64, refresh_secs: i64) -> SetCookies {
    AppendHeaders([
        (
            SET_COOKIE,
            cookie(ACCESS_COOKIE, &issued.token, "/", access_secs),
        ),
        (
            SET_COOKIE,
            cookie(
                REFRESH_COOKIE,
                &issued.refresh_token,
                "/api/auth",
                refresh_secs,
            ),
        ),
    ])
}

/// `Set-Cookie` headers that delete both cookies.
pub fn clear() -> SetCookies {
    AppendHeaders([
        (SET_COOKIE, cookie(ACCESS_COOKIE, "", "/", 0)),
        (SET_COOKIE, cookie(REFRESH_COOKIE, "", "/api/auth", 0)),
    ])
}

fn cookie(name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; Secure; SameSite=Strict; Path={path}; Max-Age={max_age}"
    ))
    .expect("tokens are header-safe ASCII")
}

/// The value of cookie `name`, if the request carries it.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
