//! Password hashing (Argon2id) and the password policy.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) carrying their own
//! parameters, so stored hashes keep verifying when the defaults are raised later
//! ([`PasswordHasher::needs_rehash`] tells when to re-hash at the next login).
//!
//! The policy follows NIST 800-63B: 12 to 128 characters (Unicode scalar values), no
//! composition rules, common passwords refused, and no password that contains the user's
//! email local part. "Common" is judged with zxcvbn's bundled lists (30 000 of the most
//! common passwords, with l33t, reversed and case variants):
//!
//! - the whole password is one entry of the password list (in any of those variants), or
//! - zxcvbn estimates fewer than 10^6 guesses for it (score 0 or 1): at 12+ characters
//!   that only happens to a common password with a few digits or symbols around it
//!   (`iloveyou1234`, `Password1234!`), a keyboard walk (`1q2w3e4r5t6y`), a sequence
//!   (`123456789012`) or a repetition (`abc123abc123`). So `Password1234!` is refused.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use zxcvbn::matching::patterns::MatchPattern;

/// Fewest characters (Unicode scalar values) a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most characters (Unicode scalar values) a password may have.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// OWASP's minimum for Argon2id: 19 MiB of memory, 2 passes, 1 lane.
const DEFAULT_M_COST_KIB: u32 = 19_456;
const DEFAULT_T_COST: u32 = 2;
const DEFAULT_P_COST: u32 = 1;

/// zxcvbn's score 2 starts at 10^6 guesses; anything below is refused as common.
const MIN_GUESSES: u64 = 1_000_000;

/// Argon2id with fixed cost parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost_kib", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl Default for PasswordHasher {
    /// Argon2id, m = 19456 KiB, t = 2, p = 1 (the OWASP minimum).
    fn default() -> Self {
        Self::new(DEFAULT_M_COST_KIB, DEFAULT_T_COST, DEFAULT_P_COST)
    }
}

impl PasswordHasher {
    /// Argon2id with memory `m_cost_kib` KiB, `t_cost` passes and `p_cost` lanes. Lower
    /// costs are for tests only; production uses [`PasswordHasher::default`].
    ///
    /// # Panics
    /// If Argon2 refuses the parameters (e.g. `m_cost_kib < 8 * p_cost`, `t_cost == 0`).
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Self {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .expect("Argon2 cost parameters out of range");
        Self { params }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh random salt; returns the PHC string.
    pub fn hash(&self, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .expect("Argon2id hashing with valid parameters cannot fail")
            .to_string()
    }

    /// Whether `password` matches the PHC string `phc` (with the parameters written in
    /// it). An unreadable PHC string never matches.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return false;
        }
        self.argon2()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    }

    /// Does the work of a [`verify`](Self::verify) against nothing, for logins with an
    /// unknown email, so they take as long as a wrong password.
    pub fn dummy_verify(&self, password: &str) {
        const DUMMY_SALT: &[u8; 16] = b"carelog-no-user!";
        let mut out = [0u8; 32];
        let _ = self
            .argon2()
            .hash_password_into(password.as_bytes(), DUMMY_SALT, &mut out);
        std::hint::black_box(&out);
    }

    /// Whether `phc` was made with other parameters (or another algorithm) than this
    /// hasher's, so the password should be re-hashed once it has been verified.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return true;
        };
        if hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(Version::V0x13.into())
        {
            return true;
        }
        match Params::try_from(&hash) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }
}

/// Why a new password was refused. `Display` is a sentence for the user; it never quotes
/// the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    /// Fewer than 12 characters.
    #[error("The password must be at least 12 characters long.")]
    TooShort,
    /// More than 128 characters.
    #[error("The password must be at most 128 characters long.")]
    TooLong,
    /// A common or easily guessed password.
    #[error(
        "This password is too common or too easy to guess. Try a longer passphrase of \
         unrelated words, or let a password manager make one."
    )]
    Common,
    /// Contains the email address's local part.
    #[error("The password must not contain your email address.")]
    ContainsEmail,
}

