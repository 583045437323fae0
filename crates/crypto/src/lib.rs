//! carelog's cryptography, in one place.
//!
//! - [`kek`]: the master key (key-encryption key) that wraps every data key, and the
//!   keyring of current and previous master keys used while rotating.
//! - [`dek`]: per-subject data keys and the one function pair that seals and opens
//!   event payloads, with associated data binding a ciphertext to its event.
//! - [`chain`]: the per-stream SHA-256 hash chain over header and ciphertext.
//! - [`token_key`]: Ed25519 signing keys for PASETO v4.public, as PASERK.
//!
//! Key material is zeroized on drop and has no `Debug` that prints it. This crate does
//! no I/O: wrapped keys are persisted by `carelog-store`.

pub mod chain;
pub mod dek;
pub mod kek;
/// Argon2id password hashes and the password policy (length, common passwords, email).
pub mod password;
/// Opaque random secrets, their stored hashes, and keyed blind indexes.
pub mod random;
/// PASETO v4.public access and MFA tokens: signing, verification, key rotation.
pub mod token;
pub mod token_key;
/// RFC 6238 TOTP secrets and codes, and MFA recovery codes.
pub mod totp;

pub use chain::{chain_hash, ChainHash, GENESIS};
pub use dek::{event_aad, Dek, OpenError, Plaintext};
pub use kek::{KekId, KeyError, Keyring, MasterKey};
pub use password::{check_password_policy, PasswordHasher, PasswordRejection};
pub use token::{paserk_pid, paserk_public_of_secret, Claims, TokenError, TokenKeys, TokenPurpose};
pub use totp::{generate_recovery_codes, hash_recovery_code, TotpSecret};
