//! The inline state of GDPR data-subject requests and legal holds
//! (migrations/0008_consent_gdpr.sql): one row per request (`dsr_requests`, stream
//! `dsr-<uuid>`) and at most one legal hold per organisation (`legal_holds`). Ids,
//! enumerations, versions and times only: the free-text reasons of a request or a
//! rejection live in the sealed event payloads alone.
//!
//! Writers take an open transaction: callers change these rows and append the matching
//! events (`EventStore::append_in_tx`) in the same transaction, so an approval never
//! reads a request or a hold behind the log. The locks here serialise the erasure
//! workflow: [`lock_patient`] (one open erasure per patient) and [`lock_org`] (a hold
//! placed and an approval checking for one cannot pass each other).
//!
//! Also here: what an export reads of the patient besides their streams (their record
//! ids; consent rows are read through [`crate::consent`]), and the purge of the clinical
//! records read model at the erasure itself ([`purge_patient_records`]).

use carelog_domain::dsr::DsrStatus;
use carelog_domain::{DsrId, OrgId, PatientId, Position, RecordId, StreamVersion, UserId};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use crate::error::StoreError;

/// What a data-subject request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsrKind {
    /// Erase the patient (approved by a platform administrator).
    Erasure,
    /// Export the patient's data (completed at once; the audit of an export).
    Export,
}

impl DsrKind {
    /// The name, as stored and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DsrKind::Erasure => "erasure",
            DsrKind::Export => "export",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "erasure" => Ok(DsrKind::Erasure),
            "export" => Ok(DsrKind::Export),
            _ => Err(corrupt("dsr kind")),
        }
    }
}

fn status_of(s: &str) -> Result<DsrStatus, StoreError> {
    match s {
        "pending" => Ok(DsrStatus::Pending),
        "approved" => Ok(DsrStatus::Approved),
        "completed" => Ok(DsrStatus::Completed),
        "rejected" => Ok(DsrStatus::Rejected),
        _ => Err(corrupt("dsr status")),
    }
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt { position: 0, what }
}

/// One data-subject request, current (no PHI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrRow {
    /// The request (the uuid of its `dsr-<uuid>` stream).
    pub dsr_id: DsrId,
    /// Whose data.
    pub patient_id: PatientId,
    /// Erasure or export.
    pub kind: DsrKind,
    /// Where it is.
    pub status: DsrStatus,
    /// Who asked.
    pub requested_by: UserId,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// Who approved or rejected it.
    pub decided_by: Option<UserId>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// When it was carried out.
    pub completed_at: Option<DateTime<Utc>>,
    /// The request stream's version.
    pub version: StreamVersion,
    /// The global position of its last event.
    pub position: Position,
}

fn row_of(r: &sqlx::postgres::PgRow) -> Result<DsrRow, StoreError> {
    Ok(DsrRow {
        dsr_id: DsrId(r.try_get("dsr_id")?),
        patient_id: PatientId(r.try_get("patient_id")?),
        kind: DsrKind::parse(r.try_get("kind")?)?,
        status: status_of(r.try_get("status")?)?,
        requested_by: UserId(r.try_get("requested_by")?),
        requested_at: r.try_get("requested_at")?,
        decided_by: r.try_get::<Option<Uuid>, _>("decided_by")?.map(UserId),
        decided_at: r.try_get("decided_at")?,
        completed_at: r.try_get("completed_at")?,
        version: StreamVersion(r.try_get("version")?),
        position: Position(r.try_get("position")?),
    })
}

