//! `carelog verify [--stream ID]`: recompute hash chains; exit 1 on any broken link.

use std::process::ExitCode;

use anyhow::{Context, Result};
use carelog_domain::StreamId;

use crate::config;

pub async fn run(stream: Option<String>, json: bool) -> Result<ExitCode> {
    let stream = stream
        .map(|s| s.parse::<StreamId>())
        .transpose()
        .context("--stream must be a stream id like patient-<uuid>")?;
    let pool = super::cli_pool(&config::database_url()?).await?;
    let report = carelog_store::verify_chain(&pool, stream.as_ref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.failures {
            println!(
                "BROKEN {} at position {} (version {}): {}",
                f.stream_id, f.position, f.version, f.reason
            );
        }
        let verdict = if report.ok { "ok" } else { "FAILED" };
        println!(
            "{verdict}: {} events in {} streams checked, {} broken",
            report.checked,
            report.streams,
            report.failures.len()
        );
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
