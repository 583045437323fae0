//! Dead-letter notices: what the `<prefix>DLQ` stream carries. A contract for its
//! consumers (alerting, dashboards, other services); changes must be additive and
//! consumers ignore fields they do not know.
//!
//! PostgreSQL (`dlq_entries`) is the record of the dead-letter queue; the stream only
//! tells about it. The projectors publish a notice AFTER the transaction that changes an
//! entry commits, best effort: a notice may be missing (NATS was down; nothing is
//! re-sent later) or repeated (at least once; JetStream drops a repeat within the
//! stream's duplicate window by `Nats-Msg-Id`). To know the queue as it is, ask the
//! admin API (`GET /admin/dlq`) or `carelog dlq list`.
//!
//! Subject: `<prefix>dlq.<projection>` ([`subject`]), e.g. `dlq.audit_feed`: the
//! projection name only (`[a-z0-9_]`), no ids, no PHI. Subscribe to `<prefix>dlq.>` for
//! every projection.
//!
//! Headers:
//! - `Nats-Msg-Id`: `<entry id>.<status>.<attempts>` ([`message_id`]): one message per
//!   state of an entry;
//! - `Carelog-Dlq-Status`: the status, as in the body.
//!
//! Body: one JSON object (UTF-8), no PHI (ids, positions, type names and the
//! projection's own error text, which must carry no PHI):
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `projection` | string | the projection that set the event aside |
//! | `dlq_entry_id` | string (uuid) | the entry (what `carelog dlq retry|discard` and `/admin/dlq/:id` name) |
//! | `event_id` | string (uuid) | the event |
//! | `position` | integer | its global position |
//! | `stream_id` | string | its stream, `<stream type>-<uuid>` |
//! | `event_type` | string | its type name |
//! | `status` | string | see below |
//! | `attempts` | integer | attempts made to apply it (0 for a waiting event) |
//! | `error` | string or null | why it failed (null for a waiting event) |
//! | `first_failed_at` | string or null | RFC 3339 UTC, first failure |
//! | `last_failed_at` | string or null | RFC 3339 UTC, latest failure |
//! | `noticed_at` | string | RFC 3339 UTC, when this notice was made |
//!
//! Statuses:
//! - `failed`: the event could not be applied after the bounded attempts (or a retry
//!   failed again: `attempts` grows; or a waiting event failed when released). Its
//!   stream waits behind it.
//! - `waiting`: a later event of a stream that has a failed event, parked behind it.
//! - `retried`: an operator retried the failed event and it was applied; the entry is gone.
//! - `discarded`: an operator discarded the failed event (never applied); the entry is gone.
//! - `released`: a waiting event applied after its stream's failed event was retried or
//!   discarded; the entry is gone.
//!
//! The body never holds the event's payload, sealed or not.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use carelog_domain::{EventId, EventType, Position};
use carelog_store::projector::{DlqEntry, DlqStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::BusConfig;

/// The header carrying a notice's status.
pub const HEADER_STATUS: &str = "Carelog-Dlq-Status";

/// How long a publisher waits for JetStream to acknowledge its notices.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// What happened to a dead letter; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeStatus {
    /// Set aside after the bounded attempts (or failed again).
    Failed,
    /// Parked behind its stream's failed event.
    Waiting,
    /// Retried and applied by an operator; the entry is gone.
    Retried,
    /// Discarded by an operator; the entry is gone.
    Discarded,
    /// Applied after its stream's failed event was settled; the entry is gone.
    Released,
}

impl NoticeStatus {
    /// As in the body and the headers.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Failed => "failed",
            NoticeStatus::Waiting => "waiting",
            NoticeStatus::Retried => "retried",
            NoticeStatus::Discarded => "discarded",
            NoticeStatus::Released => "released",
        }
    }
}

impl From<DlqStatus> for NoticeStatus {
    fn from(s: DlqStatus) -> Self {
        match s {
            DlqStatus::Failed => NoticeStatus::Failed,
            DlqStatus::Waiting => NoticeStatus::Waiting,
        }
    }
}

