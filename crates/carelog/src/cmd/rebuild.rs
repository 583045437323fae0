//! `carelog rebuild NAME|--all`: replays the log (from PostgreSQL, not NATS) into fresh
//! tables and swaps them in; a progress bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use carelog_projector::Projection;
use indicatif::{ProgressBar, ProgressStyle};

pub async fn run(name: Option<String>, all: bool) -> Result<ExitCode> {
    let projections: Vec<Arc<dyn Projection>> = if all {
        carelog_projector::registry()
    } else {
        let name = name.unwrap_or_default();
        match carelog_projector::find(&name) {
            Some(p) => vec![p],
            None => bail!(
                "no projection named {name:?} (known: {})",
                carelog_projector::registry()
                    .iter()
                    .map(|p| p.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    let services = super::services::from_env().await?;
    for p in projections {
        let started = Instant::now();
        let bar = progress_bar(p.name());
        let mut last_line = Instant::now();
        let report = carelog_projector::rebuild(
            &services.pool,
            &services.store,
            p.as_ref(),
            |done, total| match &bar {
                Some(bar) => {
                    bar.set_length(total);
                    bar.set_position(done);
                }
                None if last_line.elapsed().as_secs() >= 2 => {
                    println!("{}: {done}/{total} events", p.name());
                    last_line = Instant::now();
                }
                None => {}
            },
        )
        .await?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let attempts = if report.attempts > 1 {
            format!(
                " ({} attempts: the dead-letter queue changed meanwhile)",
                report.attempts
            )
        } else {
            String::new()
        };
        println!(
            "rebuilt {}: {} events applied, {} skipped (dead letters), checkpoint {}, {:.0} events/s{attempts}",
            p.name(),
            report.applied,
            report.skipped,
            report.checkpoint,
            (report.applied + report.skipped) as f64 / secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(name: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} events, {per_sec}, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(name.to_owned());
    Some(bar)
}
