//! Tokens and sessions over HTTP (API.md "Auth", "Security rules every endpoint follows"):
//! what a bearer token must be to be accepted, that the tokens verify with an independent
//! PASETO v4.public implementation, refresh rotation and theft detection, logout, idle and
//! absolute limits, cookies and CSRF, MFA through refresh, and roles read from current state.

use std::time::Duration as StdDuration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use base64::Engine as _;
use carelog_commands::identity::IdentityConfig;
use carelog_crypto::token_key::generate_paserk_secret;
use carelog_crypto::{Claims, TokenKeys, TokenPurpose};
use carelog_domain::user::session::SessionPolicy;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::app::{no_limits, session_of, Resp, PASSWORD};
use crate::support::mfa::enable_mfa;
use crate::support::TestApp;

/// The header of every carelog token.
const V4_PUBLIC: &str = "v4.public.";
/// The implicit assertion of the default deployment (`carelog:<audience>`).
const ASSERTION: &[u8] = b"carelog:carelog";

// --- An independent PASETO v4.public implementation (ed25519-dalek, not pasetors) ---

/// PASETO's LE64: little-endian, most significant bit cleared.
fn le64(n: u64) -> [u8; 8] {
    (n & (u64::MAX >> 1)).to_le_bytes()
}

/// PASETO's pre-authentication encoding.
fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = le64(pieces.len() as u64).to_vec();
    for piece in pieces {
        out.extend_from_slice(&le64(piece.len() as u64));
        out.extend_from_slice(piece);
    }
    out
}

/// A `v4.public` token taken apart (nothing verified).
struct Parts {
    message: Vec<u8>,
    signature: [u8; 64],
    footer: Vec<u8>,
}

fn split(token: &str) -> Parts {
    let rest = token.strip_prefix(V4_PUBLIC).expect("a v4.public token");
    let (payload, footer) = match rest.split_once('.') {
        Some((p, f)) => (p, B64.decode(f).expect("footer is base64url")),
        None => (rest, Vec::new()),
    };
    let raw = B64.decode(payload).expect("payload is base64url");
    assert!(raw.len() > 64, "payload = message ‖ 64-byte signature");
    let (message, signature) = raw.split_at(raw.len() - 64);
    Parts {
        message: message.to_vec(),
        signature: signature.try_into().expect("64 bytes"),
        footer,
    }
}

/// Signs `message` as a `v4.public` token with `footer` under `assertion`.
fn sign_v4(key: &SigningKey, message: &[u8], footer: &[u8], assertion: &[u8]) -> String {
    let signature = key.sign(&pae(&[V4_PUBLIC.as_bytes(), message, footer, assertion]));
    let mut payload = message.to_vec();
    payload.extend_from_slice(&signature.to_bytes());
    let mut token = format!("{V4_PUBLIC}{}", B64.encode(payload));
    if !footer.is_empty() {
        token.push('.');
        token.push_str(&B64.encode(footer));
    }
    token
}

/// Whether `token`'s signature verifies with `key` under `assertion`.
fn verifies(key: &VerifyingKey, token: &str, assertion: &[u8]) -> bool {
    let p = split(token);
    let signed = pae(&[V4_PUBLIC.as_bytes(), &p.message, &p.footer, assertion]);
    key.verify_strict(&signed, &Signature::from_bytes(&p.signature))
        .is_ok()
}

/// The app's own signing key, from its PASERK `k4.secret` (seed ‖ public key).
fn app_signing_key(app: &TestApp) -> SigningKey {
    let body = app
        .token_key
        .strip_prefix("k4.secret.")
        .expect("k4.secret PASERK");
    let raw = B64.decode(body).expect("base64url");
    assert_eq!(raw.len(), 64);
    let key = SigningKey::from_bytes(raw[..32].try_into().expect("32-byte seed"));
    assert_eq!(
        key.verifying_key().as_bytes()[..],
        raw[32..],
        "seed ‖ public key"
    );
    key
}

/// A fresh Ed25519 key nobody else has.
fn foreign_signing_key() -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    SigningKey::from_bytes(&seed)
}

/// The claims of a token as JSON (not verified).
fn claims_json(token: &str) -> Value {
    serde_json::from_slice(&split(token).message).expect("claims are JSON")
}

/// The claims of a token (not verified).
fn claims_of(token: &str) -> Claims {
    serde_json::from_slice(&split(token).message).expect("carelog claims")
}

/// The footer of a token as JSON (not verified).
fn footer_json(token: &str) -> Value {
    serde_json::from_slice(&split(token).footer).expect("footer is JSON")
}

