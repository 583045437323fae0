//! The per-stream hash chain: `hash = SHA-256(prev_hash ‖ header ‖ ciphertext)`.
//!
//! It covers the ciphertext, not the plaintext, so destroying a subject's key (erasure)
//! leaves every hash verifiable. The header is encoded field by field with length
//! prefixes; metadata as JSON with sorted keys (how `serde_json::Value` writes objects),
//! so the bytes can be rebuilt from what PostgreSQL returns.

use carelog_domain::EventHeader;
use sha2::{Digest, Sha256};

use crate::dek::put;

/// A SHA-256 chain hash.
pub type ChainHash = [u8; 32];

/// The `prev_hash` of a stream's first event.
pub const GENESIS: ChainHash = [0u8; 32];

/// The chain hash of one event.
pub fn chain_hash(prev: &ChainHash, header: &EventHeader, ciphertext: &[u8]) -> ChainHash {
    let mut h = Sha256::new();
    h.update(b"carelog-chain-v1");
    h.update(prev);
    h.update(encode_header(header));
    h.update((ciphertext.len() as u64).to_be_bytes());
    h.update(ciphertext);
    h.finalize().into()
}

fn encode_header(h: &EventHeader) -> Vec<u8> {
    // Through Value so object keys come out sorted, as they do after a jsonb round trip.
    let metadata = serde_json::to_value(&h.metadata).expect("metadata serialises");
    let mut out = Vec::with_capacity(256);
    put(&mut out, h.event_id.0.as_bytes());
    put(&mut out, h.stream_id.to_string().as_bytes());
    put(&mut out, &h.version.0.to_be_bytes());
    put(&mut out, h.event_type.as_str().as_bytes());
    put(&mut out, &h.schema_version.0.to_be_bytes());
    put(&mut out, h.subject.as_str().as_bytes());
    put(&mut out, h.key_id.0.as_bytes());
    put(&mut out, metadata.to_string().as_bytes());
    put(&mut out, &h.recorded_at.timestamp_micros().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use carelog_domain::{
        EventId, EventType, KeyId, Metadata, SchemaVersion, StreamId, StreamType, StreamVersion,
        SubjectId,
    };
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    fn header() -> EventHeader {
        let stream = StreamId::new(StreamType::Patient, Uuid::nil());
        EventHeader {
            event_id: EventId(Uuid::nil()),
            subject: SubjectId::of_stream(&stream),
            stream_id: stream,
            version: StreamVersion(1),
            event_type: EventType::try_from("PatientRegistered").unwrap(),
            schema_version: SchemaVersion(1),
            key_id: KeyId(Uuid::nil()),
            metadata: Metadata {
                request_id: Some("r1".into()),
                ..Metadata::default()
            },
            recorded_at: Utc.timestamp_micros(1_700_000_000_000_001).unwrap(),
        }
    }

    #[test]
    fn every_header_field_and_the_ciphertext_change_the_hash() {
        let base = chain_hash(&GENESIS, &header(), b"ct");
        assert_ne!(base, chain_hash(&[1; 32], &header(), b"ct"));
        assert_ne!(base, chain_hash(&GENESIS, &header(), b"cu"));
        let mut h = header();
        h.version = StreamVersion(2);
        assert_ne!(base, chain_hash(&GENESIS, &h, b"ct"));
        let mut h = header();
        h.metadata.request_id = Some("r2".into());
        assert_ne!(base, chain_hash(&GENESIS, &h, b"ct"));
        let mut h = header();
        h.recorded_at += chrono::Duration::microseconds(1);
        assert_ne!(base, chain_hash(&GENESIS, &h, b"ct"));
        assert_eq!(base, chain_hash(&GENESIS, &header(), b"ct"));
    }
}
