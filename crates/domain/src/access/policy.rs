//! The rules of [`decide`] and [`route_allows`] (API.md "Roles").
//!
//! How a patient-scoped decision is reached, in this order:
//! 1. the grounds that allow (a role in the patient's organisation, the patient's own
//!    data, an active consent in scope, an active emergency grant, an auditor's view);
//! 2. the refusals of callers who may know the patient exists (a member of the patient's
//!    organisation, the patient, a doctor with a consent or grant that does not cover the
//!    action): 403 with a reason;
//! 3. everyone else: 404 — tenant isolation, the patient's existence is not revealed.
//!
//! Then, on an erased patient, anything but 404 becomes 410: a caller with no
//! relationship still learns nothing. Two actions are exempt, because the erasure is
//! their own business and API.md has them answer after it: reading the patient's
//! data-subject requests ([`Action::ReadDsr`]: the DSR answers `completed`) and deciding
//! one ([`Action::DecideErasure`]: approving a completed request again is the DSR's 409,
//! not a 410). Neither reveals PHI: a DSR's reasons went with the patient's key.

use super::{
    AccessContext, Action, ConsentScope, ConsentStatus, Decision, DenyReason, Grantee, Grounds,
    PatientFacts, Principal, Resource,
};
use crate::ids::{GrantId, OrgId};
use crate::roles::Role;

/// Whether a caller holding `roles` and `memberships` may use the routes of `action`
/// at all (the gateway check, before any resource is loaded). `false` → 403.
///
/// It checks roles only, and never refuses what [`decide`] could allow: where `decide`
/// needs a role whatever the resource (creating an organisation, writing a record,
/// declaring an emergency), this asks for that role; every other route is open to any
/// authenticated caller and left to `decide`.
pub fn route_allows(principal: &Principal, action: Action) -> bool {
    match action {
        Action::CreateOrg => may_create_org(principal).is_some(),
        Action::EmergencyAccess => may_break_glass(principal).is_some(),
        Action::CreateRecord | Action::AmendRecord | Action::VoidRecord => is_doctor(principal),
        Action::RequestConsent => is_doctor(principal),
        Action::DecideErasure | Action::ManageLegalHold => is_platform_admin(principal),
        // Acting on one's own chart needs no role (a doctor may be a patient too).
        Action::GrantConsent
        | Action::DecideConsent
        | Action::RevokeConsent
        | Action::ListOwnConsents
        | Action::ListOrgConsents
        | Action::ManageSessionConsent
        | Action::ReadSessionConsents
        | Action::RequestErasure
        | Action::ReadDsr
        | Action::Export
        | Action::ReadOrg
        | Action::AddMember
        | Action::ListMembers
        | Action::RemoveMember
        | Action::CreatePatient
        | Action::ListPatients
        | Action::ReadPatient
        | Action::UpdatePatient
        | Action::ReadPatientHistory
        | Action::ReadRecord
        | Action::ReadRecordHistory => true,
    }
}

