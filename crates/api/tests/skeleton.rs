//! The HTTP skeleton, end to end through `carelog_api::router`: envelopes, extractors,
//! layers, health, OpenAPI. Most tests need no network (`oneshot`); the idempotency and
//! readiness tests use a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) with a scratch database per test.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::routing::{get, patch, post};
use axum::Router;
use carelog_api::extract::{Command, IfMatch, Page, Path, RequestMeta};
use carelog_api::{ApiConfig, ApiError, ApiResponse, AppState, Meta};
use carelog_crypto::{Dek, Keyring, MasterKey};
use carelog_domain::StreamVersion;
use carelog_store::idempotency::{IdempotencyConfig, IdempotencyStore};
use carelog_store::keys::CacheConfig;
use carelog_store::{EventStore, GroupCommitConfig, KeyStore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::Notify;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------
// Test routes
// ---------------------------------------------------------------------------------------

/// Shared by the test handlers: how often each ran, and a gate for the slow one.
#[derive(Default)]
struct Probe {
    echo_runs: AtomicUsize,
    boom_runs: AtomicUsize,
    slow_entered: Notify,
    slow_release: Notify,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Echo {
    name: String,
    #[serde(default)]
    note: Option<String>,
}

fn test_routes(probe: Arc<Probe>) -> Router<AppState> {
    let echo = {
        let probe = Arc::clone(&probe);
        move |Command(body): Command<Echo>| async move {
            probe.echo_runs.fetch_add(1, Ordering::SeqCst);
            ApiResponse::created(body)
                .etag(StreamVersion(1))
                .location("/api/echo/1")
        }
    };
    let boom = {
        let probe = Arc::clone(&probe);
        move || async move {
            probe.boom_runs.fetch_add(1, Ordering::SeqCst);
            Err::<ApiResponse<()>, _>(ApiError::internal(anyhow::anyhow!(
                "the database fell over"
            )))
        }
    };
    let slow = {
        let probe = Arc::clone(&probe);
        move || async move {
            probe.slow_entered.notify_one();
            probe.slow_release.notified().await;
            ApiResponse::ok(json!({"slow": true}))
        }
    };
    Router::new()
        .route("/api/echo", post(echo))
        .route("/api/boom", post(boom))
        .route("/api/slow", post(slow))
        .route("/api/errors/{code}", get(error_route))
        .route("/api/meta", get(meta_route))
        .route("/api/auth/ping", get(|| async { ApiResponse::ok("pong") }))
        .route("/api/items", get(items_route))
        .route("/api/versioned/{id}", patch(versioned_route))
        .route("/api/panic", get(panic_route))
}

async fn panic_route() -> ApiResponse<()> {
    panic!("a secret in a panic message")
}

async fn error_route(Path(code): Path<String>) -> Result<ApiResponse<()>, ApiError> {
    Err(match code.as_str() {
        "validation" => ApiError::validation_fields("bad", ["birth_date"]),
        "unauthorized" => ApiError::Unauthorized("token expired".into()),
        "mfa" => ApiError::MfaRequired {
            mfa_token: "mfa-token-1".into(),
        },
        "forbidden" => ApiError::Forbidden,
        "not_found" => ApiError::NotFound,
        "conflict" => ApiError::Conflict("stale version".into()),
        "erased" => ApiError::Erased,
        "too_large" => ApiError::PayloadTooLarge,
        "mismatch" => ApiError::IdempotencyMismatch,
        "locked" => ApiError::AccountLocked {
            retry_after_secs: 90,
        },
        "rate" => ApiError::RateLimited {
            retry_after_secs: 0,
            limit: 10,
            reset_secs: 6,
        },
        "append_conflict" => carelog_store::AppendError::DuplicateEventId.into(),
        "store" => carelog_store::StoreError::ShuttingDown.into(),
        _ => ApiError::internal(anyhow::anyhow!("SELECT secret FROM patients")),
    })
}

async fn meta_route(meta: RequestMeta) -> ApiResponse<Value> {
    ApiResponse::ok(json!({
        "request_id": meta.request_id,
        "ip": meta.ip.to_string(),
        "user_agent": meta.user_agent,
    }))
}

async fn items_route(page: Page) -> ApiResponse<Vec<u32>> {
    let items = (0..page.limit)
        .map(|i| i + page.limit * (page.page - 1))
        .collect();
    ApiResponse::list(items, Meta::new(page, 1_000))
}

async fn versioned_route(
    Path(id): Path<uuid::Uuid>,
    IfMatch(version): IfMatch,
) -> ApiResponse<Value> {
    let next = StreamVersion(version.map_or(0, |v| v.0) + 1);
    ApiResponse::ok(json!({"id": id, "if_match": version.map(|v| v.0)})).etag(next)
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A pool that never connects (nothing listens on port 1): for tests that touch no SQL.
fn unreachable_pool() -> PgPool {
    PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy("postgres://carelog@127.0.0.1:1/none")
        .expect("a lazy pool")
}

fn state_with(config: ApiConfig, pool: PgPool, idempotency: IdempotencyStore) -> AppState {
    let keys = KeyStore::new(
        pool.clone(),
        Keyring::new(MasterKey::generate(), []),
        CacheConfig::default(),
    );
    let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
    let tokens = carelog_crypto::TokenKeys::new(
        &carelog_crypto::token_key::generate_paserk_secret(),
        &[],
        "carelog",
        "carelog",
    )
    .expect("fresh token key");
    let identity = carelog_commands::identity::Identity::new(
        store.clone(),
        tokens,
        carelog_crypto::PasswordHasher::default(),
        carelog_commands::identity::IdentityConfig::default(),
        &Dek::generate(),
    );
    let clinical = carelog_commands::clinical::Clinical::new(
        store.clone(),
        pool.clone(),
        carelog_commands::clinical::ClinicalConfig::default(),
    );
    AppState {
        config: Arc::new(config),
        store,
        pool,
        nats: None,
        dlq_notices: None,
        idempotency,
        identity,
        clinical,
        login_throttle: Arc::new(carelog_api::auth::LoginThrottle::default()),
        metrics: Arc::default(),
    }
}

/// An app without a database, with test routes.
fn app(config: ApiConfig) -> (Router, Arc<Probe>) {
    let pool = unreachable_pool();
    let idem = IdempotencyStore::new(pool.clone(), Dek::generate(), IdempotencyConfig::default());
    let probe = Arc::new(Probe::default());
    let app = carelog_api::router(
        state_with(config, pool, idem),
        test_routes(Arc::clone(&probe)),
    );
    (app, probe)
}

fn no_limits() -> ApiConfig {
    ApiConfig {
        rate_limiting_enabled: false,
        ..ApiConfig::default()
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn get_req(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn post_idem(uri: &str, key: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .header(header::AUTHORIZATION, "Bearer v4.public.test-token")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// A scratch database, migrated; dropped `WITH (FORCE)` when this goes away (panics too).
struct TestDb {
    name: String,
    pool: PgPool,
}

impl TestDb {
    async fn new() -> TestDb {
        let name = format!("carelog_apitest_{}", uuid::Uuid::now_v7().simple());
        let admin_opts = PgConnectOptions::from_str(&admin_url()).expect("DATABASE_URL parses");
        let mut admin = PgConnection::connect_with(&admin_opts)
            .await
            .expect("PostgreSQL reachable at DATABASE_URL");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the scratch database");
        admin.close().await.ok();
        let db = TestDb {
            pool: PgPoolOptions::new()
                .max_connections(5)
                .connect_with(admin_opts.database(&name))
                .await
                .expect("connect to the scratch database"),
            name,
        };
        carelog_store::migrate(&db.pool).await.expect("migrate");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block: use a runtime of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let opts = PgConnectOptions::from_str(&admin_url()).expect("DATABASE_URL parses");
                if let Ok(mut admin) = PgConnection::connect_with(&opts).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = admin.execute(drop.as_str()).await {
                        eprintln!("could not drop {name}: {e}");
                    }
                }
            });
        });
        let _ = done.join();
    }
}

/// An app on a real database, sealing idempotent answers with the system key.
async fn db_app(db: &TestDb) -> (Router, Arc<Probe>) {
    let keys = KeyStore::new(
        db.pool.clone(),
        Keyring::new(MasterKey::generate(), []),
        CacheConfig::default(),
    );
    let idem = IdempotencyStore::for_system(db.pool.clone(), &keys, IdempotencyConfig::default())
        .await
        .expect("the system key");
    let probe = Arc::new(Probe::default());
    let app = carelog_api::router(
        state_with(no_limits(), db.pool.clone(), idem),
        test_routes(Arc::clone(&probe)),
    );
    (app, probe)
}

// ---------------------------------------------------------------------------------------
// Errors and the envelope
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_answers_its_status_and_code_in_the_envelope() {
    let (app, _) = app(no_limits());
    let cases = [
        ("validation", 400, "VALIDATION_ERROR"),
        ("unauthorized", 401, "UNAUTHORIZED"),
        ("mfa", 401, "MFA_REQUIRED"),
        ("forbidden", 403, "FORBIDDEN"),
        ("not_found", 404, "NOT_FOUND"),
        ("conflict", 409, "CONFLICT"),
        ("append_conflict", 409, "CONFLICT"),
        ("erased", 410, "ERASED"),
        ("too_large", 413, "PAYLOAD_TOO_LARGE"),
        ("mismatch", 422, "IDEMPOTENCY_MISMATCH"),
        ("locked", 423, "ACCOUNT_LOCKED"),
        ("rate", 429, "RATE_LIMITED"),
        ("store", 500, "INTERNAL_ERROR"),
        ("internal", 500, "INTERNAL_ERROR"),
    ];
    for (route, status, code) in cases {
        let a = send(&app, get_req(&format!("/api/errors/{route}"))).await;
        assert_eq!(a.status.as_u16(), status, "{route}");
        let body = a.json();
        assert_eq!(body["success"], json!(false), "{route}");
        assert_eq!(body["error"]["code"], json!(code), "{route}");
        assert!(body["error"]["message"].is_string(), "{route}");
        assert!(body["error"].get("details").is_some(), "{route}");
        assert_eq!(a.header("content-type"), Some("application/json"));
    }

    let a = send(&app, get_req("/api/errors/validation")).await;
    assert_eq!(
        a.json()["error"]["details"],
        json!({"fields": ["birth_date"]})
    );

    let a = send(&app, get_req("/api/errors/mfa")).await;
    assert_eq!(
        a.json()["error"]["details"]["mfa_token"],
        json!("mfa-token-1")
    );

    let a = send(&app, get_req("/api/errors/unauthorized")).await;
    assert!(!String::from_utf8_lossy(&a.body).contains("expired"));
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));

    let a = send(&app, get_req("/api/errors/locked")).await;
    assert_eq!(a.header("retry-after"), Some("90"));

    let a = send(&app, get_req("/api/errors/rate")).await;
    assert_eq!(
        a.header("retry-after"),
        Some("1"),
        "Retry-After is at least 1"
    );
    assert_eq!(a.header("ratelimit-limit"), Some("10"));
    assert_eq!(a.header("ratelimit-remaining"), Some("0"));
    assert_eq!(a.header("ratelimit-reset"), Some("6"));

    let a = send(&app, get_req("/api/errors/internal")).await;
    let text = String::from_utf8_lossy(&a.body);
    assert!(
        !text.contains("SELECT") && !text.contains("secret"),
        "{text}"
    );
    assert_eq!(a.json()["error"]["message"], json!("internal error"));
}

