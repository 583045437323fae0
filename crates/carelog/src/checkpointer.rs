//! The background task that takes a signed checkpoint of the log every
//! `CARELOG_CHECKPOINT_EVERY` events (default 10 000; `0` turns it off), in every process
//! that serves the API (`carelog serve`, `carelog dev`). See
//! `carelog_store::checkpoint` and docs/audit-checkpoints.md.
//!
//! Several processes may run it at once: a checkpoint at a position already taken is not
//! doubled, and two near-simultaneous ones at different positions are both valid.

use std::time::Duration;

use anyhow::{Context, Result};
use carelog_store::checkpoint::{self, CheckpointKey};
use carelog_store::KeyStore;
use sqlx::PgPool;

/// How often the task looks at how far the log moved.
const TICK: Duration = Duration::from_secs(2);

/// `CARELOG_CHECKPOINT_EVERY`: log positions between automatic checkpoints (0: none).
pub fn every_from_env() -> Result<i64> {
    match std::env::var("CARELOG_CHECKPOINT_EVERY") {
        Ok(v) => v.trim().parse::<i64>().ok().filter(|n| *n >= 0).context(
            "CARELOG_CHECKPOINT_EVERY must be a whole number (0 turns automatic checkpoints off)",
        ),
        Err(_) => Ok(checkpoint::DEFAULT_EVERY),
    }
}

/// Spawns the task (nothing when `every` is 0). It ends with the runtime or when the pool
/// is closed; failures are logged and retried on the next tick.
pub fn spawn(pool: PgPool, keys: KeyStore, every: i64) {
    if every <= 0 {
        return;
    }
    tokio::spawn(async move {
        let mut key: Option<CheckpointKey> = None;
        loop {
            tokio::time::sleep(TICK).await;
            if pool.is_closed() {
                return;
            }
            if key.is_none() {
                match CheckpointKey::load(&keys).await {
                    Ok(k) => key = Some(k),
                    Err(e) => {
                        tracing::warn!(error = %e, "checkpoint key unavailable; retrying");
                        continue;
                    }
                }
            }
            let k = key.as_ref().expect("loaded above");
            match checkpoint::create_if_due(&pool, k, every).await {
                Ok(Some(c)) => tracing::info!(
                    position = c.position,
                    key_id = %c.key_id,
                    "signed checkpoint of the log taken"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "taking a checkpoint failed; retrying"),
            }
        }
    });
}
