//! Clinical state that security decisions read (migrations/0007_clinical.sql):
//! organisations and their members, which organisation holds each patient's chart and
//! which account is the patient's own, which patient each record belongs to, and
//! emergency grants. Ids, roles, versions and times only: no PHI.
//!
//! Writers take an open transaction: callers change these rows and append the matching
//! events (`EventStore::append_in_tx`) in the same transaction, so a decision never reads
//! state behind the log — a removed member is refused on the next request, whatever their
//! token says. Readers take any executor (the pool, or the caller's transaction).

use carelog_domain::access::{ConsentFacts, EmergencyFacts, Membership, PatientFacts};
use carelog_domain::{GrantId, OrgId, PatientId, Position, RecordId, Role, StreamVersion, UserId};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use crate::consent;
use crate::error::StoreError;
use crate::read_models::{self, PatientRow, RecordRow};

/// A patient's current facts, with the version and position of the patient stream's last
/// event (the ETag; what a client waits for to read its own write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedPatient {
    /// Organisation, linked account, erasure.
    pub facts: PatientFacts,
    /// The patient stream's version.
    pub version: StreamVersion,
    /// The global position of its last event.
    pub position: Position,
}

/// Whose a record is, with the version and position of the record stream's last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedRecord {
    /// The record's patient.
    pub patient_id: PatientId,
    /// The record stream's version.
    pub version: StreamVersion,
    /// The global position of its last event.
    pub position: Position,
}

/// An org role as stored; anything else is a row this code never wrote.
fn org_role(name: &str) -> Result<Role, StoreError> {
    name.parse::<Role>()
        .ok()
        .filter(|r| {
            matches!(
                r,
                Role::OrgAdmin | Role::OrgDoctor | Role::OrgStaff | Role::OrgAuditor
            )
        })
        .ok_or(StoreError::Corrupt {
            position: 0,
            what: "org member role",
        })
}

/// Stores a new organisation.
pub async fn insert_org(
    tx: &mut PgConnection,
    org: OrgId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/clinical_org_insert.sql"))
        .bind(org.0)
        .bind(at)
        .execute(tx)
        .await?;
    Ok(())
}

/// Whether the organisation exists.
pub async fn org_exists(db: impl PgExecutor<'_>, org: OrgId) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar(include_str!("../sql/clinical_org_exists.sql"))
            .bind(org.0)
            .fetch_one(db)
            .await?,
    )
}

/// Adds `user` to `org` with `role` (an org role), or changes their role (keeping when
/// they joined).
pub async fn upsert_member(
    tx: &mut PgConnection,
    org: OrgId,
    user: UserId,
    role: Role,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/clinical_member_upsert.sql"))
        .bind(org.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(at)
        .execute(tx)
        .await?;
    Ok(())
}

/// Removes `user` from `org` (nothing if they were not a member).
pub async fn remove_member(
    tx: &mut PgConnection,
    org: OrgId,
    user: UserId,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/clinical_member_remove.sql"))
        .bind(org.0)
        .bind(user.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// The memberships `user` holds now, by organisation id.
pub async fn memberships_of(
    db: impl PgExecutor<'_>,
    user: UserId,
) -> Result<Vec<Membership>, StoreError> {
    let rows = sqlx::query(include_str!("../sql/clinical_memberships_of.sql"))
        .bind(user.0)
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Membership {
                org_id: OrgId(r.try_get("org_id")?),
                role: org_role(r.try_get("role")?)?,
            })
        })
        .collect()
}

/// The members of `org` with their role and when they joined, in joining order.
pub async fn members_of(
    db: impl PgExecutor<'_>,
    org: OrgId,
) -> Result<Vec<(UserId, Role, DateTime<Utc>)>, StoreError> {
    let rows = sqlx::query(include_str!("../sql/clinical_members_of.sql"))
        .bind(org.0)
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                UserId(r.try_get("user_id")?),
                org_role(r.try_get("role")?)?,
                r.try_get("added_at")?,
            ))
        })
        .collect()
}