/// Checks a new password against the policy (see the module documentation), in the order
/// length, email, common.
pub fn check_password_policy(password: &str, email: &str) -> Result<(), PasswordRejection> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRejection::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRejection::TooLong);
    }
    if contains_email_local_part(password, email) {
        return Err(PasswordRejection::ContainsEmail);
    }
    if is_common(password) {
        return Err(PasswordRejection::Common);
    }
    Ok(())
}

/// The local part (before the last `@`) and, for `name+tag@…`, also `name`: each counts
/// when it has at least 3 characters. Case-insensitive.
fn contains_email_local_part(password: &str, email: &str) -> bool {
    let local = email
        .rsplit_once('@')
        .map_or(email, |(local, _)| local)
        .trim()
        .to_lowercase();
    let base = local.split('+').next().unwrap_or_default().to_owned();
    let password = password.to_lowercase();
    [local, base]
        .iter()
        .any(|part| part.chars().count() >= 3 && password.contains(part.as_str()))
}

fn is_common(password: &str) -> bool {
    let entropy = zxcvbn::zxcvbn(password, &[]);
    if entropy.guesses() < MIN_GUESSES {
        return true;
    }
    let whole = password.chars().count();
    entropy.sequence().iter().any(|m| {
        m.i == 0
            && m.j + 1 == whole
            && matches!(&m.pattern, MatchPattern::Dictionary(d) if is_password_list(d))
    })
}

