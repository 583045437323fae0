//! The `carelog` binary as an operator runs it: refusing bad configuration, verifying
//! the log, rotating the master key.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use carelog_crypto::{Keyring, MasterKey};
use carelog_domain::{operations, StreamVersion};
use carelog_store::Expected;
use serde_json::json;
use sqlx::Connection;

use crate::support::{self, event, one, patient_stream, TestDb};

fn carelog(db: &TestDb, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_carelog"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("LOG_FORMAT", "pretty")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run carelog");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn start_up_is_refused_without_or_with_a_malformed_master_key() {
    let db = TestDb::new().await;
    let missing = carelog(&db, &["check"], &[], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("CARELOG_MASTER_KEY is not set"),
        "{}",
        text(&missing)
    );

    for bad in ["abc", &"z".repeat(64), &"a".repeat(63)] {
        let out = carelog(&db, &["check"], &[("CARELOG_MASTER_KEY", bad)], None);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let msg = text(&out);
        assert!(
            msg.contains("CARELOG_MASTER_KEY is refused") && msg.contains("hexadecimal"),
            "{msg}"
        );
        assert!(!msg.contains(bad), "the key is not echoed");
    }
    let good = MasterKey::generate().to_hex();
    let ok = carelog(&db, &["check"], &[("CARELOG_MASTER_KEY", &good)], None);
    assert!(ok.status.success(), "{}", text(&ok));
}

#[tokio::test]
async fn start_up_is_refused_with_the_wrong_master_key() {
    let db = TestDb::new().await;
    let right = MasterKey::generate();
    let store = support::store(&db, Keyring::new(right.clone(), []));
    let s = patient_stream();
    store
        .append(one(s, Expected::Any, event(&s, "A", json!({}))))
        .await
        .unwrap();
    let wrong = MasterKey::generate().to_hex();
    let out = carelog(&db, &["check"], &[("CARELOG_MASTER_KEY", &wrong)], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("not configured"), "{}", text(&out));
}

#[tokio::test]
async fn verify_exits_non_zero_and_names_the_first_broken_event() {
    let db = TestDb::new().await;
    let store = support::store(&db, support::keyring());
    let s = patient_stream();
    for i in 0..3 {
        store
            .append(one(s, Expected::Any, event(&s, "A", json!({ "i": i }))))
            .await
            .unwrap();
    }
    let ok = carelog(&db, &["verify"], &[], None);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("ok: 3 events in 1 streams"),
        "{}",
        text(&ok)
    );

    let events = store
        .read_stream(&s, StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    let target = events[1].position.0;
    let mut admin = db.forger().await;
    // Metadata is covered by the hash too.
    sqlx::query("UPDATE events SET metadata = jsonb_set(metadata, '{request_id}', '\"forged\"') WHERE position = $1")
        .bind(target)
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();

    for args in [vec!["verify"], vec!["verify", "--stream", &s.to_string()]] {
        let out = carelog(&db, &args, &[], None);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let msg = text(&out);
        assert!(
            msg.contains(&format!("BROKEN {s} at position {target} (version 2)")),
            "{msg}"
        );
    }
    let bad = carelog(&db, &["verify", "--stream", "nonsense"], &[], None);
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn keys_generate_prints_a_usable_master_key_and_signing_key() {
    let db = TestDb::new().await;
    let out = carelog(&db, &["keys", "generate"], &[], None);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} printed"))
            .to_owned()
    };
    assert!(MasterKey::from_hex(&value("CARELOG_MASTER_KEY")).is_ok());
    assert!(value("CARELOG_TOKEN_KEY").starts_with("k4.secret."));
}

#[tokio::test]
async fn rotate_master_through_the_cli_rewraps_keys_and_records_the_rotation() {
    let db = TestDb::new().await;
    let old = MasterKey::generate();
    let store = support::store(&db, Keyring::new(old.clone(), []));
    let s = patient_stream();
    store
        .append(one(s, Expected::Any, event(&s, "A", json!({"x": 1}))))
        .await
        .unwrap();
    let new = MasterKey::generate();

    let same = carelog(
        &db,
        &["keys", "rotate-master"],
        &[("CARELOG_MASTER_KEY", &old.to_hex())],
        Some(&old.to_hex()),
    );
    assert_eq!(
        same.status.code(),
        Some(2),
        "rotating to the same key is refused"
    );

    let out = carelog(
        &db,
        &["keys", "rotate-master"],
        &[("CARELOG_MASTER_KEY", &old.to_hex())],
        Some(&format!("{}\n", new.to_hex())),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("re-wrapped 1 data keys"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(&new.to_hex()) && !text(&out).contains(&old.to_hex()));

    let check = carelog(
        &db,
        &["check"],
        &[("CARELOG_MASTER_KEY", &new.to_hex())],
        None,
    );
    assert!(check.status.success(), "{}", text(&check));
    let stale = carelog(
        &db,
        &["check"],
        &[("CARELOG_MASTER_KEY", &old.to_hex())],
        None,
    );
    assert_eq!(stale.status.code(), Some(2));

    let ops = store
        .read_stream(&operations::operations_stream(), StreamVersion::EMPTY, 10)
        .await
        .unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].header.event_type.as_str(), "MasterKeyRotated");
    assert_eq!(
        ops[0].header.metadata.command.as_deref(),
        Some("keys rotate-master")
    );
}
