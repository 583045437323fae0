//! The master key (KEK) and the keyring.
//!
//! The KEK never encrypts data: it wraps data keys (AES-256-GCM, random nonce, associated
//! data = the subject and key id, so a wrapped key cannot be swapped between subjects).
//! Each wrapped key records the id of the KEK that wrapped it, so rotation can re-wrap
//! keys one by one while old and new KEK are both in the keyring.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::dek::Dek;

const NONCE_LEN: usize = 12;

/// Why a key could not be loaded or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The master key text is not 64 hexadecimal characters.
    #[error(
        "the master key must be exactly 64 hexadecimal characters (32 bytes); got {0} characters"
    )]
    MasterKeyLength(usize),
    /// The master key text has a character that is not hexadecimal.
    #[error("the master key must be hexadecimal (0-9, a-f)")]
    MasterKeyNotHex,
    /// A wrapped key names a KEK the keyring does not hold.
    #[error("data key is wrapped by master key {0}, which is not in the keyring")]
    UnknownKek(KekId),
    /// A wrapped key failed authentication: wrong KEK, or the row was altered.
    #[error("a wrapped data key failed authentication")]
    Unwrap,
}

/// The public id of a master key: the first 8 bytes of SHA-256 over a label and the key,
/// in hex. Safe to store and log; reveals nothing about the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KekId(String);

impl KekId {
    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes an id read back from storage.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 32-byte master key. Zeroized on drop; its `Debug` shows only its id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    bytes: [u8; 32],
    #[zeroize(skip)]
    id: KekId,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// Parses exactly 64 hex characters (surrounding whitespace, e.g. a file's final
    /// newline, is ignored). Anything else is refused with a reason that quotes no key.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(KeyError::MasterKeyLength(text.chars().count()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| KeyError::MasterKeyNotHex)?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random master key.
    pub fn generate() -> Self {
        let key = Aes256Gcm::generate_key(OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&key);
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"carelog-kek-id-v1")
            .chain_update(bytes)
            .finalize();
        let id = KekId(hex::encode(&digest[..8]));
        Self { bytes, id }
    }

    /// The key as 64 hex characters — only for `carelog keys generate` to print.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// This key's public id.
    pub fn id(&self) -> &KekId {
        &self.id
    }

    /// Wraps a data key. `context` (subject and key id) is bound as associated data.
    pub fn wrap(&self, dek: &Dek, context: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.bytes));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: dek.expose(),
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Unwraps a data key wrapped by [`Self::wrap`] with the same context.
    pub fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<Dek, KeyError> {
        if wrapped.len() < NONCE_LEN {
            return Err(KeyError::Unwrap);
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.bytes));
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .map_err(|_| KeyError::Unwrap)?;
        Dek::from_slice(&plain).ok_or(KeyError::Unwrap)
    }
}

/// The master keys a process holds: the primary one (wraps new keys) and any previous
/// ones still needed to unwrap keys not yet re-wrapped by a rotation.
#[derive(Clone, Debug)]
pub struct Keyring {
    primary: MasterKey,
    all: HashMap<KekId, MasterKey>,
}

impl Keyring {
    /// A keyring whose primary key is `primary`, also able to unwrap with `previous`.
    pub fn new(primary: MasterKey, previous: impl IntoIterator<Item = MasterKey>) -> Self {
        let mut all: HashMap<KekId, MasterKey> =
            previous.into_iter().map(|k| (k.id().clone(), k)).collect();
        all.insert(primary.id().clone(), primary.clone());
        Self { primary, all }
    }

    /// The key that wraps new data keys.
    pub fn primary(&self) -> &MasterKey {
        &self.primary
    }

    /// Whether the keyring holds the key `kek_id` names.
    pub fn contains(&self, kek_id: &KekId) -> bool {
        self.all.contains_key(kek_id)
    }

    /// Unwraps with whichever key `kek_id` names.
    pub fn unwrap(&self, kek_id: &KekId, wrapped: &[u8], context: &[u8]) -> Result<Dek, KeyError> {
        self.all
            .get(kek_id)
            .ok_or_else(|| KeyError::UnknownKek(kek_id.clone()))?
            .unwrap(wrapped, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_keys_must_be_64_hex_characters() {
        assert_eq!(
            MasterKey::from_hex("abcd").unwrap_err(),
            KeyError::MasterKeyLength(4)
        );
        assert_eq!(
            MasterKey::from_hex(&"g".repeat(64)).unwrap_err(),
            KeyError::MasterKeyNotHex
        );
        assert_eq!(
            MasterKey::from_hex(&"a".repeat(65)).unwrap_err(),
            KeyError::MasterKeyLength(65)
        );
        let k = MasterKey::from_hex(&format!("{}\n", "0f".repeat(32))).unwrap();
        assert_eq!(k.to_hex(), "0f".repeat(32));
    }

    #[test]
    fn errors_and_debug_never_show_the_key() {
        let k = MasterKey::generate();
        assert!(!format!("{k:?}").contains(&k.to_hex()));
        let bad = format!("{}", MasterKey::from_hex(&"zz".repeat(32)).unwrap_err());
        assert!(!bad.contains("zz"));
    }

    #[test]
    fn a_wrapped_key_opens_only_with_its_kek_and_context() {
        let kek = MasterKey::generate();
        let other = MasterKey::generate();
        let dek = Dek::generate();
        let wrapped = kek.wrap(&dek, b"patient-1");
        assert_eq!(
            kek.unwrap(&wrapped, b"patient-1").unwrap().expose(),
            dek.expose()
        );
        assert_eq!(
            kek.unwrap(&wrapped, b"patient-2").unwrap_err(),
            KeyError::Unwrap
        );
        assert_eq!(
            other.unwrap(&wrapped, b"patient-1").unwrap_err(),
            KeyError::Unwrap
        );
    }

    #[test]
    fn the_keyring_unwraps_with_previous_keys_and_wraps_with_the_primary() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let dek = Dek::generate();
        let wrapped = old.wrap(&dek, b"s");
        let ring = Keyring::new(new.clone(), [old.clone()]);
        assert_eq!(ring.primary().id(), new.id());
        assert!(ring.unwrap(old.id(), &wrapped, b"s").is_ok());
        let only_new = Keyring::new(new, []);
        assert!(matches!(
            only_new.unwrap(old.id(), &wrapped, b"s"),
            Err(KeyError::UnknownKek(_))
        ));
    }
}
