//! The guards around identity, over HTTP against the real application: registration
//! validation (no mass assignment), TOTP second factor (each code once, recovery codes
//! once), account lockout, enumeration resistance, the per-address login throttle, rate
//! limits (trusted proxies only), platform roles, secrets kept out of answers and out of
//! the database, and `carelog users create`.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carelog::app::Services;
use carelog_api::state::ApiConfig;
use carelog_commands::identity::IdentityConfig;
use carelog_crypto::password::PasswordHasher;
use carelog_crypto::{Keyring, MasterKey, TokenKeys, TotpSecret};
use carelog_domain::user::lockout::LockoutPolicy;
use carelog_domain::{Role, StreamVersion, UserId};
use carelog_store::Opened;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::app::{no_limits, session_of, Resp, PASSWORD};
use crate::support::mfa::base32_decode;
use crate::support::{TestApp, TestDb};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn unique_email() -> String {
    format!("{}@example.org", Uuid::now_v7().simple())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 6-digit code of TOTP time step `step` (30 s each).
fn code_at(secret: &TotpSecret, step: u64) -> String {
    secret.code(step * 30)
}

/// The current TOTP step, with at least 5 s of it left (waits for the next step
/// otherwise), so that codes of `step - 1 ..= step + 1` computed now are all accepted
/// for a while.
async fn fresh_step() -> u64 {
    let now = unix_now();
    if now % 30 >= 25 {
        tokio::time::sleep(Duration::from_secs(30 - now % 30)).await;
    }
    unix_now() / 30
}

fn register_body(email: &str, password: &str, role: &str) -> Value {
    json!({
        "email": email,
        "password": password,
        "first_name": "Grace",
        "last_name": "Hopper",
        "registration_role": role,
    })
}

/// POSTs `body` verbatim with `content_type`.
async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: &str) -> Resp {
    app.send(
        app.http
            .post(app.url(path))
            .header(CONTENT_TYPE, content_type)
            .body(body.to_owned()),
    )
    .await
}

async fn register_raw(app: &TestApp, body: Value) -> Resp {
    app.post("/api/auth/register", body, None).await
}

async fn login_raw(app: &TestApp, email: &str, password: &str) -> Resp {
    app.post(
        "/api/auth/login",
        json!({"email": email, "password": password}),
        None,
    )
    .await
}

/// Asserts a 400 VALIDATION_ERROR whose `details.fields` is exactly `[field]`.
#[track_caller]
fn assert_field_error(r: &Resp, field: &str) {
    assert_eq!(
        (r.status, r.code()),
        (400, "VALIDATION_ERROR"),
        "{field}: {:?}",
        r.body
    );
    assert_eq!(r.body["success"], false);
    assert_eq!(
        r.body["error"]["details"]["fields"],
        json!([field]),
        "{:?}",
        r.body
    );
}

/// `(event_type, metadata)` of the user's stream, in order.
async fn user_events(app: &TestApp, user: Uuid) -> Vec<(String, Value)> {
    sqlx::query_as::<_, (String, Value)>(
        "SELECT event_type, metadata FROM events WHERE stream_id = $1 ORDER BY version",
    )
    .bind(format!("user-{user}"))
    .fetch_all(&app.db.pool)
    .await
    .expect("events readable")
}

async fn user_event_types(app: &TestApp, user: Uuid) -> Vec<String> {
    user_events(app, user)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// The decrypted payloads of the user's stream (through the application's own store).
async fn user_payloads(app: &TestApp, user: Uuid) -> Vec<(String, Value)> {
    let store = &app.services.store;
    let stored = store
        .read_stream(&UserId(user).stream(), StreamVersion::EMPTY, 100)
        .await
        .expect("stream readable");
    let mut out = Vec::new();
    for s in &stored {
        let Opened::Payload(p) = store.open(s).await.expect("opens") else {
            panic!("erased?")
        };
        out.push((s.header.event_type.as_str().to_owned(), p));
    }
    out
}

async fn me(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/auth/me", Some(token)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].clone()
}

fn header_u64(r: &Resp, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", r.headers))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number of seconds"))
}

