//! [`Authenticated`]: the caller, verified — token signature, key id, audience, expiry,
//! purpose — and then checked against current state: the session must be live (not
//! revoked, idle or expired) and the roles are the user's roles now.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::Method;
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
const TOKEN_PARAMS: [&str; 4] = ["token", "access_token", "paseto", "paseto_token"];

fn token_in_query(parts: &Parts) -> bool {
    parts.uri.query().is_some_and(|q| {
        q.split('&')
            .filter_map(|kv| kv.split('=').next())
            .any(|k| TOKEN_PARAMS.iter().any(|t| k.eq_ignore_ascii_case(t)))
    })
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
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if from_cookie && !safe && !parts.headers.contains_key("x-requested-with") {
            // CSRF: a cross-site form can send cookies but not custom headers.
            return Err(ApiError::Forbidden);
        }
        let actor = state.identity.authenticate(&token, &ctx).await?;
        Ok(Authenticated { actor, ctx })
    }
}
