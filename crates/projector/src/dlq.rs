//! The dead-letter queue of the projections (`dlq_entries`): what the admin API and the
//! CLI list, retry and discard.
//!
//! - [`retry`]: re-applies the failed event, then the events of its stream waiting behind
//!   it, in position order, in one transaction that deletes their entries. When the
//!   failed event fails again, only its entry changes (attempts + 1, error, time).
//! - [`discard`]: deletes the failed entry (the event is never applied) and releases the
//!   waiting ones as [`retry`] does after a success.
//!
//! Both are commands of an [`Operator`]: in the same transaction they append
//! `DlqEntryRetried` / `DlqEntryDiscarded` (schemas/v1) to the operations stream with the
//! operator's [`Metadata`] (who, which request, which command) and reason (why, optional,
//! at most [`MAX_REASON`] characters). The payload names the projection, event id and
//! position; the reason is free text, sealed like every payload under the `system` key.
//!
//! Notices: when the operator gives a [`NoticePublisher`], both also publish, after their
//! transaction commits, notices on `<prefix>DLQ` ([`carelog_bus::dead_letter`]):
//! `retried` or `discarded` for the settled entry, `released` for each waiting event
//! applied, `failed` for a waiting event that failed in turn or a retried event that
//! failed again. Best effort: PostgreSQL is the record; a NATS failure is logged and the
//! operation's result stands.
//!
//! When a waiting event fails while being released, it becomes its stream's failed entry
//! (attempts 1, its error) and the later ones keep waiting behind it; the events before
//! it stay applied.

use carelog_bus::dead_letter::{DeadLetterNotice, NoticePublisher, NoticeStatus};
use carelog_domain::operations::operations_stream;
use carelog_domain::{EventId, EventType, Metadata, NewEvent, SchemaVersion, SubjectId};
use carelog_store::projector::{self as pstore, DlqEntry, DlqStatus};
use carelog_store::{AppendError, AppendRequest, EventStore, Expected, StoreError};
use serde_json::json;
use sqlx::{Acquire, PgConnection, PgPool};
use uuid::Uuid;

use crate::{ApplyError, Projection};

/// Longest reason an operator may give, in characters.
pub const MAX_REASON: usize = 500;

/// Who retries or discards a dead letter, why, and where the notices go.
#[derive(Debug, Clone)]
pub struct Operator<'a> {
    /// Who (the audit event's metadata).
    pub metadata: Metadata,
    /// Why, if they said (trimmed; blank is none; at most [`MAX_REASON`] characters).
    pub reason: Option<String>,
    /// Where to publish the notices (`None`: no NATS handle, none published).
    pub notices: Option<&'a NoticePublisher>,
}

impl Operator<'_> {
    /// The reason to record: trimmed, `None` when blank; refused when too long or when
    /// it holds control characters other than line breaks.
    fn reason(&self) -> Result<Option<String>, DlqError> {
        let Some(reason) = self.reason.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if reason.is_empty() {
            return Ok(None);
        }
        if reason.chars().count() > MAX_REASON
            || reason
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(DlqError::BadReason);
        }
        Ok(Some(reason.to_owned()))
    }
}

/// Why a DLQ operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The reason is too long or holds control characters.
    #[error("reason must be at most 500 characters of text")]
    BadReason,
    /// No entry with this id.
    #[error("no dead letter with this id")]
    NotFound,
    /// The entry belongs to another projection than the one given.
    #[error("this dead letter belongs to projection {0}")]
    WrongProjection(String),
    /// The entry is waiting behind a failed one: retry or discard that one.
    #[error("this event waits behind its stream's failed event; retry or discard that one")]
    NotFailed,
    /// The retried event failed again (its entry records the attempt).
    #[error("the event still cannot be applied: {0}")]
    StillFailing(ApplyError),
    /// PostgreSQL failed while applying (nothing changed; try again).
    #[error("{0}")]
    Unavailable(ApplyError),
    /// The event of the entry is not in the log.
    #[error("the event of this dead letter is not in the log")]
    EventMissing,
    /// PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit event could not be appended (nothing changed).
    #[error(transparent)]
    Append(#[from] AppendError),
}

impl From<sqlx::Error> for DlqError {
    fn from(e: sqlx::Error) -> Self {
        DlqError::Store(StoreError::Database(e))
    }
}

/// What a retry or discard did to the stream's waiting events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// Waiting events applied (and their entries deleted), in position order.
    pub applied: usize,
    /// The waiting event that failed in turn and is now the stream's failed entry.
    pub failed: Option<Uuid>,
    /// The event appended to the operations stream.
    pub audit_event: EventId,
}

