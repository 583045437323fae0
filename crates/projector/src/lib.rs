//! carelog's projectors: each projection is applied by a durable JetStream pull consumer
//! (`<prefix>proj_<name>` on `<prefix>EVENTS`), batch by batch, in one PostgreSQL
//! transaction together with its checkpoint (DESIGN.md invariant 7), and the events it
//! cannot apply go to a dead-letter queue while the other streams keep flowing
//! (invariant 8).
//!
//! What it owns:
//! - [`Projection`]: what a read model implements (`name`, `apply`, optionally
//!   `apply_batch`).
//! - [`Projector`]: the runtime of one projection ([`runtime`] documents the algorithm).
//! - [`dlq`]: listing, retrying and discarding dead letters (audited by events).
//! - [`audit_feed`]: the `audit_feed` read model (`projections/audit_feed.sql`).
//! - [`patients`], [`clinical_records`]: the clinical read models; [`schemas`] creates
//!   their tables.
//!
//! What it must not do: write SQL of its own (every statement is a carelog-store function
//! over `crates/store/sql/` or `projections/`), or store PHI in an error.

pub mod audit_feed;
mod change;
pub mod clinical_records;
pub mod dlq;
pub mod patients;
pub mod rebuild;
pub mod runtime;
pub mod schemas;

use std::future::Future;
use std::pin::Pin;

use carelog_store::{Opened, StoreError, StoredEvent};
use sqlx::PgConnection;

pub use audit_feed::AuditFeed;
pub use clinical_records::ClinicalRecords;
pub use dlq::DlqError;
pub use patients::Patients;
pub use rebuild::{rebuild, RebuildError, RebuildReport, RebuildTimings};
pub use runtime::{Projector, ProjectorConfig};

/// Whether a projection reads an event's payload ([`Projection::payload_filter`]): a plain
/// function, so the rebuild's opening stage can take it along.
pub type PayloadFilter = fn(&StoredEvent) -> bool;

/// Whether `filter` lets `event`'s payload be opened.
pub fn reads_payload(filter: Option<PayloadFilter>, event: &StoredEvent) -> bool {
    filter.is_none_or(|f| f(event))
}

/// The payloads of `events` in order: those `filter` lets through from `opened` (opened
/// in the same order, one each), every other one [`Opened::Unread`].
pub(crate) fn with_unread(
    events: &[&StoredEvent],
    filter: Option<PayloadFilter>,
    opened: Vec<Opened>,
) -> Result<Vec<Opened>, StoreError> {
    let mut opened = opened.into_iter();
    events
        .iter()
        .map(|e| {
            if !reads_payload(filter, e) {
                return Ok(Opened::Unread);
            }
            opened.next().ok_or(StoreError::Corrupt {
                position: e.position.0,
                what: "a payload missing from its opened batch",
            })
        })
        .collect()
}

/// Opens `event`'s payload if `filter` lets it through, else [`Opened::Unread`].
pub(crate) async fn open_one(
    vault: &carelog_store::Vault,
    event: &StoredEvent,
    filter: Option<PayloadFilter>,
) -> Result<Opened, StoreError> {
    if reads_payload(filter, event) {
        vault.open(event).await
    } else {
        Ok(Opened::Unread)
    }
}

/// Opens the payloads of `events` that `filter` lets through (their keys in one query),
/// the others [`Opened::Unread`]; in order.
pub(crate) async fn open_filtered(
    vault: &carelog_store::Vault,
    events: &[&StoredEvent],
    filter: Option<PayloadFilter>,
) -> Result<Vec<Opened>, StoreError> {
    let wanted: Vec<&StoredEvent> = events
        .iter()
        .copied()
        .filter(|e| reads_payload(filter, e))
        .collect();
    let opened = vault.open_batch(&wanted).await?;
    with_unread(events, filter, opened)
}

/// A boxed future, for the object-safe [`Projection::apply`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a projection could not apply an event.
///
/// Its message is stored in `dlq_entries.error` and shown by the admin API, so it must
/// carry **no PHI**: the projection decides the message, and must name what failed (an
/// event type, a constraint, a SQLSTATE), never a payload value. [`ApplyError::database`]
/// keeps only the SQLSTATE and the constraint of a database error, never its message or
/// detail (which can quote values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApplyError {
    message: String,
    transient: bool,
}

impl ApplyError {
    /// An error with `message`, which must carry no PHI.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }

    /// An error of the infrastructure (PostgreSQL unreachable, pool exhausted), not of
    /// the event: the runtime retries it for ever without counting attempts, and never
    /// dead-letters an event for it.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }

