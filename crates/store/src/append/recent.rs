//! The events this process's committers just wrote, handed to the relay in the same
//! process so it can publish them without reading them back from PostgreSQL (ADR 0002,
//! amendment "recent commits").
//!
//! A committer adds the events of a batch once the batch is committed, exactly as they
//! were inserted (sealed payload, hashes, `recorded_at` truncated to microseconds as
//! stored, the positions the insert returned). [`RecentCommits::take_after`] gives a
//! reader at cursor `c` the events at `c + 1, c + 2, …` for as long as they are here
//! without a hole, and nothing when position `c + 1` is not here.
//!
//! Why such a run is what the gap-safe read of the log ([`crate::read::all`]) would have
//! returned: each event here is committed, and a position names one event, so a run with
//! no hole from `c + 1` to `r` holds every event of the log in `(c, r]`, in order. A
//! position that is missing — an event of another process, of
//! [`super::EventStore::append_in_tx`], a rolled-back position, a batch whose committer
//! has not added it yet, or one dropped because the reader fell behind — ends the run,
//! and the reader reads the log from PostgreSQL as before.
//!
//! Off until [`super::EventStore::commits`] is called (a process without a relay keeps
//! nothing); bounded by [`CAPACITY`] events and [`MAX_PAYLOAD_BYTES`] of payloads, the
//! oldest dropped first.
//!
//! It also knows the PostgreSQL backends of the committers ([`RecentCommits::is_committer`]):
//! their commits' `carelog_appended` notifications wake the relay a second time for the
//! same events, so a relay that is handed them ignores those (the committer wakes it
//! itself, after every commit), and no longer races its own notification to read the
//! events back before they are handed over.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use carelog_domain::Position;

use crate::read::StoredEvent;

/// Events kept at most (about 1.5 KB each with a 512-byte payload): a relay that falls
/// further behind than this reads the rest from the log.
pub(super) const CAPACITY: usize = 16_384;

/// Bytes of sealed payloads kept at most: events may be up to
/// [`super::MAX_EVENT_BYTES`] each, and a relay held up (NATS down) must not make the
/// process hold [`CAPACITY`] of those.
pub(super) const MAX_PAYLOAD_BYTES: usize = 32 * 1024 * 1024;

/// Committed events by position (see the module documentation).
#[derive(Default)]
pub struct RecentCommits {
    /// Whether committers keep their events at all (a relay asked for them).
    enabled: AtomicBool,
    events: Mutex<Kept>,
    /// The process ids of the committers' PostgreSQL backends.
    committers: Mutex<HashSet<u32>>,
}

impl std::fmt::Debug for RecentCommits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentCommits")
            .field("enabled", &self.is_enabled())
            .finish_non_exhaustive()
    }
}

impl RecentCommits {
    /// Whether committers should hand their events over.
    pub(super) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// From now on, committers hand their events over.
    pub(super) fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Adds committed events; beyond [`CAPACITY`] events or [`MAX_PAYLOAD_BYTES`], drops
    /// the lowest positions.
    pub(super) fn add(&self, committed: Vec<StoredEvent>) {
        if committed.is_empty() {
            return;
        }
        let mut kept = self.events();
        for event in committed {
            kept.insert(event);
        }
        while kept.by_position.len() > CAPACITY || kept.payload_bytes > MAX_PAYLOAD_BYTES {
            kept.pop_first();
        }
    }

    /// The events at `after + 1`, `after + 2`, … without a hole, at most `limit`, taken
    /// out; empty when position `after + 1` is not here. Events at or below `after` are
    /// dropped (the reader is past them).
    pub fn take_after(&self, after: Position, limit: usize) -> Vec<StoredEvent> {
        let mut kept = self.events();
        let next = after.0 + 1;
        while kept
            .by_position
            .first_key_value()
            .is_some_and(|(p, _)| *p < next)
        {
            kept.pop_first();
        }
        let mut run: Vec<StoredEvent> = Vec::new();
        while run.len() < limit
            && kept
                .by_position
                .first_key_value()
                .is_some_and(|(p, _)| *p == next + run.len() as i64)
        {
            run.extend(kept.pop_first());
        }
        run
    }

    /// Whether `backend` (a PostgreSQL process id, as a notification names its sender) is
    /// one of this process's committers.
    pub fn is_committer(&self, backend: u32) -> bool {
        lock(&self.committers).contains(&backend)
    }

    /// A committer's connection to `backend` is open.
    pub(super) fn committer_connected(&self, backend: u32) {
        lock(&self.committers).insert(backend);
    }

    /// A committer's connection to `backend` is gone (PostgreSQL may give the process id
    /// to another session).
    pub(super) fn committer_gone(&self, backend: u32) {
        lock(&self.committers).remove(&backend);
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Kept> {
        lock(&self.events)
    }
}

/// The events kept, and the bytes of their payloads.
#[derive(Default)]
struct Kept {
    by_position: BTreeMap<i64, StoredEvent>,
    payload_bytes: usize,
}

impl Kept {
    fn insert(&mut self, event: StoredEvent) {
        self.payload_bytes += event.payload.len();
        if let Some(old) = self.by_position.insert(event.position.0, event) {
            self.payload_bytes -= old.payload.len();
        }
    }

