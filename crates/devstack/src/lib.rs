//! A private PostgreSQL cluster and a private `nats-server` (with JetStream), run as
//! child processes under one data directory.
//!
//! Why: `carelog dev` and `scripts/test` must work on a fresh Debian/Ubuntu machine with
//! nothing but the `postgresql` and `nats-server` packages installed — no system
//! services to configure, no passwords to choose, no ports to agree on. Everything lives
//! under the data directory (data kept across runs), listens on 127.0.0.1 only, on free
//! ports, and is stopped again when the [`DevStack`] is stopped or dropped.
//!
//! Not for production: the cluster trusts every local connection (no passwords are
//! checked), which is what makes it zero-configuration.
//!
//! Layout of `data_dir`:
//! - `pg/` PostgreSQL data directory, `pg-sock/` its unix socket directory, `pg.log`;
//! - `nats/` JetStream store, `nats.log`, `nats.pid`;
//! - `keys/` dev keys (see [`load_or_create_dev_keys`]).
//!
//! PostgreSQL refuses to run as root. As root, its programs are run as the `postgres`
//! account (else `nobody`) via `runuser`, and if that account cannot reach `data_dir`
//! (e.g. it is under a 0700 `/root`), `pg/` and `pg-sock/` are placed under
//! `/tmp/carelog-dev-<hash of data_dir>/` instead (logged when it happens).

mod keys;
mod nats;
mod os;
mod tools;

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

pub use keys::{load_or_create_dev_keys, DevKeys};
pub use nats::NatsServer;

use os::RunAs;
use tools::PgTools;

/// Name of the cluster's superuser role (created by initdb), used by tooling and tests
/// that must create roles and databases.
const SUPERUSER: &str = "postgres";
/// The application's ordinary role, database and password: carelog must work without
/// superuser rights, so dev runs exercise exactly that.
const APP_ROLE: &str = "carelog";
/// Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// How often a start is retried when a port picked as free was taken in between.
pub(crate) const PORT_ATTEMPTS: usize = 3;
const PG_START_TIMEOUT_SECS: u64 = 90;

/// Where the dev services keep their state and which ports they use.
///
/// Ports default to free ones so that several stacks (a `carelog dev` and a test run,
/// or parallel tests) never collide with each other or with system services.
#[derive(Debug, Clone)]
pub struct DevStackConfig {
    /// Directory holding both services' data and logs; created if missing and reused
    /// (data kept) by later runs.
    pub data_dir: PathBuf,
    /// PostgreSQL port on 127.0.0.1; `None` picks a free one.
    pub pg_port: Option<u16>,
    /// NATS port on 127.0.0.1; `None` picks a free one.
    pub nats_port: Option<u16>,
}

impl DevStackConfig {
    /// The usual configuration: this data directory, free ports.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        DevStackConfig {
            data_dir: data_dir.into(),
            pg_port: None,
            nats_port: None,
        }
    }
}

/// A running private PostgreSQL + NATS JetStream pair; see the crate documentation.
///
/// Stop it with [`DevStack::stop`]; dropping it stops both services too (blocking,
/// best effort), so a panicking test does not leak servers.
#[derive(Debug)]
pub struct DevStack {
    data_dir: PathBuf,
    pg_data: PathBuf,
    sock_dir: PathBuf,
    pg_port: u16,
    tools: PgTools,
    run_as: RunAs,
    /// Whether this stack started PostgreSQL and has not stopped it yet.
    pg_running: bool,
    /// Declared last: dropped after PostgreSQL is stopped in [`Drop`].
    nats: Option<NatsServer>,
}

