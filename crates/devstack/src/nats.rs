//! A private `nats-server` with JetStream, as a child process under a directory.
//!
//! Used by [`crate::DevStack`] and, on its own, by tests that must stop NATS and start it
//! again on the same port with the same store (an outage the bus has to survive).
//!
//! Layout of the directory: `nats/` JetStream store, `nats.log`, `nats.pid`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::AsyncReadExt as _;

use crate::{append, file_len, free_port, os, tail, tools, PORT_ATTEMPTS};

const NATS_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A private nats-server (JetStream enabled) on 127.0.0.1.
///
/// [`NatsServer::stop`] and [`NatsServer::start`] stop it and start it again on the same
/// port with the same store. Dropping it stops it (blocking, best effort); a server made
/// by [`NatsServer::temporary`] also removes its directory then.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<tokio::process::Child>,
    remove_dir_on_drop: bool,
}

impl NatsServer {
    /// Starts a nats-server keeping its state under `dir` (created if missing), on `port`
    /// or a free one. A server left running by a crashed earlier run on `dir` is stopped
    /// first. Errors name the log file to look at.
    pub async fn launch(dir: impl Into<PathBuf>, port: Option<u16>) -> anyhow::Result<NatsServer> {
        let dir = dir.into();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut server = NatsServer {
            bin: tools::find_nats_server()?,
            dir: fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))?,
            port: 0,
            child: None,
            remove_dir_on_drop: false,
        };
        server.stop_stale().await;
        server.spawn(port).await?;
        Ok(server)
    }

    /// Starts a nats-server on a free port with a fresh directory under the system's
    /// temporary directory, removed again when the server is dropped.
    pub async fn temporary() -> anyhow::Result<NatsServer> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "carelog-nats-{}-{nanos:x}-{:x}",
            std::process::id(),
            os::stable_hash(format!("{nanos}{:?}", std::thread::current().id()).as_bytes())
        ));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        match NatsServer::launch(&dir, None).await {
            Ok(mut s) => {
                s.remove_dir_on_drop = true;
                Ok(s)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens (or, stopped, listened) on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the store, the log and the pid file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this handle started the server and has not stopped it.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the server again after [`NatsServer::stop`], on the same port with the same
    /// store; does nothing when it runs.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn(Some(self.port)).await
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s). Calling it again does nothing.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                os::send_signal(pid, "TERM");
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                tracing::warn!("nats-server ignored SIGTERM for 10 s; killing it");
                let _ = child.kill().await;
            }
            let _ = fs::remove_file(self.pid_file());
        }
        Ok(())
    }

    fn log(&self) -> PathBuf {
        self.dir.join("nats.log")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.join("nats.pid")
    }
    fn store(&self) -> PathBuf {
        self.dir.join("nats")
    }

    /// Kills a nats-server left running by a crashed earlier run on this directory
    /// (identified by nats.pid and its command line naming our store directory).
    async fn stop_stale(&self) {
        let pid_file = self.pid_file();
        let Some(pid) = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            return;
        };
        let store = self.store();
        let ours = os::pid_cmdline(pid).is_some_and(|cmd| {
            cmd.contains("nats-server") && cmd.contains(&*store.to_string_lossy())
        });
        if ours && os::pid_alive(pid) {
            tracing::warn!(
                pid,
                "nats-server from an earlier run is still running; stopping it"
            );
            os::send_signal(pid, "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while os::pid_alive(pid) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if os::pid_alive(pid) {
                os::send_signal(pid, "KILL");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let _ = fs::remove_file(&pid_file);
    }

    async fn spawn(&mut self, fixed_port: Option<u16>) -> anyhow::Result<()> {
        let store = self.store();
        fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
        let log = self.log();
        for attempt in 1..=PORT_ATTEMPTS {
            let port = match fixed_port {
                Some(p) => p,
                None => free_port()?,
            };
            let offset = file_len(&log);
            let mut cmd = tokio::process::Command::new(&self.bin);
            cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                .arg(&store)
                .stdin(Stdio::null())
                .stdout(append(&log)?)
                .stderr(append(&log)?)
                .kill_on_drop(true)
                // Own process group: a Ctrl-C at the terminal reaches only the parent,
                // which then stops the services in order.
                .process_group(0);
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {}", self.bin.display()))?;
            if let Some(pid) = child.id() {
                fs::write(self.pid_file(), format!("{pid}\n"))?;
            }
            self.child = Some(child);
            self.port = port;
            let err = match self.wait_ready().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(mut child) = self.child.take() {
                let _ = child.kill().await;
            }
            let new_log = tail(&log, offset);
            if fixed_port.is_none()
                && attempt < PORT_ATTEMPTS
                && new_log.contains("address already in use")
            {
                tracing::info!(
                    port,
                    "port was taken meanwhile; retrying nats-server on another"
                );
                continue;
            }
            bail!("{err}; see {}:\n{new_log}", log.display());
        }
        unreachable!("the last attempt returns")
    }

    /// Waits until the server greets a client with its INFO line (so it is really NATS
    /// listening there, not whatever else took the port).
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + NATS_START_TIMEOUT;
        let port = self.port;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("nats-server exited during start-up ({status})");
                }
            }
            if let Ok(Ok(mut s)) = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            )
            .await
            {
                let mut buf = [0u8; 5];
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await
                {
                    if &buf == b"INFO " {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server on 127.0.0.1:{port} did not accept connections within {} s",
                    NATS_START_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                os::send_signal(pid, "TERM");
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                // Still running: dropping the child (kill_on_drop) sends SIGKILL.
            }
            drop(child);
            let _ = fs::remove_file(self.pid_file());
        }
        if self.remove_dir_on_drop {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
