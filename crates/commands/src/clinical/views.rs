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

/// A consent as its listings show it: ids, terms and state, no PHI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentView {
    /// The consent.
    pub consent_id: carelog_domain::ConsentId,
    /// The patient who consents.
    pub patient_id: PatientId,
    /// To whom.
    pub grantee: carelog_domain::access::Grantee,
    /// What it covers.
    pub scope: carelog_domain::access::ConsentScope,
    /// What for.
    pub purpose: carelog_domain::consent::Purpose,
    /// Its state now (`expired`: active, but `expires_at` has passed).
    pub status: carelog_domain::consent::EffectiveConsentStatus,
    /// When it lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// The doctor who asked for it (a request), `None` for a grant by the patient.
    pub requested_by: Option<UserId>,
    /// Granted or requested at.
    pub created_at: DateTime<Utc>,
    /// State last changed at.
    pub updated_at: DateTime<Utc>,
    /// The stream version.
    pub version: StreamVersion,
    /// The position of its last event.
    pub position: Position,
}

/// A consent to record a clinical session, or to AI transcription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConsentView {
    /// The session consent.
    pub consent_id: carelog_domain::SessionConsentId,
    /// The patient who consents.
    pub patient_id: PatientId,
    /// Recording or AI transcription.
    pub kind: carelog_domain::session_consent::SessionConsentKind,
    /// Limited to sessions of this organisation, if given.
    pub org_id: Option<OrgId>,
    /// Limited to sessions with this clinician, if given.
    pub user_id: Option<UserId>,
    /// Its state now.
    pub status: carelog_domain::session_consent::SessionConsentStatus,
    /// When it lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// Granted at.
    pub created_at: DateTime<Utc>,
    /// State last changed at.
    pub updated_at: DateTime<Utc>,
    /// The stream version.
    pub version: StreamVersion,
    /// The position of its last event.
    pub position: Position,
}

/// A data-subject request (GDPR), as its inline row holds it: ids, status and times,
/// no reason (reasons live only in the sealed events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrView {
    /// The request.
    pub dsr_id: carelog_domain::DsrId,
    /// Whose data.
    pub patient_id: PatientId,
    /// `erasure` or `export`.
    pub kind: &'static str,
    /// `pending`, `approved`, `completed` or `rejected`.
    pub status: carelog_domain::dsr::DsrStatus,
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
    /// The request stream's version (`ETag`).
    pub version: StreamVersion,
    /// The position of its last event.
    pub position: Position,
}

/// A legal-retention hold on an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHoldView {
    /// The organisation.
    pub org_id: OrgId,
    /// The administrator's case reference.
    pub reason: String,
    /// Who placed it.
    pub placed_by: UserId,
    /// When.
    pub placed_at: DateTime<Utc>,
    /// The organisation stream's version after it.
    pub version: StreamVersion,
}
