//! Typed names. A bare `Uuid` or `i64` never crosses a crate boundary: a stream
//! version cannot be passed where a global position is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a textual id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A stream id is `<type>-<uuid>`; this one is not.
    #[error("a stream id must look like `<type>-<uuid>` with a known type")]
    MalformedStreamId,
    /// Event types are `PascalCase` ASCII names.
    #[error("an event type must be 1 to 64 ASCII letters or digits, starting with a capital")]
    MalformedEventType,
    /// Subject ids are `<kind>-<uuid>` or the fixed `system` subject.
    #[error("a subject id must look like `<kind>-<uuid>` or be `system`")]
    MalformedSubjectId,
}

/// The kind of aggregate a stream belongs to; the prefix of its [`StreamId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamType {
    /// A patient's demographics and links.
    Patient,
    /// One clinical record with all its versions.
    Record,
    /// A user account: identity, credentials, sessions.
    User,
    /// An organisation and its memberships.
    Org,
    /// One consent and its lifecycle.
    Consent,
    /// Data-subject requests (GDPR).
    Dsr,
    /// Operator actions on the platform itself (key rotation, DLQ handling, ...).
    System,
    /// One login session: started, refreshed, revoked.
    Session,
    /// One emergency ("break-glass") access grant to a patient.
    Emergency,
    /// One session consent of a patient (to record a clinical session, to AI
    /// transcription).
    SessionConsent,
    /// One access event (a read of PHI, or a denied attempt): each is the single event
    /// of its own stream, so concurrent readers never conflict on a version.
    Access,
}

impl StreamType {
    /// Every stream type, in a stable order.
    pub const ALL: [StreamType; 11] = [
        StreamType::Patient,
        StreamType::Record,
        StreamType::User,
        StreamType::Org,
        StreamType::Consent,
        StreamType::Dsr,
        StreamType::System,
        StreamType::Session,
        StreamType::Emergency,
        StreamType::SessionConsent,
        StreamType::Access,
    ];

    /// The prefix used in stream ids, subjects and NATS subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Patient => "patient",
            StreamType::Record => "record",
            StreamType::User => "user",
            StreamType::Org => "org",
            StreamType::Consent => "consent",
            StreamType::Dsr => "dsr",
            StreamType::System => "system",
            StreamType::Session => "session",
            StreamType::Emergency => "emergency",
            // A NATS subject token: `[a-z0-9_]`, no `-` (the stream id separator).
            StreamType::SessionConsent => "session_consent",
            StreamType::Access => "access",
        }
    }
}

impl fmt::Display for StreamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StreamType {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StreamType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(IdError::MalformedStreamId)
    }
}

/// `<type>-<uuid>`, e.g. `patient-0190f3a4-…`. The uuid carries no meaning and no PHI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    kind: StreamType,
    id: Uuid,
}

impl StreamId {
    /// The stream of aggregate `id` of type `kind`.
    pub fn new(kind: StreamType, id: Uuid) -> Self {
        Self { kind, id }
    }

    /// The aggregate type.
    pub fn stream_type(&self) -> StreamType {
        self.kind
    }

    /// The aggregate's uuid.
    pub fn uuid(&self) -> Uuid {
        self.id
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind, self.id.hyphenated())
    }
}

impl FromStr for StreamId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rest) = s.split_once('-').ok_or(IdError::MalformedStreamId)?;
        let kind = kind.parse()?;
        let id = Uuid::parse_str(rest).map_err(|_| IdError::MalformedStreamId)?;
        // Only the canonical hyphenated lowercase form, so one stream has one name.
        if id.hyphenated().to_string() != rest {
            return Err(IdError::MalformedStreamId);
        }
        Ok(Self { kind, id })
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The whose-key-is-it of an event: payloads are sealed under the subject's data key.
/// For PHI the subject is the patient (`patient-<uuid>`), for identity events the user
/// (`user-<uuid>`); platform events that carry no personal data use [`SubjectId::system`].
/// Destroying the subject's key is erasure.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectId(String);

impl SubjectId {
    /// The subject of a stream's own aggregate (a patient is the subject of its stream).
    pub fn of_stream(stream: &StreamId) -> Self {
        Self(stream.to_string())
    }

    /// The subject of platform events that carry no personal data.
    pub fn system() -> Self {
        Self("system".to_owned())
    }

    /// The textual form, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SubjectId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s == "system" || s.parse::<StreamId>().is_ok() {
            Ok(Self(s))
        } else {
            Err(IdError::MalformedSubjectId)
        }
    }
}

impl From<SubjectId> for String {
    fn from(s: SubjectId) -> Self {
        s.0
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_newtype!(
    /// The unique id of one event. Appending an event whose id is already stored is a
    /// no-op (a retried command), never a duplicate.
    EventId
);
uuid_newtype!(
    /// The id of one subject data key (DEK). A subject has exactly one.
    KeyId
);
uuid_newtype!(
    /// A user account.
    UserId
);
uuid_newtype!(
    /// One login session (a refresh-token family and its access tokens).
    SessionId
);

uuid_newtype!(
    /// An organisation (hospital, clinic, practice).
    OrgId
);
uuid_newtype!(
    /// A patient.
    PatientId
);
uuid_newtype!(
    /// One clinical record (all its versions share the id).
    RecordId
);
uuid_newtype!(
    /// One emergency access grant.
    GrantId
);
uuid_newtype!(
    /// One consent of a patient (granted by them, or requested by a doctor).
    ConsentId
);
uuid_newtype!(
    /// One session consent of a patient (recording, AI transcription).
    SessionConsentId
);
uuid_newtype!(
    /// One data-subject request (GDPR erasure).
    DsrId
);
uuid_newtype!(
    /// One access event (its own stream, `access-<uuid>`).
    AccessId
);

impl OrgId {
    /// The organisation's stream, `org-<uuid>`.
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Org, self.0)
    }

