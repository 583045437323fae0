//! What clinical queries and commands answer with. Types holding PHI have no `Debug`.

use carelog_domain::patient::Demographics;
use carelog_domain::record::{RecordContent, RecordKind};
use carelog_domain::{GrantId, OrgId, PatientId, Position, RecordId, Role, StreamVersion, UserId};
use chrono::{DateTime, Utc};

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgView {
    /// Its id.
    pub org_id: OrgId,
    /// Its name.
    pub name: String,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Its stream version (`ETag`).
    pub version: StreamVersion,
}

/// A member of an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The member.
    pub user_id: UserId,
    /// Their org role.
    pub role: Role,
    /// Since when.
    pub added_at: DateTime<Utc>,
}

/// A patient's chart header.
#[derive(Clone)]
pub struct PatientView {
    /// The patient.
    pub patient_id: PatientId,
    /// The organisation holding the chart.
    pub org_id: OrgId,
    /// The patient's own account.
    pub user_id: Option<UserId>,
    /// Demographics.
    pub demographics: Demographics,
    /// The stream version (`ETag`).
    pub version: StreamVersion,
    /// The position of the patient's last event (read-your-writes).
    pub position: Position,
    /// Registered at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

/// An emergency access grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView {
    /// The grant.
    pub grant_id: GrantId,
    /// The patient.
    pub patient_id: PatientId,
    /// Who holds it.
    pub user_id: UserId,
    /// When it ends by itself.
    pub expires_at: DateTime<Utc>,
    /// The position of its event.
    pub position: Position,
}

/// One event of a stream as history shows it (no payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its version.
    pub version: StreamVersion,
    /// Its position in the log.
    pub position: Position,
    /// What happened.
    pub event_type: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Who.
    pub actor_id: Option<uuid::Uuid>,
}

/// A patient as of a time.
#[derive(Clone)]
pub struct PatientHistory {
    /// The patient.
    pub patient_id: PatientId,
    /// The time asked for (`None`: now).
    pub as_of: Option<DateTime<Utc>>,
    /// The version at that time (0: not yet registered).
    pub version: StreamVersion,
    /// The state at that time; `None` for an auditor's view or before registration.
    pub state: Option<PatientView>,
    /// The events up to that time.
    pub events: Vec<HistoryEntry>,
}

/// A clinical record (its current version).
#[derive(Clone)]
pub struct RecordView {
    /// The record.
    pub record_id: RecordId,
    /// Whose.
    pub patient_id: PatientId,
    /// The patient's organisation when written.
    pub org_id: OrgId,
    /// Its kind.
    pub kind: RecordKind,
    /// The current content.
    pub content: RecordContent,
    /// Who wrote the current version.
    pub author_id: UserId,
    /// Voided (with this reason)?
    pub void_reason: Option<String>,
    /// The stream version (`ETag`).
    pub version: StreamVersion,
    /// The position of its last event.
    pub position: Position,
    /// Written at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

/// One version of a record.
#[derive(Clone)]
pub struct RecordVersionView {
    /// The stream version.
    pub version: StreamVersion,
    /// `created`, `amended` or `voided`.
    pub change: &'static str,
    /// The content of this version (`None` for a void, or an auditor's view).
    pub content: Option<RecordContent>,
    /// Who.
    pub author_id: UserId,
    /// Why (a void's reason; `None` in an auditor's view).
    pub reason: Option<String>,
    /// When it was stored.
    pub at: DateTime<Utc>,
}

/// Every version of a record.
#[derive(Clone)]
pub struct RecordHistory {
    /// The record.
    pub record_id: RecordId,
    /// Whose.
    pub patient_id: PatientId,
    /// Its kind.
    pub kind: RecordKind,
    /// Oldest first.
    pub versions: Vec<RecordVersionView>,
    /// An auditor's view: no content.
    pub audit_only: bool,
}
