//! Operator actions on the platform itself. They carry no personal data; they are events
//! like every other change, so the log shows who rotated a key and when.

use serde_json::json;
use uuid::Uuid;

use crate::event::NewEvent;
use crate::ids::{EventId, EventType, SchemaVersion, StreamId, StreamType, SubjectId};
use crate::metadata::Metadata;

/// The stream of platform operations (`system-00000000-0000-0000-0000-000000000000`).
pub fn operations_stream() -> StreamId {
    StreamId::new(StreamType::System, Uuid::nil())
}

/// Every data key was re-wrapped from master key `from` to master key `to`.
/// Schema: `schemas/v1/MasterKeyRotated.json`.
pub fn master_key_rotated(
    event_id: EventId,
    from: &[String],
    to: &str,
    rewrapped: u64,
    metadata: Metadata,
) -> NewEvent {
    NewEvent {
        event_id,
        event_type: EventType::try_from("MasterKeyRotated").expect("valid event type"),
        schema_version: SchemaVersion(1),
        subject: SubjectId::system(),
        payload: json!({ "from_kek_ids": from, "to_kek_id": to, "rewrapped": rewrapped }),
        metadata,
    }
}

/// An operator took a signed audit checkpoint on demand (`POST /api/audit/checkpoints`):
/// the log as of `position` has the stream-head digest `digest` (hex), signed by the key
/// `key_id` (PASERK id). The checkpoint itself is in `audit_checkpoints`; this event puts
/// who asked for it, and when, in the log. Automatic checkpoints are not events (they
/// would add one to the log every N events for nobody's action).
/// Schema: `schemas/v1/AuditCheckpointTaken.json`.
pub fn audit_checkpoint_taken(
    event_id: EventId,
    checkpoint_id: i64,
    position: i64,
    digest: &str,
    key_id: &str,
    metadata: Metadata,
) -> NewEvent {
    NewEvent {
        event_id,
        event_type: EventType::try_from("AuditCheckpointTaken").expect("valid event type"),
        schema_version: SchemaVersion(1),
        subject: SubjectId::system(),
        payload: json!({
            "checkpoint_id": checkpoint_id,
            "position": position,
            "digest": digest,
            "key_id": key_id,
        }),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operations_stream_is_a_system_stream() {
        assert_eq!(
            operations_stream().to_string(),
            "system-00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn a_checkpoint_taken_on_demand_matches_its_schema_under_the_system_subject() {
        let ev = audit_checkpoint_taken(
            EventId(Uuid::nil()),
            1,
            42,
            &"ab".repeat(32),
            "k4.pid.xyz",
            Metadata::default(),
        );
        assert_eq!(ev.subject, SubjectId::system());
        crate::testing::check_schema(&ev);
    }

    #[test]
    fn key_rotation_is_recorded_under_the_system_subject() {
        let ev = master_key_rotated(
            EventId(Uuid::nil()),
            &["a".into()],
            "b",
            3,
            Metadata::default(),
        );
        assert_eq!(ev.subject, SubjectId::system());
        assert_eq!(ev.payload["rewrapped"], 3);
    }
}
