//! Idempotency-Key records: the first answer to a POST, kept for a while and replayed.
//!
//! The HTTP layer computes a *scope* (who asked, on which method and path) and a
//! *fingerprint* (what exactly was asked) and calls [`IdempotencyStore::claim`]:
//!
//! - [`Claim::Claimed`]: the key is new (or expired): run the handler, then
//!   [`IdempotencyStore::complete`] with the answer, or [`IdempotencyStore::release`] it
//!   if the answer must not be kept (a 5xx), so the client may retry;
//! - [`Claim::Replay`]: the same request was answered before: send that answer again;
//! - [`Claim::Mismatch`]: the key was used with another request;
//! - [`Claim::InProgress`]: the first request is still running.
//!
//! Answers may hold PHI, so they are stored sealed: AES-256-GCM under the `system`
//! subject's data key (the key is fetched once at start-up, [`IdempotencyStore::for_system`]),
//! with associated data binding the ciphertext to its scope, key and status, so a stored
//! answer moved onto another row does not open.
//!
//! Records live 24 hours ([`IdempotencyConfig::ttl`]); expired ones are purged in small
//! bounded batches, at most once a minute per process, piggy-backed on claims.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carelog_crypto::Dek;
use carelog_domain::SubjectId;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::error::StoreError;
use crate::keys::{KeyStore, SubjectKey};

/// How long records are kept and when an unfinished claim counts as abandoned.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyConfig {
    /// How long an answer is replayed (API contract: 24 hours).
    pub ttl: Duration,
    /// An in-progress claim older than this was left by a process that died mid-request;
    /// a new request with the same key may take it over. Longer than any request runs.
    pub abandoned_after: Duration,
    /// At most this many expired records are deleted by one purge.
    pub purge_batch: i64,
    /// Purges run at most this often (per process).
    pub purge_every: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 60 * 60),
            abandoned_after: Duration::from_secs(5 * 60),
            purge_batch: 500,
            purge_every: Duration::from_secs(60),
        }
    }
}

/// Who asked, on which method and path: SHA-256 computed by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope(pub [u8; 32]);

/// What exactly was asked (method, path, body): SHA-256 computed by the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

/// A stored answer: status, a few headers, body. No `Debug`: the body may hold PHI.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// Header names (lower case) and raw values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A key this request now holds; pass it back to complete or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    scope: Scope,
    key: String,
    claimed_at: DateTime<Utc>,
}

/// The outcome of [`IdempotencyStore::claim`].
pub enum Claim {
    /// The key is this request's: run it, then complete or release.
    Claimed(Held),
    /// The same request was answered before: this is the answer.
    Replay(StoredResponse),
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// Idempotency records in PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct IdempotencyStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    dek: Dek,
    cfg: IdempotencyConfig,
    /// Seconds since the epoch of the last purge (0: never).
    last_purge: AtomicU64,
}

/// Domain separation of the sealed answers' associated data.
const AAD_LABEL: &[u8] = b"carelog-idempotency-v1";

fn aad(scope: &Scope, key: &str, status: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_LABEL.len() + 32 + key.len() + 16);
    for part in [AAD_LABEL, &scope.0, key.as_bytes(), &status.to_be_bytes()] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// `n headers (u16) ‖ per header: name len (u16) ‖ name ‖ value len (u32) ‖ value ‖ body`.
fn encode(resp: &StoredResponse) -> Vec<u8> {
    let mut out = Vec::with_capacity(resp.body.len() + 128);
    out.extend_from_slice(&(resp.headers.len() as u16).to_be_bytes());
    for (name, value) in &resp.headers {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&resp.body);
    out
}

fn decode(status: u16, mut bytes: &[u8]) -> Option<StoredResponse> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if bytes.len() < n {
            return None;
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Some(head)
    }
    let count = u16::from_be_bytes(take(&mut bytes, 2)?.try_into().ok()?);
    let mut headers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = u16::from_be_bytes(take(&mut bytes, 2)?.try_into().ok()?) as usize;
        let name = String::from_utf8(take(&mut bytes, len)?.to_vec()).ok()?;
        let len = u32::from_be_bytes(take(&mut bytes, 4)?.try_into().ok()?) as usize;
        headers.push((name, take(&mut bytes, len)?.to_vec()));
    }
    Some(StoredResponse {
        status,
        headers,
        body: bytes.to_vec(),
    })
}

