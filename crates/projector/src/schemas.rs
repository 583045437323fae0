//! Creating the tables of the read models this build maintains. Read-model tables are
//! defined only in `projections/<name>.sql` (not in `migrations/`): [`ensure_schemas`]
//! runs those files, idempotently, wherever the migrations run (`carelog migrate`,
//! `carelog dev`, the test template), right after them.

use carelog_store::StoreError;
use sqlx::PgPool;

use crate::{audit_feed, clinical_records, patients};

/// The `projections/<name>.sql` of every read model created here, in order.
pub const SCHEMAS: [&str; 3] = [
    audit_feed::SCHEMA,
    patients::SCHEMA,
    clinical_records::SCHEMA,
];

/// Creates every read model's tables and indexes that do not exist yet (after the
/// migrations). Safe to run concurrently and repeatedly.
pub async fn ensure_schemas(pool: &PgPool) -> Result<(), StoreError> {
    for sql in SCHEMAS {
        carelog_store::read_models::ensure_schema(pool, sql).await?;
    }
    Ok(())
}
