//! Loading an aggregate: read its stream, open each payload with the subject's key,
//! decode it into the aggregate's event type. The one place commands fold streams.

use carelog_domain::{EventType, Position, StreamId, StreamVersion};
use carelog_store::{EventStore, Opened, StoreError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// The clear facts of a loaded event (no PHI), for history answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    /// Its version in the stream.
    pub version: StreamVersion,
    /// Its place in the log.
    pub position: Position,
    /// What happened.
    pub event_type: EventType,
    /// When it was stored.
    pub recorded_at: DateTime<Utc>,
    /// Who did it.
    pub actor_id: Option<Uuid>,
}

/// Why a stream could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The subject was erased: its payloads are unreadable for good.
    #[error("the subject was erased")]
    Erased,
    /// A payload does not decode as the aggregate's events (names the type only).
    #[error("undecodable {0} event")]
    Undecodable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every event of `stream` decoded with `decode`, in order. Events of other types (an
/// event a later version added) are skipped but counted in the versions.
pub async fn load_stream<E>(
    store: &EventStore,
    stream: &StreamId,
    decode: impl Fn(&str, Value) -> Option<Result<E, serde_json::Error>>,
) -> Result<Vec<(EventFacts, E)>, LoadError> {
    let mut out = Vec::new();
    let mut after = StreamVersion::EMPTY;
    loop {
        let page = store.read_stream(stream, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.header.version;
        for stored in &page {
            let ty = stored.header.event_type.as_str();
            let payload = match store.open(stored).await? {
                Opened::Payload(p) => p,
                Opened::Erased => return Err(LoadError::Erased),
                Opened::Unread => return Err(not_opened(stored).into()),
            };
            let facts = EventFacts {
                version: stored.header.version,
                position: stored.position,
                event_type: stored.header.event_type.clone(),
                recorded_at: stored.header.recorded_at,
                actor_id: stored.header.metadata.actor_id,
            };
            match decode(ty, payload) {
                Some(Ok(event)) => out.push((facts, event)),
                Some(Err(_)) => return Err(LoadError::Undecodable(ty.to_owned())),
                None => {}
            }
        }
    }
    Ok(out)
}

/// What an [`Opened::Unread`] from [`EventStore::open`] would mean (it never answers it:
/// only a projection's payload filter does): the store misbehaved. An error, never a panic.
pub(crate) fn not_opened(stored: &carelog_store::StoredEvent) -> StoreError {
    StoreError::Corrupt {
        position: stored.position.0,
        what: "a payload the store did not open",
    }
}