#[tokio::test]
async fn success_envelopes_carry_data_meta_and_etag() {
    let (app, _) = app(no_limits());
    let a = send(&app, post_json("/api/echo", r#"{"name":"Ada"}"#)).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.json(),
        json!({"success": true, "data": {"name": "Ada", "note": null}})
    );
    assert_eq!(a.header("etag"), Some("\"1\""));
    assert_eq!(a.header("location"), Some("/api/echo/1"));

    let a = send(&app, get_req("/api/items?page=2&limit=3&family_name=x")).await;
    assert_eq!(
        a.json(),
        json!({"success": true, "data": [3, 4, 5], "meta": {"page": 2, "limit": 3, "total": 1000}})
    );
    let a = send(&app, get_req("/api/items")).await;
    assert_eq!(
        a.json()["meta"],
        json!({"page": 1, "limit": 20, "total": 1000})
    );
    for bad in ["page=0", "limit=101", "limit=abc"] {
        let a = send(&app, get_req(&format!("/api/items?{bad}"))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(a.code(), "VALIDATION_ERROR");
    }
}

#[tokio::test]
async fn if_match_and_path_parameters_are_parsed_or_refused() {
    let (app, _) = app(no_limits());
    let id = uuid::Uuid::now_v7();
    let req = |if_match: Option<&str>, id: &str| {
        let mut b = Request::patch(format!("/api/versioned/{id}"));
        if let Some(v) = if_match {
            b = b.header(header::IF_MATCH, v);
        }
        b.body(Body::empty()).unwrap()
    };
    let a = send(&app, req(Some("\"4\""), &id.to_string())).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["data"]["if_match"], json!(4));
    assert_eq!(a.header("etag"), Some("\"5\""));

    let a = send(&app, req(None, &id.to_string())).await;
    assert_eq!(a.json()["data"]["if_match"], json!(null));

    let a = send(&app, req(Some("W/\"4\""), &id.to_string())).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json()["error"]["details"],
        json!({"fields": ["If-Match"]})
    );

    let a = send(&app, req(None, "not-a-uuid")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!String::from_utf8_lossy(&a.body).contains("not-a-uuid"));
}