async fn user_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. Registration validation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn registration_refuses_each_invalid_field_by_name_and_accepts_no_roles() {
    let app = TestApp::spawn().await;
    let register = |body: Value| register_raw(&app, body);

    // A missing field.
    let mut body = register_body(&unique_email(), PASSWORD, "DOCTOR");
    body.as_object_mut().unwrap().remove("last_name");
    assert_field_error(&register(body).await, "last_name");

    // Mass assignment: an unknown field is refused, and nothing was created.
    let mallory = "mallory@example.org";
    let mut body = register_body(mallory, PASSWORD, "DOCTOR");
    body["roles"] = json!(["SUPER:ADMIN"]);
    let r = register(body).await;
    assert_field_error(&r, "roles");
    let login = login_raw(&app, mallory, PASSWORD).await;
    assert_eq!((login.status, login.code()), (401, "UNAUTHORIZED"));
    assert_eq!(user_count(&app).await, 0, "no account exists");

    // Malformed JSON: 400, saying where it broke.
    let r = post_raw(
        &app,
        "/api/auth/register",
        "application/json",
        r#"{"email": "x@example.org", "password": "#,
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "VALIDATION_ERROR"),
        "{:?}",
        r.body
    );
    assert!(r.body["error"]["details"]["line"].is_u64(), "{:?}", r.body);
    assert!(
        r.body["error"]["details"]["column"].is_u64(),
        "{:?}",
        r.body
    );

    // A JSON body under another content type is still refused.
    let valid = register_body(&unique_email(), PASSWORD, "DOCTOR").to_string();
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = post_raw(&app, "/api/auth/register", ct, &valid).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "VALIDATION_ERROR"),
            "{ct}: {:?}",
            r.body
        );
    }
    assert_eq!(user_count(&app).await, 0);

    // Bad email, empty names.
    for bad in [
        "not-an-email",
        "a@b",
        "@example.org",
        "two words@example.org",
    ] {
        assert_field_error(
            &register(register_body(bad, PASSWORD, "DOCTOR")).await,
            "email",
        );
    }
    for (field, value) in [("first_name", ""), ("last_name", "   ")] {
        let mut body = register_body(&unique_email(), PASSWORD, "DOCTOR");
        body[field] = json!(value);
        assert_field_error(&register(body).await, field);
    }

    // The password policy: length, common, the email's local part. Never echoed.
    let too_long: String = "gravel lantern quince "
        .repeat(6)
        .chars()
        .take(129)
        .collect();
    for (password, words) in [
        ("mauve kettl", "at least 12"),
        (too_long.as_str(), "at most 128"),
        ("password1234", "too common"),
        ("qwertyuiop12", "too common"),
    ] {
        let r = register(register_body(&unique_email(), password, "PATIENT")).await;
        assert_field_error(&r, "password");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{password:?}: {message}");
        assert!(!r.body.to_string().contains(password), "password echoed");
    }
    let r = register(register_body(
        "harriet.vane@example.org",
        "orbit Harriet.Vane kettle",
        "PATIENT",
    ))
    .await;
    assert_field_error(&r, "password");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must not contain your email"),
        "{:?}",
        r.body
    );

    // Only DOCTOR, PATIENT, STAFF.
    for role in ["ADMIN", "SUPER:ADMIN", "doctor", ""] {
        assert_field_error(
            &register(register_body(&unique_email(), PASSWORD, role)).await,
            "registration_role",
        );
    }
    assert_eq!(
        user_count(&app).await,
        0,
        "no refused registration left a row"
    );

    // A duplicate email, whatever its case.
    let first = register(register_body("Dup.Licate@Example.org", PASSWORD, "DOCTOR")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = register(register_body(
        " dup.licate@EXAMPLE.ORG",
        PASSWORD,
        "PATIENT",
    ))
    .await;
    assert_eq!(
        (again.status, again.code()),
        (409, "CONFLICT"),
        "{:?}",
        again.body
    );
    assert_eq!(user_count(&app).await, 1);
    let s = app.login("dup.licate@example.org").await;
    assert_eq!(me(&app, &s.token).await["roles"], json!(["BASE:DOCTOR"]));

    // STAFF: no base role, acts through memberships only.
    let staff = unique_email();
    let r = register(register_body(&staff, PASSWORD, "STAFF")).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["data"]["user"]["roles"], json!([]));
    let s = app.login(&staff).await;
    let me = me(&app, &s.token).await;
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["memberships"], json!([]));
    assert_eq!(me["mfa_enabled"], false);
    assert_eq!(me["first_name"], "Grace");
}

// ---------------------------------------------------------------------------------------
// 2. MFA
// ---------------------------------------------------------------------------------------

/// Logs in with the right password and expects the second factor to be owed: the
/// `mfa_token`.
async fn mfa_login(app: &TestApp, email: &str) -> String {
    let r = login_raw(app, email, PASSWORD).await;
    assert_eq!((r.status, r.code()), (401, "MFA_REQUIRED"), "{:?}", r.body);
    assert!(r.body["data"].is_null(), "no session: {:?}", r.body);
    r.body["error"]["details"]["mfa_token"]
        .as_str()
        .expect("details.mfa_token")
        .to_owned()
}

async fn challenge(app: &TestApp, mfa_token: String, code: String) -> Resp {
    app.post(
        "/api/auth/mfa/challenge",
        json!({"mfa_token": mfa_token, "code": code}),
        None,
    )
    .await
}

async fn disable(app: &TestApp, token: &str, password: &str, code: &str) -> Resp {
    app.post(
        "/api/auth/mfa/disable",
        json!({"password": password, "code": code}),
        Some(token),
    )
    .await
}

