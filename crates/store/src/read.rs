//! Reading events back: one stream, or the whole log after a cursor.

use carelog_crypto::ChainHash;
use carelog_domain::{
    EventHeader, EventId, EventType, KeyId, Metadata, Position, SchemaVersion, StreamId,
    StreamVersion, SubjectId,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::error::StoreError;

/// An event as stored: clear header, sealed payload, chain hashes.
#[derive(Clone)]
pub struct StoredEvent {
    /// Its place in the global log.
    pub position: Position,
    /// The clear, PHI-free facts.
    pub header: EventHeader,
    /// `nonce ‖ ciphertext ‖ tag`. Never leaves the server except to NATS and backups.
    pub payload: Vec<u8>,
    /// The hash of the stream's previous event ([`carelog_crypto::GENESIS`] for the first).
    pub prev_hash: ChainHash,
    /// This event's chain hash.
    pub hash: ChainHash,
}

impl std::fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEvent")
            .field("position", &self.position)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// The columns every event query selects.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    position: i64,
    event_id: Uuid,
    stream_id: String,
    version: i64,
    event_type: String,
    schema_version: i16,
    subject_id: String,
    key_id: Uuid,
    payload: Vec<u8>,
    metadata: Json<serde_json::Value>,
    recorded_at: DateTime<Utc>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl EventRow {
    pub(crate) fn position(&self) -> i64 {
        self.position
    }

    pub(crate) fn stream_id(&self) -> &str {
        &self.stream_id
    }

    pub(crate) fn version(&self) -> i64 {
        self.version
    }

    /// Decodes the row; a row this code could not have written is [`StoreError::Corrupt`].
    pub(crate) fn decode(self) -> Result<StoredEvent, StoreError> {
        let position = self.position;
        let corrupt = |what| StoreError::Corrupt { position, what };
        let hash = |v: Vec<u8>, what| ChainHash::try_from(v.as_slice()).map_err(|_| corrupt(what));
        Ok(StoredEvent {
            position: Position(position),
            header: EventHeader {
                event_id: EventId(self.event_id),
                stream_id: self
                    .stream_id
                    .parse::<StreamId>()
                    .map_err(|_| corrupt("stream_id"))?,
                version: StreamVersion(self.version),
                event_type: EventType::try_from(self.event_type)
                    .map_err(|_| corrupt("event_type"))?,
                schema_version: SchemaVersion(self.schema_version),
                subject: SubjectId::try_from(self.subject_id).map_err(|_| corrupt("subject_id"))?,
                key_id: KeyId(self.key_id),
                metadata: serde_json::from_value::<Metadata>(self.metadata.0)
                    .map_err(|_| corrupt("metadata"))?,
                recorded_at: self.recorded_at,
            },
            payload: self.payload,
            prev_hash: hash(self.prev_hash, "prev_hash")?,
            hash: hash(self.hash, "hash")?,
        })
    }
}

fn decode_all(rows: Vec<EventRow>) -> Result<Vec<StoredEvent>, StoreError> {
    rows.into_iter().map(EventRow::decode).collect()
}

/// Up to `limit` events of `stream` after version `after`, in version order.
pub async fn stream(
    db: impl PgExecutor<'_>,
    stream: &StreamId,
    after: StreamVersion,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query_as::<_, EventRow>(include_str!("../sql/read_stream.sql"))
        .bind(stream.to_string())
        .bind(after.0)
        .bind(limit)
        .fetch_all(db)
        .await?;
    decode_all(rows)
}

/// Up to `limit` events of the whole log after `after`, in position order, gap-safe:
/// an event not returned now can never later appear at or before the last one returned.
/// Every insert into the log holds the log lock until it commits (migration 0010), so
/// positions are handed out in commit order (ADR 0002, amendment c).
pub async fn all(
    db: impl PgExecutor<'_>,
    after: Position,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query_as::<_, EventRow>(include_str!("../sql/read_all.sql"))
        .bind(after.0)
        .bind(limit)
        .fetch_all(db)
        .await?;
    decode_all(rows)
}

/// As [`all`], for a replay of the whole log (a rebuild reads it in pages of tens of
/// thousands): the same rows, gap-safe, with the horizon computed once per query and
/// the rows decoded without intermediate copies.
///
/// `payload_types`: fetch the payloads of these event types only (`None`: all); the
/// others come back with an empty payload, which never opens (it fails authentication),
/// for a caller that never opens them anyway.
pub async fn all_bulk(
    pool: &PgPool,
    after: Position,
    limit: i64,
    payload_types: Option<&[&str]>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let rows = sqlx::query(include_str!("../sql/read_all_bulk.sql"))
        .bind(after.0)
        .bind(limit)
        .bind(payload_types)
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode_bulk).collect()
}