/// The decision on `principal` doing `action` to `resource` in `ctx`.
///
/// Each action expects one kind of resource (`CreateOrg`: [`Resource::Platform`];
/// organisation routes, `CreatePatient`, `ListPatients`, `ListOrgConsents`,
/// `ManageLegalHold`: [`Resource::Org`]; `ReadPatient`, `UpdatePatient`, `ReadPatientHistory`,
/// `EmergencyAccess`, `GrantConsent`, `RequestConsent`, the session consent, erasure,
/// DSR and export routes: [`Resource::Patient`]; record routes: [`Resource::Record`];
/// `DecideConsent`, `RevokeConsent`: [`Resource::Consent`]; `ListOwnConsents`:
/// [`Resource::Own`]). Any other pairing is a caller's bug and fails closed with
/// [`Decision::NotFound`].
///
/// Who may do what with consents and DSRs (API.md "Consent", "GDPR"):
/// - grant, approve, decline, revoke a consent; grant or revoke a session consent: the
///   patient only (their own chart); anyone else who knows the patient or the consent
///   gets 403 `PatientOnly`;
/// - request a consent: any doctor (BASE:DOCTOR, ORG:DOCTOR of any organisation), on
///   any patient — the doctor names the patient; the patient then answers;
/// - list one's own consents: anyone (the query filters by the caller);
/// - an organisation's consents: its ORG:ADMIN and ORG:DOCTOR, and platform admins;
/// - read session consents: the patient, the ORG:DOCTORs of the patient's organisation,
///   doctors holding an active consent on the patient;
/// - request an erasure, export: the patient, the ORG:ADMIN of the patient's
///   organisation on their behalf; read DSRs: the same and platform admins;
/// - approve or reject an erasure: SUPER:ADMIN, APP:ADMIN;
/// - place or lift an organisation's legal hold: SUPER:ADMIN, APP:ADMIN (its members
///   are refused by role, others may not know the organisation exists).
pub fn decide(
    principal: &Principal,
    action: Action,
    resource: Resource<'_>,
    ctx: &AccessContext<'_>,
) -> Decision {
    match (action, resource) {
        (Action::CreateOrg, Resource::Platform) => create_org(principal),
        (Action::ReadOrg | Action::ListMembers, Resource::Org(org)) => read_org(principal, org),
        (Action::AddMember | Action::RemoveMember, Resource::Org(org)) => {
            manage_members(principal, org)
        }
        (Action::CreatePatient | Action::ListPatients, Resource::Org(org)) => {
            org_patients(principal, org)
        }
        (Action::ListOwnConsents, Resource::Own) => Decision::Allow(Grounds::Own),
        (Action::ListOrgConsents, Resource::Org(org)) => org_consents(principal, org),
        (Action::ManageLegalHold, Resource::Org(org)) => manage_legal_hold(principal, org),
        (Action::ReadDsr | Action::DecideErasure, Resource::Patient(patient)) => {
            // Answered after the erasure too (see the module's documentation).
            on_patient(&Facts::gather(principal, patient, ctx), action)
        }
        (Action::DecideConsent | Action::RevokeConsent, Resource::Consent { patient, grantee }) => {
            let decision = on_consent(principal, &Facts::gather(principal, patient, ctx), grantee);
            if patient.erased && decision != Decision::NotFound {
                Decision::Gone
            } else {
                decision
            }
        }
        (
            Action::ReadPatient
            | Action::UpdatePatient
            | Action::ReadPatientHistory
            | Action::EmergencyAccess
            | Action::GrantConsent
            | Action::RequestConsent
            | Action::ManageSessionConsent
            | Action::ReadSessionConsents
            | Action::RequestErasure
            | Action::Export,
            Resource::Patient(patient),
        )
        | (
            Action::CreateRecord
            | Action::ReadRecord
            | Action::AmendRecord
            | Action::VoidRecord
            | Action::ReadRecordHistory,
            Resource::Record(patient),
        ) => {
            let decision = on_patient(&Facts::gather(principal, patient, ctx), action);
            if patient.erased && decision != Decision::NotFound {
                Decision::Gone
            } else {
                decision
            }
        }
        _ => Decision::NotFound,
    }
}

// ---- roles --------------------------------------------------------------------------

fn has(principal: &Principal, role: Role) -> bool {
    principal.roles.contains(&role)
}

/// SUPER:ADMIN includes APP:ADMIN wherever APP:ADMIN is allowed.
fn is_platform_admin(principal: &Principal) -> bool {
    has(principal, Role::SuperAdmin) || has(principal, Role::AppAdmin)
}

/// The caller's org role in `org`, if a member.
fn org_role(principal: &Principal, org: OrgId) -> Option<Role> {
    principal
        .memberships
        .iter()
        .find(|m| m.org_id == org)
        .map(|m| m.role)
}

/// ORG:DOCTOR of `org`.
fn is_doctor_of(principal: &Principal, org: OrgId) -> bool {
    principal
        .memberships
        .iter()
        .any(|m| m.org_id == org && m.role == Role::OrgDoctor)
}

/// A doctor: BASE:DOCTOR, or ORG:DOCTOR of any organisation.
fn is_doctor(principal: &Principal) -> bool {
    has(principal, Role::BaseDoctor)
        || principal
            .memberships
            .iter()
            .any(|m| m.role == Role::OrgDoctor)
}

/// On what grounds the caller may create an organisation.
fn may_create_org(principal: &Principal) -> Option<Grounds> {
    if is_platform_admin(principal) {
        Some(Grounds::Platform)
    } else if has(principal, Role::BaseDoctor) {
        Some(Grounds::BaseRole)
    } else {
        None
    }
}

/// On what grounds the caller may declare an emergency: any doctor, or a SUPER:ADMIN
/// (not an APP:ADMIN: API.md names SUPER:ADMIN alone).
fn may_break_glass(principal: &Principal) -> Option<Grounds> {
    if is_doctor(principal) {
        Some(Grounds::BaseRole)
    } else if has(principal, Role::SuperAdmin) {
        Some(Grounds::Platform)
    } else {
        None
    }
}

// ---- platform and organisation routes -----------------------------------------------

fn create_org(principal: &Principal) -> Decision {
    may_create_org(principal).map_or(Decision::Deny(DenyReason::Role), Decision::Allow)
}

