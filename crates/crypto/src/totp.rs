//! RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30-second steps) and recovery codes.
//!
//! [`TotpSecret::verify`] accepts the code of the current step and of one step either side
//! (clock drift) and returns the matching step. "A TOTP code is accepted once only": the
//! caller stores the last step used per user and refuses a step not greater than it.
//!
//! Recovery codes are 12 random Crockford base32 characters (60 bits) shown as
//! `xxxx-xxxx-xxxx`. Being high-entropy they are stored as plain SHA-256 hashes of their
//! normalized form (lowercase, separators and spaces dropped, `o` read as `0`, `i`/`l` as
//! `1`), so a code typed in capitals or without dashes still matches.

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes of a TOTP secret (160 bits, RFC 4226's recommendation).
pub const TOTP_SECRET_LEN: usize = 20;
/// Digits of a code.
pub const TOTP_DIGITS: usize = 6;
/// Seconds of a step.
pub const TOTP_STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one.
const SKEW_STEPS: u64 = 1;

/// How many recovery codes a user gets.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Random characters in a recovery code (5 bits each).
const RECOVERY_CODE_CHARS: usize = 12;
/// Crockford's base32 alphabet, lowercase: no `i`, `l`, `o`, `u`.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A user's TOTP secret: 20 random bytes, zeroized on drop, never shown by `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret([u8; TOTP_SECRET_LEN]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A fresh secret from the OS random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOTP_SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// A stored secret; `None` unless exactly 20 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; TOTP_SECRET_LEN] = bytes.try_into().ok()?;
        Some(Self(bytes))
    }

    /// The raw bytes (to be sealed before storage).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> String {
        self.totp(TOTP_DIGITS).get_secret_base32()
    }

    /// The `otpauth://totp/…` URI for a QR code (Key URI Format): label `issuer:account`,
    /// `secret`, `issuer`, `algorithm=SHA1`, `digits=6`, `period=30`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}",
            percent_encode(issuer),
            percent_encode(account),
            self.base32(),
            percent_encode(issuer),
        )
    }

    /// The time step (`unix_time / 30`) whose 6-digit code equals `code`, looking at the
    /// current step and one either side; `None` if none does or `code` is not 6 digits.
    /// All three candidates are compared in constant time.
    pub fn verify(&self, code: &str, unix_time: u64) -> Option<u64> {
        if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp(TOTP_DIGITS);
        let current = unix_time / TOTP_STEP_SECONDS;
        let mut matched = None;
        for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
            let expected = totp.generate(step * TOTP_STEP_SECONDS);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                matched = Some(step);
            }
        }
        matched
    }

    /// The 6-digit code at `unix_time`. The server only verifies; this is for test
    /// clients (an integration test completing an MFA login) and tooling.
    pub fn code(&self, unix_time: u64) -> String {
        self.code_with_digits(unix_time, TOTP_DIGITS)
    }

    /// The code with `digits` digits at `unix_time` (RFC 6238's vectors use 8).
    fn code_with_digits(&self, unix_time: u64, digits: usize) -> String {
        self.totp(digits).generate(unix_time)
    }

    /// A throw-away totp-rs instance; it holds a copy of the secret, zeroized on drop.
    fn totp(&self, digits: usize) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            digits,
            SKEW_STEPS as u8,
            TOTP_STEP_SECONDS,
            self.0.to_vec(),
        )
    }
}

/// Ten fresh recovery codes, `xxxx-xxxx-xxxx` in lowercase Crockford base32 (60 bits each).
pub fn generate_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let random = OsRng.next_u64();
            let mut code = String::with_capacity(RECOVERY_CODE_CHARS + 2);
            for i in 0..RECOVERY_CODE_CHARS {
                if i > 0 && i % 4 == 0 {
                    code.push('-');
                }
                let index = (random >> (5 * i)) & 0x1f;
                code.push(char::from(CROCKFORD[index as usize]));
            }
            code
        })
        .collect()
}

/// SHA-256 of the normalized code (see the module documentation); what is stored.
pub fn hash_recovery_code(code: &str) -> [u8; 32] {
    Sha256::digest(normalize_recovery_code(code).as_bytes()).into()
}

fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !(c.is_whitespace() || *c == '-'))
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect()
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let secret = rfc_secret();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(secret.code_with_digits(time, 8), code, "T={time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_returns_its_step() {
        let secret = rfc_secret();
        let t = 1_234_567_890;
        let step = t / 30;
        for offset in [-1i64, 0, 1] {
            let code_step = (step as i64 + offset) as u64;
            let code = secret.code(code_step * 30);
            assert_eq!(secret.verify(&code, t), Some(code_step), "offset {offset}");
        }
    }

    #[test]
    fn a_code_two_steps_away_is_refused() {
        let secret = rfc_secret();
        let t = 1_234_567_890;
        let step = t / 30;
        for code_step in [step - 2, step + 2] {
            let code = secret.code(code_step * 30);
            assert_eq!(secret.verify(&code, t), None);
        }
    }

    #[test]
    fn six_digit_codes_are_the_last_six_of_the_eight() {
        // Same truncation, smaller modulus: the RFC vector at T=59 gives 287082.
        assert_eq!(rfc_secret().verify("287082", 59), Some(1));
        assert_eq!(rfc_secret().code(59), "287082");
    }

    #[test]
    fn codes_that_are_not_six_digits_are_refused() {
        let secret = rfc_secret();
        let good = secret.code(59);
        assert_eq!(secret.verify(&good, 59), Some(1));
        for bad in [
            "",
            "28708",
            "2870820",
            "94287082",
            "28708a",
            " 287082",
            "287082 ",
            "２８７０８２",
            "+28708",
        ] {
            assert_eq!(secret.verify(bad, 59), None, "{bad:?}");
        }
    }

    #[test]
    fn early_times_do_not_underflow() {
        let secret = rfc_secret();
        let code = secret.code(0);
        assert_eq!(secret.verify(&code, 0), Some(0));
        assert_eq!(secret.verify(&code, 29), Some(0));
    }

    #[test]
    fn secrets_are_twenty_random_bytes() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(TotpSecret::from_bytes(&[0; 19]).is_none());
        assert!(TotpSecret::from_bytes(&[0; 21]).is_none());
        let copy = TotpSecret::from_bytes(a.as_bytes()).unwrap();
        assert_eq!(copy.as_bytes(), a.as_bytes());
    }

    #[test]
    fn base32_is_rfc_4648_without_padding() {
        assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn debug_hides_the_secret() {
        assert_eq!(format!("{:?}", rfc_secret()), "TotpSecret(..)");
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_parameters() {
        let uri = rfc_secret().otpauth_uri("carelog", "jane.doe+x@example.org");
        assert_eq!(
            uri,
            "otpauth://totp/carelog:jane.doe%2Bx%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=carelog\
             &algorithm=SHA1&digits=6&period=30"
        );
        let uri = rfc_secret().otpauth_uri("Care Log: test", "a b");
        assert!(
            uri.starts_with("otpauth://totp/Care%20Log%3A%20test:a%20b?"),
            "{uri}"
        );
        assert!(uri.contains("&issuer=Care%20Log%3A%20test&"), "{uri}");
    }

    #[test]
    fn recovery_codes_are_ten_distinct_60_bit_codes() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 14, "{code}");
            let parts: Vec<&str> = code.split('-').collect();
            assert_eq!(parts.len(), 3, "{code}");
            for part in parts {
                assert_eq!(part.len(), 4);
                assert!(part.bytes().all(|b| CROCKFORD.contains(&b)), "{code}");
            }
        }
        // 12 characters of a 32-letter alphabet: 60 bits.
        assert!(RECOVERY_CODE_CHARS * CROCKFORD.len().trailing_zeros() as usize >= 60);
    }

    #[test]
    fn recovery_codes_hash_the_same_however_typed() {
        let code = "0abc-1def-9xyz";
        let stored = hash_recovery_code(code);
        for typed in [
            "0abc-1def-9xyz",
            "0ABC-1DEF-9XYZ",
            "0abc1def9xyz",
            " 0abc 1def 9xyz ",
            "Oabc-Idef-9xyz",
            "oabc-ldef-9xyz",
        ] {
            assert_eq!(hash_recovery_code(typed), stored, "{typed}");
        }
        assert_ne!(hash_recovery_code("0abc-1def-9xyy"), stored);
        let expected: [u8; 32] = Sha256::digest(b"0abc1def9xyz").into();
        assert_eq!(stored, expected);
    }
}
