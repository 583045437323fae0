//! A patient's export (GDPR Art. 15 access and Art. 20 portability): everything carelog
//! holds on one patient, as the JSON export and as a FHIR R4 `Bundle` ([`to_fhir`]).
//!
//! Pure: the service loads the patient's current state, every version of every record,
//! the consents, session consents and data-subject requests *of that patient only*,
//! fills a [`PatientExportBundle`] and hands it here (or serialises it as the JSON
//! export). Nothing here reads a clock: `exported_at` comes in with the bundle.
//!
//! The JSON export is the serde form of [`PatientExportBundle`]: snake_case field names
//! as declared below, times as RFC 3339 UTC, ids as hyphenated uuids, every version of
//! every record (oldest first). These names are a contract with the patient: add fields,
//! never rename them.
//!
//! Every type here holds PHI (or sits next to it), so none implements `Debug`.
//!
//! Each export is audited by an [`ExportEvent`] on a stream of its own.

mod audit;
mod fhir;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{ConsentScope, Grantee};
use crate::ids::{OrgId, PatientId, RecordId, StreamVersion, UserId};
use crate::patient::Demographics;
use crate::record::{RecordContent, RecordKind};

pub use audit::{ExportEvent, ExportFormat, EXPORT_EVENTS};
pub use fhir::{
    to_fhir, CARELOG_NATIONAL_ID_SYSTEM, CARELOG_RECORD_DATA_EXTENSION, CARELOG_RECORD_KIND_SYSTEM,
    CARELOG_SESSION_CONSENT_KIND_SYSTEM,
};

/// The whole export of one patient: the JSON export as it is, and the input of
/// [`to_fhir`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientExportBundle {
    /// When the export was made (the FHIR `Bundle.timestamp`).
    pub exported_at: DateTime<Utc>,
    /// The patient's current demographics.
    pub patient: PatientExport,
    /// Every clinical record of the patient, voided ones included, each with all its
    /// versions.
    pub records: Vec<RecordExport>,
    /// Every consent on the patient, whatever its status.
    pub consents: Vec<ConsentExport>,
    /// Every consent to record a clinical session (or to AI transcription).
    pub session_consents: Vec<SessionConsentExport>,
    /// Every data-subject request of the patient (JSON export only: FHIR R4 has no
    /// resource for it in this export).
    pub dsrs: Vec<DsrExport>,
}

/// The patient as current state knows them.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PatientExport {
    /// The patient.
    pub patient_id: PatientId,
    /// The organisation holding the chart.
    pub org_id: OrgId,
    /// Current demographics.
    pub demographics: Demographics,
    /// The patient's own account, when linked.
    pub user_id: Option<UserId>,
    /// The version of the `patient-<uuid>` stream these demographics are at.
    pub version: StreamVersion,
    /// When the patient was registered.
    pub registered_at: DateTime<Utc>,
    /// When the demographics last changed (`registered_at` if never).
    pub updated_at: DateTime<Utc>,
}

/// One clinical record with every version. The current content is the last version.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordExport {
    /// The record.
    pub record_id: RecordId,
    /// What kind of record (decides the FHIR resource).
    pub kind: RecordKind,
    /// Every version of the content, oldest first (version 1 is the creation).
    pub versions: Vec<RecordVersionExport>,
    /// Set when the record was voided (entered in error).
    pub voided: Option<VoidExport>,
}

impl RecordExport {
    /// The current content: the last version (`None` only for a record with no version,
    /// which a created record never is).
    pub fn current(&self) -> Option<&RecordVersionExport> {
        self.versions.last()
    }
}

/// One version of a record's content.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordVersionExport {
    /// The version of the `record-<uuid>` stream that wrote this content.
    pub version: StreamVersion,
    /// The content of this version.
    pub content: RecordContent,
    /// When this version was written.
    pub at: DateTime<Utc>,
}

/// Why and when a record was voided.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct VoidExport {
    /// The reason given (free text).
    pub reason: String,
    /// When it was voided.
    pub at: DateTime<Utc>,
}

/// To whom a consent gives access; JSON `{"org_id": …}` or `{"user_id": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportGrantee {
    /// The doctors of an organisation.
    OrgId(OrgId),
    /// One user (a doctor).
    UserId(UserId),
}

impl From<Grantee> for ExportGrantee {
    fn from(g: Grantee) -> Self {
        match g {
            Grantee::Org(o) => ExportGrantee::OrgId(o),
            Grantee::User(u) => ExportGrantee::UserId(u),
        }
    }
}

/// What a consent covers, as in the API: `all`, `demographics`, `clinical_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportConsentScope {
    /// Demographics and clinical records.
    All,
    /// Demographics only.
    Demographics,
    /// Clinical records only.
    ClinicalRecords,
}

impl From<ConsentScope> for ExportConsentScope {
    fn from(s: ConsentScope) -> Self {
        match s {
            ConsentScope::All => ExportConsentScope::All,
            ConsentScope::Demographics => ExportConsentScope::Demographics,
            ConsentScope::ClinicalRecords => ExportConsentScope::ClinicalRecords,
        }
    }
}

/// Why access is consented to, as in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportConsentPurpose {
    /// Treatment.
    Treatment,
    /// Payment.
    Payment,
    /// Healthcare operations.
    Operations,
    /// Research.
    Research,
}

/// Where a consent (or a session consent) is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportConsentStatus {
    /// Asked for by a doctor, not yet approved.
    Requested,
    /// In force.
    Active,
    /// Refused by the patient.
    Declined,
    /// Withdrawn by the patient.
    Revoked,
    /// Lapsed at its `expires_at`.
    Expired,
}

/// One consent on the patient.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentExport {
    /// The consent (the uuid of its `consent-<uuid>` stream).
    pub consent_id: Uuid,
    /// Who may access.
    pub grantee: ExportGrantee,
    /// What.
    pub scope: ExportConsentScope,
    /// Why.
    pub purpose: ExportConsentPurpose,
    /// Where it is in its lifecycle.
    pub status: ExportConsentStatus,
    /// When it lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was granted or requested.
    pub created_at: DateTime<Utc>,
}

/// One consent to record a clinical session (or to AI transcription).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionConsentExport {
    /// The session consent.
    pub id: Uuid,
    /// What is consented to, as the API names it (e.g. recording, AI transcription).
    pub kind: String,
    /// Where it is in its lifecycle.
    pub status: ExportConsentStatus,
    /// When it was given.
    pub created_at: DateTime<Utc>,
}

/// One data-subject request of the patient.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DsrExport {
    /// The request (the uuid of its `dsr-<uuid>` stream).
    pub dsr_id: Uuid,
    /// What is asked, as the API names it (`erasure`).
    pub kind: String,
    /// `pending`, `approved`, `completed` or `rejected`.
    pub status: String,
    /// When it was asked.
    pub requested_at: DateTime<Utc>,
    /// When it was approved or rejected.
    pub decided_at: Option<DateTime<Utc>>,
}
