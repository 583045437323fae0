//! The test harness every end-to-end test builds on.

pub mod app;
pub mod clinical;
pub mod db;
pub mod mfa;
pub mod nats;

pub use app::TestApp;
pub use db::TestDb;

use carelog_crypto::{Keyring, MasterKey};
use carelog_domain::{
    EventId, EventType, Metadata, NewEvent, SchemaVersion, StreamId, StreamType, SubjectId,
};
use carelog_store::keys::CacheConfig;
use carelog_store::{AppendRequest, EventStore, Expected, GroupCommitConfig, KeyStore};
use serde_json::Value;
use uuid::Uuid;

/// A fresh random master key's keyring.
pub fn keyring() -> Keyring {
    Keyring::new(MasterKey::generate(), [])
}

/// An event store over the test database with `keyring`.
pub fn store(db: &TestDb, keyring: Keyring) -> EventStore {
    let keys = KeyStore::new(db.pool.clone(), keyring, CacheConfig::default());
    EventStore::start(db.pool.clone(), keys, GroupCommitConfig::default())
}

/// A new patient stream id.
pub fn patient_stream() -> StreamId {
    StreamId::new(StreamType::Patient, Uuid::now_v7())
}

/// An event of `stream`'s own subject with `payload`.
pub fn event(stream: &StreamId, event_type: &str, payload: Value) -> NewEvent {
    NewEvent {
        event_id: EventId::new_v7(),
        event_type: EventType::try_from(event_type).expect("valid event type"),
        schema_version: SchemaVersion(1),
        subject: SubjectId::of_stream(stream),
        payload,
        metadata: Metadata {
            request_id: Some(format!("req-{}", Uuid::now_v7().simple())),
            ..Metadata::default()
        },
    }
}

/// One event appended at `expected`.
pub fn one(stream: StreamId, expected: Expected, ev: NewEvent) -> AppendRequest {
    AppendRequest {
        stream,
        expected,
        events: vec![ev],
    }
}

/// Polls `check` until it holds, panicking with `what` once `within` has passed.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asserts that `audit_feed_spans` holds, for every span of positions of
/// `audit_feed`, exactly the earliest and latest `recorded_at` of its entries (as
/// recomputed here from the table), and no other span.
pub async fn assert_audit_spans_exact(pool: &sqlx::PgPool, when: &str) {
    let wrong: Vec<String> = sqlx::query_scalar(
        "SELECT format('span %s: kept %s..%s, entries %s..%s', \
                coalesce(k.span, e.span), k.first_at, k.last_at, e.first_at, e.last_at) \
         FROM (SELECT position / audit_feed_span_size() AS span, min(recorded_at) AS first_at, \
                      max(recorded_at) AS last_at \
               FROM audit_feed GROUP BY 1) e \
         FULL JOIN audit_feed_spans k ON k.span = e.span \
         WHERE k.first_at IS DISTINCT FROM e.first_at OR k.last_at IS DISTINCT FROM e.last_at \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(wrong.is_empty(), "audit_feed_spans {when}: {wrong:?}");
}
