//! The wire format of a relayed event: a contract between the relay and every consumer
//! (projectors, other services). Changes must be additive; consumers ignore fields they
//! do not know.
//!
//! Subject: `<prefix>events.<stream type>.<event type>` ([`crate::subject`]); type names
//! only, no ids, no PHI.
//!
//! Headers:
//! - `Nats-Msg-Id`: the event id (JetStream drops a re-published event as a duplicate
//!   within the stream's duplicate window);
//! - `Carelog-Position`: the event's global position, decimal.
//!
//! Body: one JSON object (UTF-8):
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `position` | integer | global position in the log (strictly increasing along the stream) |
//! | `event_id` | string (uuid) | the event's id (= `Nats-Msg-Id`) |
//! | `stream_id` | string | `<stream type>-<uuid>` |
//! | `version` | integer | version within the stream (1 for the first event) |
//! | `event_type` | string | `PascalCase` type name |
//! | `schema_version` | integer | payload schema version (`schemas/v<N>/<Type>.json`) |
//! | `subject_id` | string | whose data key sealed the payload (`patient-<uuid>`, `user-<uuid>`, `system`) |
//! | `key_id` | string (uuid) | which data key sealed it |
//! | `metadata` | object | who/where/why, no PHI (as stored, `carelog_domain::Metadata`) |
//! | `recorded_at` | string | RFC 3339 UTC timestamp, microseconds |
//! | `prev_hash` | string | hex SHA-256 chain hash of the stream's previous event (zeros for the first) |
//! | `hash` | string | hex SHA-256 chain hash of this event |
//! | `payload` | string | standard base64 (with padding) of the SEALED payload, `nonce ‖ ciphertext ‖ tag` (AES-256-GCM under the subject's data key, associated data = event id ‖ stream ‖ version ‖ type) |
//!
//! The payload is never plaintext: a consumer opens it with the subject's data key
//! (carelog-store's `Vault`), so a destroyed key (erasure) makes copies in NATS
//! unreadable too. [`decode`] gives back exactly the stored event [`encode`] was given.

use std::borrow::Cow;

use async_nats::HeaderMap;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use carelog_crypto::ChainHash;
use carelog_domain::{
    EventHeader, EventId, EventType, KeyId, Metadata, Position, SchemaVersion, StreamId,
    StreamVersion, SubjectId,
};
use carelog_store::StoredEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The header carrying the event's global position.
pub const HEADER_POSITION: &str = "Carelog-Position";

/// The largest message body [`encode`] produces for an event the store accepts
/// (`carelog_store::MAX_EVENT_BYTES` of payload and metadata, sealed, payload in
/// base64): a NATS server whose `max_payload` is below this cannot carry every event,
/// and the relay says so when it becomes active. NATS's default is 1 MiB.
pub const MAX_MESSAGE_BYTES: usize = 900 * 1000;
const _: () = assert!(
    MAX_MESSAGE_BYTES < 1024 * 1024,
    "under NATS's default max_payload"
);

/// A body that is not a relayed event.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not the JSON described in this module.
    #[error("not a carelog event message: {0}")]
    Json(#[from] serde_json::Error),
    /// A field has the right type but an impossible value.
    #[error("malformed `{0}` in a carelog event message")]
    Field(&'static str),
}

/// The body as it travels. Encoding borrows the event's fields; decoding borrows the
/// long strings (payload and hashes) from the body, so neither copies them twice.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    position: Position,
    event_id: EventId,
    stream_id: StreamId,
    version: StreamVersion,
    event_type: Cow<'a, EventType>,
    schema_version: SchemaVersion,
    subject_id: Cow<'a, SubjectId>,
    key_id: KeyId,
    metadata: Cow<'a, Metadata>,
    recorded_at: DateTime<Utc>,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

/// Room for everything of a body but its payload: ids, types, metadata, time and the
/// two hashes are a few hundred bytes, so the body is written without growing.
const BODY_BESIDES_PAYLOAD: usize = 1024;

/// The headers and body of `event`'s message (see the module documentation).
pub fn encode(event: &StoredEvent) -> (HeaderMap, Vec<u8>) {
    let h = &event.header;
    let payload = BASE64.encode(&event.payload);
    let mut body = Vec::with_capacity(payload.len() + BODY_BESIDES_PAYLOAD);
    let wire = Wire {
        position: event.position,
        event_id: h.event_id,
        stream_id: h.stream_id,
        version: h.version,
        event_type: Cow::Borrowed(&h.event_type),
        schema_version: h.schema_version,
        subject_id: Cow::Borrowed(&h.subject),
        key_id: h.key_id,
        metadata: Cow::Borrowed(&h.metadata),
        recorded_at: h.recorded_at,
        prev_hash: Cow::Owned(hex::encode(event.prev_hash)),
        hash: Cow::Owned(hex::encode(event.hash)),
        payload: Cow::Owned(payload),
    };
    serde_json::to_writer(&mut body, &wire).expect("an event message always serialises");
    let mut headers = HeaderMap::new();
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        h.event_id.0.hyphenated().to_string().as_str(),
    );
    headers.insert(HEADER_POSITION, event.position.0.to_string().as_str());
    (headers, body)
}

