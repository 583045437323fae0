//! Subject data keys: created on first use, stored wrapped, cached unwrapped for a
//! bounded time, destroyed on erasure, re-wrapped when the master key rotates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carelog_crypto::{Dek, KekId, Keyring, MasterKey};
use carelog_domain::{KeyId, SubjectId};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::error::StoreError;

/// A subject's key as the store knows it.
#[derive(Clone)]
pub enum SubjectKey {
    /// The key exists and was unwrapped.
    Live(KeyId, Dek),
    /// The key was destroyed (the subject was erased).
    Destroyed(KeyId),
}

#[derive(Clone)]
struct Cached {
    key: SubjectKey,
    at: Instant,
}

/// Bounds of the unwrapped-key cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// How long an unwrapped key is kept. Another node's erasure reaches this node's
    /// cache at the latest after this long; this node's own erasures evict at once.
    pub ttl: Duration,
    /// At most this many keys are held.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(60),
            max_entries: 10_000,
        }
    }
}

/// Access to subject keys. Cheap to clone.
#[derive(Clone)]
pub struct KeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    keyring: Keyring,
    cache: Mutex<HashMap<SubjectId, Cached>>,
    cfg: CacheConfig,
}

/// The associated data of a wrapped key: it belongs to this subject and this key id.
fn wrap_context(subject: &SubjectId, key_id: KeyId) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"carelog-dek-v1\0");
    out.extend_from_slice(subject.as_str().as_bytes());
    out.push(0);
    out.extend_from_slice(key_id.0.as_bytes());
    out
}