    /// Whether this is an infrastructure failure ([`ApplyError::transient`]).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// A database error, reduced to its SQLSTATE and constraint (no values). An error
    /// the server did not answer with (connection, pool, protocol) is transient.
    pub fn database(e: &sqlx::Error) -> Self {
        match e.as_database_error() {
            Some(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                Self::new(match db.constraint() {
                    Some(c) => format!("database error SQLSTATE {code} on constraint {c}"),
                    None => format!("database error SQLSTATE {code}"),
                })
            }
            None => Self::transient("database unavailable"),
        }
    }

    /// The message (no PHI).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        Self::database(&e)
    }
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => Self::database(&e),
            // The store's messages carry no PHI (crates/store/src/error.rs).
            other => Self::new(other.to_string()),
        }
    }
}

/// Why [`Projection::apply_batch`] failed: the error, and the index in the batch of the
/// event that caused it when known (`None`: the batch failed as a whole, e.g. in one
/// multi-row statement).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct BatchApplyError {
    /// Which event of the batch failed, if known.
    pub index: Option<usize>,
    /// Why (no PHI).
    pub error: ApplyError,
}

/// A read model fed by the event log.
///
/// `apply` runs inside the projector's transaction (`tx`), which also advances the
/// checkpoint: it must only write through `tx`, and must be idempotent per event only
/// in the sense that rebuilding from position 0 reaches the same state (the runtime never
/// applies an event twice). `opened` is the payload opened with the subject's data key,
/// or [`Opened::Erased`] after an erasure — the projection decides what that means
/// (typically: keep the clear facts, forget the personal data).
///
/// Implementations are object-safe through [`BoxFuture`]:
///
/// ```ignore
/// fn apply<'a>(&'a self, tx: &'a mut PgConnection, event: &'a StoredEvent, opened: &'a Opened)
///     -> BoxFuture<'a, Result<(), ApplyError>> {
///     Box::pin(async move { /* ... */ Ok(()) })
/// }
/// ```
pub trait Projection: Send + Sync {
    /// Its name: lowercase letters, digits and `_` (it names the checkpoint row, the
    /// durable consumer and the dead letters).
    fn name(&self) -> &str;

    /// Applies one event within `tx`.
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a StoredEvent,
        opened: &'a Opened,
    ) -> BoxFuture<'a, Result<(), ApplyError>>;

    /// Applies several events within `tx`, in order, with the same effect as [`apply`]
    /// on each. The default does exactly that; a projection overrides it to write a
    /// whole batch in one statement (a rebuild hands it thousands of events at a time).
    /// On failure nothing of the batch may be kept (the caller rolls `tx` back); the
    /// error says which event failed when the projection knows.
    ///
    /// [`apply`]: Projection::apply
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        Box::pin(async move {
            for (index, (event, opened)) in events.iter().enumerate() {
                self.apply(&mut *tx, event, opened)
                    .await
                    .map_err(|error| BatchApplyError {
                        index: Some(index),
                        error,
                    })?;
            }
            Ok(())
        })
    }

    /// How to rebuild it ([`rebuild()`]): fixed SQL that creates empty twins of its tables
    /// in the schema `carelog_rebuild`, and that swaps them in. `None`: not rebuildable.
    fn rebuild_sql(&self) -> Option<RebuildSql> {
        None
    }

    /// A rebuild's bulk fill, when the projection has a faster way to fill its empty
    /// twins than [`apply_batch`]: scripts run before the fill (e.g. drop the twins'
    /// indexes) and after it (give them back, as the live tables define them), before the
    /// catch-up under the lock. `None` (the default): the fill is [`fill_batch`] into the
    /// twins as [`rebuild_sql`] created them.
    ///
    /// [`apply_batch`]: Projection::apply_batch
    /// [`fill_batch`]: Projection::fill_batch
    /// [`rebuild_sql`]: Projection::rebuild_sql
    fn bulk_sql(&self) -> Option<BulkSql> {
        None
    }

    /// Which events' payloads it reads: `None` (the default) every one; else those for
    /// which the function answers true. The others are never decrypted and reach
    /// [`apply`](Projection::apply) as [`Opened::Unread`]: a projection of clear
    /// metadata does not open personal data it has no use for (and saves the work).
    fn payload_filter(&self) -> Option<PayloadFilter> {
        None
    }

    /// The event types whose payloads [`payload_filter`](Projection::payload_filter) can
    /// let through: `None` (the default) any type. A rebuild does not even fetch the
    /// payloads of the other types from PostgreSQL (they come empty). Must hold every
    /// type the filter accepts: a payload it lets through that was not fetched fails to
    /// open, which stops the rebuild (never a silent skip).
    fn payload_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Fills the rebuild twins with a batch, in order (every event once: the rebuild never
    /// applies an event twice, so this need not be idempotent). The default is
    /// [`apply_batch`](Projection::apply_batch).
    fn fill_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        self.apply_batch(tx, events)
    }
}

