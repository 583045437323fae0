//! Clinical commands and queries: organisations and their members, patients, clinical
//! records, emergency access, GDPR data-subject requests (erasure, export) and legal holds.
//!
//! Every entry point takes a [`Caller`] (the actor with roles and memberships read from
//! current state) and asks the access policy ([`carelog_domain::access::decide`]) before
//! anything else, on facts read from the inline tables that commands write in the same
//! transaction as their events — never from a read model. Commands then load the
//! aggregate's stream, let the domain decide, and append with the expected version
//! (a stale one is a 409). Queries answer from the read models (projections), waiting a
//! bounded time for the projection to reach the resource's last event, and fold the
//! stream when it has not, so a client always reads its own writes. Every read of PHI
//! and every refusal the policy decided appends an access event before it answers
//! (`audit.rs`).

mod access;
mod audit;
mod consent;
mod error;
mod gdpr;
mod org;
mod patient;
mod record;
mod views;

use std::sync::Arc;
use std::time::Duration;

use carelog_domain::access::Principal;
use carelog_store::EventStore;
use sqlx::PgPool;

pub use consent::ConsentDecision;
pub use error::ClinicalError;
pub use patient::NewPatient;
pub use record::RecordPatch;
pub use views::{ConsentView, SessionConsentView};
pub use views::{DsrView, LegalHoldView};
pub use views::{
    GrantView, HistoryEntry, MemberView, OrgView, PatientHistory, PatientView, RecordHistory,
    RecordVersionView, RecordView,
};

use crate::context::Actor;

/// Clinical settings.
#[derive(Debug, Clone)]
pub struct ClinicalConfig {
    /// How long an emergency access grant lasts (default 60 minutes).
    pub emergency_duration: chrono::Duration,
    /// How long a single-resource read waits for its read model to catch up before it
    /// folds the stream instead.
    pub read_wait: Duration,
    /// How long a list asked for `?min_position=` waits for its read model (a list has
    /// no stream to fall back on).
    pub list_wait: Duration,
}

impl Default for ClinicalConfig {
    fn default() -> Self {
        Self {
            emergency_duration: chrono::Duration::minutes(60),
            read_wait: Duration::from_millis(1500),
            list_wait: Duration::from_secs(10),
        }
    }
}

/// A page of a list, and the position the list must reflect (read your writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return.
    pub limit: i64,
    /// Wait (bounded) until the read model has applied this position.
    pub min_position: Option<carelog_domain::Position>,
}

/// Who is calling: the authenticated actor and what the policy needs to know of them.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The actor (for event metadata).
    pub actor: Actor,
    /// Roles and memberships, read now.
    pub principal: Principal,
}

/// The clinical service. Cheap to clone.
#[derive(Clone)]
pub struct Clinical {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    pool: PgPool,
    cfg: ClinicalConfig,
}

impl Clinical {
    /// The service over `store` and its pool.
    pub fn new(store: EventStore, pool: PgPool, cfg: ClinicalConfig) -> Self {
        Self {
            inner: Arc::new(Inner { store, pool, cfg }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClinicalConfig {
        &self.inner.cfg
    }

    fn store(&self) -> &EventStore {
        &self.inner.store
    }

    fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The caller behind `actor`: their memberships are read now, so a removed member
    /// is refused on their next request whatever their token says.
    pub async fn caller(&self, actor: Actor) -> Result<Caller, ClinicalError> {
        let memberships =
            carelog_store::clinical::memberships_of(self.pool(), actor.user_id).await?;
        let principal = Principal {
            user_id: actor.user_id,
            roles: actor.roles.clone(),
            memberships,
        };
        Ok(Caller { actor, principal })
    }
}
