//! carelog's HTTP layer.
//!
//! What it owns: HTTP only — the envelope, the one error-to-status mapping, extractors,
//! middleware, health probes and the OpenAPI document. What it must not do: run SQL,
//! make crypto decisions or decide policy. A handler parses its input with the
//! extractors, calls one command pipeline (load → fold → decide → seal → append, in the
//! domain and store crates) and shapes the answer.
//!
//! Layout:
//! - [`error`]: [`ApiError`], API.md's error table and its only mapping to HTTP.
//! - [`envelope`]: [`ApiResponse`] (`ok`, `created`, `accepted`, `no_content`, `list`,
//!   `etag`, `no_store`) and [`Meta`].
//! - [`extract`]: [`Command<T>`](extract::Command), [`RequestMeta`](extract::RequestMeta),
//!   [`IfMatch`](extract::IfMatch), [`Page`](extract::Page), [`Path`](extract::Path),
//!   [`Query`](extract::Query), [`ClientIp`](extract::ClientIp).
//! - [`middleware`]: request id, client address, trace, security headers, CORS, rate
//!   limits, body limit, idempotency, panics — in that order, outermost first.
//! - [`health`]: `/health/live`, `/health/ready`.
//! - [`metrics`]: `GET /metrics` (Prometheus), the request metrics middleware.
//! - [`openapi`]: the document's base and envelope schemas; how routes get documented.
//! - [`state`]: [`AppState`] and [`ApiConfig`].
//! - [`server`]: [`router`](server::router) (everything assembled) and
//!   [`serve`](server::serve) (graceful shutdown, peer addresses).
//!
//! A feature module looks like this:
//!
//! ```ignore
//! use carelog_api::{ApiError, ApiResponse, AppState};
//! use carelog_api::extract::{Command, IfMatch, Path, RequestMeta};
//! use utoipa_axum::{router::OpenApiRouter, routes};
//!
//! pub fn routes() -> OpenApiRouter<AppState> {
//!     OpenApiRouter::new().routes(routes!(update_patient))
//! }
//!
//! #[utoipa::path(patch, path = "/api/patients/{id}", tag = "patients",
//!     security(("bearer" = [])),
//!     responses((status = 200, body = carelog_api::openapi::SuccessBody<Patient>),
//!               (status = 409, body = carelog_api::openapi::ErrorBody)))]
//! async fn update_patient(
//!     State(state): State<AppState>,
//!     meta: RequestMeta,
//!     IfMatch(version): IfMatch,
//!     Path(id): Path<Uuid>,
//!     Command(cmd): Command<UpdatePatient>, // the body extractor comes last
//! ) -> Result<ApiResponse<Patient>, ApiError> {
//!     let (patient, version) = pipeline(&state, id, version, cmd, meta.metadata()).await?;
//!     Ok(ApiResponse::ok(patient).etag(version))
//! }
//! ```

pub mod admin;
pub mod audit;
pub mod auth;
pub mod clinical;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod server;
pub mod state;

pub use envelope::{ApiResponse, Meta};
pub use error::ApiError;
pub use server::{router, serve};
pub use state::{ApiConfig, AppState};