impl DevStack {
    /// Starts (initialising on first use) the private PostgreSQL cluster and the private
    /// nats-server under `cfg.data_dir`, and returns once both accept connections.
    ///
    /// PostgreSQL gets an ordinary `carelog` role (password `carelog`, CREATEDB, not
    /// superuser) owning a `carelog` database, so the app runs with the rights it will
    /// have in production. Servers left running by a crashed earlier run on the same
    /// data directory are stopped first. Errors name the log file to look at.
    pub async fn start(cfg: DevStackConfig) -> anyhow::Result<DevStack> {
        fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
        let data_dir = fs::canonicalize(&cfg.data_dir)
            .with_context(|| format!("resolving {}", cfg.data_dir.display()))?;

        // Report every missing program at once: one apt-get line fixes them all.
        let (pg_tools, _nats_bin) = match (tools::find_pg_tools(None), tools::find_nats_server()) {
            (Ok(p), Ok(n)) => (p, n),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
            (Err(_), Err(_)) => bail!(
                "neither PostgreSQL (initdb, pg_ctl, postgres) nor nats-server is installed; \
                 install them with: {}",
                tools::INSTALL_HINT
            ),
        };
        let run_as = RunAs::detect()?;
        let (pg_data, sock_dir) = prepare_pg_dirs(&data_dir, &run_as)?;

        let pg_version = fs::read_to_string(pg_data.join("PG_VERSION"))
            .ok()
            .map(|s| s.trim().to_string());
        let pg_tools = match &pg_version {
            Some(v) if *v != pg_tools.major => tools::find_pg_tools(Some(v))?,
            _ => pg_tools,
        };

        let mut stack = DevStack {
            pg_data,
            sock_dir,
            pg_port: 0,
            tools: pg_tools,
            run_as,
            pg_running: false,
            nats: None,
            data_dir,
        };
        if pg_version.is_none() {
            stack.initdb().await?;
        }
        stack.stop_stale_postgres().await?;
        // From here on, an error drops `stack`, which stops whatever was started.
        stack.start_postgres(cfg.pg_port).await?;
        stack.ensure_app_database().await?;
        stack.nats = Some(NatsServer::launch(&stack.data_dir, cfg.nats_port).await?);
        tracing::info!(
            database_url = %stack.database_url(),
            nats_url = %stack.nats_url(),
            data_dir = %stack.data_dir.display(),
            "dev services ready"
        );
        Ok(stack)
    }

    /// URL for the application: the ordinary `carelog` role and database.
    pub fn database_url(&self) -> String {
        format!(
            "postgres://{APP_ROLE}:{APP_ROLE}@127.0.0.1:{}/{APP_ROLE}",
            self.pg_port
        )
    }

