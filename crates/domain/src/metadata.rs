//! The clear-text context of an event: who, where, why, when. It is stored unencrypted
//! (so auditors can query it and erasure leaves it readable) and therefore must never
//! hold PHI — ids and technical facts only.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::EventId;

/// Who did what from where. Every field is an id, a role name or a technical fact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The user who issued the command (`None` for the platform itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
    /// The roles the actor acted with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The organisation the actor acted within, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// The request id (`X-Request-Id`), or the CLI invocation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The event that caused this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<EventId>,
    /// The client address (after trusted-proxy resolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's user agent, truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The command that produced the event (`RegisterPatient`, `keys rotate-master`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// When the command was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
}

impl Metadata {
    /// The longest user agent kept; the rest is cut so metadata stays small.
    pub const MAX_USER_AGENT: usize = 256;

    /// Metadata for an operator's CLI command.
    pub fn operator(command: &str, request_id: String, time: DateTime<Utc>) -> Self {
        Self {
            roles: vec!["OPERATOR".to_owned()],
            request_id: Some(request_id),
            command: Some(command.to_owned()),
            time: Some(time),
            ..Self::default()
        }
    }

    /// Sets the user agent, cut at [`Self::MAX_USER_AGENT`] bytes on a char boundary.
    pub fn with_user_agent(mut self, ua: &str) -> Self {
        let mut end = ua.len().min(Self::MAX_USER_AGENT);
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        self.user_agent = Some(ua[..end].to_owned());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cut_on_a_char_boundary() {
        let ua = "é".repeat(200);
        let m = Metadata::default().with_user_agent(&ua);
        let kept = m.user_agent.unwrap();
        assert!(kept.len() <= Metadata::MAX_USER_AGENT);
        assert!(ua.starts_with(&kept));
    }

    #[test]
    fn unknown_metadata_fields_are_refused() {
        let err = serde_json::from_str::<Metadata>(r#"{"given_name":"x"}"#);
        assert!(err.is_err());
    }
}
