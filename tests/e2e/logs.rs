//! What `carelog serve` writes to its logs, at debug level, while people register, log
//! in and turn MFA on: ids and technical facts, never PHI, passwords, hashes, secrets
//! or tokens.

use std::process::{Command, Stdio};
use std::time::Duration;

use carelog_crypto::{MasterKey, TotpSecret};
use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::mfa::base32_decode;
use crate::support::TestDb;

/// A running `carelog serve` child process, killed on drop.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("address")
        .port()
}

async fn start(db: &TestDb, log: &std::path::Path) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_carelog"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("CARELOG_MASTER_KEY", MasterKey::generate().to_hex())
        .env(
            "CARELOG_TOKEN_KEY",
            carelog_crypto::token_key::generate_paserk_secret(),
        )
        .env("CARELOG_BIND", format!("127.0.0.1:{port}"))
        .env("RATE_LIMITING_ENABLED", "false")
        .env("RUST_LOG", "debug")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::from(
            std::fs::File::create(log.with_extension("out")).unwrap(),
        ))
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("run carelog serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http
            .get(format!("{}/health/live", server.base))
            .send()
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "carelog serve did not start: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

async fn post(http: &reqwest::Client, url: String, body: Value, token: Option<&str>) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_server_logs_no_phi_password_hash_secret_or_token_even_at_debug_level() {
    let db = TestDb::new().await;
    let log = std::env::temp_dir().join(format!("carelog-log-{}.jsonl", Uuid::now_v7().simple()));
    let server = start(&db, &log).await;
    let (http, base) = (reqwest::Client::new(), server.base.clone());

    let marker = Uuid::now_v7().simple().to_string();
    let email = format!("zq{marker}@example.org");
    let (first, last) = (
        format!("Firstq{}", &marker[..12]),
        format!("Lastq{}", &marker[20..]),
    );
    let password = format!("pw-{marker}-violet");
    let r = post(&http, format!("{base}/api/auth/register"),
        json!({"email": email, "password": password, "first_name": first, "last_name": last, "registration_role": "PATIENT"}), None).await;
    assert_eq!(r["success"], true, "{r}");
    let wrong = post(
        &http,
        format!("{base}/api/auth/login"),
        json!({"email": email, "password": format!("{password}x")}),
        None,
    )
    .await;
    assert_eq!(wrong["error"]["code"], "UNAUTHORIZED");
    let login = post(
        &http,
        format!("{base}/api/auth/login"),
        json!({"email": email, "password": password}),
        None,
    )
    .await;
    let token = login["data"]["token"].as_str().expect("token").to_owned();
    let refresh_token = login["data"]["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let enroll = post(
        &http,
        format!("{base}/api/auth/mfa/enroll"),
        json!(null),
        Some(&token),
    )
    .await;
    let secret_text = enroll["data"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let secret_bytes = base32_decode(&secret_text);
    let code = TotpSecret::from_bytes(&secret_bytes)
        .unwrap()
        .code(Utc::now().timestamp() as u64);
    let verify = post(
        &http,
        format!("{base}/api/auth/mfa/verify"),
        json!({"code": code}),
        Some(&token),
    )
    .await;
    let recovery = verify["data"]["recovery_codes"][0]
        .as_str()
        .expect("recovery code")
        .to_owned();
    // A request carrying PHI in the query string and a malformed body with PHI in it.
    let _ = http
        .get(format!("{base}/api/auth/me?family_name={last}"))
        .bearer_auth(&token)
        .send()
        .await;
    let _ = http
        .post(format!("{base}/api/auth/login"))
        .header("content-type", "application/json")
        .body(format!("{{\"email\": \"{email}\", \"password\": "))
        .send()
        .await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    drop(server);

    let logs = std::fs::read_to_string(&log).expect("log file");
    if std::env::var("KEEP_LOG").is_err() {
        let _ = std::fs::remove_file(&log);
    }
    let _ = std::fs::remove_file(log.with_extension("out"));
    assert!(
        logs.lines().count() > 10,
        "the server logged at debug level"
    );
    assert!(
        logs.contains("/api/auth/login"),
        "request spans name the route template"
    );
    let secret_hex: String = secret_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash_digest = hash.rsplit('$').next().unwrap().to_owned();
    for (what, needle) in [
        ("email", email.as_str()),
        ("first name", first.as_str()),
        ("last name", last.as_str()),
        ("password", password.as_str()),
        ("password hash", hash_digest.as_str()),
        ("TOTP secret", secret_text.as_str()),
        ("TOTP secret (hex)", secret_hex.as_str()),
        ("recovery code", recovery.as_str()),
        ("access token", &token[10..60]),
        ("refresh token", refresh_token.as_str()),
        ("marker", marker.as_str()),
    ] {
        assert!(!logs.contains(needle), "the logs contain the {what}");
    }
}