/// The horizon of a replay of the log read in position ranges ([`range_bulk`]), taken in
/// one snapshot S ([`horizon`]).
///
/// # Why ranges read under it skip nothing (ADR 0002, amendment of 2026-11-24 b)
///
/// `xmin` is S's xmin: every transaction with an xid below it had ended (committed or
/// rolled back for good) when S was taken. Ranges `(a, b]` tiling `(START, head]` are read
/// later, concurrently, each in its own snapshot, every row flagged when its `tx_id >=
/// xmin`; the replay keeps, in position order, the rows before the FIRST flagged row of
/// the whole tiling, and reads on from the last kept row with the ordinary gap-safe page
/// ([`all_bulk`]). The kept rows are exactly the rows before that point of the page
/// `read_all_bulk.sql` would have returned in S with no limit:
/// - a row with `tx_id < xmin` belongs to a transaction that had ended before S, so it is
///   visible in S and in every later snapshot alike (the log is append-only: no row ever
///   disappears or changes);
/// - a row S did not see (its writer was in flight at S, or began after S) has
///   `tx_id >= xmin`, so it is flagged, never kept: the cut comes at or before it;
/// - so before the first flagged row of the tiling, the ranges saw exactly the rows of S
///   with `tx_id < xmin`, and S saw no flagged row there either (a row flagged now was
///   flagged in S, `xmin` being fixed): that is S's gap-safe page, cut at or before the
///   point where read_all_bulk.sql cuts it.
///
/// The replay is therefore one gap-safe page read in S, truncated, followed by ordinary
/// gap-safe pages: it inherits [`all`]'s guarantee (an event not returned can never later
/// appear at or before the last one returned) under the same argument (positions handed
/// out under the log lock in commit order, xmin cut as defence in depth), and no event
/// is skipped. Below the cut no per-page horizon is needed: the set of rows is fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayHorizon {
    /// S's `pg_snapshot_xmin`, as a bigint.
    pub xmin: i64,
    /// The highest position S sees ([`Position::START`] for an empty log).
    pub head: Position,
}

/// The horizon of a replay read in ranges, taken now (`sql/read_horizon.sql`).
pub async fn horizon(db: impl PgExecutor<'_>) -> Result<ReplayHorizon, StoreError> {
    let (xmin, head): (i64, i64) = sqlx::query_as(include_str!("../sql/read_horizon.sql"))
        .fetch_one(db)
        .await?;
    Ok(ReplayHorizon {
        xmin,
        head: Position(head),
    })
}

/// A range of the log read under a [`ReplayHorizon`] ([`range_bulk`]).
#[derive(Debug)]
pub struct RangePage {
    /// The range's events before its first row of a transaction not older than the
    /// horizon's xmin, in position order.
    pub events: Vec<StoredEvent>,
    /// Whether such a row was found (the range was cut before it): the rows after the
    /// last of `events` must then be read with [`all_bulk`], not from later ranges.
    pub cut: bool,
}

/// The events of positions `(after, upto]` under `horizon` (`sql/read_range_bulk.sql`),
/// in position order, cut before the first row whose transaction is not older than the
/// horizon's xmin. Gap-safe only as part of a tiling read as [`ReplayHorizon`] says.
/// `payload_types` as for [`all_bulk`].
pub async fn range_bulk(
    pool: &PgPool,
    horizon: ReplayHorizon,
    after: Position,
    upto: Position,
    payload_types: Option<&[&str]>,
) -> Result<RangePage, StoreError> {
    use sqlx::Row as _;
    let rows = sqlx::query(include_str!("../sql/read_range_bulk.sql"))
        .bind(after.0)
        .bind(upto.0)
        .bind(horizon.xmin)
        .bind(payload_types)
        .fetch_all(pool)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<bool, _>(13)? {
            return Ok(RangePage { events, cut: true });
        }
        events.push(decode_bulk(row)?);
    }
    Ok(RangePage { events, cut: false })
}

/// Decodes a row of `read_all_bulk.sql` or `read_range_bulk.sql` (their first columns,
/// in that order), borrowing what it parses; a row this code could not have written is
/// [`StoreError::Corrupt`].
fn decode_bulk(row: &sqlx::postgres::PgRow) -> Result<StoredEvent, StoreError> {
    use sqlx::Row as _;
    let position: i64 = row.try_get(0)?;
    let corrupt = |what| StoreError::Corrupt { position, what };
    let hash = |i: usize, what| -> Result<ChainHash, StoreError> {
        let bytes: &[u8] = row.try_get(i)?;
        ChainHash::try_from(bytes).map_err(|_| corrupt(what))
    };
    let stream_id: &str = row.try_get(2)?;
    let event_type: String = row.try_get(4)?;
    let subject_id: String = row.try_get(6)?;
    let metadata: Json<Metadata> = row.try_get(9).map_err(|_| corrupt("metadata"))?;
    Ok(StoredEvent {
        position: Position(position),
        header: EventHeader {
            event_id: EventId(row.try_get(1)?),
            stream_id: stream_id
                .parse::<StreamId>()
                .map_err(|_| corrupt("stream_id"))?,
            version: StreamVersion(row.try_get(3)?),
            event_type: EventType::try_from(event_type).map_err(|_| corrupt("event_type"))?,
            schema_version: SchemaVersion(row.try_get(5)?),
            subject: SubjectId::try_from(subject_id).map_err(|_| corrupt("subject_id"))?,
            key_id: KeyId(row.try_get(7)?),
            metadata: metadata.0,
            recorded_at: row.try_get(10)?,
        },
        payload: row.try_get(8)?,
        prev_hash: hash(11, "prev_hash")?,
        hash: hash(12, "hash")?,
    })
}

/// The statements giving a rebuild twin (`twin`, schema-qualified) the constraints and
/// indexes of the live table `live` (in `public`), as `(phase, statement)` in order
/// (`sql/read_twin_index_ddl.sql`): the phase-0 statements may run concurrently, the
/// phase-1 ones after them, one at a time.
pub async fn twin_index_ddl(
    db: impl PgExecutor<'_>,
    live: &str,
    twin: &str,
) -> Result<Vec<(i32, String)>, StoreError> {
    Ok(
        sqlx::query_as(include_str!("../sql/read_twin_index_ddl.sql"))
            .bind(live)
            .bind(twin)
            .fetch_all(db)
            .await?,
    )
}