/// Stores a new request.
pub async fn insert(tx: &mut PgConnection, row: &DsrRow) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/dsr_insert.sql"))
        .bind(row.dsr_id.0)
        .bind(row.patient_id.0)
        .bind(row.kind.as_str())
        .bind(row.status.as_str())
        .bind(row.requested_by.0)
        .bind(row.requested_at)
        .bind(row.decided_by.map(|u| u.0))
        .bind(row.decided_at)
        .bind(row.completed_at)
        .bind(row.version.0)
        .bind(row.position.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// Records a request's new status at `version`/`position` of its stream; the first
/// decision (who, when) and completion time are kept.
pub async fn update(tx: &mut PgConnection, row: &DsrRow) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/dsr_update.sql"))
        .bind(row.dsr_id.0)
        .bind(row.status.as_str())
        .bind(row.decided_by.map(|u| u.0))
        .bind(row.decided_at)
        .bind(row.completed_at)
        .bind(row.version.0)
        .bind(row.position.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// One request (`None`: no such request).
pub async fn get(db: impl PgExecutor<'_>, dsr: DsrId) -> Result<Option<DsrRow>, StoreError> {
    let row = sqlx::query(include_str!("../sql/dsr_get.sql"))
        .bind(dsr.0)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(row_of).transpose()
}

/// A patient's requests, oldest first.
pub async fn of_patient(
    db: impl PgExecutor<'_>,
    patient: PatientId,
) -> Result<Vec<DsrRow>, StoreError> {
    let rows = sqlx::query(include_str!("../sql/dsr_of_patient.sql"))
        .bind(patient.0)
        .fetch_all(db)
        .await?;
    rows.iter().map(row_of).collect()
}

/// The patient's open (pending or approved) erasure request, if any.
pub async fn open_erasure(
    db: impl PgExecutor<'_>,
    patient: PatientId,
) -> Result<Option<DsrId>, StoreError> {
    let id: Option<Uuid> = sqlx::query_scalar(include_str!("../sql/dsr_open_erasure.sql"))
        .bind(patient.0)
        .fetch_optional(db)
        .await?;
    Ok(id.map(DsrId))
}

/// Locks the patient's index row until the caller commits (`false`: no such patient).
pub async fn lock_patient(tx: &mut PgConnection, patient: PatientId) -> Result<bool, StoreError> {
    let row = sqlx::query(include_str!("../sql/dsr_lock_patient.sql"))
        .bind(patient.0)
        .fetch_optional(tx)
        .await?;
    Ok(row.is_some())
}

/// Locks the organisation's row until the caller commits: `exclusive` to place or lift
/// a hold, shared to check for one before an approval (`false`: no such organisation).
pub async fn lock_org(
    tx: &mut PgConnection,
    org: OrgId,
    exclusive: bool,
) -> Result<bool, StoreError> {
    let sql = if exclusive {
        include_str!("../sql/dsr_lock_org_exclusive.sql")
    } else {
        include_str!("../sql/dsr_lock_org_shared.sql")
    };
    let row = sqlx::query(sql).bind(org.0).fetch_optional(tx).await?;
    Ok(row.is_some())
}

/// A legal hold on an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHold {
    /// The organisation.
    pub org_id: OrgId,
    /// The administrator's case reference (not patient data).
    pub reason: String,
    /// Who placed it.
    pub placed_by: UserId,
    /// When.
    pub placed_at: DateTime<Utc>,
}

/// The legal hold on `org`, if any.
pub async fn legal_hold(
    db: impl PgExecutor<'_>,
    org: OrgId,
) -> Result<Option<LegalHold>, StoreError> {
    let row = sqlx::query(include_str!("../sql/dsr_legal_hold_get.sql"))
        .bind(org.0)
        .fetch_optional(db)
        .await?;
    row.map(|r| {
        Ok(LegalHold {
            org_id: OrgId(r.try_get("org_id")?),
            reason: r.try_get("reason")?,
            placed_by: UserId(r.try_get("placed_by")?),
            placed_at: r.try_get("placed_at")?,
        })
    })
    .transpose()
}

/// Places a legal hold (or replaces the one in place).
pub async fn place_legal_hold(tx: &mut PgConnection, hold: &LegalHold) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/dsr_legal_hold_place.sql"))
        .bind(hold.org_id.0)
        .bind(&hold.reason)
        .bind(hold.placed_by.0)
        .bind(hold.placed_at)
        .execute(tx)
        .await?;
    Ok(())
}

/// Lifts the legal hold on `org`; whether there was one.
pub async fn lift_legal_hold(tx: &mut PgConnection, org: OrgId) -> Result<bool, StoreError> {
    let done = sqlx::query(include_str!("../sql/dsr_legal_hold_lift.sql"))
        .bind(org.0)
        .execute(tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every record of a patient (voided ones included), oldest first.
pub async fn record_ids_of_patient(
    db: impl PgExecutor<'_>,
    patient: PatientId,
) -> Result<Vec<RecordId>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(include_str!("../sql/dsr_record_ids_of_patient.sql"))
        .bind(patient.0)
        .fetch_all(db)
        .await?;
    Ok(ids.into_iter().map(RecordId).collect())
}

/// Deletes every record of the patient, and every version of them, from the
/// `clinical_records` read model (`projections/clinical_records_apply_patient_erased.sql`):
/// run by its projector at `PatientErased`, and by the erasure itself in its transaction
/// so the read model is purged when the request answers `completed`.
pub async fn purge_patient_records(
    tx: &mut PgConnection,
    patient: PatientId,
) -> Result<(), StoreError> {
    sqlx::query(include_str!(
        "../../../projections/clinical_records_apply_patient_erased.sql"
    ))
    .bind(patient.0)
    .execute(tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_read_back_as_written() {
        for k in [DsrKind::Erasure, DsrKind::Export] {
            assert_eq!(DsrKind::parse(k.as_str()).unwrap(), k);
        }
        for s in [
            DsrStatus::Pending,
            DsrStatus::Approved,
            DsrStatus::Completed,
            DsrStatus::Rejected,
        ] {
            assert_eq!(status_of(s.as_str()).unwrap(), s);
        }
        assert!(DsrKind::parse("Erasure").is_err());
        assert!(status_of("done").is_err());
    }
}
