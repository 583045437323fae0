//! The `audit_feed` read model (`projections/audit_feed.sql`): one audit entry per event
//! of the log — who (actor, roles, organisation), from where (address, user agent), what
//! (action on a resource, outcome), through which service and endpoint, when.
//!
//! It reads the clear metadata of every event and never a payload sealed under a
//! person's key, so it holds no PHI and is the same after an erasure. The payloads it may
//! read are those sealed under the `system` subject ([`SubjectId::system`]) of the access
//! events (`AccessRecorded`, `ClientAuditDeclared`), which carry ids and technical facts
//! only. For every other event the action and the resource come from the event type and
//! the stream ([`classify`], a pure table).

use carelog_domain::{StreamId, StreamType, SubjectId};
use carelog_store::projector::AuditFeedRow;
use carelog_store::{Opened, StoredEvent};
use serde_json::Value;
use sqlx::PgConnection;

use crate::{ApplyError, BatchApplyError, BoxFuture, BulkSql, Projection, RebuildSql};

/// The definition of its tables (run by [`crate::schemas::ensure_schemas`]).
pub const SCHEMA: &str = include_str!("../../../projections/audit_feed.sql");

/// The service name of entries recorded through the HTTP API.
pub const SERVICE_API: &str = "carelog-api";
/// The service name of entries recorded through the CLI.
pub const SERVICE_CLI: &str = "carelog-cli";

/// The projection feeding `audit_feed`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFeed;

impl AuditFeed {
    /// Its name (checkpoint row, consumer `<prefix>proj_audit_feed`).
    pub const NAME: &'static str = "audit_feed";
}

/// What an event did, as an audit entry says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// create, read, update, login, erase, grant, revoke, emergency_access, ...
    pub action: &'static str,
    /// patient, clinical_record, user, organization, consent, ...
    pub resource_type: &'static str,
    /// The resource's id (the stream's uuid; the actor for a login).
    pub resource_id: Option<String>,
    /// success, denied or failure.
    pub outcome: &'static str,
}

/// The resource type of a stream's aggregate, as audit entries name it.
pub fn resource_type_of(kind: StreamType) -> &'static str {
    match kind {
        StreamType::Patient => "patient",
        StreamType::Record => "clinical_record",
        StreamType::User => "user",
        StreamType::Org => "organization",
        StreamType::Consent => "consent",
        StreamType::Dsr => "dsr",
        StreamType::System => "system",
        StreamType::Session => "session",
        StreamType::Emergency => "emergency_access",
        StreamType::SessionConsent => "session_consent",
        StreamType::Access => "access",
    }
}

/// The action of each event type whose payload is not read (the table of record).
/// Unknown types answer `None` (their entry says `other`).
pub fn action_of(event_type: &str) -> Option<(&'static str, &'static str)> {
    const SUCCESS: &str = "success";
    const FAILURE: &str = "failure";
    Some(match event_type {
        "PatientRegistered" | "RecordCreated" | "OrganizationCreated" | "UserRegistered" => {
            ("create", SUCCESS)
        }
        "PatientUpdated" | "RecordAmended" | "MemberRoleChanged" => ("update", SUCCESS),
        "RecordVoided" => ("void", SUCCESS),
        "PatientErased" | "ErasureCompleted" => ("erase", SUCCESS),
        "PatientDataExported" => ("export", SUCCESS),
        "EmergencyAccessGranted" => ("emergency_access", SUCCESS),
        "ConsentGranted" | "SessionConsentGranted" | "RoleGranted" => ("grant", SUCCESS),
        "ConsentRevoked" | "SessionConsentRevoked" | "RoleRevoked" => ("revoke", SUCCESS),
        "ConsentRequested" | "ErasureRequested" => ("request", SUCCESS),
        "ConsentApproved" | "ErasureApproved" => ("approve", SUCCESS),
        "ConsentDeclined" => ("decline", SUCCESS),
        "ErasureRejected" => ("reject", SUCCESS),
        "MemberAdded" => ("add_member", SUCCESS),
        "MemberRemoved" => ("remove_member", SUCCESS),
        "LegalHoldPlaced" => ("place_legal_hold", SUCCESS),
        "LegalHoldLifted" => ("lift_legal_hold", SUCCESS),
        "SessionStarted" | "LoginSucceeded" => ("login", SUCCESS),
        "LoginFailed" => ("login", FAILURE),
        "AccountLocked" => ("lock", SUCCESS),
        "SessionRefreshed" => ("refresh", SUCCESS),
        "RefreshReuseDetected" => ("refresh", FAILURE),
        "SessionRevoked" => ("logout", SUCCESS),
        "MfaEnrolled" => ("mfa_enroll", SUCCESS),
        "MfaEnabled" => ("mfa_enable", SUCCESS),
        "MfaDisabled" => ("mfa_disable", SUCCESS),
        "MasterKeyRotated" => ("rotate_key", SUCCESS),
        "AuditCheckpointTaken" => ("checkpoint", SUCCESS),
        "DlqEntryRetried" => ("dlq_retry", SUCCESS),
        "DlqEntryDiscarded" => ("dlq_discard", SUCCESS),
        _ => return None,
    })
}