/// Records a patient's facts at `version`/`position` of their stream (registered or
/// changed). Never moves back to an older version; never clears an erasure
/// (`facts.erased` sets it, now, if it was not set).
pub async fn upsert_patient_index(
    tx: &mut PgConnection,
    facts: &PatientFacts,
    version: StreamVersion,
    position: Position,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/clinical_patient_upsert.sql"))
        .bind(facts.patient_id.0)
        .bind(facts.org_id.0)
        .bind(facts.user_id.map(|u| u.0))
        .bind(facts.erased)
        .bind(version.0)
        .bind(position.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// What an access decision on a patient reads: the patient, the caller's running
/// emergency grants on them and the consents in force, all current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientAccessFacts {
    /// The patient's facts, version and position.
    pub indexed: IndexedPatient,
    /// The caller's emergency grants on the patient still running at the time asked.
    pub emergency: Vec<EmergencyFacts>,
    /// The patient's consents in state `active` (the policy compares their expiry).
    pub consents: Vec<ConsentFacts>,
}

/// The facts of `patient` for a decision on behalf of `user` at `now`, read in one
/// statement (one snapshot, one round trip); `None` if there is no such patient.
pub async fn patient_access(
    db: impl PgExecutor<'_>,
    patient: PatientId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Option<PatientAccessFacts>, StoreError> {
    let row = decision_row(
        db,
        include_str!("../sql/clinical_patient_access.sql"),
        patient.0,
        user,
        now,
    )
    .await?;
    row.map(|r| access_facts(&r, user)).transpose()
}

/// For a read of `patient`'s demographics by `user` at `now`: the facts of the decision
/// and, in the same statement, the patient's read-model row (`None` if the projection has
/// none yet). The row is PHI: hand it out only once the policy has allowed the read.
pub async fn patient_read(
    db: impl PgExecutor<'_>,
    patient: PatientId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Option<(PatientAccessFacts, Option<PatientRow>)>, StoreError> {
    let row = decision_row(
        db,
        include_str!("../sql/clinical_patient_read.sql"),
        patient.0,
        user,
        now,
    )
    .await?;
    row.map(|r| {
        Ok((
            access_facts(&r, user)?,
            projected(&r, read_models::patient_row)?,
        ))
    })
    .transpose()
}

/// The one row of a decision statement on resource `id` by `user` at `now` (`$1`, `$2`,
/// `$3`), if the resource exists.
async fn decision_row(
    db: impl PgExecutor<'_>,
    sql: &'static str,
    id: Uuid,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Option<PgRow>, StoreError> {
    Ok(sqlx::query(sql)
        .bind(id)
        .bind(user.0)
        .bind(now)
        .fetch_optional(db)
        .await?)
}

/// A row of `patient_access` (migrations/0011_patient_access.sql), asked for `user`.
fn access_facts(r: &PgRow, user: UserId) -> Result<PatientAccessFacts, StoreError> {
    let patient_id = PatientId(r.try_get("patient_id")?);
    let indexed = IndexedPatient {
        facts: PatientFacts {
            patient_id,
            org_id: OrgId(r.try_get("chart_org_id")?),
            user_id: r.try_get::<Option<Uuid>, _>("account_user_id")?.map(UserId),
            erased: r.try_get("erased")?,
        },
        version: StreamVersion(r.try_get("stream_version")?),
        position: Position(r.try_get("stream_position")?),
    };
    let grant_ids: Vec<Uuid> = array(r, "grant_ids")?;
    let grant_expiries: Vec<DateTime<Utc>> = array(r, "grant_expires_at")?;
    let emergency = grant_ids
        .into_iter()
        .zip(grant_expiries)
        .map(|(id, expires_at)| EmergencyFacts {
            grant_id: GrantId(id),
            patient_id,
            user_id: user,
            expires_at,
        })
        .collect();
    let orgs: Vec<Option<Uuid>> = array(r, "grantee_org_ids")?;
    let users: Vec<Option<Uuid>> = array(r, "grantee_user_ids")?;
    let scopes: Vec<String> = array(r, "consent_scopes")?;
    let statuses: Vec<String> = array(r, "consent_statuses")?;
    let expiries: Vec<Option<DateTime<Utc>>> = array(r, "consent_expires_at")?;
    let consents = (orgs.into_iter().zip(users))
        .zip(scopes.iter().zip(&statuses).zip(expiries))
        .map(|((org, user), ((scope, status), expires_at))| {
            Ok(ConsentFacts {
                patient_id,
                grantee: consent::grantee(org, user)?,
                scope: consent::scope_of(scope)?,
                status: consent::status_of(status)?,
                expires_at,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(PatientAccessFacts {
        indexed,
        emergency,
        consents,
    })
}

/// An aggregated array column: `NULL` (nothing aggregated) is empty.
fn array<T>(row: &PgRow, column: &str) -> Result<Vec<T>, StoreError>
where
    Vec<T>: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    Ok(row
        .try_get::<Option<Vec<T>>, _>(column)?
        .unwrap_or_default())
}

/// The patients (not erased) whose chart is linked to the account `user`.
pub async fn patients_of_user(
    db: impl PgExecutor<'_>,
    user: UserId,
) -> Result<Vec<PatientId>, StoreError> {
    let ids: Vec<Uuid> = sqlx::query_scalar(include_str!("../sql/clinical_patients_of_user.sql"))
        .bind(user.0)
        .fetch_all(db)
        .await?;
    Ok(ids.into_iter().map(PatientId).collect())
}

/// Marks the patient erased at `at` (the first erasure time is kept).
pub async fn mark_patient_erased(
    tx: &mut PgConnection,
    patient: PatientId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/clinical_patient_erase.sql"))
        .bind(patient.0)
        .bind(at)
        .execute(tx)
        .await?;
    Ok(())
}

/// Records that `record` belongs to `patient`, at `version`/`position` of its stream.
/// Never moves back to an older version; a record never changes patient.
pub async fn upsert_record_index(
    tx: &mut PgConnection,
    record: RecordId,
    patient: PatientId,
    version: StreamVersion,
    position: Position,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/clinical_record_upsert.sql"))
        .bind(record.0)
        .bind(patient.0)
        .bind(version.0)
        .bind(position.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// What an access decision on a record reads: the record's index entry and the facts of
/// its patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAccessFacts {
    /// Whose record it is, its version and position.
    pub record: IndexedRecord,
    /// What a decision on the record's patient reads.
    pub patient: PatientAccessFacts,
}

/// The facts of `record` for a decision on behalf of `user` at `now`, in one statement;
/// `None` if there is no such record.
pub async fn record_access(
    db: impl PgExecutor<'_>,
    record: RecordId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Option<RecordAccessFacts>, StoreError> {
    let row = decision_row(
        db,
        include_str!("../sql/clinical_record_access.sql"),
        record.0,
        user,
        now,
    )
    .await?;
    row.map(|r| record_facts(&r, user)).transpose()
}

/// For a read of `record` by `user` at `now`: the facts of the decision and, in the same
/// statement, the record's read-model row (`None` if the projection has none yet). The
/// row is PHI: hand it out only once the policy has allowed the read.
pub async fn record_read(
    db: impl PgExecutor<'_>,
    record: RecordId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Option<(RecordAccessFacts, Option<RecordRow>)>, StoreError> {
    let row = decision_row(
        db,
        include_str!("../sql/clinical_record_read.sql"),
        record.0,
        user,
        now,
    )
    .await?;
    row.map(|r| {
        Ok((
            record_facts(&r, user)?,
            projected(&r, read_models::record_row)?,
        ))
    })
    .transpose()
}

/// A row of `clinical_record_access.sql` (or of the read that extends it).
fn record_facts(r: &PgRow, user: UserId) -> Result<RecordAccessFacts, StoreError> {
    let patient = access_facts(r, user)?;
    Ok(RecordAccessFacts {
        record: IndexedRecord {
            patient_id: patient.indexed.facts.patient_id,
            version: StreamVersion(r.try_get("record_version")?),
            position: Position(r.try_get("record_position")?),
        },
        patient,
    })
}

/// The read model's row carried by a read's row, decoded with `decode`, if the left join
/// matched (`version` is the read model's column; the facts' are `stream_version` and
/// `record_version`).
fn projected<T>(
    r: &PgRow,
    decode: fn(&PgRow) -> Result<T, sqlx::Error>,
) -> Result<Option<T>, StoreError> {
    let matched = r.try_get::<Option<i64>, _>("version")?.is_some();
    Ok(matched.then(|| decode(r)).transpose()?)
}

/// Stores an emergency grant given at `granted_at`.
pub async fn insert_emergency_grant(
    tx: &mut PgConnection,
    grant: &EmergencyFacts,
    granted_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/clinical_grant_insert.sql"))
        .bind(grant.grant_id.0)
        .bind(grant.patient_id.0)
        .bind(grant.user_id.0)
        .bind(granted_at)
        .bind(grant.expires_at)
        .execute(tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_org_roles_are_member_roles() {
        for (name, role) in [
            ("ORG:ADMIN", Role::OrgAdmin),
            ("ORG:DOCTOR", Role::OrgDoctor),
            ("ORG:STAFF", Role::OrgStaff),
            ("ORG:AUDITOR", Role::OrgAuditor),
        ] {
            assert_eq!(org_role(name).unwrap(), role);
        }
        for bad in ["SUPER:ADMIN", "BASE:DOCTOR", "org:admin", ""] {
            assert!(org_role(bad).is_err(), "{bad}");
        }
    }
}