async fn failed_logins(app: &TestApp, user: Uuid) -> i32 {
    sqlx::query_scalar("SELECT failed_logins FROM users WHERE user_id = $1")
        .bind(user)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn mfa_accepts_each_code_once_recovery_codes_once_and_turns_off_only_with_password_and_code()
{
    let app = TestApp::spawn().await;
    let email = unique_email();
    let user = app.register(&email, "PATIENT").await;
    let s = app.login(&email).await;

    let anonymous = app.post("/api/auth/mfa/enroll", json!({}), None).await;
    assert_eq!((anonymous.status, anonymous.code()), (401, "UNAUTHORIZED"));

    // Enrol: a secret and its otpauth URI, never cached.
    let enrolled = app
        .post("/api/auth/mfa/enroll", json!({}), Some(&s.token))
        .await;
    assert_eq!(enrolled.status, 200, "{:?}", enrolled.body);
    assert_eq!(enrolled.header("cache-control"), Some("no-store"));
    let b32 = enrolled.body["data"]["secret"].as_str().unwrap().to_owned();
    let uri = enrolled.body["data"]["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    for part in [
        format!("secret={b32}"),
        "algorithm=SHA1".into(),
        "digits=6".into(),
        "period=30".into(),
        "issuer=carelog".into(),
    ] {
        assert!(uri.contains(&part), "{part} not in {uri}");
    }
    assert!(!b32.contains('='), "no padding");
    let secret = TotpSecret::from_bytes(&base32_decode(&b32)).expect("a 20-byte secret");
    assert_eq!(secret.base32(), b32);

    // Enrolled but unconfirmed: not yet in force.
    assert_eq!(me(&app, &s.token).await["mfa_enabled"], false);
    assert_eq!(login_raw(&app, &email, PASSWORD).await.status, 200);

    // Three consecutive steps: each can be used once. The previous step's code is
    // accepted (one step of clock drift either side), which leaves this step's and the
    // next one's for later without waiting for the clock.
    let step = fresh_step().await;
    let verified = app
        .post(
            "/api/auth/mfa/verify",
            json!({"code": code_at(&secret, step - 1)}),
            Some(&s.token),
        )
        .await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    assert_eq!(verified.header("cache-control"), Some("no-store"));
    let codes: Vec<String> = verified.body["data"]["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10, "distinct");
    assert_eq!(me(&app, &s.token).await["mfa_enabled"], true);

    // Already on: enrolling (or verifying) again is a conflict.
    let again = app
        .post("/api/auth/mfa/enroll", json!({}), Some(&s.token))
        .await;
    assert_eq!((again.status, again.code()), (409, "CONFLICT"));

    // The password alone no longer opens a session.
    let token = mfa_login(&app, &email).await;
    let ok = challenge(&app, token, code_at(&secret, step)).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let session = session_of(&ok);
    assert_eq!(session.user_id, user);
    assert_eq!(me(&app, &session.token).await["mfa_enabled"], true);

    // The same code again, within its window, with a fresh mfa_token: refused.
    let replay = challenge(&app, mfa_login(&app, &email).await, code_at(&secret, step)).await;
    assert_eq!(
        (replay.status, replay.code()),
        (401, "UNAUTHORIZED"),
        "{:?}",
        replay.body
    );
    assert_eq!(
        failed_logins(&app, user).await,
        1,
        "a replay counts as a failure"
    );

    // A recovery code works once, and only once.
    let recovered = challenge(&app, mfa_login(&app, &email).await, codes[0].clone()).await;
    assert_eq!(recovered.status, 200, "{:?}", recovered.body);
    assert_eq!(
        failed_logins(&app, user).await,
        0,
        "a success clears the count"
    );
    let reused = challenge(&app, mfa_login(&app, &email).await, codes[0].clone()).await;
    assert_eq!((reused.status, reused.code()), (401, "UNAUTHORIZED"));
    // ...and the others are untouched (typed in capitals).
    let other = challenge(&app, mfa_login(&app, &email).await, codes[1].to_uppercase()).await;
    assert_eq!(other.status, 200, "{:?}", other.body);

    // A wrong code counts towards lockout.
    let used: HashSet<String> = (step - 1..=step + 2).map(|s| code_at(&secret, s)).collect();
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !used.contains(*c))
        .unwrap();
    let r = challenge(&app, mfa_login(&app, &email).await, wrong.to_owned()).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));
    assert_eq!(failed_logins(&app, user).await, 1);
    let types = user_event_types(&app, user).await;
    assert_eq!(types.last().map(String::as_str), Some("LoginFailed"));
    assert_eq!(types.iter().filter(|t| *t == "LoginFailed").count(), 3);
    let payloads = user_payloads(&app, user).await;
    let (_, last) = payloads.last().unwrap();
    assert_eq!(last["reason"], "mfa", "{last}");

    // Turning MFA off needs the password and a code.
    let next = code_at(&secret, step + 1);
    let r = disable(&app, &session.token, "not the password at all", &next).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{:?}", r.body);
    let payloads = user_payloads(&app, user).await;
    assert_eq!(payloads.last().unwrap().1["reason"], "password");
    let r = disable(&app, &session.token, PASSWORD, wrong).await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "{:?}", r.body);
    let payloads = user_payloads(&app, user).await;
    assert_eq!(payloads.last().unwrap().1["reason"], "mfa");
    let r = app
        .post(
            "/api/auth/mfa/disable",
            json!({"password": PASSWORD}),
            Some(&session.token),
        )
        .await;
    assert_field_error(&r, "code");
    assert_eq!(
        me(&app, &session.token).await["mfa_enabled"],
        true,
        "still on"
    );
    let r = disable(&app, &session.token, PASSWORD, &next).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["user"]["mfa_enabled"], false);
    assert_eq!(me(&app, &session.token).await["mfa_enabled"], false);
    assert_eq!(
        app.login(&email).await.user_id,
        user,
        "password alone again"
    );
    let types = user_event_types(&app, user).await;
    for t in ["MfaEnrolled", "MfaEnabled", "MfaDisabled"] {
        assert_eq!(
            types.iter().filter(|x| *x == t).count(),
            1,
            "{t}: {types:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Lockout
// ---------------------------------------------------------------------------------------

fn lockout(threshold: u32, base: chrono::Duration) -> IdentityConfig {
    IdentityConfig {
        lockout: LockoutPolicy {
            threshold,
            base,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn three_wrong_passwords_lock_the_account_and_even_the_right_one_is_refused_while_locked() {
    let app = TestApp::spawn_with(no_limits(), lockout(3, chrono::Duration::minutes(1))).await;
    let email = unique_email();
    let user = app.register(&email, "DOCTOR").await;

    for i in 1..=2 {
        let r = login_raw(&app, &email, "wrong password number one").await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "attempt {i}");
    }
    let locked = login_raw(&app, &email, "wrong password number one").await;
    assert_eq!(
        (locked.status, locked.code()),
        (423, "ACCOUNT_LOCKED"),
        "{:?}",
        locked.body
    );
    let retry = header_u64(&locked, "retry-after");
    assert!(
        (55..=60).contains(&retry),
        "first lock is the 1-minute base: {retry}"
    );
    assert_eq!(locked.body["error"]["details"]["retry_after_secs"], retry);

    // The right password during the lock: still 423, and it leaves no trace.
    let right = login_raw(&app, &email, PASSWORD).await;
    assert_eq!((right.status, right.code()), (423, "ACCOUNT_LOCKED"));
    assert!(header_u64(&right, "retry-after") >= 1);
    assert!(right.body.get("data").is_none() || right.body["data"].is_null());

    assert_eq!(
        user_event_types(&app, user).await,
        [
            "UserRegistered",
            "LoginFailed",
            "LoginFailed",
            "LoginFailed",
            "AccountLocked"
        ]
    );
    let payloads = user_payloads(&app, user).await;
    assert_eq!(payloads[1].1["reason"], "password");
    assert_eq!(payloads[4].1["failures"], 3);
    let (locked_until,): (Option<chrono::DateTime<chrono::Utc>>,) =
        sqlx::query_as("SELECT locked_until FROM users WHERE user_id = $1")
            .bind(user)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let left = locked_until.expect("locked") - chrono::Utc::now();
    assert!(left > chrono::Duration::seconds(50), "{left}");
}

/// Three wrong passwords; the `Retry-After` of the lock they cause.
async fn lock_out(app: &TestApp, email: &str) -> u64 {
    for _ in 0..2 {
        assert_eq!(login_raw(app, email, "not my password!").await.status, 401);
    }
    let r = login_raw(app, email, "not my password!").await;
    assert_eq!(
        (r.status, r.code()),
        (423, "ACCOUNT_LOCKED"),
        "{:?}",
        r.body
    );
    header_u64(&r, "retry-after")
}

#[tokio::test]
async fn a_lock_expires_and_the_next_lock_lasts_longer() {
    let app = TestApp::spawn_with(no_limits(), lockout(3, chrono::Duration::seconds(2))).await;
    let email = unique_email();
    let user = app.register(&email, "PATIENT").await;

    let first = lock_out(&app, &email).await;
    assert_eq!(first, 2, "the 2 s base");
    assert_eq!(login_raw(&app, &email, PASSWORD).await.status, 423);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        app.login(&email).await.user_id,
        user,
        "unlocked after the lock"
    );

    let second = lock_out(&app, &email).await;
    assert!(
        second >= 3 && second > first,
        "the second lock is longer: {second}"
    );
    assert_eq!(login_raw(&app, &email, PASSWORD).await.status, 423);

    let types = user_event_types(&app, user).await;
    let failed = types.iter().filter(|t| *t == "LoginFailed").count();
    let locks = types.iter().filter(|t| *t == "AccountLocked").count();
    assert_eq!((failed, locks), (6, 2), "{types:?}");
    let payloads = user_payloads(&app, user).await;
    let untils: Vec<chrono::DateTime<chrono::Utc>> = payloads
        .iter()
        .filter(|(t, _)| t == "AccountLocked")
        .map(|(_, p)| serde_json::from_value(p["until"].clone()).unwrap())
        .collect();
    assert!(untils[1] > untils[0]);
}

#[tokio::test]
async fn a_locked_account_cannot_confirm_or_turn_off_mfa_from_a_live_session() {
    let app = TestApp::spawn_with(no_limits(), lockout(3, chrono::Duration::minutes(1))).await;
    let email = unique_email();
    let user = app.register(&email, "DOCTOR").await;
    let s = app.login(&email).await;
    let enrolled = app
        .post("/api/auth/mfa/enroll", json!({}), Some(&s.token))
        .await;
    let b32 = enrolled.body["data"]["secret"].as_str().unwrap().to_owned();
    let secret = TotpSecret::from_bytes(&base32_decode(&b32)).unwrap();

    // Locked by wrong passwords elsewhere, while this session lives on.
    assert_eq!(lock_out(&app, &email).await, 60);
    let step = fresh_step().await;
    let r = app
        .post(
            "/api/auth/mfa/verify",
            json!({"code": code_at(&secret, step)}),
            Some(&s.token),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (423, "ACCOUNT_LOCKED"),
        "{:?}",
        r.body
    );
    assert!(header_u64(&r, "retry-after") >= 1);
    assert_eq!(me(&app, &s.token).await["mfa_enabled"], false);

    // Turn it on out of the lock, then lock again: turning it off is refused too, even
    // with the right password and code, and the refusal does not spend the code.
    sqlx::query("UPDATE users SET locked_until = NULL WHERE user_id = $1")
        .bind(user)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let r = app
        .post(
            "/api/auth/mfa/verify",
            json!({"code": code_at(&secret, step)}),
            Some(&s.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let before = user_event_types(&app, user).await.len();
    for _ in 0..2 {
        assert_eq!(
            login_raw(&app, &email, "not my password!").await.status,
            401
        );
    }
    let r = login_raw(&app, &email, "not my password!").await;
    assert_eq!(r.status, 423);
    let locked_events = user_event_types(&app, user).await.len();
    assert_eq!(locked_events, before + 4, "3 failures and a lock");
    let r = disable(&app, &s.token, PASSWORD, &code_at(&secret, step + 1)).await;
    assert_eq!(
        (r.status, r.code()),
        (423, "ACCOUNT_LOCKED"),
        "{:?}",
        r.body
    );
    let r = disable(
        &app,
        &s.token,
        "guess number one!",
        &code_at(&secret, step + 1),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (423, "ACCOUNT_LOCKED"),
        "{:?}",
        r.body
    );
    assert_eq!(me(&app, &s.token).await["mfa_enabled"], true, "still on");
    assert_eq!(
        user_event_types(&app, user).await.len(),
        locked_events,
        "guesses during the lock are not even counted"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Enumeration
// ---------------------------------------------------------------------------------------

/// The application wired as [`TestApp::spawn`] wires it, but hashing passwords at the
/// production Argon2id cost (19 MiB, 2 passes) instead of the harness's cheap one. Serves
/// until the test ends; the database is dropped with the returned [`TestDb`].
async fn spawn_at_production_cost() -> (TestDb, String) {
    let db = TestDb::new().await;
    let token_key = carelog_crypto::token_key::generate_paserk_secret();
    let tokens = TokenKeys::new(&token_key, &[], "carelog", "carelog").expect("token key");
    let keyring = Keyring::new(MasterKey::generate(), []);
    let services = Services::start(
        db.pool.clone(),
        keyring,
        tokens,
        IdentityConfig::default(),
        PasswordHasher::default(),
    )
    .await
    .expect("services start");
    let router = services
        .router(no_limits(), None, &carelog_bus::BusConfig::default())
        .await
        .expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(carelog_api::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    (db, base)
}

/// A login at `base`, as a [`Resp`].
async fn login_at(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Resp {
    let r = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

/// What a client can tell apart in a refused login.
fn refusal_shape(r: &Resp) -> (u16, String, Value, Value, Option<String>) {
    (
        r.status,
        r.code().to_owned(),
        r.body["error"]["message"].clone(),
        r.body["error"]["details"].clone(),
        r.header("www-authenticate").map(str::to_owned),
    )
}

/// Logs in with an unknown email and with `known`'s wrong password: one warm-up each,
/// then 5 each, interleaved so drift affects both alike. Asserts the answers are
/// identical; returns the mean times (unknown email, wrong password).
async fn time_refusals(http: &reqwest::Client, base: &str, known: &str) -> (Duration, Duration) {
    let unknown = unique_email();
    let wrong = "a wrong but plausible password";
    let a = login_at(http, base, &unknown, wrong).await;
    let b = login_at(http, base, known, wrong).await;
    assert_eq!((a.status, a.code()), (401, "UNAUTHORIZED"), "{:?}", a.body);
    assert_eq!(
        refusal_shape(&a),
        refusal_shape(&b),
        "{:?} vs {:?}",
        a.body,
        b.body
    );
    let (mut t_unknown, mut t_wrong) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        let t = Instant::now();
        let a = login_at(http, base, &unknown, wrong).await;
        t_unknown += t.elapsed();
        let t = Instant::now();
        let b = login_at(http, base, known, wrong).await;
        t_wrong += t.elapsed();
        assert_eq!(refusal_shape(&a), refusal_shape(&b));
    }
    (t_unknown / 5, t_wrong / 5)
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_answer_identically_and_in_similar_time() {
    // The harness hashes with a cheap Argon2 cost (1 MiB, one pass: about a millisecond),
    // so there the database work of counting a failure (a row update and an appended,
    // sealed LoginFailed event, committed) dominates the wrong-password path and the
    // unknown-email path is several times faster. Measured there for the record only.
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, "DOCTOR").await;
    let (cheap_unknown, cheap_wrong) = time_refusals(&app.http, &app.base, &email).await;
    println!(
        "login timing, harness Argon2 cost: unknown email {cheap_unknown:?}, \
         wrong password {cheap_wrong:?}"
    );

    // What an attacker meets: the production cost, where the Argon2id work (a real verify,
    // or a dummy one for an unknown email) dominates both paths.
    let (_db, base) = spawn_at_production_cost().await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/auth/register"))
        .json(&register_body(&email, PASSWORD, "DOCTOR"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (unknown, wrong) = time_refusals(&http, &base, &email).await;
    println!(
        "login timing, production Argon2 cost: unknown email {unknown:?}, wrong password {wrong:?}"
    );
    let (fast, slow) = (unknown.min(wrong), unknown.max(wrong));
    assert!(
        slow <= fast * 3,
        "unknown email {unknown:?} vs wrong password {wrong:?}"
    );
    // Sanity: the unknown email really paid for a (dummy) hash at the production cost.
    assert!(unknown > cheap_unknown, "{unknown:?} vs {cheap_unknown:?}");
}

// ---------------------------------------------------------------------------------------
// 5. Per-address login throttle
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn more_than_100_failed_logins_from_one_address_are_throttled_for_every_account() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    app.register(&email, "DOCTOR").await;

    // "More than 100 failures in 15 minutes": the 101st is still answered as a failure.
    for i in 1..=101 {
        let r = login_raw(&app, &format!("nobody-{i}@example.org"), PASSWORD).await;
        assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"), "failure {i}");
    }
    let r = login_raw(&app, "nobody-102@example.org", PASSWORD).await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{:?}", r.body);
    let retry = header_u64(&r, "retry-after");
    assert!(
        (1..=900).contains(&retry),
        "within the 15-minute window: {retry}"
    );
    assert_eq!(header_u64(&r, "ratelimit-remaining"), 0);
    // The address is throttled, whatever the account: the right password too, and the
    // second-factor step.
    let right = login_raw(&app, &email, PASSWORD).await;
    assert_eq!((right.status, right.code()), (429, "RATE_LIMITED"));
    let r = challenge(&app, "v4.public.whatever".into(), "123456".into()).await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"));
    // Only the credential checks: the rest of the API still answers.
    assert_eq!(app.get("/api/auth/keys", None).await.status, 200);
    let staff = unique_email();
    assert_eq!(
        register_raw(&app, register_body(&staff, PASSWORD, "STAFF"))
            .await
            .status,
        201
    );
}

// ---------------------------------------------------------------------------------------
// 6. Rate limits
// ---------------------------------------------------------------------------------------

fn limited(trusted_proxies: Vec<std::net::IpAddr>) -> ApiConfig {
    ApiConfig {
        rate_limiting_enabled: true,
        auth_rate_per_min: 5,
        rate_per_min: 8,
        trusted_proxies,
        ..Default::default()
    }
}

async fn get_from(app: &TestApp, path: &str, forwarded_for: Option<&str>) -> Resp {
    let mut req = app.http.get(app.url(path));
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    app.send(req).await
}

#[track_caller]
fn assert_rate_limited(r: &Resp, limit: u64) {
    assert_eq!((r.status, r.code()), (429, "RATE_LIMITED"), "{:?}", r.body);
    let retry = header_u64(r, "retry-after");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(header_u64(r, "ratelimit-limit"), limit);
    assert_eq!(header_u64(r, "ratelimit-remaining"), 0);
    assert!(header_u64(r, "ratelimit-reset") >= retry);
}

#[tokio::test]
async fn the_rate_limits_answer_429_with_headers_and_never_limit_health_probes() {
    let app = TestApp::spawn_with(limited(vec![]), IdentityConfig::default()).await;

    for i in 0..5u64 {
        let r = get_from(&app, "/api/auth/keys", None).await;
        assert_eq!(r.status, 200, "request {}", i + 1);
        assert_eq!(header_u64(&r, "ratelimit-limit"), 5);
        assert_eq!(header_u64(&r, "ratelimit-remaining"), 4 - i);
        assert!(header_u64(&r, "ratelimit-reset") <= 60);
    }
    assert_rate_limited(&get_from(&app, "/api/auth/keys", None).await, 5);
    // Every /api/auth route shares the budget.
    let r = login_raw(&app, "someone@example.org", PASSWORD).await;
    assert_rate_limited(&r, 5);

    // An untrusted peer's X-Forwarded-For buys no new budget.
    for xff in ["203.0.113.7", "203.0.113.8, 198.51.100.1"] {
        assert_rate_limited(&get_from(&app, "/api/auth/keys", Some(xff)).await, 5);
    }

    // Probes are never limited (and carry no RateLimit headers).
    for _ in 0..30 {
        let r = get_from(&app, "/health/live", None).await;
        assert_eq!(r.status, 200);
        assert!(r.header("ratelimit-limit").is_none());
    }

    // Everything else has its own, larger budget.
    for i in 0..8u64 {
        let r = get_from(&app, "/openapi.json", None).await;
        assert_eq!(r.status, 200, "request {}", i + 1);
        assert_eq!(header_u64(&r, "ratelimit-limit"), 8);
        assert_eq!(header_u64(&r, "ratelimit-remaining"), 7 - i);
    }
    assert_rate_limited(&get_from(&app, "/openapi.json", None).await, 8);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_budget() {
    let proxy: Vec<std::net::IpAddr> = vec!["127.0.0.1".parse().unwrap()];
    let app = TestApp::spawn_with(limited(proxy.clone()), IdentityConfig::default()).await;
    // This client reaches the app over loopback: its peer address is the trusted proxy.
    assert_eq!(app.addr.ip(), proxy[0]);
    let a = "198.51.100.1";
    for _ in 0..5 {
        assert_eq!(get_from(&app, "/api/auth/keys", Some(a)).await.status, 200);
    }
    assert_rate_limited(&get_from(&app, "/api/auth/keys", Some(a)).await, 5);
    // A client-chosen leftmost entry is not believed: the rightmost untrusted hop is.
    let spoof = format!("192.0.2.99, {a}");
    assert_rate_limited(&get_from(&app, "/api/auth/keys", Some(&spoof)).await, 5);

    let b = get_from(&app, "/api/auth/keys", Some("198.51.100.2")).await;
    assert_eq!(b.status, 200);
    assert_eq!(header_u64(&b, "ratelimit-remaining"), 4, "a fresh budget");
    let via_two = get_from(&app, "/api/auth/keys", Some("198.51.100.3, 127.0.0.1")).await;
    assert_eq!(via_two.status, 200, "through two trusted hops");
    assert_eq!(header_u64(&via_two, "ratelimit-remaining"), 4);
    let proxy_itself = get_from(&app, "/api/auth/keys", None).await;
    assert_eq!(proxy_itself.status, 200);
    assert_eq!(header_u64(&proxy_itself, "ratelimit-remaining"), 4);
}

// ---------------------------------------------------------------------------------------
// 7. Platform roles
// ---------------------------------------------------------------------------------------

async fn grant(app: &TestApp, token: &str, target: &str, role: &str, request_id: &str) -> Resp {
    app.send(
        app.http
            .post(app.url(&format!("/api/admin/users/{target}/roles")))
            .bearer_auth(token)
            .header("x-request-id", request_id)
            .json(&json!({ "role": role })),
    )
    .await
}

async fn revoke(app: &TestApp, token: &str, target: &str, role: &str, request_id: &str) -> Resp {
    app.send(
        app.http
            .delete(app.url(&format!("/api/admin/users/{target}/roles/{role}")))
            .bearer_auth(token)
            .header("x-request-id", request_id),
    )
    .await
}

#[tokio::test]
async fn a_super_admin_grants_and_revokes_platform_roles_as_events_naming_actor_and_request() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let target = app.user("DOCTOR").await;
    let id = target.user_id.to_string();

    let grant_rid = format!("grant-{}", Uuid::now_v7().simple());
    let r = grant(&app, &admin.token, &id, "APP:AUDITOR", &grant_rid).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.header("x-request-id"), Some(grant_rid.as_str()));
    assert_eq!(
        r.body["data"]["user"]["roles"],
        json!(["BASE:DOCTOR", "APP:AUDITOR"])
    );
    // The target's existing token sees the role at once (roles are current state).
    assert_eq!(
        me(&app, &target.token).await["roles"],
        json!(["BASE:DOCTOR", "APP:AUDITOR"])
    );
    // Granting a held role again changes nothing.
    let r = grant(&app, &admin.token, &id, "APP:AUDITOR", "grant-again").await;
    assert_eq!(r.status, 200);

    let revoke_rid = format!("revoke-{}", Uuid::now_v7().simple());
    let r = revoke(&app, &admin.token, &id, "APP:AUDITOR", &revoke_rid).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(r.body, Value::Null);
    assert_eq!(
        me(&app, &target.token).await["roles"],
        json!(["BASE:DOCTOR"])
    );

    let events = user_events(&app, target.user_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["UserRegistered", "RoleGranted", "RoleRevoked"]);
    for ((_, metadata), rid) in events[1..].iter().zip([&grant_rid, &revoke_rid]) {
        assert_eq!(
            metadata["actor_id"],
            admin.user_id.to_string(),
            "{metadata}"
        );
        assert_eq!(metadata["request_id"], rid.as_str(), "{metadata}");
        assert!(
            metadata["roles"]
                .as_array()
                .unwrap()
                .contains(&json!("SUPER:ADMIN")),
            "{metadata}"
        );
    }
    let payloads = user_payloads(&app, target.user_id).await;
    assert_eq!(payloads[1].1["role"], "APP:AUDITOR");
    assert_eq!(payloads[2].1["role"], "APP:AUDITOR");
}

#[tokio::test]
async fn only_a_super_admin_changes_platform_roles_and_only_to_valid_ones() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let app_admin = app.platform_user(Role::AppAdmin).await;
    let doctor = app.user("DOCTOR").await;
    let target = app.user("PATIENT").await;
    let id = target.user_id.to_string();

    for (who, token) in [("APP:ADMIN", &app_admin.token), ("doctor", &doctor.token)] {
        let r = grant(&app, token, &id, "APP:AUDITOR", "nope").await;
        assert_eq!(
            (r.status, r.code()),
            (403, "FORBIDDEN"),
            "{who}: {:?}",
            r.body
        );
        let r = revoke(
            &app,
            token,
            &admin.user_id.to_string(),
            "SUPER:ADMIN",
            "nope",
        )
        .await;
        assert_eq!(
            (r.status, r.code()),
            (403, "FORBIDDEN"),
            "{who}: {:?}",
            r.body
        );
    }
    // Not even to themselves.
    let r = grant(
        &app,
        &doctor.token,
        &doctor.user_id.to_string(),
        "SUPER:ADMIN",
        "x",
    )
    .await;
    assert_eq!(r.status, 403);
    let r = app
        .post(
            &format!("/api/admin/users/{id}/roles"),
            json!({"role": "APP:AUDITOR"}),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHORIZED"));

    // Only platform roles, only known ones.
    for role in ["ORG:ADMIN", "NOPE", "BASE:DOCTOR", ""] {
        let r = grant(&app, &admin.token, &id, role, "bad-role").await;
        assert_field_error(&r, "role");
    }
    let r = revoke(&app, &admin.token, &id, "ORG:ADMIN", "bad-role").await;
    assert_field_error(&r, "role");
    let r = app
        .post(
            &format!("/api/admin/users/{id}/roles"),
            json!({"role": "APP:AUDITOR", "user_id": admin.user_id}),
            Some(&admin.token),
        )
        .await;
    assert_field_error(&r, "user_id");

    let unknown = Uuid::now_v7().to_string();
    let r = grant(&app, &admin.token, &unknown, "APP:AUDITOR", "unknown").await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    let r = revoke(&app, &admin.token, &unknown, "APP:AUDITOR", "unknown").await;
    assert_eq!((r.status, r.code()), (404, "NOT_FOUND"), "{:?}", r.body);
    let r = grant(&app, &admin.token, "not-a-uuid", "APP:AUDITOR", "malformed").await;
    assert_field_error(&r, "id");

    // A SUPER:ADMIN cannot demote themselves.
    let me_id = admin.user_id.to_string();
    let r = revoke(&app, &admin.token, &me_id, "SUPER:ADMIN", "self").await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT"), "{:?}", r.body);
    assert_eq!(
        me(&app, &admin.token).await["roles"],
        json!(["SUPER:ADMIN"])
    );

    // Nothing of the refused attempts reached the log.
    assert_eq!(
        user_event_types(&app, target.user_id).await,
        ["UserRegistered"]
    );
    assert_eq!(
        user_event_types(&app, admin.user_id).await,
        ["UserRegistered", "RoleGranted"]
    );
    assert_eq!(
        me(&app, &target.token).await["roles"],
        json!(["BASE:PATIENT"])
    );
}

// ---------------------------------------------------------------------------------------
// 8. Secrets nowhere
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn no_password_hash_totp_secret_or_plaintext_email_leaks_into_answers_or_the_database() {
    let app = TestApp::spawn().await;
    let email = format!("secret.keeper.{}@example.org", Uuid::now_v7().simple());
    let mut bodies: Vec<String> = Vec::new();
    let mut keep = |r: &Resp| bodies.push(r.body.to_string());

    let r = app
        .post(
            "/api/auth/register",
            register_body(&email, PASSWORD, "DOCTOR"),
            None,
        )
        .await;
    assert_eq!(r.status, 201);
    keep(&r);
    let user: Uuid = r.body["data"]["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let r = login_raw(&app, &email, PASSWORD).await;
    keep(&r);
    let s = session_of(&r);

    // The enrolment answer is the one place the secret is shown (by design): not kept.
    let enrolled = app
        .post("/api/auth/mfa/enroll", json!({}), Some(&s.token))
        .await;
    let b32 = enrolled.body["data"]["secret"].as_str().unwrap().to_owned();
    let raw = base32_decode(&b32);
    let secret = TotpSecret::from_bytes(&raw).unwrap();
    let step = fresh_step().await;
    let r = app
        .post(
            "/api/auth/mfa/verify",
            json!({"code": code_at(&secret, step)}),
            Some(&s.token),
        )
        .await;
    assert_eq!(r.status, 200);
    keep(&r);
    let recovery: Vec<String> = r.body["data"]["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let r = login_raw(&app, &email, PASSWORD).await;
    keep(&r);
    let mfa_token = r.body["error"]["details"]["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/api/auth/mfa/challenge",
            json!({"mfa_token": mfa_token, "code": code_at(&secret, step + 1)}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    keep(&r);
    let s = session_of(&r);
    for path in ["/api/auth/me", "/api/auth/keys"] {
        keep(&app.get(path, Some(&s.token)).await);
    }
    let r = app
        .post(
            "/api/auth/refresh",
            json!({"refresh_token": s.refresh_token}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    keep(&r);
    keep(&login_raw(&app, &email, "a wrong password, surely").await);
    let again = app
        .post("/api/auth/mfa/enroll", json!({}), Some(&s.token))
        .await;
    assert_eq!(again.status, 409);
    keep(&again);

    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE user_id = $1")
        .bind(user)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "sanity");
    let hash_tail = hash.rsplit('$').next().unwrap().to_owned();
    let raw_hex = hex(&raw);
    let secrets = [
        ("password hash", hash.clone()),
        ("password hash digest", hash_tail),
        ("TOTP secret (base32)", b32.clone()),
        ("TOTP secret (hex)", raw_hex.clone()),
        ("TOTP secret (HEX)", raw_hex.to_uppercase()),
    ];
    for body in &bodies {
        for (what, s) in &secrets {
            assert!(!body.contains(s.as_str()), "{what} in an answer: {body}");
        }
    }

    let email_hex = hex(email.as_bytes());
    let events = app.db.pg_dump(&["--data-only", "--table=events"]);
    assert!(
        events.contains(&format!("user-{user}")),
        "the dump holds the stream (sanity)"
    );
    for (what, s) in secrets.iter().chain(&[
        ("email", email.clone()),
        ("email (hex)", email_hex.clone()),
        (
            "email local part",
            email.split('@').next().unwrap().to_owned(),
        ),
    ]) {
        assert!(!events.contains(s.as_str()), "{what} in the events table");
    }
    let users = app.db.pg_dump(&["--data-only", "--table=users"]);
    assert!(
        users.contains(&user.to_string()),
        "the dump holds the row (sanity)"
    );
    for (what, s) in [
        ("email", &email),
        ("email (hex)", &email_hex),
        ("TOTP secret (base32)", &b32),
        ("TOTP secret (hex)", &raw_hex),
    ] {
        assert!(!users.contains(s.as_str()), "{what} in the users table");
    }
    let everything = app.db.pg_dump(&["--data-only", "--table=public.*"]);
    for code in &recovery {
        assert!(
            !everything.contains(code.as_str()),
            "a recovery code is stored in clear"
        );
        assert!(!everything.contains(&code.replace('-', "")));
    }
}

// ---------------------------------------------------------------------------------------
// 9. carelog users create
// ---------------------------------------------------------------------------------------

fn carelog_users_create(app: &TestApp, email: &str, role: &str, password: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carelog"))
        .args([
            "users",
            "create",
            "--email",
            email,
            "--password-stdin",
            "--role",
            role,
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .env("CARELOG_MASTER_KEY", app.master_key.to_hex())
        .env("CARELOG_TOKEN_KEY", &app.token_key)
        .env("LOG_FORMAT", "pretty")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run carelog");
    // The process may exit before reading (a bad --role): a broken pipe is fine.
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes());
    child.wait_with_output().expect("carelog ran")
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn carelog_users_create_makes_a_super_admin_who_logs_in_over_http_and_grants_roles() {
    let app = TestApp::spawn().await;
    let email = format!("Root.{}@Example.org", Uuid::now_v7().simple());
    let out = carelog_users_create(&app, &email, "SUPER:ADMIN", PASSWORD);
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SUPER:ADMIN"), "{stdout}");
    assert!(
        !output_text(&out).contains(PASSWORD),
        "the password is not echoed"
    );

    let admin = app.login(&email.to_lowercase()).await;
    assert!(stdout.contains(&admin.user_id.to_string()), "{stdout}");
    let me_admin = me(&app, &admin.token).await;
    assert_eq!(me_admin["roles"], json!(["SUPER:ADMIN"]));
    assert_eq!(me_admin["email"], email.to_lowercase());

    let target = app.user("DOCTOR").await;
    let r = grant(
        &app,
        &admin.token,
        &target.user_id.to_string(),
        "APP:ADMIN",
        "cli-made",
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        me(&app, &target.token).await["roles"],
        json!(["BASE:DOCTOR", "APP:ADMIN"])
    );

    // The CLI's change is in the log like an API call, with the operator as actor.
    let events = user_events(&app, admin.user_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["UserRegistered", "RoleGranted"]);
    for (_, m) in &events {
        assert_eq!(m["roles"], json!(["OPERATOR"]), "{m}");
        assert_eq!(m["command"], "users create", "{m}");
        assert!(m["request_id"].as_str().unwrap().starts_with("cli-"), "{m}");
    }
}

#[tokio::test]
async fn carelog_users_create_refuses_a_weak_password_or_a_bad_role_with_exit_2() {
    let app = TestApp::spawn().await;
    let email = unique_email();

    let weak = carelog_users_create(&app, &email, "SUPER:ADMIN", "password1234");
    assert_eq!(weak.status.code(), Some(2), "{}", output_text(&weak));
    let text = output_text(&weak);
    assert!(text.contains("too common"), "{text}");
    assert!(
        !text.contains("password1234"),
        "the password is not echoed: {text}"
    );
    let short = carelog_users_create(&app, &email, "SUPER:ADMIN", "short");
    assert_eq!(short.status.code(), Some(2));
    assert!(
        output_text(&short).contains("at least 12"),
        "{}",
        output_text(&short)
    );

    for role in ["KING", "ORG:ADMIN", "super-admin"] {
        let out = carelog_users_create(&app, &email, role, PASSWORD);
        assert_eq!(out.status.code(), Some(2), "{role}: {}", output_text(&out));
        assert!(output_text(&out).contains("--role") || output_text(&out).contains("organisation"));
    }

    assert_eq!(user_count(&app).await, 0, "nothing was created");
    let r = login_raw(&app, &email, PASSWORD).await;
    assert_eq!(r.status, 401);
}
