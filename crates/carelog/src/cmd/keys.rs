//! `carelog keys generate` and `carelog keys rotate-master`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use carelog_crypto::{token_key, Keyring, MasterKey};
use carelog_domain::{operations, EventId};
use carelog_store::keys::{rewrap_all, CacheConfig};
use carelog_store::{AppendRequest, EventStore, Expected, GroupCommitConfig, KeyStore};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config;

/// Prints fresh keys; stores nothing.
pub fn generate() -> Result<ExitCode> {
    let master = MasterKey::generate();
    println!("# Keep these secret. Give them to carelog as environment variables (or files).");
    println!("# Master key id: {}", master.id());
    println!("CARELOG_MASTER_KEY={}", master.to_hex());
    println!("CARELOG_TOKEN_KEY={}", token_key::generate_paserk_secret());
    Ok(ExitCode::SUCCESS)
}

/// Re-wraps every data key under a new master key and records that it did.
pub async fn rotate_master(new_key_file: Option<PathBuf>) -> Result<ExitCode> {
    let keyring = config::keyring()?;
    let new = match new_key_file {
        Some(path) => config::master_key_from_file(&path)?,
        None => read_new_key_from_stdin()?,
    };
    if new.id() == keyring.primary().id() {
        bail!("the new master key is the current one (CARELOG_MASTER_KEY); nothing to rotate");
    }
    let pool = super::cli_pool(&config::database_url()?).await?;
    carelog_store::startup_checks(&pool, &keyring).await?;

    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} re-wrapping data keys: {pos} done ({per_sec})")
            .expect("valid template"),
    );
    let rewrapped = rewrap_all(&pool, &keyring, &new, 500, |n| bar.set_position(n)).await?;
    bar.finish_and_clear();

    // Record the rotation, sealed under the system key (now wrapped by the new KEK).
    let from: Vec<String> = vec![keyring.primary().id().to_string()];
    let after = Keyring::new(new.clone(), [keyring.primary().clone()]);
    let keys = KeyStore::new(pool.clone(), after, CacheConfig::default());
    let store = EventStore::start(pool, keys, GroupCommitConfig::default());
    let event = operations::master_key_rotated(
        EventId::new_v7(),
        &from,
        new.id().as_str(),
        rewrapped,
        super::operator_metadata("keys rotate-master"),
    );
    store
        .append(AppendRequest {
            stream: operations::operations_stream(),
            expected: Expected::Any,
            events: vec![event],
        })
        .await
        .context("the keys were re-wrapped, but recording the rotation failed")?;

    println!(
        "re-wrapped {rewrapped} data keys from master key {} to {}",
        from[0],
        new.id()
    );
    println!(
        "next: run every node with CARELOG_MASTER_KEY set to the new key (keep the old one in \
         CARELOG_PREVIOUS_MASTER_KEYS until all nodes restarted, then run this command once \
         more to catch keys created meanwhile); after that the old key is no longer needed."
    );
    Ok(ExitCode::SUCCESS)
}

fn read_new_key_from_stdin() -> Result<MasterKey> {
    eprintln!("new master key (64 hex characters) on standard input:");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the new master key from standard input")?;
    MasterKey::from_hex(&line).context("the new master key is refused")
}