/// Dead letters of `projection` (or of every projection), in position order.
pub async fn list(pool: &PgPool, projection: Option<&str>) -> Result<Vec<DlqEntry>, StoreError> {
    pstore::dlq_list(pool, projection).await
}

/// How many events are set aside (failed and waiting), every projection together.
pub async fn depth(pool: &PgPool) -> Result<i64, StoreError> {
    pstore::dlq_depth(pool).await
}

/// Re-applies the failed event `id`, then its stream's waiting events, as `operator`;
/// see the module documentation.
pub async fn retry(
    pool: &PgPool,
    store: &EventStore,
    projection: &dyn Projection,
    id: Uuid,
    operator: Operator<'_>,
) -> Result<Released, DlqError> {
    let reason = operator.reason()?;
    let name = projection.name();
    let mut tx = pool.begin().await?;
    let entry = take_failed(&mut tx, name, id).await?;
    let event = pstore::read_event(&mut *tx, entry.event_id)
        .await?
        .ok_or(DlqError::EventMissing)?;
    if let Err(error) = apply_in_savepoint(&mut tx, store, projection, &event).await? {
        tx.rollback().await?;
        pstore::dlq_failed_again(pool, id, error.message()).await?;
        if let Some(publisher) = operator.notices {
            let failed = [(id, event.header.event_type.clone())];
            publisher.publish(&reread(pool, name, &failed).await).await;
        }
        return Err(DlqError::StillFailing(error));
    }
    let kind = Settled {
        audit_type: "DlqEntryRetried",
        status: NoticeStatus::Retried,
    };
    let event_type = Some(event.header.event_type.clone());
    settle(
        pool, tx, store, projection, &entry, event_type, kind, operator, reason,
    )
    .await
}

/// Deletes the failed entry `id` without applying its event, then releases its stream's
/// waiting events, as `operator`; see the module documentation.
pub async fn discard(
    pool: &PgPool,
    store: &EventStore,
    projection: &dyn Projection,
    id: Uuid,
    operator: Operator<'_>,
) -> Result<Released, DlqError> {
    let reason = operator.reason()?;
    let name = projection.name();
    let mut tx = pool.begin().await?;
    let entry = take_failed(&mut tx, name, id).await?;
    // Only the notice needs the event's type (a discard never applies the event).
    let event_type = match operator.notices {
        Some(_) => pstore::read_event(&mut *tx, entry.event_id)
            .await?
            .map(|e| e.header.event_type),
        None => None,
    };
    let kind = Settled {
        audit_type: "DlqEntryDiscarded",
        status: NoticeStatus::Discarded,
    };
    settle(
        pool, tx, store, projection, &entry, event_type, kind, operator, reason,
    )
    .await
}

/// How an entry was settled: its audit event and its notice.
struct Settled {
    audit_type: &'static str,
    status: NoticeStatus,
}

/// The end of a retry or discard: deletes the entry, releases its stream's waiting
/// events, records who did it and why, commits; then publishes the notices (when the
/// operator gave a publisher; `event_type` is the settled event's type, `None` to skip
/// its notice).
#[allow(clippy::too_many_arguments)]
async fn settle(
    pool: &PgPool,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    store: &EventStore,
    projection: &dyn Projection,
    entry: &DlqEntry,
    event_type: Option<EventType>,
    kind: Settled,
    operator: Operator<'_>,
    reason: Option<String>,
) -> Result<Released, DlqError> {
    pstore::dlq_delete(&mut tx, entry.id).await?;
    let outcome = release(&mut tx, store, projection, &entry.stream_id).await?;
    let audit_event = audit(
        &mut tx,
        store,
        kind.audit_type,
        entry,
        operator.metadata,
        reason,
    )
    .await?;
    tx.commit().await?;
    if let Some(publisher) = operator.notices {
        let mut out = Vec::with_capacity(outcome.applied.len() + 2);
        if let Some(ty) = event_type {
            out.push(DeadLetterNotice::new(entry, ty, kind.status));
        }
        for (e, ty) in &outcome.applied {
            out.push(DeadLetterNotice::new(e, ty.clone(), NoticeStatus::Released));
        }
        if let Some((e, ty)) = &outcome.failed {
            out.extend(reread(pool, projection.name(), &[(e.id, ty.clone())]).await);
        }
        publisher.publish(&out).await;
    }
    Ok(Released {
        applied: outcome.applied.len(),
        failed: outcome.failed.map(|(e, _)| e.id),
        audit_event,
    })
}

