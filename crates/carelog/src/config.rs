//! Configuration: read from the environment once, validated, turned into typed values.
//! Anything missing or malformed stops the process with a message naming the variable
//! (never its value) and what to do.

use std::path::Path;

use anyhow::{bail, Context, Result};
use carelog_crypto::{Keyring, MasterKey};

/// `DATABASE_URL`, required.
pub fn database_url() -> Result<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => bail!(
            "DATABASE_URL is not set: give the PostgreSQL connection string of carelog's \
             (ordinary, non-superuser) role, e.g. postgres://carelog:…@127.0.0.1:5432/carelog"
        ),
    }
}

/// The keyring from `CARELOG_MASTER_KEY` (or the file named by `CARELOG_MASTER_KEY_FILE`)
/// and, during a rotation, `CARELOG_PREVIOUS_MASTER_KEYS` (comma-separated).
pub fn keyring() -> Result<Keyring> {
    let primary = master_key_from_env()?;
    let previous = match std::env::var("CARELOG_PREVIOUS_MASTER_KEYS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .enumerate()
            .map(|(i, k)| {
                MasterKey::from_hex(k).with_context(|| {
                    format!(
                        "CARELOG_PREVIOUS_MASTER_KEYS entry {} is not a master key",
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    Ok(Keyring::new(primary, previous))
}

fn master_key_from_env() -> Result<MasterKey> {
    if let Ok(text) = std::env::var("CARELOG_MASTER_KEY") {
        return MasterKey::from_hex(&text).context("CARELOG_MASTER_KEY is refused");
    }
    if let Ok(path) = std::env::var("CARELOG_MASTER_KEY_FILE") {
        return master_key_from_file(Path::new(&path))
            .with_context(|| format!("CARELOG_MASTER_KEY_FILE ({path}) is refused"));
    }
    bail!(
        "CARELOG_MASTER_KEY is not set: give the 64-hex-character master key (or \
         CARELOG_MASTER_KEY_FILE naming a file that holds it). `carelog keys generate` \
         makes one. carelog does not start without it."
    )
}

/// Reads a master key from a file (its only content, a final newline allowed).
pub fn master_key_from_file(path: &Path) -> Result<MasterKey> {
    let text = std::fs::read_to_string(path).context("cannot read the key file")?;
    Ok(MasterKey::from_hex(&text)?)
}
