//! `Idempotency-Key` on POST: the first answer is kept 24 hours and replayed.
//!
//! For a POST carrying `Idempotency-Key` (1 to 255 printable ASCII characters, else 400):
//!
//! - **scope** = SHA-256(caller ‖ method ‖ path). The caller is the raw `Authorization`
//!   header if present, else the `paseto_token` cookie, else the client address. Hashing
//!   the *credential* (not the token's `sub`) keeps this layer free of token verification,
//!   which runs later in the handler's `Actor` extractor; the price is that a retry made
//!   after the access token was refreshed (every 15 minutes) is a new scope and is not
//!   deduplicated. Unauthenticated POSTs (register, login) are scoped by address: callers
//!   behind one NAT share a scope, but the key is the client's random value, and a replay
//!   only returns the answer to the *identical* request (same body).
//! - **fingerprint** = SHA-256(method ‖ path and query ‖ body).
//!
//! First request: the key is claimed (in progress), the handler runs, its status, a few
//! headers (`content-type`, `etag`, `location`) and body are stored sealed. The handler
//! runs in a task of its own, so a client that disconnects does not cancel a command
//! half-way: the answer is still stored for its retry. Then:
//!
//! - same key, same fingerprint → the stored answer, with `Idempotent-Replayed: true`;
//! - same key, other fingerprint → 422 `IDEMPOTENCY_MISMATCH`;
//! - same key while the first still runs → 409 `CONFLICT`;
//! - a 5xx answer is not stored: the claim is released and the client may retry.
//!
//! The SQL and the sealing live in `carelog_store::idempotency`.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use carelog_store::idempotency::{
    Claim, Fingerprint, Held, IdempotencyStore, Scope, StoredResponse,
};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::state::AppState;

/// `Idempotency-Key`.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotent-Replayed: true` marks a replayed answer.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// The cookie carrying the access token (API.md, auth).
const ACCESS_COOKIE: &str = "paseto_token";
/// Headers of an answer that are stored and replayed.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

/// The middleware (`from_fn_with_state(AppState, idempotency)`).
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    match run(state.idempotency, req, next).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn run(store: IdempotencyStore, req: Request, next: Next) -> Result<Response, ApiError> {
    let key = parse_key(req.headers())?;
    let (parts, body) = req.into_parts();
    // Read the body under the limit (DefaultBodyLimit) to fingerprint it.
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::validation("the request body could not be read"),
        })?;
    let scope = scope(&parts);
    let fingerprint = fingerprint(&parts, &body);

    let held = match store.claim(scope, &key, fingerprint).await? {
        Claim::Claimed(held) => held,
        Claim::Replay(stored) => return Ok(replay(stored)),
        Claim::Mismatch => return Err(ApiError::IdempotencyMismatch),
        Claim::InProgress => {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still being processed".into(),
            ))
        }
    };

    let req = Request::from_parts(parts, Body::from(body));
    // Its own task: a disconnecting client must not cancel the command half-way.
    let task = tokio::spawn(
        handle_claimed(store.clone(), held.clone(), req, next).instrument(tracing::Span::current()),
    );
    match task.await {
        Ok(result) => result,
        Err(e) => {
            release(&store, &held).await;
            Err(ApiError::internal(anyhow::anyhow!(
                "idempotent request task failed: {e}"
            )))
        }
    }
}

/// Runs the handler and stores (or releases) its answer.
async fn handle_claimed(
    store: IdempotencyStore,
    held: Held,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let res = next.run(req).await;
    let (parts, body) = res.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            release(&store, &held).await;
            return Err(ApiError::internal(
                anyhow::Error::new(e).context("reading the answer to store it"),
            ));
        }
    };
    if parts.status.is_server_error() {
        release(&store, &held).await;
    } else {
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    parts
                        .headers
                        .get(name)
                        .map(|v| (name.as_str().to_owned(), v.as_bytes().to_vec()))
                })
                .collect(),
            body: body.to_vec(),
        };
        if let Err(e) = store.complete(&held, &stored).await {
            // The answer stands; the key is freed so a retry runs again rather than
            // seeing "in progress" until the claim is deemed abandoned.
            tracing::error!(error = %e, "storing an idempotent answer failed");
            release(&store, &held).await;
        }
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

async fn release(store: &IdempotencyStore, held: &Held) {
    if let Err(e) = store.release(held).await {
        tracing::error!(error = %e, "releasing an idempotency key failed");
    }
}

/// The key, if acceptable.
fn parse_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::validation_fields(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            ["Idempotency-Key"],
        )
    };
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(invalid());
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| (0x20..=0x7e).contains(b))
    {
        return Err(invalid());
    }
    Ok(String::from_utf8(bytes.to_vec()).expect("printable ASCII is UTF-8"))
}

/// Length-prefixes each part so no two different tuples hash alike.
fn hash_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The access-token cookie's value, if any.
fn access_cookie(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == ACCESS_COOKIE).then_some(value.as_bytes())
        })
}

fn scope(parts: &axum::http::request::Parts) -> Scope {
    let ip;
    let (kind, caller): (&[u8], &[u8]) =
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            (b"authorization", auth.as_bytes())
        } else if let Some(cookie) = access_cookie(&parts.headers) {
            (b"cookie", cookie)
        } else {
            ip = ClientIp::of(parts).0.to_string();
            (b"ip", ip.as_bytes())
        };
    Scope(hash_parts(&[
        b"carelog-idempotency-scope-v1",
        kind,
        caller,
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
    ]))
}

fn fingerprint(parts: &axum::http::request::Parts, body: &[u8]) -> Fingerprint {
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    Fingerprint(hash_parts(&[
        b"carelog-idempotency-fingerprint-v1",
        parts.method.as_str().as_bytes(),
        target.as_bytes(),
        body,
    ]))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = (status, stored.body).into_response();
    let headers = res.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_bytes(&value))
        {
            headers.insert(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let mut h = HeaderMap::new();
        h.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc-123"));
        assert_eq!(parse_key(&h).unwrap(), "abc-123");
        h.insert(
            IDEMPOTENCY_KEY,
            HeaderValue::from_str(&"k".repeat(256)).unwrap(),
        );
        assert!(parse_key(&h).is_err());
        h.insert(
            IDEMPOTENCY_KEY,
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        assert!(parse_key(&h).is_err());
    }

    #[test]
    fn the_access_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; paseto_token=v4.public.x; b=2"),
        );
        assert_eq!(access_cookie(&h), Some(&b"v4.public.x"[..]));
    }
}