/// zxcvbn does not export its `DictionaryType`, so the list is recognised by name.
fn is_password_list(pattern: &zxcvbn::matching::patterns::DictionaryPattern) -> bool {
    format!("{:?}", pattern.dictionary_name) == "Passwords"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests stay fast; the PHC test uses the defaults.
    fn fast() -> PasswordHasher {
        PasswordHasher::new(64, 1, 1)
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = fast();
        let phc = h.hash("correct horse battery staple");
        assert!(h.verify("correct horse battery staple", &phc));
        assert!(!h.verify("correct horse battery stapl", &phc));
        assert!(!h.verify("", &phc));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let h = fast();
        assert_ne!(h.hash("same password here"), h.hash("same password here"));
    }

    #[test]
    fn the_default_phc_string_is_argon2id_at_the_owasp_minimum() {
        let h = PasswordHasher::default();
        let phc = h.hash("correct horse battery staple");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify("correct horse battery staple", &phc));
        assert!(!h.needs_rehash(&phc));
        h.dummy_verify("whatever it is");
    }

    #[test]
    fn a_hash_made_with_other_parameters_still_verifies_but_wants_a_rehash() {
        let phc = fast().hash("correct horse battery staple");
        let h = PasswordHasher::default();
        assert!(h.verify("correct horse battery staple", &phc));
        assert!(h.needs_rehash(&phc));
    }

    #[test]
    fn unreadable_or_foreign_hashes_never_verify() {
        let h = fast();
        assert!(!h.verify("password", ""));
        assert!(!h.verify("password", "not a phc string"));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"correct horse battery staple",
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string();
        assert!(!h.verify("correct horse battery staple", &argon2i));
        assert!(h.needs_rehash(&argon2i));
    }

    #[test]
    fn debug_shows_only_parameters() {
        assert_eq!(
            format!("{:?}", PasswordHasher::default()),
            "PasswordHasher { m_cost_kib: 19456, t_cost: 2, p_cost: 1 }"
        );
    }

    #[test]
    fn length_is_counted_in_characters_from_12_to_128() {
        let email = "someone@example.org";
        let ok = |p: &str| check_password_policy(p, email);
        assert_eq!(ok("mauve kettle"), Ok(()));
        assert_eq!(ok("mauve kettl"), Err(PasswordRejection::TooShort));
        // 11 characters but 22 bytes: still too short.
        assert_eq!(ok("ÿÿÿÿÿÿÿÿÿÿÿ"), Err(PasswordRejection::TooShort));
        assert_eq!(ok("ŧřöŵåłđėņχψ"), Err(PasswordRejection::TooShort));
        assert_eq!(ok("ŧřöŵåłđėņχψω"), Ok(()));
        let long: String = "gravel lantern quince ".repeat(6);
        let at_max: String = long.chars().take(MAX_PASSWORD_CHARS).collect();
        assert_eq!(ok(&at_max), Ok(()));
        let over: String = long.chars().take(MAX_PASSWORD_CHARS + 1).collect();
        assert_eq!(ok(&over), Err(PasswordRejection::TooLong));
    }

    #[test]
    fn there_are_no_composition_rules() {
        let email = "someone@example.org";
        for p in [
            "mauve kettle orbit",
            "mauvekettleorbit",
            "ŧřöŵåłđėņχψω",
            "73916248305172",
        ] {
            assert_eq!(check_password_policy(p, email), Ok(()), "{p}");
        }
    }

    #[test]
    fn common_passwords_are_refused() {
        for p in [
            "password1234",
            "qwertyuiop123",
            "iloveyou1234",
            "123456789012",
            "Password1234!",
            "Passw0rd!234",
            "p4ssw0rd1234",
            "1234drowssap",
            "qwerty123456",
            "1q2w3e4r5t6y",
            "letmein12345",
            "Welcome12345",
            "aaaaaaaaaaaa",
            "abcdefghijklmnop",
            "abc123abc123",
            "trustno1trustno1",
            "111111111111",
        ] {
            assert_eq!(
                check_password_policy(p, "someone@example.org"),
                Err(PasswordRejection::Common),
                "{p}"
            );
        }
    }

    #[test]
    fn a_whole_password_list_entry_is_refused_in_any_variant() {
        // "qwertyuiop123" is an entry of zxcvbn's password list; so are its l33t,
        // reversed and capitalised forms.
        for p in [
            "qwertyuiop123",
            "QwertyUiop123",
            "321poiuytrewq",
            "qw3rtyu10p123",
        ] {
            assert!(is_common(p), "{p}");
        }
    }

    #[test]
    fn passphrases_and_random_passwords_pass() {
        for p in [
            "correct horse battery staple",
            "mydogisnamedrex",
            "blue-coffee-mug",
            "sunshine2024!!",
            "Tr0ub4dor&3xx",
            "ȟéllo wörld ñ",
            "k7#Vq9!zR2mW",
        ] {
            assert_eq!(
                check_password_policy(p, "someone@example.org"),
                Ok(()),
                "{p}"
            );
        }
    }

    #[test]
    fn the_email_local_part_may_not_appear_in_the_password() {
        assert_eq!(
            check_password_policy("my Jane.Doe secret", "jane.doe@example.org"),
            Err(PasswordRejection::ContainsEmail)
        );
        // name+tag: the name alone counts too.
        assert_eq!(
            check_password_policy("orbit janedoe kettle", "JaneDoe+carelog@example.org"),
            Err(PasswordRejection::ContainsEmail)
        );
        // Local parts under 3 characters are ignored.
        assert_eq!(
            check_password_policy("mauve jo kettle", "jo@example.org"),
            Ok(())
        );
        // The domain does not count.
        assert_eq!(
            check_password_policy("mauve example kettle", "jane@example.org"),
            Ok(())
        );
    }

    #[test]
    fn rejections_read_as_sentences_without_the_password() {
        for r in [
            PasswordRejection::TooShort,
            PasswordRejection::TooLong,
            PasswordRejection::Common,
            PasswordRejection::ContainsEmail,
        ] {
            let text = r.to_string();
            assert!(
                text.starts_with(char::is_uppercase) && text.ends_with('.'),
                "{text}"
            );
        }
    }
}
