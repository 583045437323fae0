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
    };
    let ty = event.header.event_type.as_str();
    match decode(ty, payload.clone()) {
        None => Ok(Change::None),
        Some(Ok(e)) => Ok(Change::Event(e)),
        Some(Err(_)) => Err(ApplyError::new(format!("undecodable {ty} payload"))),
    }
}
