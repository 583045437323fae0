//! The stream heads the committers remember, so that a batch of appends to streams they
//! wrote before needs no head lookup, and can be the insert alone (ADR 0004, amendment
//! "remembered heads").
//!
//! A remembered head is one a committer wrote and saw committed. It can only be behind
//! the log (another process, or [`super::EventStore::append_in_tx`], appended since), never
//! ahead of it, unless the database lost committed transactions (a failover to a standby
//! that had not received them, a restore). Either way a wrong head cannot reach the log:
//! a version that exists breaks the `(stream_id, version)` key, and a version that skips
//! one, or a `prev_hash` that is not its predecessor's hash, fails the insert's link
//! check (migration 0013). The batch then fails as a whole, its streams are forgotten,
//! and each append is retried alone on heads read from the log.

use std::collections::HashMap;
use std::sync::Mutex;

use carelog_crypto::{ChainHash, GENESIS};
use carelog_domain::{StreamId, StreamVersion};

use super::{Expected, Pending};

/// Streams remembered at most; when full, everything is forgotten (the next append of
/// each stream reads its head again). About 100 bytes each.
const CAPACITY: usize = 65_536;

/// A stream's last version and chain hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) version: StreamVersion,
    pub(super) hash: ChainHash,
}

impl Head {
    /// The head of a stream with no events.
    pub(super) const EMPTY: Head = Head {
        version: StreamVersion::EMPTY,
        hash: GENESIS,
    };
}

/// Heads written and committed by this process's committers.
#[derive(Debug, Default)]
pub(super) struct KnownHeads {
    heads: Mutex<HashMap<StreamId, Head>>,
}

impl KnownHeads {
    /// The head each append of `batch` is decided on, if every one of them is known
    /// without reading the log: a stream every append expects to be new starts empty
    /// (unless remembered, which means it is not new: the log decides), and a remembered
    /// stream starts at its head if its appends expect that version or any. `None` if
    /// one is not known, or expects another version than the one remembered: its head
    /// must be read from the log, under the log lock.
    pub(super) fn for_batch(&self, batch: &[&Pending]) -> Option<HashMap<StreamId, Head>> {
        let known = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        let mut start: HashMap<StreamId, Head> = HashMap::with_capacity(batch.len());
        // Each stream's version after the appends of the batch seen so far.
        let mut reached: HashMap<StreamId, StreamVersion> = HashMap::with_capacity(batch.len());
        for job in batch {
            let version = match reached.get(&job.stream) {
                Some(&version) => version,
                None => {
                    let head = match (known.get(&job.stream), job.expected) {
                        (Some(&head), _) => head,
                        (None, Expected::Exact(StreamVersion::EMPTY)) => Head::EMPTY,
                        (None, _) => return None,
                    };
                    start.insert(job.stream, head);
                    head.version
                }
            };
            if matches!(job.expected, Expected::Exact(v) if v != version) {
                return None;
            }
            let appended = i64::try_from(job.events.len()).unwrap_or(i64::MAX);
            reached.insert(
                job.stream,
                StreamVersion(version.0.saturating_add(appended)),
            );
        }
        Some(start)
    }

    /// Remembers the heads a committed batch left.
    pub(super) fn remember(&self, written: impl IntoIterator<Item = (StreamId, Head)>) {
        let mut known = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        for (stream, head) in written {
            if known.len() >= CAPACITY && !known.contains_key(&stream) {
                known.clear();
            }
            known.insert(stream, head);
        }
    }