/// One notice of the `<prefix>DLQ` stream (the body; see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterNotice {
    /// The projection.
    pub projection: String,
    /// The `dlq_entries` row.
    pub dlq_entry_id: Uuid,
    /// The event.
    pub event_id: EventId,
    /// Its global position.
    pub position: Position,
    /// Its stream.
    pub stream_id: String,
    /// Its type.
    pub event_type: EventType,
    /// What happened.
    pub status: NoticeStatus,
    /// Attempts made.
    pub attempts: i32,
    /// The projection's error (no PHI).
    pub error: Option<String>,
    /// First failure.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// Latest failure.
    pub last_failed_at: Option<DateTime<Utc>>,
    /// When the notice was made.
    pub noticed_at: DateTime<Utc>,
}

impl DeadLetterNotice {
    /// The notice of `entry` (of an event of type `event_type`) with `status`, now.
    pub fn new(entry: &DlqEntry, event_type: EventType, status: NoticeStatus) -> Self {
        Self {
            projection: entry.projection.clone(),
            dlq_entry_id: entry.id,
            event_id: entry.event_id,
            position: entry.position,
            stream_id: entry.stream_id.clone(),
            event_type,
            status,
            attempts: entry.attempts,
            error: entry.error.clone(),
            first_failed_at: entry.first_failed_at,
            last_failed_at: entry.last_failed_at,
            noticed_at: Utc::now(),
        }
    }

    /// The notice of `entry` as stored (`failed` or `waiting`).
    pub fn of_entry(entry: &DlqEntry, event_type: EventType) -> Self {
        Self::new(entry, event_type, entry.status.into())
    }
}

/// `<prefix>dlq.<projection>`.
pub fn subject(prefix: &str, projection: &str) -> String {
    format!("{prefix}dlq.{projection}")
}

/// `<entry id>.<status>.<attempts>`: the same state of the same entry is one message.
pub fn message_id(notice: &DeadLetterNotice) -> String {
    format!(
        "{}.{}.{}",
        notice.dlq_entry_id.hyphenated(),
        notice.status.as_str(),
        notice.attempts
    )
}

/// The headers and body of `notice`'s message.
pub fn encode(notice: &DeadLetterNotice) -> (HeaderMap, Vec<u8>) {
    let body = serde_json::to_vec(notice).expect("a notice always serialises");
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        message_id(notice).as_str(),
    );
    headers.insert(HEADER_STATUS, notice.status.as_str());
    (headers, body)
}

/// The notice in a message body.
pub fn decode(body: &[u8]) -> Result<DeadLetterNotice, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Publishes notices on `<prefix>DLQ`, best effort (see the module documentation).
#[derive(Clone)]
pub struct NoticePublisher {
    js: jetstream::Context,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for NoticePublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticePublisher")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NoticePublisher {
    /// A publisher through `client` under `bus`'s prefix, waiting at most
    /// [`DEFAULT_ACK_TIMEOUT`] for a batch of notices.
    pub fn new(client: async_nats::Client, bus: &BusConfig) -> Self {
        Self::with_timeout(client, bus, DEFAULT_ACK_TIMEOUT)
    }

    /// The same, waiting at most `timeout`.
    pub fn with_timeout(client: async_nats::Client, bus: &BusConfig, timeout: Duration) -> Self {
        Self {
            js: jetstream::ContextBuilder::new()
                .timeout(timeout)
                .build(client),
            prefix: bus.prefix.clone(),
            timeout,
        }
    }

    /// Publishes `notices` and waits (at most the timeout) for their acknowledgements.
    /// Never fails: a notice that is not acknowledged is logged (ids and the NATS error
    /// only, no PHI) and dropped. Returns how many were acknowledged.
    pub async fn publish(&self, notices: &[DeadLetterNotice]) -> usize {
        if notices.is_empty() {
            return 0;
        }
        let all = async {
            let mut acks = Vec::with_capacity(notices.len());
            for notice in notices {
                let (headers, body) = encode(notice);
                let sent = self
                    .js
                    .publish_with_headers(
                        subject(&self.prefix, &notice.projection),
                        headers,
                        body.into(),
                    )
                    .await;
                match sent {
                    Ok(ack) => acks.push((notice, ack)),
                    Err(e) => log_lost(notice, &e),
                }
            }
            let mut done = 0;
            for (notice, ack) in acks {
                match ack.await {
                    Ok(_) => done += 1,
                    Err(e) => log_lost(notice, &e),
                }
            }
            done
        };
        match tokio::time::timeout(self.timeout + Duration::from_millis(500), all).await {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!(
                    notices = notices.len(),
                    "dead-letter notices not acknowledged in time by NATS; PostgreSQL holds the record"
                );
                0
            }
        }
    }
}

