//! Headers every answer carries, and `Cache-Control: no-store` where PHI may be.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Paths under which answers may hold PHI (or other private data) and must not be cached.
/// Simplest safe default: every API answer, whatever the handler forgot.
const NO_STORE_PREFIXES: [&str; 2] = ["/api", "/admin"];

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The middleware (`from_fn(security_headers)`).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let no_store = NO_STORE_PREFIXES.iter().any(|p| under(req.uri().path(), p));
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    let fixed: [(HeaderName, &'static str); 3] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if no_store {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(under("/api", "/api"));
        assert!(under("/api/patients", "/api"));
        assert!(!under("/apidocs", "/api"));
    }
}