    /// Forgets `streams`: a batch of them failed (it may or may not have committed), or
    /// they were appended to outside the committers.
    pub(super) fn forget<'a>(&self, streams: impl IntoIterator<Item = &'a StreamId>) {
        let mut known = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        for stream in streams {
            known.remove(stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carelog_domain::StreamType;
    use uuid::Uuid;

    fn stream() -> StreamId {
        StreamId::new(StreamType::Patient, Uuid::now_v7())
    }

    /// An append of `events` events (their contents do not matter here).
    fn append(stream: StreamId, expected: Expected, events: usize) -> Pending {
        let event = || super::super::Prepared {
            event_id: carelog_domain::EventId::new_v7(),
            event_type: carelog_domain::EventType::try_from("A").unwrap(),
            schema_version: carelog_domain::SchemaVersion(1),
            subject: carelog_domain::SubjectId::of_stream(&stream),
            key_id: carelog_domain::KeyId(Uuid::now_v7()),
            dek: carelog_crypto::Dek::generate(),
            plaintext: Default::default(),
            metadata: carelog_domain::Metadata::operator("test", "r".into(), chrono::Utc::now()),
        };
        Pending {
            stream,
            expected,
            events: (0..events).map(|_| event()).collect(),
        }
    }

    /// [`KnownHeads::for_batch`] of `batch`.
    fn decide(known: &KnownHeads, batch: &[Pending]) -> Option<HashMap<StreamId, Head>> {
        known.for_batch(&batch.iter().collect::<Vec<_>>())
    }

    fn head(version: i64, byte: u8) -> Head {
        Head {
            version: StreamVersion(version),
            hash: [byte; 32],
        }
    }

    #[test]
    fn new_streams_start_empty_and_remembered_ones_at_their_head() {
        let known = KnownHeads::default();
        let (new, old) = (stream(), stream());
        known.remember([(old, head(3, 3))]);
        let batch = [
            append(new, Expected::Exact(StreamVersion::EMPTY), 1),
            append(old, Expected::Exact(StreamVersion(3)), 1),
        ];
        let heads = decide(&known, &batch).unwrap();
        assert_eq!(heads[&new], Head::EMPTY);
        assert_eq!(heads[&old], head(3, 3));
        let any = [append(old, Expected::Any, 1)];
        assert_eq!(decide(&known, &any).unwrap()[&old], head(3, 3));
    }

    #[test]
    fn an_unknown_stream_or_another_expected_version_must_read_the_log() {
        let known = KnownHeads::default();
        let old = stream();
        known.remember([(old, head(3, 3))]);
        for batch in [
            vec![append(stream(), Expected::Any, 1)],
            vec![append(stream(), Expected::Exact(StreamVersion(2)), 1)],
            vec![append(old, Expected::Exact(StreamVersion(4)), 1)],
            vec![append(old, Expected::Exact(StreamVersion::EMPTY), 1)],
        ] {
            assert!(decide(&known, &batch).is_none());
        }
    }

    #[test]
    fn a_stream_twice_in_a_batch_follows_its_earlier_append() {
        let known = KnownHeads::default();
        let (new, old) = (stream(), stream());
        known.remember([(old, head(3, 3))]);
        let batch = [
            append(new, Expected::Exact(StreamVersion::EMPTY), 2),
            append(old, Expected::Exact(StreamVersion(3)), 3),
            append(new, Expected::Exact(StreamVersion(2)), 1),
            append(old, Expected::Any, 1),
            append(old, Expected::Exact(StreamVersion(7)), 1),
        ];
        let heads = decide(&known, &batch).unwrap();
        assert_eq!((heads[&new], heads[&old]), (Head::EMPTY, head(3, 3)));
        // Three events on version 3 leave the stream at 6, not 5.
        let off = [
            append(old, Expected::Exact(StreamVersion(3)), 3),
            append(old, Expected::Exact(StreamVersion(5)), 1),
        ];
        assert!(decide(&known, &off).is_none());
    }

    #[test]
    fn forgotten_streams_and_failed_batches_are_read_again() {
        let known = KnownHeads::default();
        let old = stream();
        known.remember([(old, head(3, 3))]);
        known.forget([&old]);
        let batch = [append(old, Expected::Exact(StreamVersion(3)), 1)];
        assert!(decide(&known, &batch).is_none());
    }

    #[test]
    fn when_full_it_forgets_everything_and_goes_on() {
        let known = KnownHeads::default();
        let first = stream();
        known.remember([(first, head(1, 1))]);
        known.remember((1..CAPACITY).map(|_| (stream(), head(1, 1))));
        let last = stream();
        known.remember([(last, head(2, 2))]);
        let heads = known.heads.lock().unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[&last], head(2, 2));
        assert!(!heads.contains_key(&first));
    }
}
