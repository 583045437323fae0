//! Resolves the client address once per request and stores it as
//! [`ClientIp`](crate::extract::ClientIp) in the request's extensions, for the rate
//! limiter, idempotency scopes and [`RequestMeta`](crate::extract::RequestMeta).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::extract::client_ip::{peer, resolve};
use crate::extract::ClientIp;
use crate::state::ApiConfig;

/// The middleware (`from_fn_with_state(config, client_ip)`).
pub async fn client_ip(
    State(config): State<Arc<ApiConfig>>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = match peer(req.extensions()) {
        Some(peer) => resolve(peer.ip(), req.headers(), &config.trusted_proxies),
        // Served without connect info (unit tests): one shared unknown address.
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}
