//! The client's address: the peer, or — only when the peer is a trusted proxy — the
//! rightmost address in `X-Forwarded-For` that is not itself a trusted proxy.
//!
//! The leftmost `X-Forwarded-For` entry is whatever the client chose to send, so it is
//! never believed; each trusted proxy appends the address it saw, so walking from the right
//! and skipping our own proxies finds the first hop we did not control.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName};

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The resolved client address, put into the request's extensions by
/// [`crate::middleware::client_ip`]. As an extractor it falls back to the peer address
/// (no proxy trusted) when the middleware did not run, and to `0.0.0.0` when there is no
/// peer address either (a router served without `ConnectInfo`, as in unit tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// What the extractor answers for `parts` (see the type docs).
    pub fn of(parts: &Parts) -> ClientIp {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return *ip;
        }
        match peer(&parts.extensions) {
            Some(peer) => ClientIp(peer.ip().to_canonical()),
            None => ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(parts))
    }
}

/// The peer address: `ConnectInfo` from [`crate::server::serve`], or axum's
/// `MockConnectInfo` in tests.
pub fn peer(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))
}

/// Resolves the client address from the `peer` and the `X-Forwarded-For` headers, trusting
/// the headers only from addresses in `trusted`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    // Several headers are one list, in order.
    let hops: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage from here on: the last hop we could read is the best we know.
            break;
        };
        client = ip;
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = xff(&["1.1.1.1"]);
        assert_eq!(resolve(ip("9.9.9.9"), &h, &[ip("10.0.0.1")]), ip("9.9.9.9"));
    }

    #[test]
    fn a_trusted_proxy_gives_the_rightmost_untrusted_hop() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let h = xff(&["6.6.6.6, 5.5.5.5", "10.0.0.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("5.5.5.5"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_readable_hop() {
        let trusted = [ip("10.0.0.1")];
        let h = xff(&["nonsense, 7.7.7.7"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("7.7.7.7"));
        let h = xff(&["7.7.7.7, nonsense"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn mapped_v6_peers_match_v4_proxies() {
        let trusted = [ip("10.0.0.1")];
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), &h, &trusted),
            ip("2001:db8::1")
        );
    }
}
