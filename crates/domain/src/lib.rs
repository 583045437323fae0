//! The pure core of carelog.
//!
//! This crate owns the vocabulary every other crate speaks and every rule of the domain:
//! - the typed names of streams, events, subjects and positions ([`ids`]), the shape of
//!   an event before and after it is stored ([`event`]) and the PHI-free metadata that
//!   travels with every event ([`metadata`]);
//! - the aggregates, each as events (the vocabulary, one JSON Schema per type in
//!   `schemas/v1/`), input validation, and a state with `apply` (folds an event, holds no
//!   rule, cannot fail) and decisions (validate, check state, return events or the
//!   aggregate's error): [`user`], [`org`] (members and org roles), [`patient`]
//!   (demographics, emergency grants), [`record`] (clinical records, amended and voided,
//!   never deleted), [`consent`] (granted, requested, approved, declined, revoked;
//!   expiring by time), [`session_consent`] (recording and AI transcription of a
//!   session), [`dsr`] (GDPR erasure requests); history `as_of` is a `fold` of a
//!   stream's prefix;
//! - [`field`]: the 400-level validation error naming a field, never its value;
//! - [`access`]: the one access policy (roles, tenant isolation, the patient's own data,
//!   consent, emergency access) — the gateway check and the resource decision.
//!
//! It must not touch I/O: no database, no network, no clock, no randomness beyond what
//! a caller hands in (time and actor are arguments). Cargo.toml is the fence — it lists
//! no I/O crate — so every rule here is unit-testable in microseconds. Loading streams,
//! sealing, appending and answering HTTP belong to the adapters.

pub mod access;
pub mod audit;
pub mod audit_client;
pub mod consent;
pub mod dsr;
pub mod event;
pub mod export;
pub mod field;
pub mod ids;
pub mod metadata;
pub mod operations;
pub mod org;
pub mod patient;
pub mod record;
pub mod roles;
pub mod session_consent;
#[cfg(test)]
mod testing;
pub mod user;

pub use event::{EventHeader, NewEvent};
pub use field::FieldError;
pub use ids::{
    ConsentId, DsrId, EventId, EventType, GrantId, IdError, KeyId, OrgId, PatientId, Position,
    RecordId, SchemaVersion, SessionConsentId, SessionId, StreamId, StreamType, StreamVersion,
    SubjectId, UserId,
};
pub use metadata::Metadata;
pub use roles::Role;
