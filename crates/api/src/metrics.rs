//! `GET /metrics`: Prometheus metrics (API.md "Operations").
//!
//! The endpoint is unauthenticated, so nothing here may carry PHI or ids: requests are
//! labelled by method, route template ([`MatchedPath`], `/api/patients/{id}`, never the
//! URI or its query) and status; every other metric is a number without labels or with
//! labels chosen by the code (a projection's name), never by a client.
//!
//! Two kinds of metrics:
//! - **recorded**: the request counter and latency histogram, updated by the [`track`]
//!   middleware on every request;
//! - **read at scrape time**: values that live elsewhere (the store's appended-events
//!   counter, the relay's lag, ...), registered once with [`Metrics::gauge`],
//!   [`Metrics::gauge_by`] or [`Metrics::counter`] and read on each scrape (every read
//!   of one scrape shares a [`SCRAPE_TIMEOUT`]; a read that fails or times out leaves
//!   its metric out of that scrape rather than reporting a stale number). Adding one is
//!   one call at wiring time:
//!
//! ```ignore
//! metrics.gauge("carelog_dlq_depth", "Entries in the dead-letter queue.", move || {
//!     let pool = pool.clone();
//!     async move { carelog_store::projector::dlq_depth(&pool).await.ok() }
//! });
//! ```
//!
//! Encoding is OpenMetrics text (prometheus-client) when the scraper asks for it
//! (`Accept: application/openmetrics-text`, as Prometheus does), else the classic
//! Prometheus text format 0.0.4.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How long the scrape-time reads of one scrape may take together.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// Latency buckets, in seconds (1 ms to 10 s).
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// One scrape-time reading: label pairs (empty: none) and a value.
enum Value {
    Gauge(i64),
    Counter(u64),
}

type Readings = Vec<(Option<String>, Value)>;
type ReadFuture = Pin<Box<dyn Future<Output = Option<Readings>> + Send>>;
type ReadFn = Box<dyn Fn() -> ReadFuture + Send + Sync>;

/// A metric read at scrape time.
struct Source {
    name: &'static str,
    help: &'static str,
    /// The label of a labelled family (`gauge_by`); `None`: one unlabelled value.
    label: Option<&'static str>,
    read: ReadFn,
}

