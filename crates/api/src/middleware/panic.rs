//! A panicking handler answers a 500 in the envelope instead of dropping the connection.
//! The panic's message is not logged: it may quote data.

use std::any::Any;

use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The `CatchPanicLayer::custom` handler.
pub fn on_panic(_payload: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("a handler panicked")).into_response()
}
