//! `carelog`: one binary for every role a node plays. See `carelog --help`.

mod cli;
mod cmd;
mod config;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: the relay, the projector and the group
/// commit allocate and free many short-lived buffers per event, and glibc's allocator
/// spent a fifth of the process's CPU on them under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_format);
    match cmd::run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            // The chain of causes, no backtrace; none of our errors carries PHI or keys.
            eprintln!("carelog: {e:#}");
            ExitCode::from(2)
        }
    }
}
