//! Signed checkpoints of the event log (docs/audit-checkpoints.md).
//!
//! The hash chain alone does not stop someone who can write to the database: rewrite an
//! event, recompute its hash and the hashes after it in its stream, and every chain still
//! verifies. A checkpoint pins the whole log as of a position with a signature only the
//! server can make, so such a rewrite is caught by anyone holding the public key.
//!
//! **Digest.** `digest(P)` is SHA-256 over one line per stream that has an event at a
//! position `<= P`, in byte order of the stream id (`COLLATE "C"`):
//!
//! ```text
//! <stream_id> SP <version> SP <hex(hash)> LF
//! ```
//!
//! where `version` (decimal) and `hash` (64 lowercase hex digits) are those of the
//! stream's last event at a position `<= P` (its head as of `P`). An empty log digests the
//! empty string. Each head's hash covers its whole stream up to it, so the digest covers
//! every event at or below `P`.
//!
//! **Signature.** Ed25519 (RFC 8032, pure) over the ASCII message
//! `carelog-checkpoint-v1 <P> <hex(digest)>` (no trailing newline), see [`message`].
//!
//! **Key.** The signing key is derived from the system data key:
//! `seed = HMAC-SHA256(system DEK, "carelog-audit-checkpoint-signing-v1")` (the system
//! DEK lives wrapped by the master key, so only a process holding `CARELOG_MASTER_KEY`
//! can sign; it survives master-key rotation, like the email blind index key). It is a key
//! of its own rather than the token key: a signature for one purpose can never be replayed
//! as the other, and rotating the token key leaves old checkpoints verifiable. Its public
//! half is published as PASERK `k4.public.…` (`GET /api/audit/checkpoints/key`, `carelog
//! checkpoint --public-key`); `key_id` is that key's PASERK id `k4.pid.…`.
//!
//! Checkpoints are taken at the *horizon*: the last position below which no transaction
//! still in flight can add an event, so a checkpoint never misses a late committer.

use carelog_crypto::Dek;
use carelog_domain::SubjectId;
use chrono::{DateTime, Utc};
use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use ed25519_compact::{KeyPair, PublicKey, Seed, Signature};
use futures::TryStreamExt;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::StoreError;
use crate::keys::{KeyStore, SubjectKey};

/// The label the signing seed is derived from the system data key with.
pub const SIGNING_KEY_LABEL: &[u8] = b"carelog-audit-checkpoint-signing-v1";

/// The prefix of every signed message.
pub const MESSAGE_PREFIX: &str = "carelog-checkpoint-v1";

/// The default distance, in log positions, between automatic checkpoints.
pub const DEFAULT_EVERY: i64 = 10_000;

/// The bytes an Ed25519 signature of a checkpoint covers:
/// `carelog-checkpoint-v1 <position> <hex(digest)>`.
pub fn message(position: i64, digest: &[u8; 32]) -> String {
    format!("{MESSAGE_PREFIX} {position} {}", hex::encode(digest))
}

/// The server's checkpoint signing key. No `Debug` of its bytes.
pub struct CheckpointKey {
    pair: KeyPair,
    verifier: CheckpointVerifier,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("key_id", &self.verifier.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// The key derived from the system data key (see the module docs).
    pub fn from_system_key(system_key: &Dek) -> Self {
        let seed = system_key.subkey(SIGNING_KEY_LABEL);
        let pair = KeyPair::from_seed(Seed::new(*seed));
        let verifier = CheckpointVerifier::new(pair.pk);
        Self { pair, verifier }
    }

    /// Loads the system data key from `keys` and derives the signing key from it.
    pub async fn load(keys: &KeyStore) -> Result<Self, StoreError> {
        match keys.for_write(&SubjectId::system()).await? {
            SubjectKey::Live(_, dek) => Ok(Self::from_system_key(&dek)),
            SubjectKey::Destroyed(_) => Err(StoreError::Refused(
                "the system data key was destroyed: no checkpoint key".into(),
            )),
        }
    }

    /// The public half.
    pub fn verifier(&self) -> &CheckpointVerifier {
        &self.verifier
    }

    /// Signs the checkpoint of `digest` at `position`.
    pub fn sign(&self, position: i64, digest: &[u8; 32]) -> [u8; 64] {
        *self.pair.sk.sign(message(position, digest), None)
    }
}

/// A checkpoint public key: verifies signatures, needs no secret.
#[derive(Clone)]
pub struct CheckpointVerifier {
    key: PublicKey,
    public_paserk: String,
    key_id: String,
}

impl std::fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointVerifier")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl CheckpointVerifier {
    fn new(key: PublicKey) -> Self {
        let mut buf = [0u8; 64];
        let b64 = Base64UrlSafeNoPadding::encode(&mut buf, *key)
            .expect("32 bytes fit in 64 base64 characters");
        let public_paserk = format!(
            "k4.public.{}",
            std::str::from_utf8(b64).expect("base64 is ASCII")
        );
        let key_id = carelog_crypto::paserk_pid(&public_paserk)
            .expect("a freshly formatted k4.public PASERK is valid");
        Self {
            key,
            public_paserk,
            key_id,
        }
    }

