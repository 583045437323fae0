//! What one stored event means to a read model of one aggregate type: nothing (another
//! stream type, or an event type the model does not show), a decoded event, or the
//! erasure of its subject. Shared by the clinical projections.

use carelog_domain::StreamType;
use carelog_store::{Opened, StoredEvent};
use serde_json::Value;

use crate::ApplyError;

/// What one event does to a read model.
pub(crate) enum Change<E> {
    /// Nothing (another stream, or an event type this model does not show).
    None,
    /// An event of the model's aggregate.
    Event(E),
    /// The subject was erased: its rows go.
    Erase,
}

/// Decodes `event` for a model of `stream_type` with the aggregate's `decode`. The
/// error names the event type only, never a value.
pub(crate) fn change<E>(
    event: &StoredEvent,
    opened: &Opened,
    stream_type: StreamType,
    decode: impl Fn(&str, Value) -> Option<Result<E, serde_json::Error>>,
) -> Result<Change<E>, ApplyError> {
    if event.header.stream_id.stream_type() != stream_type {
        return Ok(Change::None);
    }
    let payload = match opened {
        Opened::Erased => return Ok(Change::Erase),
        Opened::Payload(p) => p,
        // These projections read every payload (no filter), so this is a runtime fault:
        // an error (the event waits in the DLQ), never a silently skipped change.
        Opened::Unread => {
            let ty = event.header.event_type.as_str();
            return Err(ApplyError::new(format!(
                "{ty} payload handed over unopened"
            )));
        }
    };
    let ty = event.header.event_type.as_str();
    match decode(ty, payload.clone()) {
        None => Ok(Change::None),
        Some(Ok(e)) => Ok(Change::Event(e)),
        Some(Err(_)) => Err(ApplyError::new(format!("undecodable {ty} payload"))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use carelog_domain::patient::PatientEvent;
    use carelog_domain::record::RecordEvent;
    use carelog_domain::{
        EventHeader, EventId, EventType, KeyId, Metadata, Position, SchemaVersion, StreamId,
        StreamVersion, SubjectId,
    };
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    pub(crate) fn stored(stream: StreamType, ty: &str) -> StoredEvent {
        let stream_id = StreamId::new(stream, Uuid::now_v7());
        StoredEvent {
            position: Position(7),
            header: EventHeader {
                event_id: EventId::new_v7(),
                stream_id,
                version: StreamVersion(1),
                event_type: EventType::try_from(ty).unwrap(),
                schema_version: SchemaVersion(1),
                subject: SubjectId::of_stream(&stream_id),
                key_id: KeyId(Uuid::now_v7()),
                metadata: Metadata::default(),
                recorded_at: chrono::Utc::now(),
            },
            payload: vec![],
            prev_hash: [0; 32],
            hash: [0; 32],
        }
    }

    fn patient(e: &StoredEvent, o: &Opened) -> Result<Change<PatientEvent>, ApplyError> {
        change(e, o, StreamType::Patient, PatientEvent::decode)
    }

    fn record(e: &StoredEvent, o: &Opened) -> Result<Change<RecordEvent>, ApplyError> {
        change(e, o, StreamType::Record, RecordEvent::decode)
    }

    #[test]
    fn a_payload_handed_over_unopened_is_an_error_not_a_skipped_change() {
        let e = stored(StreamType::Patient, "PatientRegistered");
        let err = patient(&e, &Opened::Unread).err().expect("an error");
        assert!(!err.is_transient());
    }

    #[test]
    fn other_streams_and_unknown_types_change_nothing() {
        let e = stored(StreamType::User, "PatientRegistered");
        assert!(matches!(patient(&e, &Opened::Erased), Ok(Change::None)));
        let e = stored(StreamType::Patient, "RecordVoided");
        assert!(matches!(record(&e, &Opened::Erased), Ok(Change::None)));
        let opened = Opened::Payload(json!({}));
        let e = stored(StreamType::Patient, "SomethingNew");
        assert!(matches!(patient(&e, &opened), Ok(Change::None)));
        let e = stored(StreamType::Record, "RecordArchived");
        assert!(matches!(record(&e, &opened), Ok(Change::None)));
    }

    #[test]
    fn an_erased_payload_erases_the_rows() {
        let e = stored(StreamType::Patient, "PatientUpdated");
        assert!(matches!(patient(&e, &Opened::Erased), Ok(Change::Erase)));
        let e = stored(StreamType::Record, "RecordVoided");
        assert!(matches!(record(&e, &Opened::Erased), Ok(Change::Erase)));
    }

    #[test]
    fn an_undecodable_payload_names_its_type_only() {
        let e = stored(StreamType::Patient, "PatientUpdated");
        let opened = Opened::Payload(json!({"demographics": {"given_name": "Ada Secret"}}));
        let Err(err) = patient(&e, &opened) else {
            panic!("expected an error")
        };
        assert_eq!(err.message(), "undecodable PatientUpdated payload");
        assert!(!err.is_transient());
        let e = stored(StreamType::Record, "RecordVoided");
        let opened = Opened::Payload(json!({"reason": "wrong patient: Ada"}));
        let Err(err) = record(&e, &opened) else {
            panic!("expected an error")
        };
        assert_eq!(err.message(), "undecodable RecordVoided payload");
    }
}