/// Action, resource and outcome of an event from its type, its stream and its actor
/// (never its payload): a login is about the user who logged in, everything else about
/// the stream's aggregate.
pub fn classify(event_type: &str, stream: &StreamId, actor: Option<uuid::Uuid>) -> Classified {
    let (action, outcome) = action_of(event_type).unwrap_or(("other", "success"));
    let (resource_type, resource_id) = match (action, stream.stream_type()) {
        ("login" | "logout" | "refresh", StreamType::Session) => (
            "user",
            actor
                .map(|a| a.to_string())
                .or(Some(stream.uuid().to_string())),
        ),
        (_, kind) => (resource_type_of(kind), Some(stream.uuid().to_string())),
    };
    Classified {
        action,
        resource_type,
        resource_id,
        outcome,
    }
}

/// The event types whose payload is an audit record sealed under `system` (and so may be
/// read here).
const ACCESS_RECORD_TYPES: &[&str] = &["AccessRecorded", "ClientAuditDeclared"];

/// Whether an event type is one of [`ACCESS_RECORD_TYPES`].
fn is_access_record(event_type: &str) -> bool {
    ACCESS_RECORD_TYPES.contains(&event_type)
}

/// Whether [`row`] reads `event`'s payload: only an access record sealed under `system`.
/// Every other payload (a person's data among them) is never even decrypted for the feed.
pub fn reads_payload(event: &StoredEvent) -> bool {
    is_access_record(event.header.event_type.as_str())
        && event.header.subject == SubjectId::system()
}

/// A short string field of an access payload (at most 200 bytes are kept).
fn text(payload: &Value, key: &str) -> Option<String> {
    let s = payload.get(key)?.as_str()?;
    let mut end = s.len().min(200);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_owned())
}

/// The `audit_feed` row of `event` (`opened` is its payload, read for the access records
/// sealed under `system` only).
pub fn row(event: &StoredEvent, opened: &Opened) -> AuditFeedRow {
    let h = &event.header;
    let m = &h.metadata;
    let event_type = h.event_type.as_str();
    let c = classify(event_type, &h.stream_id, m.actor_id);
    let from_api = m.command.as_deref().is_some_and(|c| {
        c.split_once(' ').is_some_and(|(verb, path)| {
            verb.bytes().all(|b| b.is_ascii_uppercase()) && path.starts_with('/')
        })
    });
    let mut r = AuditFeedRow {
        position: event.position.0,
        event_id: h.event_id.0,
        stream_id: h.stream_id.to_string(),
        stream_type: h.stream_id.stream_type().as_str(),
        event_type: event_type.to_owned(),
        actor_id: m.actor_id,
        request_id: m.request_id.clone(),
        recorded_at: h.recorded_at,
        roles: m.roles.clone(),
        org_id: m.org_id,
        ip: m.ip.clone(),
        user_agent: m.user_agent.clone(),
        action: c.action.to_owned(),
        resource_type: c.resource_type.to_owned(),
        resource_id: c.resource_id,
        outcome: c.outcome.to_owned(),
        endpoint: m.command.clone(),
        service: m
            .command
            .as_ref()
            .map(|_| if from_api { SERVICE_API } else { SERVICE_CLI }.to_owned()),
        emergency: event_type == "EmergencyAccessGranted",
    };
    // Only a payload sealed under `system` is ever opened: never PHI.
    if reads_payload(event) {
        if let Opened::Payload(p) = opened {
            if let Some(v) = text(p, "action") {
                r.action = v;
            }
            if let Some(v) = text(p, "resource_type") {
                r.resource_type = v;
            }
            r.resource_id = text(p, "resource_id").or(r.resource_id);
            if let Some(v) = text(p, "outcome") {
                r.outcome = v;
            }
            r.service = text(p, "service").or(r.service);
            r.endpoint = text(p, "endpoint").or(r.endpoint);
            r.emergency = p.get("emergency").and_then(Value::as_bool).unwrap_or(false);
        }
    }
    r
}

