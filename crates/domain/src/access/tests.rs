//! The access policy as a table: every caller of API.md "Roles" against every action,
//! on an organisation A and its patient P. Then the edges the table cannot show
//! (consent states and scopes, grants of others, erasure, wrong resources), and a
//! property: what the gateway refuses, `decide` never allows.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::*;
use crate::ids::{GrantId, OrgId, PatientId, UserId};
use crate::roles::Role;

use Action::*;
use Who::*;

const ORG_A: OrgId = OrgId(Uuid::from_u128(0xA));
const ORG_B: OrgId = OrgId(Uuid::from_u128(0xB));
const PATIENT: PatientId = PatientId(Uuid::from_u128(0xBEEF));
const OTHER_PATIENT: PatientId = PatientId(Uuid::from_u128(0xF00D));
const GRANT: GrantId = GrantId(Uuid::from_u128(0x911));

const PLATFORM: Decision = Decision::Allow(Grounds::Platform);
const MEMBER: Decision = Decision::Allow(Grounds::Membership);
const OWN: Decision = Decision::Allow(Grounds::Own);
const CONSENT: Decision = Decision::Allow(Grounds::Consent);
const EMERGENCY: Decision = Decision::Allow(Grounds::Emergency(GRANT));
const AUDIT: Decision = Decision::Allow(Grounds::AuditOnly);
const BASE: Decision = Decision::Allow(Grounds::BaseRole);
const DENY_ROLE: Decision = Decision::Deny(DenyReason::Role);
const DENY_ORG_ROLE: Decision = Decision::Deny(DenyReason::OrgRole);
const NO_CLINICAL: Decision = Decision::Deny(DenyReason::NoClinicalAccess);
const OWN_READ_ONLY: Decision = Decision::Deny(DenyReason::OwnReadOnly);
const NO_CONSENT: Decision = Decision::Deny(DenyReason::NoConsent);
const NOT_FOUND: Decision = Decision::NotFound;
const GONE: Decision = Decision::Gone;
const PATIENT_ONLY: Decision = Decision::Deny(DenyReason::PatientOnly);

/// Every kind of caller. "Org" roles are memberships of org A (the patient's), "OtherOrg"
/// of org B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    SuperAdmin,
    AppAdmin,
    AppAuditor,
    OrgAdmin,
    OrgDoctor,
    OrgStaff,
    OrgAuditor,
    OtherOrgAdmin,
    OtherOrgDoctor,
    OtherOrgStaff,
    OtherOrgAuditor,
    /// BASE:DOCTOR without consent.
    BaseDoctor,
    /// BASE:DOCTOR holding an active consent (scope all) of P.
    ConsentedDoctor,
    /// BASE:PATIENT whose account is P's.
    PatientOwn,
    /// BASE:PATIENT, someone else.
    PatientOther,
    /// ORG:DOCTOR of org B with an active emergency grant on P.
    EmergencyActive,
    /// ORG:DOCTOR of org B whose emergency grant on P has expired.
    EmergencyExpired,
}

fn now() -> DateTime<Utc> {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

fn user(who: Who) -> UserId {
    UserId(Uuid::from_u128(1000 + who as u128))
}

fn principal(who: Who) -> Principal {
    let (roles, membership): (Vec<Role>, Option<(OrgId, Role)>) = match who {
        SuperAdmin => (vec![Role::SuperAdmin], None),
        AppAdmin => (vec![Role::AppAdmin], None),
        AppAuditor => (vec![Role::AppAuditor], None),
        OrgAdmin => (vec![], Some((ORG_A, Role::OrgAdmin))),
        OrgDoctor => (vec![], Some((ORG_A, Role::OrgDoctor))),
        OrgStaff => (vec![], Some((ORG_A, Role::OrgStaff))),
        OrgAuditor => (vec![], Some((ORG_A, Role::OrgAuditor))),
        OtherOrgAdmin => (vec![], Some((ORG_B, Role::OrgAdmin))),
        OtherOrgDoctor | EmergencyActive | EmergencyExpired => {
            (vec![], Some((ORG_B, Role::OrgDoctor)))
        }
        OtherOrgStaff => (vec![], Some((ORG_B, Role::OrgStaff))),
        OtherOrgAuditor => (vec![], Some((ORG_B, Role::OrgAuditor))),
        BaseDoctor | ConsentedDoctor => (vec![Role::BaseDoctor], None),
        PatientOwn | PatientOther => (vec![Role::BasePatient], None),
    };
    Principal {
        user_id: user(who),
        roles,
        memberships: membership
            .map(|(org_id, role)| Membership { org_id, role })
            .into_iter()
            .collect(),
    }
}

fn patient() -> PatientFacts {
    PatientFacts {
        patient_id: PATIENT,
        org_id: ORG_A,
        user_id: Some(user(PatientOwn)),
        erased: false,
    }
}

fn consent(grantee: Grantee, scope: ConsentScope) -> ConsentFacts {
    ConsentFacts {
        patient_id: PATIENT,
        grantee,
        scope,
        status: ConsentStatus::Active,
        expires_at: Some(now() + Duration::days(30)),
    }
}

fn grant(who: Who, expires_at: DateTime<Utc>) -> EmergencyFacts {
    EmergencyFacts {
        grant_id: GRANT,
        patient_id: PATIENT,
        user_id: user(who),
        expires_at,
    }
}

/// The world of the table: one consent and two grants on P, each of one caller.
fn world_consents() -> Vec<ConsentFacts> {
    vec![consent(
        Grantee::User(user(ConsentedDoctor)),
        ConsentScope::All,
    )]
}

fn world_grants() -> Vec<EmergencyFacts> {
    vec![
        grant(EmergencyActive, now() + Duration::minutes(30)),
        grant(EmergencyExpired, now() - Duration::minutes(1)),
    ]
}

/// The resource each action is decided on: org A, patient P, or the consent on P of the
/// table's world (to ConsentedDoctor).
fn resource_for(action: Action, p: &PatientFacts) -> Resource<'_> {
    match action {
        CreateOrg => Resource::Platform,
        ReadOrg | AddMember | ListMembers | RemoveMember | CreatePatient | ListPatients
        | ListOrgConsents | ManageLegalHold => Resource::Org(ORG_A),
        ReadPatient | UpdatePatient | ReadPatientHistory | EmergencyAccess | GrantConsent
        | RequestConsent | ManageSessionConsent | ReadSessionConsents | RequestErasure
        | ReadDsr | Export | DecideErasure => Resource::Patient(p),
        CreateRecord | ReadRecord | AmendRecord | VoidRecord | ReadRecordHistory => {
            Resource::Record(p)
        }
        DecideConsent | RevokeConsent => Resource::Consent {
            patient: p,
            grantee: Grantee::User(user(ConsentedDoctor)),
        },
        ListOwnConsents => Resource::Own,
    }
}

const ALL_ACTIONS: [Action; 29] = Action::ALL;