/// Any member reads the organisation and its members; platform admins too. Others may
/// not know it exists.
fn read_org(principal: &Principal, org: OrgId) -> Decision {
    if org_role(principal, org).is_some() {
        Decision::Allow(Grounds::Membership)
    } else if is_platform_admin(principal) {
        Decision::Allow(Grounds::Platform)
    } else {
        Decision::NotFound
    }
}

/// The org's ORG:ADMIN manages members. SUPER:ADMIN and APP:ADMIN may too, without being
/// members (the platform support case: an organisation that lost its last admin
/// account); that is allowed on platform grounds, so the access event says so.
fn manage_members(principal: &Principal, org: OrgId) -> Decision {
    match org_role(principal, org) {
        Some(Role::OrgAdmin) => Decision::Allow(Grounds::Membership),
        _ if is_platform_admin(principal) => Decision::Allow(Grounds::Platform),
        Some(_) => Decision::Deny(DenyReason::OrgRole),
        None => Decision::NotFound,
    }
}

/// Creating and listing an org's patients: its ORG:ADMIN, ORG:DOCTOR and ORG:STAFF.
/// Platform admins are not members: patients are not theirs to see.
fn org_patients(principal: &Principal, org: OrgId) -> Decision {
    match org_role(principal, org) {
        Some(Role::OrgAdmin | Role::OrgDoctor | Role::OrgStaff) => {
            Decision::Allow(Grounds::Membership)
        }
        Some(_) => Decision::Deny(DenyReason::OrgRole),
        None => Decision::NotFound,
    }
}

/// An organisation's consents: its ORG:ADMIN and ORG:DOCTOR; platform admins (who
/// support the organisation; the list holds ids, scopes and states, no PHI).
fn org_consents(principal: &Principal, org: OrgId) -> Decision {
    match org_role(principal, org) {
        Some(Role::OrgAdmin | Role::OrgDoctor) => Decision::Allow(Grounds::Membership),
        _ if is_platform_admin(principal) => Decision::Allow(Grounds::Platform),
        Some(_) => Decision::Deny(DenyReason::OrgRole),
        None => Decision::NotFound,
    }
}

/// Legal holds: platform admins only. The organisation's members know it exists (403);
/// anyone else learns nothing (404).
fn manage_legal_hold(principal: &Principal, org: OrgId) -> Decision {
    if is_platform_admin(principal) {
        Decision::Allow(Grounds::Platform)
    } else if org_role(principal, org).is_some() {
        Decision::Deny(DenyReason::Role)
    } else {
        Decision::NotFound
    }
}

// ---- patient and record routes ------------------------------------------------------

/// What the caller has to do with one patient, gathered once.
struct Facts {
    /// Their role in the patient's organisation.
    org_role: Option<Role>,
    /// The patient's own account.
    own: bool,
    /// An active consent covering demographics held by this doctor.
    consent_demographics: bool,
    /// An active consent covering clinical records held by this doctor.
    consent_records: bool,
    /// An active consent of any scope held by this doctor (they know the patient).
    consent_any: bool,
    /// An active emergency grant of this caller on this patient.
    emergency: Option<GrantId>,
    /// APP:AUDITOR.
    app_auditor: bool,
    /// May declare an emergency, and on what grounds.
    break_glass: Option<Grounds>,
    /// A doctor (BASE:DOCTOR, or ORG:DOCTOR anywhere).
    doctor: bool,
    /// SUPER:ADMIN or APP:ADMIN.
    platform_admin: bool,
}

impl Facts {
    fn gather(principal: &Principal, patient: &PatientFacts, ctx: &AccessContext<'_>) -> Self {
        let consent = |scope: Option<ConsentScope>| consented(principal, patient, ctx, scope);
        Self {
            org_role: org_role(principal, patient.org_id),
            own: patient.user_id == Some(principal.user_id),
            consent_demographics: consent(Some(ConsentScope::Demographics)),
            consent_records: consent(Some(ConsentScope::ClinicalRecords)),
            consent_any: consent(None),
            emergency: emergency_grant(principal, patient, ctx),
            app_auditor: has(principal, Role::AppAuditor),
            break_glass: may_break_glass(principal),
            doctor: is_doctor(principal),
            platform_admin: is_platform_admin(principal),
        }
    }

    /// Whether the caller may know the patient exists (and so gets 403 rather than 404).
    fn knows_patient(&self) -> bool {
        self.org_role.is_some() || self.own || self.consent_any || self.emergency.is_some()
    }

    /// The refusal of a caller who knows the patient; 404 for everyone else.
    fn refuse(&self, reason: DenyReason) -> Decision {
        if self.knows_patient() {
            Decision::Deny(reason)
        } else {
            Decision::NotFound
        }
    }
}

