//! Consents and session consents as access decisions read them
//! (migrations/0008_consent_gdpr.sql): who may see which patient's data, in what scope,
//! in which state. Ids, enumerations, versions and times only: no PHI.
//!
//! Writers take an open transaction: callers upsert these rows and append the matching
//! events (`EventStore::append_in_tx`) in the same transaction, so a revoke stops access
//! on the very next request (DESIGN.md "Consistency of decisions"). Readers take any
//! executor. The listings and the export read the same rows ([`ConsentRow`],
//! [`SessionConsentRow`]).

use carelog_domain::access::{ConsentFacts, ConsentScope, ConsentStatus, Grantee};
use carelog_domain::consent::Purpose;
use carelog_domain::session_consent::SessionConsentKind;
use carelog_domain::{
    ConsentId, OrgId, PatientId, Position, SessionConsentId, StreamVersion, UserId,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use crate::error::StoreError;

/// One consent, current (a row of `consents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentRow {
    /// The consent (stream `consent-<uuid>`).
    pub consent_id: ConsentId,
    /// The patient who consents.
    pub patient_id: PatientId,
    /// To whom.
    pub grantee: Grantee,
    /// What it covers.
    pub scope: ConsentScope,
    /// What for.
    pub purpose: Purpose,
    /// The lifecycle state (expiry is `expires_at` compared with now).
    pub status: ConsentStatus,
    /// When it lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// The doctor who asked for it (a request), `None` for a grant by the patient.
    pub requested_by: Option<UserId>,
    /// When it was granted or requested.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// The consent stream's version.
    pub version: StreamVersion,
    /// The global position of its last event.
    pub position: Position,
}

impl ConsentRow {
    /// What the access policy needs of it.
    pub fn facts(&self) -> ConsentFacts {
        ConsentFacts {
            patient_id: self.patient_id,
            grantee: self.grantee,
            scope: self.scope,
            status: self.status,
            expires_at: self.expires_at,
        }
    }
}

/// One session consent, current (a row of `session_consents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConsentRow {
    /// The session consent (stream `session_consent-<uuid>`).
    pub consent_id: SessionConsentId,
    /// The patient who consents.
    pub patient_id: PatientId,
    /// Recording or AI transcription.
    pub kind: SessionConsentKind,
    /// Limited to sessions of this organisation, if given.
    pub org_id: Option<OrgId>,
    /// Limited to sessions with this clinician, if given.
    pub user_id: Option<UserId>,
    /// Revoked by the patient (else active until `expires_at`, if any).
    pub revoked: bool,
    /// When it lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was granted.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// The stream's version.
    pub version: StreamVersion,
    /// The global position of its last event.
    pub position: Position,
}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt { position: 0, what }
}

pub(crate) fn scope_of(name: &str) -> Result<ConsentScope, StoreError> {
    ConsentScope::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| corrupt("consent scope"))
}

fn purpose_of(name: &str) -> Result<Purpose, StoreError> {
    Purpose::ALL
        .into_iter()
        .find(|p| p.as_str() == name)
        .ok_or_else(|| corrupt("consent purpose"))
}

pub(crate) fn status_of(name: &str) -> Result<ConsentStatus, StoreError> {
    ConsentStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or_else(|| corrupt("consent status"))
}

fn kind_of(name: &str) -> Result<SessionConsentKind, StoreError> {
    SessionConsentKind::ALL
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| corrupt("session consent kind"))
}

fn grantee_of(r: &PgRow) -> Result<Grantee, StoreError> {
    grantee(r.try_get("grantee_org_id")?, r.try_get("grantee_user_id")?)
}

/// The grantee of a consent row: an organisation or a user, exactly one of them.
pub(crate) fn grantee(org: Option<Uuid>, user: Option<Uuid>) -> Result<Grantee, StoreError> {
    match (org, user) {
        (Some(o), None) => Ok(Grantee::Org(OrgId(o))),
        (None, Some(u)) => Ok(Grantee::User(UserId(u))),
        _ => Err(corrupt("consent grantee")),
    }
}

fn consent_row(r: &PgRow) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        consent_id: ConsentId(r.try_get("consent_id")?),
        patient_id: PatientId(r.try_get("patient_id")?),
        grantee: grantee_of(r)?,
        scope: scope_of(r.try_get("scope")?)?,
        purpose: purpose_of(r.try_get("purpose")?)?,
        status: status_of(r.try_get("status")?)?,
        expires_at: r.try_get("expires_at")?,
        requested_by: r.try_get::<Option<Uuid>, _>("requested_by")?.map(UserId),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: StreamVersion(r.try_get("version")?),
        position: Position(r.try_get("position")?),
    })
}