#[rustfmt::skip]
const TABLE: &[(Who, Action, Decision)] = &[
        (SuperAdmin,       CreateOrg,          PLATFORM),
        (SuperAdmin,       ReadOrg,            PLATFORM),
        (SuperAdmin,       AddMember,          PLATFORM),
        (SuperAdmin,       ListMembers,        PLATFORM),
        (SuperAdmin,       RemoveMember,       PLATFORM),
        (SuperAdmin,       CreatePatient,      NOT_FOUND),
        (SuperAdmin,       ListPatients,       NOT_FOUND),
        (SuperAdmin,       ReadPatient,        NOT_FOUND),
        (SuperAdmin,       UpdatePatient,      NOT_FOUND),
        (SuperAdmin,       ReadPatientHistory, NOT_FOUND),
        (SuperAdmin,       CreateRecord,       NOT_FOUND),
        (SuperAdmin,       ReadRecord,         NOT_FOUND),
        (SuperAdmin,       AmendRecord,        NOT_FOUND),
        (SuperAdmin,       VoidRecord,         NOT_FOUND),
        (SuperAdmin,       ReadRecordHistory,  NOT_FOUND),
        (SuperAdmin,       EmergencyAccess,    PLATFORM),
        (AppAdmin,         CreateOrg,          PLATFORM),
        (AppAdmin,         ReadOrg,            PLATFORM),
        (AppAdmin,         AddMember,          PLATFORM),
        (AppAdmin,         ListMembers,        PLATFORM),
        (AppAdmin,         RemoveMember,       PLATFORM),
        (AppAdmin,         CreatePatient,      NOT_FOUND),
        (AppAdmin,         ListPatients,       NOT_FOUND),
        (AppAdmin,         ReadPatient,        NOT_FOUND),
        (AppAdmin,         UpdatePatient,      NOT_FOUND),
        (AppAdmin,         ReadPatientHistory, NOT_FOUND),
        (AppAdmin,         CreateRecord,       NOT_FOUND),
        (AppAdmin,         ReadRecord,         NOT_FOUND),
        (AppAdmin,         AmendRecord,        NOT_FOUND),
        (AppAdmin,         VoidRecord,         NOT_FOUND),
        (AppAdmin,         ReadRecordHistory,  NOT_FOUND),
        (AppAdmin,         EmergencyAccess,    DENY_ROLE),
        (AppAuditor,       CreateOrg,          DENY_ROLE),
        (AppAuditor,       ReadOrg,            NOT_FOUND),
        (AppAuditor,       AddMember,          NOT_FOUND),
        (AppAuditor,       ListMembers,        NOT_FOUND),
        (AppAuditor,       RemoveMember,       NOT_FOUND),
        (AppAuditor,       CreatePatient,      NOT_FOUND),
        (AppAuditor,       ListPatients,       NOT_FOUND),
        (AppAuditor,       ReadPatient,        NOT_FOUND),
        (AppAuditor,       UpdatePatient,      NOT_FOUND),
        (AppAuditor,       ReadPatientHistory, AUDIT),
        (AppAuditor,       CreateRecord,       NOT_FOUND),
        (AppAuditor,       ReadRecord,         NOT_FOUND),
        (AppAuditor,       AmendRecord,        NOT_FOUND),
        (AppAuditor,       VoidRecord,         NOT_FOUND),
        (AppAuditor,       ReadRecordHistory,  AUDIT),
        (AppAuditor,       EmergencyAccess,    DENY_ROLE),
        (OrgAdmin,         CreateOrg,          DENY_ROLE),
        (OrgAdmin,         ReadOrg,            MEMBER),
        (OrgAdmin,         AddMember,          MEMBER),
        (OrgAdmin,         ListMembers,        MEMBER),
        (OrgAdmin,         RemoveMember,       MEMBER),
        (OrgAdmin,         CreatePatient,      MEMBER),
        (OrgAdmin,         ListPatients,       MEMBER),
        (OrgAdmin,         ReadPatient,        MEMBER),
        (OrgAdmin,         UpdatePatient,      MEMBER),
        (OrgAdmin,         ReadPatientHistory, MEMBER),
        (OrgAdmin,         CreateRecord,       DENY_ORG_ROLE),
        (OrgAdmin,         ReadRecord,         DENY_ORG_ROLE),
        (OrgAdmin,         AmendRecord,        DENY_ORG_ROLE),
        (OrgAdmin,         VoidRecord,         DENY_ORG_ROLE),
        (OrgAdmin,         ReadRecordHistory,  DENY_ORG_ROLE),
        (OrgAdmin,         EmergencyAccess,    DENY_ROLE),
        (OrgDoctor,        CreateOrg,          DENY_ROLE),
        (OrgDoctor,        ReadOrg,            MEMBER),
        (OrgDoctor,        AddMember,          DENY_ORG_ROLE),
        (OrgDoctor,        ListMembers,        MEMBER),
        (OrgDoctor,        RemoveMember,       DENY_ORG_ROLE),
        (OrgDoctor,        CreatePatient,      MEMBER),
        (OrgDoctor,        ListPatients,       MEMBER),
        (OrgDoctor,        ReadPatient,        MEMBER),
        (OrgDoctor,        UpdatePatient,      MEMBER),
        (OrgDoctor,        ReadPatientHistory, MEMBER),
        (OrgDoctor,        CreateRecord,       MEMBER),
        (OrgDoctor,        ReadRecord,         MEMBER),
        (OrgDoctor,        AmendRecord,        MEMBER),
        (OrgDoctor,        VoidRecord,         MEMBER),
        (OrgDoctor,        ReadRecordHistory,  MEMBER),
        (OrgDoctor,        EmergencyAccess,    BASE),
        (OrgStaff,         CreateOrg,          DENY_ROLE),
        (OrgStaff,         ReadOrg,            MEMBER),
        (OrgStaff,         AddMember,          DENY_ORG_ROLE),
        (OrgStaff,         ListMembers,        MEMBER),
        (OrgStaff,         RemoveMember,       DENY_ORG_ROLE),
        (OrgStaff,         CreatePatient,      MEMBER),
        (OrgStaff,         ListPatients,       MEMBER),
        (OrgStaff,         ReadPatient,        MEMBER),
        (OrgStaff,         UpdatePatient,      MEMBER),
        (OrgStaff,         ReadPatientHistory, MEMBER),
        (OrgStaff,         CreateRecord,       NO_CLINICAL),
        (OrgStaff,         ReadRecord,         NO_CLINICAL),
        (OrgStaff,         AmendRecord,        NO_CLINICAL),
        (OrgStaff,         VoidRecord,         NO_CLINICAL),
        (OrgStaff,         ReadRecordHistory,  NO_CLINICAL),
        (OrgStaff,         EmergencyAccess,    DENY_ROLE),
        (OrgAuditor,       CreateOrg,          DENY_ROLE),
        (OrgAuditor,       ReadOrg,            MEMBER),
        (OrgAuditor,       AddMember,          DENY_ORG_ROLE),
        (OrgAuditor,       ListMembers,        MEMBER),
        (OrgAuditor,       RemoveMember,       DENY_ORG_ROLE),
        (OrgAuditor,       CreatePatient,      DENY_ORG_ROLE),
        (OrgAuditor,       ListPatients,       DENY_ORG_ROLE),
        (OrgAuditor,       ReadPatient,        DENY_ORG_ROLE),
        (OrgAuditor,       UpdatePatient,      DENY_ORG_ROLE),
        (OrgAuditor,       ReadPatientHistory, AUDIT),
        (OrgAuditor,       CreateRecord,       DENY_ORG_ROLE),
        (OrgAuditor,       ReadRecord,         DENY_ORG_ROLE),
        (OrgAuditor,       AmendRecord,        DENY_ORG_ROLE),
        (OrgAuditor,       VoidRecord,         DENY_ORG_ROLE),
        (OrgAuditor,       ReadRecordHistory,  AUDIT),
        (OrgAuditor,       EmergencyAccess,    DENY_ROLE),
        (OtherOrgAdmin,    CreateOrg,          DENY_ROLE),
        (OtherOrgAdmin,    ReadOrg,            NOT_FOUND),
        (OtherOrgAdmin,    AddMember,          NOT_FOUND),
        (OtherOrgAdmin,    ListMembers,        NOT_FOUND),
        (OtherOrgAdmin,    RemoveMember,       NOT_FOUND),
        (OtherOrgAdmin,    CreatePatient,      NOT_FOUND),
        (OtherOrgAdmin,    ListPatients,       NOT_FOUND),
        (OtherOrgAdmin,    ReadPatient,        NOT_FOUND),
        (OtherOrgAdmin,    UpdatePatient,      NOT_FOUND),
        (OtherOrgAdmin,    ReadPatientHistory, NOT_FOUND),
        (OtherOrgAdmin,    CreateRecord,       NOT_FOUND),
        (OtherOrgAdmin,    ReadRecord,         NOT_FOUND),
        (OtherOrgAdmin,    AmendRecord,        NOT_FOUND),
        (OtherOrgAdmin,    VoidRecord,         NOT_FOUND),
        (OtherOrgAdmin,    ReadRecordHistory,  NOT_FOUND),
        (OtherOrgAdmin,    EmergencyAccess,    DENY_ROLE),
        (OtherOrgDoctor,   CreateOrg,          DENY_ROLE),
        (OtherOrgDoctor,   ReadOrg,            NOT_FOUND),
        (OtherOrgDoctor,   AddMember,          NOT_FOUND),
        (OtherOrgDoctor,   ListMembers,        NOT_FOUND),
        (OtherOrgDoctor,   RemoveMember,       NOT_FOUND),
        (OtherOrgDoctor,   CreatePatient,      NOT_FOUND),
        (OtherOrgDoctor,   ListPatients,       NOT_FOUND),
        (OtherOrgDoctor,   ReadPatient,        NOT_FOUND),
        (OtherOrgDoctor,   UpdatePatient,      NOT_FOUND),
        (OtherOrgDoctor,   ReadPatientHistory, NOT_FOUND),
        (OtherOrgDoctor,   CreateRecord,       NOT_FOUND),
        (OtherOrgDoctor,   ReadRecord,         NOT_FOUND),
        (OtherOrgDoctor,   AmendRecord,        NOT_FOUND),
        (OtherOrgDoctor,   VoidRecord,         NOT_FOUND),
        (OtherOrgDoctor,   ReadRecordHistory,  NOT_FOUND),
        (OtherOrgDoctor,   EmergencyAccess,    BASE),
        (OtherOrgStaff,    CreateOrg,          DENY_ROLE),
        (OtherOrgStaff,    ReadOrg,            NOT_FOUND),
        (OtherOrgStaff,    AddMember,          NOT_FOUND),
        (OtherOrgStaff,    ListMembers,        NOT_FOUND),
        (OtherOrgStaff,    RemoveMember,       NOT_FOUND),
        (OtherOrgStaff,    CreatePatient,      NOT_FOUND),
        (OtherOrgStaff,    ListPatients,       NOT_FOUND),
        (OtherOrgStaff,    ReadPatient,        NOT_FOUND),
        (OtherOrgStaff,    UpdatePatient,      NOT_FOUND),
        (OtherOrgStaff,    ReadPatientHistory, NOT_FOUND),
        (OtherOrgStaff,    CreateRecord,       NOT_FOUND),
        (OtherOrgStaff,    ReadRecord,         NOT_FOUND),
        (OtherOrgStaff,    AmendRecord,        NOT_FOUND),
        (OtherOrgStaff,    VoidRecord,         NOT_FOUND),
        (OtherOrgStaff,    ReadRecordHistory,  NOT_FOUND),
        (OtherOrgStaff,    EmergencyAccess,    DENY_ROLE),
        (OtherOrgAuditor,  CreateOrg,          DENY_ROLE),
        (OtherOrgAuditor,  ReadOrg,            NOT_FOUND),
        (OtherOrgAuditor,  AddMember,          NOT_FOUND),
        (OtherOrgAuditor,  ListMembers,        NOT_FOUND),
        (OtherOrgAuditor,  RemoveMember,       NOT_FOUND),
        (OtherOrgAuditor,  CreatePatient,      NOT_FOUND),
        (OtherOrgAuditor,  ListPatients,       NOT_FOUND),
        (OtherOrgAuditor,  ReadPatient,        NOT_FOUND),
        (OtherOrgAuditor,  UpdatePatient,      NOT_FOUND),
        (OtherOrgAuditor,  ReadPatientHistory, NOT_FOUND),
        (OtherOrgAuditor,  CreateRecord,       NOT_FOUND),
        (OtherOrgAuditor,  ReadRecord,         NOT_FOUND),
        (OtherOrgAuditor,  AmendRecord,        NOT_FOUND),
        (OtherOrgAuditor,  VoidRecord,         NOT_FOUND),
        (OtherOrgAuditor,  ReadRecordHistory,  NOT_FOUND),
        (OtherOrgAuditor,  EmergencyAccess,    DENY_ROLE),
        (BaseDoctor,       CreateOrg,          BASE),
        (BaseDoctor,       ReadOrg,            NOT_FOUND),
        (BaseDoctor,       AddMember,          NOT_FOUND),
        (BaseDoctor,       ListMembers,        NOT_FOUND),
        (BaseDoctor,       RemoveMember,       NOT_FOUND),
        (BaseDoctor,       CreatePatient,      NOT_FOUND),
        (BaseDoctor,       ListPatients,       NOT_FOUND),
        (BaseDoctor,       ReadPatient,        NOT_FOUND),
        (BaseDoctor,       UpdatePatient,      NOT_FOUND),
        (BaseDoctor,       ReadPatientHistory, NOT_FOUND),
        (BaseDoctor,       CreateRecord,       NOT_FOUND),
        (BaseDoctor,       ReadRecord,         NOT_FOUND),
        (BaseDoctor,       AmendRecord,        NOT_FOUND),
        (BaseDoctor,       VoidRecord,         NOT_FOUND),
        (BaseDoctor,       ReadRecordHistory,  NOT_FOUND),
        (BaseDoctor,       EmergencyAccess,    BASE),
        (ConsentedDoctor,  CreateOrg,          BASE),
        (ConsentedDoctor,  ReadOrg,            NOT_FOUND),
        (ConsentedDoctor,  AddMember,          NOT_FOUND),
        (ConsentedDoctor,  ListMembers,        NOT_FOUND),
        (ConsentedDoctor,  RemoveMember,       NOT_FOUND),
        (ConsentedDoctor,  CreatePatient,      NOT_FOUND),
        (ConsentedDoctor,  ListPatients,       NOT_FOUND),
        (ConsentedDoctor,  ReadPatient,        CONSENT),
        (ConsentedDoctor,  UpdatePatient,      DENY_ORG_ROLE),
        (ConsentedDoctor,  ReadPatientHistory, CONSENT),
        (ConsentedDoctor,  CreateRecord,       CONSENT),
        (ConsentedDoctor,  ReadRecord,         CONSENT),
        (ConsentedDoctor,  AmendRecord,        CONSENT),
        (ConsentedDoctor,  VoidRecord,         CONSENT),
        (ConsentedDoctor,  ReadRecordHistory,  CONSENT),
        (ConsentedDoctor,  EmergencyAccess,    BASE),
        (PatientOwn,       CreateOrg,          DENY_ROLE),
        (PatientOwn,       ReadOrg,            NOT_FOUND),
        (PatientOwn,       AddMember,          NOT_FOUND),
        (PatientOwn,       ListMembers,        NOT_FOUND),
        (PatientOwn,       RemoveMember,       NOT_FOUND),
        (PatientOwn,       CreatePatient,      NOT_FOUND),
        (PatientOwn,       ListPatients,       NOT_FOUND),
        (PatientOwn,       ReadPatient,        OWN),
        (PatientOwn,       UpdatePatient,      OWN_READ_ONLY),
        (PatientOwn,       ReadPatientHistory, OWN),
        (PatientOwn,       CreateRecord,       OWN_READ_ONLY),
        (PatientOwn,       ReadRecord,         OWN),
        (PatientOwn,       AmendRecord,        OWN_READ_ONLY),
        (PatientOwn,       VoidRecord,         OWN_READ_ONLY),
        (PatientOwn,       ReadRecordHistory,  OWN),
        (PatientOwn,       EmergencyAccess,    DENY_ROLE),
        (PatientOther,     CreateOrg,          DENY_ROLE),
        (PatientOther,     ReadOrg,            NOT_FOUND),
        (PatientOther,     AddMember,          NOT_FOUND),
        (PatientOther,     ListMembers,        NOT_FOUND),
        (PatientOther,     RemoveMember,       NOT_FOUND),
        (PatientOther,     CreatePatient,      NOT_FOUND),
        (PatientOther,     ListPatients,       NOT_FOUND),
        (PatientOther,     ReadPatient,        NOT_FOUND),
        (PatientOther,     UpdatePatient,      NOT_FOUND),
        (PatientOther,     ReadPatientHistory, NOT_FOUND),
        (PatientOther,     CreateRecord,       NOT_FOUND),
        (PatientOther,     ReadRecord,         NOT_FOUND),
        (PatientOther,     AmendRecord,        NOT_FOUND),
        (PatientOther,     VoidRecord,         NOT_FOUND),
        (PatientOther,     ReadRecordHistory,  NOT_FOUND),
        (PatientOther,     EmergencyAccess,    DENY_ROLE),
        (EmergencyActive,  CreateOrg,          DENY_ROLE),
        (EmergencyActive,  ReadOrg,            NOT_FOUND),
        (EmergencyActive,  AddMember,          NOT_FOUND),
        (EmergencyActive,  ListMembers,        NOT_FOUND),
        (EmergencyActive,  RemoveMember,       NOT_FOUND),
        (EmergencyActive,  CreatePatient,      NOT_FOUND),
        (EmergencyActive,  ListPatients,       NOT_FOUND),
        (EmergencyActive,  ReadPatient,        EMERGENCY),
        (EmergencyActive,  UpdatePatient,      DENY_ORG_ROLE),
        (EmergencyActive,  ReadPatientHistory, EMERGENCY),
        (EmergencyActive,  CreateRecord,       NO_CONSENT),
        (EmergencyActive,  ReadRecord,         EMERGENCY),
        (EmergencyActive,  AmendRecord,        NO_CONSENT),
        (EmergencyActive,  VoidRecord,         NO_CONSENT),
        (EmergencyActive,  ReadRecordHistory,  EMERGENCY),
        (EmergencyActive,  EmergencyAccess,    BASE),
        (EmergencyExpired, CreateOrg,          DENY_ROLE),
        (EmergencyExpired, ReadOrg,            NOT_FOUND),
        (EmergencyExpired, AddMember,          NOT_FOUND),
        (EmergencyExpired, ListMembers,        NOT_FOUND),
        (EmergencyExpired, RemoveMember,       NOT_FOUND),
        (EmergencyExpired, CreatePatient,      NOT_FOUND),
        (EmergencyExpired, ListPatients,       NOT_FOUND),
        (EmergencyExpired, ReadPatient,        NOT_FOUND),
        (EmergencyExpired, UpdatePatient,      NOT_FOUND),
        (EmergencyExpired, ReadPatientHistory, NOT_FOUND),
        (EmergencyExpired, CreateRecord,       NOT_FOUND),
        (EmergencyExpired, ReadRecord,         NOT_FOUND),
        (EmergencyExpired, AmendRecord,        NOT_FOUND),
        (EmergencyExpired, VoidRecord,         NOT_FOUND),
        (EmergencyExpired, ReadRecordHistory,  NOT_FOUND),
        (EmergencyExpired, EmergencyAccess,    BASE),
        // Consent, session consent, erasure (the resource of DecideConsent and
        // RevokeConsent is the consent to ConsentedDoctor).
        (SuperAdmin,       GrantConsent,         NOT_FOUND),
        (SuperAdmin,       RequestConsent,       NOT_FOUND),
        (SuperAdmin,       DecideConsent,        NOT_FOUND),
        (SuperAdmin,       RevokeConsent,        NOT_FOUND),
        (SuperAdmin,       ListOwnConsents,      OWN),
        (SuperAdmin,       ListOrgConsents,      PLATFORM),
        (SuperAdmin,       ManageSessionConsent, NOT_FOUND),
        (SuperAdmin,       ReadSessionConsents,  NOT_FOUND),
        (SuperAdmin,       RequestErasure,       NOT_FOUND),
        (SuperAdmin,       ReadDsr,              PLATFORM),
        (SuperAdmin,       Export,               NOT_FOUND),
        (SuperAdmin,       DecideErasure,        PLATFORM),
        (AppAdmin,         GrantConsent,         NOT_FOUND),
        (AppAdmin,         RequestConsent,       NOT_FOUND),
        (AppAdmin,         DecideConsent,        NOT_FOUND),
        (AppAdmin,         RevokeConsent,        NOT_FOUND),
        (AppAdmin,         ListOwnConsents,      OWN),
        (AppAdmin,         ListOrgConsents,      PLATFORM),
        (AppAdmin,         ManageSessionConsent, NOT_FOUND),
        (AppAdmin,         ReadSessionConsents,  NOT_FOUND),
        (AppAdmin,         RequestErasure,       NOT_FOUND),
        (AppAdmin,         ReadDsr,              PLATFORM),
        (AppAdmin,         Export,               NOT_FOUND),
        (AppAdmin,         DecideErasure,        PLATFORM),
        (AppAuditor,       GrantConsent,         NOT_FOUND),
        (AppAuditor,       RequestConsent,       NOT_FOUND),
        (AppAuditor,       DecideConsent,        NOT_FOUND),
        (AppAuditor,       RevokeConsent,        NOT_FOUND),
        (AppAuditor,       ListOwnConsents,      OWN),
        (AppAuditor,       ListOrgConsents,      NOT_FOUND),
        (AppAuditor,       ManageSessionConsent, NOT_FOUND),
        (AppAuditor,       ReadSessionConsents,  NOT_FOUND),
        (AppAuditor,       RequestErasure,       NOT_FOUND),
        (AppAuditor,       ReadDsr,              NOT_FOUND),
        (AppAuditor,       Export,               NOT_FOUND),
        (AppAuditor,       DecideErasure,        NOT_FOUND),
        (OrgAdmin,         GrantConsent,         PATIENT_ONLY),
        (OrgAdmin,         RequestConsent,       DENY_ROLE),
        (OrgAdmin,         DecideConsent,        PATIENT_ONLY),
        (OrgAdmin,         RevokeConsent,        PATIENT_ONLY),
        (OrgAdmin,         ListOwnConsents,      OWN),
        (OrgAdmin,         ListOrgConsents,      MEMBER),
        (OrgAdmin,         ManageSessionConsent, PATIENT_ONLY),
        (OrgAdmin,         ReadSessionConsents,  DENY_ORG_ROLE),
        (OrgAdmin,         RequestErasure,       MEMBER),
        (OrgAdmin,         ReadDsr,              MEMBER),
        (OrgAdmin,         Export,               MEMBER),
        (OrgAdmin,         DecideErasure,        DENY_ROLE),
        (OrgDoctor,        GrantConsent,         PATIENT_ONLY),
        (OrgDoctor,        RequestConsent,       BASE),
        (OrgDoctor,        DecideConsent,        PATIENT_ONLY),
        (OrgDoctor,        RevokeConsent,        PATIENT_ONLY),
        (OrgDoctor,        ListOwnConsents,      OWN),
        (OrgDoctor,        ListOrgConsents,      MEMBER),
        (OrgDoctor,        ManageSessionConsent, PATIENT_ONLY),
        (OrgDoctor,        ReadSessionConsents,  MEMBER),
        (OrgDoctor,        RequestErasure,       DENY_ORG_ROLE),
        (OrgDoctor,        ReadDsr,              DENY_ORG_ROLE),
        (OrgDoctor,        Export,               DENY_ORG_ROLE),
        (OrgDoctor,        DecideErasure,        DENY_ROLE),
        (OrgStaff,         GrantConsent,         PATIENT_ONLY),
        (OrgStaff,         RequestConsent,       DENY_ROLE),
        (OrgStaff,         DecideConsent,        PATIENT_ONLY),
        (OrgStaff,         RevokeConsent,        PATIENT_ONLY),
        (OrgStaff,         ListOwnConsents,      OWN),
        (OrgStaff,         ListOrgConsents,      DENY_ORG_ROLE),
        (OrgStaff,         ManageSessionConsent, PATIENT_ONLY),
        (OrgStaff,         ReadSessionConsents,  DENY_ORG_ROLE),
        (OrgStaff,         RequestErasure,       DENY_ORG_ROLE),
        (OrgStaff,         ReadDsr,              DENY_ORG_ROLE),
        (OrgStaff,         Export,               DENY_ORG_ROLE),
        (OrgStaff,         DecideErasure,        DENY_ROLE),
        (OrgAuditor,       GrantConsent,         PATIENT_ONLY),
        (OrgAuditor,       RequestConsent,       DENY_ROLE),
        (OrgAuditor,       DecideConsent,        PATIENT_ONLY),
        (OrgAuditor,       RevokeConsent,        PATIENT_ONLY),
        (OrgAuditor,       ListOwnConsents,      OWN),
        (OrgAuditor,       ListOrgConsents,      DENY_ORG_ROLE),
        (OrgAuditor,       ManageSessionConsent, PATIENT_ONLY),
        (OrgAuditor,       ReadSessionConsents,  DENY_ORG_ROLE),
        (OrgAuditor,       RequestErasure,       DENY_ORG_ROLE),
        (OrgAuditor,       ReadDsr,              DENY_ORG_ROLE),
        (OrgAuditor,       Export,               DENY_ORG_ROLE),
        (OrgAuditor,       DecideErasure,        DENY_ROLE),
        (OtherOrgAdmin,    GrantConsent,         NOT_FOUND),
        (OtherOrgAdmin,    RequestConsent,       NOT_FOUND),
        (OtherOrgAdmin,    DecideConsent,        NOT_FOUND),
        (OtherOrgAdmin,    RevokeConsent,        NOT_FOUND),
        (OtherOrgAdmin,    ListOwnConsents,      OWN),
        (OtherOrgAdmin,    ListOrgConsents,      NOT_FOUND),
        (OtherOrgAdmin,    ManageSessionConsent, NOT_FOUND),
        (OtherOrgAdmin,    ReadSessionConsents,  NOT_FOUND),
        (OtherOrgAdmin,    RequestErasure,       NOT_FOUND),
        (OtherOrgAdmin,    ReadDsr,              NOT_FOUND),
        (OtherOrgAdmin,    Export,               NOT_FOUND),
        (OtherOrgAdmin,    DecideErasure,        NOT_FOUND),
        (OtherOrgDoctor,   GrantConsent,         NOT_FOUND),
        (OtherOrgDoctor,   RequestConsent,       BASE),
        (OtherOrgDoctor,   DecideConsent,        NOT_FOUND),
        (OtherOrgDoctor,   RevokeConsent,        NOT_FOUND),
        (OtherOrgDoctor,   ListOwnConsents,      OWN),
        (OtherOrgDoctor,   ListOrgConsents,      NOT_FOUND),
        (OtherOrgDoctor,   ManageSessionConsent, NOT_FOUND),
        (OtherOrgDoctor,   ReadSessionConsents,  NOT_FOUND),
        (OtherOrgDoctor,   RequestErasure,       NOT_FOUND),
        (OtherOrgDoctor,   ReadDsr,              NOT_FOUND),
        (OtherOrgDoctor,   Export,               NOT_FOUND),
        (OtherOrgDoctor,   DecideErasure,        NOT_FOUND),
        (OtherOrgStaff,    GrantConsent,         NOT_FOUND),
        (OtherOrgStaff,    RequestConsent,       NOT_FOUND),
        (OtherOrgStaff,    DecideConsent,        NOT_FOUND),
        (OtherOrgStaff,    RevokeConsent,        NOT_FOUND),
        (OtherOrgStaff,    ListOwnConsents,      OWN),
        (OtherOrgStaff,    ListOrgConsents,      NOT_FOUND),
        (OtherOrgStaff,    ManageSessionConsent, NOT_FOUND),
        (OtherOrgStaff,    ReadSessionConsents,  NOT_FOUND),
        (OtherOrgStaff,    RequestErasure,       NOT_FOUND),
        (OtherOrgStaff,    ReadDsr,              NOT_FOUND),
        (OtherOrgStaff,    Export,               NOT_FOUND),
        (OtherOrgStaff,    DecideErasure,        NOT_FOUND),
        (OtherOrgAuditor,  GrantConsent,         NOT_FOUND),
        (OtherOrgAuditor,  RequestConsent,       NOT_FOUND),
        (OtherOrgAuditor,  DecideConsent,        NOT_FOUND),
        (OtherOrgAuditor,  RevokeConsent,        NOT_FOUND),
        (OtherOrgAuditor,  ListOwnConsents,      OWN),
        (OtherOrgAuditor,  ListOrgConsents,      NOT_FOUND),
        (OtherOrgAuditor,  ManageSessionConsent, NOT_FOUND),
        (OtherOrgAuditor,  ReadSessionConsents,  NOT_FOUND),
        (OtherOrgAuditor,  RequestErasure,       NOT_FOUND),
        (OtherOrgAuditor,  ReadDsr,              NOT_FOUND),
        (OtherOrgAuditor,  Export,               NOT_FOUND),
        (OtherOrgAuditor,  DecideErasure,        NOT_FOUND),
        (BaseDoctor,       GrantConsent,         NOT_FOUND),
        (BaseDoctor,       RequestConsent,       BASE),
        (BaseDoctor,       DecideConsent,        NOT_FOUND),
        (BaseDoctor,       RevokeConsent,        NOT_FOUND),
        (BaseDoctor,       ListOwnConsents,      OWN),
        (BaseDoctor,       ListOrgConsents,      NOT_FOUND),
        (BaseDoctor,       ManageSessionConsent, NOT_FOUND),
        (BaseDoctor,       ReadSessionConsents,  NOT_FOUND),
        (BaseDoctor,       RequestErasure,       NOT_FOUND),
        (BaseDoctor,       ReadDsr,              NOT_FOUND),
        (BaseDoctor,       Export,               NOT_FOUND),
        (BaseDoctor,       DecideErasure,        NOT_FOUND),
        (ConsentedDoctor,  GrantConsent,         PATIENT_ONLY),
        (ConsentedDoctor,  RequestConsent,       BASE),
        (ConsentedDoctor,  DecideConsent,        PATIENT_ONLY),
        (ConsentedDoctor,  RevokeConsent,        PATIENT_ONLY),
        (ConsentedDoctor,  ListOwnConsents,      OWN),
        (ConsentedDoctor,  ListOrgConsents,      NOT_FOUND),
        (ConsentedDoctor,  ManageSessionConsent, PATIENT_ONLY),
        (ConsentedDoctor,  ReadSessionConsents,  CONSENT),
        (ConsentedDoctor,  RequestErasure,       DENY_ROLE),
        (ConsentedDoctor,  ReadDsr,              DENY_ROLE),
        (ConsentedDoctor,  Export,               DENY_ROLE),
        (ConsentedDoctor,  DecideErasure,        DENY_ROLE),
        (PatientOwn,       GrantConsent,         OWN),
        (PatientOwn,       RequestConsent,       DENY_ROLE),
        (PatientOwn,       DecideConsent,        OWN),
        (PatientOwn,       RevokeConsent,        OWN),
        (PatientOwn,       ListOwnConsents,      OWN),
        (PatientOwn,       ListOrgConsents,      NOT_FOUND),
        (PatientOwn,       ManageSessionConsent, OWN),
        (PatientOwn,       ReadSessionConsents,  OWN),
        (PatientOwn,       RequestErasure,       OWN),
        (PatientOwn,       ReadDsr,              OWN),
        (PatientOwn,       Export,               OWN),
        (PatientOwn,       DecideErasure,        DENY_ROLE),
        (PatientOther,     GrantConsent,         NOT_FOUND),
        (PatientOther,     RequestConsent,       NOT_FOUND),
        (PatientOther,     DecideConsent,        NOT_FOUND),
        (PatientOther,     RevokeConsent,        NOT_FOUND),
        (PatientOther,     ListOwnConsents,      OWN),
        (PatientOther,     ListOrgConsents,      NOT_FOUND),
        (PatientOther,     ManageSessionConsent, NOT_FOUND),
        (PatientOther,     ReadSessionConsents,  NOT_FOUND),
        (PatientOther,     RequestErasure,       NOT_FOUND),
        (PatientOther,     ReadDsr,              NOT_FOUND),
        (PatientOther,     Export,               NOT_FOUND),
        (PatientOther,     DecideErasure,        NOT_FOUND),
        (EmergencyActive,  GrantConsent,         PATIENT_ONLY),
        (EmergencyActive,  RequestConsent,       BASE),
        (EmergencyActive,  DecideConsent,        PATIENT_ONLY),
        (EmergencyActive,  RevokeConsent,        PATIENT_ONLY),
        (EmergencyActive,  ListOwnConsents,      OWN),
        (EmergencyActive,  ListOrgConsents,      NOT_FOUND),
        (EmergencyActive,  ManageSessionConsent, PATIENT_ONLY),
        (EmergencyActive,  ReadSessionConsents,  NO_CONSENT),
        (EmergencyActive,  RequestErasure,       DENY_ROLE),
        (EmergencyActive,  ReadDsr,              DENY_ROLE),
        (EmergencyActive,  Export,               DENY_ROLE),
        (EmergencyActive,  DecideErasure,        DENY_ROLE),
        (EmergencyExpired, GrantConsent,         NOT_FOUND),
        (EmergencyExpired, RequestConsent,       BASE),
        (EmergencyExpired, DecideConsent,        NOT_FOUND),
        (EmergencyExpired, RevokeConsent,        NOT_FOUND),
        (EmergencyExpired, ListOwnConsents,      OWN),
        (EmergencyExpired, ListOrgConsents,      NOT_FOUND),
        (EmergencyExpired, ManageSessionConsent, NOT_FOUND),
        (EmergencyExpired, ReadSessionConsents,  NOT_FOUND),
        (EmergencyExpired, RequestErasure,       NOT_FOUND),
        (EmergencyExpired, ReadDsr,              NOT_FOUND),
        (EmergencyExpired, Export,               NOT_FOUND),
        (EmergencyExpired, DecideErasure,        NOT_FOUND),
        // Legal holds on organisation A: platform admins; A's members are refused by
        // role, everyone else may not know A exists.
        (SuperAdmin,       ManageLegalHold,      PLATFORM),
        (AppAdmin,         ManageLegalHold,      PLATFORM),
        (AppAuditor,       ManageLegalHold,      NOT_FOUND),
        (OrgAdmin,         ManageLegalHold,      DENY_ROLE),
        (OrgDoctor,        ManageLegalHold,      DENY_ROLE),
        (OrgStaff,         ManageLegalHold,      DENY_ROLE),
        (OrgAuditor,       ManageLegalHold,      DENY_ROLE),
        (OtherOrgAdmin,    ManageLegalHold,      NOT_FOUND),
        (OtherOrgDoctor,   ManageLegalHold,      NOT_FOUND),
        (OtherOrgStaff,    ManageLegalHold,      NOT_FOUND),
        (OtherOrgAuditor,  ManageLegalHold,      NOT_FOUND),
        (BaseDoctor,       ManageLegalHold,      NOT_FOUND),
        (ConsentedDoctor,  ManageLegalHold,      NOT_FOUND),
        (PatientOwn,       ManageLegalHold,      NOT_FOUND),
        (PatientOther,     ManageLegalHold,      NOT_FOUND),
        (EmergencyActive,  ManageLegalHold,      NOT_FOUND),
        (EmergencyExpired, ManageLegalHold,      NOT_FOUND),
];

