//! Access events (DESIGN.md invariant 6): every read of PHI and every denied attempt
//! appends an [`AccessEvent::AccessRecorded`] before the response is sent, so the audit
//! trail stays the event log.
//!
//! Each access event is the single event of its own stream, `access-<uuid>`
//! ([`crate::ids::AccessId::stream`]): concurrent readers never conflict on a version,
//! and the group-commit store batches them into shared transactions. The payload carries
//! no PHI (ids, names of things, a route template), so it is sealed under
//! [`SubjectId::system`] and outlives any erasure. Who, when and from where are in the
//! event's [`Metadata`] (actor, roles, organisation, request id, client address, user
//! agent, time). The reason of an emergency access is not repeated here: it is sealed
//! under the patient's key in `EmergencyAccessGranted`, which `grant_id` points to.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::access::Action as PolicyAction;
use crate::event::{codec, NewEvent};
use crate::ids::{GrantId, SubjectId};
use crate::metadata::Metadata;

/// The `service` of access events written by the HTTP API.
pub const API_SERVICE: &str = "carelog-api";

/// What was done (or attempted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A read (PHI, or an auditor's read of metadata).
    Read,
    /// A creation.
    Create,
    /// A change.
    Update,
    /// A removal (voiding, removing a member).
    Delete,
    /// A data export.
    Export,
    /// A break-glass grant.
    EmergencyAccess,
    /// A consent given.
    Grant,
    /// A consent withdrawn.
    Revoke,
    /// An erasure decided.
    Erase,
    /// A request authenticated with a token (recorded when a genuine token of a known
    /// user is refused: expired, or its session revoked or ended).
    Authenticate,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 10] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Export,
        Action::EmergencyAccess,
        Action::Grant,
        Action::Revoke,
        Action::Erase,
        Action::Authenticate,
    ];

    /// The snake_case name, as stored and in the audit API.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Export => "export",
            Action::EmergencyAccess => "emergency_access",
            Action::Grant => "grant",
            Action::Revoke => "revoke",
            Action::Erase => "erase",
            Action::Authenticate => "authenticate",
        }
    }

    /// The audit action of a policy action.
    pub fn of(action: PolicyAction) -> Self {
        use PolicyAction as P;
        match action {
            P::ReadOrg
            | P::ListMembers
            | P::ListPatients
            | P::ReadPatient
            | P::ReadPatientHistory
            | P::ReadRecord
            | P::ReadRecordHistory
            | P::ListOwnConsents
            | P::ListOrgConsents
            | P::ReadSessionConsents
            | P::ReadDsr => Action::Read,
            P::CreateOrg
            | P::AddMember
            | P::CreatePatient
            | P::CreateRecord
            | P::RequestConsent
            | P::RequestErasure => Action::Create,
            P::UpdatePatient | P::AmendRecord | P::DecideConsent | P::ManageLegalHold => {
                Action::Update
            }
            P::RemoveMember | P::VoidRecord => Action::Delete,
            P::Export => Action::Export,
            P::EmergencyAccess => Action::EmergencyAccess,
            P::GrantConsent | P::ManageSessionConsent => Action::Grant,
            P::RevokeConsent => Action::Revoke,
            P::DecideErasure => Action::Erase,
        }
    }
}

/// What kind of resource was accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// A patient (demographics, history, the list of their records, their export).
    Patient,
    /// One clinical record.
    ClinicalRecord,
    /// An organisation.
    Organization,
    /// A consent.
    Consent,
    /// A data-subject request.
    Dsr,
    /// A login session (a token presented on a session that has ended).
    Session,
    /// The audit trail itself (its entries, the log's feed and export, its
    /// verification): an auditor's read of metadata, or a refused attempt at one. The
    /// id is what was asked about (a resource, user or record), or the nil UUID for
    /// the trail as a whole.
    AuditTrail,
}

impl ResourceType {
    /// Every resource type.
    pub const ALL: [ResourceType; 7] = [
        ResourceType::Patient,
        ResourceType::ClinicalRecord,
        ResourceType::Organization,
        ResourceType::Consent,
        ResourceType::Dsr,
        ResourceType::Session,
        ResourceType::AuditTrail,
    ];

