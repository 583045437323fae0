//! The clinical read models of `projections/`: `patients` (patients.sql) and
//! `clinical_records` + `clinical_record_versions` (clinical_records.sql).
//!
//! - [`ensure_schema`] creates a read model's tables from its `projections/<name>.sql`
//!   (read models are not in `migrations/`); crates/projector::ensure_schemas runs every
//!   one of them after the migrations.
//! - Writes (`patient_*`, `record_*`) are the projectors' statements
//!   (`projections/<name>_apply_*.sql`): they run in the projector's transaction, with
//!   unqualified table names so that a rebuild writes them to its twins.
//! - Queries ([`list_patients`], [`get_patient`], [`list_records`], [`get_record`],
//!   [`record_versions`]) serve the API; [`wait_for_projection`] lets a client read its
//!   own write.
//!
//! Rows hold PHI: [`PatientRow`] and [`RecordRow`] print ids only in `Debug`, and errors
//! never quote a value.

use std::time::Duration;

use carelog_domain::patient::Demographics;
use carelog_domain::record::{RecordContent, RecordKind};
use carelog_domain::{OrgId, PatientId, Position, RecordId, StreamVersion, UserId};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use uuid::Uuid;

use crate::error::StoreError;
use crate::read::StoredEvent;

/// Creates a read model's tables and indexes if they do not exist: `sql` is the fixed
/// text of a `projections/<name>.sql` (several idempotent statements, no parameters).
/// Serialised across processes by an advisory lock, in one transaction.
pub async fn ensure_schema(pool: &PgPool, sql: &'static str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(include_str!("../sql/read_models_schema_lock.sql"))
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(sql).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Waits until the checkpoint of `projection` reaches `position` (polling every few
/// milliseconds), for at most `timeout`. True if it did.
pub async fn wait_for_projection(
    pool: &PgPool,
    projection: &str,
    position: Position,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if crate::projector::checkpoint(pool, projection).await? >= position {
            return Ok(true);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = next_pause(pause);
    }
}

/// The next polling pause: doubling from a few milliseconds, at most 50 ms.
fn next_pause(pause: Duration) -> Duration {
    (pause * 2).min(Duration::from_millis(50))
}

// ---------------------------------------------------------------------------------------
// Writes (projectors)

/// Where an applied event stands: its stream version, global position, and when it was
/// stored. Every read-model row carries the version and position of its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPlace {
    /// The event's version in its stream.
    pub version: StreamVersion,
    /// Its global position.
    pub position: Position,
    /// When it was stored.
    pub at: DateTime<Utc>,
}

impl EventPlace {
    /// The place of a stored event.
    pub fn of(event: &StoredEvent) -> Self {
        Self {
            version: event.header.version,
            position: event.position,
            at: event.header.recorded_at,
        }
    }
}

/// PatientRegistered: the patient's row (a replay changes nothing).
pub async fn patient_insert(
    tx: &mut PgConnection,
    patient: PatientId,
    org: OrgId,
    user: Option<UserId>,
    d: &Demographics,
    place: EventPlace,
) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/patients_apply_registered.sql"
    ))
    .bind(patient.0)
    .bind(org.0)
    .bind(user.map(|u| u.0))
    .bind(&d.given_name)
    .bind(&d.family_name)
    .bind(d.birth_date)
    .bind(d.sex.as_str())
    .bind(d.phone.as_deref())
    .bind(d.email.as_deref())
    .bind(d.address.as_deref())
    .bind(d.national_id.as_deref())
    .bind(place.version.0)
    .bind(place.position.0)
    .bind(place.at)
    .execute(tx)
    .await?;
    Ok(())
}

/// PatientUpdated: the whole new state, applied only over an older version.
pub async fn patient_update(
    tx: &mut PgConnection,
    patient: PatientId,
    user: Option<UserId>,
    d: &Demographics,
    place: EventPlace,
) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/patients_apply_updated.sql"
    ))
    .bind(patient.0)
    .bind(user.map(|u| u.0))
    .bind(&d.given_name)
    .bind(&d.family_name)
    .bind(d.birth_date)
    .bind(d.sex.as_str())
    .bind(d.phone.as_deref())
    .bind(d.email.as_deref())
    .bind(d.address.as_deref())
    .bind(d.national_id.as_deref())
    .bind(place.version.0)
    .bind(place.position.0)
    .bind(place.at)
    .execute(tx)
    .await?;
    Ok(())
}

