//! The access policy: one pure function, [`decide`], answers every "may this caller do
//! this to that?" of carelog (API.md "Roles", tenant isolation, the patient's own data,
//! consent, emergency access). The HTTP layer calls it for every route — a route-level
//! check of the caller's roles first ([`route_allows`], like a gateway), then the
//! resource-level decision — so no handler can forget it.
//!
//! Its inputs are facts read from *current* state (DESIGN.md "Consistency of
//! decisions"): the caller's roles and memberships, the patient's organisation and
//! account, consents and emergency grants — never a lagging read model.
//!
//! Where the existence of a resource is itself sensitive (patients, records), a caller
//! with no relationship to it gets [`Decision::NotFound`], not a denial.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{GrantId, OrgId, PatientId, UserId};
use crate::roles::Role;

/// One organisation membership of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// The organisation.
    pub org_id: OrgId,
    /// ORG:ADMIN, ORG:DOCTOR, ORG:STAFF or ORG:AUDITOR.
    pub role: Role,
}

/// The caller, as current state knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// Base and platform roles held now.
    pub roles: Vec<Role>,
    /// Organisation memberships held now.
    pub memberships: Vec<Membership>,
}

/// What current state knows of a patient (no PHI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatientFacts {
    /// The patient.
    pub patient_id: PatientId,
    /// The organisation holding the chart.
    pub org_id: OrgId,
    /// The patient's own account, if linked.
    pub user_id: Option<UserId>,
    /// Erased (GDPR): every access answers 410.
    pub erased: bool,
}

/// To whom a consent gives access. In JSON: `{"type": "org"|"user", "id": "<uuid>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "id",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Grantee {
    /// The doctors of an organisation.
    Org(OrgId),
    /// One user (a doctor).
    User(UserId),
}

/// What a consent covers (`all`, `demographics`, `clinical_records` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentScope {
    /// Demographics and clinical records.
    All,
    /// Demographics only.
    Demographics,
    /// Clinical records only.
    ClinicalRecords,
}

/// The lifecycle state of a consent (`requested`, `active`, `declined`, `revoked`).
/// Expiry is not a state: an `active` consent whose `expires_at` has passed is shown as
/// expired ([`crate::consent::EffectiveConsentStatus`]) and allows nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Asked for by a doctor, not yet approved by the patient.
    Requested,
    /// In force (until `expires_at`, if any).
    Active,
    /// Refused by the patient.
    Declined,
    /// Withdrawn by the patient.
    Revoked,
}

impl ConsentScope {
    /// Every scope.
    pub const ALL: [ConsentScope; 3] = [
        ConsentScope::All,
        ConsentScope::Demographics,
        ConsentScope::ClinicalRecords,
    ];

    /// The snake_case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentScope::All => "all",
            ConsentScope::Demographics => "demographics",
            ConsentScope::ClinicalRecords => "clinical_records",
        }
    }
}

impl ConsentStatus {
    /// Every lifecycle state.
    pub const ALL: [ConsentStatus; 4] = [
        ConsentStatus::Requested,
        ConsentStatus::Active,
        ConsentStatus::Declined,
        ConsentStatus::Revoked,
    ];

