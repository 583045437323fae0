//! A database per test: cloned from a template that was migrated once (per migration
//! content), owned by an ordinary role, dropped when the test ends (also on panic).

use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

/// The ordinary role tests run carelog as, when the admin URL is a superuser's.
const APP_ROLE: &str = "carelog_test_app";

/// One test's database.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// carelog's connection string: the ordinary role that owns the database.
    pub url: String,
    /// A pool on `url`.
    pub pool: PgPool,
    admin_url: String,
}

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, db: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(url)
        .expect("DATABASE_URL parses")
        .database(db)
}

fn with_role(opts: PgConnectOptions, role: &str) -> PgConnectOptions {
    opts.username(role).password(role)
}

/// The name of the template for the current migrations.
fn template_name() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // The migrations and the read models' tables (projections/), both in the template.
    let mut files: Vec<_> = ["migrations", "projections"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).expect("migrations/, projections/ exist"))
        .map(|e| e.expect("readable").path())
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(std::fs::read(f).expect("readable migration"));
    }
    format!("carelog_tpl_{}", &hex_of(&h.finalize())[..16])
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TestDb {
    /// A fresh, migrated database owned by the ordinary test role.
    pub async fn new() -> TestDb {
        let admin_url = admin_url();
        let mut admin = PgConnection::connect_with(&PgConnectOptions::from_str(&admin_url).unwrap())
            .await
            .expect("PostgreSQL reachable at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)");
        let app_role = ensure_app_role(&mut admin).await;
        let template = ensure_template(&mut admin, &admin_url, app_role.as_deref()).await;

        let name = format!("carelog_t_{}", Uuid::now_v7().simple());
        let owner = app_role
            .as_deref()
            .map(|r| format!(" OWNER {r}"))
            .unwrap_or_default();
        create_database_retrying(
            &mut admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template}{owner}"),
        )
        .await;
        admin.close().await.ok();

        let mut opts = with_database(&admin_url, &name);
        if let Some(role) = &app_role {
            opts = with_role(opts, role);
        }
        let url = opts_to_url(&admin_url, &name, app_role.as_deref());
        let pool = PgPoolOptions::new()
            .max_connections(12)
            .connect_with(opts)
            .await
            .expect("connect to the test database");
        TestDb {
            name,
            url,
            pool,
            admin_url,
        }
    }

    /// What `pg_dump --no-owner <args>` writes for this database, as carelog's role sees
    /// it: what an attacker with a copy of the database would read.
    pub fn pg_dump(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("pg_dump")
            .arg("--no-owner")
            .args(args)
            .arg(&self.url)
            .output()
            .expect("pg_dump is installed (postgresql-client)");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("dump is text")
    }

    /// A connection to this database as the administrator (a superuser by default):
    /// for tests that play an attacker with database access.
    pub async fn admin(&self) -> PgConnection {
        PgConnection::connect_with(&with_database(&self.admin_url, &self.name))
            .await
            .expect("admin connection to the test database")
    }

    /// [`Self::admin`] with the append-only triggers switched off for the session
    /// (`session_replication_role = replica`): an attacker who can rewrite rows.
    pub async fn forger(&self) -> PgConnection {
        use sqlx::Executor as _;
        let mut conn = self.admin().await;
        conn.execute("SET session_replication_role = replica")
            .await
            .expect("switch the triggers off");
        conn
    }

    /// Flips one bit of the payload stored at `position`, as [`Self::forger`].
    pub async fn flip_payload_byte(&self, position: i64) {
        use sqlx::Connection as _;
        let mut forger = self.forger().await;
        sqlx::query(
            "UPDATE events SET payload = set_byte(payload, 20, get_byte(payload, 20) # 1) \
             WHERE position = $1",
        )
        .bind(position)
        .execute(&mut forger)
        .await
        .expect("flip a payload bit");
        forger.close().await.expect("close");
    }
}

/// The URL of `db` as carelog's role (for running the `carelog` binary against it).
fn opts_to_url(admin_url: &str, db: &str, role: Option<&str>) -> String {
    let opts = PgConnectOptions::from_str(admin_url).expect("DATABASE_URL parses");
    let (host, port) = (opts.get_host(), opts.get_port());
    match role {
        Some(r) => format!("postgres://{r}:{r}@{host}:{port}/{db}"),
        None => {
            // The admin role is carelog's role: keep its URL, change the database.
            let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
            let authority_end = base
                .find("://")
                .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
                .unwrap_or(base.len());
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            };
            format!("{}/{db}{query}", &base[..authority_end])
        }
    }
}

/// With a superuser admin, the ordinary role carelog runs as (created once); with an
/// ordinary admin role, `None`: that role is carelog's role.
async fn ensure_app_role(admin: &mut PgConnection) -> Option<String> {
    let is_super: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut *admin)
            .await
            .expect("read own role");
    if !is_super {
        return None;
    }
    let create = format!(
        "DO $$ BEGIN
           CREATE ROLE {APP_ROLE} LOGIN CREATEDB NOSUPERUSER PASSWORD '{APP_ROLE}';
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    admin
        .execute(create.as_str())
        .await
        .expect("create the test app role");
    Some(APP_ROLE.to_owned())
}

/// The migrated template database, built once per migration content. A session-level
/// advisory lock keeps parallel test processes from building it twice.
async fn ensure_template(
    admin: &mut PgConnection,
    admin_url: &str,
    app_role: Option<&str>,
) -> String {
    let template = template_name();
    admin
        .execute("SELECT pg_advisory_lock(hashtext('carelog-test-template'))")
        .await
        .expect("template lock");
    let ready: Option<bool> =
        sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
            .bind(&template)
            .fetch_optional(&mut *admin)
            .await
            .expect("look up template");
    if ready != Some(true) {
        if ready.is_some() {
            // A build that died half-way.
            admin
                .execute(format!("DROP DATABASE {template} WITH (FORCE)").as_str())
                .await
                .expect("drop half-built template");
        }
        let owner = app_role.map(|r| format!(" OWNER {r}")).unwrap_or_default();
        admin
            .execute(format!("CREATE DATABASE {template}{owner}").as_str())
            .await
            .expect("create template");
        let mut opts = with_database(admin_url, &template);
        if let Some(role) = app_role {
            opts = with_role(opts, role);
        }
        // Migrated by the app role itself, as in production.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .expect("connect to template");
        carelog_store::migrate(&pool)
            .await
            .expect("migrate template");
        carelog_projector::schemas::ensure_schemas(&pool)
            .await
            .expect("create read-model tables in template");
        pool.close().await;
        admin
            .execute(
                format!("ALTER DATABASE {template} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
                    .as_str(),
            )
            .await
            .expect("mark template");
    }
    admin
        .execute("SELECT pg_advisory_unlock(hashtext('carelog-test-template'))")
        .await
        .expect("template unlock");
    template
}

/// CREATE DATABASE from a template fails while another session is copying it; retry.
async fn create_database_retrying(admin: &mut PgConnection, sql: &str) {
    for attempt in 0.. {
        match admin.execute(sql).await {
            Ok(_) => return,
            Err(e)
                if attempt < 50 && e.to_string().contains("is being accessed by other users") =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("create test database: {e}"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut admin =
                    PgConnection::connect_with(&PgConnectOptions::from_str(&url).unwrap()).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}