/// The patient was erased: their row goes.
pub async fn patient_delete(tx: &mut PgConnection, patient: PatientId) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/patients_apply_erased.sql"
    ))
    .bind(patient.0)
    .execute(tx)
    .await?;
    Ok(())
}

/// The clear facts of a new record (besides its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord {
    /// The record.
    pub record_id: RecordId,
    /// Whose.
    pub patient_id: PatientId,
    /// The patient's organisation when it was written.
    pub org_id: OrgId,
    /// What kind.
    pub kind: RecordKind,
    /// Who wrote it.
    pub author_id: UserId,
}

/// RecordCreated: the record and its first version (a replay changes nothing).
pub async fn record_insert(
    tx: &mut PgConnection,
    record: &NewRecord,
    content: &RecordContent,
    place: EventPlace,
) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/clinical_records_apply_created.sql"
    ))
    .bind(record.record_id.0)
    .bind(record.patient_id.0)
    .bind(record.org_id.0)
    .bind(record.kind.as_str())
    .bind(content.code.as_deref())
    .bind(&content.title)
    .bind(&content.body)
    .bind(content.data.as_ref())
    .bind(content.recorded_at)
    .bind(record.author_id.0)
    .bind(place.version.0)
    .bind(place.position.0)
    .bind(place.at)
    .execute(tx)
    .await?;
    Ok(())
}

/// RecordAmended: the new current content and a version row (only over an older version).
pub async fn record_amend(
    tx: &mut PgConnection,
    record: RecordId,
    content: &RecordContent,
    author: UserId,
    place: EventPlace,
) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/clinical_records_apply_amended.sql"
    ))
    .bind(record.0)
    .bind(place.version.0)
    .bind(content.code.as_deref())
    .bind(&content.title)
    .bind(&content.body)
    .bind(content.data.as_ref())
    .bind(content.recorded_at)
    .bind(author.0)
    .bind(place.position.0)
    .bind(place.at)
    .execute(tx)
    .await?;
    Ok(())
}

/// RecordVoided: hidden from lists, kept in history with `reason` (only over an older
/// version); `author` is who voided it.
pub async fn record_void(
    tx: &mut PgConnection,
    record: RecordId,
    reason: &str,
    author: UserId,
    place: EventPlace,
) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/clinical_records_apply_voided.sql"
    ))
    .bind(record.0)
    .bind(place.version.0)
    .bind(reason)
    .bind(author.0)
    .bind(place.position.0)
    .bind(place.at)
    .execute(tx)
    .await?;
    Ok(())
}

/// The record's patient was erased: every row of the record goes.
pub async fn record_delete(tx: &mut PgConnection, record: RecordId) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/clinical_records_apply_erased.sql"
    ))
    .bind(record.0)
    .execute(tx)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Queries