    /// The snake_case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Requested => "requested",
            ConsentStatus::Active => "active",
            ConsentStatus::Declined => "declined",
            ConsentStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for ConsentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A consent on one patient, as current state knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentFacts {
    /// The patient who consents.
    pub patient_id: PatientId,
    /// Who may access.
    pub grantee: Grantee,
    /// What.
    pub scope: ConsentScope,
    /// Where it is in its lifecycle.
    pub status: ConsentStatus,
    /// When it lapses by itself.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An emergency ("break-glass") grant, as current state knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyFacts {
    /// The grant.
    pub grant_id: GrantId,
    /// The patient.
    pub patient_id: PatientId,
    /// Who holds it.
    pub user_id: UserId,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// What is being acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// The platform itself (creating an organisation).
    Platform,
    /// An organisation (its details, members, patient list).
    Org(OrgId),
    /// A patient (demographics, history, emergency access).
    Patient(&'a PatientFacts),
    /// A clinical record of a patient (or the list of them).
    Record(&'a PatientFacts),
    /// One consent on a patient, to a grantee (approve, decline, revoke).
    Consent {
        /// The patient who consents.
        patient: &'a PatientFacts,
        /// Who the consent is (or would be) to.
        grantee: Grantee,
    },
    /// What belongs to the caller themself (their consents, as patient or as grantee):
    /// the query filters by the caller, so there is nothing else to decide on.
    Own,
}

/// Every action the policy decides. One per route class of API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `POST /api/organizations`.
    CreateOrg,
    /// `GET /api/organizations/:id`.
    ReadOrg,
    /// `POST /api/organizations/:id/members`.
    AddMember,
    /// `GET /api/organizations/:id/members`.
    ListMembers,
    /// `DELETE /api/organizations/:id/members/:user_id`.
    RemoveMember,
    /// `POST /api/organizations/:id/patients`.
    CreatePatient,
    /// `GET /api/organizations/:id/patients`.
    ListPatients,
    /// `GET /api/patients/:id`.
    ReadPatient,
    /// `PATCH /api/patients/:id`.
    UpdatePatient,
    /// `GET /api/patients/:id/history`.
    ReadPatientHistory,
    /// `POST /api/patients/:id/clinical-records`.
    CreateRecord,
    /// `GET /api/patients/:id/clinical-records`, `GET /api/clinical-records/:id`.
    ReadRecord,
    /// `PATCH /api/clinical-records/:id`.
    AmendRecord,
    /// `POST /api/clinical-records/:id/void`.
    VoidRecord,
    /// `GET /api/clinical-records/:id/history`.
    ReadRecordHistory,
    /// `POST /api/patients/:id/emergency-access`.
    EmergencyAccess,
    /// `POST /api/consent/grant`: the patient grants a consent on their own chart.
    GrantConsent,
    /// `POST /api/consent/request`: a doctor asks a patient for a consent.
    RequestConsent,
    /// `POST /api/consent/:id/approve`, `POST /api/consent/:id/decline`: the patient
    /// answers a request.
    DecideConsent,
    /// `POST /api/consent/:id/revoke`: the patient withdraws a consent.
    RevokeConsent,
    /// `GET /api/consent`: the caller's own consents (as patient or grantee).
    ListOwnConsents,
    /// `GET /api/organizations/:id/consents`: consents to the organisation and on its
    /// patients.
    ListOrgConsents,
    /// `POST /api/sessions/consents`, `POST /api/sessions/consents/:id/revoke`: the
    /// patient grants or revokes a session consent.
    ManageSessionConsent,
    /// `GET /api/sessions/consents`: a patient's session consents.
    ReadSessionConsents,
    /// `POST /api/patients/:id/erasure-request`.
    RequestErasure,
    /// `GET /api/patients/:id/dsr`: a patient's data-subject requests.
    ReadDsr,
    /// `GET /api/patients/:id/export`.
    Export,
    /// `POST /api/dsr/:id/approve`, `POST /api/dsr/:id/reject`.
    DecideErasure,
    /// `PUT /api/organizations/:id/legal-hold`, `DELETE /api/organizations/:id/legal-hold`:
    /// placing or lifting a legal-retention hold (SUPER:ADMIN, APP:ADMIN).
    ManageLegalHold,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 29] = [
        Action::CreateOrg,
        Action::ReadOrg,
        Action::AddMember,
        Action::ListMembers,
        Action::RemoveMember,
        Action::CreatePatient,
        Action::ListPatients,
        Action::ReadPatient,
        Action::UpdatePatient,
        Action::ReadPatientHistory,
        Action::CreateRecord,
        Action::ReadRecord,
        Action::AmendRecord,
        Action::VoidRecord,
        Action::ReadRecordHistory,
        Action::EmergencyAccess,
        Action::GrantConsent,
        Action::RequestConsent,
        Action::DecideConsent,
        Action::RevokeConsent,
        Action::ListOwnConsents,
        Action::ListOrgConsents,
        Action::ManageSessionConsent,
        Action::ReadSessionConsents,
        Action::RequestErasure,
        Action::ReadDsr,
        Action::Export,
        Action::DecideErasure,
        Action::ManageLegalHold,
    ];
}

/// On what grounds access is allowed (it shapes the answer and the access event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grounds {
    /// A platform role (SUPER:ADMIN, APP:ADMIN, APP:AUDITOR).
    Platform,
    /// A role in the organisation concerned.
    Membership,
    /// The patient's own data.
    Own,
    /// An active consent.
    Consent,
    /// An active emergency grant: reads are flagged as emergency access.
    Emergency(GrantId),
    /// An auditor's view: who did what and when, never PHI (history without state).
    AuditOnly,
    /// A base role that needs nothing more (BASE:DOCTOR creating an organisation,
    /// any doctor declaring an emergency).
    BaseRole,
}

/// Why access is refused (no PHI; shown to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The caller's roles do not allow this action at all.
    Role,
    /// The caller's org role does not allow it in this organisation.
    OrgRole,
    /// ORG:STAFF never see clinical content.
    NoClinicalAccess,
    /// A patient may read, not change, their own chart.
    OwnReadOnly,
    /// The consent that would allow it is missing, revoked, expired or out of scope.
    NoConsent,
    /// Only the patient decides on their consents.
    PatientOnly,
}

/// The answer of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow(Grounds),
    /// 403.
    Deny(DenyReason),
    /// 404: the caller may not know the resource exists.
    NotFound,
    /// 410: the patient was erased.
    Gone,
}

/// The context of a decision: the time, and what current state holds on the patient
/// concerned (pass only the consents and grants of that patient; others are ignored).
#[derive(Debug, Clone, Copy)]
pub struct AccessContext<'a> {
    /// Now (expiry of consents and grants).
    pub now: DateTime<Utc>,
    /// Consents on the patient concerned.
    pub consents: &'a [ConsentFacts],
    /// Emergency grants on the patient concerned.
    pub emergency: &'a [EmergencyFacts],
}

mod policy;
#[cfg(test)]
mod tests;

pub use policy::{decide, route_allows};
