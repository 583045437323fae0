//! Extractors: what a handler gets out of a request, already checked.
//!
//! Every rejection is an [`ApiError`](crate::error::ApiError), so a handler's failures and
//! its extractors' failures answer in the same envelope. Feature modules use these instead
//! of axum's own `Json`, `Path` and `Query` (whose rejections are plain text and may echo
//! submitted values).
//!
//! - [`Command<T>`]: a JSON command body (`T` has `#[serde(deny_unknown_fields)]`).
//! - [`RequestMeta`]: request id, client address, user agent — for event metadata.
//! - [`IfMatch`]: the `If-Match` version of an update.
//! - [`Page`]: `?page=&limit=` of list endpoints.
//! - [`Path<T>`], [`Query<T>`]: axum's, with envelope rejections naming the field.

pub mod client_ip;
pub mod command;
pub mod if_match;
pub mod page;
pub mod path;
pub mod query;
pub mod request_meta;

pub use client_ip::ClientIp;
pub use command::Command;
pub use if_match::IfMatch;
pub use page::Page;
pub use path::Path;
pub use query::Query;
pub use request_meta::RequestMeta;
