//! What projectors (crates/projector) keep in PostgreSQL: each projection's checkpoint,
//! its dead-letter queue (`dlq_entries`), and the SQL of the read models that ship with
//! carelog (`projections/`).
//!
//! Every function that changes state takes the caller's transaction: a projector writes
//! its read-model rows, its dead letters and its checkpoint in one transaction
//! (DESIGN.md invariants 7 and 8). [`lock`] serialises a projection's batches with the
//! retries and discards of its dead letters.
//!
//! `dlq_entries.error` is stored as given: callers pass the projection's own message,
//! which must carry no PHI (see crates/projector `ApplyError`).

use carelog_domain::{EventId, Position};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::error::StoreError;
use crate::read::{EventRow, StoredEvent};

/// Whether a dead letter is the event that failed or one parked behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqStatus {
    /// Could not be applied after the bounded attempts.
    Failed,
    /// A later event of the same stream, waiting for the failed one.
    Waiting,
}

impl DlqStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DlqStatus::Failed => "failed",
            DlqStatus::Waiting => "waiting",
        }
    }
}

/// One row of `dlq_entries`. No PHI: ids, positions and the projection's error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqEntry {
    /// The entry's id (what the admin API and CLI name).
    pub id: Uuid,
    /// The projection that set the event aside.
    pub projection: String,
    /// The event's stream, `<stream type>-<uuid>`.
    pub stream_id: String,
    /// The event.
    pub event_id: EventId,
    /// Its global position.
    pub position: Position,
    /// Why it failed (`None` for a waiting event).
    pub error: Option<String>,
    /// Attempts made (0 for a waiting event).
    pub attempts: i32,
    /// First failure.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// Latest failure.
    pub last_failed_at: Option<DateTime<Utc>>,
    /// Failed or waiting.
    pub status: DlqStatus,
}

#[derive(sqlx::FromRow)]
struct DlqRow {
    id: Uuid,
    projection: String,
    stream_id: String,
    event_id: Uuid,
    position: i64,
    error: Option<String>,
    attempts: i32,
    first_failed_at: Option<DateTime<Utc>>,
    last_failed_at: Option<DateTime<Utc>>,
    status: String,
}

impl DlqRow {
    fn decode(self) -> Result<DlqEntry, StoreError> {
        let status = match self.status.as_str() {
            "failed" => DlqStatus::Failed,
            "waiting" => DlqStatus::Waiting,
            _ => {
                return Err(StoreError::Corrupt {
                    position: self.position,
                    what: "dlq status",
                })
            }
        };
        Ok(DlqEntry {
            id: self.id,
            projection: self.projection,
            stream_id: self.stream_id,
            event_id: EventId(self.event_id),
            position: Position(self.position),
            error: self.error,
            attempts: self.attempts,
            first_failed_at: self.first_failed_at,
            last_failed_at: self.last_failed_at,
            status,
        })
    }
}

/// A new dead letter.
#[derive(Debug, Clone)]
pub struct NewDlqEntry<'a> {
    /// The projection.
    pub projection: &'a str,
    /// The event set aside.
    pub event: &'a StoredEvent,
    /// Failed or waiting.
    pub status: DlqStatus,
    /// The projection's error (no PHI); `None` for a waiting event.
    pub error: Option<&'a str>,
    /// Attempts made.
    pub attempts: i32,
    /// First failure (`None` for a waiting event).
    pub first_failed_at: Option<DateTime<Utc>>,
}

/// Takes the projection's transaction lock (until commit or rollback).
pub async fn lock(tx: &mut PgConnection, projection: &str) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/projector_lock.sql"))
        .bind(projection)
        .execute(tx)
        .await?;
    Ok(())
}

/// The projection's checkpoint (0 before its first commit).
pub async fn checkpoint(db: impl PgExecutor<'_>, projection: &str) -> Result<Position, StoreError> {
    let pos: Option<i64> = sqlx::query_scalar(include_str!("../sql/projector_checkpoint_get.sql"))
        .bind(projection)
        .fetch_optional(db)
        .await?;
    Ok(Position(pos.unwrap_or(0)))
}

