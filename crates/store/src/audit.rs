//! Audit queries (API.md "Audit"): the entries of the `audit_feed` read model
//! (`projections/audit_feed.sql`), filtered and scoped; the log itself, in order, is
//! read with [`crate::read::all`] (gap-safe).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
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

/// The most an audit list counts exactly: beyond it the total is "more than this"
/// ([`Total::exact`] false). Counting stops there, so a broad filter over a large feed
/// costs the reading of this many index entries, not of the whole table.
pub const TOTAL_CAP: i64 = 10_000;

/// How many entries match a filter, counted up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    /// The number of matching entries, or the cap when there are more.
    pub value: i64,
    /// Whether `value` is the number of matching entries (false: there are more).
    pub exact: bool,
}

impl Total {
    /// The total of `counted` matches (at most `cap + 1` of them were counted).
    pub fn capped(counted: i64, cap: i64) -> Self {
        Self {
            value: counted.min(cap),
            exact: counted <= cap,
        }
    }
}

/// One page of the matching entries (`$9` limit, `$10` offset; with a date range, `$11`
/// and `$12` its bounds from [`SPAN_BOUNDS_SQL`]): `audit_filter.sql` (a `WITH matched
/// AS (…)` clause of the entries a filter matches, parameters `$1..$8`: the one place of
/// the filter) then `audit_search.sql`.
pub const SEARCH_SQL: &str = concat!(
    include_str!("../sql/audit_filter.sql"),
    include_str!("../sql/audit_search.sql")
);

/// The positions a date range's entries lie between (`$1` from, `$2` to), from the spans
/// of `audit_feed_spans`: `audit_span_bounds.sql`.
pub const SPAN_BOUNDS_SQL: &str = include_str!("../sql/audit_span_bounds.sql");

/// How many entries match, counting at most `$9 + 1`: `audit_filter.sql` then
/// `audit_search_count.sql`.
pub const COUNT_SQL: &str = concat!(
    include_str!("../sql/audit_filter.sql"),
    include_str!("../sql/audit_search_count.sql")
);

/// How [`page`] begins its transaction: one read-only snapshot for the count and the
/// page.
pub const PAGE_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// The total (counted up to `cap`, as [`count`]) and one page of the entries matching
/// `filter`, as the API answers a list: both in one read-only repeatable-read snapshot,
/// so the page agrees with the total even while the projection writes (an auditor's own
/// query is an access event, which may be projected between two statements).
pub async fn page(
    db: &PgPool,
    filter: &AuditFilter,
    cap: i64,
    limit: i64,
    offset: i64,
) -> Result<(Total, Vec<AuditEntry>), StoreError> {
    let mut tx = db.begin_with(PAGE_BEGIN).await?;
    let total = count(&mut *tx, filter, cap).await?;
    let entries = search(&mut tx, filter, limit, offset).await?;
    tx.commit().await?;
    Ok((total, entries))
}

/// One page of the entries matching `filter`, in log order ([`SEARCH_SQL`]).
///
/// The statement is not kept prepared: it is planned with its parameters each time, so
/// the filters not given fold away and the plan uses the indexes of the ones given (a
/// generic plan, which PostgreSQL may switch a prepared statement to, could not). With a
/// date range the range's bounds ([`SPAN_BOUNDS_SQL`]) are read by a first statement and
/// planned with as values too: call it in a repeatable-read transaction (as [`page`]
/// does) for both statements to see one snapshot.
pub async fn search(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let bounds: (Option<i64>, Option<i64>) = if filter.from.is_none() && filter.to.is_none() {
        (None, None)
    } else {
        sqlx::query_as(SPAN_BOUNDS_SQL)
            .bind(filter.from)
            .bind(filter.to)
            .fetch_one(&mut *conn)
            .await?
    };
    let rows = bind_filter(sqlx::query(SEARCH_SQL).persistent(false), filter)
        .bind(limit)
        .bind(offset)
        .bind(bounds.0)
        .bind(bounds.1)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| <AuditEntry as sqlx::FromRow<_>>::from_row(r).map_err(StoreError::from))
        .collect()
}

/// How many entries match `filter`, exactly up to `cap` ([`COUNT_SQL`]; the API uses
/// [`TOTAL_CAP`]). Planned with its parameters each time, as [`search`].
pub async fn count(
    db: impl PgExecutor<'_>,
    filter: &AuditFilter,
    cap: i64,
) -> Result<Total, StoreError> {
    use sqlx::Row as _;
    let cap = cap.max(0);
    let row = bind_filter(sqlx::query(COUNT_SQL).persistent(false), filter)
        .bind(cap)
        .fetch_one(db)
        .await?;
    Ok(Total::capped(row.try_get(0)?, cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILTER_SQL: &str = include_str!("../sql/audit_filter.sql");

    #[test]
    fn a_count_over_the_cap_is_the_cap_and_not_exact() {
        assert_eq!(
            Total::capped(0, 10),
            Total {
                value: 0,
                exact: true
            }
        );
        assert_eq!(
            Total::capped(10, 10),
            Total {
                value: 10,
                exact: true
            }
        );
        assert_eq!(
            Total::capped(11, 10),
            Total {
                value: 10,
                exact: false
            }
        );
    }

    #[test]
    fn both_statements_follow_the_one_filter() {
        for sql in [SEARCH_SQL, COUNT_SQL] {
            assert!(sql.starts_with(FILTER_SQL));
            let rest = &sql[FILTER_SQL.len()..];
            assert!(!rest.contains("audit_feed f\n"), "a second filter:\n{rest}");
            assert!(rest.contains("FROM matched"));
        }
        // The filter's parameters, then the statement's own.
        assert!(FILTER_SQL.contains("$8") && !FILTER_SQL.contains("$9"));
        assert!(COUNT_SQL.contains("$9") && !COUNT_SQL.contains("$10"));
        assert!(SEARCH_SQL.contains("$12") && !SEARCH_SQL.contains("$13"));
    }
}
