//! One module per subcommand.

pub mod bench;
mod check;
mod checkpoint;
mod dev;
mod dlq;
mod keys;
mod migrate;
mod project;
mod rebuild;
mod serve;
mod services;
pub mod users;
mod verify;

use std::process::ExitCode;

use anyhow::Result;
use carelog_domain::Metadata;
use carelog_store::PoolConfig;
use sqlx::PgPool;

use crate::cli::{BenchCommand, Command, DlqCommand, KeysCommand, UsersCommand};

/// Runs a subcommand; the exit code says how it went.
pub async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Migrate => migrate::run().await,
        Command::Serve { no_projectors } => serve::run(!no_projectors).await,
        Command::Project => project::run().await,
        Command::Rebuild { name, all } => rebuild::run(name, all).await,
        Command::Dlq { command } => match command {
            DlqCommand::List { projection, json } => dlq::list(projection, json).await,
            DlqCommand::Retry { id, reason } => dlq::retry(id, reason).await,
            DlqCommand::Discard { id, reason } => dlq::discard(id, reason).await,
        },
        Command::Check => check::run().await,
        Command::Dev { data_dir } => dev::run(&data_dir).await,
        Command::Keys { command } => match command {
            KeysCommand::Generate => keys::generate(),
            KeysCommand::RotateMaster { new_key_file } => keys::rotate_master(new_key_file).await,
        },
        Command::Users { command } => match command {
            UsersCommand::Create(args) => users::create(args).await,
        },
        Command::Verify {
            stream,
            json,
            public_key,
        } => verify::run(stream, json, public_key).await,
        Command::Checkpoint { public_key, json } => checkpoint::run(public_key, json).await,
        Command::Bench { command } => match command {
            BenchCommand::Append(args) => bench::append(args).await,
            BenchCommand::Rebuild(args) => bench::rebuild(args).await,
            BenchCommand::Lag(args) => bench::lag(args).await,
            BenchCommand::Reads(args) => bench::reads(args).await,
            BenchCommand::AuditSearch(args) => bench::audit_search(args).await,
        },
    }
}

/// A small pool for a one-off operator command.
async fn cli_pool(url: &str) -> Result<PgPool> {
    let cfg = PoolConfig {
        max_connections: 4,
        ..PoolConfig::default()
    };
    Ok(carelog_store::connect(url, &cfg).await?)
}

/// Metadata of an operator's CLI command: the operator (the OS user) is the actor.
fn operator_metadata(command: &str) -> Metadata {
    let mut m = Metadata::operator(
        command,
        format!("cli-{}", uuid::Uuid::now_v7()),
        chrono::Utc::now(),
    );
    m.user_agent = Some(format!("carelog-cli/{}", env!("CARGO_PKG_VERSION")));
    m
}
