//! Second-factor helpers: decoding the enrolment secret, turning MFA on.

use carelog_crypto::TotpSecret;
use chrono::Utc;
use serde_json::json;

use super::app::{Session, TestApp};

/// RFC 4648 base32 (upper-case alphabet, padding optional) to bytes, as the enrolment
/// shows the TOTP secret.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u64, 0u32, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("{c:?} is not base32"));
        buffer = (buffer << 5) | value as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// Turns MFA on for `s` through the API; returns the secret and the recovery codes.
pub async fn enable_mfa(app: &TestApp, s: &Session) -> (TotpSecret, Vec<String>) {
    let r = app
        .post("/api/auth/mfa/enroll", json!(null), Some(&s.token))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let text = r.body["data"]["secret"].as_str().expect("secret");
    let uri = r.body["data"]["otpauth_uri"].as_str().expect("otpauth uri");
    assert!(uri.contains(&format!("secret={text}")), "{uri}");
    let secret = TotpSecret::from_bytes(&base32_decode(text)).expect("a 20-byte secret");
    let code = secret.code(Utc::now().timestamp() as u64);
    let r = app
        .post(
            "/api/auth/mfa/verify",
            json!({ "code": code }),
            Some(&s.token),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let codes = r.body["data"]["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    (secret, codes)
}
