//! The pure core of carelog.
//!
//! This crate owns the vocabulary every other crate speaks: the typed names of streams,
//! events, subjects and positions ([`ids`]), the shape of an event before and after it
//! is stored ([`event`]) and the PHI-free metadata that travels with every event
//! ([`metadata`]). Later it also holds the aggregates (decide / apply) and the access
//! policy.
//!
//! It must not touch I/O: no database, no network, no clock, no randomness beyond what
//! a caller hands in. Cargo.toml is the fence — it lists no I/O crate — so every rule
//! here is unit-testable in microseconds.

pub mod event;
pub mod ids;
pub mod metadata;
pub mod operations;
pub mod roles;
pub mod user;

pub use event::{EventHeader, NewEvent};
pub use ids::{
    EventId, EventType, IdError, KeyId, Position, SchemaVersion, SessionId, StreamId, StreamType,
    StreamVersion, SubjectId, UserId,
};
pub use metadata::Metadata;
pub use roles::Role;
