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

/// What a batch is decided on, read in `tx` after [`lock`] in one round trip: the
/// checkpoint before the batch (as [`checkpoint`]) and which of `stream_ids` have dead
/// letters in `projection` (their events must wait). The same statement moves the
/// checkpoint to `last`, the batch's last position (never backwards, as
/// [`save_checkpoint`]): it commits with the batch's effects, or rolls back with them.
pub async fn batch_state(
    tx: &mut PgConnection,
    projection: &str,
    stream_ids: &[String],
    last: Position,
) -> Result<(Position, std::collections::HashSet<String>), StoreError> {
    let (checkpoint, blocked): (Option<i64>, Vec<String>) =
        sqlx::query_as(include_str!("../sql/projector_batch_state.sql"))
            .bind(projection)
            .bind(stream_ids)
            .bind(last.0)
            .fetch_one(tx)
            .await?;
    Ok((
        Position(checkpoint.unwrap_or(0)),
        blocked.into_iter().collect(),
    ))
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

/// One row of the `audit_feed` read model (`projections/audit_feed.sql`): the event's
/// clear header plus what the projection derived (action, resource, outcome, ...). No PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFeedRow {
    /// The event's global position.
    pub position: i64,
    /// The event id.
    pub event_id: Uuid,
    /// `<type>-<uuid>`.
    pub stream_id: String,
    /// The stream's type.
    pub stream_type: &'static str,
    /// The event type.
    pub event_type: String,
    /// Who.
    pub actor_id: Option<Uuid>,
    /// `X-Request-Id` or the CLI invocation id.
    pub request_id: Option<String>,
    /// When it was stored.
    pub recorded_at: DateTime<Utc>,
    /// The roles the actor acted with (names hold no comma).
    pub roles: Vec<String>,
    /// The organisation the actor acted within.
    pub org_id: Option<Uuid>,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// create, read, update, login, ...
    pub action: String,
    /// patient, clinical_record, user, ...
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// success, denied or failure.
    pub outcome: String,
    /// The endpoint or CLI command.
    pub endpoint: Option<String>,
    /// The service that recorded it (api, cli, client, ...).
    pub service: Option<String>,
    /// Under emergency ("break-glass") access.
    pub emergency: bool,
}

/// Applies one row to the `audit_feed` read model (`projections/audit_feed_apply.sql`):
/// idempotent.
pub async fn audit_feed_apply(tx: &mut PgConnection, row: &AuditFeedRow) -> Result<(), StoreError> {
    sqlx::query(include_str!("../../../projections/audit_feed_apply.sql"))
        .bind(row.position)
        .bind(row.event_id)
        .bind(&row.stream_id)
        .bind(row.stream_type)
        .bind(&row.event_type)
        .bind(row.actor_id)
        .bind(row.request_id.as_deref())
        .bind(row.recorded_at)
        .bind(&row.roles)
        .bind(row.org_id)
        .bind(row.ip.as_deref())
        .bind(row.user_agent.as_deref())
        .bind(&row.action)
        .bind(&row.resource_type)
        .bind(row.resource_id.as_deref())
        .bind(&row.outcome)
        .bind(row.endpoint.as_deref())
        .bind(row.service.as_deref())
        .bind(row.emergency)
        .execute(tx)
        .await?;
    Ok(())
}