fn corrupt(what: &'static str) -> StoreError {
    // Idempotency rows have no log position.
    StoreError::Corrupt { position: 0, what }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl IdempotencyStore {
    /// A store sealing with `dek`.
    pub fn new(pool: PgPool, dek: Dek, cfg: IdempotencyConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                dek,
                cfg,
                last_purge: AtomicU64::new(0),
            }),
        }
    }

    /// A store sealing with the `system` subject's data key (created on first use).
    /// Call once at start-up.
    pub async fn for_system(
        pool: PgPool,
        keys: &KeyStore,
        cfg: IdempotencyConfig,
    ) -> Result<Self, StoreError> {
        match keys.for_write(&SubjectId::system()).await? {
            SubjectKey::Live(_, dek) => Ok(Self::new(pool, dek, cfg)),
            SubjectKey::Destroyed(_) => Err(StoreError::Refused(
                "the `system` subject's data key was destroyed; idempotency records \
                 cannot be sealed"
                    .into(),
            )),
        }
    }

    /// Claims `key` within `scope` for a request with `fingerprint`, or says why not.
    pub async fn claim(
        &self,
        scope: Scope,
        key: &str,
        fingerprint: Fingerprint,
    ) -> Result<Claim, StoreError> {
        self.purge_if_due().await;
        let cfg = &self.inner.cfg;
        // A record may vanish between the failed claim and the read (released by a 5xx,
        // or purged): then claim again. Twice is plenty; after that, call it busy.
        for _ in 0..3 {
            let claimed = sqlx::query(include_str!("../sql/idempotency_claim.sql"))
                .bind(&scope.0[..])
                .bind(key)
                .bind(&fingerprint.0[..])
                .bind(cfg.ttl.as_secs_f64())
                .bind(cfg.abandoned_after.as_secs_f64())
                .fetch_optional(&self.inner.pool)
                .await?;
            if let Some(row) = claimed {
                return Ok(Claim::Claimed(Held {
                    scope,
                    key: key.to_owned(),
                    claimed_at: row.try_get("created_at")?,
                }));
            }
            let Some(row) = sqlx::query(include_str!("../sql/idempotency_get.sql"))
                .bind(&scope.0[..])
                .bind(key)
                .bind(cfg.ttl.as_secs_f64())
                .fetch_optional(&self.inner.pool)
                .await?
            else {
                continue;
            };
            let stored: Vec<u8> = row.try_get("fingerprint")?;
            if stored != fingerprint.0 {
                return Ok(Claim::Mismatch);
            }
            let status: Option<i16> = row.try_get("status")?;
            let response: Option<Vec<u8>> = row.try_get("response")?;
            let (Some(status), Some(sealed)) = (status, response) else {
                return Ok(Claim::InProgress);
            };
            let status = u16::try_from(status).map_err(|_| corrupt("idempotency status"))?;
            let plain = self
                .inner
                .dek
                .open(&aad(&scope, key, status), &sealed)
                .map_err(|_| {
                    corrupt("stored idempotent response does not open (altered or moved)")
                })?;
            let resp = decode(status, &plain).ok_or_else(|| corrupt("idempotent response"))?;
            return Ok(Claim::Replay(resp));
        }
        Ok(Claim::InProgress)
    }

    /// Stores the answer of a held claim, sealed.
    pub async fn complete(&self, held: &Held, resp: &StoredResponse) -> Result<(), StoreError> {
        let plain = zeroize::Zeroizing::new(encode(resp));
        let sealed = self
            .inner
            .dek
            .seal(&aad(&held.scope, &held.key, resp.status), &plain);
        sqlx::query(include_str!("../sql/idempotency_complete.sql"))
            .bind(&held.scope.0[..])
            .bind(&held.key)
            .bind(held.claimed_at)
            .bind(resp.status as i16)
            .bind(sealed)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    /// Gives a held claim up: the key is free again.
    pub async fn release(&self, held: &Held) -> Result<(), StoreError> {
        sqlx::query(include_str!("../sql/idempotency_release.sql"))
            .bind(&held.scope.0[..])
            .bind(&held.key)
            .bind(held.claimed_at)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    /// Deletes up to one batch of expired records; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let cfg = &self.inner.cfg;
        let done = sqlx::query(include_str!("../sql/idempotency_purge.sql"))
            .bind(cfg.ttl.as_secs_f64())
            .bind(cfg.purge_batch)
            .execute(&self.inner.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Purges if the last purge of this process is older than `purge_every`. A failed
    /// purge is logged, never fails the request that triggered it.
    async fn purge_if_due(&self) {
        let now = now_secs();
        let last = self.inner.last_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.inner.cfg.purge_every.as_secs() {
            return;
        }
        // One request per interval wins the right to purge.
        if self
            .inner
            .last_purge
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if let Err(e) = self.purge_expired().await {
            tracing::warn!(error = %e, "purging expired idempotency records failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_survive_encoding() {
        let resp = StoredResponse {
            status: 201,
            headers: vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("etag".into(), b"\"1\"".to_vec()),
            ],
            body: br#"{"success":true}"#.to_vec(),
        };
        assert!(decode(201, &encode(&resp)) == Some(resp));
        assert!(decode(200, &[0, 1, 0]).is_none());
    }

    #[test]
    fn associated_data_binds_scope_key_and_status() {
        let s = Scope([1; 32]);
        assert_ne!(aad(&s, "k", 200), aad(&s, "k", 201));
        assert_ne!(aad(&s, "k", 200), aad(&Scope([2; 32]), "k", 200));
        assert_ne!(aad(&s, "k1", 200), aad(&s, "k", 200));
    }
}
