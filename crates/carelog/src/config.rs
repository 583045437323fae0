//! Configuration: read from the environment once, validated, turned into typed values.
//! Anything missing or malformed stops the process with a message naming the variable
//! (never its value) and what to do.

use std::path::Path;

use anyhow::{bail, Context, Result};
use carelog_crypto::{Keyring, MasterKey};

/// `DATABASE_URL`, required.
pub fn database_url() -> Result<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => bail!(
            "DATABASE_URL is not set: give the PostgreSQL connection string of carelog's \
             (ordinary, non-superuser) role, e.g. postgres://carelog:…@127.0.0.1:5432/carelog"
        ),
    }
}

/// The keyring from `CARELOG_MASTER_KEY` (or the file named by `CARELOG_MASTER_KEY_FILE`)
/// and, during a rotation, `CARELOG_PREVIOUS_MASTER_KEYS` (comma-separated).
pub fn keyring() -> Result<Keyring> {
    let primary = master_key_from_env()?;
    let previous = match std::env::var("CARELOG_PREVIOUS_MASTER_KEYS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .enumerate()
            .map(|(i, k)| {
                MasterKey::from_hex(k).with_context(|| {
                    format!(
                        "CARELOG_PREVIOUS_MASTER_KEYS entry {} is not a master key",
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    Ok(Keyring::new(primary, previous))
}

fn master_key_from_env() -> Result<MasterKey> {
    if let Ok(text) = std::env::var("CARELOG_MASTER_KEY") {
        return MasterKey::from_hex(&text).context("CARELOG_MASTER_KEY is refused");
    }
    if let Ok(path) = std::env::var("CARELOG_MASTER_KEY_FILE") {
        return master_key_from_file(Path::new(&path))
            .with_context(|| format!("CARELOG_MASTER_KEY_FILE ({path}) is refused"));
    }
    bail!(
        "CARELOG_MASTER_KEY is not set: give the 64-hex-character master key (or \
         CARELOG_MASTER_KEY_FILE naming a file that holds it). `carelog keys generate` \
         makes one. carelog does not start without it."
    )
}

/// Reads a master key from a file (its only content, a final newline allowed).
pub fn master_key_from_file(path: &Path) -> Result<MasterKey> {
    let text = std::fs::read_to_string(path).context("cannot read the key file")?;
    Ok(MasterKey::from_hex(&text)?)
}

/// The token keys from `CARELOG_TOKEN_KEY` (PASERK `k4.secret.…`, required),
/// `CARELOG_RETIRED_TOKEN_KEYS` (PASERK `k4.public.…`, comma-separated: still verified
/// after a signing-key rotation) and `CARELOG_TOKEN_AUDIENCE` (default `carelog`).
pub fn token_keys() -> Result<carelog_crypto::TokenKeys> {
    let secret = match std::env::var("CARELOG_TOKEN_KEY") {
        Ok(s) if !s.trim().is_empty() => s,
        _ => bail!(
            "CARELOG_TOKEN_KEY is not set: give the Ed25519 token-signing key as PASERK \
             k4.secret.… (`carelog keys generate` makes one). carelog does not start without it."
        ),
    };
    let retired: Vec<String> = std::env::var("CARELOG_RETIRED_TOKEN_KEYS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let audience = std::env::var("CARELOG_TOKEN_AUDIENCE").unwrap_or_else(|_| "carelog".to_owned());
    carelog_crypto::TokenKeys::new(secret.trim(), &retired, "carelog", &audience)
        .context("CARELOG_TOKEN_KEY or CARELOG_RETIRED_TOKEN_KEYS is refused")
}

/// Identity settings: `CARELOG_LOCKOUT_THRESHOLD` (failures before lockout, default 10).
pub fn identity() -> Result<carelog_commands::identity::IdentityConfig> {
    let mut cfg = carelog_commands::identity::IdentityConfig::default();
    if let Ok(v) = std::env::var("CARELOG_LOCKOUT_THRESHOLD") {
        cfg.lockout.threshold = v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .context("CARELOG_LOCKOUT_THRESHOLD must be a whole number above 0")?;
    }
    Ok(cfg)
}

/// Clinical settings: `CARELOG_EMERGENCY_ACCESS_MINUTES` (how long an emergency access
/// grant lasts, 1 to 1440, default 60).
pub fn clinical() -> Result<carelog_commands::clinical::ClinicalConfig> {
    let mut cfg = carelog_commands::clinical::ClinicalConfig::default();
    if let Ok(v) = std::env::var("CARELOG_EMERGENCY_ACCESS_MINUTES") {
        let minutes: i64 = v
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=1440).contains(n))
            .context("CARELOG_EMERGENCY_ACCESS_MINUTES must be a whole number from 1 to 1440")?;
        cfg.emergency_duration = chrono::Duration::minutes(minutes);
    }
    Ok(cfg)
}

/// `CARELOG_BIND`, default `127.0.0.1:8080`.
pub fn bind() -> Result<std::net::SocketAddr> {
    std::env::var("CARELOG_BIND")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()
        .context("CARELOG_BIND must be an address like 127.0.0.1:8080")
}

/// `CARELOG_METRICS_BIND`: an address of its own for `GET /metrics` (then not served on
/// `CARELOG_BIND`). Default none.
pub fn metrics_bind() -> Result<Option<std::net::SocketAddr>> {
    match std::env::var("CARELOG_METRICS_BIND") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .context("CARELOG_METRICS_BIND must be an address like 127.0.0.1:9090"),
        _ => Ok(None),
    }
}

/// The HTTP settings: `CARELOG_TRUSTED_PROXIES` (comma-separated IPs),
/// `RATE_LIMITING_ENABLED` (`false` turns limits off), `CARELOG_CORS_ORIGINS`
/// (comma-separated origins allowed to call from a browser), `CARELOG_DLQ_ALERT_THRESHOLD`
/// (DLQ depth above which `/admin/dlq/depth` alerts, default 100).
pub fn api() -> Result<carelog_api::state::ApiConfig> {
    let trusted_proxies = list("CARELOG_TRUSTED_PROXIES")
        .iter()
        .map(|p| {
            p.parse()
                .with_context(|| format!("CARELOG_TRUSTED_PROXIES: {p:?} is not an IP address"))
        })
        .collect::<Result<_>>()?;
    let rate_limiting_enabled = match std::env::var("RATE_LIMITING_ENABLED") {
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "false" | "0" | "no" | "off" => false,
            "true" | "1" | "yes" | "on" | "" => true,
            _ => bail!("RATE_LIMITING_ENABLED must be true or false"),
        },
        Err(_) => true,
    };
    let cors_origins = list("CARELOG_CORS_ORIGINS")
        .iter()
        .map(|o| {
            axum::http::HeaderValue::from_str(o)
                .with_context(|| format!("CARELOG_CORS_ORIGINS: {o:?} is not a valid origin"))
        })
        .collect::<Result<_>>()?;
    let dlq_alert_threshold = match std::env::var("CARELOG_DLQ_ALERT_THRESHOLD") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .ok()
            .filter(|n: &i64| *n >= 0)
            .context("CARELOG_DLQ_ALERT_THRESHOLD must be a whole number, 0 or more")?,
        _ => 100,
    };
    Ok(carelog_api::state::ApiConfig {
        metrics_route: metrics_bind()?.is_none(),
        dlq_alert_threshold,
        trusted_proxies,
        rate_limiting_enabled,
        cors_origins,
        ..Default::default()
    })
}

fn list(var: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The NATS settings: `CARELOG_NATS_PREFIX` (default none; letters, digits, `_`, `-`)
/// and `CARELOG_NATS_REPLICAS` (default 1; 3 for a NATS cluster).
pub fn bus() -> Result<carelog_bus::BusConfig> {
    let prefix = std::env::var("CARELOG_NATS_PREFIX").unwrap_or_default();
    let replicas = match std::env::var("CARELOG_NATS_REPLICAS") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().context(
            "CARELOG_NATS_REPLICAS must be a number (1 for one server, 3 for a cluster)",
        )?,
        _ => 1,
    };
    Ok(carelog_bus::BusConfig::new(prefix, replicas)?)
}
