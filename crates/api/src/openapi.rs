//! The OpenAPI document, served at `GET /openapi.json` and browsable at `GET /docs`.
//!
//! **How routes get in.** Routes are registered through utoipa-axum's [`OpenApiRouter`]:
//! `OpenApiRouter::new().routes(routes!(handler_a, handler_b))` adds both the axum route
//! and its `#[utoipa::path]` to the document, so the document cannot drift from the
//! router (API.md: "must match the running code"). A feature module exposes
//! `pub fn routes() -> OpenApiRouter<AppState>` and the binary merges them into the
//! `extra` argument of [`crate::server::router`]. Schemas used by a path's `body = …` and
//! `params(…)` are collected automatically.
//!
//! This module holds the document's base ([`ApiDoc`]: info, the `bearer` security scheme,
//! tags) and the envelope schemas handlers cite in `responses(...)`:
//! [`SuccessBody<T>`], [`ListBody<T>`] and [`ErrorBody`]. A route that needs a token says
//! `security(("bearer" = []))`.

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::envelope::Meta;

/// The document's base; paths are added by the routers (see the module docs).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "carelog",
        description = "Event-sourced clinical data API. Every answer is an envelope: \
                       `{\"success\": true, \"data\": …}` or \
                       `{\"success\": false, \"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail, Meta)),
    tags((name = "health", description = "Liveness and readiness probes"))
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme (a PASETO v4.public access token).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("PASETO")
                    .description(Some(
                        "PASETO v4.public access token (`Authorization: Bearer v4.public.…`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// A success envelope with `data` of type `T` (documents `ApiResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessBody<T> {
    /// Always true.
    pub success: bool,
    /// The resource or result.
    pub data: T,
}

/// A list envelope: `data` is a page of `T`s, `meta` its pagination (documents
/// `ApiResponse::list`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ListBody<T> {
    /// Always true.
    pub success: bool,
    /// The page of items.
    pub data: Vec<T>,
    /// Page, limit and total.
    pub meta: Meta,
}

/// An error envelope (`ApiError` produces it; this type only documents it).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always false.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` of an error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `VALIDATION_ERROR`, `UNAUTHORIZED`, `MFA_REQUIRED`, `FORBIDDEN`, `NOT_FOUND`,
    /// `METHOD_NOT_ALLOWED`, `CONFLICT`, `ERASED`, `PAYLOAD_TOO_LARGE`,
    /// `IDEMPOTENCY_MISMATCH`, `ACCOUNT_LOCKED`, `RATE_LIMITED`, `SERVICE_UNAVAILABLE`,
    /// `INTERNAL_ERROR`.
    #[schema(example = "VALIDATION_ERROR")]
    pub code: String,
    /// A human-readable text; never internals or PHI.
    pub message: String,
    /// Code-specific facts, e.g. `{"fields": ["birth_date"]}`; may be null.
    #[schema(value_type = Object, nullable = true)]
    pub details: Value,
}