/// The stored event in a message body.
pub fn decode(body: &[u8]) -> Result<StoredEvent, MessageError> {
    let w: Wire = serde_json::from_slice(body)?;
    let hash = |s: &str, what| -> Result<ChainHash, MessageError> {
        let mut hash = ChainHash::default();
        hex::decode_to_slice(s, &mut hash).map_err(|_| MessageError::Field(what))?;
        Ok(hash)
    };
    Ok(StoredEvent {
        position: w.position,
        header: EventHeader {
            event_id: w.event_id,
            stream_id: w.stream_id,
            version: w.version,
            event_type: w.event_type.into_owned(),
            schema_version: w.schema_version,
            subject: w.subject_id.into_owned(),
            key_id: w.key_id,
            metadata: w.metadata.into_owned(),
            recorded_at: w.recorded_at,
        },
        prev_hash: hash(&w.prev_hash, "prev_hash")?,
        hash: hash(&w.hash, "hash")?,
        payload: BASE64
            .decode(w.payload.as_bytes())
            .map_err(|_| MessageError::Field("payload"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use carelog_domain::StreamType;
    use uuid::Uuid;

    fn sample() -> StoredEvent {
        let stream = StreamId::new(StreamType::Patient, Uuid::now_v7());
        StoredEvent {
            position: Position(42),
            header: EventHeader {
                event_id: EventId(Uuid::now_v7()),
                stream_id: stream,
                version: StreamVersion(3),
                event_type: EventType::try_from("PatientRegistered").unwrap(),
                schema_version: SchemaVersion(1),
                subject: SubjectId::of_stream(&stream),
                key_id: KeyId(Uuid::now_v7()),
                metadata: Metadata {
                    request_id: Some("req-1".into()),
                    ..Metadata::default()
                },
                recorded_at: "2025-01-02T03:04:05.123456Z".parse().unwrap(),
            },
            payload: vec![0, 1, 2, 250, 255],
            prev_hash: [7; 32],
            hash: [9; 32],
        }
    }

    #[test]
    fn the_largest_event_the_store_accepts_fits_the_message_bound() {
        // All of the budget in the payload is the worst case: only the payload grows by
        // a third (base64), and sealing adds a 12-byte nonce and a 16-byte tag.
        let mut e = sample();
        e.payload = vec![0xAB; carelog_store::MAX_EVENT_BYTES + 12 + 16];
        let (_, body) = encode(&e);
        assert!(body.len() <= MAX_MESSAGE_BYTES, "{} bytes", body.len());
    }

    #[test]
    fn a_message_round_trips_and_names_its_event() {
        let ev = sample();
        let (headers, body) = encode(&ev);
        let back = decode(&body).unwrap();
        assert_eq!(back.position, ev.position);
        assert_eq!(back.header, ev.header);
        assert_eq!(back.payload, ev.payload);
        assert_eq!((back.prev_hash, back.hash), (ev.prev_hash, ev.hash));
        assert_eq!(
            headers.get("Nats-Msg-Id").unwrap().as_str(),
            ev.header.event_id.0.to_string()
        );
        assert_eq!(headers.get(HEADER_POSITION).unwrap().as_str(), "42");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["payload"], "AAEC+v8=");
        assert_eq!(json["hash"], "09".repeat(32));
        assert_eq!(json["stream_id"], ev.header.stream_id.to_string());
    }

    #[test]
    fn escaped_strings_decode_as_well_as_borrowed_ones() {
        // serde_json writes `/` as is; another producer may escape it. Base64 of 0xFF
        // bytes is all slashes.
        let mut ev = sample();
        ev.payload = vec![0xFF; 3];
        let (_, body) = encode(&ev);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(r#""payload":"////""#), "{text}");
        let escaped = text.replace(r#""payload":"////""#, r#""payload":"\/\/\/\/""#);
        assert_ne!(escaped, text);
        assert_eq!(decode(escaped.as_bytes()).unwrap().payload, vec![0xFF; 3]);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode(b"{}").is_err());
        let (_, body) = encode(&sample());
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        json["hash"] = "zz".into();
        let bad = serde_json::to_vec(&json).unwrap();
        assert!(matches!(decode(&bad), Err(MessageError::Field("hash"))));
    }
}
