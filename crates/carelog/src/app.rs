//! Wiring: from validated settings to a running event store, identity service and HTTP
//! router. Used by `carelog serve`, `carelog users create` and the end-to-end tests.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::Router;
use carelog_api::auth::LoginThrottle;
use carelog_api::metrics::Metrics;
use carelog_api::state::{ApiConfig, AppState};
use carelog_commands::clinical::{Clinical, ClinicalConfig};
use carelog_commands::identity::{Identity, IdentityConfig};
use carelog_crypto::password::PasswordHasher;
use carelog_crypto::{Dek, Keyring, TokenKeys};
use carelog_domain::SubjectId;
use carelog_store::idempotency::{IdempotencyConfig, IdempotencyStore};
use carelog_store::keys::{CacheConfig, SubjectKey};
use carelog_store::{EventStore, GroupCommitConfig, KeyStore};
use sqlx::PgPool;

/// Everything commands run on.
#[derive(Clone)]
pub struct Services {
    /// PostgreSQL.
    pub pool: PgPool,
    /// The event store.
    pub store: EventStore,
    /// Accounts, logins, sessions.
    pub identity: Identity,
    /// Organisations, patients, clinical records, emergency access.
    pub clinical: Clinical,
    /// The system data key (seals stored idempotent answers; derives the email index key).
    pub system_key: Dek,
    /// The process's metrics (`GET /metrics`). Metrics read at scrape time are added with
    /// `metrics.gauge(..)` / `gauge_by(..)` where their source is started.
    pub metrics: Arc<Metrics>,
}

impl Services {
    /// Checks the database is safe to serve with `keyring`, then starts the event store
    /// and the identity service.
    pub async fn start(
        pool: PgPool,
        keyring: Keyring,
        tokens: TokenKeys,
        identity: IdentityConfig,
        hasher: PasswordHasher,
    ) -> Result<Self> {
        carelog_store::startup_checks(&pool, &keyring).await?;
        let keys = KeyStore::new(pool.clone(), keyring, CacheConfig::default());
        let SubjectKey::Live(_, system_key) = keys.for_write(&SubjectId::system()).await? else {
            bail!("the system data key was destroyed: this database cannot be served");
        };
        let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
        let identity = Identity::new(store.clone(), tokens, hasher, identity, &system_key);
        let clinical = Clinical::new(store.clone(), pool.clone(), ClinicalConfig::default());
        let metrics = Arc::new(Metrics::new());
        let appended = store.clone();
        metrics.counter(
            "carelog_events_appended",
            "Events this process appended to the log since it started.",
            move || appended.appended_total(),
        );
        Ok(Self {
            pool,
            store,
            identity,
            clinical,
            system_key,
            metrics,
        })
    }

    /// The same services with these clinical settings.
    pub fn with_clinical(mut self, cfg: ClinicalConfig) -> Self {
        self.clinical = Clinical::new(self.store.clone(), self.pool.clone(), cfg);
        self
    }

    /// The HTTP application over these services; with `nats_url`, it reports NATS in
    /// readiness and publishes DLQ notices under `bus`'s prefix.
    pub async fn router(
        &self,
        api: ApiConfig,
        nats_url: Option<&str>,
        bus: &carelog_bus::BusConfig,
    ) -> Result<Router> {
        let nats = match nats_url {
            Some(url) => Some(
                carelog_bus::connect(url)
                    .await
                    .context("NATS_URL is not a valid NATS address (or comma-separated list)")?,
            ),
            None => None,
        };
        let state = AppState {
            config: Arc::new(api),
            pool: self.pool.clone(),
            store: self.store.clone(),
            dlq_notices: nats
                .as_ref()
                .map(|client| carelog_bus::dead_letter::NoticePublisher::new(client.clone(), bus)),
            nats,
            idempotency: IdempotencyStore::new(
                self.pool.clone(),
                self.system_key.clone(),
                IdempotencyConfig::default(),
            ),
            identity: self.identity.clone(),
            clinical: self.clinical.clone(),
            login_throttle: Arc::new(LoginThrottle::default()),
            metrics: Arc::clone(&self.metrics),
        };
        // Signed checkpoints every CARELOG_CHECKPOINT_EVERY events (crate::checkpointer).
        crate::checkpointer::spawn(
            self.pool.clone(),
            self.store.vault().keys().clone(),
            crate::checkpointer::every_from_env()?,
        );
        Ok(carelog_api::server::router(
            state,
            carelog_api::auth::routes()
                .merge(carelog_api::admin::routes())
                .merge(carelog_api::clinical::routes())
                .merge(carelog_api::audit::verify::routes())
                .merge(carelog_api::audit::routes()),
        ))
    }
}

