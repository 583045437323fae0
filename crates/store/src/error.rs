//! The store's errors. The API maps them to the envelope in one place; none of their
//! messages carries PHI, SQL or key material.

use carelog_domain::{StreamId, StreamVersion, SubjectId};

/// A failure of the store itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// PostgreSQL failed or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A stored row cannot be decoded: the database holds something this code never wrote.
    #[error("corrupt row at position {position}: {what}")]
    Corrupt {
        /// Where.
        position: i64,
        /// What could not be decoded.
        what: &'static str,
    },
    /// A payload failed authentication: it was altered or moved to another row.
    #[error("the payload at position {position} failed authentication (altered or moved)")]
    Tampered {
        /// Where.
        position: i64,
    },
    /// A key could not be unwrapped or the keyring does not match the database.
    #[error(transparent)]
    Key(#[from] carelog_crypto::KeyError),
    /// The database must not be served by this process (see the message).
    #[error("{0}")]
    Refused(String),
    /// The group committer is gone (the process is shutting down).
    #[error("the event store is shutting down")]
    ShuttingDown,
}

/// Why an append was not written. Nothing of the append is stored in any case.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Optimistic concurrency: the stream moved on since the caller read it (409).
    #[error("stream {stream} is at version {actual}, not the expected {expected}")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// What the caller expected.
        expected: StreamVersion,
        /// What the stream is at.
        actual: StreamVersion,
    },
    /// Some of the event ids already exist elsewhere: not a retry of this append (409).
    #[error("event ids of this append already exist in another stream or version")]
    DuplicateEventId,
    /// The subject's key was destroyed: nothing more may be written for it (410).
    #[error("subject was erased")]
    Erased(SubjectId),
    /// An append must carry at least one event and at most [`crate::append::MAX_EVENTS_PER_APPEND`].
    #[error("an append carries 1 to {max} events, not {got}")]
    BadSize {
        /// How many there were.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// An event is over [`crate::append::MAX_EVENT_BYTES`] (payload plus metadata,
    /// serialised): too large to relay as one NATS message (413).
    #[error("an event is {bytes} bytes, over the limit of {max}")]
    TooLarge {
        /// Its payload and metadata, serialised.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AppendError {
    fn from(e: sqlx::Error) -> Self {
        AppendError::Store(StoreError::Database(e))
    }
}