/// Applies `rows` to the `audit_feed` read model in ONE statement
/// (`projections/audit_feed_apply_batch.sql`): the same rows as [`audit_feed_apply`],
/// idempotent. Nothing to do for an empty batch.
pub async fn audit_feed_apply_batch(
    tx: &mut PgConnection,
    rows: &[AuditFeedRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    fn text<'a>(
        rows: &'a [AuditFeedRow],
        f: impl Fn(&'a AuditFeedRow) -> Option<&'a str>,
    ) -> Vec<Option<&'a str>> {
        rows.iter().map(f).collect()
    }
    let col = |f: fn(&AuditFeedRow) -> Option<&str>| text(rows, f);
    sqlx::query(include_str!(
        "../../../projections/audit_feed_apply_batch.sql"
    ))
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
    .bind(col(|r| Some(r.stream_id.as_str())))
    .bind(col(|r| Some(r.stream_type)))
    .bind(col(|r| Some(r.event_type.as_str())))
    .bind(rows.iter().map(|r| r.actor_id).collect::<Vec<_>>())
    .bind(col(|r| r.request_id.as_deref()))
    .bind(rows.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.roles.join(",")).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.org_id).collect::<Vec<_>>())
    .bind(col(|r| r.ip.as_deref()))
    .bind(col(|r| r.user_agent.as_deref()))
    .bind(col(|r| Some(r.action.as_str())))
    .bind(col(|r| Some(r.resource_type.as_str())))
    .bind(col(|r| r.resource_id.as_deref()))
    .bind(col(|r| Some(r.outcome.as_str())))
    .bind(col(|r| r.endpoint.as_deref()))
    .bind(col(|r| r.service.as_deref()))
    .bind(rows.iter().map(|r| r.emergency).collect::<Vec<_>>())
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

    /// The session's connection, for the work done under its lock: a projector applies
    /// its batches here, so a batch cannot commit once the lock is lost with the
    /// session, and no batch pays for a pooled connection (a ping when taken, another
    /// when given back).
    pub fn connection(&mut self) -> &mut sqlx::PgConnection {
        &mut self.conn
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

/// Appends `rows` to the `audit_feed` read model in ONE `COPY … FROM STDIN` in binary
/// format (`projections/audit_feed_copy.sql`): the same rows as [`audit_feed_apply`], for
/// a rebuild's batches. Not idempotent: a row already there fails the whole batch (a
/// rebuild never applies an event twice). Nothing to do for an empty batch.
pub async fn audit_feed_copy(
    tx: &mut PgConnection,
    rows: &[AuditFeedRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let data = audit_feed_copy_data(rows);
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

/// The binary `COPY` stream of `audit_feed` rows: signature, flags and header extension,
/// then per row its 19 fields (length-prefixed, -1 for NULL), then the trailer.
fn audit_feed_copy_data(rows: &[AuditFeedRow]) -> Vec<u8> {
    /// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    /// The type oid of `text`, the element type of `roles`.
    const TEXT_OID: u32 = 25;
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
    /// A one-dimensional `text[]` in binary form (an empty one has no dimension).
    fn text_array(out: &mut Vec<u8>, items: &[String]) {
        let mut a = Vec::with_capacity(20 + items.iter().map(|i| i.len() + 4).sum::<usize>());
        let ndim: i32 = if items.is_empty() { 0 } else { 1 };
        a.extend_from_slice(&ndim.to_be_bytes());
        a.extend_from_slice(&0i32.to_be_bytes());
        a.extend_from_slice(&TEXT_OID.to_be_bytes());
        if !items.is_empty() {
            a.extend_from_slice(&(items.len() as i32).to_be_bytes());
            a.extend_from_slice(&1i32.to_be_bytes());
            for item in items {
                field(&mut a, item.as_bytes());
            }
        }
        field(out, &a);
    }
    let mut out = Vec::with_capacity(19 + rows.len() * 400 + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    for r in rows {
        out.extend_from_slice(&19i16.to_be_bytes());
        field(&mut out, &r.position.to_be_bytes());
        field(&mut out, r.event_id.as_bytes());
        field(&mut out, r.stream_id.as_bytes());
        field(&mut out, r.stream_type.as_bytes());
        field(&mut out, r.event_type.as_bytes());
        optional(&mut out, r.actor_id.as_ref().map(|a| &a.as_bytes()[..]));
        optional(&mut out, r.request_id.as_deref().map(str::as_bytes));
        let micros = r.recorded_at.timestamp_micros() - PG_EPOCH_MICROS;
        field(&mut out, &micros.to_be_bytes());
        text_array(&mut out, &r.roles);
        optional(&mut out, r.org_id.as_ref().map(|a| &a.as_bytes()[..]));
        optional(&mut out, r.ip.as_deref().map(str::as_bytes));
        optional(&mut out, r.user_agent.as_deref().map(str::as_bytes));
        field(&mut out, r.action.as_bytes());
        field(&mut out, r.resource_type.as_bytes());
        optional(&mut out, r.resource_id.as_deref().map(str::as_bytes));
        field(&mut out, r.outcome.as_bytes());
        optional(&mut out, r.endpoint.as_deref().map(str::as_bytes));
        optional(&mut out, r.service.as_deref().map(str::as_bytes));
        field(&mut out, &[u8::from(r.emergency)]);
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}