/// One row of `patients`: a patient's current demographics (PHI: `Debug` prints ids only).
#[derive(Clone, PartialEq, Eq)]
pub struct PatientRow {
    /// The patient.
    pub patient_id: PatientId,
    /// The organisation holding the chart.
    pub org_id: OrgId,
    /// The patient's own account, if linked.
    pub user_id: Option<UserId>,
    /// Given name(s).
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// `female`, `male`, `other` or `unknown`.
    pub sex: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// National identifier.
    pub national_id: Option<String>,
    /// The patient stream's version (the ETag).
    pub version: StreamVersion,
    /// The position of the last event applied to the row.
    pub position: Position,
    /// When the patient was registered.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for PatientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientRow")
            .field("patient_id", &self.patient_id)
            .field("org_id", &self.org_id)
            .field("user_id", &self.user_id)
            .field("version", &self.version)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

pub(crate) fn patient_row(r: &PgRow) -> Result<PatientRow, sqlx::Error> {
    Ok(PatientRow {
        patient_id: PatientId(r.try_get("patient_id")?),
        org_id: OrgId(r.try_get("org_id")?),
        user_id: r.try_get::<Option<Uuid>, _>("user_id")?.map(UserId),
        given_name: r.try_get("given_name")?,
        family_name: r.try_get("family_name")?,
        birth_date: r.try_get("birth_date")?,
        sex: r.try_get("sex")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        address: r.try_get("address")?,
        national_id: r.try_get("national_id")?,
        version: StreamVersion(r.try_get("version")?),
        position: Position(r.try_get("position")?),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// One page of a list query: the rows of the page (those whose `key` column is not NULL:
/// an empty page is one row of NULLs), and the `total` column.
fn page<T>(
    rows: &[PgRow],
    key: &str,
    decode: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
) -> Result<(Vec<T>, i64), StoreError> {
    let total = match rows.first() {
        Some(r) => r.try_get("total")?,
        None => 0,
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if r.try_get::<Option<Uuid>, _>(key)?.is_some() {
            out.push(decode(r)?);
        }
    }
    Ok((out, total))
}

/// The patients of `org` (with exactly `family_name`, if given), in registration order
/// (`created_at`, then id): `limit` of them after `offset`, and how many match in all.
pub async fn list_patients(
    db: impl PgExecutor<'_>,
    org: OrgId,
    family_name: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<PatientRow>, i64), StoreError> {
    let rows = sqlx::query(include_str!("../sql/read_models_patients_list.sql"))
        .bind(org.0)
        .bind(family_name)
        .bind(offset.max(0))
        .bind(limit.max(0))
        .fetch_all(db)
        .await?;
    page(&rows, "patient_id", patient_row)
}

/// One patient's current demographics (`None`: not projected, or erased).
pub async fn get_patient(
    db: impl PgExecutor<'_>,
    patient: PatientId,
) -> Result<Option<PatientRow>, StoreError> {
    let row = sqlx::query(include_str!("../sql/read_models_patient_get.sql"))
        .bind(patient.0)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(patient_row).transpose()?)
}

/// One row of `clinical_records`: a record's current version (PHI: `Debug` prints ids
/// only).
#[derive(Clone, PartialEq)]
pub struct RecordRow {
    /// The record.
    pub record_id: RecordId,
    /// Whose.
    pub patient_id: PatientId,
    /// The patient's organisation when it was written.
    pub org_id: OrgId,
    /// `note`, `diagnosis`, `prescription`, `lab_result`, `immunization`, `vital_signs`.
    pub kind: String,
    /// A code (ICD-10, LOINC, ...).
    pub code: Option<String>,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Structured data.
    pub data: Option<serde_json::Value>,
    /// When the clinical fact was observed or decided.
    pub recorded_at: DateTime<Utc>,
    /// Who wrote the current content.
    pub author_id: UserId,
    /// `active` or `voided`.
    pub status: String,
    /// Why it was voided.
    pub void_reason: Option<String>,
    /// The record stream's version (the ETag).
    pub version: StreamVersion,
    /// The position of the last event applied to the row.
    pub position: Position,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for RecordRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordRow")
            .field("record_id", &self.record_id)
            .field("patient_id", &self.patient_id)
            .field("org_id", &self.org_id)
            .field("status", &self.status)
            .field("version", &self.version)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

pub(crate) fn record_row(r: &PgRow) -> Result<RecordRow, sqlx::Error> {
    Ok(RecordRow {
        record_id: RecordId(r.try_get("record_id")?),
        patient_id: PatientId(r.try_get("patient_id")?),
        org_id: OrgId(r.try_get("org_id")?),
        kind: r.try_get("kind")?,
        code: r.try_get("code")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        data: r.try_get("data")?,
        recorded_at: r.try_get("recorded_at")?,
        author_id: UserId(r.try_get("author_id")?),
        status: r.try_get("status")?,
        void_reason: r.try_get("void_reason")?,
        version: StreamVersion(r.try_get("version")?),
        position: Position(r.try_get("position")?),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// One row of `clinical_record_versions`: what a record said after one change (PHI:
/// `Debug` prints ids only).
#[derive(Clone, PartialEq)]
pub struct RecordVersionRow {
    /// The record.
    pub record_id: RecordId,
    /// The version this change made.
    pub version: StreamVersion,
    /// `created`, `amended` or `voided`.
    pub change: String,
    /// The record's kind.
    pub kind: String,
    /// Code.
    pub code: Option<String>,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Structured data.
    pub data: Option<serde_json::Value>,
    /// When the clinical fact was observed or decided.
    pub recorded_at: DateTime<Utc>,
    /// Who made the change.
    pub author_id: UserId,
    /// Why (voided only).
    pub reason: Option<String>,
    /// When the change was stored.
    pub at: DateTime<Utc>,
}

impl std::fmt::Debug for RecordVersionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordVersionRow")
            .field("record_id", &self.record_id)
            .field("version", &self.version)
            .field("change", &self.change)
            .finish_non_exhaustive()
    }
}

fn version_row(r: &PgRow) -> Result<RecordVersionRow, sqlx::Error> {
    Ok(RecordVersionRow {
        record_id: RecordId(r.try_get("record_id")?),
        version: StreamVersion(r.try_get("version")?),
        change: r.try_get("change")?,
        kind: r.try_get("kind")?,
        code: r.try_get("code")?,
        title: r.try_get("title")?,
        body: r.try_get("body")?,
        data: r.try_get("data")?,
        recorded_at: r.try_get("recorded_at")?,
        author_id: UserId(r.try_get("author_id")?),
        reason: r.try_get("reason")?,
        at: r.try_get("at")?,
    })
}

/// The active (not voided) records of `patient`, most recently observed first
/// (`recorded_at`, then id): `limit` of them after `offset`, and how many there are.
pub async fn list_records(
    db: impl PgExecutor<'_>,
    patient: PatientId,
    offset: i64,
    limit: i64,
) -> Result<(Vec<RecordRow>, i64), StoreError> {
    let rows = sqlx::query(include_str!("../sql/read_models_records_list.sql"))
        .bind(patient.0)
        .bind(offset.max(0))
        .bind(limit.max(0))
        .fetch_all(db)
        .await?;
    page(&rows, "record_id", record_row)
}

/// One record's current version, active or voided (`None`: not projected, or erased).
pub async fn get_record(
    db: impl PgExecutor<'_>,
    record: RecordId,
) -> Result<Option<RecordRow>, StoreError> {
    let row = sqlx::query(include_str!("../sql/read_models_record_get.sql"))
        .bind(record.0)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(record_row).transpose()?)
}

/// Every version of a record, oldest first (empty: not projected, or erased).
pub async fn record_versions(
    db: impl PgExecutor<'_>,
    record: RecordId,
) -> Result<Vec<RecordVersionRow>, StoreError> {
    let rows = sqlx::query(include_str!("../sql/read_models_record_versions.sql"))
        .bind(record.0)
        .fetch_all(db)
        .await?;
    Ok(rows.iter().map(version_row).collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_to_a_ceiling() {
        let mut p = Duration::from_millis(2);
        let mut seen = vec![p];
        for _ in 0..10 {
            p = next_pause(p);
            seen.push(p);
        }
        assert_eq!(seen[1], Duration::from_millis(4));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*seen.last().unwrap(), Duration::from_millis(50));
    }

    #[test]
    fn rows_print_ids_only() {
        let row = PatientRow {
            patient_id: PatientId(Uuid::nil()),
            org_id: OrgId(Uuid::nil()),
            user_id: None,
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            birth_date: NaiveDate::from_ymd_opt(1815, 12, 10).unwrap(),
            sex: "female".into(),
            phone: Some("+44 20 7946 0000".into()),
            email: None,
            address: None,
            national_id: Some("QQ123456C".into()),
            version: StreamVersion(1),
            position: Position(1),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        };
        let shown = format!("{row:?}");
        for phi in ["Ada", "Lovelace", "1815", "7946", "QQ123456C", "female"] {
            assert!(!shown.contains(phi), "{shown}");
        }
        assert!(shown.contains("patient_id"));
    }
}
