//! `GET /metrics` (API.md "Operations"): Prometheus text, unauthenticated, no PHI and no
//! ids; request counter and latency by route template; events appended.

use std::sync::Arc;

use carelog_commands::identity::IdentityConfig;
use serde_json::json;

use crate::support::app::no_limits;
use crate::support::TestApp;

/// The body of `GET /metrics` (classic Prometheus text), checked for status and type.
async fn scrape(app: &TestApp) -> String {
    let r = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.expect("body")
}

/// The value of the sample `series` (name with its labels, exactly as exposed).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Whether `text` holds anything shaped like a UUID.
fn has_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(36).any(|w| {
        w.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
    })
}

async fn events_in_log(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .expect("count events")
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_events_appended_without_ids() {
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;
    let appended_before = sample(&before, "carelog_events_appended_total").expect("counter");
    let log_before = events_in_log(&app).await;

    let email = "metrics.marker@example.org";
    let id = app.register(email, "DOCTOR").await;
    let s = app.login(email).await;
    let bad = app
        .post("/api/auth/register", json!({"nope": 1}), None)
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    let marker = "zqxmarker7731";
    let me = app
        .get(
            &format!("/api/auth/me?family_name={marker}"),
            Some(&s.token),
        )
        .await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    let missing = app.get(&format!("/api/nothing/{id}"), None).await;
    assert_eq!(missing.status, 404);

    let body = scrape(&app).await;
    for family in [
        "# TYPE carelog_events_appended_total counter",
        "# TYPE carelog_http_requests_total counter",
        "# TYPE carelog_http_request_duration_seconds histogram",
    ] {
        assert!(body.contains(family), "{family} missing:\n{body}");
    }
    let logins = sample(
        &body,
        r#"carelog_http_requests_total{method="POST",route="/api/auth/login",status="200"}"#,
    )
    .unwrap_or(0.0);
    assert!(logins >= 1.0, "{body}");
    let bad_registers = sample(
        &body,
        r#"carelog_http_requests_total{method="POST",route="/api/auth/register",status="400"}"#,
    )
    .unwrap_or(0.0);
    assert!(bad_registers >= 1.0, "{body}");
    assert!(
        body.contains(
            r#"carelog_http_request_duration_seconds_count{method="POST",route="/api/auth/login"}"#
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"route="(unmatched)",status="404""#),
        "{body}"
    );

    // Every event written since the first scrape is counted, once.
    let appended = sample(&body, "carelog_events_appended_total").expect("counter");
    let log_after = events_in_log(&app).await;
    assert!(log_after > log_before, "the test wrote events");
    assert_eq!(
        (appended - appended_before) as i64,
        log_after - log_before,
        "{body}"
    );

    // Nothing that identifies anyone, nothing a client chose.
    assert!(
        !body.contains(email) && !body.contains("metrics.marker"),
        "{body}"
    );
    assert!(!body.contains(&id.to_string()), "{body}");
    assert!(!has_uuid(&body), "{body}");
    assert!(!body.contains(marker) && !body.contains('?'), "{body}");
}

#[tokio::test]
async fn metrics_need_no_token_and_are_not_rate_limited() {
    let app = TestApp::spawn_with(
        carelog_api::state::ApiConfig {
            rate_limiting_enabled: true,
            rate_per_min: 2,
            ..no_limits()
        },
        IdentityConfig::default(),
    )
    .await;
    for _ in 0..5 {
        let body = scrape(&app).await;
        assert!(body.contains("carelog_events_appended_total 0"), "{body}");
    }
    let r = app
        .http
        .get(app.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/openmetrics-text")));
    assert!(r.text().await.expect("body").ends_with("# EOF\n"));
}

/// `CARELOG_METRICS_BIND` (`metrics_route: false`): not on the main router, but on a
/// listener of its own over the same registry.
#[tokio::test]
async fn metrics_move_to_their_own_listener() {
    let app = TestApp::spawn_with(
        carelog_api::state::ApiConfig {
            metrics_route: false,
            ..no_limits()
        },
        IdentityConfig::default(),
    )
    .await;
    let main = app.get("/metrics", None).await;
    assert_eq!(main.status, 404);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("free port");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(carelog_api::server::serve(
        listener,
        carelog_api::metrics::router(Arc::clone(&app.services.metrics)),
        std::future::pending(),
    ));
    let body = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(
        body.contains(r#"route="(unmatched)",status="404""#),
        "the main router's requests are counted: {body}"
    );
    assert!(body.contains("carelog_events_appended_total"));
    server.abort();
}

/// With a relay running: `carelog_relay_active` and `carelog_relay_lag_events` (read at
/// scrape time) reach 1 and 0 once the relay has published what the test wrote.
#[tokio::test]
async fn relay_gauges_show_the_relay_active_and_caught_up() {
    let app = TestApp::spawn().await;
    let nats = crate::support::nats::TestNats::new().await;
    let relay = app
        .services
        .start_relay(
            &nats.url,
            carelog_bus::BusConfig::new(nats.prefix.clone(), 1).expect("bus config"),
        )
        .await
        .expect("relay starts");
    app.user("DOCTOR").await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = scrape(&app).await;
        let active = sample(&body, "carelog_relay_active");
        let lag = sample(&body, "carelog_relay_lag_events");
        if active == Some(1.0) && lag == Some(0.0) {
            assert!(
                body.contains("# TYPE carelog_relay_lag_events gauge"),
                "{body}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "relay never active and caught up (active {active:?}, lag {lag:?}):\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    relay.stop().await;
}

/// With projectors running: `carelog_projection_lag_events{projection="audit_feed"}`
/// reaches 0 once the relay and the projector caught up, and `carelog_dlq_depth` is 0.
#[tokio::test]
async fn projector_gauges_show_each_projection_caught_up_and_the_dlq_empty() {
    let app = TestApp::spawn().await;
    let nats = crate::support::nats::TestNats::new().await;
    let bus = || carelog_bus::BusConfig::new(nats.prefix.clone(), 1).expect("bus config");
    let relay = app
        .services
        .start_relay(&nats.url, bus())
        .await
        .expect("relay starts");
    let projectors = app
        .services
        .start_projectors(
            &nats.url,
            bus(),
            carelog_projector::ProjectorConfig::default(),
        )
        .await
        .expect("projectors start");
    app.user("DOCTOR").await;

    let series = "carelog_projection_lag_events{projection=\"audit_feed\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let body = scrape(&app).await;
        let (lag, depth) = (sample(&body, series), sample(&body, "carelog_dlq_depth"));
        if lag == Some(0.0) && depth == Some(0.0) {
            assert!(!has_uuid(&body), "no ids in metrics");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projection never caught up (lag {lag:?}, depth {depth:?}):\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    projectors.stop().await;
    relay.stop().await;
}
