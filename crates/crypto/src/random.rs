//! Opaque secrets (refresh tokens), their stored hashes, and keyed blind indexes.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A fresh opaque secret: 32 random bytes as 64 hex characters (e.g. a refresh token).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256, for storing high-entropy secrets (refresh tokens, recovery codes) hashed.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A keyed, deterministic index of a value (HMAC-SHA256): lets the database find an
/// account by email without ever holding the email.
pub fn blind_index(key: &[u8; 32], value: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn blind_indexes_depend_on_key_and_value() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        assert_eq!(blind_index(&k1, "a@b.org"), blind_index(&k1, "a@b.org"));
        assert_ne!(blind_index(&k1, "a@b.org"), blind_index(&k2, "a@b.org"));
        assert_ne!(blind_index(&k1, "a@b.org"), blind_index(&k1, "c@b.org"));
    }
}
