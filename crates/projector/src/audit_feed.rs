//! The `audit_feed` read model (`projections/audit_feed.sql`): one row per event — who
//! (actor), which request, what (stream, event type), when — from the clear metadata
//! only. It never reads the payload, so it holds no PHI and is the same after an erasure.

use carelog_store::{Opened, StoredEvent};
use sqlx::PgConnection;

use crate::{ApplyError, BatchApplyError, BoxFuture, BulkSql, Projection, RebuildSql};

/// The projection feeding `audit_feed`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFeed;

impl AuditFeed {
    /// Its name (checkpoint row, consumer `<prefix>proj_audit_feed`).
    pub const NAME: &'static str = "audit_feed";
}

impl Projection for AuditFeed {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a StoredEvent,
        _opened: &'a Opened,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            carelog_store::projector::audit_feed_apply(tx, event).await?;
            Ok(())
        })
    }

    /// One multi-row statement for the whole batch
    /// (`projections/audit_feed_apply_batch.sql`).
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        Box::pin(async move {
            let events: Vec<&StoredEvent> = events.iter().map(|(e, _)| *e).collect();
            carelog_store::projector::audit_feed_apply_batch(tx, &events)
                .await
                .map_err(|e| BatchApplyError {
                    index: None,
                    error: e.into(),
                })
        })
    }

    /// The bulk fill drops the twin's indexes and constraints first
    /// (`projections/audit_feed_rebuild_bulk.sql`) and gives them back, as the live table
    /// defines them, after (`projections/audit_feed_rebuild_indexes.sql`).
    fn bulk_sql(&self) -> Option<BulkSql> {
        Some(BulkSql {
            before: include_str!("../../../projections/audit_feed_rebuild_bulk.sql"),
            after: include_str!("../../../projections/audit_feed_rebuild_indexes.sql"),
        })
    }

    /// One binary `COPY` of the batch's rows into the index-less twin
    /// (`projections/audit_feed_copy.sql`); not idempotent, as a fill need not be.
    fn fill_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        Box::pin(async move {
            let events: Vec<&StoredEvent> = events.iter().map(|(e, _)| *e).collect();
            carelog_store::projector::audit_feed_copy(tx, &events)
                .await
                .map_err(|e| BatchApplyError {
                    index: None,
                    error: e.into(),
                })
        })
    }

    fn rebuild_sql(&self) -> Option<RebuildSql> {
        Some(RebuildSql {
            prepare: include_str!("../../../projections/audit_feed_rebuild_prepare.sql"),
            swap: include_str!("../../../projections/audit_feed_rebuild_swap.sql"),
        })
    }
}
