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

/// Events are externally tagged enums whose variant name is the event type and whose
/// fields are the payload (`schemas/v1/<Type>.json`). These helpers turn one into a
/// [`NewEvent`] and back, for every aggregate alike.
pub(crate) mod codec {
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    use super::NewEvent;
    use crate::ids::{EventId, EventType, SchemaVersion, SubjectId};
    use crate::metadata::Metadata;

    /// Variant name and fields of an externally tagged enum value.
    pub(crate) fn split<T: Serialize>(event: &T) -> (String, Value) {
        match serde_json::to_value(event).expect("events serialise") {
            Value::Object(map) if map.len() == 1 => map.into_iter().next().expect("one entry"),
            _ => unreachable!("events are struct variants"),
        }
    }

    /// The static name of `event`'s variant, looked up in its enum's `known` list.
    pub(crate) fn variant_name<T: Serialize>(event: &T, known: &[&'static str]) -> &'static str {
        let (name, _) = split(event);
        known
            .iter()
            .find(|k| **k == name)
            .copied()
            .expect("every variant is listed in KNOWN")
    }

    /// Decodes a payload of `event_type`: `None` if the enum has no such variant.
    pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
        event_type: &str,
        payload: Value,
    ) -> Option<Result<T, serde_json::Error>> {
        let mut map = serde_json::Map::new();
        map.insert(event_type.to_owned(), payload);
        match serde_json::from_value::<T>(Value::Object(map)) {
            Ok(e) => Some(Ok(e)),
            // An unknown variant is "not mine"; anything else is a malformed payload.
            Err(e) if e.to_string().starts_with("unknown variant") => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// The event to append, sealed under `subject`'s key.
    pub(crate) fn new_event<T: Serialize>(
        event: &T,
        subject: SubjectId,
        metadata: Metadata,
    ) -> NewEvent {
        let (name, payload) = split(event);
        NewEvent {
            event_id: EventId::new_v7(),
            event_type: EventType::try_from(name).expect("variant names are valid event types"),
            schema_version: SchemaVersion(1),
            subject,
            payload,
            metadata,
        }
    }
}