    fn pop_first(&mut self) -> Option<StoredEvent> {
        let (_, event) = self.by_position.pop_first()?;
        self.payload_bytes -= event.payload.len();
        Some(event)
    }
}

/// A panic while one is held cannot leave it half-changed in a way that matters: every
/// use is a whole insert or removal.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use carelog_domain::{
        EventHeader, EventId, EventType, KeyId, Metadata, SchemaVersion, StreamId, StreamType,
        StreamVersion, SubjectId,
    };
    use uuid::Uuid;

    fn stored_event_at(position: i64) -> StoredEvent {
        let stream = StreamId::new(StreamType::Patient, Uuid::now_v7());
        StoredEvent {
            position: Position(position),
            header: EventHeader {
                event_id: EventId(Uuid::now_v7()),
                stream_id: stream,
                version: StreamVersion(1),
                event_type: EventType::try_from("PatientRegistered").unwrap(),
                schema_version: SchemaVersion(1),
                subject: SubjectId::of_stream(&stream),
                key_id: KeyId(Uuid::now_v7()),
                metadata: Metadata::default(),
                recorded_at: chrono::Utc::now(),
            },
            payload: vec![1, 2, 3],
            prev_hash: carelog_crypto::GENESIS,
            hash: [7; 32],
        }
    }

    fn recent(positions: &[i64]) -> RecentCommits {
        let r = RecentCommits::default();
        r.add(positions.iter().map(|p| stored_event_at(*p)).collect());
        r
    }

    fn positions(events: &[StoredEvent]) -> Vec<i64> {
        events.iter().map(|e| e.position.0).collect()
    }

    #[test]
    fn a_run_without_a_hole_is_taken_from_just_after_the_cursor() {
        let r = recent(&[3, 4, 5, 7, 8]);
        assert_eq!(positions(&r.take_after(Position(2), 100)), [3, 4, 5]);
        // 6 is missing: nothing until the reader is past it.
        assert!(r.take_after(Position(5), 100).is_empty());
        assert_eq!(positions(&r.take_after(Position(6), 100)), [7, 8]);
        assert!(r.take_after(Position(8), 100).is_empty());
    }

    #[test]
    fn nothing_is_given_when_the_next_position_is_not_here() {
        let r = recent(&[5, 6]);
        assert!(r.take_after(Position(3), 100).is_empty());
        // The reader read 4 from the log: the run goes on from there.
        assert_eq!(positions(&r.take_after(Position(4), 100)), [5, 6]);
    }

    #[test]
    fn the_limit_leaves_the_rest_for_the_next_take_and_old_events_are_dropped() {
        let r = recent(&[1, 2, 3, 4, 5]);
        assert_eq!(positions(&r.take_after(Position(0), 2)), [1, 2]);
        assert_eq!(positions(&r.take_after(Position(2), 2)), [3, 4]);
        // A reader that went back (a restart from its checkpoint) finds nothing below 5.
        assert!(r.take_after(Position(1), 10).is_empty());
        assert_eq!(positions(&r.take_after(Position(4), 10)), [5]);
    }

    #[test]
    fn batches_added_out_of_order_still_make_one_run() {
        let r = RecentCommits::default();
        r.add(vec![stored_event_at(3), stored_event_at(4)]);
        r.add(vec![stored_event_at(1), stored_event_at(2)]);
        assert_eq!(positions(&r.take_after(Position(0), 10)), [1, 2, 3, 4]);
    }

    #[test]
    fn beyond_capacity_the_oldest_are_dropped() {
        let all: Vec<i64> = (1..=CAPACITY as i64 + 10).collect();
        let r = recent(&all);
        assert!(r.take_after(Position(0), 10).is_empty());
        let run = r.take_after(Position(10), usize::MAX);
        assert_eq!(run.len(), CAPACITY);
        assert_eq!(run.last().map(|e| e.position.0), all.last().copied());
    }

    #[test]
    fn beyond_the_payload_bytes_the_oldest_are_dropped() {
        let big = |p: i64| StoredEvent {
            payload: vec![0; super::super::MAX_EVENT_BYTES],
            ..stored_event_at(p)
        };
        let r = RecentCommits::default();
        let n = (MAX_PAYLOAD_BYTES / super::super::MAX_EVENT_BYTES) as i64;
        r.add((1..=n + 3).map(big).collect());
        assert!(
            r.take_after(Position(0), 1).is_empty(),
            "the oldest dropped"
        );
        let run = r.take_after(Position(3), usize::MAX);
        assert_eq!(run.len() as i64, n);
        assert_eq!(r.events().payload_bytes, 0, "the bytes follow what is kept");
    }

    #[test]
    fn committers_are_known_while_connected() {
        let r = RecentCommits::default();
        assert!(!r.is_committer(42));
        r.committer_connected(42);
        assert!(r.is_committer(42) && !r.is_committer(43));
        r.committer_gone(42);
        assert!(!r.is_committer(42));
    }
}