fn log_lost(notice: &DeadLetterNotice, error: &dyn std::fmt::Display) {
    tracing::warn!(
        projection = %notice.projection,
        dlq_entry_id = %notice.dlq_entry_id,
        status = notice.status.as_str(),
        error = %error,
        "dead-letter notice not published to NATS; PostgreSQL holds the record"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> DlqEntry {
        DlqEntry {
            id: Uuid::now_v7(),
            projection: "audit_feed".into(),
            stream_id: format!("patient-{}", Uuid::now_v7()),
            event_id: EventId(Uuid::now_v7()),
            position: Position(42),
            error: Some("database error SQLSTATE 23505".into()),
            attempts: 5,
            first_failed_at: Some(Utc::now()),
            last_failed_at: Some(Utc::now()),
            status: DlqStatus::Failed,
        }
    }

    #[test]
    fn a_notice_round_trips_with_its_contract_fields() {
        let e = entry();
        let ty = EventType::try_from("PatientRegistered").unwrap();
        let n = DeadLetterNotice::of_entry(&e, ty);
        assert_eq!(n.status, NoticeStatus::Failed);
        let (headers, body) = encode(&n);
        assert_eq!(decode(&body).unwrap(), n);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "attempts",
                "dlq_entry_id",
                "error",
                "event_id",
                "event_type",
                "first_failed_at",
                "last_failed_at",
                "noticed_at",
                "position",
                "projection",
                "status",
                "stream_id"
            ]
        );
        assert_eq!(v["event_id"], e.event_id.0.to_string());
        assert_eq!(v["dlq_entry_id"], e.id.to_string());
        assert_eq!(v["position"], 42);
        assert_eq!(v["status"], "failed");
        assert_eq!(v["event_type"], "PatientRegistered");
        assert_eq!(
            headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .unwrap()
                .as_str(),
            format!("{}.failed.5", e.id)
        );
        assert_eq!(headers.get(HEADER_STATUS).unwrap().as_str(), "failed");
    }

    #[test]
    fn one_message_id_per_entry_state() {
        let e = entry();
        let ty = EventType::try_from("PatientRegistered").unwrap();
        let failed = DeadLetterNotice::of_entry(&e, ty.clone());
        let later = DeadLetterNotice::of_entry(&e, ty.clone());
        assert_eq!(
            message_id(&failed),
            message_id(&later),
            "a repeat is a duplicate"
        );
        let again = DeadLetterNotice::of_entry(
            &DlqEntry {
                attempts: 6,
                ..e.clone()
            },
            ty.clone(),
        );
        assert_ne!(
            message_id(&failed),
            message_id(&again),
            "a new failure is news"
        );
        let discarded = DeadLetterNotice::new(&e, ty, NoticeStatus::Discarded);
        assert_ne!(message_id(&failed), message_id(&discarded));
        let waiting = DlqEntry {
            status: DlqStatus::Waiting,
            ..e
        };
        assert_eq!(
            DeadLetterNotice::of_entry(&waiting, EventType::try_from("X").unwrap()).status,
            NoticeStatus::Waiting
        );
    }

    #[test]
    fn subjects_fit_the_dlq_stream() {
        assert_eq!(subject("t1_", "audit_feed"), "t1_dlq.audit_feed");
        let cfg = BusConfig::new("t1_", 1).unwrap();
        let dlq = crate::streams::configs(&cfg)
            .unwrap()
            .into_iter()
            .find(|c| c.name == cfg.dlq_stream())
            .unwrap();
        assert_eq!(dlq.subjects, ["t1_dlq.>"]);
        assert!(subject("t1_", "audit_feed").starts_with(dlq.subjects[0].trim_end_matches('>')));
    }
}