/// Moves the checkpoint forward to `position` (never backwards), in `tx`.
pub async fn save_checkpoint(
    tx: &mut PgConnection,
    projection: &str,
    position: Position,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/projector_checkpoint_set.sql"))
        .bind(projection)
        .bind(position.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// Which of `stream_ids` have dead letters in `projection` (their events must wait):
/// one query for a whole batch.
pub async fn dlq_blocked_streams(
    tx: &mut PgConnection,
    projection: &str,
    stream_ids: &[String],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let blocked: Vec<String> =
        sqlx::query_scalar(include_str!("../sql/projector_dlq_blocked_streams.sql"))
            .bind(projection)
            .bind(stream_ids)
            .fetch_all(tx)
            .await?;
    Ok(blocked.into_iter().collect())
}

/// Records a dead letter in `tx` (once per projection and event).
pub async fn dlq_insert(tx: &mut PgConnection, entry: NewDlqEntry<'_>) -> Result<(), StoreError> {
    let failed = entry.status == DlqStatus::Failed;
    sqlx::query(include_str!("../sql/projector_dlq_insert.sql"))
        .bind(Uuid::now_v7())
        .bind(entry.projection)
        .bind(entry.event.header.stream_id.to_string())
        .bind(entry.event.header.event_id.0)
        .bind(entry.event.position.0)
        .bind(entry.error)
        .bind(entry.attempts)
        .bind(entry.first_failed_at)
        .bind(failed.then(Utc::now))
        .bind(entry.status.as_str())
        .execute(tx)
        .await?;
    Ok(())
}

/// Dead letters of `projection` (or of all), in projection and position order.
pub async fn dlq_list(
    db: impl PgExecutor<'_>,
    projection: Option<&str>,
) -> Result<Vec<DlqEntry>, StoreError> {
    let rows = sqlx::query_as::<_, DlqRow>(include_str!("../sql/projector_dlq_list.sql"))
        .bind(projection)
        .fetch_all(db)
        .await?;
    rows.into_iter().map(DlqRow::decode).collect()
}

/// How many events are set aside, failed and waiting.
pub async fn dlq_depth(db: impl PgExecutor<'_>) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar(include_str!("../sql/projector_dlq_depth.sql"))
            .fetch_one(db)
            .await?,
    )
}

/// One dead letter, locked until the end of `tx`.
pub async fn dlq_get(tx: &mut PgConnection, id: Uuid) -> Result<Option<DlqEntry>, StoreError> {
    sqlx::query_as::<_, DlqRow>(include_str!("../sql/projector_dlq_get.sql"))
        .bind(id)
        .fetch_optional(tx)
        .await?
        .map(DlqRow::decode)
        .transpose()
}

/// The events waiting behind a stream's failed event, in position order, locked.
pub async fn dlq_waiting(
    tx: &mut PgConnection,
    projection: &str,
    stream_id: &str,
) -> Result<Vec<DlqEntry>, StoreError> {
    let rows = sqlx::query_as::<_, DlqRow>(include_str!("../sql/projector_dlq_waiting.sql"))
        .bind(projection)
        .bind(stream_id)
        .fetch_all(tx)
        .await?;
    rows.into_iter().map(DlqRow::decode).collect()
}

/// Removes a dead letter (applied or discarded).
pub async fn dlq_delete(tx: &mut PgConnection, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/projector_dlq_delete.sql"))
        .bind(id)
        .execute(tx)
        .await?;
    Ok(())
}

/// A retry failed again: one more attempt, the new error (no PHI), now; the entry
/// becomes (or stays) the stream's failed event.
pub async fn dlq_failed_again(
    db: impl PgExecutor<'_>,
    id: Uuid,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/projector_dlq_failed_again.sql"))
        .bind(id)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

/// The event with id `event_id`, read back from the log.
pub async fn read_event(
    db: impl PgExecutor<'_>,
    event_id: EventId,
) -> Result<Option<StoredEvent>, StoreError> {
    sqlx::query_as::<_, EventRow>(include_str!("../sql/projector_read_event.sql"))
        .bind(event_id.0)
        .fetch_optional(db)
        .await?
        .map(EventRow::decode)
        .transpose()
}

/// Applies `event` to the `audit_feed` read model (`projections/audit_feed_apply.sql`):
/// clear metadata only, idempotent.
pub async fn audit_feed_apply(
    tx: &mut PgConnection,
    event: &StoredEvent,
) -> Result<(), StoreError> {
    let h = &event.header;
    sqlx::query(include_str!("../../../projections/audit_feed_apply.sql"))
        .bind(event.position.0)
        .bind(h.event_id.0)
        .bind(h.stream_id.to_string())
        .bind(h.stream_id.stream_type().as_str())
        .bind(h.event_type.as_str())
        .bind(h.metadata.actor_id)
        .bind(h.metadata.request_id.as_deref())
        .bind(h.recorded_at)
        .execute(tx)
        .await?;
    Ok(())
}

/// Applies `events` to the `audit_feed` read model in ONE statement
/// (`projections/audit_feed_apply_batch.sql`): the same rows as [`audit_feed_apply`] for
/// each event, idempotent. Nothing to do for an empty batch.
pub async fn audit_feed_apply_batch(
    tx: &mut PgConnection,
    events: &[&StoredEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len();
    let mut position = Vec::with_capacity(n);
    let mut event_id = Vec::with_capacity(n);
    let mut stream_id = Vec::with_capacity(n);
    let mut stream_type = Vec::with_capacity(n);
    let mut event_type = Vec::with_capacity(n);
    let mut actor_id = Vec::with_capacity(n);
    let mut request_id = Vec::with_capacity(n);
    let mut recorded_at = Vec::with_capacity(n);
    for event in events {
        let h = &event.header;
        position.push(event.position.0);
        event_id.push(h.event_id.0);
        stream_id.push(h.stream_id.to_string());
        stream_type.push(h.stream_id.stream_type().as_str());
        event_type.push(h.event_type.as_str());
        actor_id.push(h.metadata.actor_id);
        request_id.push(h.metadata.request_id.as_deref());
        recorded_at.push(h.recorded_at);
    }
    sqlx::query(include_str!(
        "../../../projections/audit_feed_apply_batch.sql"
    ))
    .bind(position)
    .bind(event_id)
    .bind(stream_id)
    .bind(stream_type)
    .bind(event_type)
    .bind(actor_id)
    .bind(request_id)
    .bind(recorded_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// How many positions the checkpoint of `projection` is behind the head of the log (for
/// metrics; positions, not events: rolled-back positions count too).
pub async fn lag(db: impl PgExecutor<'_>, projection: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(include_str!("../sql/projector_lag.sql"))
        .bind(projection)
        .fetch_one(db)
        .await?)
}

/// A projector's own session for one projection under one NATS prefix: a dedicated
/// connection (outside the pool) holding the session advisory lock
/// `hashtext('carelog.projector.' || prefix || '.' || name)` while the projector is the
/// active one. The lock lives and dies with the session, like the relay's
/// ([`crate::relay::RelaySession`]).
pub struct ProjectorSession {
    conn: sqlx::PgConnection,
    prefix: String,
    name: String,
}

impl std::fmt::Debug for ProjectorSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectorSession")
            .field("prefix", &self.prefix)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ProjectorSession {
    /// Opens a dedicated connection with the pool's settings.
    pub async fn open(pool: &sqlx::PgPool, prefix: &str, name: &str) -> Result<Self, StoreError> {
        use sqlx::Connection;
        let conn = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Tries, without waiting, to become the active projector of this projection and
    /// prefix. True when this session holds the lock (again).
    pub async fn try_lock(&mut self) -> Result<bool, StoreError> {
        use sqlx::Row;
        let row = sqlx::query(include_str!("../sql/projector_try_lock.sql"))
            .bind(&self.prefix)
            .bind(&self.name)
            .fetch_one(&mut self.conn)
            .await?;
        Ok(row.try_get::<bool, _>("locked")?)
    }

    /// Checks the session is still alive (and with it the lock, if held).
    pub async fn ping(&mut self) -> Result<(), StoreError> {
        use sqlx::Connection;
        self.conn.ping().await?;
        Ok(())
    }

    /// Closes the session, releasing the lock.
    pub async fn close(self) {
        use sqlx::Connection;
        let _ = self.conn.close().await;
    }
}

/// Runs a projection's fixed rebuild script (several statements, no parameters).
pub async fn rebuild_script(
    db: impl PgExecutor<'_>,
    script: &'static str,
) -> Result<(), StoreError> {
    sqlx::raw_sql(script).execute(db).await?;
    Ok(())
}

/// Within `tx`, makes unqualified read-model tables resolve to the rebuild twins.
pub async fn rebuild_search_path(tx: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/projector_rebuild_search_path.sql"))
        .execute(tx)
        .await?;
    Ok(())
}

/// Appends `events` to the `audit_feed` read model in ONE `COPY … FROM STDIN` in binary
/// format (`projections/audit_feed_copy.sql`): the same rows as [`audit_feed_apply`] for
/// each event, for a rebuild's batches. Not idempotent: a row already there fails the
/// whole batch (a rebuild never applies an event twice). Nothing to do for an empty batch.
pub async fn audit_feed_copy(
    tx: &mut PgConnection,
    events: &[&StoredEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let data = audit_feed_copy_data(events);
    let mut copy = tx
        .copy_in_raw(include_str!("../../../projections/audit_feed_copy.sql"))
        .await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort("carelog: sending the rows failed").await;
        return Err(e.into());
    }
    copy.finish().await?;
    Ok(())
}

/// The binary `COPY` stream of `audit_feed` rows for `events`: signature, flags and
/// header extension, then per row its 8 fields (length-prefixed, -1 for NULL), then the
/// trailer.
fn audit_feed_copy_data(events: &[&StoredEvent]) -> Vec<u8> {
    use std::fmt::Write as _;
    /// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    fn optional(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            Some(bytes) => field(out, bytes),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let mut out = Vec::with_capacity(19 + events.len() * 200 + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    let mut stream_id = String::with_capacity(64);
    for event in events {
        let h = &event.header;
        out.extend_from_slice(&8i16.to_be_bytes());
        field(&mut out, &event.position.0.to_be_bytes());
        field(&mut out, h.event_id.0.as_bytes());
        stream_id.clear();
        let _ = write!(stream_id, "{}", h.stream_id);
        field(&mut out, stream_id.as_bytes());
        field(&mut out, h.stream_id.stream_type().as_str().as_bytes());
        field(&mut out, h.event_type.as_str().as_bytes());
        optional(
            &mut out,
            h.metadata.actor_id.as_ref().map(|a| &a.as_bytes()[..]),
        );
        optional(
            &mut out,
            h.metadata.request_id.as_deref().map(str::as_bytes),
        );
        let micros = h.recorded_at.timestamp_micros() - PG_EPOCH_MICROS;
        field(&mut out, &micros.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}
