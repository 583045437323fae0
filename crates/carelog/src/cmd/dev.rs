//! `carelog dev`: the embedded default. Private PostgreSQL and NATS under a data
//! directory (child processes, stopped on Ctrl-C), development keys generated once and
//! kept there, migrations applied, start-up checks passed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use carelog_crypto::{token_key, Keyring, MasterKey};
use carelog_devstack::{load_or_create_dev_keys, DevStack, DevStackConfig};
use carelog_store::PoolConfig;

pub async fn run(data_dir: &Path) -> Result<ExitCode> {
    let (keys, created) = load_or_create_dev_keys(
        data_dir,
        || MasterKey::generate().to_hex(),
        token_key::generate_paserk_secret,
    )?;
    warn_about_dev_keys(data_dir, created);
    let keyring = Keyring::new(
        MasterKey::from_hex(&keys.master_key_hex).context("the dev master key file is damaged")?,
        [],
    );

    let mut stack = DevStack::start(DevStackConfig::new(data_dir)).await?;
    let outcome = prepare(&stack, &keyring).await;
    if outcome.is_ok() {
        print_banner(&stack, data_dir);
        wait_for_shutdown().await;
        eprintln!("stopping PostgreSQL and NATS ...");
    }
    stack.stop().await?;
    outcome.map(|()| ExitCode::SUCCESS)
}

async fn prepare(stack: &DevStack, keyring: &Keyring) -> Result<()> {
    let pool = carelog_store::connect(&stack.database_url(), &PoolConfig::default()).await?;
    carelog_store::migrate(&pool).await?;
    carelog_store::startup_checks(&pool, keyring).await?;
    pool.close().await;
    Ok(())
}

fn warn_about_dev_keys(data_dir: &Path, created: bool) {
    let verb = if created { "GENERATED" } else { "USING" };
    eprintln!();
    eprintln!(
        "!!! {verb} DEVELOPMENT KEYS in {}/keys/",
        data_dir.display()
    );
    eprintln!("!!! They are for development only: stored unencrypted on disk. Never use them,");
    eprintln!("!!! or this data directory, for real patient data. Production takes keys from");
    eprintln!("!!! CARELOG_MASTER_KEY and CARELOG_TOKEN_KEY (`carelog keys generate`).");
    eprintln!();
}

fn print_banner(stack: &DevStack, data_dir: &Path) {
    let keys = data_dir.join("keys");
    println!(
        "carelog dev is running (PostgreSQL and NATS are private to {})",
        data_dir.display()
    );
    println!();
    println!("  DATABASE_URL={}", stack.database_url());
    println!("  NATS_URL={}", stack.nats_url());
    println!();
    println!("Use the other commands against it from another terminal, e.g.:");
    println!(
        "  DATABASE_URL={} CARELOG_MASTER_KEY_FILE={} carelog verify",
        stack.database_url(),
        keys.join("master.key").display()
    );
    println!();
    println!("Press Ctrl-C to stop.");
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