/// A running relay task (see `carelog_bus::Relay`), stopped on purpose: it finishes the
/// batch and checkpoint in hand.
pub struct RelayHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayHandle {
    /// Asks the relay to stop and waits for it (at most 10 s).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await;
    }
}

impl Services {
    /// Starts the relay that publishes the log to JetStream at `nats_url`. It is a task of
    /// its own: commands never wait on NATS. It sets up the streams itself and keeps
    /// retrying while NATS is unreachable.
    pub async fn start_relay(
        &self,
        nats_url: &str,
        bus: carelog_bus::BusConfig,
    ) -> Result<RelayHandle> {
        let client = carelog_bus::connect(nats_url)
            .await
            .context("NATS_URL is not a valid NATS address (or comma-separated list)")?;
        let prefix = bus.prefix.clone();
        let relay = carelog_bus::Relay::new(
            self.pool.clone(),
            client,
            carelog_bus::RelayConfig::new(bus),
        )?
        .wake_on_commits(self.store.commits());
        let status = relay.status();
        self.metrics.gauge(
            "carelog_relay_active",
            "1 when this process's relay holds the lock and publishes, 0 on standby.",
            move || {
                let active = status.is_active();
                async move { Some(i64::from(active)) }
            },
        );
        let pool = self.pool.clone();
        self.metrics.gauge(
            "carelog_relay_lag_events",
            "Log positions after the relay's checkpoint (events not yet published to NATS).",
            move || {
                let (pool, prefix) = (pool.clone(), prefix.clone());
                async move { carelog_store::relay::lag(&pool, &prefix).await.ok() }
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        Ok(RelayHandle { stop, task })
    }
}

/// The projectors of this process (one per [`carelog_projector::registry`] entry), each a
/// task of its own, stopped on purpose: each finishes the batch and checkpoint in hand.
pub struct ProjectorsHandle {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ProjectorsHandle {
    /// How many projectors run.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Asks every projector to stop and waits for them (at most 10 s in all).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let all = futures::future::join_all(self.tasks);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), all).await;
    }
}

impl Services {
    /// Starts one projector per projection of [`carelog_projector::registry`], reading
    /// `<prefix>EVENTS` at `nats_url` (each keeps retrying while NATS or PostgreSQL is
    /// unreachable; only one per projection and prefix is active across processes), and
    /// registers the metrics `carelog_dlq_depth` and
    /// `carelog_projection_lag_events{projection}`.
    pub async fn start_projectors(
        &self,
        nats_url: &str,
        bus: carelog_bus::BusConfig,
        cfg: carelog_projector::ProjectorConfig,
    ) -> Result<ProjectorsHandle> {
        let client = carelog_bus::connect(nats_url)
            .await
            .context("NATS_URL is not a valid NATS address (or comma-separated list)")?;
        let projections = carelog_projector::registry();
        let names: Arc<Vec<String>> =
            Arc::new(projections.iter().map(|p| p.name().to_owned()).collect());
        let pool = self.pool.clone();
        self.metrics.gauge(
            "carelog_dlq_depth",
            "Events set aside in the dead-letter queue (failed and waiting), every projection together.",
            move || {
                let pool = pool.clone();
                async move { carelog_projector::dlq::depth(&pool).await.ok() }
            },
        );
        let pool = self.pool.clone();
        self.metrics.gauge_by(
            "carelog_projection_lag_events",
            "Log positions after the projection's checkpoint (events not yet applied to its read model).",
            "projection",
            move || {
                let (pool, names) = (pool.clone(), Arc::clone(&names));
                async move {
                    let mut out = Vec::with_capacity(names.len());
                    for name in names.iter() {
                        let lag = carelog_store::projector::lag(&pool, name).await.ok()?;
                        out.push((name.clone(), lag));
                    }
                    Some(out)
                }
            },
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::with_capacity(projections.len());
        for projection in projections {
            let projector = carelog_projector::Projector::new(
                self.pool.clone(),
                self.store.clone(),
                client.clone(),
                bus.clone(),
                Box::new(projection),
                cfg.clone(),
            )?;
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(projector.run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        }
        Ok(ProjectorsHandle { stop, tasks })
    }
}