/// The app's own keys, for minting tokens whose only fault is the one a test puts in.
fn app_keys(app: &TestApp) -> TokenKeys {
    TokenKeys::new(&app.token_key, &[], "carelog", "carelog").expect("token key")
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

// --- HTTP helpers ---

async fn me(app: &TestApp, token: &str) -> Resp {
    app.get("/api/auth/me", Some(token)).await
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Resp {
    app.post(
        "/api/auth/refresh",
        json!({ "refresh_token": refresh_token }),
        None,
    )
    .await
}

/// GET `path` with these raw headers.
async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = app.http.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.send(req).await
}

/// The `Set-Cookie` header that sets `name`, if any.
fn set_cookie<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The attributes of a `Set-Cookie` value after `name=value`.
fn cookie_attrs(cookie: &str) -> Vec<&str> {
    cookie.split(';').skip(1).map(str::trim).collect()
}

/// The value of a `Set-Cookie`.
fn cookie_value(cookie: &str) -> &str {
    cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .unwrap_or("")
}

/// 401 UNAUTHORIZED in the error envelope, with `WWW-Authenticate: Bearer`, and no
/// internals in the body.
#[track_caller]
fn assert_401(r: &Resp, what: &str) {
    assert_eq!(
        (r.status, r.code()),
        (401, "UNAUTHORIZED"),
        "{what}: {:?}",
        r.body
    );
    assert_eq!(r.body["success"], false, "{what}: {:?}", r.body);
    assert!(r.body.get("data").is_none(), "{what}: {:?}", r.body);
    let www = r
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(www.starts_with("Bearer"), "{what}: WWW-Authenticate {www}");
    assert_no_internals(r, what);
}

/// No stack trace, SQL, library names or key material in an error body.
#[track_caller]
fn assert_no_internals(r: &Resp, what: &str) {
    let text = r.body.to_string().to_ascii_lowercase();
    for needle in [
        "panicked",
        "backtrace",
        "stack",
        ".rs:",
        "sqlx",
        "select ",
        "postgres",
        "pasetors",
        "signature",
        "v4.public.",
        "k4.",
    ] {
        assert!(!text.contains(needle), "{what}: {needle:?} in {text}");
    }
}

// --- 1. What a bearer token must be ---

#[tokio::test]
async fn a_token_with_an_altered_signature_or_signed_by_another_key_is_401() {
    let app = TestApp::spawn().await;
    let s = app.user("DOCTOR").await;
    assert_eq!(me(&app, &s.token).await.status, 200);
    let p = split(&s.token);

    let mut sig = p.signature;
    sig[17] ^= 0x01;
    let mut raw = p.message.clone();
    raw.extend_from_slice(&sig);
    let flipped = format!("{V4_PUBLIC}{}.{}", B64.encode(&raw), B64.encode(&p.footer));
    assert_401(
        &me(&app, &flipped).await,
        "one flipped byte in the signature",
    );

    let mut message = p.message.clone();
    let at = message.len() / 2;
    message[at] ^= 0x20;
    let mut raw = message;
    raw.extend_from_slice(&p.signature);
    let altered = format!("{V4_PUBLIC}{}.{}", B64.encode(&raw), B64.encode(&p.footer));
    assert_401(&me(&app, &altered).await, "one flipped byte in the claims");

    // The same claims, signed by a key of another deployment (with that key's kid).
    let foreign = TokenKeys::new(&generate_paserk_secret(), &[], "carelog", "carelog").unwrap();
    let other_key = foreign.sign(&claims_of(&s.token));
    assert_401(&me(&app, &other_key).await, "signed by another key");

    // The same message and footer (our kid), signed by another key.
    let forged = sign_v4(&foreign_signing_key(), &p.message, &p.footer, ASSERTION);
    assert_401(&me(&app, &forged).await, "another key claiming our kid");

    // Control: the independent signer with the app's own key makes a token that is
    // accepted, so each refusal around it is for the one fault put in.
    let key = app_signing_key(&app);
    let resigned = sign_v4(&key, &p.message, &p.footer, ASSERTION);
    assert_eq!(
        me(&app, &resigned).await.status,
        200,
        "re-signed by our key"
    );

    // Our key, but bound to another implicit assertion (or none).
    let elsewhere = sign_v4(&key, &p.message, &p.footer, b"carelog:elsewhere");
    assert_401(&me(&app, &elsewhere).await, "another implicit assertion");
    let unbound = sign_v4(&key, &p.message, &p.footer, b"");
    assert_401(&me(&app, &unbound).await, "no implicit assertion");

    // Our key, another issuer or audience in the claims.
    for (claim, value) in [("iss", "someone-else"), ("aud", "another-app")] {
        let mut c = claims_json(&s.token);
        c[claim] = json!(value);
        let t = sign_v4(&key, c.to_string().as_bytes(), &p.footer, ASSERTION);
        assert_401(&me(&app, &t).await, &format!("{claim} = {value}"));
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_of_a_live_session_are_401() {
    let app = TestApp::spawn().await;
    let s = app.user("PATIENT").await;
    let keys = app_keys(&app);
    let real = claims_of(&s.token);
    let now = Utc::now();
    let with_times = |iat: DateTime<Utc>, nbf: DateTime<Utc>, exp: DateTime<Utc>| {
        keys.sign(&Claims {
            jti: Uuid::now_v7(),
            iat,
            nbf,
            exp,
            ..real.clone()
        })
    };

    // Control: the same sid and sub with good times are accepted.
    let good = with_times(now, now, now + Duration::minutes(15));
    assert_eq!(me(&app, &good).await.status, 200);

    let expired = with_times(
        now - Duration::minutes(20),
        now - Duration::minutes(20),
        now - Duration::minutes(1),
    );
    assert_401(&me(&app, &expired).await, "expired");
    let just_expired = with_times(
        now - Duration::minutes(15),
        now - Duration::minutes(15),
        now - Duration::seconds(2),
    );
    assert_401(
        &me(&app, &just_expired).await,
        "expired 2 s ago (no leeway)",
    );

    let future = with_times(now, now + Duration::hours(1), now + Duration::hours(2));
    assert_401(&me(&app, &future).await, "nbf an hour ahead");

    // Clock skew between nodes: nbf a few seconds ahead is still accepted (30 s leeway).
    let skewed = with_times(
        now,
        now + Duration::seconds(10),
        now + Duration::minutes(15),
    );
    assert_eq!(me(&app, &skewed).await.status, 200, "nbf within the leeway");

    // Right times, right session, wrong purpose: an MFA token is not an access token.
    let mfa = keys.sign(&Claims {
        purpose: TokenPurpose::Mfa,
        jti: Uuid::now_v7(),
        ..real.clone()
    });
    assert_401(&me(&app, &mfa).await, "purpose mfa");

    // The session itself is unharmed by all of that.
    assert_eq!(me(&app, &s.token).await.status, 200);
}

#[tokio::test]
async fn other_versions_purposes_and_unknown_key_ids_are_401() {
    let app = TestApp::spawn().await;
    let s = app.user("DOCTOR").await;
    let p = split(&s.token);
    let key = app_signing_key(&app);
    let body = s.token.strip_prefix(V4_PUBLIC).unwrap();

    // v4.local: nonce (32) ‖ ciphertext ‖ tag (32), our kid in the footer.
    let mut local = Vec::new();
    local.extend_from_slice(Uuid::new_v4().as_bytes());
    local.extend_from_slice(Uuid::new_v4().as_bytes());
    local.extend_from_slice(&p.message);
    local.extend_from_slice(&[7u8; 32]);
    let v4_local = format!("v4.local.{}.{}", B64.encode(&local), B64.encode(&p.footer));
    assert_401(&me(&app, &v4_local).await, "v4.local");
    assert_401(
        &me(&app, &format!("v4.local.{body}")).await,
        "v4.local with our body",
    );

    // v2.public / v3.public: an Ed25519 (or P-384) signed message of the right shape,
    // here our own key over v2's own PAE.
    let v2_sig = key.sign(&pae(&[b"v2.public.", &p.message, &p.footer]));
    let mut v2 = p.message.clone();
    v2.extend_from_slice(&v2_sig.to_bytes());
    let v2_public = format!("v2.public.{}.{}", B64.encode(&v2), B64.encode(&p.footer));
    assert_401(&me(&app, &v2_public).await, "v2.public signed by our key");
    assert_401(&me(&app, &format!("v3.public.{body}")).await, "v3.public");
    assert_401(
        &me(&app, &format!("V4.PUBLIC.{body}")).await,
        "upper-case header",
    );

    // Signed by our key, but the footer names an unknown key, none, or is missing.
    let unknown_kid = json!({ "kid": format!("k4.pid.{}", B64.encode([0x5au8; 33])) });
    let t = sign_v4(
        &key,
        &p.message,
        unknown_kid.to_string().as_bytes(),
        ASSERTION,
    );
    assert_401(&me(&app, &t).await, "unknown kid");
    let t = sign_v4(&key, &p.message, br#"{"key":"x"}"#, ASSERTION);
    assert_401(&me(&app, &t).await, "footer without kid");
    let t = sign_v4(&key, &p.message, b"", ASSERTION);
    assert_401(&me(&app, &t).await, "no footer");
    // A retired/other deployment's pid of a real key is just as unknown.
    let other_kid = footer_json(
        &TokenKeys::new(&generate_paserk_secret(), &[], "carelog", "carelog")
            .unwrap()
            .sign(&claims_of(&s.token)),
    );
    let t = sign_v4(
        &key,
        &p.message,
        other_kid.to_string().as_bytes(),
        ASSERTION,
    );
    assert_401(&me(&app, &t).await, "another key's kid, our signature");

    // Not a token at all.
    for junk in [
        "v4.public.",
        "v4.public.!!!!",
        "not-a-token",
        "v4.public.e30",
    ] {
        assert_401(&me(&app, junk).await, junk);
    }
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let app = TestApp::spawn().await;
    let s = app.user("STAFF").await;
    assert_401(&me(&app, &s.refresh_token).await, "refresh token as bearer");
    let cookie = format!("paseto_token={}", s.refresh_token);
    let r = get_with(&app, "/api/auth/me", &[("cookie", cookie.as_str())]).await;
    assert_401(&r, "refresh token as the access cookie");
    // It still works for what it is for.
    assert_eq!(refresh(&app, &s.refresh_token).await.status, 200);
}

#[tokio::test]
async fn a_token_in_the_query_string_is_401_even_with_a_valid_authorization_header() {
    let app = TestApp::spawn().await;
    let s = app.user("DOCTOR").await;
    let bearer = format!("Bearer {}", s.token);
    let auth = [("authorization", bearer.as_str())];

    let control = get_with(&app, "/api/auth/me?page=1", &auth).await;
    assert_eq!(control.status, 200, "an ordinary query string is fine");

    let t = &s.token;
    for query in [
        format!("token={t}"),
        format!("access_token={t}"),
        format!("paseto_token={t}"),
        format!("TOKEN={t}"),
        format!("%74oken={t}"),
        format!("refresh_token={}", s.refresh_token),
        format!("page=1&q={t}"),
    ] {
        let path = format!("/api/auth/me?{query}");
        assert_401(&get_with(&app, &path, &auth).await, &query);
        assert_401(&app.get(&path, None).await, &format!("{query} alone"));
    }
}

#[tokio::test]
async fn a_missing_or_non_bearer_authorization_is_401() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "PATIENT").await;
    let s = app.login(&email).await;

    assert_401(&app.get("/api/auth/me", None).await, "no Authorization");
    let basic = format!("Basic {}", STANDARD.encode(format!("{email}:{PASSWORD}")));
    assert_401(
        &get_with(&app, "/api/auth/me", &[("authorization", basic.as_str())]).await,
        "Basic with the right password",
    );
    let token_scheme = format!("Token {}", s.token);
    let bare = s.token.clone();
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer   ",
        token_scheme.as_str(),
        bare.as_str(),
    ] {
        let r = get_with(&app, "/api/auth/me", &[("authorization", value)]).await;
        assert_401(&r, &format!("Authorization: {value:.20}"));
    }
    // A Basic header is not silently ignored in favour of a valid cookie either.
    let cookie = format!("paseto_token={}", s.token);
    let r = get_with(
        &app,
        "/api/auth/me",
        &[
            ("authorization", basic.as_str()),
            ("cookie", cookie.as_str()),
        ],
    )
    .await;
    assert_401(&r, "Basic with a valid cookie");

    // The scheme is case-insensitive (RFC 7235).
    let lower = format!("bearer {}", s.token);
    let r = get_with(&app, "/api/auth/me", &[("authorization", lower.as_str())]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

// --- 2. Independent verification ---

#[tokio::test]
async fn tokens_verify_with_an_independent_implementation_and_the_published_key() {
    let app = TestApp::spawn().await;
    let keys = app.get("/api/auth/keys", None).await;
    assert_eq!(keys.status, 200, "{:?}", keys.body);
    let d = &keys.body["data"];
    assert_eq!(d["issuer"], "carelog");
    assert_eq!(d["audience"], "carelog");
    assert_eq!(d["implicit_assertion"], "carelog:carelog");
    assert!(
        !keys.body.to_string().contains("k4.secret"),
        "no secret key published"
    );
    let published = d["keys"].as_array().expect("keys");
    assert_eq!(published.len(), 1, "one key, no retired ones configured");
    let kid = published[0]["kid"].as_str().expect("kid");
    let paserk = published[0]["paserk"].as_str().expect("paserk");
    assert!(kid.starts_with("k4.pid."), "{kid}");
    assert_eq!(
        B64.decode(&kid["k4.pid.".len()..]).unwrap().len(),
        33,
        "PASERK id"
    );
    let raw: [u8; 32] = B64
        .decode(paserk.strip_prefix("k4.public.").expect("k4.public PASERK"))
        .expect("base64url without padding")
        .try_into()
        .expect("32 bytes");
    let public = VerifyingKey::from_bytes(&raw).expect("a point");
    assert_eq!(
        public,
        app_signing_key(&app).verifying_key(),
        "the signing key's half"
    );

    let email = format!("{}@example.org", Uuid::now_v7().simple());
    let user = app.register(&email, "DOCTOR").await;
    let before = Utc::now();
    let login = app
        .post(
            "/api/auth/login",
            json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let s = session_of(&login);
    let token = s.token.as_str();

    assert!(token.starts_with(V4_PUBLIC));
    assert!(
        verifies(&public, token, ASSERTION),
        "the signature verifies"
    );
    assert!(
        !verifies(&public, token, b""),
        "bound to the implicit assertion"
    );
    assert!(!verifies(&public, token, b"carelog:other"));
    assert!(!verifies(
        &foreign_signing_key().verifying_key(),
        token,
        ASSERTION
    ));

    assert_eq!(
        footer_json(token),
        json!({ "kid": kid }),
        "footer is exactly the kid"
    );

    let c = claims_json(token);
    assert_eq!(c["sub"], json!(user.to_string()));
    assert_eq!(c["iss"], "carelog");
    assert_eq!(c["aud"], "carelog");
    assert_eq!(c["roles"], json!(["BASE:DOCTOR"]));
    assert_eq!(c["purpose"], "access");
    let sid: Uuid = c["sid"]
        .as_str()
        .expect("sid")
        .parse()
        .expect("sid is a uuid");
    let jti: Uuid = c["jti"]
        .as_str()
        .expect("jti")
        .parse()
        .expect("jti is a uuid");
    let (iat, nbf, exp) = (time(&c["iat"]), time(&c["nbf"]), time(&c["exp"]));
    assert_eq!(nbf, iat);
    assert_eq!(
        exp - iat,
        Duration::minutes(15),
        "access tokens live 15 minutes"
    );
    assert!(
        iat >= before - Duration::seconds(2) && iat <= Utc::now(),
        "iat is now"
    );
    let expires_at = time(&login.body["data"]["expires_at"]);
    assert_eq!(
        exp.timestamp(),
        expires_at.timestamp(),
        "exp = expires_at, to the second"
    );

    // A refreshed token: same session, new jti, same key; still verifiable here.
    let r = refresh(&app, &s.refresh_token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let t2 = r.body["data"]["token"].as_str().expect("token");
    assert!(verifies(&public, t2, ASSERTION));
    let c2 = claims_json(t2);
    assert_eq!(c2["sid"], json!(sid.to_string()));
    assert_ne!(c2["jti"], json!(jti.to_string()));
    assert_eq!(footer_json(t2), json!({ "kid": kid }));

    // Another login is another session.
    let other = app.login(&email).await;
    assert_ne!(claims_json(&other.token)["sid"], json!(sid.to_string()));
}

// --- 3. Refresh ---

#[tokio::test]
async fn a_refresh_rotates_the_pair_and_a_replayed_one_revokes_only_its_session() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "DOCTOR").await;
    let first = app.login(&email).await;
    let other = app.login(&email).await;

    let r = refresh(&app, &first.refresh_token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let second = session_of(&r);
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(second.token, first.token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(r.body["data"]["user"]["email"], email.as_str());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        set_cookie(&r, "paseto_token").map(cookie_value),
        Some(second.token.as_str())
    );
    assert_eq!(
        set_cookie(&r, "refresh_token").map(cookie_value),
        Some(second.refresh_token.as_str())
    );
    assert_eq!(
        claims_json(&second.token)["sid"],
        claims_json(&first.token)["sid"],
        "the same session"
    );
    // Both access tokens of the session work until theft is detected.
    assert_eq!(me(&app, &first.token).await.status, 200);
    assert_eq!(me(&app, &second.token).await.status, 200);

    // The spent refresh token again: refused, and the whole session is revoked.
    assert_401(
        &refresh(&app, &first.refresh_token).await,
        "spent refresh token",
    );
    assert_401(
        &refresh(&app, &second.refresh_token).await,
        "newest refresh token after reuse",
    );
    assert_401(
        &me(&app, &first.token).await,
        "first access token after reuse",
    );
    assert_401(
        &me(&app, &second.token).await,
        "newest access token after reuse",
    );
    assert_401(
        &refresh(&app, &first.refresh_token).await,
        "spent one, third time",
    );

    // The user's other session is untouched and rotates normally.
    assert_eq!(me(&app, &other.token).await.status, 200);
    let r = refresh(&app, &other.refresh_token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(me(&app, &session_of(&r).token).await.status, 200);
    // And the account can open new sessions.
    assert_eq!(me(&app, &app.login(&email).await.token).await.status, 200);

    // Unknown or malformed refresh tokens are 401 (or 400 for a malformed body).
    assert_401(
        &refresh(&app, "not-a-refresh-token").await,
        "unknown refresh token",
    );
    let r = app.post("/api/auth/refresh", json!({}), None).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "VALIDATION_ERROR"),
        "{:?}",
        r.body
    );
    let r = app
        .post(
            "/api/auth/refresh",
            json!({"refresh_token": "x", "sid": "x"}),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "VALIDATION_ERROR"),
        "unknown field"
    );
}

#[tokio::test]
async fn refresh_works_through_the_cookie_with_x_requested_with() {
    let app = TestApp::spawn().await;
    let s = app.user("PATIENT").await;
    let cookie = format!("refresh_token={}", s.refresh_token);

    // Without a body and without the CSRF header, the cookie is not spent.
    let no_header = app
        .send(
            app.http
                .post(app.url("/api/auth/refresh"))
                .header("cookie", cookie.as_str()),
        )
        .await;
    assert_eq!(
        (no_header.status, no_header.code()),
        (403, "FORBIDDEN"),
        "{:?}",
        no_header.body
    );

    let r = app
        .send(
            app.http
                .post(app.url("/api/auth/refresh"))
                .header("cookie", cookie.as_str())
                .header("x-requested-with", "XMLHttpRequest"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let next = session_of(&r);
    assert_ne!(next.refresh_token, s.refresh_token);
    assert_eq!(me(&app, &next.token).await.status, 200);
    let access = set_cookie(&r, "paseto_token").expect("access cookie");
    let refresh_cookie = set_cookie(&r, "refresh_token").expect("refresh cookie");
    assert_eq!(cookie_value(access), next.token);
    assert_eq!(cookie_value(refresh_cookie), next.refresh_token);

    // No body and no cookie: 401.
    let none = app
        .send(
            app.http
                .post(app.url("/api/auth/refresh"))
                .header("x-requested-with", "XMLHttpRequest"),
        )
        .await;
    assert_401(&none, "no refresh token at all");
}

// --- 4. Logout ---

#[tokio::test]
async fn logout_answers_204_clears_the_cookies_and_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "DOCTOR").await;
    let s = app.login(&email).await;
    let other = app.login(&email).await;

    let r = app
        .post("/api/auth/logout", json!(null), Some(&s.token))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(r.body, Value::Null, "no body");
    for name in ["paseto_token", "refresh_token"] {
        let c = set_cookie(&r, name).unwrap_or_else(|| panic!("{name} cleared"));
        assert_eq!(cookie_value(c), "", "{c}");
        let attrs = cookie_attrs(c);
        assert!(attrs.contains(&"Max-Age=0"), "{c}");
        assert!(
            attrs.contains(&"HttpOnly") && attrs.contains(&"Secure"),
            "{c}"
        );
    }
    assert!(set_cookie(&r, "refresh_token")
        .unwrap()
        .contains("Path=/api/auth"));

    assert_401(&me(&app, &s.token).await, "access token after logout");
    assert_401(
        &refresh(&app, &s.refresh_token).await,
        "refresh token after logout",
    );
    assert_401(
        &app.post("/api/auth/logout", json!(null), Some(&s.token))
            .await,
        "logout again",
    );
    // Only that session ended.
    assert_eq!(me(&app, &other.token).await.status, 200);
}

// --- 5. Idle and absolute limits ---

fn with_sessions(policy: SessionPolicy) -> IdentityConfig {
    IdentityConfig {
        sessions: policy,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_session_idle_past_its_limit_stops_working_and_cannot_be_refreshed() {
    let policy = SessionPolicy {
        idle: Duration::seconds(2),
        ..Default::default()
    };
    let app = TestApp::spawn_with(no_limits(), with_sessions(policy)).await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "DOCTOR").await;

    // Use resets the idle clock: a refresh after 1.2 s, then another 1.2 s (2.4 s since
    // login, 1.2 s since last use) and the new token still works.
    let kept = app.login(&email).await;
    tokio::time::sleep(StdDuration::from_millis(1200)).await;
    let r = refresh(&app, &kept.refresh_token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let kept = session_of(&r);
    tokio::time::sleep(StdDuration::from_millis(1200)).await;
    assert_eq!(me(&app, &kept.token).await.status, 200, "used 1.2 s ago");

    // A fresh session left alone for 3 s (its access token has 15 minutes left).
    let idle = app.login(&email).await;
    tokio::time::sleep(StdDuration::from_secs(3)).await;
    assert_401(&me(&app, &idle.token).await, "idle access token");
    assert_401(
        &refresh(&app, &idle.refresh_token).await,
        "idle refresh token",
    );
    // A new login works.
    assert_eq!(me(&app, &app.login(&email).await.token).await.status, 200);
}

#[tokio::test]
async fn a_session_past_its_absolute_limit_stops_working_even_when_refreshed() {
    let policy = SessionPolicy {
        absolute: Duration::seconds(2),
        ..Default::default()
    };
    let app = TestApp::spawn_with(no_limits(), with_sessions(policy)).await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "PATIENT").await;
    let s = app.login(&email).await;

    tokio::time::sleep(StdDuration::from_secs(1)).await;
    let r = refresh(&app, &s.refresh_token).await;
    assert_eq!(r.status, 200, "within the limit: {:?}", r.body);
    let next = session_of(&r);
    assert_eq!(me(&app, &next.token).await.status, 200);

    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert_401(
        &me(&app, &next.token).await,
        "access token past the absolute limit",
    );
    assert_401(
        &refresh(&app, &next.refresh_token).await,
        "refresh past the absolute limit",
    );
    assert_401(&me(&app, &s.token).await, "the first access token too");
    assert_eq!(me(&app, &app.login(&email).await.token).await.status, 200);
}

// --- 6. Cookies ---

#[tokio::test]
async fn login_sets_strict_http_only_cookies_and_the_access_cookie_authenticates_reads() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "DOCTOR").await;
    let r = app
        .post(
            "/api/auth/login",
            json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let s = session_of(&r);
    assert_eq!(
        r.header("cache-control"),
        Some("no-store"),
        "tokens are never cached"
    );

    let access = set_cookie(&r, "paseto_token").expect("paseto_token cookie");
    let refresh_c = set_cookie(&r, "refresh_token").expect("refresh_token cookie");
    assert_eq!(cookie_value(access), s.token);
    assert_eq!(cookie_value(refresh_c), s.refresh_token);
    for c in [access, refresh_c] {
        let attrs = cookie_attrs(c);
        for want in ["HttpOnly", "Secure", "SameSite=Strict"] {
            assert!(attrs.contains(&want), "{want} in {c}");
        }
    }
    let access_attrs = cookie_attrs(access);
    assert!(access_attrs.contains(&"Path=/"), "{access}");
    assert!(
        access_attrs.contains(&"Max-Age=900"),
        "15 minutes: {access}"
    );
    assert!(
        cookie_attrs(refresh_c).contains(&"Path=/api/auth"),
        "{refresh_c}"
    );

    let cookie = format!("paseto_token={}", s.token);
    let r = get_with(&app, "/api/auth/me", &[("cookie", cookie.as_str())]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["email"], email.as_str());
    // Among other cookies, too.
    let jar = format!("theme=dark; paseto_token={}; lang=en", s.token);
    assert_eq!(
        get_with(&app, "/api/auth/me", &[("cookie", jar.as_str())])
            .await
            .status,
        200
    );
    // A forged cookie is 401 like a forged header.
    let bad = format!("paseto_token={}x", s.token);
    assert_401(
        &get_with(&app, "/api/auth/me", &[("cookie", bad.as_str())]).await,
        "bad cookie",
    );
}

#[tokio::test]
async fn a_write_authenticated_by_cookie_needs_x_requested_with() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let target = app.user("DOCTOR").await;
    let grant = app
        .post(
            &format!("/api/admin/users/{}/roles", target.user_id),
            json!({"role": "APP:AUDITOR"}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(grant.status, 200, "{:?}", grant.body);
    let admin_cookie = format!("paseto_token={}", admin.token);
    let delete_url = app.url(&format!(
        "/api/admin/users/{}/roles/APP:AUDITOR",
        target.user_id
    ));

    // DELETE by cookie alone: authenticated, not allowed (403), and nothing changes.
    let r = app
        .send(app.http.delete(&delete_url).header("cookie", &admin_cookie))
        .await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    let roles = me(&app, &target.token).await.body["data"]["roles"].clone();
    assert_eq!(roles, json!(["BASE:DOCTOR", "APP:AUDITOR"]));
    // With the header it goes through.
    let r = app
        .send(
            app.http
                .delete(&delete_url)
                .header("cookie", &admin_cookie)
                .header("x-requested-with", "XMLHttpRequest"),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let roles = me(&app, &target.token).await.body["data"]["roles"].clone();
    assert_eq!(roles, json!(["BASE:DOCTOR"]));

    // POST logout by cookie alone: 403, and the session lives on.
    let cookie = format!("paseto_token={}", target.token);
    let logout = app.url("/api/auth/logout");
    let r = app
        .send(app.http.post(&logout).header("cookie", cookie.as_str()))
        .await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{:?}", r.body);
    assert!(r.header("www-authenticate").is_none());
    assert_eq!(me(&app, &target.token).await.status, 200, "not logged out");

    // A bad cookie on a write without the header is still 401 (the token is checked first).
    let bad = format!("paseto_token={}x", target.token);
    assert_401(
        &app.send(app.http.post(&logout).header("cookie", bad.as_str()))
            .await,
        "bad cookie, no header",
    );

    // With the header: logged out.
    let r = app
        .send(
            app.http
                .post(&logout)
                .header("cookie", cookie.as_str())
                .header("x-requested-with", "XMLHttpRequest"),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_401(&me(&app, &target.token).await, "after cookie logout");
    // A bearer-authenticated write needs no such header (tested everywhere else).
}

// --- 7. MFA through refresh ---

#[tokio::test]
async fn mfa_cannot_be_bypassed_with_the_mfa_token_as_bearer_or_refresh_token() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "DOCTOR").await;
    let setup = app.login(&email).await;
    let (_secret, recovery) = enable_mfa(&app, &setup).await;
    assert_eq!(
        me(&app, &setup.token).await.body["data"]["mfa_enabled"],
        true
    );

    let r = app
        .post(
            "/api/auth/login",
            json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "MFA_REQUIRED"), "{:?}", r.body);
    assert_eq!(r.body["success"], false);
    let mfa_token = r.body["error"]["details"]["mfa_token"]
        .as_str()
        .expect("details.mfa_token")
        .to_owned();
    assert!(r.body.get("data").is_none(), "{:?}", r.body);
    let text = r.body.to_string();
    assert!(
        !text.contains("refresh_token") && !text.contains("\"token\""),
        "{text}"
    );
    assert!(
        r.headers.get("set-cookie").is_none(),
        "no cookie before the second factor"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c = claims_json(&mfa_token);
    assert_eq!(c["purpose"], "mfa");
    assert_eq!(c["roles"], json!([]));

    assert_401(&me(&app, &mfa_token).await, "mfa token as bearer");
    let cookie = format!("paseto_token={mfa_token}");
    assert_401(
        &get_with(&app, "/api/auth/me", &[("cookie", cookie.as_str())]).await,
        "mfa token as access cookie",
    );
    assert_401(
        &refresh(&app, &mfa_token).await,
        "mfa token as refresh token",
    );
    let cookie = format!("refresh_token={mfa_token}");
    let r = app
        .send(
            app.http
                .post(app.url("/api/auth/refresh"))
                .header("cookie", cookie.as_str())
                .header("x-requested-with", "XMLHttpRequest"),
        )
        .await;
    assert_401(&r, "mfa token as refresh cookie");
    // Nor does a wrong code turn it into a session.
    let r = app
        .post(
            "/api/auth/mfa/challenge",
            json!({"mfa_token": mfa_token, "code": "000000"}),
            None,
        )
        .await;
    assert_401(&r, "wrong second factor");

    // The mfa token does what it is for: with a (recovery) code it opens a session,
    // whose refresh keeps working like any other.
    let r = app
        .post(
            "/api/auth/mfa/challenge",
            json!({"mfa_token": mfa_token, "code": recovery[0]}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let s = session_of(&r);
    assert_eq!(me(&app, &s.token).await.status, 200);
    let r = refresh(&app, &s.refresh_token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(me(&app, &session_of(&r).token).await.status, 200);
}

#[tokio::test]
async fn a_password_only_session_cannot_be_refreshed_once_mfa_is_on() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.org", Uuid::now_v7().simple());
    app.register(&email, "PATIENT").await;
    // Someone with the password only (say, a thief) holds a session...
    let password_only = app.login(&email).await;
    // ...when the owner turns MFA on from their own session.
    let owner = app.login(&email).await;
    enable_mfa(&app, &owner).await;
    let r = app
        .post(
            "/api/auth/login",
            json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.code(), "MFA_REQUIRED");
    // The second factor is now owed for every new session; refresh must not let a
    // session that never gave it live on for the rest of its 12 hours.
    assert_401(
        &refresh(&app, &password_only.refresh_token).await,
        "refresh of a session opened without the second factor",
    );
    assert_401(
        &me(&app, &password_only.token).await,
        "an access token of a session opened without the second factor",
    );
    // The owner, who gave the code from their session, stays logged in.
    assert_eq!(me(&app, &owner.token).await.status, 200);
    let r = refresh(&app, &owner.refresh_token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

// --- 8. Roles from current state ---

#[tokio::test]
async fn a_revoked_platform_role_stops_working_at_once_for_an_existing_token() {
    let app = TestApp::spawn().await;
    let admin = app.super_admin().await;
    let user = app.user("DOCTOR").await;
    let bystander = app.user("PATIENT").await;
    let roles_url = format!("/api/admin/users/{}/roles", user.user_id);
    assert_eq!(claims_json(&user.token)["roles"], json!(["BASE:DOCTOR"]));

    // APP:ADMIN: granted and revoked, seen at once through the same token.
    let r = app
        .post(&roles_url, json!({"role": "APP:ADMIN"}), Some(&admin.token))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["data"]["user"]["roles"],
        json!(["BASE:DOCTOR", "APP:ADMIN"])
    );
    let r = me(&app, &user.token).await;
    assert_eq!(r.body["data"]["roles"], json!(["BASE:DOCTOR", "APP:ADMIN"]));
    let r = app
        .delete(&format!("{roles_url}/APP:ADMIN"), &admin.token)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = me(&app, &user.token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["roles"], json!(["BASE:DOCTOR"]));

    // SUPER:ADMIN: the old token (its claims say BASE:DOCTOR only) may use the admin
    // route while the role is held, and not a moment after it is revoked.
    let grant_bystander = format!("/api/admin/users/{}/roles", bystander.user_id);
    let r = app
        .post(
            &grant_bystander,
            json!({"role": "APP:AUDITOR"}),
            Some(&user.token),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "FORBIDDEN"),
        "not yet: {:?}",
        r.body
    );
    let r = app
        .post(
            &roles_url,
            json!({"role": "SUPER:ADMIN"}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .post(
            &grant_bystander,
            json!({"role": "APP:AUDITOR"}),
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status, 200, "granted now: {:?}", r.body);
    let r = app
        .delete(&format!("{roles_url}/SUPER:ADMIN"), &admin.token)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .delete(&format!("{grant_bystander}/APP:AUDITOR"), &user.token)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "FORBIDDEN"),
        "revoked: {:?}",
        r.body
    );
    let r = me(&app, &bystander.token).await;
    assert_eq!(
        r.body["data"]["roles"],
        json!(["BASE:PATIENT", "APP:AUDITOR"]),
        "unchanged"
    );
    assert_eq!(claims_json(&user.token)["roles"], json!(["BASE:DOCTOR"]));
}
