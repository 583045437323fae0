//! `X-Request-Id`: accepted from the client when sane, else generated (UUIDv7); set on the
//! request before anything logs, echoed on the response, stored in event metadata.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use tower_http::request_id::{MakeRequestId, RequestId};

/// `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id accepted from a client.
pub const MAX_LEN: usize = 128;

/// Whether a client's request id may be kept: 1 to [`MAX_LEN`] printable ASCII characters
/// (no spaces), so it is safe in logs, headers and metadata.
pub fn is_acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Drops unacceptable (or repeated) request ids so [`MakeUuidV7`] replaces them. Runs
/// before `SetRequestIdLayer`, which keeps any id already present.
pub async fn sanitize(mut req: Request) -> Request {
    let headers = req.headers_mut();
    let mut values = headers.get_all(X_REQUEST_ID).iter();
    let keep = match (values.next(), values.next()) {
        (Some(v), None) => is_acceptable(v),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove(X_REQUEST_ID);
    }
    req
}

/// Makes UUIDv7 request ids (time-ordered, so logs sort by them).
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        Some(RequestId::new(
            HeaderValue::from_str(&id).expect("a UUID is a valid header value"),
        ))
    }
}