    /// From a PASERK `k4.public.…` (e.g. `carelog verify --public-key`).
    pub fn from_paserk(text: &str) -> Result<Self, String> {
        let body = text
            .trim()
            .strip_prefix("k4.public.")
            .ok_or("not a PASERK k4.public key")?;
        let mut buf = [0u8; 48];
        let raw = Base64UrlSafeNoPadding::decode(&mut buf, body, None)
            .map_err(|_| "the k4.public key is not valid base64url")?;
        let key = PublicKey::from_slice(raw).map_err(|_| "the k4.public key is not 32 bytes")?;
        Ok(Self::new(key))
    }

    /// The public key as PASERK `k4.public.…`.
    pub fn public_paserk(&self) -> &str {
        &self.public_paserk
    }

    /// Its PASERK id `k4.pid.…` (the `key_id` of the checkpoints it verifies).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `signature` signs the checkpoint of `digest` at `position`.
    pub fn verify(&self, position: i64, digest: &[u8], signature: &[u8]) -> bool {
        let (Ok(digest), Ok(signature)) = (
            <[u8; 32]>::try_from(digest),
            Signature::from_slice(signature),
        ) else {
            return false;
        };
        self.key
            .verify(message(position, &digest), &signature)
            .is_ok()
    }
}

fn hex_bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Checkpoint {
    /// Its id (in creation order).
    pub id: i64,
    /// The last log position it covers.
    pub position: i64,
    /// The digest of the stream heads as of `position` (hex in JSON).
    #[serde(serialize_with = "hex_bytes")]
    pub digest: Vec<u8>,
    /// Ed25519 signature of [`message`] (hex in JSON).
    #[serde(serialize_with = "hex_bytes")]
    pub signature: Vec<u8>,
    /// PASERK id of the signing key's public half.
    pub key_id: String,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
}

/// The digest of the stream heads as of `up_to` (see the module docs), and how many
/// streams it covers.
pub async fn digest(pool: &PgPool, up_to: i64) -> Result<([u8; 32], u64), StoreError> {
    let mut rows =
        sqlx::query_as::<_, (String, i64, Vec<u8>)>(include_str!("../sql/checkpoint_heads.sql"))
            .bind(up_to)
            .fetch(pool);
    let mut h = Sha256::new();
    let mut streams = 0u64;
    let mut line = String::with_capacity(160);
    while let Some((stream_id, version, hash)) = rows.try_next().await? {
        line.clear();
        line.push_str(&stream_id);
        line.push(' ');
        line.push_str(&version.to_string());
        line.push(' ');
        line.push_str(&hex::encode(&hash));
        line.push('\n');
        h.update(line.as_bytes());
        streams += 1;
    }
    Ok((h.finalize().into(), streams))
}

/// The last position below which no transaction in flight can still add an event.
pub async fn horizon(pool: &PgPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar::<_, i64>(include_str!("../sql/checkpoint_horizon.sql"))
            .fetch_one(pool)
            .await?,
    )
}

/// The position of the latest checkpoint, if any.
pub async fn latest_position(pool: &PgPool) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar::<_, Option<i64>>(include_str!("../sql/checkpoint_latest_position.sql"))
            .fetch_one(pool)
            .await?,
    )
}

/// Every checkpoint, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Checkpoint>, StoreError> {
    Ok(
        sqlx::query_as::<_, Checkpoint>(include_str!("../sql/checkpoint_list.sql"))
            .fetch_all(pool)
            .await?,
    )
}

/// Takes a checkpoint at the horizon, signed with `key`, and returns it (the existing one
/// when there is already a checkpoint at that position).
pub async fn create(pool: &PgPool, key: &CheckpointKey) -> Result<Checkpoint, StoreError> {
    let position = horizon(pool).await?;
    create_at(pool, key, position).await
}