impl Projection for AuditFeed {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a StoredEvent,
        opened: &'a Opened,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            carelog_store::projector::audit_feed_apply(tx, &row(event, opened)).await?;
            Ok(())
        })
    }

    /// One multi-row statement for the whole batch
    /// (`projections/audit_feed_apply_batch.sql`).
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        Box::pin(async move {
            let rows: Vec<AuditFeedRow> = events.iter().map(|(e, o)| row(e, o)).collect();
            carelog_store::projector::audit_feed_apply_batch(tx, &rows)
                .await
                .map_err(|e| BatchApplyError {
                    index: None,
                    error: e.into(),
                })
        })
    }

    /// The bulk fill drops the twin's indexes and constraints first
    /// (`projections/audit_feed_rebuild_bulk.sql`) and gives them back, as the live table
    /// defines them, after (`projections/audit_feed_rebuild_indexes.sql`, or the same
    /// statements on several connections: [`BulkSql::parallel_indexes`]).
    fn payload_filter(&self) -> Option<crate::PayloadFilter> {
        Some(reads_payload)
    }

    fn payload_types(&self) -> Option<&'static [&'static str]> {
        Some(ACCESS_RECORD_TYPES)
    }

    fn bulk_sql(&self) -> Option<BulkSql> {
        Some(BulkSql {
            before: include_str!("../../../projections/audit_feed_rebuild_bulk.sql"),
            after: include_str!("../../../projections/audit_feed_rebuild_indexes.sql"),
            // The same indexes, built by several connections at once (faster on two
            // cores and more: PostgreSQL builds one index with one process, plus at most
            // its parallel maintenance workers for the large ones).
            parallel_indexes: Some(Self::NAME),
        })
    }

    /// One binary `COPY` of the batch's rows into the index-less twin
    /// (`projections/audit_feed_copy.sql`); not idempotent, as a fill need not be.
    fn fill_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [(&'a StoredEvent, &'a Opened)],
    ) -> BoxFuture<'a, Result<(), BatchApplyError>> {
        Box::pin(async move {
            let rows: Vec<AuditFeedRow> = events.iter().map(|(e, o)| row(e, o)).collect();
            carelog_store::projector::audit_feed_copy(tx, &rows)
                .await
                .map_err(|e| BatchApplyError {
                    index: None,
                    error: e.into(),
                })
        })
    }

    fn rebuild_sql(&self) -> Option<RebuildSql> {
        Some(RebuildSql {
            prepare: include_str!("../../../projections/audit_feed_rebuild_prepare.sql"),
            swap: include_str!("../../../projections/audit_feed_rebuild_swap.sql"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn stream(kind: StreamType) -> StreamId {
        StreamId::new(kind, Uuid::from_u128(7))
    }

    #[test]
    fn the_brief_examples_map_as_specified() {
        let id = Some(Uuid::from_u128(7).to_string());
        let cases = [
            (
                "PatientRegistered",
                StreamType::Patient,
                "create",
                "patient",
                "success",
            ),
            (
                "RecordAmended",
                StreamType::Record,
                "update",
                "clinical_record",
                "success",
            ),
            (
                "PatientErased",
                StreamType::Patient,
                "erase",
                "patient",
                "success",
            ),
            (
                "ConsentGranted",
                StreamType::Consent,
                "grant",
                "consent",
                "success",
            ),
            (
                "ConsentRevoked",
                StreamType::Consent,
                "revoke",
                "consent",
                "success",
            ),
            ("LoginFailed", StreamType::User, "login", "user", "failure"),
            (
                "RecordCreated",
                StreamType::Record,
                "create",
                "clinical_record",
                "success",
            ),
            (
                "OrganizationCreated",
                StreamType::Org,
                "create",
                "organization",
                "success",
            ),
        ];
        for (ty, kind, action, resource, outcome) in cases {
            let c = classify(ty, &stream(kind), None);
            assert_eq!(
                c,
                Classified {
                    action,
                    resource_type: resource,
                    resource_id: id.clone(),
                    outcome
                },
                "{ty}"
            );
        }
        let emergency = classify(
            "EmergencyAccessGranted",
            &stream(StreamType::Emergency),
            None,
        );
        assert_eq!(emergency.action, "emergency_access");
    }

    #[test]
    fn a_login_is_about_the_user_who_logged_in() {
        let user = Uuid::from_u128(42);
        let c = classify("SessionStarted", &stream(StreamType::Session), Some(user));
        assert_eq!(
            (c.action, c.resource_type, c.resource_id),
            ("login", "user", Some(user.to_string()))
        );
        let c = classify("SessionRevoked", &stream(StreamType::Session), Some(user));
        assert_eq!((c.action, c.resource_type), ("logout", "user"));
    }

    #[test]
    fn every_event_type_with_a_schema_has_an_action() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/v1");
        for entry in std::fs::read_dir(dir).expect("schemas/v1") {
            let name = entry.expect("entry").file_name();
            let ty = name.to_string_lossy().trim_end_matches(".json").to_owned();
            if is_access_record(&ty) {
                continue; // read from their payload
            }
            assert!(action_of(&ty).is_some(), "{ty} has no audit action");
        }
    }

    #[test]
    fn unknown_event_types_are_other() {
        assert_eq!(
            classify("Whatever", &stream(StreamType::System), None).action,
            "other"
        );
    }
}