/// The scripts around a projection's bulk fill ([`Projection::bulk_sql`]).
#[derive(Debug, Clone, Copy)]
pub struct BulkSql {
    /// Run on the empty twins before the fill.
    pub before: &'static str,
    /// Run on the filled twins, before the catch-up and the swap.
    pub after: &'static str,
    /// Instead of `after`: the live table (in `public`) whose constraints and indexes the
    /// twin `carelog_rebuild.<table>` gets back, as `after` would give them, built on
    /// several connections at once (`crates/store/sql/read_twin_index_ddl.sql`).
    pub parallel_indexes: Option<&'static str>,
}

/// A shared projection is the projection it shares (the registry hands out `Arc`s).
impl<P: Projection + ?Sized> Projection for std::sync::Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a StoredEvent,
        opened: &'a Opened,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        (**self).apply(tx, event, opened)
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        (**self).apply_batch(tx, events)
    }

    fn rebuild_sql(&self) -> Option<RebuildSql> {
        (**self).rebuild_sql()
    }

    fn bulk_sql(&self) -> Option<BulkSql> {
        (**self).bulk_sql()
    }

    fn payload_filter(&self) -> Option<PayloadFilter> {
        (**self).payload_filter()
    }

    fn payload_types(&self) -> Option<&'static [&'static str]> {
        (**self).payload_types()
    }

    fn fill_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        (**self).fill_batch(tx, events)
    }
}

/// A projection's rebuild scripts (see `projections/<name>_rebuild_*.sql`).
#[derive(Debug, Clone, Copy)]
pub struct RebuildSql {
    /// Creates empty twins of the projection's tables in `carelog_rebuild`.
    pub prepare: &'static str,
    /// Replaces the live tables with the twins (run under the projection's lock).
    pub swap: &'static str,
}

/// Whether `name` is usable as a projection name (`[a-z0-9_]{1,64}`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Every projection this build of carelog maintains, by name. `carelog serve`/`project`
/// run one projector for each; the admin API and the CLI find them here for retries.
pub fn registry() -> Vec<std::sync::Arc<dyn Projection>> {
    vec![
        std::sync::Arc::new(AuditFeed),
        std::sync::Arc::new(Patients),
        std::sync::Arc::new(ClinicalRecords),
    ]
}

/// The projection called `name`, if this build has one.
pub fn find(name: &str) -> Option<std::sync::Arc<dyn Projection>> {
    registry().into_iter().find(|p| p.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_consumer_name_tokens() {
        assert!(valid_name("audit_feed"));
        for bad in ["", "a.b", "A", "a b", "a>", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_audit_feed_opens_only_access_records_sealed_under_system() {
        use crate::change::tests::stored;
        use carelog_domain::{StreamType, SubjectId};
        let filter = AuditFeed.payload_filter();
        let phi = stored(StreamType::Patient, "PatientRegistered");
        assert!(!reads_payload(filter, &phi));
        let mut access = stored(StreamType::Access, "AccessRecorded");
        assert!(
            !reads_payload(filter, &access),
            "not under system: not read"
        );
        access.header.subject = SubjectId::system();
        assert!(reads_payload(filter, &access));
        // Without a filter, everything is read.
        assert!(reads_payload(None, &phi));
    }

    #[test]
    fn unread_payloads_keep_their_places_and_a_missing_one_is_an_error() {
        use crate::change::tests::stored;
        use carelog_domain::{StreamType, SubjectId};
        let filter = AuditFeed.payload_filter();
        let mut a = stored(StreamType::Access, "AccessRecorded");
        a.header.subject = SubjectId::system();
        let phi = stored(StreamType::Patient, "PatientRegistered");
        let mut c = stored(StreamType::Access, "ClientAuditDeclared");
        c.header.subject = SubjectId::system();
        let events = [&a, &phi, &c];
        let one = Opened::Payload(serde_json::json!({"n": 1}));
        let two = Opened::Payload(serde_json::json!({"n": 2}));
        let got = with_unread(&events, filter, vec![one.clone(), two.clone()]).unwrap();
        assert_eq!(got, vec![one.clone(), Opened::Unread, two]);
        assert!(matches!(
            with_unread(&events, filter, vec![one]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn database_errors_keep_no_values() {
        let e = ApplyError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(e.message(), "database unavailable");
        assert!(e.is_transient());
        assert!(!ApplyError::new("x").is_transient());
    }
}
