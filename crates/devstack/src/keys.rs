//! Development keys kept beside the dev data, so that data sealed in one `carelog dev`
//! run can still be opened in the next.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{bail, Context as _};

/// The two secrets `carelog` needs (see `CARELOG_MASTER_KEY` and `CARELOG_TOKEN_KEY`),
/// persisted for a dev data directory: a fresh master key per run would make every
/// previously sealed event unreadable, and a fresh token key would log everybody out.
#[derive(Clone)]
pub struct DevKeys {
    /// The master key (KEK) as 64 hex characters.
    pub master_key_hex: String,
    /// The Ed25519 token signing key as PASERK `k4.secret.…`.
    pub token_key_paserk: String,
}

impl fmt::Debug for DevKeys {
    // Keys must not end up in logs through a stray `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevKeys")
            .field("master_key_hex", &"<redacted>")
            .field("token_key_paserk", &"<redacted>")
            .finish()
    }
}

/// Returns the dev keys of `data_dir`, creating them on first use, so that a newcomer
/// never has to generate keys and the data stays readable across runs.
///
/// Reads `data_dir/keys/master.key` and `data_dir/keys/token.paserk`; each one that is
/// missing is produced by its generator and written with mode 0600 (directory 0700).
/// The `bool` is true when at least one key was just created (worth telling the user).
/// Generators are passed in so this crate does not depend on the crypto crate.
pub fn load_or_create_dev_keys(
    data_dir: &Path,
    gen_master: impl FnOnce() -> String,
    gen_token: impl FnOnce() -> String,
) -> anyhow::Result<(DevKeys, bool)> {
    let dir = data_dir.join("keys");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    let (master_key_hex, c1) = load_or_create(&dir.join("master.key"), gen_master)?;
    let (token_key_paserk, c2) = load_or_create(&dir.join("token.paserk"), gen_token)?;
    Ok((
        DevKeys {
            master_key_hex,
            token_key_paserk,
        },
        c1 || c2,
    ))
}

fn load_or_create(
    path: &Path,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<(String, bool)> {
    if let Some(existing) = read_key(path)? {
        return Ok((existing, false));
    }
    let value = generate().trim().to_string();
    if value.is_empty() {
        bail!("the generator for {} returned an empty key", path.display());
    }
    // Write a private temporary file completely, then link it into place: a crash never
    // leaves a half-written key, and a concurrent creator cannot be overwritten (the
    // link fails and its key wins).
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(value.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((value, true)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let existing =
                read_key(path)?.with_context(|| format!("{} vanished", path.display()))?;
            Ok((existing, false))
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

fn read_key(path: &Path) -> anyhow::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => {
            let s = s.trim();
            if s.is_empty() {
                bail!(
                    "{} is empty; delete it to generate a new key",
                    path.display()
                );
            }
            let mode = fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "dev key file was readable by others; restricting it to 0600");
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
            }
            Ok(Some(s.to_string()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "carelog-devkeys-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn creates_once_then_reads() {
        let d = temp_dir("once");
        let (k, created) =
            load_or_create_dev_keys(&d, || "aa".repeat(32), || "k4.secret.x".into()).unwrap();
        assert!(created);
        assert_eq!(k.master_key_hex, "aa".repeat(32));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d.join("keys")), 0o700);
        assert_eq!(mode(&d.join("keys/master.key")), 0o600);
        assert_eq!(mode(&d.join("keys/token.paserk")), 0o600);

        let (k2, created2) = load_or_create_dev_keys(
            &d,
            || panic!("must not regenerate"),
            || panic!("must not regenerate"),
        )
        .unwrap();
        assert!(!created2);
        assert_eq!(k2.master_key_hex, k.master_key_hex);
        assert_eq!(k2.token_key_paserk, "k4.secret.x");
        assert!(!format!("{k2:?}").contains("k4.secret"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn fills_in_only_the_missing_key() {
        let d = temp_dir("partial");
        load_or_create_dev_keys(&d, || "bb".repeat(32), || "k4.secret.y".into()).unwrap();
        fs::remove_file(d.join("keys/token.paserk")).unwrap();
        let (k, created) =
            load_or_create_dev_keys(&d, || panic!("master exists"), || "k4.secret.z".into())
                .unwrap();
        assert!(created);
        assert_eq!(k.master_key_hex, "bb".repeat(32));
        assert_eq!(k.token_key_paserk, "k4.secret.z");
        fs::remove_dir_all(&d).unwrap();
    }
}