    /// Organisation events carry no PHI but are sealed like every payload, under the
    /// organisation's own key.
    pub fn subject(self) -> SubjectId {
        SubjectId::of_stream(&self.stream())
    }
}

impl PatientId {
    /// The patient's stream, `patient-<uuid>`.
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Patient, self.0)
    }

    /// The patient's subject: every event holding their PHI (demographics, records,
    /// emergency grants) is sealed under this key; destroying it is the erasure.
    pub fn subject(self) -> SubjectId {
        SubjectId::of_stream(&self.stream())
    }
}

impl RecordId {
    /// The record's stream, `record-<uuid>` (sealed under its patient's subject).
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Record, self.0)
    }
}

impl GrantId {
    /// The grant's stream, `emergency-<uuid>` (sealed under its patient's subject).
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Emergency, self.0)
    }
}

impl ConsentId {
    /// The consent's stream, `consent-<uuid>` (sealed under its patient's subject).
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Consent, self.0)
    }
}

impl SessionConsentId {
    /// The session consent's stream, `session_consent-<uuid>` (sealed under its
    /// patient's subject).
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::SessionConsent, self.0)
    }
}

impl DsrId {
    /// The data-subject request's stream, `dsr-<uuid>`.
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Dsr, self.0)
    }
}

impl AccessId {
    /// The access event's stream, `access-<uuid>` (sealed under the `system` subject: it
    /// carries no PHI).
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Access, self.0)
    }
}

impl UserId {
    /// The user's stream, `user-<uuid>`.
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::User, self.0)
    }

    /// The user's subject: identity events are sealed under the user's own key.
    pub fn subject(self) -> SubjectId {
        SubjectId::of_stream(&self.stream())
    }
}

impl SessionId {
    /// The session's stream, `session-<uuid>`.
    pub fn stream(self) -> StreamId {
        StreamId::new(StreamType::Session, self.0)
    }
}

/// A stream's version: the number of events in it. An empty stream is at version 0;
/// its first event has version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamVersion(pub i64);

impl StreamVersion {
    /// The version of a stream that has no events.
    pub const EMPTY: StreamVersion = StreamVersion(0);

    /// The version after one more event.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The global position of an event in the whole log (strictly increasing in commit
/// order; gaps are possible where a transaction rolled back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(pub i64);

impl Position {
    /// Before the first event.
    pub const START: Position = Position(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of an event type, `PascalCase` (e.g. `PatientRegistered`). Carries no PHI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventType(String);

impl EventType {
    /// The name, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventType {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(Self(s))
        } else {
            Err(IdError::MalformedEventType)
        }
    }
}

impl TryFrom<&str> for EventType {
    type Error = IdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::try_from(s.to_owned())
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> Self {
        t.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The version of an event type's payload schema (`schemas/v<N>/<Type>.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SchemaVersion(pub i16);

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_round_trips_through_its_text() {
        let id = StreamId::new(StreamType::Patient, Uuid::now_v7());
        let text = id.to_string();
        assert!(text.starts_with("patient-"));
        assert_eq!(text.parse::<StreamId>().unwrap(), id);
    }

    #[test]
    fn malformed_stream_ids_are_refused() {
        for bad in [
            "",
            "patient",
            "patient-",
            "nurse-0190f3a4-7f1b-7c3e-9a6b-2b1c3d4e5f60",
            "patient-0190F3A4-7F1B-7C3E-9A6B-2B1C3D4E5F60",
            "patient-0190f3a47f1b7c3e9a6b2b1c3d4e5f60",
            "patient-0190f3a4-7f1b-7c3e-9a6b-2b1c3d4e5f60x",
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn every_stream_type_is_a_nats_token_and_round_trips() {
        for t in StreamType::ALL {
            let name = t.as_str();
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert_eq!(name.parse::<StreamType>().unwrap(), t);
            let id = StreamId::new(t, Uuid::now_v7());
            assert_eq!(id.to_string().parse::<StreamId>().unwrap(), id);
        }
        let id = SessionConsentId::new_v7();
        assert!(id.stream().to_string().starts_with("session_consent-"));
        assert!(ConsentId::new_v7()
            .stream()
            .to_string()
            .starts_with("consent-"));
        assert!(DsrId::new_v7().stream().to_string().starts_with("dsr-"));
        assert!(AccessId::new_v7()
            .stream()
            .to_string()
            .starts_with("access-"));
    }

    #[test]
    fn event_types_are_pascal_case_ascii() {
        assert!(EventType::try_from("PatientRegistered").is_ok());
        assert!(EventType::try_from("patientRegistered").is_err());
        assert!(EventType::try_from("Patient.Registered").is_err());
        assert!(EventType::try_from("").is_err());
    }

    #[test]
    fn subjects_are_stream_ids_or_system() {
        assert!(SubjectId::try_from("system".to_owned()).is_ok());
        assert!(SubjectId::try_from("someone".to_owned()).is_err());
        let s = StreamId::new(StreamType::User, Uuid::now_v7());
        assert_eq!(SubjectId::of_stream(&s).as_str(), s.to_string());
    }
}
