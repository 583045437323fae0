//! Finding the PostgreSQL and NATS executables.
//!
//! Debian installs the server binaries of PostgreSQL outside PATH
//! (`/usr/lib/postgresql/<major>/bin`) and puts only `pg_wrapper` links for the client
//! tools in `/usr/bin`, so PATH alone is not enough; `nats-server` lands in `/usr/sbin`,
//! which is not in an ordinary user's PATH either.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// The one line a newcomer needs when something is missing.
pub(crate) const INSTALL_HINT: &str = "sudo apt-get install postgresql nats-server";

const PG_LIB: &str = "/usr/lib/postgresql";

/// The PostgreSQL executables of one installation (one major version).
#[derive(Debug, Clone)]
pub(crate) struct PgTools {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
    pub psql: PathBuf,
    pub pg_isready: Option<PathBuf>,
    /// Major version of these tools, e.g. "15".
    pub major: String,
}

/// Looks `name` up in PATH; returns the first executable regular file.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Installed majors under /usr/lib/postgresql, highest first.
fn installed_majors() -> Vec<String> {
    let mut majors: Vec<(u32, String)> = std::fs::read_dir(PG_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n: u32 = name.parse().ok()?;
            is_executable(&e.path().join("bin/initdb")).then_some((n, name))
        })
        .collect();
    majors.sort_by_key(|m| std::cmp::Reverse(m.0));
    majors.into_iter().map(|(_, s)| s).collect()
}

/// Finds a complete PostgreSQL installation.
///
/// With `want_major` (the `PG_VERSION` of an existing data directory) that major's
/// directory is preferred, because a cluster can only be started by its own major.
pub(crate) fn find_pg_tools(want_major: Option<&str>) -> anyhow::Result<PgTools> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(m) = want_major {
        candidates.push(Path::new(PG_LIB).join(m).join("bin"));
    }
    if let Some(initdb) = which("initdb") {
        // Resolve links (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) so
        // that the sibling tools come from the same installation.
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent() {
            candidates.push(dir.to_path_buf());
        }
    }
    candidates.extend(
        installed_majors()
            .into_iter()
            .map(|m| Path::new(PG_LIB).join(m).join("bin")),
    );

    for dir in candidates {
        let initdb = dir.join("initdb");
        let pg_ctl = dir.join("pg_ctl");
        if !(is_executable(&initdb)
            && is_executable(&pg_ctl)
            && is_executable(&dir.join("postgres")))
        {
            continue;
        }
        let major = tool_major(&pg_ctl)?;
        if want_major.is_some_and(|w| w != major) {
            // Keep looking for the right major; report the mismatch below if none.
            continue;
        }
        let sibling = |n: &str| {
            let p = dir.join(n);
            if is_executable(&p) {
                Some(p)
            } else {
                which(n)
            }
        };
        let Some(psql) = sibling("psql") else {
            bail!("PostgreSQL client `psql` not found next to {} or in PATH; install it with: {INSTALL_HINT}", dir.display());
        };
        return Ok(PgTools {
            initdb,
            pg_ctl,
            psql,
            pg_isready: sibling("pg_isready"),
            major,
        });
    }
    if let Some(w) = want_major {
        if find_pg_tools(None).is_ok() {
            bail!(
                "the dev data directory was initialised by PostgreSQL {w}, which is not installed; \
                 install postgresql-{w}, or delete the data directory's `pg` folder to start afresh"
            );
        }
    }
    bail!(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH or {PG_LIB}/*/bin; \
         install them with: {INSTALL_HINT}"
    )
}

/// Runs `pg_ctl --version` ("pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)") and
/// returns the major ("15"; "9.6" for pre-10 releases).
fn tool_major(pg_ctl: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(pg_ctl)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", pg_ctl.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .with_context(|| format!("unexpected `{} --version` output: {text}", pg_ctl.display()))?;
    let parts: Vec<&str> = version.split('.').collect();
    let major = match parts.first().and_then(|p| p.parse::<u32>().ok()) {
        Some(n) if n < 10 && parts.len() > 1 => format!("{}.{}", parts[0], parts[1]),
        _ => parts[0]
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .to_string(),
    };
    Ok(major)
}

/// Finds `nats-server` in PATH or /usr/sbin.
pub(crate) fn find_nats_server() -> anyhow::Result<PathBuf> {
    if let Some(p) = which("nats-server") {
        return Ok(p);
    }
    let sbin = Path::new("/usr/sbin/nats-server");
    if is_executable(sbin) {
        return Ok(sbin.to_path_buf());
    }
    bail!("`nats-server` not found in PATH or /usr/sbin; install it with: {INSTALL_HINT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_finds_sh() {
        assert!(which("sh").is_some());
        assert!(which("definitely-not-a-real-tool-xyz").is_none());
    }
}