fn session_row(r: &PgRow) -> Result<SessionConsentRow, StoreError> {
    let status: &str = r.try_get("status")?;
    let revoked = match status {
        "active" => false,
        "revoked" => true,
        _ => return Err(corrupt("session consent status")),
    };
    Ok(SessionConsentRow {
        consent_id: SessionConsentId(r.try_get("consent_id")?),
        patient_id: PatientId(r.try_get("patient_id")?),
        kind: kind_of(r.try_get("kind")?)?,
        org_id: r.try_get::<Option<Uuid>, _>("org_id")?.map(OrgId),
        user_id: r.try_get::<Option<Uuid>, _>("user_id")?.map(UserId),
        revoked,
        expires_at: r.try_get("expires_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: StreamVersion(r.try_get("version")?),
        position: Position(r.try_get("position")?),
    })
}

/// A page of rows and how many match in all (the first row carries `total`; an empty
/// page is one row of NULL columns).
fn page(rows: &[PgRow]) -> Result<(Vec<ConsentRow>, i64), StoreError> {
    let total = match rows.first() {
        Some(r) => r.try_get("total")?,
        None => 0,
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if r.try_get::<Option<Uuid>, _>("consent_id")?.is_some() {
            out.push(consent_row(r)?);
        }
    }
    Ok((out, total))
}

/// Records a consent at `row.version`/`row.position` of its stream (granted, requested,
/// approved, declined, revoked). The terms and `created_at` of an existing row are kept;
/// never moves back to an older version.
pub async fn upsert_consent(tx: &mut PgConnection, row: &ConsentRow) -> Result<(), StoreError> {
    let (org, user) = match row.grantee {
        Grantee::Org(o) => (Some(o.0), None),
        Grantee::User(u) => (None, Some(u.0)),
    };
    sqlx::query(include_str!("../sql/consent_upsert.sql"))
        .bind(row.consent_id.0)
        .bind(row.patient_id.0)
        .bind(org)
        .bind(user)
        .bind(row.scope.as_str())
        .bind(row.purpose.as_str())
        .bind(row.status.as_str())
        .bind(row.expires_at)
        .bind(row.requested_by.map(|u| u.0))
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.version.0)
        .bind(row.position.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// One consent (`None`: no such consent).
pub async fn consent(
    db: impl PgExecutor<'_>,
    id: ConsentId,
) -> Result<Option<ConsentRow>, StoreError> {
    let row = sqlx::query(include_str!("../sql/consent_get.sql"))
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(consent_row).transpose()
}

/// Every consent of `patient`, whatever its state, oldest first (for the export).
pub async fn consents_of_patient(
    db: impl PgExecutor<'_>,
    patient: PatientId,
) -> Result<Vec<ConsentRow>, StoreError> {
    let rows = sqlx::query(include_str!("../sql/consent_of_patient.sql"))
        .bind(patient.0)
        .fetch_all(db)
        .await?;
    rows.iter().map(consent_row).collect()
}

/// A user's own consents, newest first: those on `patients` (the charts linked to their
/// account) and those granted to or requested by `user` as grantee; `limit` of them after
/// `offset`, and how many in all. Patients erased are left out.
pub async fn list_own(
    db: impl PgExecutor<'_>,
    patients: &[PatientId],
    user: UserId,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ConsentRow>, i64), StoreError> {
    let ids: Vec<Uuid> = patients.iter().map(|p| p.0).collect();
    let rows = sqlx::query(include_str!("../sql/consent_list_own.sql"))
        .bind(ids)
        .bind(user.0)
        .bind(offset.max(0))
        .bind(limit.max(0))
        .fetch_all(db)
        .await?;
    page(&rows)
}

/// The consents granted to `org` or on the patients whose chart it holds, newest first;
/// `limit` of them after `offset`, and how many in all. Patients erased are left out.
pub async fn list_of_org(
    db: impl PgExecutor<'_>,
    org: OrgId,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ConsentRow>, i64), StoreError> {
    let rows = sqlx::query(include_str!("../sql/consent_list_org.sql"))
        .bind(org.0)
        .bind(offset.max(0))
        .bind(limit.max(0))
        .fetch_all(db)
        .await?;
    page(&rows)
}

/// Records a session consent at `row.version`/`row.position` of its stream (granted,
/// revoked). Its terms and `created_at` are kept; never moves back to an older version.
pub async fn upsert_session_consent(
    tx: &mut PgConnection,
    row: &SessionConsentRow,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/consent_session_upsert.sql"))
        .bind(row.consent_id.0)
        .bind(row.patient_id.0)
        .bind(row.kind.as_str())
        .bind(row.org_id.map(|o| o.0))
        .bind(row.user_id.map(|u| u.0))
        .bind(if row.revoked { "revoked" } else { "active" })
        .bind(row.expires_at)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.version.0)
        .bind(row.position.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// One session consent (`None`: no such session consent).
pub async fn session_consent(
    db: impl PgExecutor<'_>,
    id: SessionConsentId,
) -> Result<Option<SessionConsentRow>, StoreError> {
    let row = sqlx::query(include_str!("../sql/consent_session_get.sql"))
        .bind(id.0)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(session_row).transpose()
}

/// Every session consent of `patient`, whatever its state, newest first.
pub async fn session_consents_of_patient(
    db: impl PgExecutor<'_>,
    patient: PatientId,
) -> Result<Vec<SessionConsentRow>, StoreError> {
    let rows = sqlx::query(include_str!("../sql/consent_session_of_patient.sql"))
        .bind(patient.0)
        .fetch_all(db)
        .await?;
    rows.iter().map(session_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_name_reads_back_and_anything_else_is_corrupt() {
        for s in ConsentScope::ALL {
            assert_eq!(scope_of(s.as_str()).unwrap(), s);
        }
        for p in Purpose::ALL {
            assert_eq!(purpose_of(p.as_str()).unwrap(), p);
        }
        for s in ConsentStatus::ALL {
            assert_eq!(status_of(s.as_str()).unwrap(), s);
        }
        for k in SessionConsentKind::ALL {
            assert_eq!(kind_of(k.as_str()).unwrap(), k);
        }
        assert!(scope_of("everything").is_err());
        assert!(purpose_of("marketing").is_err());
        assert!(status_of("expired").is_err());
        assert!(kind_of("").is_err());
    }
}
