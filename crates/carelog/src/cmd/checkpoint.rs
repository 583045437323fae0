//! `carelog checkpoint [--public-key] [--json]`: take a signed checkpoint of the whole log
//! now, or print the checkpoint public key (docs/audit-checkpoints.md).

use std::process::ExitCode;

use anyhow::Result;
use carelog_store::checkpoint::{self, CheckpointKey};
use carelog_store::keys::CacheConfig;
use carelog_store::KeyStore;
use serde_json::json;

use crate::config;

/// The checkpoint signing key of this database, derived with CARELOG_MASTER_KEY (after
/// the start-up checks that refuse a master key this database was not written with).
pub async fn signing_key(pool: &sqlx::PgPool) -> Result<CheckpointKey> {
    let keyring = config::keyring()?;
    carelog_store::startup_checks(pool, &keyring).await?;
    let keys = KeyStore::new(pool.clone(), keyring, CacheConfig::default());
    Ok(CheckpointKey::load(&keys).await?)
}

pub async fn run(public_key: bool, json: bool) -> Result<ExitCode> {
    let pool = super::cli_pool(&config::database_url()?).await?;
    let key = signing_key(&pool).await?;
    let v = key.verifier();
    if public_key {
        if json {
            let out = json!({
                "algorithm": "Ed25519",
                "key_id": v.key_id(),
                "public_key": v.public_paserk(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!("key_id={}", v.key_id());
            println!("public_key={}", v.public_paserk());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let c = checkpoint::create(&pool, &key).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        println!(
            "checkpoint {} at position {}: digest {} signed by {}",
            c.id,
            c.position,
            hex_of(&c.digest),
            c.key_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