    /// The snake_case name, as stored and in the audit API.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Patient => "patient",
            ResourceType::ClinicalRecord => "clinical_record",
            ResourceType::Organization => "organization",
            ResourceType::Consent => "consent",
            ResourceType::Dsr => "dsr",
            ResourceType::Session => "session",
            ResourceType::AuditTrail => "audit_trail",
        }
    }
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed and answered.
    Success,
    /// Refused: by the policy (403, or a 404 the policy decided), or a genuine token
    /// refused (401).
    Denied,
    /// Allowed but failed.
    Failure,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Denied, Outcome::Failure];

    /// The snake_case name, as stored and in the audit API.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// Events of the `access-<uuid>` streams (one event per stream).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AccessEvent {
    /// An access (or an attempt) was made. Schema: `schemas/v1/AccessRecorded.json`.
    AccessRecorded {
        /// What was done.
        action: Action,
        /// To what kind of resource.
        resource_type: ResourceType,
        /// Which one.
        resource_id: Uuid,
        /// How it ended.
        outcome: Outcome,
        /// The service that answered ([`API_SERVICE`]).
        service: String,
        /// Method and matched route template, e.g. `GET /api/patients/{id}` (never the
        /// raw path or query).
        endpoint: String,
        /// Allowed by an emergency ("break-glass") grant.
        emergency: bool,
        /// That grant (its reason is in `EmergencyAccessGranted`, under the patient's key).
        grant_id: Option<GrantId>,
    },
}

/// Every access event type.
pub const KNOWN: [&str; 1] = ["AccessRecorded"];

impl std::fmt::Debug for AccessEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_type_name())
    }
}

impl AccessEvent {
    /// The event type, `AccessRecorded`.
    pub fn event_type_name(&self) -> &'static str {
        codec::variant_name(self, &KNOWN)
    }

    /// Decodes a stored payload of type `event_type`; `None` if it is not an access
    /// event.
    pub fn decode(event_type: &str, payload: Value) -> Option<Result<Self, serde_json::Error>> {
        codec::decode(event_type, payload)
    }

    /// The event to append (to a fresh `access-<uuid>` stream), sealed under the
    /// `system` subject: it carries no PHI.
    pub fn into_new_event(self, metadata: Metadata) -> NewEvent {
        codec::new_event(&self, SubjectId::system(), metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccessId, StreamType};
    use crate::testing::{assert_covers, check_schema};

    #[test]
    fn every_access_event_matches_its_schema_and_round_trips() {
        let mut seen = Vec::new();
        for (i, action) in Action::ALL.into_iter().enumerate() {
            let e = AccessEvent::AccessRecorded {
                action,
                resource_type: ResourceType::ALL[i % ResourceType::ALL.len()],
                resource_id: Uuid::from_u128(i as u128),
                outcome: Outcome::ALL[i % Outcome::ALL.len()],
                service: API_SERVICE.to_owned(),
                endpoint: "GET /api/patients/{id}".to_owned(),
                emergency: i % 2 == 0,
                grant_id: (i % 2 == 0).then_some(GrantId(Uuid::from_u128(7))),
            };
            let new = e.clone().into_new_event(Metadata::default());
            check_schema(&new);
            assert_eq!(new.subject, SubjectId::system());
            let back = AccessEvent::decode(new.event_type.as_str(), new.payload.clone());
            assert!(back.unwrap().unwrap() == e);
            seen.push(new.event_type.to_string());
        }
        assert_covers(seen, &KNOWN);
    }

    #[test]
    fn enums_serialise_as_their_snake_case_names() {
        for a in Action::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        for r in ResourceType::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    #[test]
    fn every_policy_action_has_an_audit_action() {
        for a in PolicyAction::ALL {
            let _ = Action::of(a);
        }
        assert_eq!(Action::of(PolicyAction::ReadRecord), Action::Read);
        assert_eq!(Action::of(PolicyAction::Export), Action::Export);
        assert_eq!(
            Action::of(PolicyAction::EmergencyAccess),
            Action::EmergencyAccess
        );
    }

    #[test]
    fn access_streams_are_their_own() {
        let s = AccessId(Uuid::from_u128(1)).stream();
        assert_eq!(s.stream_type(), StreamType::Access);
        assert!(s.to_string().starts_with("access-"));
    }

    #[test]
    fn an_unknown_field_or_type_is_refused() {
        assert!(AccessEvent::decode("PatientRegistered", serde_json::json!({})).is_none());
        let mut payload = AccessEvent::AccessRecorded {
            action: Action::Read,
            resource_type: ResourceType::Patient,
            resource_id: Uuid::nil(),
            outcome: Outcome::Success,
            service: API_SERVICE.to_owned(),
            endpoint: "GET /api/patients/{id}".to_owned(),
            emergency: false,
            grant_id: None,
        }
        .into_new_event(Metadata::default())
        .payload;
        payload["reason"] = serde_json::json!("x");
        assert!(AccessEvent::decode("AccessRecorded", payload)
            .unwrap()
            .is_err());
    }
}
