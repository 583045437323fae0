//! carelog's NATS JetStream side.
//!
//! What it owns:
//! - [`streams`]: the stream definitions of `nats/streams.json`, applied idempotently
//!   ([`ensure_streams`]) under a prefix (`CARELOG_NATS_PREFIX`).
//! - [`message`]: the wire format of a relayed event (a contract for the projectors):
//!   clear header, sealed payload, never plaintext.
//! - [`dead_letter`]: the notices of the `<prefix>DLQ` stream (subject, headers, body;
//!   a contract for its consumers) and their best-effort publisher.
//! - [`relay`]: the one active relay per database and prefix that follows the log
//!   gap-safely from its checkpoint and publishes every event, in position order.
//!
//! What it must not do: open a payload, or make a command wait on NATS. Appends never
//! touch NATS; the relay is a task of its own that catches up after an outage.

pub mod dead_letter;
pub mod message;
pub mod relay;
pub mod streams;

use carelog_domain::{EventType, StreamType};

pub use dead_letter::{DeadLetterNotice, NoticePublisher, NoticeStatus};
pub use message::{decode, encode, MessageError, HEADER_POSITION, MAX_MESSAGE_BYTES};
pub use relay::{Relay, RelayConfig, RelayStatus};
pub use streams::{ensure_streams, StreamsError};

/// The longest prefix accepted (stream names are limited to 255 bytes by NATS; a prefix
/// is meant to be a short tenant or test tag).
pub const MAX_PREFIX_LEN: usize = 64;

/// Most replicas a JetStream stream may have.
pub const MAX_REPLICAS: usize = 5;

/// Where and how carelog's streams live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// Prepended to every stream name, subject and consumer name (`CARELOG_NATS_PREFIX`).
    /// It must be usable inside a stream name: letters, digits, `_` and `-` only (no dots,
    /// no wildcards, no spaces), at most [`MAX_PREFIX_LEN`] characters; empty for none.
    pub prefix: String,
    /// Replicas of every stream (`CARELOG_NATS_REPLICAS`): 1 for one server, 3 for a
    /// cluster; 1 to [`MAX_REPLICAS`].
    pub replicas: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            replicas: 1,
        }
    }
}

/// A bus setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The prefix would make an invalid stream name or subject.
    #[error(
        "CARELOG_NATS_PREFIX must be at most {MAX_PREFIX_LEN} letters, digits, `_` or `-` \
         (it becomes part of stream names, which cannot contain dots, wildcards or spaces)"
    )]
    BadPrefix,
    /// Replicas out of range.
    #[error("CARELOG_NATS_REPLICAS must be between 1 and {MAX_REPLICAS} (1 for one server, 3 for a cluster)")]
    BadReplicas,
}

impl BusConfig {
    /// A checked configuration.
    pub fn new(prefix: impl Into<String>, replicas: usize) -> Result<Self, ConfigError> {
        let cfg = Self {
            prefix: prefix.into(),
            replicas,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses a prefix that is not a valid stream-name token, or a replica count NATS
    /// would refuse.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !valid_prefix(&self.prefix) {
            return Err(ConfigError::BadPrefix);
        }
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(ConfigError::BadReplicas);
        }
        Ok(())
    }

    /// The name of the events stream, `<prefix>EVENTS`.
    pub fn events_stream(&self) -> String {
        format!("{}EVENTS", self.prefix)
    }

    /// The name of the dead-letter stream, `<prefix>DLQ`.
    pub fn dlq_stream(&self) -> String {
        format!("{}DLQ", self.prefix)
    }

    /// The subject of an event: see [`subject`].
    pub fn subject(&self, stream_type: StreamType, event_type: &EventType) -> String {
        subject(&self.prefix, stream_type, event_type)
    }
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= MAX_PREFIX_LEN
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `<prefix>events.<stream type>.<event type>`, e.g. `events.patient.PatientRegistered`.
/// Only the type names: never an id, never PHI.
pub fn subject(prefix: &str, stream_type: StreamType, event_type: &EventType) -> String {
    format!(
        "{prefix}events.{}.{}",
        stream_type.as_str(),
        event_type.as_str()
    )
}

/// Connects to `NATS_URL`: one or several servers, comma-separated. Connects in the
/// background when no server answers yet (so start-up never waits on NATS) and keeps
/// reconnecting for ever.
pub async fn connect(nats_url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let servers: Vec<&str> = nats_url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(servers)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_stream_name_tokens() {
        for ok in ["", "t0190f3a4_", "tenant-a", "A_b-9"] {
            assert!(BusConfig::new(ok, 1).is_ok(), "{ok:?}");
        }
        for bad in [
            "a.b",
            "a b",
            "a*",
            "a>",
            "tenant.",
            "é",
            "a/b",
            &"x".repeat(65),
        ] {
            assert_eq!(
                BusConfig::new(bad, 1),
                Err(ConfigError::BadPrefix),
                "{bad:?}"
            );
        }
        assert_eq!(BusConfig::new("", 0), Err(ConfigError::BadReplicas));
        assert_eq!(BusConfig::new("", 6), Err(ConfigError::BadReplicas));
        assert!(BusConfig::new("", 3).is_ok());
    }

    #[test]
    fn subjects_carry_only_type_names() {
        let t = EventType::try_from("PatientRegistered").unwrap();
        assert_eq!(
            subject("p_", StreamType::Patient, &t),
            "p_events.patient.PatientRegistered"
        );
        let cfg = BusConfig::new("", 1).unwrap();
        assert_eq!(
            cfg.subject(StreamType::Record, &t),
            "events.record.PatientRegistered"
        );
        assert_eq!(cfg.events_stream(), "EVENTS");
        assert_eq!(BusConfig::new("x-", 1).unwrap().dlq_stream(), "x-DLQ");
    }
}
