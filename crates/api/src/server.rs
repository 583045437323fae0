//! The router with every layer, and the server loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_scalar::{Scalar, Servable};

use crate::error::ApiError;
use crate::middleware::request_id::{MakeUuidV7, X_REQUEST_ID};
use crate::middleware::{
    body_limit, client_ip, cors, idempotency, panic, rate_limit, request_id, security_headers,
    trace,
};
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// The whole application: `extra` (the feature routes) merged with `/health/*`,
/// `GET /openapi.json`, `GET /docs` and (unless `config.metrics_route` is off)
/// `GET /metrics`, behind every layer, in this order (outermost first): request id,
/// client address, trace, request metrics, security headers, CORS, rate limit, body
/// limit, idempotency, panic catcher. Unknown paths answer 404 `NOT_FOUND`, a known path
/// with another method 405 `METHOD_NOT_ALLOWED`, both in the envelope.
///
/// `extra` is an [`OpenApiRouter`] so that its `#[utoipa::path]`s reach the document; a
/// plain `Router<AppState>` converts too (`.into()`), its routes then undocumented.
pub fn router(state: AppState, extra: impl Into<OpenApiRouter<AppState>>) -> Router {
    let config = Arc::clone(&state.config);
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::health::routes())
        .merge(extra.into())
        .split_for_parts();
    let spec =
        Bytes::from(serde_json::to_vec(&openapi).expect("the OpenAPI document serialises to JSON"));
    let docs: Router<AppState> = Scalar::with_url("/docs", openapi).into();

    let routes = if config.metrics_route {
        routes.route("/metrics", get(crate::metrics::scrape))
    } else {
        routes
    };
    let app = routes
        .merge(docs)
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        spec,
                    )
                }
            }),
        )
        .fallback(not_found)
        // After every route is in: it is set on the routes that exist now.
        .method_not_allowed_fallback(method_not_allowed);

    // `layer` wraps what is there: the first added runs innermost.
    let app = app
        .layer(CatchPanicLayer::custom(panic::on_panic))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            config.body_limit,
            body_limit::body_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            rate_limit::RateLimits::new(&config),
            rate_limit::rate_limit,
        ))
        .layer(tower::util::option_layer(cors::layer(&config)))
        .layer(axum::middleware::from_fn(
            security_headers::security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            crate::metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::make_span)
                .on_request(())
                .on_response(trace::on_response)
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&config),
            client_ip::client_ip,
        ))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeUuidV7))
        .layer(axum::middleware::map_request(request_id::sanitize));

    app.with_state(state)
}

async fn not_found() -> Response {
    ApiError::NotFound.into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight
/// finish. Handlers see the peer address (`ConnectInfo<SocketAddr>`), which the client
/// address resolution needs.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
