//! Subject data keys and the one place payloads are sealed and opened.
//!
//! A sealed payload is `nonce (12 bytes, random) ‖ ciphertext ‖ tag (16 bytes)` under
//! AES-256-GCM with the subject's key. The associated data is [`event_aad`]: event id,
//! stream, version and type, so a ciphertext copied onto another row fails to open.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use carelog_domain::{EventId, EventType, StreamId, StreamVersion};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Opened plaintext; wiped from memory when dropped.
pub type Plaintext = Zeroizing<Vec<u8>>;

/// Why a sealed payload did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short to be a sealed payload.
    #[error("sealed payload is truncated")]
    Truncated,
    /// Authentication failed: the ciphertext, its associated data or the key is wrong.
    #[error("sealed payload failed authentication (altered, moved, or wrong key)")]
    Tampered,
}

/// A 32-byte AES-256 data key of one subject. Zeroized on drop; no `Debug` of its bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Dek([u8; 32]);

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(..)")
    }
}

impl Dek {
    /// A fresh random key.
    pub fn generate() -> Self {
        let key = Aes256Gcm::generate_key(OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&key);
        Self(bytes)
    }

    /// From exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(arr))
    }

    /// A key for another purpose derived from this one: HMAC-SHA256(key, label). Used for
    /// the email blind index (derived from the system key, so it survives master-key
    /// rotation).
    pub fn subkey(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(label);
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The raw bytes, for wrapping only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }

    /// Seals `plaintext` with a fresh random nonce, binding `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption only fails past 64 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`Self::seal`] produced with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Plaintext, OpenError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Truncated);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Tampered)
    }
}

/// The associated data of an event payload: `event id ‖ stream ‖ version ‖ type`, each
/// length-prefixed so no two different tuples encode alike.
pub fn event_aad(
    event_id: &EventId,
    stream: &StreamId,
    version: StreamVersion,
    event_type: &EventType,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    put(&mut out, b"carelog-event-aad-v1");
    put(&mut out, event_id.0.as_bytes());
    put(&mut out, stream.to_string().as_bytes());
    put(&mut out, &version.0.to_be_bytes());
    put(&mut out, event_type.as_str().as_bytes());
    out
}

/// Appends `bytes` with a 4-byte big-endian length prefix.
pub(crate) fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("field shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use carelog_domain::StreamType;
    use uuid::Uuid;

    fn aad(version: i64) -> Vec<u8> {
        let stream = StreamId::new(StreamType::Patient, Uuid::nil());
        let ty = EventType::try_from("PatientRegistered").unwrap();
        event_aad(&EventId(Uuid::nil()), &stream, StreamVersion(version), &ty)
    }

    #[test]
    fn sealed_payloads_open_with_the_same_key_and_aad() {
        let dek = Dek::generate();
        let sealed = dek.seal(&aad(1), b"hello");
        assert_eq!(&dek.open(&aad(1), &sealed).unwrap()[..], b"hello");
    }

    #[test]
    fn a_payload_moved_to_another_version_does_not_open() {
        let dek = Dek::generate();
        let sealed = dek.seal(&aad(1), b"hello");
        assert_eq!(dek.open(&aad(2), &sealed).unwrap_err(), OpenError::Tampered);
    }

    #[test]
    fn a_flipped_byte_or_another_key_does_not_open() {
        let dek = Dek::generate();
        let mut sealed = dek.seal(&aad(1), b"hello");
        assert_eq!(
            Dek::generate().open(&aad(1), &sealed).unwrap_err(),
            OpenError::Tampered
        );
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(dek.open(&aad(1), &sealed).unwrap_err(), OpenError::Tampered);
        assert_eq!(
            dek.open(&aad(1), &sealed[..10]).unwrap_err(),
            OpenError::Truncated
        );
    }

    #[test]
    fn nonces_are_fresh_for_every_seal() {
        let dek = Dek::generate();
        assert_ne!(dek.seal(&aad(1), b"same"), dek.seal(&aad(1), b"same"));
    }
}