impl KeyStore {
    /// A key store over `pool`, wrapping with `keyring`'s primary key.
    pub fn new(pool: PgPool, keyring: Keyring, cfg: CacheConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                keyring,
                cache: Mutex::new(HashMap::new()),
                cfg,
            }),
        }
    }

    /// The key to seal new events of `subject` with, created on first use.
    pub async fn for_write(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError> {
        if let Some(key) = self.cached(subject) {
            return Ok(key);
        }
        if let Some(key) = self.load(subject).await? {
            return Ok(key);
        }
        self.create(subject).await
    }

    /// [`Self::for_write`] on the caller's connection, for an append inside the caller's
    /// transaction (`EventStore::append_in_tx`): taking a second pooled connection while
    /// the transaction holds one would let concurrent commands exhaust the pool and wait
    /// on each other until it times out. What it loads or creates here is not cached: the
    /// transaction may still roll back, and a cached key whose row never committed would
    /// seal events nobody can open.
    pub async fn for_write_in(
        &self,
        conn: &mut PgConnection,
        subject: &SubjectId,
    ) -> Result<SubjectKey, StoreError> {
        if let Some(key) = self.cached(subject) {
            return Ok(key);
        }
        if let Some(row) = sqlx::query(include_str!("../sql/key_get.sql"))
            .bind(subject.as_str())
            .fetch_optional(&mut *conn)
            .await?
        {
            return self.decode_row(subject, &row);
        }
        let (key_id, dek, wrapped, kek_id) = self.new_key(subject);
        let inserted = sqlx::query(include_str!("../sql/key_insert.sql"))
            .bind(subject.as_str())
            .bind(key_id.0)
            .bind(kek_id)
            .bind(wrapped)
            .fetch_optional(&mut *conn)
            .await?;
        if inserted.is_some() {
            return Ok(SubjectKey::Live(key_id, dek));
        }
        // Another writer created it first (and committed: the insert waited for it).
        let row = sqlx::query(include_str!("../sql/key_get.sql"))
            .bind(subject.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| {
                StoreError::Refused("subject key vanished while being created".into())
            })?;
        self.decode_row(subject, &row)
    }

    /// The key to open events of `subject`; `None` if the subject never had one.
    pub async fn for_read(&self, subject: &SubjectId) -> Result<Option<SubjectKey>, StoreError> {
        if let Some(key) = self.cached(subject) {
            return Ok(Some(key));
        }
        self.load(subject).await
    }

    /// The keys to open events of several subjects, in one query for those not cached
    /// (a rebuild opens thousands of events per batch). Subjects that never had a key are
    /// absent from the answer. The keys loaded are also cached, as [`Self::for_read`] does,
    /// but the answer does not depend on the cache's bounds.
    pub async fn for_read_many<'s>(
        &self,
        subjects: impl IntoIterator<Item = &'s SubjectId>,
    ) -> Result<HashMap<SubjectId, SubjectKey>, StoreError> {
        let mut found = HashMap::new();
        let mut missing: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for subject in subjects {
            if !seen.insert(subject) {
                continue;
            }
            match self.cached(subject) {
                Some(key) => {
                    found.insert(subject.clone(), key);
                }
                None => missing.push(subject.as_str()),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let rows = sqlx::query(include_str!("../sql/key_get_many.sql"))
            .bind(&missing)
            .fetch_all(&self.inner.pool)
            .await?;
        for row in &rows {
            let subject =
                SubjectId::try_from(row.try_get::<String, _>("subject_id")?).map_err(|_| {
                    StoreError::Refused("subject_keys holds a malformed subject id".into())
                })?;
            let key = self.decode(&subject, row)?;
            found.insert(subject, key);
        }
        Ok(found)
    }

    /// Destroys `subject`'s key: from now on its payloads cannot be opened, here or in
    /// any copy of the log. Returns whether a live key was destroyed.
    pub async fn destroy(&self, subject: &SubjectId) -> Result<bool, StoreError> {
        let destroyed = sqlx::query(include_str!("../sql/key_destroy.sql"))
            .bind(subject.as_str())
            .fetch_optional(&self.inner.pool)
            .await?;
        self.evict(subject);
        Ok(destroyed.is_some())
    }

    /// As [`Self::destroy`], inside the caller's transaction, so the key goes with the
    /// events and inline rows of the erasure or not at all. The cached key is evicted
    /// now; call [`Self::forget`] again after the commit (a read between the two could
    /// have cached the still-live key again).
    pub async fn destroy_in_tx(
        &self,
        tx: &mut PgConnection,
        subject: &SubjectId,
    ) -> Result<bool, StoreError> {
        let destroyed = sqlx::query(include_str!("../sql/key_destroy.sql"))
            .bind(subject.as_str())
            .fetch_optional(tx)
            .await?;
        self.evict(subject);
        Ok(destroyed.is_some())
    }

    /// Evicts `subject`'s cached key (after a destruction committed).
    pub fn forget(&self, subject: &SubjectId) {
        self.evict(subject);
    }

    /// Forgets every cached key (e.g. after a rotation).
    pub fn clear_cache(&self) {
        self.inner.cache.lock().expect("key cache lock").clear();
    }

    fn cached(&self, subject: &SubjectId) -> Option<SubjectKey> {
        let cache = self.inner.cache.lock().expect("key cache lock");
        let hit = cache.get(subject)?;
        // A destroyed key never comes back, so a tombstone may be trusted for ever.
        match hit.key {
            SubjectKey::Destroyed(_) => Some(hit.key.clone()),
            SubjectKey::Live(..) if hit.at.elapsed() < self.inner.cfg.ttl => Some(hit.key.clone()),
            SubjectKey::Live(..) => None,
        }
    }

    fn remember(&self, subject: &SubjectId, key: &SubjectKey) {
        let mut cache = self.inner.cache.lock().expect("key cache lock");
        if cache.len() >= self.inner.cfg.max_entries {
            let ttl = self.inner.cfg.ttl;
            cache.retain(|_, c| c.at.elapsed() < ttl);
            if cache.len() >= self.inner.cfg.max_entries {
                cache.clear();
            }
        }
        cache.insert(
            subject.clone(),
            Cached {
                key: key.clone(),
                at: Instant::now(),
            },
        );
    }

    fn evict(&self, subject: &SubjectId) {
        self.inner
            .cache
            .lock()
            .expect("key cache lock")
            .remove(subject);
    }

    async fn load(&self, subject: &SubjectId) -> Result<Option<SubjectKey>, StoreError> {
        let Some(row) = sqlx::query(include_str!("../sql/key_get.sql"))
            .bind(subject.as_str())
            .fetch_optional(&self.inner.pool)
            .await?
        else {
            return Ok(None);
        };
        self.decode(subject, &row).map(Some)
    }

    /// Unwraps (or recognises as destroyed) a stored key row and caches it.
    fn decode(
        &self,
        subject: &SubjectId,
        row: &sqlx::postgres::PgRow,
    ) -> Result<SubjectKey, StoreError> {
        let key = self.decode_row(subject, row)?;
        self.remember(subject, &key);
        Ok(key)
    }

    /// Unwraps (or recognises as destroyed) a stored key row, without caching it.
    fn decode_row(
        &self,
        subject: &SubjectId,
        row: &sqlx::postgres::PgRow,
    ) -> Result<SubjectKey, StoreError> {
        let key_id = KeyId(row.try_get::<Uuid, _>("key_id")?);
        let kek_id: Option<String> = row.try_get("kek_id")?;
        let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
        let key = match (kek_id, wrapped) {
            (Some(kek_id), Some(wrapped)) => {
                let dek = self.inner.keyring.unwrap(
                    &KekId::from_stored(kek_id),
                    &wrapped,
                    &wrap_context(subject, key_id),
                )?;
                SubjectKey::Live(key_id, dek)
            }
            _ => SubjectKey::Destroyed(key_id),
        };
        Ok(key)
    }

    /// A fresh data key for `subject`: its id, the key, the key wrapped by the primary
    /// KEK, and that KEK's id.
    fn new_key(&self, subject: &SubjectId) -> (KeyId, Dek, Vec<u8>, String) {
        let key_id = KeyId(Uuid::now_v7());
        let dek = Dek::generate();
        let kek = self.inner.keyring.primary();
        let wrapped = kek.wrap(&dek, &wrap_context(subject, key_id));
        (key_id, dek, wrapped, kek.id().as_str().to_owned())
    }

    async fn create(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError> {
        let (key_id, dek, wrapped, kek_id) = self.new_key(subject);
        let inserted = sqlx::query(include_str!("../sql/key_insert.sql"))
            .bind(subject.as_str())
            .bind(key_id.0)
            .bind(kek_id)
            .bind(wrapped)
            .fetch_optional(&self.inner.pool)
            .await?;
        if inserted.is_some() {
            let key = SubjectKey::Live(key_id, dek);
            self.remember(subject, &key);
            return Ok(key);
        }
        // Another writer created it first: use theirs.
        self.load(subject)
            .await?
            .ok_or_else(|| StoreError::Refused("subject key vanished while being created".into()))
    }
}

/// Re-wraps every data key not yet wrapped by `new` (unwrapping with `keyring`, which
/// must hold the keys that wrapped them). Events are not touched. Runs in batches, each
/// its own transaction, so it can be interrupted and resumed. Returns how many keys
/// were re-wrapped; `progress` is told the running total after each batch.
pub async fn rewrap_all(
    pool: &PgPool,
    keyring: &Keyring,
    new: &MasterKey,
    batch: i64,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let mut total = 0u64;
    loop {
        let mut tx = pool.begin().await?;
        let rows = sqlx::query(include_str!("../sql/key_batch_to_rewrap.sql"))
            .bind(new.id().as_str())
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(total);
        }
        for row in &rows {
            let subject =
                SubjectId::try_from(row.try_get::<String, _>("subject_id")?).map_err(|_| {
                    StoreError::Refused("subject_keys holds a malformed subject id".into())
                })?;
            let key_id = KeyId(row.try_get::<Uuid, _>("key_id")?);
            let old_kek: String = row.try_get("kek_id")?;
            let wrapped: Vec<u8> = row.try_get("wrapped_key")?;
            let context = wrap_context(&subject, key_id);
            let dek = keyring.unwrap(&KekId::from_stored(old_kek.clone()), &wrapped, &context)?;
            sqlx::query(include_str!("../sql/key_rewrap.sql"))
                .bind(subject.as_str())
                .bind(&old_kek)
                .bind(new.id().as_str())
                .bind(new.wrap(&dek, &context))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        total += rows.len() as u64;
        progress(total);
    }
}
