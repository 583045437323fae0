//! The whole HTTP application on a free port of 127.0.0.1, wired exactly as
//! `carelog serve` wires it (`carelog::app`), over this test's own database.

use std::net::SocketAddr;

use carelog::app::{ProjectorsHandle, RelayHandle, Services};
use carelog_api::state::ApiConfig;
use carelog_commands::clinical::ClinicalConfig;
use carelog_commands::identity::{IdentityConfig, Registration};
use carelog_commands::Ctx;
use carelog_crypto::password::PasswordHasher;
use carelog_crypto::{Keyring, MasterKey, TokenKeys};
use carelog_domain::user::RegistrationRole;
use carelog_domain::Role;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::nats::TestNats;
use super::TestDb;

/// A password every test account uses (passes the policy).
pub const PASSWORD: &str = "violet-kettle-harbour-42";

/// A running carelog.
pub struct TestApp {
    /// The test's database.
    pub db: TestDb,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// An HTTP client (no cookie store: tests send cookies explicitly).
    pub http: reqwest::Client,
    /// The services behind the API (for setting up what the API cannot, like the CLI does).
    pub services: Services,
    /// The master key.
    pub master_key: MasterKey,
    /// The token-signing key (PASERK k4.secret).
    pub token_key: String,
    /// This test's NATS prefix, when the relay and projectors run ([`TestApp::spawn_full`]).
    pub nats: Option<TestNats>,
    /// The relay and projectors (stopped when dropped: their stop channels close).
    #[allow(dead_code)]
    workers: Option<(RelayHandle, ProjectorsHandle)>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
}

impl Resp {
    /// `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account.
    pub user_id: Uuid,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh_token: String,
}

/// API settings for tests: everything default but rate limits off.
pub fn no_limits() -> ApiConfig {
    ApiConfig {
        rate_limiting_enabled: false,
        ..ApiConfig::default()
    }
}

impl TestApp {
    /// Default settings, rate limits off.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(no_limits(), IdentityConfig::default()).await
    }

    /// With these settings.
    pub async fn spawn_with(api: ApiConfig, identity: IdentityConfig) -> TestApp {
        Self::start(api, identity, None, false).await
    }

    /// As `carelog serve` runs with `NATS_URL` set: the API, the relay publishing the log
    /// under a NATS prefix of this test's own, and every projector of the registry
    /// (read models kept up to date). Default settings, rate limits off.
    pub async fn spawn_full() -> TestApp {
        Self::spawn_full_with(ClinicalConfig::default()).await
    }

    /// As [`TestApp::spawn_full`], with these clinical settings (e.g. a short emergency
    /// access duration).
    pub async fn spawn_full_with(clinical: ClinicalConfig) -> TestApp {
        Self::start(no_limits(), IdentityConfig::default(), Some(clinical), true).await
    }

    async fn start(
        api: ApiConfig,
        identity: IdentityConfig,
        clinical: Option<ClinicalConfig>,
        full: bool,
    ) -> TestApp {
        let db = TestDb::new().await;
        let master_key = MasterKey::generate();
        let token_key = carelog_crypto::token_key::generate_paserk_secret();
        let tokens = TokenKeys::new(&token_key, &[], "carelog", "carelog").expect("token key");
        // Argon2id at a test cost (the production cost is asserted in carelog-crypto).
        let hasher = PasswordHasher::new(1024, 1, 1);
        let services = Services::start(
            db.pool.clone(),
            Keyring::new(master_key.clone(), []),
            tokens,
            identity,
            hasher,
        )
        .await
        .expect("services start");
        let services = match clinical {
            Some(cfg) => services.with_clinical(cfg),
            None => services,
        };
        let (nats, workers) = if full {
            let nats = TestNats::new().await;
            let bus = || carelog_bus::BusConfig::new(nats.prefix.clone(), 1).expect("bus config");
            let relay = services
                .start_relay(&nats.url, bus())
                .await
                .expect("relay starts");
            let projectors = services
                .start_projectors(
                    &nats.url,
                    bus(),
                    carelog_projector::ProjectorConfig::default(),
                )
                .await
                .expect("projectors start");
            (Some(nats), Some((relay, projectors)))
        } else {
            (None, None)
        };
        let nats_url = nats.as_ref().map(|n| n.url.clone());
        let bus = nats
            .as_ref()
            .map(|n| carelog_bus::BusConfig::new(n.prefix.clone(), 1).expect("bus config"))
            .unwrap_or_default();
        let app = services
            .router(api, nats_url.as_deref(), &bus)
            .await
            .expect("router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("free port");
        let addr = listener.local_addr().expect("address");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            carelog_api::server::serve(listener, app, async {
                rx.await.ok();
            })
            .await
            .expect("server runs");
        });
        TestApp {
            db,
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            services,
            master_key,
            token_key,
            nats,
            workers,
            shutdown: Some(tx),
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `req` and reads the answer.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    /// POST `body` as JSON, with a bearer token if given.
    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Resp {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// GET with a bearer token if given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// DELETE with a bearer token.
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    /// Registers `email` through the API with [`PASSWORD`]; returns the user id.
    pub async fn register(&self, email: &str, role: &str) -> Uuid {
        let r = self
            .post(
                "/api/auth/register",
                json!({"email": email, "password": PASSWORD, "first_name": "Test", "last_name": "User", "registration_role": role}),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "register {email}: {:?}", r.body);
        r.body["data"]["user"]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid")
    }

    /// Logs `email` in with [`PASSWORD`].
    pub async fn login(&self, email: &str) -> Session {
        let r = self
            .post(
                "/api/auth/login",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "login {email}: {:?}", r.body);
        session_of(&r)
    }

    /// A registered, logged-in user with `role` (DOCTOR, PATIENT or STAFF).
    pub async fn user(&self, role: &str) -> Session {
        let email = format!("{}@example.org", Uuid::now_v7().simple());
        self.register(&email, role).await;
        self.login(&email).await
    }

    /// A logged-in SUPER:ADMIN, created the way the CLI creates the first one.
    pub async fn super_admin(&self) -> Session {
        self.platform_user(Role::SuperAdmin).await
    }

    /// A logged-in user holding a platform role, created as the CLI does.
    pub async fn platform_user(&self, role: Role) -> Session {
        let email = format!("{}@example.org", Uuid::now_v7().simple());
        self.services
            .identity
            .register(
                &Ctx::cli("users create"),
                Registration {
                    email: email.clone(),
                    password: PASSWORD.to_owned(),
                    first_name: "Platform".into(),
                    last_name: "Admin".into(),
                    role: None::<RegistrationRole>,
                    platform_roles: vec![role],
                },
            )
            .await
            .expect("platform user");
        self.login(&email).await
    }
}

/// The session in a login/refresh answer.
pub fn session_of(r: &Resp) -> Session {
    let d = &r.body["data"];
    Session {
        user_id: d["user"]["id"]
            .as_str()
            .expect("user id")
            .parse()
            .expect("uuid"),
        token: d["token"].as_str().expect("token").to_owned(),
        refresh_token: d["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned(),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
