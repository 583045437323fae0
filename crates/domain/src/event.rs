//! Events before and after they are stored.

use chrono::{DateTime, Utc};

use crate::ids::{EventId, EventType, KeyId, SchemaVersion, StreamId, StreamVersion, SubjectId};
use crate::metadata::Metadata;

/// An event a command decided on, not yet sealed or stored. The payload is plaintext
/// JSON and may hold PHI: it only ever leaves memory sealed under the subject's key.
#[derive(Clone)]
pub struct NewEvent {
    /// Chosen by the caller so a retried append is recognised.
    pub event_id: EventId,
    /// What happened.
    pub event_type: EventType,
    /// Which schema the payload follows.
    pub schema_version: SchemaVersion,
    /// Whose key seals the payload.
    pub subject: SubjectId,
    /// The plaintext payload.
    pub payload: serde_json::Value,
    /// Who, where, why (no PHI).
    pub metadata: Metadata,
}

// No Debug that could print the payload.
impl std::fmt::Debug for NewEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEvent")
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("schema_version", &self.schema_version)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The clear-text facts of a stored event that are bound into its hash and (in part)
/// into the associated data of its ciphertext. Carries no PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// The event's unique id.
    pub event_id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream (1 for the first event).
    pub version: StreamVersion,
    /// What happened.
    pub event_type: EventType,
    /// The payload schema.
    pub schema_version: SchemaVersion,
    /// Whose key sealed the payload.
    pub subject: SubjectId,
    /// Which key sealed it.
    pub key_id: KeyId,
    /// Who, where, why.
    pub metadata: Metadata,
    /// When it was stored (microsecond precision, as PostgreSQL keeps it).
    pub recorded_at: DateTime<Utc>,
}
