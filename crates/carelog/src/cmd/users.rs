//! `carelog users create --email E --password-stdin --role ROLE`: the way the first
//! SUPER:ADMIN comes to exist. Recorded in the log like any registration, with the
//! operator's CLI invocation as context.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use carelog_commands::identity::{IdentityError, Registration};
use carelog_commands::Ctx;
use carelog_domain::user::RegistrationRole;
use carelog_domain::Role;

/// Options of `carelog users create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The account's email.
    #[arg(long)]
    pub email: String,
    /// Read the password from standard input (one line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// SUPER:ADMIN, APP:ADMIN, APP:AUDITOR, BASE:DOCTOR or BASE:PATIENT.
    #[arg(long)]
    pub role: String,
    /// Given name.
    #[arg(long, default_value = "Platform")]
    pub first_name: String,
    /// Family name.
    #[arg(long, default_value = "Administrator")]
    pub last_name: String,
}

pub async fn create(args: CreateArgs) -> Result<ExitCode> {
    let role: Role = args.role.parse().map_err(|_| {
        anyhow::anyhow!(
            "--role must be one of SUPER:ADMIN, APP:ADMIN, APP:AUDITOR, BASE:DOCTOR, BASE:PATIENT"
        )
    })?;
    let (registration_role, platform_roles) = match role {
        Role::BaseDoctor => (Some(RegistrationRole::Doctor), vec![]),
        Role::BasePatient => (Some(RegistrationRole::Patient), vec![]),
        r if r.is_platform() => (None, vec![r]),
        _ => bail!("organisation roles are given by an organisation's ORG:ADMIN, not here"),
    };
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();

    let services = super::services::from_env().await?;
    let registration = Registration {
        email: args.email,
        password,
        first_name: args.first_name,
        last_name: args.last_name,
        role: registration_role,
        platform_roles,
    };
    match services
        .identity
        .register(&Ctx::cli("users create"), registration)
        .await
    {
        Ok(user) => {
            println!(
                "created user {} with roles {:?}",
                user.id,
                user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(IdentityError::EmailTaken) => bail!("an account with this email already exists"),
        Err(e) => Err(e.into()),
    }
}