/// The process's metrics. One per process, shared (`Arc`) by the router, the middleware
/// and whoever registers scrape-time metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    sources: RwLock<Vec<Arc<Source>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The HTTP metrics; nothing read at scrape time yet.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "carelog_http_requests",
            "HTTP requests answered, by method, route template and status.",
            requests.clone(),
        );
        let latency: Latency =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS.iter().copied()));
        registry.register(
            "carelog_http_request_duration_seconds",
            "Time to answer an HTTP request (commands included), by method and route template.",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            sources: RwLock::new(Vec::new()),
        }
    }

    /// Records one answered request. `route` must be a route template, never a URI.
    pub fn record_request(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A gauge read at each scrape; `None` leaves it out of that scrape.
    pub fn gauge<F, Fut>(&self, name: &'static str, help: &'static str, read: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<i64>> + Send + 'static,
    {
        self.add(name, help, None, move || {
            let fut = read();
            Box::pin(async move { fut.await.map(|v| vec![(None, Value::Gauge(v))]) })
        });
    }

    /// A gauge family with one label (e.g. `projection`), read at each scrape as
    /// `(label value, value)` pairs. Label values must be code-chosen names, never ids.
    pub fn gauge_by<F, Fut>(
        &self,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        read: F,
    ) where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Vec<(String, i64)>>> + Send + 'static,
    {
        self.add(name, help, Some(label), move || {
            let fut = read();
            Box::pin(async move {
                fut.await.map(|vs| {
                    vs.into_iter()
                        .map(|(l, v)| (Some(l), Value::Gauge(v)))
                        .collect()
                })
            })
        });
    }

    /// A counter kept elsewhere (an atomic), read at each scrape. `name` without
    /// `_total` (added in the exposition).
    pub fn counter<F>(&self, name: &'static str, help: &'static str, read: F)
    where
        F: Fn() -> u64 + Send + Sync + 'static,
    {
        self.add(name, help, None, move || {
            let v = read();
            Box::pin(async move { Some(vec![(None, Value::Counter(v))]) })
        });
    }

    fn add<F>(&self, name: &'static str, help: &'static str, label: Option<&'static str>, read: F)
    where
        F: Fn() -> ReadFuture + Send + Sync + 'static,
    {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(Source {
                name,
                help,
                label,
                read: Box::new(read),
            }));
    }

    /// The exposition: OpenMetrics text, or Prometheus text 0.0.4 when `openmetrics`
    /// is false.
    pub async fn render(&self, openmetrics: bool) -> String {
        let sources: Vec<Arc<Source>> = self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let deadline = tokio::time::Instant::now() + SCRAPE_TIMEOUT;
        let mut scraped = Registry::default();
        for source in sources {
            let Ok(Some(readings)) = tokio::time::timeout_at(deadline, (source.read)()).await
            else {
                continue;
            };
            register(&mut scraped, &source, readings);
        }
        let mut out = String::new();
        encode_registry(&mut out, &self.registry).expect("writing to a String cannot fail");
        encode_registry(&mut out, &scraped).expect("writing to a String cannot fail");
        if openmetrics {
            encode_eof(&mut out).expect("writing to a String cannot fail");
            out
        } else {
            to_prometheus_text(&out)
        }
    }
}

fn register(registry: &mut Registry, source: &Source, readings: Readings) {
    match source.label {
        None => match readings.into_iter().next() {
            Some((_, Value::Gauge(v))) => {
                registry.register(source.name, source.help, ConstGauge::new(v))
            }
            Some((_, Value::Counter(v))) => {
                registry.register(source.name, source.help, ConstCounter::new(v))
            }
            None => {}
        },
        Some(label) => {
            let family = Family::<Vec<(&'static str, String)>, Gauge>::default();
            for (value, reading) in readings {
                if let (Some(value), Value::Gauge(v)) = (value, reading) {
                    family.get_or_create(&vec![(label, value)]).set(v);
                }
            }
            registry.register(source.name, source.help, family);
        }
    }
}

/// OpenMetrics text → Prometheus text 0.0.4: a counter family is named with its
/// `_total` in `# HELP`/`# TYPE`, there is no `# UNIT` and no `# EOF`.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// A bounded method label: the standard methods, anything else `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware recording every request (route template only; `(unmatched)` for 404s).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let res = next.run(req).await;
    metrics.record_request(
        &method,
        route.as_deref().unwrap_or("(unmatched)"),
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}

/// `GET /metrics`.
pub async fn scrape(State(metrics): State<Arc<Metrics>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let body = metrics.render(openmetrics).await;
    let content_type = if openmetrics {
        OPENMETRICS
    } else {
        PROMETHEUS_TEXT
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// `/metrics` alone, for a listener of its own (`CARELOG_METRICS_BIND`).
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_recorded_and_scraped_metrics() {
        let m = Metrics::new();
        m.record_request(
            &Method::POST,
            "/api/auth/login",
            200,
            Duration::from_millis(3),
        );
        m.counter("carelog_events_appended", "Events appended.", || 7);
        m.gauge("carelog_relay_lag_events", "Lag.", || async { Some(3) });
        m.gauge("carelog_missing", "Fails.", || async { None });
        m.gauge_by(
            "carelog_projection_lag_events",
            "Lag.",
            "projection",
            || async { Some(vec![("patients".to_owned(), 2)]) },
        );

        let text = m.render(false).await;
        assert!(
            text.contains("# TYPE carelog_events_appended_total counter"),
            "{text}"
        );
        assert!(text.contains("carelog_events_appended_total 7"), "{text}");
        assert!(text.contains(
            r#"carelog_http_requests_total{method="POST",route="/api/auth/login",status="200"} 1"#
        ));
        assert!(text.contains("# TYPE carelog_http_request_duration_seconds histogram"));
        assert!(text.contains("carelog_relay_lag_events 3"));
        assert!(text.contains(r#"carelog_projection_lag_events{projection="patients"} 2"#));
        assert!(!text.contains("carelog_missing"));
        assert!(!text.contains("# EOF"));

        let om = m.render(true).await;
        assert!(om.contains("# TYPE carelog_events_appended counter"));
        assert!(om.ends_with("# EOF\n"));
    }
}
