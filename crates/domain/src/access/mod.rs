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

use chrono::{DateTime, Utc};

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

/// To whom a consent gives access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    /// The doctors of an organisation.
    Org(OrgId),
    /// One user (a doctor).
    User(UserId),
}

/// What a consent covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentScope {
    /// Demographics and clinical records.
    All,
    /// Demographics only.
    Demographics,
    /// Clinical records only.
    ClinicalRecords,
}

/// The lifecycle state of a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
