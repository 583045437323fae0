//! Chain verification over HTTP and signed checkpoints (`GET /api/audit/verify`,
//! `/api/audit/checkpoints`, `carelog checkpoint`, `carelog verify`): an intact log
//! verifies; an altered row is named by stream and position; a row rewritten *and*
//! re-chained passes every chain but is caught by the signed checkpoint, with the public
//! key alone.

use std::process::{Command, Output, Stdio};

use carelog_crypto::chain_hash;
use carelog_domain::{Role, StreamId, StreamVersion};
use carelog_store::checkpoint::CheckpointVerifier;
use carelog_store::Expected;
use serde_json::{json, Value};
use sqlx::{Connection, Executor};

use crate::support::{event, one, patient_stream, TestApp, TestDb};

/// Appends `n` events to a new patient stream and returns it with the events' positions.
async fn stream_of(app: &TestApp, n: usize) -> (StreamId, Vec<i64>) {
    let s = patient_stream();
    for i in 0..n {
        app.services
            .store
            .append(one(s, Expected::Any, event(&s, "A", json!({ "i": i }))))
            .await
            .unwrap();
    }
    let events = app
        .services
        .store
        .read_stream(&s, StreamVersion::EMPTY, 100)
        .await
        .unwrap();
    (s, events.iter().map(|e| e.position.0).collect())
}

/// Rewrites the payload of `stream`'s event at `version` and recomputes its hash and the
/// hashes (and prev_hashes) of every later event of the stream: a forger with write access
/// to the database but not the server's keys.
async fn rewrite_and_rechain(app: &TestApp, stream: &StreamId, version: usize) {
    let events = app
        .services
        .store
        .read_stream(stream, StreamVersion::EMPTY, 100)
        .await
        .unwrap();
    let mut admin = app.db.forger().await;
    let mut prev = events[version - 2].hash;
    for ev in &events[version - 1..] {
        let mut payload = ev.payload.clone();
        if ev.header.version.0 as usize == version {
            payload[20] ^= 1;
        }
        let hash = chain_hash(&prev, &ev.header, &payload);
        sqlx::query(
            "UPDATE events SET payload = $2, prev_hash = $3, hash = $4 WHERE position = $1",
        )
        .bind(ev.position.0)
        .bind(&payload)
        .bind(&prev[..])
        .bind(&hash[..])
        .execute(&mut admin)
        .await
        .unwrap();
        prev = hash;
    }
    admin.close().await.unwrap();
}

async fn verify(app: &TestApp, token: &str, stream: Option<&StreamId>) -> Value {
    let path = match stream {
        Some(s) => format!("/api/audit/verify?stream_id={s}"),
        None => "/api/audit/verify".to_owned(),
    };
    let r = app.get(&path, Some(token)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].clone()
}

