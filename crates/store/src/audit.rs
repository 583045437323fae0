//! Audit queries (API.md "Audit"): the entries of the `audit_feed` read model
//! (`projections/audit_feed.sql`), filtered and scoped; the log itself, in order, is
//! read with [`crate::read::all`] (gap-safe).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::StoreError;

/// One audit entry: metadata and what the projection derived from it. No PHI.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    /// The event's global position.
    pub position: i64,
    /// The event id (the entry's id).
    pub event_id: Uuid,
    /// The event's stream.
    pub stream_id: String,
    /// The event type.
    pub event_type: String,
    /// Who.
    pub actor_id: Option<Uuid>,
    /// The roles they acted with.
    pub roles: Vec<String>,
    /// The organisation they acted within.
    pub org_id: Option<Uuid>,
    /// What.
    pub action: String,
    /// To what kind of resource.
    pub resource_type: String,
    /// Which one.
    pub resource_id: Option<String>,
    /// success, denied or failure.
    pub outcome: String,
    /// `X-Request-Id`.
    pub request_id: Option<String>,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The service that recorded it.
    pub service: Option<String>,
    /// The endpoint or CLI command.
    pub endpoint: Option<String>,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Under emergency access.
    pub emergency: bool,
}

/// The entry of a row as the `audit_feed` projection derives it (the feed answers from
/// the log with the projection's own derivation, so both views agree).
impl From<crate::projector::AuditFeedRow> for AuditEntry {
    fn from(r: crate::projector::AuditFeedRow) -> Self {
        Self {
            position: r.position,
            event_id: r.event_id,
            stream_id: r.stream_id,
            event_type: r.event_type,
            actor_id: r.actor_id,
            roles: r.roles,
            org_id: r.org_id,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            outcome: r.outcome,
            request_id: r.request_id,
            ip: r.ip,
            user_agent: r.user_agent,
            service: r.service,
            endpoint: r.endpoint,
            recorded_at: r.recorded_at,
            emergency: r.emergency,
        }
    }
}

/// Which entries: every given field must match exactly (`None`: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// create, read, update, login, ...
    pub action: Option<String>,
    /// patient, clinical_record, user, ...
    pub resource_type: Option<String>,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// The actor.
    pub actor_id: Option<Uuid>,
    /// success, denied or failure.
    pub outcome: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// At or before.
    pub to: Option<DateTime<Utc>>,
    /// Scope: `None` platform-wide; else entries within these organisations and entries
    /// about their patients and records.
    pub orgs: Option<Vec<Uuid>>,
}

fn bind_filter<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    f: &'q AuditFilter,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    q.bind(f.action.as_deref())
        .bind(f.resource_type.as_deref())
        .bind(f.resource_id.as_deref())
        .bind(f.actor_id)
        .bind(f.outcome.as_deref())
        .bind(f.from)
        .bind(f.to)
        .bind(f.orgs.as_deref())
}

/// One page of the entries matching `filter`, in log order (`crates/store/sql/audit_search.sql`).
pub async fn search(
    db: impl PgExecutor<'_>,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let q = bind_filter(sqlx::query(include_str!("../sql/audit_search.sql")), filter)
        .bind(limit)
        .bind(offset);
    let rows = q.fetch_all(db).await?;
    rows.iter()
        .map(|r| <AuditEntry as sqlx::FromRow<_>>::from_row(r).map_err(StoreError::from))
        .collect()
}

/// How many entries match `filter` (`crates/store/sql/audit_search_count.sql`).
pub async fn count(db: impl PgExecutor<'_>, filter: &AuditFilter) -> Result<i64, StoreError> {
    use sqlx::Row as _;
    let row = bind_filter(
        sqlx::query(include_str!("../sql/audit_search_count.sql")),
        filter,
    )
    .fetch_one(db)
    .await?;
    Ok(row.try_get(0)?)
}