/// Whether a doctor holds an active, unexpired consent of `patient` granted to them or
/// to an organisation where they are ORG:DOCTOR, covering `needed` (`None`: any scope).
fn consented(
    principal: &Principal,
    patient: &PatientFacts,
    ctx: &AccessContext<'_>,
    needed: Option<ConsentScope>,
) -> bool {
    is_doctor(principal)
        && ctx.consents.iter().any(|c| {
            let in_force = c.patient_id == patient.patient_id
                && c.status == ConsentStatus::Active
                && c.expires_at.is_none_or(|at| at > ctx.now);
            let to_them = match c.grantee {
                Grantee::User(user) => user == principal.user_id,
                Grantee::Org(org) => is_doctor_of(principal, org),
            };
            let in_scope = match needed {
                None => true,
                Some(scope) => c.scope == ConsentScope::All || c.scope == scope,
            };
            in_force && to_them && in_scope
        })
}

/// The caller's active emergency grant on `patient`, if any.
fn emergency_grant(
    principal: &Principal,
    patient: &PatientFacts,
    ctx: &AccessContext<'_>,
) -> Option<GrantId> {
    ctx.emergency
        .iter()
        .find(|g| {
            g.patient_id == patient.patient_id
                && g.user_id == principal.user_id
                && g.expires_at > ctx.now
        })
        .map(|g| g.grant_id)
}

fn on_patient(f: &Facts, action: Action) -> Decision {
    match action {
        Action::ReadPatient => read_patient(f).unwrap_or_else(|| refuse_patient_read(f)),
        Action::ReadPatientHistory => read_patient(f)
            .or_else(|| audit_view(f))
            .unwrap_or_else(|| refuse_patient_read(f)),
        Action::UpdatePatient => update_patient(f),
        Action::CreateRecord | Action::AmendRecord | Action::VoidRecord => write_record(f),
        Action::ReadRecord => read_record(f).unwrap_or_else(|| refuse_record(f)),
        Action::ReadRecordHistory => read_record(f)
            .or_else(|| audit_view(f))
            .unwrap_or_else(|| refuse_record(f)),
        Action::EmergencyAccess => f
            .break_glass
            .map_or(Decision::Deny(DenyReason::Role), Decision::Allow),
        Action::GrantConsent | Action::ManageSessionConsent => patient_only(f),
        Action::RequestConsent => request_consent(f),
        Action::ReadSessionConsents => read_session_consents(f),
        Action::RequestErasure | Action::Export => on_behalf(f, false),
        Action::ReadDsr => on_behalf(f, true),
        Action::DecideErasure => decide_erasure(f),
        Action::CreateOrg
        | Action::ReadOrg
        | Action::AddMember
        | Action::ListMembers
        | Action::RemoveMember
        | Action::CreatePatient
        | Action::ListPatients
        | Action::DecideConsent
        | Action::RevokeConsent
        | Action::ListOwnConsents
        | Action::ListOrgConsents
        | Action::ManageLegalHold => Decision::NotFound,
    }
}

// ---- consent, session consent, erasure ----------------------------------------------

/// Only the patient acts on their consents; the patient's organisation and anyone else
/// who knows the patient are told so, strangers learn nothing.
fn patient_only(f: &Facts) -> Decision {
    if f.own {
        Decision::Allow(Grounds::Own)
    } else {
        f.refuse(DenyReason::PatientOnly)
    }
}

/// Approving, declining, revoking a consent: the patient. The grantee (the doctor, a
/// member of the grantee organisation) knows the consent exists: 403, like those who
/// know the patient.
fn on_consent(principal: &Principal, f: &Facts, grantee: Grantee) -> Decision {
    let is_grantee = match grantee {
        Grantee::User(user) => user == principal.user_id,
        Grantee::Org(org) => org_role(principal, org).is_some(),
    };
    if f.own {
        Decision::Allow(Grounds::Own)
    } else if is_grantee {
        Decision::Deny(DenyReason::PatientOnly)
    } else {
        f.refuse(DenyReason::PatientOnly)
    }
}

/// Any doctor may ask any patient (whose id they were given) for a consent; the patient
/// decides. Others: refused by role, or not found.
fn request_consent(f: &Facts) -> Decision {
    if f.doctor {
        Decision::Allow(Grounds::BaseRole)
    } else {
        f.refuse(DenyReason::Role)
    }
}

