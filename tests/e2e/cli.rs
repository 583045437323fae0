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

/// `carelog bench lag` runs end to end on a small load: the appends-alone baseline, the
/// pipeline catching up with it, the watched run, and both tables, with the host's CPU
/// read from `/proc` (this suite runs on Linux). It cleans up its scratch database.
#[tokio::test]
async fn the_lag_bench_runs_its_baseline_and_floor_and_reports_the_cpu_of_each_run() {
    let db = TestDb::new().await;
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let scratch_dbs = || async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'carelog_bench_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        names
    };
    let before = scratch_dbs().await;
    let out = carelog(
        &db,
        &[
            "bench",
            "lag",
            "--no-write",
            "--rate",
            "200",
            "--seconds",
            "2",
            "--writers",
            "8",
            "--max-writers",
            "4",
            "--max-seconds",
            "1",
            "--payload-bytes",
            "64",
        ],
        &[("NATS_URL", &nats)],
        None,
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for row in [
        "| append → visible in audit_feed (end-to-end lag) |",
        "| appends alone (no relay, no projector) |",
        "| appends, relay, JetStream and projector (the run above) |",
        "| floor: append → visible in bench_floor (minimal publisher and consumer) |",
        "| appends, the floor's publisher, JetStream and consumer (the floor) |",
    ] {
        assert!(all.contains(row), "missing {row:?} in:\n{all}");
    }
    // Every CPU row carries a measured busy share, not "n/a".
    let busy: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("| appends"))
        .map(|l| l.split('|').nth(3).unwrap_or_default().trim())
        .collect();
    assert_eq!(busy.len(), 3, "{all}");
    assert!(busy.iter().all(|b| b.ends_with('%')), "{busy:?}\n{all}");
    assert!(all.contains("The appends alone kept the host"), "{all}");
    // The floor saw every counted append: a positive p99, and its verdict.
    let floor_p99: f64 = all
        .lines()
        .find(|l| l.starts_with("| floor: append"))
        .and_then(|l| l.split('|').nth(5))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default();
    assert!(floor_p99 > 0.0, "{all}");
    assert!(all.contains("The floor (the same load"), "{all}");
    // Its own scratch database is gone (others' may come and go meanwhile).
    let after = scratch_dbs().await;
    assert!(after.iter().all(|d| before.contains(d)), "{after:?}");
}
