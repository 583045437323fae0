//! Client-declared audit entries (`POST /api/clinical/audit`): something the server did
//! not see happen — a chart printed, a screen shown to a colleague — declared by the
//! client and recorded as a `ClientAuditDeclared` event, the single event of its own
//! `access-<uuid>` stream, like the access events of [`crate::audit`].
//!
//! Its payload is sealed under [`SubjectId::system`], so it outlives an erasure and is
//! readable by the audit projection: it must never hold PHI. The client's `metadata` is
//! therefore bounded — a flat object of at most [`MAX_KEYS`] short strings, at most
//! [`MAX_METADATA_BYTES`] bytes as JSON — and keys that name personal data (`name`,
//! `email`, `note`, ...) are refused. Resource types are a closed list, resource ids are
//! UUIDs, actions are short `snake_case` words.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::event::NewEvent;
use crate::field::FieldError;
use crate::ids::{EventId, EventType, SchemaVersion, StreamId, StreamType, SubjectId};
use crate::metadata::Metadata;

/// The event type.
pub const EVENT_TYPE: &str = "ClientAuditDeclared";
/// The largest `metadata`, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;
/// The most keys `metadata` may have.
pub const MAX_KEYS: usize = 16;
/// The longest `metadata` value, in characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// The service name of client-declared entries.
pub const SERVICE: &str = "client";

/// The resource types a client may declare about.
pub const RESOURCE_TYPES: [&str; 7] = [
    "patient",
    "clinical_record",
    "organization",
    "consent",
    "dsr",
    "user",
    "session_consent",
];

/// Words that, inside a metadata key, suggest personal data: refused.
const REFUSED_KEY_PARTS: [&str; 18] = [
    "name", "email", "mail", "phone", "address", "birth", "dob", "ssn", "national", "diagnos",
    "note", "body", "title", "comment", "text", "content", "patient_", "sex",
];

/// A declaration as the client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuditInput {
    /// One of [`RESOURCE_TYPES`].
    pub resource_type: String,
    /// The resource's id (a UUID).
    pub resource_id: String,
    /// What was done, e.g. `printed` (1 to 32 of `a-z`, `_`, starting with a letter).
    pub action: String,
    /// Context: a flat object of short strings, no PHI.
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// A validated declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientAudit {
    /// One of [`RESOURCE_TYPES`].
    pub resource_type: String,
    /// The resource.
    pub resource_id: Uuid,
    /// What was done.
    pub action: String,
    /// Context.
    pub metadata: BTreeMap<String, String>,
}

fn is_word(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl ClientAuditInput {
    /// Checks every field; the error names the first bad one.
    pub fn validate(self) -> Result<ClientAudit, FieldError> {
        if !RESOURCE_TYPES.contains(&self.resource_type.as_str()) {
            return Err(FieldError::new(
                "resource_type",
                "must be one of patient, clinical_record, organization, consent, dsr, user, session_consent",
            ));
        }
        let resource_id = Uuid::parse_str(self.resource_id.trim())
            .map_err(|_| FieldError::new("resource_id", "must be a UUID"))?;
        if !is_word(&self.action, 32) {
            return Err(FieldError::new(
                "action",
                "must be 1 to 32 characters of a-z, 0-9 and _, starting with a letter",
            ));
        }
        let bad = |rule| FieldError::new("metadata", rule);
        let mut metadata = BTreeMap::new();
        match self.metadata {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                if map.len() > MAX_KEYS {
                    return Err(bad("must have at most 16 keys"));
                }
                for (k, v) in map {
                    if !is_word(&k, 64) {
                        return Err(bad(
                            "keys must be 1 to 64 characters of a-z, 0-9 and _, starting with a letter",
                        ));
                    }
                    if REFUSED_KEY_PARTS.iter().any(|p| k.contains(p)) {
                        return Err(bad(
                            "must not hold personal data (keys such as name, email, phone, address, birth, note, text are refused)",
                        ));
                    }
                    let Value::String(v) = v else {
                        return Err(bad("values must be strings"));
                    };
                    if v.chars().count() > MAX_VALUE_CHARS || v.chars().any(char::is_control) {
                        return Err(bad(
                            "values must be at most 256 characters without control characters",
                        ));
                    }
                    metadata.insert(k, v);
                }
            }
            Some(_) => return Err(bad("must be an object of strings")),
        }
        let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |v| v.len());
        if size > MAX_METADATA_BYTES {
            return Err(bad("must be at most 4096 bytes as JSON"));
        }
        Ok(ClientAudit {
            resource_type: self.resource_type,
            resource_id,
            action: self.action,
            metadata,
        })
    }
}

impl ClientAudit {
    /// The stream of a new declaration: a fresh `access-<uuid>`, one event each.
    pub fn stream(id: Uuid) -> StreamId {
        StreamId::new(StreamType::Access, id)
    }

    /// The event to append, sealed under the `system` subject (no PHI).
    /// Schema: `schemas/v1/ClientAuditDeclared.json`.
    pub fn into_new_event(self, event_id: EventId, endpoint: &str, metadata: Metadata) -> NewEvent {
        NewEvent {
            event_id,
            event_type: EventType::try_from(EVENT_TYPE).expect("valid event type"),
            schema_version: SchemaVersion(1),
            subject: SubjectId::system(),
            payload: json!({
                "action": self.action,
                "resource_type": self.resource_type,
                "resource_id": self.resource_id,
                "outcome": "success",
                "service": SERVICE,
                "endpoint": endpoint,
                "metadata": self.metadata,
            }),
            metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_schema;

    fn input(metadata: Value) -> ClientAuditInput {
        ClientAuditInput {
            resource_type: "clinical_record".into(),
            resource_id: Uuid::from_u128(9).to_string(),
            action: "printed".into(),
            metadata: Some(metadata),
        }
    }

    #[test]
    fn a_declaration_matches_its_schema_under_the_system_subject() {
        let ok = input(json!({"printer": "ward-3", "copies": "2"}))
            .validate()
            .expect("valid");
        let ev = ok.into_new_event(
            EventId(Uuid::nil()),
            "POST /api/clinical/audit",
            Metadata::default(),
        );
        check_schema(&ev);
        assert_eq!(ev.subject, SubjectId::system());
        assert_eq!(ev.payload["metadata"]["printer"], "ward-3");
    }

    #[test]
    fn personal_data_keys_nested_values_and_oversize_metadata_are_refused() {
        for bad in [
            json!({"patient_name": "x"}),
            json!({"email": "a@b.c"}),
            json!({"free_text": "x"}),
            json!({"nested": {"a": "b"}}),
            json!({"n": 1}),
            json!(["a"]),
            json!({"k": "v".repeat(300)}),
        ] {
            assert_eq!(input(bad).validate().unwrap_err().field, "metadata");
        }
        let many: serde_json::Map<String, Value> =
            (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(input(Value::Object(many)).validate().is_err());
        let big: serde_json::Map<String, Value> = (0..16)
            .map(|i| (format!("k{i}"), json!("v".repeat(256))))
            .collect();
        assert!(input(Value::Object(big)).validate().is_err(), "over 4 KB");
    }

    #[test]
    fn resource_and_action_are_checked() {
        let mut i = input(json!({}));
        i.resource_type = "patients; drop".into();
        assert_eq!(i.validate().unwrap_err().field, "resource_type");
        let mut i = input(json!({}));
        i.resource_id = "x".into();
        assert_eq!(i.validate().unwrap_err().field, "resource_id");
        let mut i = input(json!({}));
        i.action = "Printed!".into();
        assert_eq!(i.validate().unwrap_err().field, "action");
    }
}