/// Session consents are read by the patient, the ORG:DOCTORs of the patient's
/// organisation, and doctors holding an active consent on the patient (who run
/// sessions with them).
fn read_session_consents(f: &Facts) -> Decision {
    if f.own {
        Decision::Allow(Grounds::Own)
    } else if f.org_role == Some(Role::OrgDoctor) {
        Decision::Allow(Grounds::Membership)
    } else if f.consent_any {
        Decision::Allow(Grounds::Consent)
    } else if f.org_role.is_some() {
        Decision::Deny(DenyReason::OrgRole)
    } else {
        f.refuse(DenyReason::NoConsent)
    }
}

/// Erasure requests and exports: the patient, or the ORG:ADMIN of the patient's
/// organisation on their behalf; with `platform`, platform admins too (reading DSRs:
/// they decide them).
fn on_behalf(f: &Facts, platform: bool) -> Decision {
    if f.own {
        Decision::Allow(Grounds::Own)
    } else if f.org_role == Some(Role::OrgAdmin) {
        Decision::Allow(Grounds::Membership)
    } else if platform && f.platform_admin {
        Decision::Allow(Grounds::Platform)
    } else if f.org_role.is_some() {
        Decision::Deny(DenyReason::OrgRole)
    } else {
        f.refuse(DenyReason::Role)
    }
}

/// Approving or rejecting an erasure: SUPER:ADMIN and APP:ADMIN only.
fn decide_erasure(f: &Facts) -> Decision {
    if f.platform_admin {
        Decision::Allow(Grounds::Platform)
    } else {
        f.refuse(DenyReason::Role)
    }
}

/// Demographics: the org's ADMIN, DOCTOR, STAFF; the patient; a doctor with consent
/// covering demographics; an emergency grant.
fn read_patient(f: &Facts) -> Option<Decision> {
    let grounds = match f.org_role {
        Some(Role::OrgAdmin | Role::OrgDoctor | Role::OrgStaff) => Grounds::Membership,
        _ if f.own => Grounds::Own,
        _ if f.consent_demographics => Grounds::Consent,
        _ => Grounds::Emergency(f.emergency?),
    };
    Some(Decision::Allow(grounds))
}

fn refuse_patient_read(f: &Facts) -> Decision {
    match f.org_role {
        Some(_) => Decision::Deny(DenyReason::OrgRole),
        None => f.refuse(DenyReason::NoConsent),
    }
}

/// Auditors of the org and APP:AUDITOR see a history's metadata, never its state.
fn audit_view(f: &Facts) -> Option<Decision> {
    (f.org_role == Some(Role::OrgAuditor) || f.app_auditor)
        .then_some(Decision::Allow(Grounds::AuditOnly))
}

/// Demographics are changed by the org's ADMIN, DOCTOR, STAFF only; the patient reads
/// their chart but does not edit it; consent and emergency grants are read-only.
fn update_patient(f: &Facts) -> Decision {
    match f.org_role {
        Some(Role::OrgAdmin | Role::OrgDoctor | Role::OrgStaff) => {
            Decision::Allow(Grounds::Membership)
        }
        Some(_) => Decision::Deny(DenyReason::OrgRole),
        None if f.own => Decision::Deny(DenyReason::OwnReadOnly),
        None => f.refuse(DenyReason::OrgRole),
    }
}

/// Records are written by the org's ORG:DOCTOR and by doctors whose consent covers
/// clinical records. Emergency access is read-only.
fn write_record(f: &Facts) -> Decision {
    if f.org_role == Some(Role::OrgDoctor) {
        Decision::Allow(Grounds::Membership)
    } else if f.consent_records {
        Decision::Allow(Grounds::Consent)
    } else if f.org_role.is_none() && f.own {
        Decision::Deny(DenyReason::OwnReadOnly)
    } else {
        refuse_record(f)
    }
}

/// Records are read by the org's ORG:DOCTOR, doctors with consent covering them, the
/// patient, and emergency grant holders.
fn read_record(f: &Facts) -> Option<Decision> {
    let grounds = if f.org_role == Some(Role::OrgDoctor) {
        Grounds::Membership
    } else if f.consent_records {
        Grounds::Consent
    } else if f.own {
        Grounds::Own
    } else {
        Grounds::Emergency(f.emergency?)
    };
    Some(Decision::Allow(grounds))
}

/// ORG:STAFF never see clinical content; the org's other non-doctors are refused by
/// role; doctors whose consent or grant does not cover the action, by consent.
fn refuse_record(f: &Facts) -> Decision {
    match f.org_role {
        Some(Role::OrgStaff) => Decision::Deny(DenyReason::NoClinicalAccess),
        Some(_) => Decision::Deny(DenyReason::OrgRole),
        None => f.refuse(DenyReason::NoConsent),
    }
}
