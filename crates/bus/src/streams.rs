//! The JetStream streams, defined as data in `nats/streams.json` and applied under the
//! prefix: a stream `EVENTS` with subjects `events.>` becomes `<prefix>EVENTS` with
//! `<prefix>events.>`.
//!
//! The two streams:
//! - `<prefix>EVENTS` (`<prefix>events.<stream type>.<event type>`): the event log, relayed
//!   in position order; the body is [`crate::message`] (sealed payload).
//! - `<prefix>DLQ` (`<prefix>dlq.<projection>`): a notice each time a dead letter is
//!   recorded (`failed`, `waiting`) or settled (`retried`, `discarded`, `released`); the
//!   body is [`crate::dead_letter`] (ids, positions, type names, the projection's error
//!   text; never a payload). Notices are published after the PostgreSQL commit, best
//!   effort: `dlq_entries` is the record, the stream may miss a notice while NATS is down
//!   and may repeat one (deduplicated by `Nats-Msg-Id` within the duplicate window).
//!   Consumers should treat it as a feed of alerts, and read the queue itself from the
//!   admin API or `carelog dlq list`.
//!
//! [`ensure_streams`] creates each stream, or updates it to the definition when it
//! exists; running it again (every start-up of every node) changes nothing. Settings
//! NATS cannot change on a live stream (storage, retention) make it fail with NATS's
//! message rather than silently keeping the old stream.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde::Deserialize;

use crate::{BusConfig, ConfigError};

/// The definitions, as shipped (`nats/streams.json`).
pub const DEFINITIONS: &str = include_str!("../../../nats/streams.json");

/// One stream of `nats/streams.json`, before the prefix is applied.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamDef {
    /// Name without prefix (letters, digits, `_`, `-`).
    pub name: String,
    /// What the stream is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Subjects without prefix.
    pub subjects: Vec<String>,
    /// `file` or `memory`.
    pub storage: Storage,
    /// `limits`, `interest` or `workqueue`.
    pub retention: Retention,
    /// `old` (drop the oldest messages at a limit) or `new` (refuse new ones).
    pub discard: Discard,
    /// Oldest message kept, in seconds; 0 keeps them regardless of age.
    pub max_age_secs: u64,
    /// Total bytes kept; -1 for no limit.
    pub max_bytes: i64,
    /// Total messages kept; -1 for no limit.
    pub max_msgs: i64,
    /// Largest message accepted, in bytes; 0 for the server's `max_payload`.
    #[serde(default)]
    pub max_msg_size: i32,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate, in seconds.
    pub duplicate_window_secs: u64,
    /// Refuse deleting single messages.
    #[serde(default)]
    pub deny_delete: bool,
    /// Refuse purging the stream.
    #[serde(default)]
    pub deny_purge: bool,
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// On disk.
    File,
    /// In memory.
    Memory,
}

/// When messages leave a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    /// At the limits (age, bytes, count).
    Limits,
    /// When every consumer has acknowledged them.
    Interest,
    /// When one consumer has acknowledged them.
    Workqueue,
}

/// What happens at a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    /// The oldest messages go.
    Old,
    /// New messages are refused.
    New,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionsFile {
    #[serde(rename = "$comment", default)]
    _comment: Option<String>,
    streams: Vec<StreamDef>,
}

/// Why the streams could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// `nats/streams.json` does not parse.
    #[error("nats/streams.json is malformed: {0}")]
    Definitions(#[from] serde_json::Error),
    /// The prefix or replicas are refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// NATS refused or did not answer.
    #[error("cannot create or update JetStream stream {stream}: {source}")]
    Apply {
        /// The stream's full name.
        stream: String,
        /// What NATS said.
        #[source]
        source: jetstream::context::CreateStreamError,
    },
}

/// The shipped definitions.
pub fn definitions() -> Result<Vec<StreamDef>, StreamsError> {
    Ok(serde_json::from_str::<DefinitionsFile>(DEFINITIONS)?.streams)
}

impl StreamDef {
    /// The JetStream configuration of this stream under `cfg`'s prefix and replicas.
    pub fn to_config(&self, cfg: &BusConfig) -> stream::Config {
        let p = &cfg.prefix;
        stream::Config {
            name: format!("{p}{}", self.name),
            description: self.description.clone(),
            subjects: self.subjects.iter().map(|s| format!("{p}{s}")).collect(),
            storage: match self.storage {
                Storage::File => stream::StorageType::File,
                Storage::Memory => stream::StorageType::Memory,
            },
            retention: match self.retention {
                Retention::Limits => stream::RetentionPolicy::Limits,
                Retention::Interest => stream::RetentionPolicy::Interest,
                Retention::Workqueue => stream::RetentionPolicy::WorkQueue,
            },
            discard: match self.discard {
                Discard::Old => stream::DiscardPolicy::Old,
                Discard::New => stream::DiscardPolicy::New,
            },
            max_age: Duration::from_secs(self.max_age_secs),
            max_bytes: self.max_bytes,
            max_messages: self.max_msgs,
            max_messages_per_subject: -1,
            max_message_size: self.max_msg_size,
            max_consumers: -1,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            num_replicas: cfg.replicas,
            deny_delete: self.deny_delete,
            deny_purge: self.deny_purge,
            ..Default::default()
        }
    }
}

/// The JetStream configurations of every stream under `cfg`.
pub fn configs(cfg: &BusConfig) -> Result<Vec<stream::Config>, StreamsError> {
    cfg.validate()?;
    Ok(definitions()?.iter().map(|d| d.to_config(cfg)).collect())
}

/// Creates each stream, or updates it to its definition; idempotent.
pub async fn ensure_streams(js: &jetstream::Context, cfg: &BusConfig) -> Result<(), StreamsError> {
    for config in configs(cfg)? {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|source| StreamsError::Apply {
                stream: name.clone(),
                source,
            })?;
        tracing::debug!(stream = %name, "JetStream stream ensured");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_definitions_parse_and_take_the_prefix() {
        let cfg = BusConfig::new("t1_", 3).unwrap();
        let configs = configs(&cfg).unwrap();
        let names: Vec<_> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["t1_EVENTS", "t1_DLQ"]);
        let events = &configs[0];
        assert_eq!(events.subjects, ["t1_events.>"]);
        assert_eq!(events.num_replicas, 3);
        assert_eq!(events.storage, stream::StorageType::File);
        assert_eq!(events.discard, stream::DiscardPolicy::Old);
        assert!(events.duplicate_window >= Duration::from_secs(60));
        assert_eq!(configs[1].subjects, ["t1_dlq.>"]);
        for def in definitions().unwrap() {
            assert!(BusConfig::new(def.name.clone(), 1).is_ok(), "{}", def.name);
        }
    }

    #[test]
    fn a_bad_prefix_is_refused_before_nats_is_asked() {
        let cfg = BusConfig {
            prefix: "a.b".into(),
            replicas: 1,
        };
        assert!(matches!(configs(&cfg), Err(StreamsError::Config(_))));
    }
}