fn failures(report: &Value) -> Vec<(String, i64)> {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["stream_id"].as_str().unwrap().to_owned(),
                f["position"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The events of the operations stream (operators' actions on the platform itself).
async fn operations(app: &TestApp) -> Vec<carelog_store::StoredEvent> {
    app.services
        .store
        .read_stream(
            &carelog_domain::operations::operations_stream(),
            carelog_domain::StreamVersion::EMPTY,
            10,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn verify_answers_ok_on_an_intact_log_for_auditors_and_403_for_a_doctor() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let (s, _) = stream_of(&app, 3).await;

    let all = verify(&app, &admin.token, None).await;
    assert_eq!(all["ok"], true, "{all}");
    assert!(all["checked"].as_u64().unwrap() >= 3, "{all}");
    assert_eq!(all["failures"], json!([]));
    assert_eq!(all["checkpoint"]["ok"], true);

    let one = verify(&app, &admin.token, Some(&s)).await;
    assert_eq!(
        (one["ok"].clone(), one["checked"].clone()),
        (json!(true), json!(3))
    );

    for role in [Role::AppAdmin, Role::AppAuditor] {
        let who = app.platform_user(role).await;
        assert_eq!(verify(&app, &who.token, None).await["ok"], true);
        let list = app.get("/api/audit/checkpoints", Some(&who.token)).await;
        assert_eq!(list.status, 200, "{:?}", list.body);
    }
    let auditor = app.platform_user(Role::AppAuditor).await;
    let r = app
        .post("/api/audit/checkpoints", json!({}), Some(&auditor.token))
        .await;
    assert_eq!(r.status, 403, "an auditor does not take checkpoints");

    let doctor = app.user("DOCTOR").await;
    for path in ["/api/audit/verify", "/api/audit/checkpoints"] {
        let r = app.get(path, Some(&doctor.token)).await;
        assert_eq!(r.status, 403, "{path}: {:?}", r.body);
    }
    let r = app
        .post("/api/audit/checkpoints", json!({}), Some(&doctor.token))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.get("/api/audit/verify", None).await.status, 401);
    let bad = app
        .get("/api/audit/verify?stream_id=nonsense", Some(&admin.token))
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
}

#[tokio::test]
async fn a_flipped_payload_byte_fails_that_stream_and_the_whole_log_naming_stream_and_position() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let (s, positions) = stream_of(&app, 3).await;
    let (other, _) = stream_of(&app, 2).await;
    let target = positions[1];
    app.db.flip_payload_byte(target).await;

    let one = verify(&app, &admin.token, Some(&s)).await;
    assert_eq!(one["ok"], false);
    assert_eq!(failures(&one), vec![(s.to_string(), target)]);
    assert_eq!(one["failures"][0]["version"], 2);

    let all = verify(&app, &admin.token, None).await;
    assert_eq!(all["ok"], false);
    assert_eq!(failures(&all), vec![(s.to_string(), target)]);

    assert_eq!(verify(&app, &admin.token, Some(&other)).await["ok"], true);
}

#[tokio::test]
async fn a_rewritten_and_rechained_row_passes_the_chains_but_not_the_signed_checkpoint() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let (s, _) = stream_of(&app, 4).await;
    stream_of(&app, 2).await;

    let taken = app
        .post("/api/audit/checkpoints", json!({}), Some(&admin.token))
        .await;
    assert_eq!(taken.status, 201, "{:?}", taken.body);
    let cp = taken.body["data"].clone();
    let position = cp["position"].as_i64().unwrap();
    assert!(position >= 6, "{cp}");
    assert!(verify(&app, &admin.token, None).await["ok"] == true);

    // Taking it is a command: the log says who took which checkpoint.
    let ops = operations(&app).await;
    let taken_event = ops
        .iter()
        .find(|e| e.header.event_type.as_str() == "AuditCheckpointTaken")
        .expect("an AuditCheckpointTaken event");
    assert_eq!(taken_event.header.metadata.actor_id, Some(admin.user_id));
    assert!(
        taken_event.position.0 > position,
        "recorded after the checkpoint"
    );
    let carelog_store::Opened::Payload(payload) =
        app.services.store.open(taken_event).await.unwrap()
    else {
        panic!("the operations stream is readable")
    };
    assert_eq!(payload["checkpoint_id"], cp["id"]);
    assert_eq!(payload["position"], cp["position"]);
    assert_eq!(payload["digest"], cp["digest"]);
    assert_eq!(payload["key_id"], cp["key_id"]);

    // The signature verifies with the published public key alone.
    let key = app.get("/api/audit/checkpoints/key", None).await;
    assert_eq!(key.status, 200);
    let public = key.body["data"]["public_key"].as_str().unwrap();
    let verifier = CheckpointVerifier::from_paserk(public).unwrap();
    assert_eq!(cp["key_id"].as_str().unwrap(), verifier.key_id());
    let hex = |v: &Value| hex_decode(v.as_str().unwrap());
    assert!(verifier.verify(position, &hex(&cp["digest"]), &hex(&cp["signature"])));

    rewrite_and_rechain(&app, &s, 2).await;

    // Every hash chain still holds ...
    let chains = carelog_store::verify_chain(&app.db.pool, None)
        .await
        .unwrap();
    assert!(chains.ok, "{chains:?}");
    // ... but the signed checkpoint does not, for the stream and for the whole log.
    for scope in [Some(&s), None] {
        let r = verify(&app, &admin.token, scope).await;
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(failures(&r), vec![("*".to_owned(), position)], "{r}");
        assert_eq!(r["checkpoint"]["ok"], false);
        assert!(
            r["failures"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("no longer match the signed digest"),
            "{r}"
        );
    }
}

#[tokio::test]
async fn a_forged_checkpoint_is_caught_and_checkpoints_are_append_only() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    stream_of(&app, 2).await;
    let taken = app
        .post("/api/audit/checkpoints", json!({}), Some(&admin.token))
        .await;
    assert_eq!(taken.status, 201);

    // carelog's own role may not change a checkpoint.
    let denied = sqlx::query("UPDATE audit_checkpoints SET position = position")
        .execute(&app.db.pool)
        .await;
    assert!(denied.is_err(), "checkpoints are append-only");

    // A superuser may, with the triggers off: the signature then fails.
    let mut su = app.db.forger().await;
    su.execute("UPDATE audit_checkpoints SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1)")
        .await
        .unwrap();
    su.close().await.unwrap();
    let r = verify(&app, &admin.token, None).await;
    assert_eq!(r["ok"], false);
    assert!(
        r["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{r}"
    );
}

fn carelog(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carelog"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("LOG_FORMAT", "pretty")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run carelog")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn the_cli_takes_checkpoints_and_verify_checks_them_with_the_public_key() {
    let app = TestApp::spawn().await;
    let (s, _) = stream_of(&app, 3).await;
    let master = app.master_key.to_hex();
    let env = [("CARELOG_MASTER_KEY", master.as_str())];

    let key = carelog(&app.db, &["checkpoint", "--public-key"], &env);
    assert!(key.status.success(), "{}", text(&key));
    let stdout = String::from_utf8(key.stdout).unwrap();
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("public_key="))
        .expect("public key printed")
        .to_owned();
    let api = app.get("/api/audit/checkpoints/key", None).await;
    assert_eq!(api.body["data"]["public_key"], public.as_str());

    let taken = carelog(&app.db, &["checkpoint"], &env);
    assert!(taken.status.success(), "{}", text(&taken));
    assert!(
        text(&taken).contains("checkpoint 1 at position"),
        "{}",
        text(&taken)
    );
    let ops = operations(&app).await;
    assert_eq!(ops.len(), 1, "the operator's checkpoint is recorded");
    assert_eq!(ops[0].header.event_type.as_str(), "AuditCheckpointTaken");
    assert_eq!(
        ops[0].header.metadata.command.as_deref(),
        Some("checkpoint")
    );

    // Without any key: the digest is recomputed, the output says signatures were not checked.
    let ok = carelog(&app.db, &["verify"], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("signatures NOT checked"),
        "{}",
        text(&ok)
    );
    let ok = carelog(&app.db, &["verify", "--public-key", &public], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("checkpoints ok: 1 checked"),
        "{}",
        text(&ok)
    );

    rewrite_and_rechain(&app, &s, 2).await;
    let out = carelog(&app.db, &["verify", "--public-key", &public], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("BROKEN CHECKPOINT"), "{}", text(&out));
    assert!(
        text(&out).contains("0 broken"),
        "the chains hold: {}",
        text(&out)
    );
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn an_automatic_checkpoint_is_due_every_n_positions() {
    use carelog_store::checkpoint::{self, CheckpointKey};
    let app = TestApp::spawn().await;
    let pool = &app.db.pool;
    let key = CheckpointKey::load(app.services.store.vault().keys())
        .await
        .unwrap();
    let start = checkpoint::horizon(pool).await.unwrap();
    let every = start + 3;
    assert_eq!(
        checkpoint::create_if_due(pool, &key, every).await.unwrap(),
        None
    );
    stream_of(&app, 3).await;
    let first = checkpoint::create_if_due(pool, &key, every)
        .await
        .unwrap()
        .expect("due after `every` positions");
    assert_eq!(first.position, start + 3);
    assert_eq!(
        checkpoint::create_if_due(pool, &key, 3).await.unwrap(),
        None
    );
    stream_of(&app, 3).await;
    let second = checkpoint::create_if_due(pool, &key, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.position, first.position + 3);
    let report = checkpoint::verify(pool, Some(key.verifier()))
        .await
        .unwrap();
    assert!(report.ok && report.checkpoints == 2, "{report:?}");
}
