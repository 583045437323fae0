//! `devstack`: runs the private PostgreSQL + NATS pair until killed, so that shell
//! scripts (scripts/test) get services on machines that have none.
//!
//! ```text
//! devstack --data-dir DIR [--print-env] [--pg-port N] [--nats-port N]
//! ```
//!
//! With `--print-env`, stdout gets `DATABASE_URL=<superuser url>` (test harnesses must
//! create roles and databases), `NATS_URL=…`, `CARELOG_APP_DATABASE_URL=<carelog role url>`
//! and finally `DEVSTACK_READY=1`, one per line. Stops both services on SIGTERM/SIGINT.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use carelog_devstack::{DevStack, DevStackConfig};

const USAGE: &str = "usage: devstack --data-dir DIR [--print-env] [--pg-port N] [--nats-port N]";

struct Args {
    cfg: DevStackConfig,
    print_env: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut data_dir: Option<PathBuf> = None;
    let mut print_env = false;
    let mut pg_port = None;
    let mut nats_port = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--data-dir" => data_dir = Some(value("--data-dir")?.into()),
            "--print-env" => print_env = true,
            "--pg-port" => pg_port = Some(value("--pg-port")?.parse().context("--pg-port")?),
            "--nats-port" => {
                nats_port = Some(value("--nats-port")?.parse().context("--nats-port")?)
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let data_dir = data_dir.with_context(|| format!("--data-dir is required\n{USAGE}"))?;
    Ok(Args {
        cfg: DevStackConfig {
            data_dir,
            pg_port,
            nats_port,
        },
        print_env,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr so that stdout carries only the --print-env lines.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = parse_args()?;
    let mut stack = DevStack::start(args.cfg).await?;
    if args.print_env {
        println!("DATABASE_URL={}", stack.admin_database_url());
        println!("NATS_URL={}", stack.nats_url());
        println!("CARELOG_APP_DATABASE_URL={}", stack.database_url());
        println!("DEVSTACK_READY=1");
    } else {
        eprintln!("PostgreSQL (app role):  {}", stack.database_url());
        eprintln!("PostgreSQL (superuser): {}", stack.admin_database_url());
        eprintln!("NATS (JetStream):       {}", stack.nats_url());
        eprintln!("Stop with Ctrl-C.");
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    stack.stop().await
}
