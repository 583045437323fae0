//! [`Authenticated`]: the caller, verified — token signature, key id, audience, expiry,
//! purpose — and then checked against current state: the session must be live (not
//! revoked, idle or expired) and the roles are the user's roles now.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use carelog_commands::{Actor, Ctx};

use super::cookies::{self, ACCESS_COOKIE};
use crate::error::ApiError;
use crate::extract::RequestMeta;
use crate::state::AppState;

/// An authenticated caller and the command context of the request.
pub struct Authenticated {
    /// Who.
    pub actor: Actor,
    /// Request id, client, endpoint, time.
    pub ctx: Ctx,
}

/// Query parameters that would carry a token in a URL (logged by proxies, kept in
/// browser history): refused outright.
const TOKEN_PARAMS: [&str; 8] = [
    "token",
    "access_token",
    "paseto",
    "paseto_token",
    "refresh_token",
    "mfa_token",
    "authorization",
    "bearer",
];

/// Whether the query string carries a token: a parameter named like one (compared after
/// percent-decoding, so `%74oken` is `token`), or any value that looks like a PASETO
/// (`v<digits>.local.…` / `v<digits>.public.…`), whatever its name.
fn token_in_query(parts: &Parts) -> bool {
    parts.uri.query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| {
            TOKEN_PARAMS
                .iter()
                .any(|t| k.trim().eq_ignore_ascii_case(t))
                || looks_like_paseto(&v)
        })
    })
}

/// `v<digits>.local.` or `v<digits>.public.` at the start (case-insensitive).
fn looks_like_paseto(value: &str) -> bool {
    let mut it = value.trim().splitn(3, '.');
    let (Some(version), Some(purpose), Some(_)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    let version_ok = version.len() >= 2
        && version[..1].eq_ignore_ascii_case("v")
        && version[1..].bytes().all(|b| b.is_ascii_digit());
    version_ok && (purpose.eq_ignore_ascii_case("local") || purpose.eq_ignore_ascii_case("public"))
}

/// The bearer token and whether it came from the cookie.
fn credential(parts: &Parts) -> Option<(String, bool)> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_owned(), false));
    }
    cookies::get(&parts.headers, ACCESS_COOKIE).map(|t| (t.to_owned(), true))
}

/// Whether `method` may change state (everything but GET, HEAD, OPTIONS).
pub(super) fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request carries `X-Requested-With` (any value), which a cross-site form
/// cannot send: required on every write authenticated by a cookie.
pub(super) fn has_requested_with(headers: &HeaderMap) -> bool {
    headers.contains_key("x-requested-with")
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let meta = RequestMeta::of(parts);
        let path = parts.extensions.get::<MatchedPath>();
        let ctx = super::ctx(&meta, parts.method.as_str(), path);
        if token_in_query(parts) {
            return Err(ApiError::Unauthorized(
                "tokens are not accepted in the query string".into(),
            ));
        }
        let Some((token, from_cookie)) = credential(parts) else {
            return Err(ApiError::Unauthorized("authentication required".into()));
        };
        // The token first: a missing, forged, expired or revoked one is 401 however it came.
        let actor = state.identity.authenticate(&token, &ctx).await?;
        if from_cookie && is_write(&parts.method) && !has_requested_with(&parts.headers) {
            // CSRF: a cross-site form can send cookies but not custom headers. The caller
            // is authenticated, the request is not allowed: 403.
            return Err(ApiError::Forbidden);
        }
        Ok(Authenticated { actor, ctx })
    }
}
