//! Appending access events ([`carelog_domain::audit`]): the one place that does it, for
//! the clinical service (reads of PHI and the policy's refusals) and for identity (a
//! genuine token refused: a 401 with a known user).
//!
//! Each event is the single event of a fresh `access-<uuid>` stream, appended through
//! the group-commit [`EventStore::append`] as a new stream (`Expected::Exact(EMPTY)`),
//! so concurrent requests never conflict and share transactions, and the committer
//! need not look the stream's head up (a new stream starts at the genesis hash).

use carelog_domain::audit::AccessEvent;
use carelog_domain::ids::AccessId;
use carelog_domain::{Metadata, StreamId, StreamVersion};
use carelog_store::{AppendError, AppendRequest, EventStore, Expected};

/// Appends `event` with `metadata` to a stream of its own; returns that stream.
pub(crate) async fn append(
    store: &EventStore,
    event: AccessEvent,
    metadata: Metadata,
) -> Result<StreamId, (StreamId, AppendError)> {
    let stream = AccessId::new_v7().stream();
    match store
        .append(AppendRequest {
            stream,
            expected: Expected::Exact(StreamVersion::EMPTY),
            events: vec![event.into_new_event(metadata)],
        })
        .await
    {
        Ok(_) => Ok(stream),
        Err(e) => Err((stream, e)),
    }
}
