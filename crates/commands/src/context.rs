//! Who is acting and from where: the context every command is run in.

use carelog_domain::{Metadata, Role, SessionId, UserId};
use chrono::{DateTime, Utc};

/// An authenticated caller, with roles read from current state (not from the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user.
    pub user_id: UserId,
    /// The session the request came through.
    pub session_id: SessionId,
    /// The user's roles now.
    pub roles: Vec<Role>,
    /// Whether the session was opened with a second factor.
    pub mfa: bool,
}

impl Actor {
    /// Whether the actor holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The technical context of one command: request id, client, time. Carries no PHI.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `X-Request-Id`, or the CLI invocation id.
    pub request_id: String,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// The endpoint or CLI command, e.g. `POST /api/auth/login`.
    pub command: String,
    /// When the command is decided.
    pub now: DateTime<Utc>,
    /// Run by an operator through the CLI (the actor is the operator, not a user).
    pub operator: bool,
}

impl Ctx {
    /// A context for an operator's CLI command at the current time.
    pub fn cli(command: &str) -> Self {
        Self {
            request_id: format!("cli-{}", uuid::Uuid::now_v7()),
            ip: None,
            user_agent: Some(format!("carelog-cli/{}", env!("CARGO_PKG_VERSION"))),
            command: command.to_owned(),
            now: Utc::now(),
            operator: true,
        }
    }

    /// The metadata of events appended by this command on behalf of `actor`.
    pub fn metadata(&self, actor: Option<&Actor>) -> Metadata {
        Metadata {
            actor_id: actor.map(|a| a.user_id.0),
            roles: actor
                .map(|a| a.roles.iter().map(|r| r.as_str().to_owned()).collect())
                .unwrap_or_else(|| {
                    if self.operator {
                        vec!["OPERATOR".to_owned()]
                    } else {
                        vec![]
                    }
                }),
            org_id: None,
            request_id: Some(self.request_id.clone()),
            causation_id: None,
            ip: self.ip.clone(),
            user_agent: None,
            command: Some(self.command.clone()),
            time: Some(self.now),
        }
        .with_user_agent(self.user_agent.as_deref().unwrap_or(""))
    }

    /// Like [`Self::metadata`] for a command whose actor is the user themselves before
    /// they hold a session (registration, login).
    pub fn metadata_for_user(&self, user: UserId) -> Metadata {
        let mut m = self.metadata(None);
        if !self.operator {
            m.actor_id = Some(user.0);
        }
        m
    }
}

/// A session id and nothing else, for events about a session.
pub fn session_stream(session: SessionId) -> carelog_domain::StreamId {
    session.stream()
}
