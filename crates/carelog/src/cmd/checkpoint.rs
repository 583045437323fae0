//! `carelog checkpoint [--public-key] [--json]`: take a signed checkpoint of the whole log
//! now, or print the checkpoint public key (docs/audit-checkpoints.md).

use std::process::ExitCode;

use anyhow::Result;
use carelog_store::checkpoint::CheckpointKey;
use carelog_store::keys::CacheConfig;
use carelog_store::{EventStore, GroupCommitConfig, KeyStore};
use serde_json::json;

use crate::config;

/// The checkpoint signing key of this database, derived with CARELOG_MASTER_KEY (after
/// the start-up checks that refuse a master key this database was not written with).
pub async fn signing_key(pool: &sqlx::PgPool) -> Result<CheckpointKey> {
    Ok(CheckpointKey::load(&key_store(pool).await?).await?)
}

/// The data keys of this database under CARELOG_MASTER_KEY, after the start-up checks.
async fn key_store(pool: &sqlx::PgPool) -> Result<KeyStore> {
    let keyring = config::keyring()?;
    carelog_store::startup_checks(pool, &keyring).await?;
    Ok(KeyStore::new(pool.clone(), keyring, CacheConfig::default()))
}

pub async fn run(public_key: bool, json: bool) -> Result<ExitCode> {
    let pool = super::cli_pool(&config::database_url()?).await?;
    let keys = key_store(&pool).await?;
    let key = CheckpointKey::load(&keys).await?;
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
    // Taken on demand, like POST /api/audit/checkpoints: recorded as an event.
    let store = EventStore::start(pool, keys, GroupCommitConfig::default());
    let c = carelog_commands::audit_checkpoint::take(
        &store,
        &key,
        super::operator_metadata("checkpoint"),
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        println!(
            "checkpoint {} at position {}: digest {} signed by {}",
            c.id,
            c.position,
            hex::encode(&c.digest),
            c.key_id
        );
    }
    Ok(ExitCode::SUCCESS)
}
