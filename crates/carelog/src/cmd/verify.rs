//! `carelog verify [--stream ID] [--json] [--public-key K]`: recompute hash chains and
//! check the signed checkpoints; exit 1 on any broken link or checkpoint.
//!
//! The checkpoints' signatures are checked with `--public-key` (PASERK `k4.public`), or
//! else with the key derived with CARELOG_MASTER_KEY when it is set; with neither, only
//! the digest of the latest checkpoint is recomputed and the output says the signatures
//! were not checked.

use std::process::ExitCode;

use anyhow::{Context, Result};
use carelog_domain::StreamId;
use carelog_store::checkpoint::CheckpointVerifier;

use crate::config;

pub async fn run(
    stream: Option<String>,
    json: bool,
    public_key: Option<String>,
) -> Result<ExitCode> {
    let stream = stream
        .map(|s| s.parse::<StreamId>())
        .transpose()
        .context("--stream must be a stream id like patient-<uuid>")?;
    let given = public_key
        .map(|k| CheckpointVerifier::from_paserk(&k))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--public-key is refused: {e}"))?;
    let pool = super::cli_pool(&config::database_url()?).await?;
    let verifier = match given {
        Some(v) => Some(v),
        None if master_key_configured() => Some(
            super::checkpoint::signing_key(&pool)
                .await?
                .verifier()
                .clone(),
        ),
        None => None,
    };
    let report = carelog_store::verify_log(&pool, stream.as_ref(), verifier.as_ref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.failures {
            if f.stream_id == carelog_store::verify::WHOLE_LOG {
                println!("BROKEN CHECKPOINT: {}", f.reason);
            } else {
                println!(
                    "BROKEN {} at position {} (version {}): {}",
                    f.stream_id, f.position, f.version, f.reason
                );
            }
        }
        let chain_broken = report
            .failures
            .iter()
            .filter(|f| f.stream_id != carelog_store::verify::WHOLE_LOG)
            .count();
        let verdict = if report.ok { "ok" } else { "FAILED" };
        println!(
            "{verdict}: {} events in {} streams checked, {} broken",
            report.checked, report.streams, chain_broken
        );
        if let Some(c) = &report.checkpoint {
            let state = if c.ok { "ok" } else { "FAILED" };
            match c.latest_position {
                None => println!("checkpoints: none yet (`carelog checkpoint` takes one)"),
                Some(p) => println!(
                    "checkpoints {state}: {} checked, latest at position {p} recomputed{}",
                    c.checkpoints,
                    match &c.key_id {
                        Some(k) => format!(", signatures checked with {k}"),
                        None =>
                            ", signatures NOT checked (give --public-key or CARELOG_MASTER_KEY)"
                                .to_owned(),
                    }
                ),
            }
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn master_key_configured() -> bool {
    std::env::var_os("CARELOG_MASTER_KEY").is_some()
        || std::env::var_os("CARELOG_MASTER_KEY_FILE").is_some()
}