// ---------------------------------------------------------------------------------------
// Command bodies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_fields_are_refused_and_named() {
    let (app, probe) = app(no_limits());
    let a = send(
        &app,
        post_json("/api/echo", r#"{"name":"Ada","roles":["SUPER:ADMIN"]}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "VALIDATION_ERROR");
    assert_eq!(a.json()["error"]["details"], json!({"fields": ["roles"]}));
    assert!(!String::from_utf8_lossy(&a.body).contains("SUPER:ADMIN"));
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 0);

    let a = send(&app, post_json("/api/echo", r#"{"note":"x"}"#)).await;
    assert_eq!(a.json()["error"]["details"], json!({"fields": ["name"]}));

    let a = send(
        &app,
        post_json("/api/echo", r#"{"name":"Ada","note":12345}"#),
    )
    .await;
    assert_eq!(a.json()["error"]["details"], json!({"fields": ["note"]}));
    assert!(!String::from_utf8_lossy(&a.body).contains("12345"));
}

#[tokio::test]
async fn malformed_json_is_a_400_saying_where() {
    let (app, _) = app(no_limits());
    let a = send(
        &app,
        post_json("/api/echo", "{\"name\": \"Ada\",\n \"note\": secret-phi }"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "VALIDATION_ERROR");
    assert_eq!(a.json()["error"]["message"], json!("malformed JSON"));
    assert_eq!(a.json()["error"]["details"]["line"], json!(2));
    assert!(a.json()["error"]["details"]["column"].is_number());
    assert!(!String::from_utf8_lossy(&a.body).contains("secret-phi"));

    let a = send(&app, post_json("/api/echo", "")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let (app, probe) = app(no_limits());
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut b = Request::post("/api/echo");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let a = send(&app, b.body(Body::from(r#"{"name":"Ada"}"#)).unwrap()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{content_type:?}");
        assert_eq!(a.code(), "VALIDATION_ERROR");
    }
    let a = send(
        &app,
        Request::post("/api/echo")
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Body::from(r#"{"name":"Ada"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_in_the_envelope() {
    let (app, probe) = app(ApiConfig {
        body_limit: 1024,
        ..no_limits()
    });
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(2048));
    // Streamed: no Content-Length, stopped while reading.
    let a = send(&app, post_json("/api/echo", &big)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.code(), "PAYLOAD_TOO_LARGE");
    // Declared: refused before reading.
    let mut req = post_json("/api/echo", &big);
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(big.len()));
    let a = send(&app, req).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.code(), "PAYLOAD_TOO_LARGE");
    // Idempotent requests read the body themselves: same limit.
    let a = send(&app, post_idem("/api/echo", "k-big", &big)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 0);

    let a = send(&app, post_json("/api/echo", r#"{"name":"small"}"#)).await;
    assert_eq!(a.status, StatusCode::CREATED);
}

// ---------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn request_ids_are_echoed_generated_or_replaced() {
    let (app, _) = app(no_limits());
    let with = |id: &str| {
        Request::get("/api/meta")
            .header("x-request-id", id)
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app, with("client-id-123")).await;
    assert_eq!(a.header("x-request-id"), Some("client-id-123"));
    assert_eq!(a.json()["data"]["request_id"], json!("client-id-123"));

    let a = send(&app, get_req("/api/meta")).await;
    let generated = a.header("x-request-id").expect("generated").to_owned();
    let uuid = uuid::Uuid::parse_str(&generated).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(a.json()["data"]["request_id"], json!(generated));

    for bad in ["has space".to_owned(), "x".repeat(129)] {
        let a = send(&app, with(&bad)).await;
        let id = a.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok());
    }

    // Errors carry it too.
    let a = send(&app, with("err-id")).await;
    assert_eq!(a.header("x-request-id"), Some("err-id"));
    let a = send(&app, {
        let mut r = get_req("/nowhere");
        r.headers_mut()
            .insert("x-request-id", HeaderValue::from_static("err-id"));
        r
    })
    .await;
    assert_eq!(a.header("x-request-id"), Some("err-id"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_envelope() {
    let (app, _) = app(no_limits());
    let a = send(&app, get_req("/api/nothing-here")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.code(), "NOT_FOUND");

    let a = send(
        &app,
        Request::delete("/api/echo").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.code(), "METHOD_NOT_ALLOWED");
    assert!(a.header("allow").is_some_and(|v| v.contains("POST")));

    let a = send(
        &app,
        Request::post("/health/live").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.code(), "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn security_and_cache_headers_are_set() {
    let (app, _) = app(no_limits());
    for uri in ["/api/meta", "/api/nothing", "/health/live"] {
        let a = send(&app, get_req(uri)).await;
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{uri}");
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"), "{uri}");
    }
    assert_eq!(
        send(&app, get_req("/api/meta"))
            .await
            .header("cache-control"),
        Some("no-store")
    );
    assert_eq!(
        send(&app, get_req("/api/errors/forbidden"))
            .await
            .header("cache-control"),
        Some("no-store")
    );
    assert_eq!(
        send(&app, get_req("/health/live"))
            .await
            .header("cache-control"),
        None
    );
}

#[tokio::test]
async fn a_panicking_handler_answers_500_without_its_message() {
    let (app, _) = app(no_limits());
    let a = send(&app, get_req("/api/panic")).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.code(), "INTERNAL_ERROR");
    assert!(!String::from_utf8_lossy(&a.body).contains("secret"));
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let (app, _) = app(ApiConfig {
        cors_origins: vec![HeaderValue::from_static("https://app.example")],
        ..no_limits()
    });
    let preflight = |origin: &'static str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/echo")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    let a = send(&app, preflight("https://app.example")).await;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let a = send(&app, preflight("https://evil.example")).await;
    assert_eq!(a.header("access-control-allow-origin"), None);

    // None configured: no CORS headers at all.
    let (plain, _) = self::app(no_limits());
    let a = send(&plain, preflight("https://app.example")).await;
    assert_eq!(a.header("access-control-allow-origin"), None);
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn request_spans_name_the_route_template_never_the_uri() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (app, _) = app(no_limits());
    let id = uuid::Uuid::now_v7();
    let mut req = get_req("/api/items?family_name=SECRETNAME");
    req.headers_mut()
        .insert("x-request-id", HeaderValue::from_static("trace-me-1"));
    send(&app, req).await;
    send(
        &app,
        Request::patch(format!("/api/versioned/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    send(&app, get_req("/api/errors/internal?q=SECRETQUERY")).await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("request completed"), "{text}");
    assert!(text.contains(r#""route":"/api/items""#), "{text}");
    assert!(text.contains(r#""route":"/api/versioned/{id}""#), "{text}");
    assert!(text.contains(r#""request_id":"trace-me-1""#), "{text}");
    assert!(text.contains(r#""status":200"#), "{text}");
    // The 500's cause chain is logged; the request's data is not.
    assert!(text.contains("SELECT secret FROM patients"), "{text}");
    for secret in ["SECRETNAME", "SECRETQUERY", &id.to_string()] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the logs: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Client address and rate limits
// ---------------------------------------------------------------------------------------

fn from_peer(app: &Router, peer: &str) -> Router {
    app.clone()
        .layer(MockConnectInfo(peer.parse::<SocketAddr>().unwrap()))
}

fn meta_with_xff(xff: &str) -> Request<Body> {
    Request::get("/api/meta")
        .header("x-forwarded-for", xff)
        .header(header::USER_AGENT, "é".repeat(300))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let (app, _) = app(ApiConfig {
        trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        ..no_limits()
    });
    let via_proxy = from_peer(&app, "10.0.0.1:5000");
    let a = send(&via_proxy, meta_with_xff("6.6.6.6, 203.0.113.9")).await;
    assert_eq!(a.json()["data"]["ip"], json!("203.0.113.9"));
    let ua = a.json()["data"]["user_agent"].as_str().unwrap().to_owned();
    assert!(ua.len() <= 256 && ua.starts_with('é'));

    let direct = from_peer(&app, "198.51.100.7:5000");
    let a = send(&direct, meta_with_xff("203.0.113.9")).await;
    assert_eq!(a.json()["data"]["ip"], json!("198.51.100.7"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_ratelimit_headers() {
    let (app, _) = app(ApiConfig {
        rate_per_min: 3,
        auth_rate_per_min: 2,
        ..ApiConfig::default()
    });
    let client = from_peer(&app, "192.0.2.1:1000");
    for i in 0..3u32 {
        let a = send(&client, get_req("/api/meta")).await;
        assert_eq!(a.status, StatusCode::OK, "request {i}");
        assert_eq!(a.header("ratelimit-limit"), Some("3"));
        assert_eq!(
            a.header("ratelimit-remaining"),
            Some((2 - i).to_string().as_str())
        );
        assert!(a.header("ratelimit-reset").is_some());
    }
    let a = send(&client, get_req("/api/meta")).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.code(), "RATE_LIMITED");
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(a.header("ratelimit-limit"), Some("3"));
    assert_eq!(a.header("ratelimit-remaining"), Some("0"));
    let reset: u64 = a.header("ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset >= retry);
    // 429s carry the security headers too.
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));

    // Another client has its own allowance; auth has its own (smaller) limit.
    let other = from_peer(&app, "192.0.2.2:1000");
    assert_eq!(
        send(&other, get_req("/api/meta")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&client, get_req("/api/auth/ping"))
            .await
            .header("ratelimit-limit"),
        Some("2")
    );
    assert_eq!(
        send(&client, get_req("/api/auth/ping")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&client, get_req("/api/auth/ping")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Probes are never limited.
    for _ in 0..5 {
        let a = send(&client, get_req("/health/live")).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("ratelimit-limit"), None);
    }
}

#[tokio::test]
async fn rate_limiting_can_be_turned_off() {
    let (app, _) = app(ApiConfig {
        rate_per_min: 1,
        rate_limiting_enabled: false,
        ..ApiConfig::default()
    });
    let client = from_peer(&app, "192.0.2.1:1000");
    for _ in 0..5 {
        let a = send(&client, get_req("/api/meta")).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.header("ratelimit-limit"), None);
    }
}

// ---------------------------------------------------------------------------------------
// Health and documentation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn liveness_answers_in_the_envelope() {
    let (app, _) = app(no_limits());
    let a = send(&app, get_req("/health/live")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"success": true, "data": {"status": "live"}})
    );
}

#[tokio::test]
async fn readiness_says_which_dependency_is_down_without_internals() {
    let (app, _) = app(no_limits());
    let a = send(&app, get_req("/health/ready")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        a.json()["error"]["details"],
        json!({"checks": {"postgres": "down", "nats": "not_configured"}})
    );
    assert!(!String::from_utf8_lossy(&a.body).contains("127.0.0.1"));
}

#[tokio::test]
async fn readiness_is_200_when_postgres_answers() {
    let db = TestDb::new().await;
    let (app, _) = db_app(&db).await;
    let a = send(&app, get_req("/health/ready")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json()["data"],
        json!({"status": "ready", "postgres": "up", "nats": "not_configured"})
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_health_paths_and_the_bearer_scheme() {
    let (app, _) = app(no_limits());
    let a = send(&app, get_req("/openapi.json")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let doc = a.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/health/live"]["get"].is_object());
    assert!(doc["paths"]["/health/ready"]["get"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        json!("bearer")
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn the_docs_page_is_html() {
    let (app, _) = app(no_limits());
    let a = send(&app, get_req("/docs")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    let html = String::from_utf8_lossy(&a.body);
    assert!(html.contains("api-reference") && html.contains("/health/live"));
}

// ---------------------------------------------------------------------------------------
// Idempotency (real PostgreSQL)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_idempotent_post_runs_once_and_is_replayed() {
    let db = TestDb::new().await;
    let (app, probe) = db_app(&db).await;
    let body = r#"{"name":"Ada","note":"MARKER-7f3a-phi"}"#;

    let first = send(&app, post_idem("/api/echo", "key-1", body)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);

    let again = send(&app, post_idem("/api/echo", "key-1", body)).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("etag"), Some("\"1\""));
    assert_eq!(again.header("location"), Some("/api/echo/1"));
    assert_eq!(again.header("content-type"), Some("application/json"));
    assert_eq!(again.header("cache-control"), Some("no-store"));
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 1);

    // Same key, other body: refused, handler not run.
    let other = send(&app, post_idem("/api/echo", "key-1", r#"{"name":"Bob"}"#)).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.code(), "IDEMPOTENCY_MISMATCH");
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 1);

    // Same key from another caller: another scope, runs.
    let mut req = post_idem("/api/echo", "key-1", body);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer v4.public.someone-else"),
    );
    assert_eq!(send(&app, req).await.status, StatusCode::CREATED);
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 2);

    // Without a key nothing is deduplicated.
    send(&app, post_json("/api/echo", body)).await;
    send(&app, post_json("/api/echo", body)).await;
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 4);

    // Stored sealed: the answer's text is nowhere in the table.
    let rows: Vec<(Option<i16>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT status, response FROM idempotency_keys")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    for (status, response) in rows {
        assert_eq!(status, Some(201));
        let response = response.expect("stored");
        let marker = b"MARKER-7f3a-phi";
        assert!(!response.windows(marker.len()).any(|w| w == marker));
        assert!(!response.windows(4).any(|w| w == b"name"));
    }
}

#[tokio::test]
async fn server_errors_are_not_stored_so_the_client_may_retry() {
    let db = TestDb::new().await;
    let (app, probe) = db_app(&db).await;
    for _ in 0..2 {
        let a = send(&app, post_idem("/api/boom", "boom-1", "{}")).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(a.header("idempotent-replayed"), None);
    }
    assert_eq!(probe.boom_runs.load(Ordering::SeqCst), 2);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_key_still_in_progress_is_a_conflict() {
    let db = TestDb::new().await;
    let (app, probe) = db_app(&db).await;
    let first = {
        let app = app.clone();
        tokio::spawn(async move { send(&app, post_idem("/api/slow", "slow-1", "{}")).await })
    };
    probe.slow_entered.notified().await;

    let second = send(&app, post_idem("/api/slow", "slow-1", "{}")).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.code(), "CONFLICT");

    probe.slow_release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    let third = send(&app, post_idem("/api/slow", "slow-1", "{}")).await;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(third.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn malformed_idempotency_keys_are_refused() {
    let (app, probe) = app(no_limits());
    for key in ["".to_owned(), "k".repeat(256)] {
        let a = send(&app, post_idem("/api/echo", &key, r#"{"name":"Ada"}"#)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{key:?}");
        assert_eq!(
            a.json()["error"]["details"],
            json!({"fields": ["Idempotency-Key"]})
        );
    }
    assert_eq!(probe.echo_runs.load(Ordering::SeqCst), 0);
}
