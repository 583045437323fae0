//! The one place event payloads are sealed and opened.

use std::collections::HashMap;

use carelog_crypto::{event_aad, Dek, OpenError, Plaintext};
use carelog_domain::{EventHeader, SubjectId};

use crate::error::{AppendError, StoreError};
use crate::keys::{KeyStore, SubjectKey};
use crate::read::StoredEvent;

/// An opened payload, or the fact that it can no longer be opened.
#[derive(Clone, PartialEq)]
pub enum Opened {
    /// The plaintext JSON payload.
    Payload(serde_json::Value),
    /// The subject was erased: its key is destroyed and this payload is unreadable for good.
    Erased,
    /// Not opened, on purpose: a projection that reads only some payloads
    /// (`carelog_projector::Projection::payload_filter`) gets the others this way, never
    /// decrypted. [`Vault::open`] and [`Vault::open_batch`] never answer it.
    Unread,
}

// No Debug that could print PHI.
impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opened::Payload(_) => f.write_str("Opened::Payload(..)"),
            Opened::Erased => f.write_str("Opened::Erased"),
            Opened::Unread => f.write_str("Opened::Unread"),
        }
    }
}

/// Seals and opens payloads with subject keys.
#[derive(Clone)]
pub struct Vault {
    keys: KeyStore,
}

impl Vault {
    /// A vault over `keys`.
    pub fn new(keys: KeyStore) -> Self {
        Self { keys }
    }

    /// The key store behind the vault.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Seals `plaintext` for the event `header` describes.
    pub fn seal(dek: &Dek, header: &EventHeader, plaintext: &[u8]) -> Vec<u8> {
        dek.seal(&aad(header), plaintext)
    }

    /// Seals a value that is not an event (a TOTP secret, say) under `subject`'s key, with
    /// `context` as associated data (say what it is and whose, so it cannot be moved).
    pub async fn seal_value(
        &self,
        subject: &SubjectId,
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AppendError> {
        match self.keys.for_write(subject).await? {
            SubjectKey::Live(_, dek) => Ok(dek.seal(context, plaintext)),
            SubjectKey::Destroyed(_) => Err(AppendError::Erased(subject.clone())),
        }
    }

    /// Opens what [`Self::seal_value`] sealed; `None` when the subject was erased.
    pub async fn open_value(
        &self,
        subject: &SubjectId,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Plaintext>, StoreError> {
        match self.keys.for_read(subject).await? {
            Some(SubjectKey::Live(_, dek)) => dek
                .open(context, sealed)
                .map(Some)
                .map_err(|_| StoreError::Tampered { position: 0 }),
            Some(SubjectKey::Destroyed(_)) => Ok(None),
            None => Err(StoreError::Tampered { position: 0 }),
        }
    }

    /// Opens a stored event's payload. A destroyed key gives [`Opened::Erased`]; a payload
    /// that fails authentication (altered or moved) is [`StoreError::Tampered`].
    pub async fn open(&self, event: &StoredEvent) -> Result<Opened, StoreError> {
        let key = self.keys.for_read(&event.header.subject).await?;
        open_with(key.as_ref(), event)
    }

    /// Opens the payloads of `events` (in order), as [`Self::open`] would one by one, but
    /// with the keys of their subjects looked up together: one query for every key not
    /// cached, whatever the cache's bounds. The first event that fails to open fails all.
    pub async fn open_batch(&self, events: &[&StoredEvent]) -> Result<Vec<Opened>, StoreError> {
        let keys = self
            .keys
            .for_read_many(events.iter().map(|e| &e.header.subject))
            .await?;
        open_with_keys(&keys, events, 1)
    }
}

/// Opens the payloads of `events` (in order) with the keys of their subjects already
/// looked up ([`KeyStore::for_read_many`]), as [`Vault::open_batch`] does, spreading the
/// work (AES-256-GCM and JSON, CPU only) over up to `threads` threads: the calling one
/// and `threads - 1` scoped threads. The first event that fails to open fails all.
/// Blocking: an async caller runs it in `tokio::task::spawn_blocking`.
pub fn open_with_keys(
    keys: &HashMap<SubjectId, SubjectKey>,
    events: &[&StoredEvent],
    threads: usize,
) -> Result<Vec<Opened>, StoreError> {
    let open_chunk = |chunk: &[&StoredEvent]| -> Result<Vec<Opened>, StoreError> {
        chunk
            .iter()
            .map(|e| open_with(keys.get(&e.header.subject), e))
            .collect()
    };
    let threads = threads.clamp(1, events.len().max(1));
    if threads == 1 {
        return open_chunk(events);
    }
    let mut chunks = events.chunks(events.len().div_ceil(threads));
    let first = chunks.next().unwrap_or_default();
    let opened: Vec<Result<Vec<Opened>, StoreError>> = std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || open_chunk(chunk)))
            .collect();
        let mut opened = vec![open_chunk(first)];
        opened.extend(
            others
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        opened
    });
    let mut all = Vec::with_capacity(events.len());
    for chunk in opened {
        all.extend(chunk?);
    }
    Ok(all)
}

/// Opens `event`'s payload with its subject's key as stored (`None`: the subject never
/// had a key, so the payload cannot be genuine).
fn open_with(key: Option<&SubjectKey>, event: &StoredEvent) -> Result<Opened, StoreError> {
    let header = &event.header;
    let position = event.position.0;
    let tampered = || StoreError::Tampered { position };
    let dek = match key {
        Some(SubjectKey::Live(key_id, dek)) if *key_id == header.key_id => dek,
        Some(SubjectKey::Destroyed(_)) => return Ok(Opened::Erased),
        _ => return Err(tampered()),
    };
    let plain = dek
        .open(&aad(header), &event.payload)
        .map_err(|_: OpenError| tampered())?;
    serde_json::from_slice(&plain)
        .map(Opened::Payload)
        .map_err(|_| tampered())
}

fn aad(h: &EventHeader) -> Vec<u8> {
    event_aad(&h.event_id, &h.stream_id, h.version, &h.event_type)
}
