//! The few operating-system facts the stack needs, obtained without `unsafe` or libc:
//! who we are (`id -u`), which unprivileged account PostgreSQL may run as
//! (/etc/passwd), and whether a process is still alive (/proc).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command as StdCommand;

use anyhow::{bail, Context as _};

/// An account from /etc/passwd.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// How PostgreSQL's programs are run: directly, or — because PostgreSQL refuses to run
/// as root — through `runuser -u <account> --`.
#[derive(Debug, Clone)]
pub(crate) struct RunAs {
    pub euid: u32,
    pub account: Option<Account>,
}

impl RunAs {
    /// Detects root and picks `postgres` (else `nobody`) as the account to drop to.
    pub fn detect() -> anyhow::Result<RunAs> {
        let euid = effective_uid()?;
        if euid != 0 {
            return Ok(RunAs {
                euid,
                account: None,
            });
        }
        let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        let account = ["postgres", "nobody"]
            .iter()
            .find_map(|name| lookup_account(&passwd, name))
            .context(
                "running as root, and neither a `postgres` nor a `nobody` account exists to run \
                 PostgreSQL as (PostgreSQL refuses to run as root); create one with \
                 `useradd --system postgres`, or run as an ordinary user",
            )?;
        if crate::tools::which("runuser").is_none() && !Path::new("/usr/sbin/runuser").exists() {
            bail!(
                "running as root needs `runuser` (package util-linux) to start PostgreSQL as {}",
                account.name
            );
        }
        Ok(RunAs {
            euid,
            account: Some(account),
        })
    }

    /// The uid that will own PostgreSQL's files.
    pub fn pg_uid(&self) -> u32 {
        self.account.as_ref().map_or(self.euid, |a| a.uid)
    }

    /// A command running `program` as the PostgreSQL account.
    pub fn command(&self, program: impl AsRef<OsStr>) -> StdCommand {
        match &self.account {
            None => StdCommand::new(program),
            Some(a) => {
                let mut c = StdCommand::new("runuser");
                c.arg("-u").arg(&a.name).arg("--").arg(program);
                // The caller's cwd (e.g. under /root) may be unreadable for the account.
                c.current_dir("/");
                c
            }
        }
    }

    /// Whether the PostgreSQL account can reach `dir` (search permission on it and all
    /// its ancestors).
    pub fn can_traverse(&self, dir: &Path) -> bool {
        if self.account.is_none() {
            return true;
        }
        self.command("test")
            .arg("-x")
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Gives `path` (recursively) to the PostgreSQL account, if it is not already its.
    pub fn chown_recursive(&self, path: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let Some(a) = &self.account else {
            return Ok(());
        };
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("reading {}", path.display()))?;
        if meta.uid() == a.uid && meta.gid() == a.gid {
            return Ok(());
        }
        let status = StdCommand::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", a.uid, a.gid))
            .arg(path)
            .status()
            .context("running chown")?;
        if !status.success() {
            bail!("chown -R {} {} failed", a.name, path.display());
        }
        Ok(())
    }
}

fn lookup_account(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| {
            Some(Account {
                name: name.to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })?
    })
}

/// The effective uid, from `id -u` (no libc in this crate).
pub(crate) fn effective_uid() -> anyhow::Result<u32> {
    let out = StdCommand::new("id")
        .arg("-u")
        .output()
        .context("running `id -u`")?;
    if !out.status.success() {
        bail!("`id -u` failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parsing `id -u` output")
}

/// Whether `pid` is a live (not zombie) process. Without /proc, assumes it is.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    match std::fs::read_to_string(proc.join(pid.to_string()).join("stat")) {
        // "pid (comm) S ..." — comm may contain spaces and parentheses; the state follows
        // the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The command line of `pid`, NUL separators replaced by spaces.
pub(crate) fn pid_cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid` with the shell's `kill`, which exists
/// even where procps does not.
pub(crate) fn send_signal(pid: u32, signal: &str) -> bool {
    StdCommand::new("sh")
        .arg("-c")
        .arg("kill -s \"$1\" \"$2\" 2>/dev/null")
        .arg("sh")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// FNV-1a: a hash that is the same in every build, for naming per-data-dir paths.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd() {
        let p = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL:/var/lib/postgresql:/bin/bash\n";
        let a = lookup_account(p, "postgres").unwrap();
        assert_eq!((a.uid, a.gid), (101, 104));
        assert!(lookup_account(p, "nobody").is_none());
    }

    #[test]
    fn own_process_is_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_cmdline(std::process::id()).is_some());
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
