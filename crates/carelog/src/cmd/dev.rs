//! `carelog dev`: the embedded default. Private PostgreSQL and NATS under a data
//! directory (child processes, stopped on Ctrl-C), development keys generated once and
//! kept there, migrations applied, start-up checks passed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use carelog::app::Services;
use carelog_commands::identity::{IdentityConfig, Registration};
use carelog_commands::Ctx;
use carelog_crypto::password::PasswordHasher;
use carelog_crypto::{token_key, Keyring, MasterKey, TokenKeys};
use carelog_devstack::{load_or_create_dev_keys, DevStack, DevStackConfig};
use carelog_domain::Role;
use carelog_store::PoolConfig;

use crate::config;

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

    let tokens = TokenKeys::new(&keys.token_key_paserk, &[], "carelog", "carelog")
        .context("the dev token key file is damaged")?;

    let mut stack = DevStack::start(DevStackConfig::new(data_dir)).await?;
    let outcome = serve(&stack, data_dir, keyring, tokens).await;
    eprintln!("stopping PostgreSQL and NATS ...");
    stack.stop().await?;
    outcome.map(|()| ExitCode::SUCCESS)
}

/// Migrates, seeds the first SUPER:ADMIN, and serves the API until Ctrl-C.
async fn serve(
    stack: &DevStack,
    data_dir: &Path,
    keyring: Keyring,
    tokens: TokenKeys,
) -> Result<()> {
    let pool = carelog_store::connect(&stack.database_url(), &PoolConfig::default()).await?;
    carelog_store::migrate(&pool).await?;
    carelog_projector::schemas::ensure_schemas(&pool).await?;
    let services = Services::start(
        pool,
        keyring,
        tokens,
        IdentityConfig::default(),
        PasswordHasher::default(),
    )
    .await?
    .with_clinical(config::clinical()?);
    let admin = seed_admin(&services, data_dir).await?;
    let demo_password = seed_demo_once(&services, data_dir, &admin.0).await?;
    let bus = config::bus()?;
    let app = services
        .router(config::api()?, Some(&stack.nats_url()), &bus)
        .await?;
    let bind = config::bind()?;
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
        format!("cannot listen on {bind} (set CARELOG_BIND to another address)")
    })?;
    let relay = services.start_relay(&stack.nats_url(), bus.clone()).await?;
    let projectors = services
        .start_projectors(
            &stack.nats_url(),
            bus,
            carelog_projector::ProjectorConfig::default(),
        )
        .await?;
    print_banner(
        stack,
        data_dir,
        &format!("http://{}", listener.local_addr()?),
        &admin,
        &demo_password,
    );
    carelog_api::server::serve(listener, app, wait_for_shutdown()).await?;
    projectors.stop().await;
    relay.stop().await;
    Ok(())
}

/// The dev SUPER:ADMIN: created on first run with a random password kept (0600) in the
/// data directory, so the same login works on every run.
async fn seed_admin(services: &Services, data_dir: &Path) -> Result<(String, String)> {
    const EMAIL: &str = "admin@carelog.dev";
    let file = data_dir.join("keys").join("admin.password");
    if let Ok(password) = std::fs::read_to_string(&file) {
        return Ok((EMAIL.to_owned(), password.trim().to_owned()));
    }
    let password = carelog_crypto::random::random_token()[..24].to_owned();
    let registration = Registration {
        email: EMAIL.to_owned(),
        password: password.clone(),
        first_name: "Dev".to_owned(),
        last_name: "Administrator".to_owned(),
        role: None,
        platform_roles: vec![Role::SuperAdmin],
    };
    services
        .identity
        .register(&Ctx::cli("dev seed"), registration)
        .await?;
    write_secret(&file, &password)?;
    Ok((EMAIL.to_owned(), password))
}

/// The demo organisation, doctors, patients and auditor: seeded on the first run, with
/// one random password for every demo account kept (0600) in the data directory.
async fn seed_demo_once(services: &Services, data_dir: &Path, admin_email: &str) -> Result<String> {
    let file = data_dir.join("keys").join("demo.password");
    if let Ok(password) = std::fs::read_to_string(&file) {
        return Ok(password.trim().to_owned());
    }
    let admin = services
        .identity
        .find_by_email(admin_email)
        .await?
        .context("the dev SUPER:ADMIN is missing")?;
    let password = carelog_crypto::random::random_token()[..24].to_owned();
    eprintln!("seeding the demo organisation, doctors, patients and records ...");
    carelog::seed::seed_demo(&services.identity, &services.clinical, admin, &password).await?;
    write_secret(&file, &password)?;
    Ok(password)
}

fn write_secret(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{value}")?;
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

fn print_banner(
    stack: &DevStack,
    data_dir: &Path,
    api: &str,
    admin: &(String, String),
    demo_password: &str,
) {
    let keys = data_dir.join("keys");
    println!(
        "carelog dev is running (PostgreSQL and NATS are private to {})",
        data_dir.display()
    );
    println!();
    println!("  API          {api}   (docs: {api}/docs)");
    println!("  SUPER:ADMIN  {}  password {}", admin.0, admin.1);
    println!();
    println!("  Demo accounts (password {demo_password} for each):");
    for login in carelog::seed::DEMO_LOGINS {
        println!("    {:<30} {}", login.email, login.role);
    }
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