    /// URL of the superuser, for tooling and test harnesses that must create roles and
    /// databases; never hand it to the application.
    pub fn admin_database_url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.pg_port)
    }

    /// URL of the private nats-server (JetStream enabled).
    pub fn nats_url(&self) -> String {
        self.nats.as_ref().map(NatsServer::url).unwrap_or_default()
    }

    /// The PostgreSQL data directory actually used: `data_dir/pg`, or the `/tmp`
    /// fallback when running as root and the `postgres` account cannot reach `data_dir`.
    pub fn pg_data_dir(&self) -> &Path {
        &self.pg_data
    }

    /// Stops PostgreSQL (`pg_ctl stop -m fast`) and nats-server (SIGTERM, then SIGKILL
    /// after 10 s). Calling it again, or dropping the stack afterwards, does nothing.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let pg = if self.pg_running {
            self.pg_running = false;
            self.stop_postgres().await
        } else {
            Ok(())
        };
        let nats = match self.nats.as_mut() {
            Some(server) => server.stop().await,
            None => Ok(()),
        };
        pg.and(nats)
    }

    fn pg_log(&self) -> PathBuf {
        self.data_dir.join("pg.log")
    }

    fn pg_command(&self, program: &Path) -> StdCommand {
        let mut c = self.run_as.command(program);
        c.stdin(Stdio::null());
        // Settings from the caller's environment must not redirect our tools elsewhere.
        for var in [
            "PGDATA",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
            "PGSERVICE",
        ] {
            c.env_remove(var);
        }
        c
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        if fs::read_dir(&self.pg_data)?.next().is_some() {
            bail!(
                "{} is neither empty nor an initialised PostgreSQL data directory (no PG_VERSION); \
                 remove it to start afresh",
                self.pg_data.display()
            );
        }
        tracing::info!(pg_data = %self.pg_data.display(), "initialising PostgreSQL data directory");
        let log = self.pg_log();
        let mut c = self.pg_command(&self.tools.initdb);
        c.arg("-D")
            .arg(&self.pg_data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .stdout(append(&log)?)
            .stderr(append(&log)?);
        let status = tokio::process::Command::from(c)
            .status()
            .await
            .context("running initdb")?;
        if !status.success() {
            bail!(
                "initdb failed ({status}); see {}:\n{}",
                log.display(),
                tail(&log, 0)
            );
        }
        Ok(())
    }

    /// `pg_ctl status`: true when a postmaster runs on this data directory.
    fn postmaster_running(&self) -> bool {
        if !self.pg_data.join("postmaster.pid").exists() {
            return false;
        }
        let mut c = self.pg_command(&self.tools.pg_ctl);
        c.arg("status")
            .arg("-D")
            .arg(&self.pg_data)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.status().map(|s| s.success()).unwrap_or(false)
    }

    fn pg_stop_command(&self) -> StdCommand {
        let mut c = self.pg_command(&self.tools.pg_ctl);
        c.arg("stop")
            .arg("-D")
            .arg(&self.pg_data)
            .args(["-m", "fast", "-w", "-t", "60"]);
        c
    }

    async fn stop_postgres(&self) -> anyhow::Result<()> {
        if !self.pg_data.join("postmaster.pid").exists() {
            return Ok(()); // already gone (e.g. it received the terminal's signal)
        }
        let out: Output = tokio::process::Command::from(self.pg_stop_command())
            .output()
            .await
            .context("running pg_ctl stop")?;
        if !out.status.success() && self.postmaster_running() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    async fn stop_stale_postgres(&self) -> anyhow::Result<()> {
        if self.postmaster_running() {
            tracing::warn!(
                pg_data = %self.pg_data.display(),
                "PostgreSQL from an earlier run is still running on this data directory; stopping it"
            );
            self.stop_postgres().await?;
        }
        Ok(())
    }

    async fn start_postgres(&mut self, fixed_port: Option<u16>) -> anyhow::Result<()> {
        let log = self.pg_log();
        for attempt in 1..=PORT_ATTEMPTS {
            let port = match fixed_port {
                Some(p) => p,
                None => free_port()?,
            };
            let offset = file_len(&log);
            let opts = [
                format!("-c port={port}"),
                "-c listen_addresses=127.0.0.1".to_string(),
                format!(
                    "-c {}",
                    sh_quote(&format!(
                        "unix_socket_directories={}",
                        pg_list_item(&self.sock_dir)
                    ))
                ),
                "-c fsync=on".to_string(),
                // Test suites open many pools at once.
                "-c max_connections=200".to_string(),
            ]
            .join(" ");
            let mut c = self.pg_command(&self.tools.pg_ctl);
            // Without -l the postmaster writes to pg_ctl's stdout: a file we opened, so
            // logging works even where the postgres account could not open data_dir/pg.log.
            c.arg("start")
                .arg("-D")
                .arg(&self.pg_data)
                .args(["-w", "-t", &PG_START_TIMEOUT_SECS.to_string(), "-o", &opts])
                .stdout(append(&log)?)
                .stderr(append(&log)?);
            let status = tokio::process::Command::from(c)
                .status()
                .await
                .context("running pg_ctl start")?;
            if status.success() {
                self.pg_port = port;
                self.pg_running = true;
                break;
            }
            if self.postmaster_running() {
                // It came up after pg_ctl gave up waiting; do not leave it behind.
                let _ = tokio::process::Command::from(self.pg_stop_command())
                    .output()
                    .await;
            }
            let new_log = tail(&log, offset);
            if fixed_port.is_none()
                && attempt < PORT_ATTEMPTS
                && new_log.contains("Address already in use")
            {
                tracing::info!(
                    port,
                    "port was taken meanwhile; retrying PostgreSQL on another"
                );
                continue;
            }
            bail!(
                "PostgreSQL did not start on 127.0.0.1:{port} ({status}); see {}:\n{new_log}",
                log.display()
            );
        }
        self.wait_postgres_ready().await
    }

    async fn wait_postgres_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = self.pg_port.to_string();
        loop {
            let ready = match &self.tools.pg_isready {
                Some(isready) => {
                    let mut c = self.pg_command(isready);
                    c.args([
                        "-q",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port,
                        "-U",
                        SUPERUSER,
                        "-d",
                        "postgres",
                        "-t",
                        "2",
                    ]);
                    tokio::process::Command::from(c)
                        .status()
                        .await
                        .map(|s| s.success())
                        .unwrap_or(false)
                }
                None => {
                    tokio::net::TcpStream::connect(("127.0.0.1", self.pg_port))
                        .await
                        .is_ok()
                        && self.psql_admin("SELECT 1").await.is_ok()
                }
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL on 127.0.0.1:{port} does not accept connections after 30 s; see {}:\n{}",
                    self.pg_log().display(),
                    tail(&self.pg_log(), 0)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs one SQL statement as the superuser over the unix socket; returns the
    /// unaligned, tuples-only output.
    async fn psql_admin(&self, sql: &str) -> anyhow::Result<String> {
        let mut c = self.pg_command(&self.tools.psql);
        c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.sock_dir)
            .args([
                "-p",
                &self.pg_port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .env("PGCONNECT_TIMEOUT", "10");
        let out = tokio::process::Command::from(c)
            .output()
            .await
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "psql as {SUPERUSER} failed on `{sql}`: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    async fn ensure_app_database(&self) -> anyhow::Result<()> {
        self.psql_admin(&format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{APP_ROLE}') THEN \
                 CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE}' CREATEDB NOSUPERUSER NOCREATEROLE; \
               ELSE \
                 ALTER ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE}' CREATEDB NOSUPERUSER NOCREATEROLE; \
               END IF; \
             END $$"
        ))
        .await?;
        let exists = self
            .psql_admin(&format!(
                "SELECT 1 FROM pg_catalog.pg_database WHERE datname = '{APP_ROLE}'"
            ))
            .await?;
        if exists == "1" {
            self.psql_admin(&format!("ALTER DATABASE {APP_ROLE} OWNER TO {APP_ROLE}"))
                .await?;
        } else {
            self.psql_admin(&format!("CREATE DATABASE {APP_ROLE} OWNER {APP_ROLE}"))
                .await?;
        }
        Ok(())
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        if self.pg_running {
            self.pg_running = false;
            if self.pg_data.join("postmaster.pid").exists() {
                let mut c = self.pg_stop_command();
                let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
            }
        }
        // `nats` (a NatsServer) stops itself when the field is dropped, after this.
    }
}

/// Creates the PostgreSQL data and socket directories, owned by the account that runs
/// PostgreSQL, and returns them.
fn prepare_pg_dirs(data_dir: &Path, run_as: &RunAs) -> anyhow::Result<(PathBuf, PathBuf)> {
    let fallback = PathBuf::from(format!(
        "/tmp/carelog-dev-{:016x}",
        os::stable_hash(data_dir.as_os_str().as_bytes())
    ));
    let pg_root = if run_as.can_traverse(data_dir) {
        data_dir.to_path_buf()
    } else {
        let who = run_as.account.as_ref().map_or("?", |a| a.name.as_str());
        tracing::info!(
            data_dir = %data_dir.display(),
            pg_root = %fallback.display(),
            "running as root: PostgreSQL runs as `{who}`, who cannot reach the data directory; \
             its data and socket go to the /tmp path instead"
        );
        secure_private_dir(&fallback, run_as)?;
        fallback.clone()
    };
    let pg_data = pg_root.join("pg");
    let mut sock_dir = pg_root.join("pg-sock");
    if sock_dir.as_os_str().len() + "/.s.PGSQL.65535".len() > MAX_SOCKET_PATH {
        tracing::info!(
            sock_dir = %fallback.join("pg-sock").display(),
            "data directory path too long for a unix socket; using the /tmp path for PostgreSQL's socket"
        );
        secure_private_dir(&fallback, run_as)?;
        sock_dir = fallback.join("pg-sock");
    }
    for dir in [&pg_data, &sock_dir] {
        if !dir.exists() {
            fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // PostgreSQL insists on 0700/0750 for its data directory.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
        run_as.chown_recursive(dir)?;
    }
    Ok((pg_data, sock_dir))
}

/// Creates (or checks) a 0700 directory in the world-writable /tmp that belongs to us
/// or to the PostgreSQL account, so another local user cannot plant it for us.
fn secure_private_dir(dir: &Path, run_as: &RunAs) -> anyhow::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            if let Some(a) = &run_as.account {
                std::os::unix::fs::chown(dir, Some(a.uid), Some(a.gid))
                    .with_context(|| format!("chown {}", dir.display()))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let m = fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !m.file_type().is_dir()
        || (m.uid() != run_as.euid && m.uid() != run_as.pg_uid())
        || m.mode() & 0o077 != 0
    {
        bail!(
            "{} exists but is not a private directory of ours (owner uid {}, mode {:o}); remove it",
            dir.display(),
            m.uid(),
            m.mode() & 0o7777
        );
    }
    Ok(())
}

/// A port nobody listens on right now (the OS picks it); a race with another process
/// is handled by the callers' retry.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn append(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last lines written to `path` after byte `offset`, for error messages.
pub(crate) fn tail(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Quotes `s` for the shell that pg_ctl runs the postmaster through.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quotes a directory for a PostgreSQL list setting when it contains separators.
fn pg_list_item(dir: &Path) -> String {
    let s = dir.to_string_lossy();
    if s.contains([',', ' ', '"', '\t']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(pg_list_item(Path::new("/tmp/x")), "/tmp/x");
        assert_eq!(pg_list_item(Path::new("/tmp/a b")), "\"/tmp/a b\"");
    }

    #[test]
    fn free_port_is_bindable() {
        let p = free_port().unwrap();
        assert!(p > 0);
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    }
}