#[test]
fn every_caller_against_every_action_gets_the_decision_of_the_table() {
    let (consents, grants) = (world_consents(), world_grants());
    let ctx = AccessContext {
        now: now(),
        consents: &consents,
        emergency: &grants,
    };
    let p = patient();
    let failures: Vec<String> = TABLE
        .iter()
        .filter_map(|&(who, action, expected)| {
            let got = decide(&principal(who), action, resource_for(action, &p), &ctx);
            (got != expected)
                .then(|| format!("{who:?} {action:?}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_every_caller_and_every_action_once() {
    assert_eq!(TABLE.len(), 17 * ALL_ACTIONS.len());
    for action in ALL_ACTIONS {
        assert_eq!(
            TABLE.iter().filter(|c| c.1 == action).count(),
            17,
            "{action:?}"
        );
    }
}

// ---- consent -------------------------------------------------------------------------

fn decide_with_consent(who: Who, c: ConsentFacts, action: Action) -> Decision {
    let p = patient();
    let consents = [c];
    let ctx = AccessContext {
        now: now(),
        consents: &consents,
        emergency: &[],
    };
    decide(&principal(who), action, resource_for(action, &p), &ctx)
}

#[test]
fn given_a_consent_not_in_force_when_a_doctor_reads_then_the_patient_is_not_found() {
    let base = consent(Grantee::User(user(BaseDoctor)), ConsentScope::All);
    let not_in_force = [
        ConsentFacts {
            status: ConsentStatus::Requested,
            ..base
        },
        ConsentFacts {
            status: ConsentStatus::Declined,
            ..base
        },
        ConsentFacts {
            status: ConsentStatus::Revoked,
            ..base
        },
        ConsentFacts {
            expires_at: Some(now()),
            ..base
        },
        ConsentFacts {
            expires_at: Some(now() - Duration::seconds(1)),
            ..base
        },
        ConsentFacts {
            patient_id: OTHER_PATIENT,
            ..base
        },
        ConsentFacts {
            grantee: Grantee::User(user(OtherOrgDoctor)),
            ..base
        },
    ];
    for c in not_in_force {
        for action in [ReadPatient, ReadRecord, CreateRecord, ReadRecordHistory] {
            assert_eq!(
                decide_with_consent(BaseDoctor, c, action),
                NOT_FOUND,
                "{c:?} {action:?}"
            );
        }
    }
    let open_ended = ConsentFacts {
        expires_at: None,
        ..base
    };
    assert_eq!(
        decide_with_consent(BaseDoctor, open_ended, ReadRecord),
        CONSENT
    );
}

#[test]
fn given_a_demographics_consent_when_records_are_touched_then_no_consent() {
    let c = consent(Grantee::User(user(BaseDoctor)), ConsentScope::Demographics);
    assert_eq!(decide_with_consent(BaseDoctor, c, ReadPatient), CONSENT);
    assert_eq!(
        decide_with_consent(BaseDoctor, c, ReadPatientHistory),
        CONSENT
    );
    for action in [
        CreateRecord,
        ReadRecord,
        AmendRecord,
        VoidRecord,
        ReadRecordHistory,
    ] {
        assert_eq!(
            decide_with_consent(BaseDoctor, c, action),
            NO_CONSENT,
            "{action:?}"
        );
    }
}

#[test]
fn given_a_records_consent_when_demographics_are_read_then_no_consent() {
    let c = consent(
        Grantee::User(user(BaseDoctor)),
        ConsentScope::ClinicalRecords,
    );
    assert_eq!(decide_with_consent(BaseDoctor, c, ReadPatient), NO_CONSENT);
    assert_eq!(decide_with_consent(BaseDoctor, c, ReadRecord), CONSENT);
    assert_eq!(decide_with_consent(BaseDoctor, c, AmendRecord), CONSENT);
    assert_eq!(
        decide_with_consent(BaseDoctor, c, UpdatePatient),
        DENY_ORG_ROLE
    );
}

#[test]
fn given_a_consent_to_an_org_when_its_members_act_then_only_its_doctors_benefit() {
    let c = consent(Grantee::Org(ORG_B), ConsentScope::All);
    assert_eq!(decide_with_consent(OtherOrgDoctor, c, ReadRecord), CONSENT);
    assert_eq!(
        decide_with_consent(OtherOrgDoctor, c, CreateRecord),
        CONSENT
    );
    for who in [OtherOrgAdmin, OtherOrgStaff, OtherOrgAuditor, BaseDoctor] {
        assert_eq!(
            decide_with_consent(who, c, ReadPatient),
            NOT_FOUND,
            "{who:?}"
        );
    }
}

#[test]
fn given_a_consent_to_a_user_who_is_no_doctor_when_they_read_then_not_found() {
    let c = consent(Grantee::User(user(PatientOther)), ConsentScope::All);
    assert_eq!(decide_with_consent(PatientOther, c, ReadPatient), NOT_FOUND);
}

// ---- emergency -----------------------------------------------------------------------

#[test]
fn given_a_grant_of_someone_else_or_on_another_patient_when_read_then_not_found() {
    let p = patient();
    let grants = [
        grant(OtherOrgDoctor, now() + Duration::minutes(5)),
        EmergencyFacts {
            patient_id: OTHER_PATIENT,
            ..grant(BaseDoctor, now() + Duration::minutes(5))
        },
        grant(EmergencyExpired, now()),
    ];
    let ctx = AccessContext {
        now: now(),
        consents: &[],
        emergency: &grants,
    };
    for who in [BaseDoctor, EmergencyExpired, OtherOrgAdmin] {
        assert_eq!(
            decide(&principal(who), ReadRecord, Resource::Record(&p), &ctx),
            NOT_FOUND,
            "{who:?}"
        );
    }
    assert_eq!(
        decide(
            &principal(OtherOrgDoctor),
            ReadRecord,
            Resource::Record(&p),
            &ctx
        ),
        EMERGENCY
    );
}

// ---- erasure -------------------------------------------------------------------------

#[test]
fn given_an_erased_patient_when_a_related_caller_acts_then_gone_and_strangers_not_found() {
    let (consents, grants) = (world_consents(), world_grants());
    let ctx = AccessContext {
        now: now(),
        consents: &consents,
        emergency: &grants,
    };
    let erased = PatientFacts {
        erased: true,
        ..patient()
    };
    let cases = [
        (OrgDoctor, ReadPatient, GONE),
        (OrgDoctor, AmendRecord, GONE),
        (OrgStaff, ReadRecord, GONE),
        (PatientOwn, ReadPatient, GONE),
        (ConsentedDoctor, ReadRecord, GONE),
        (EmergencyActive, ReadPatient, GONE),
        (AppAuditor, ReadPatientHistory, GONE),
        (OtherOrgDoctor, EmergencyAccess, GONE),
        (OtherOrgDoctor, ReadPatient, NOT_FOUND),
        (PatientOther, ReadRecord, NOT_FOUND),
        (SuperAdmin, ReadPatient, NOT_FOUND),
        (EmergencyExpired, ReadPatient, NOT_FOUND),
    ];
    for (who, action, expected) in cases {
        let got = decide(&principal(who), action, resource_for(action, &erased), &ctx);
        assert_eq!(got, expected, "{who:?} {action:?}");
    }
}

#[test]
fn given_an_erased_patient_when_its_dsr_is_read_or_decided_then_it_still_answers() {
    let (consents, grants) = (world_consents(), world_grants());
    let ctx = AccessContext {
        now: now(),
        consents: &consents,
        emergency: &grants,
    };
    let erased = PatientFacts {
        erased: true,
        ..patient()
    };
    let cases = [
        (PatientOwn, ReadDsr, OWN),
        (OrgAdmin, ReadDsr, MEMBER),
        (SuperAdmin, ReadDsr, PLATFORM),
        (AppAdmin, DecideErasure, PLATFORM),
        (SuperAdmin, DecideErasure, PLATFORM),
        (OrgDoctor, ReadDsr, DENY_ORG_ROLE),
        (OrgAdmin, DecideErasure, DENY_ROLE),
        (PatientOther, ReadDsr, NOT_FOUND),
        (OtherOrgAdmin, DecideErasure, NOT_FOUND),
        // Everything else on the erased patient is gone, as for the clinical routes.
        (PatientOwn, GrantConsent, GONE),
        (PatientOwn, DecideConsent, GONE),
        (PatientOwn, RevokeConsent, GONE),
        (PatientOwn, ManageSessionConsent, GONE),
        (PatientOwn, ReadSessionConsents, GONE),
        (PatientOwn, RequestErasure, GONE),
        (PatientOwn, Export, GONE),
        (OrgAdmin, RequestErasure, GONE),
        (OrgAdmin, Export, GONE),
        (OrgDoctor, RequestConsent, GONE),
        (BaseDoctor, RequestConsent, GONE),
        (ConsentedDoctor, RevokeConsent, GONE),
        (PatientOther, GrantConsent, NOT_FOUND),
        (PatientOther, Export, NOT_FOUND),
        (OtherOrgStaff, RequestConsent, NOT_FOUND),
    ];
    for (who, action, expected) in cases {
        let got = decide(&principal(who), action, resource_for(action, &erased), &ctx);
        assert_eq!(got, expected, "{who:?} {action:?}");
    }
}

// ---- consents and DSRs ---------------------------------------------------------------

#[test]
fn given_a_consent_not_in_force_when_anything_is_decided_then_consent_never_allows() {
    let p = patient();
    let me = user(BaseDoctor);
    let mut not_in_force = Vec::new();
    for grantee in [Grantee::User(me), Grantee::Org(ORG_B)] {
        for scope in ConsentScope::ALL {
            let base = consent(grantee, scope);
            for status in [
                ConsentStatus::Requested,
                ConsentStatus::Declined,
                ConsentStatus::Revoked,
            ] {
                not_in_force.push(ConsentFacts { status, ..base });
            }
            for expires_at in [now(), now() - Duration::days(1)] {
                not_in_force.push(ConsentFacts {
                    expires_at: Some(expires_at),
                    ..base
                });
            }
        }
    }
    let mut doctor_of_b = principal(BaseDoctor);
    doctor_of_b.memberships.push(Membership {
        org_id: ORG_B,
        role: Role::OrgDoctor,
    });
    for c in not_in_force {
        let consents = [c];
        let ctx = AccessContext {
            now: now(),
            consents: &consents,
            emergency: &[],
        };
        for action in Action::ALL {
            let got = decide(&doctor_of_b, action, resource_for(action, &p), &ctx);
            assert_ne!(got, CONSENT, "{c:?} {action:?}");
            if matches!(
                action,
                ReadPatient | ReadRecord | ReadRecordHistory | ReadSessionConsents | AmendRecord
            ) {
                assert_eq!(got, NOT_FOUND, "{c:?} {action:?}: nothing tells of P");
            }
        }
    }
}

#[test]
fn given_a_consent_when_someone_but_the_patient_answers_it_then_only_the_patient_may() {
    let p = patient();
    let ctx = AccessContext {
        now: now(),
        consents: &[],
        emergency: &[],
    };
    let requested_by = |who: Who| Resource::Consent {
        patient: &p,
        grantee: Grantee::User(user(who)),
    };
    for action in [DecideConsent, RevokeConsent] {
        // The requesting doctor knows the consent, not yet the patient's chart.
        assert_eq!(
            decide(
                &principal(BaseDoctor),
                action,
                requested_by(BaseDoctor),
                &ctx
            ),
            PATIENT_ONLY
        );
        assert_eq!(
            decide(
                &principal(PatientOwn),
                action,
                requested_by(BaseDoctor),
                &ctx
            ),
            OWN
        );
        assert_eq!(
            decide(
                &principal(OtherOrgDoctor),
                action,
                requested_by(BaseDoctor),
                &ctx
            ),
            NOT_FOUND
        );
        let to_org_b = Resource::Consent {
            patient: &p,
            grantee: Grantee::Org(ORG_B),
        };
        for who in [OtherOrgAdmin, OtherOrgStaff, OtherOrgDoctor] {
            assert_eq!(
                decide(&principal(who), action, to_org_b, &ctx),
                PATIENT_ONLY,
                "{who:?}"
            );
        }
        assert_eq!(
            decide(&principal(PatientOther), action, to_org_b, &ctx),
            NOT_FOUND
        );
    }
}

#[test]
fn given_a_consent_route_on_the_wrong_kind_of_resource_when_decided_then_it_fails_closed() {
    let p = patient();
    let ctx = AccessContext {
        now: now(),
        consents: &[],
        emergency: &[],
    };
    let own = principal(PatientOwn);
    assert_eq!(
        decide(&own, DecideConsent, Resource::Patient(&p), &ctx),
        NOT_FOUND
    );
    assert_eq!(
        decide(&own, ListOwnConsents, Resource::Patient(&p), &ctx),
        NOT_FOUND
    );
    assert_eq!(decide(&own, GrantConsent, Resource::Own, &ctx), NOT_FOUND);
    let consent = Resource::Consent {
        patient: &p,
        grantee: Grantee::Org(ORG_A),
    };
    assert_eq!(decide(&own, ReadPatient, consent, &ctx), NOT_FOUND);
    assert_eq!(
        decide(&principal(OrgAdmin), ListOrgConsents, Resource::Own, &ctx),
        NOT_FOUND
    );
}

// ---- tenancy and wiring --------------------------------------------------------------

#[test]
fn given_a_member_of_two_orgs_when_acting_on_a_patient_then_only_the_patients_org_counts() {
    let p = patient();
    let ctx = AccessContext {
        now: now(),
        consents: &[],
        emergency: &[],
    };
    let mut staff_here_doctor_there = principal(OrgStaff);
    staff_here_doctor_there.memberships.push(Membership {
        org_id: ORG_B,
        role: Role::OrgDoctor,
    });
    assert_eq!(
        decide(
            &staff_here_doctor_there,
            ReadRecord,
            Resource::Record(&p),
            &ctx
        ),
        NO_CLINICAL
    );
    assert_eq!(
        decide(
            &staff_here_doctor_there,
            ReadPatient,
            Resource::Patient(&p),
            &ctx
        ),
        MEMBER
    );
}

#[test]
fn given_an_action_on_the_wrong_kind_of_resource_when_decided_then_it_fails_closed() {
    let p = patient();
    let ctx = AccessContext {
        now: now(),
        consents: &[],
        emergency: &[],
    };
    let doctor = principal(OrgDoctor);
    assert_eq!(
        decide(&doctor, ReadRecord, Resource::Patient(&p), &ctx),
        NOT_FOUND
    );
    assert_eq!(
        decide(&doctor, ReadPatient, Resource::Record(&p), &ctx),
        NOT_FOUND
    );
    assert_eq!(
        decide(&doctor, ReadOrg, Resource::Platform, &ctx),
        NOT_FOUND
    );
    assert_eq!(
        decide(
            &principal(SuperAdmin),
            CreateOrg,
            Resource::Org(ORG_A),
            &ctx
        ),
        NOT_FOUND
    );
}

#[test]
fn the_gateway_checks_roles_only() {
    let cases = [
        (BaseDoctor, CreateOrg, true),
        (AppAdmin, CreateOrg, true),
        (SuperAdmin, CreateOrg, true),
        (OrgDoctor, CreateOrg, false),
        (PatientOwn, CreateOrg, false),
        (OrgDoctor, EmergencyAccess, true),
        (BaseDoctor, EmergencyAccess, true),
        (SuperAdmin, EmergencyAccess, true),
        (AppAdmin, EmergencyAccess, false),
        (OrgStaff, EmergencyAccess, false),
        (OtherOrgDoctor, CreateRecord, true),
        (BaseDoctor, AmendRecord, true),
        (OrgStaff, VoidRecord, false),
        (SuperAdmin, CreateRecord, false),
        (PatientOwn, ReadRecord, true),
        (OrgStaff, ReadRecordHistory, true),
        (BaseDoctor, RequestConsent, true),
        (OtherOrgDoctor, RequestConsent, true),
        (OrgAdmin, RequestConsent, false),
        (PatientOwn, RequestConsent, false),
        (SuperAdmin, RequestConsent, false),
        (SuperAdmin, DecideErasure, true),
        (AppAdmin, DecideErasure, true),
        (AppAuditor, DecideErasure, false),
        (OrgAdmin, DecideErasure, false),
        (PatientOwn, DecideErasure, false),
        (SuperAdmin, ManageLegalHold, true),
        (AppAdmin, ManageLegalHold, true),
        (AppAuditor, ManageLegalHold, false),
        (OrgAdmin, ManageLegalHold, false),
        (BaseDoctor, ManageLegalHold, false),
        (PatientOwn, GrantConsent, true),
        (BaseDoctor, DecideConsent, true),
        (PatientOther, RevokeConsent, true),
        (OrgStaff, ListOrgConsents, true),
        (PatientOwn, ManageSessionConsent, true),
        (PatientOwn, RequestErasure, true),
        (OrgAdmin, Export, true),
        (AppAuditor, ReadDsr, true),
        (OtherOrgAuditor, ListOwnConsents, true),
    ];
    for (who, action, expected) in cases {
        assert_eq!(
            route_allows(&principal(who), action),
            expected,
            "{who:?} {action:?}"
        );
    }
}

/// Every combination of base role, platform roles and membership in A and in B.
fn generated_principals() -> Vec<Principal> {
    let bases = [None, Some(Role::BaseDoctor), Some(Role::BasePatient)];
    let platform = [Role::SuperAdmin, Role::AppAdmin, Role::AppAuditor];
    let org_roles = [
        None,
        Some(Role::OrgAdmin),
        Some(Role::OrgDoctor),
        Some(Role::OrgStaff),
        Some(Role::OrgAuditor),
    ];
    let mut out = Vec::new();
    for base in bases {
        for mask in 0..8u8 {
            for in_a in org_roles {
                for in_b in org_roles {
                    let roles = base
                        .into_iter()
                        .chain(
                            platform
                                .iter()
                                .enumerate()
                                .filter(|(i, _)| mask & (1 << i) != 0)
                                .map(|(_, r)| *r),
                        )
                        .collect();
                    let memberships = [(ORG_A, in_a), (ORG_B, in_b)]
                        .into_iter()
                        .filter_map(|(org_id, role)| role.map(|role| Membership { org_id, role }))
                        .collect();
                    out.push(Principal {
                        user_id: UserId(Uuid::from_u128(7)),
                        roles,
                        memberships,
                    });
                }
            }
        }
    }
    out
}

#[test]
fn what_the_gateway_refuses_decide_never_allows() {
    let me = UserId(Uuid::from_u128(7));
    let mut facts = Vec::new();
    for org_id in [ORG_A, ORG_B] {
        for user_id in [None, Some(me), Some(UserId(Uuid::from_u128(8)))] {
            for erased in [false, true] {
                facts.push(PatientFacts {
                    patient_id: PATIENT,
                    org_id,
                    user_id,
                    erased,
                });
            }
        }
    }
    let mut resources = vec![
        Resource::Platform,
        Resource::Org(ORG_A),
        Resource::Org(ORG_B),
    ];
    resources.extend(facts.iter().map(Resource::Patient));
    resources.extend(facts.iter().map(Resource::Record));
    resources.push(Resource::Own);
    for grantee in [Grantee::User(me), Grantee::Org(ORG_A), Grantee::Org(ORG_B)] {
        resources.extend(
            facts
                .iter()
                .map(|patient| Resource::Consent { patient, grantee }),
        );
    }
    let consents_sets = [
        vec![],
        vec![consent(Grantee::User(me), ConsentScope::All)],
        vec![consent(Grantee::Org(ORG_B), ConsentScope::ClinicalRecords)],
    ];
    let grants_sets = [
        vec![],
        vec![EmergencyFacts {
            user_id: me,
            ..grant(BaseDoctor, now() + Duration::minutes(9))
        }],
    ];
    let mut checked = 0;
    for principal in generated_principals() {
        for action in ALL_ACTIONS {
            if route_allows(&principal, action) {
                continue;
            }
            for consents in &consents_sets {
                for grants in &grants_sets {
                    let ctx = AccessContext {
                        now: now(),
                        consents,
                        emergency: grants,
                    };
                    for resource in &resources {
                        let got = decide(&principal, action, *resource, &ctx);
                        assert!(
                            !matches!(got, Decision::Allow(_)),
                            "{principal:?} {action:?} {resource:?}: gateway refuses, decide says {got:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(
        checked > 10_000,
        "the generated set is not trivial ({checked})"
    );
}
