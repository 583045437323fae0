//! The services a serving node (or an operator command that runs commands) needs, built
//! once from validated configuration: pool, keyring, event store, identity.

use anyhow::{bail, Context, Result};
use carelog_commands::identity::Identity;
use carelog_crypto::password::PasswordHasher;
use carelog_crypto::Dek;
use carelog_domain::SubjectId;
use carelog_store::keys::{CacheConfig, SubjectKey};
use carelog_store::{EventStore, GroupCommitConfig, KeyStore, PoolConfig};
use sqlx::PgPool;

use crate::config;

/// Everything commands run on.
pub struct Services {
    /// PostgreSQL.
    pub pool: PgPool,
    /// The event store.
    pub store: EventStore,
    /// Accounts, logins, sessions.
    pub identity: Identity,
    /// The system data key (seals stored idempotent answers; derives the email index key).
    pub system_key: Dek,
}

fn keys_of(store: &EventStore) -> &KeyStore {
    store.vault().keys()
}

impl Services {
    /// Reads and validates the configuration (failing closed), connects, checks the
    /// database is safe to serve, and starts the event store.
    pub async fn start() -> Result<Self> {
        let keyring = config::keyring()?;
        let tokens = config::token_keys()?;
        let identity_cfg = config::identity()?;
        let pool = carelog_store::connect(&config::database_url()?, &PoolConfig::default())
            .await
            .context("cannot reach PostgreSQL at DATABASE_URL")?;
        carelog_store::startup_checks(&pool, &keyring).await?;
        let keys = KeyStore::new(pool.clone(), keyring, CacheConfig::default());
        let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
        let SubjectKey::Live(_, system_key) =
            keys_of(&store).for_write(&SubjectId::system()).await?
        else {
            bail!("the system data key was destroyed: this database cannot be served");
        };
        let identity = Identity::new(
            store.clone(),
            tokens,
            PasswordHasher::default(),
            identity_cfg,
            &system_key,
        );
        Ok(Self {
            pool,
            store,
            identity,
            system_key,
        })
    }
}