/// Takes a checkpoint at `position`, which must be at or below the horizon (the digest of
/// a position above it could still change).
pub async fn create_at(
    pool: &PgPool,
    key: &CheckpointKey,
    position: i64,
) -> Result<Checkpoint, StoreError> {
    let (digest, _) = digest(pool, position).await?;
    let signature = key.sign(position, &digest);
    sqlx::query(include_str!("../sql/checkpoint_insert.sql"))
        .bind(position)
        .bind(&digest[..])
        .bind(&signature[..])
        .bind(key.verifier().key_id())
        .execute(pool)
        .await?;
    Ok(
        sqlx::query_as::<_, Checkpoint>(include_str!("../sql/checkpoint_get.sql"))
            .bind(position)
            .fetch_one(pool)
            .await?,
    )
}

/// Takes a checkpoint when the horizon is at least `every` positions past the latest one
/// (or there is none and the log holds at least `every` events); `None` when not due.
pub async fn create_if_due(
    pool: &PgPool,
    key: &CheckpointKey,
    every: i64,
) -> Result<Option<Checkpoint>, StoreError> {
    let last = latest_position(pool).await?.unwrap_or(0);
    let horizon = horizon(pool).await?;
    if horizon - last < every.max(1) {
        return Ok(None);
    }
    create_at(pool, key, horizon).await.map(Some)
}

/// The outcome of checking the signed checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    /// Every signature verified and the latest checkpoint's digest matches the log.
    pub ok: bool,
    /// Whether the signatures could be checked (a public key was given).
    pub signatures_checked: bool,
    /// How many checkpoints there are.
    pub checkpoints: u64,
    /// The position of the latest checkpoint, whose digest was recomputed.
    pub latest_position: Option<i64>,
    /// The key the signatures were checked with (`k4.pid.…`).
    pub key_id: Option<String>,
    /// What is wrong, one line per problem, newest checkpoint first.
    pub problems: Vec<CheckpointProblem>,
}

/// One bad checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointProblem {
    /// The checkpoint's id.
    pub id: i64,
    /// Its position.
    pub position: i64,
    /// What is wrong.
    pub reason: String,
}

/// Checks the signature of every checkpoint with `verifier` (when given) and recomputes
/// the digest of the latest one against the log.
pub async fn verify(
    pool: &PgPool,
    verifier: Option<&CheckpointVerifier>,
) -> Result<CheckpointReport, StoreError> {
    let all = list(pool).await?;
    let mut report = CheckpointReport {
        checkpoints: all.len() as u64,
        signatures_checked: verifier.is_some(),
        key_id: verifier.map(|v| v.key_id().to_owned()),
        latest_position: all.first().map(|c| c.position),
        ..CheckpointReport::default()
    };
    for (i, c) in all.iter().enumerate() {
        let mut problem = |reason: String| {
            report.problems.push(CheckpointProblem {
                id: c.id,
                position: c.position,
                reason,
            })
        };
        if let Some(v) = verifier {
            if c.key_id != v.key_id() {
                problem(format!(
                    "signed by key {}, not by the checkpoint key {}",
                    c.key_id,
                    v.key_id()
                ));
            } else if !v.verify(c.position, &c.digest, &c.signature) {
                problem("the signature does not verify (the checkpoint was altered)".into());
            }
        }
        if i == 0 {
            let (now, _) = digest(pool, c.position).await?;
            if now[..] != c.digest[..] {
                problem(format!(
                    "the stream heads as of position {} no longer match the signed digest \
                     (an event at or below it was rewritten, removed or added)",
                    c.position
                ));
            }
        }
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_documented_ascii_line() {
        assert_eq!(
            message(42, &[0xab; 32]),
            format!("carelog-checkpoint-v1 42 {}", "ab".repeat(32))
        );
    }

    #[test]
    fn signatures_verify_with_the_public_key_alone_and_only_for_what_was_signed() {
        let key = CheckpointKey::from_system_key(&Dek::generate());
        let digest = [7u8; 32];
        let sig = key.sign(10, &digest);
        let public = CheckpointVerifier::from_paserk(key.verifier().public_paserk()).unwrap();
        assert_eq!(public.key_id(), key.verifier().key_id());
        assert!(public.key_id().starts_with("k4.pid."));
        assert!(public.verify(10, &digest, &sig));
        assert!(!public.verify(11, &digest, &sig));
        assert!(!public.verify(10, &[8u8; 32], &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!public.verify(10, &digest, &bad));
        let other = CheckpointKey::from_system_key(&Dek::generate());
        assert!(!other.verifier().verify(10, &digest, &sig));
    }

    #[test]
    fn the_key_is_derived_from_the_system_key_deterministically() {
        let dek = Dek::generate();
        let a = CheckpointKey::from_system_key(&dek);
        let b = CheckpointKey::from_system_key(&dek);
        assert_eq!(a.verifier().public_paserk(), b.verifier().public_paserk());
        assert!(CheckpointVerifier::from_paserk("k4.secret.AAAA").is_err());
    }
}