/// The notices of the entries `ids` (with their events' types) as committed; entries
/// gone or unreadable are left out (logged).
async fn reread(
    pool: &PgPool,
    projection: &str,
    ids: &[(Uuid, EventType)],
) -> Vec<DeadLetterNotice> {
    match pstore::dlq_list(pool, Some(projection)).await {
        Ok(entries) => entries
            .iter()
            .filter_map(|e| {
                let (_, ty) = ids.iter().find(|(id, _)| *id == e.id)?;
                Some(DeadLetterNotice::of_entry(e, ty.clone()))
            })
            .collect(),
        Err(e) => {
            tracing::warn!(projection, error = %e, "cannot read back dead letters; their notices are not published");
            Vec::new()
        }
    }
}

/// Locks the projection (against its runtime's batches) and the entry; checks it is a
/// failed entry of `name`.
async fn take_failed(tx: &mut PgConnection, name: &str, id: Uuid) -> Result<DlqEntry, DlqError> {
    pstore::lock(tx, name).await?;
    let entry = pstore::dlq_get(tx, id).await?.ok_or(DlqError::NotFound)?;
    if entry.projection != name {
        return Err(DlqError::WrongProjection(entry.projection));
    }
    if entry.status != DlqStatus::Failed {
        return Err(DlqError::NotFailed);
    }
    Ok(entry)
}

/// Applies `event` in a savepoint of `tx`: a failure of the projection rolls back only
/// what it did.
async fn apply_in_savepoint(
    tx: &mut PgConnection,
    store: &EventStore,
    projection: &dyn Projection,
    event: &carelog_store::StoredEvent,
) -> Result<Result<(), ApplyError>, DlqError> {
    let opened = match crate::open_one(store.vault(), event, projection.payload_filter()).await {
        Ok(o) => o,
        Err(StoreError::Database(e)) => return Err(e.into()),
        Err(e) => return Ok(Err(ApplyError::from(e))),
    };
    let mut sp = tx.begin().await?;
    match projection.apply(&mut sp, event, &opened).await {
        Ok(()) => {
            sp.commit().await?;
            Ok(Ok(()))
        }
        Err(error) if error.is_transient() => Err(DlqError::Unavailable(error)),
        Err(error) => {
            sp.rollback().await?;
            Ok(Err(error))
        }
    }
}

/// What [`release`] did: the waiting entries applied (and deleted), in position order,
/// and the one that failed in turn (as it was before), each with its event's type.
struct ReleaseOutcome {
    applied: Vec<(DlqEntry, EventType)>,
    failed: Option<(DlqEntry, EventType)>,
}

/// Applies the waiting events of `stream_id` in position order and deletes their
/// entries, until one fails (it becomes the failed entry).
async fn release(
    tx: &mut PgConnection,
    store: &EventStore,
    projection: &dyn Projection,
    stream_id: &str,
) -> Result<ReleaseOutcome, DlqError> {
    let waiting = pstore::dlq_waiting(tx, projection.name(), stream_id).await?;
    let mut applied = Vec::new();
    for entry in waiting {
        let event = pstore::read_event(&mut *tx, entry.event_id)
            .await?
            .ok_or(DlqError::EventMissing)?;
        let event_type = event.header.event_type.clone();
        match apply_in_savepoint(tx, store, projection, &event).await? {
            Ok(()) => {
                pstore::dlq_delete(tx, entry.id).await?;
                applied.push((entry, event_type));
            }
            Err(error) => {
                pstore::dlq_failed_again(&mut *tx, entry.id, error.message()).await?;
                return Ok(ReleaseOutcome {
                    applied,
                    failed: Some((entry, event_type)),
                });
            }
        }
    }
    Ok(ReleaseOutcome {
        applied,
        failed: None,
    })
}

/// Appends the audit event of a retry or discard to the operations stream, in `tx`.
async fn audit(
    tx: &mut PgConnection,
    store: &EventStore,
    event_type: &str,
    entry: &DlqEntry,
    metadata: Metadata,
    reason: Option<String>,
) -> Result<EventId, DlqError> {
    let event = dlq_event(event_type, entry, metadata, reason);
    let id = event.event_id;
    store
        .append_in_tx(
            tx,
            AppendRequest {
                stream: operations_stream(),
                expected: Expected::Any,
                events: vec![event],
            },
        )
        .await?;
    Ok(id)
}

/// `DlqEntryRetried` / `DlqEntryDiscarded` (schemas/v1).
fn dlq_event(
    event_type: &str,
    entry: &DlqEntry,
    metadata: Metadata,
    reason: Option<String>,
) -> NewEvent {
    let mut payload = json!({
        "projection": entry.projection,
        "event_id": entry.event_id.0,
        "position": entry.position.0,
    });
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    NewEvent {
        event_id: EventId::new_v7(),
        event_type: EventType::try_from(event_type).expect("valid event type"),
        schema_version: SchemaVersion(1),
        subject: SubjectId::system(),
        payload,
        metadata,
    }
}
