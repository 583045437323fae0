//! PASETO `v4.public` (Ed25519) access and MFA tokens.
//!
//! A token is signed with the current key and carries its PASERK id (`k4.pid.…`) in the
//! footer as `{"kid": …}`; it is verified with the key of that id, which may be a retired
//! key kept for rotation. Every token is bound to the implicit assertion
//! `carelog:<audience>`, so a token minted for another deployment never verifies here even
//! when it shares a key.
//!
//! Claims are JSON (`sub`, `sid`, `jti`, `roles`, `purpose`, `iat`, `nbf`, `exp`, `iss`,
//! `aud`); times are RFC 3339 strings in UTC, written to the whole second (any fraction is
//! dropped when signing), as the PASETO spec's registered claims are.
//!
//! [`TokenKeys::verify`] refuses, in this order: anything that is not `v4.public.`
//! (`v4.local`, `v3`, `v2` …); a token that does not parse; a footer without a known `kid`;
//! a bad signature (under the implicit assertion); claims that do not parse; another issuer
//! or audience; another purpose (an MFA token is never an access token, and vice versa);
//! `exp <= now`; `nbf > now + 30 s` (the [`NBF_LEEWAY_SECONDS`] allow a verifying node's
//! clock to lag the signing node's a little; `exp` has no leeway).
//!
//! The footer is read before the signature is checked, only to pick the key: it is covered
//! by the signature, so a forged `kid` simply fails verification.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::token::{TrustedToken, UntrustedToken};
use pasetors::version4::{PublicToken, V4};
use pasetors::Public;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// Seconds by which `nbf` may lie in the future of the verifier's clock (clock skew between
/// nodes). `exp` gets none.
pub const NBF_LEEWAY_SECONDS: i64 = 30;

/// Longest token text accepted before any parsing (ours are well under 1 KiB).
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest footer accepted before it is parsed as JSON.
const MAX_FOOTER_LEN: usize = 512;

/// What a token may be used for: the claim `purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenPurpose {
    /// A bearer token for the API (`"access"`).
    Access,
    /// The short-lived token between password and TOTP during login (`"mfa"`).
    Mfa,
}

/// The claims of a carelog token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The session (refresh-token family) the token belongs to.
    pub sid: Uuid,
    /// The token's own id.
    pub jti: Uuid,
    /// The roles the user had when the token was issued (re-checked on use).
    pub roles: Vec<String>,
    /// What the token may be used for.
    pub purpose: TokenPurpose,
    /// Issued at.
    #[serde(with = "rfc3339_seconds")]
    pub iat: DateTime<Utc>,
    /// Not before.
    #[serde(with = "rfc3339_seconds")]
    pub nbf: DateTime<Utc>,
    /// Expires at (the token is refused from this instant on).
    #[serde(with = "rfc3339_seconds")]
    pub exp: DateTime<Utc>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// Why a token or a token key was refused. The messages never quote the token or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not well-formed: bad encoding, footer or claims.
    #[error("the token is malformed")]
    Malformed,
    /// Not a `v4.public` token (`v4.local`, `v3`, `v2` …).
    #[error("the token is not a PASETO v4.public token")]
    WrongVersionOrPurpose,
    /// The footer names no key, or a key that is not current or retired here.
    #[error("the token names a signing key that is not known")]
    UnknownKey,
    /// The signature does not verify (altered token, forged key id, other assertion).
    #[error("the token's signature is not valid")]
    BadSignature,
    /// `exp` has passed. The signature was good, so the token's user and session are
    /// known (for the audit trail: a 401 with a known user is recorded).
    #[error("the token has expired")]
    Expired {
        /// The token's user (`sub`).
        user: Uuid,
        /// The token's session (`sid`).
        session: Uuid,
    },
    /// `nbf` is still ahead (beyond the allowed clock skew).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` or `aud` is not ours.
    #[error("the token was issued by or for another party")]
    WrongIssuerOrAudience,
    /// An MFA token offered as an access token, or the reverse.
    #[error("the token was issued for another purpose")]
    WrongTokenPurpose,
    /// A configured key is not a valid PASERK of the expected kind.
    #[error("invalid token key: {0}")]
    KeyMaterial(String),
}

/// A public key accepted for verification.
struct VerificationKey {
    kid: String,
    paserk: String,
    key: AsymmetricPublicKey<V4>,
}

/// The signing key, the keys accepted for verification (current first, then retired), and
/// the issuer and audience every token carries.
pub struct TokenKeys {
    signing: AsymmetricSecretKey<V4>,
    verification: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    implicit_assertion: String,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.verification.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("TokenKeys")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Loads the signing key and the verification keys.
    ///
    /// - `secret_paserk`: the signing key as PASERK `k4.secret.…` (`CARELOG_TOKEN_KEY`).
    /// - `retired_public_paserks`: older keys as PASERK `k4.public.…`, still accepted for
    ///   verification while their tokens live out (rotation).
    /// - `issuer`: the `iss` claim, e.g. `carelog`.
    /// - `audience`: the `aud` claim (`CARELOG_TOKEN_AUDIENCE`, default `carelog`).
    pub fn new(
        secret_paserk: &str,
        retired_public_paserks: &[String],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, TokenError> {
        let signing = parse_secret(secret_paserk)?;
        let current = AsymmetricPublicKey::<V4>::try_from(&signing)
            .map_err(|_| key_error("the signing key has no valid public half"))?;
        let mut verification = vec![VerificationKey::new(current)];
        for text in retired_public_paserks {
            let key = AsymmetricPublicKey::<V4>::try_from(text.trim())
                .map_err(|_| key_error("a retired token key is not a valid k4.public PASERK"))?;
            let key = VerificationKey::new(key);
            if verification.iter().all(|known| known.kid != key.kid) {
                verification.push(key);
            }
        }
        Ok(Self {
            signing,
            verification,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            implicit_assertion: implicit_assertion_for(audience),
        })
    }

    /// The implicit assertion every token is bound to: `carelog:<audience>`.
    pub fn implicit_assertion(&self) -> String {
        self.implicit_assertion.clone()
    }

    /// The `iss` claim of tokens signed here.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` claim of tokens signed here.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The PASERK id (`k4.pid.…`) of the current signing key's public half.
    pub fn current_kid(&self) -> &str {
        &self.verification[0].kid
    }

    /// Signs `claims` with the current key: footer `{"kid":"k4.pid.…"}`, implicit assertion
    /// bound. Times are written to the whole second.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_string(claims).expect("claims always serialize to JSON");
        let footer = serde_json::json!({ "kid": self.current_kid() }).to_string();
        PublicToken::sign(
            &self.signing,
            payload.as_bytes(),
            Some(footer.as_bytes()),
            Some(self.implicit_assertion.as_bytes()),
        )
        .expect("signing a non-empty payload with a validated Ed25519 key cannot fail")
    }

    /// Verifies `token` at `now` for `purpose` and returns its claims (see the module
    /// documentation for every check and its order).
    pub fn verify(
        &self,
        token: &str,
        now: DateTime<Utc>,
        purpose: TokenPurpose,
    ) -> Result<Claims, TokenError> {
        let untrusted = parse_untrusted(token)?;
        let kid = footer_kid(untrusted.untrusted_footer())?;
        let key = self
            .verification
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let trusted = verify_signature(&key.key, &untrusted, self.implicit_assertion.as_bytes())?;
        let claims: Claims =
            serde_json::from_str(trusted.payload()).map_err(|_| TokenError::Malformed)?;

        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(TokenError::WrongIssuerOrAudience);
        }
        if claims.purpose != purpose {
            return Err(TokenError::WrongTokenPurpose);
        }
        if claims.exp <= now {
            return Err(TokenError::Expired {
                user: claims.sub,
                session: claims.sid,
            });
        }
        if claims.nbf > now + TimeDelta::seconds(NBF_LEEWAY_SECONDS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// The verification keys as `(kid, k4.public PASERK)`, the current key first, for
    /// `GET /api/auth/keys`.
    pub fn public_keys(&self) -> Vec<(String, String)> {
        self.verification
            .iter()
            .map(|k| (k.kid.clone(), k.paserk.clone()))
            .collect()
    }
}

impl VerificationKey {
    fn new(key: AsymmetricPublicKey<V4>) -> Self {
        Self {
            kid: pid_of(&key),
            paserk: paserk_of(&key),
            key,
        }
    }
}

/// The public key (PASERK `k4.public.…`) of a signing key given as PASERK `k4.secret.…`.
pub fn paserk_public_of_secret(secret_paserk: &str) -> Result<String, TokenError> {
    let secret = parse_secret(secret_paserk)?;
    let public = AsymmetricPublicKey::<V4>::try_from(&secret)
        .map_err(|_| key_error("the signing key has no valid public half"))?;
    Ok(paserk_of(&public))
}

/// The PASERK id (`k4.pid.…`) of a public key given as PASERK `k4.public.…`: the `kid`
/// that tokens signed by its secret half carry.
pub fn paserk_pid(public_paserk: &str) -> Result<String, TokenError> {
    let public = AsymmetricPublicKey::<V4>::try_from(public_paserk.trim())
        .map_err(|_| key_error("not a valid k4.public PASERK"))?;
    Ok(pid_of(&public))
}

/// `carelog:<audience>`.
fn implicit_assertion_for(audience: &str) -> String {
    format!("carelog:{audience}")
}

fn key_error(why: &str) -> TokenError {
    TokenError::KeyMaterial(why.to_owned())
}

/// Parses a `k4.secret` PASERK. An all-zero seed is refused here: pasetors 0.8 hands the
/// seed to ed25519-compact, whose key derivation panics on it instead of failing.
fn parse_secret(secret_paserk: &str) -> Result<AsymmetricSecretKey<V4>, TokenError> {
    const NOT_A_SECRET: &str = "the signing key is not a valid k4.secret PASERK";
    let text = secret_paserk.trim();
    let body = text
        .strip_prefix("k4.secret.")
        .ok_or_else(|| key_error(NOT_A_SECRET))?;
    let mut raw = Zeroizing::new([0u8; 64]);
    let decoded = Base64UrlSafeNoPadding::decode(&mut raw[..], body, None)
        .map_err(|_| key_error(NOT_A_SECRET))?;
    if decoded.len() != 64 {
        return Err(key_error(NOT_A_SECRET));
    }
    if raw[..32].iter().all(|b| *b == 0) {
        return Err(key_error("the signing key's seed is all zeros"));
    }
    AsymmetricSecretKey::<V4>::try_from(text).map_err(|_| key_error(NOT_A_SECRET))
}

fn paserk_of(key: &AsymmetricPublicKey<V4>) -> String {
    let mut out = String::new();
    key.fmt(&mut out)
        .expect("formatting a PASERK into a String cannot fail");
    out
}

fn pid_of(key: &AsymmetricPublicKey<V4>) -> String {
    let mut out = String::new();
    Id::from(key)
        .fmt(&mut out)
        .expect("formatting a PASERK id into a String cannot fail");
    out
}

/// Refuses every other version and purpose by the header, then decodes the token.
fn parse_untrusted(token: &str) -> Result<UntrustedToken<Public, V4>, TokenError> {
    if !token.starts_with(PublicToken::HEADER) {
        return Err(TokenError::WrongVersionOrPurpose);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    UntrustedToken::<Public, V4>::try_from(token).map_err(|_| TokenError::Malformed)
}

/// The `kid` of a not yet verified footer. The footer is signed, so it only picks the key.
/// (Parsed with serde_json rather than pasetors' `Footer`, which compiles a regex per call.)
fn footer_kid(footer: &[u8]) -> Result<String, TokenError> {
    #[derive(Deserialize)]
    struct KidFooter {
        kid: Option<String>,
    }
    if footer.is_empty() {
        return Err(TokenError::UnknownKey);
    }
    if footer.len() > MAX_FOOTER_LEN {
        return Err(TokenError::Malformed);
    }
    let parsed: KidFooter = serde_json::from_slice(footer).map_err(|_| TokenError::Malformed)?;
    parsed.kid.ok_or(TokenError::UnknownKey)
}

/// The signature check alone (also run on the official test vectors).
fn verify_signature(
    key: &AsymmetricPublicKey<V4>,
    token: &UntrustedToken<Public, V4>,
    implicit_assertion: &[u8],
) -> Result<TrustedToken, TokenError> {
    PublicToken::verify(key, token, None, Some(implicit_assertion))
        .map_err(|_| TokenError::BadSignature)
}

/// RFC 3339 in UTC, whole seconds (`2030-01-01T00:00:00Z`); reads any RFC 3339 offset.
mod rfc3339_seconds {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_key::generate_paserk_secret;
    use chrono::TimeZone;
    use pasetors::keys::{AsymmetricKeyPair, Generate};
    use pasetors::version4::LocalToken;
    use serde_json::Value;

    const V4_VECTORS: &str = include_str!("../tests/vectors/v4.json");
    const K4_PID: &str = include_str!("../tests/vectors/PASERK/k4.pid.json");
    const K4_PUBLIC: &str = include_str!("../tests/vectors/PASERK/k4.public.json");
    const K4_SECRET: &str = include_str!("../tests/vectors/PASERK/k4.secret.json");

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap()
    }

    fn keys_with(secret: &str, retired: &[String]) -> TokenKeys {
        TokenKeys::new(secret, retired, "carelog", "carelog").unwrap()
    }

    fn keys() -> TokenKeys {
        keys_with(&generate_paserk_secret(), &[])
    }

    fn claims(purpose: TokenPurpose) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            jti: Uuid::new_v4(),
            roles: vec!["BASE:DOCTOR".into()],
            purpose,
            iat: t0(),
            nbf: t0(),
            exp: t0() + TimeDelta::minutes(15),
            iss: "carelog".into(),
            aud: "carelog".into(),
        }
    }

    fn vector_tests(text: &str) -> Vec<Value> {
        let file: Value = serde_json::from_str(text).unwrap();
        file["tests"].as_array().unwrap().clone()
    }

    fn field<'a>(test: &'a Value, name: &str) -> &'a str {
        test[name].as_str().unwrap_or_default()
    }

    fn hex_field(test: &Value, name: &str) -> Vec<u8> {
        hex::decode(field(test, name)).unwrap()
    }

    /// The signature path of `verify` (header check, decode, signature) for a vector.
    fn verify_vector(
        token: &str,
        key: &AsymmetricPublicKey<V4>,
        implicit_assertion: &str,
    ) -> Result<String, TokenError> {
        let untrusted = parse_untrusted(token)?;
        let trusted = verify_signature(key, &untrusted, implicit_assertion.as_bytes())?;
        Ok(trusted.payload().to_owned())
    }

    #[test]
    fn a_signed_token_verifies_and_yields_its_claims() {
        let keys = keys();
        let c = claims(TokenPurpose::Access);
        let token = keys.sign(&c);
        assert!(token.starts_with("v4.public."));
        assert_eq!(keys.verify(&token, t0(), TokenPurpose::Access), Ok(c));
    }

    #[test]
    fn the_footer_names_the_key_and_times_are_rfc3339() {
        let keys = keys();
        let token = keys.sign(&claims(TokenPurpose::Access));
        let untrusted = parse_untrusted(&token).unwrap();
        let footer: Value = serde_json::from_slice(untrusted.untrusted_footer()).unwrap();
        assert_eq!(footer, serde_json::json!({ "kid": keys.current_kid() }));
        assert!(keys.current_kid().starts_with("k4.pid."));
        let payload: Value = serde_json::from_slice(untrusted.untrusted_payload()).unwrap();
        assert_eq!(payload["exp"], "2030-01-01T12:15:00Z");
        assert_eq!(payload["nbf"], "2030-01-01T12:00:00Z");
        assert_eq!(payload["purpose"], "access");
    }

    #[test]
    fn fractions_of_a_second_are_dropped_when_signing() {
        let keys = keys();
        let mut c = claims(TokenPurpose::Access);
        c.exp += TimeDelta::milliseconds(750);
        let verified = keys
            .verify(&keys.sign(&c), t0(), TokenPurpose::Access)
            .unwrap();
        assert_eq!(verified.exp, t0() + TimeDelta::minutes(15));
    }

    #[test]
    fn the_implicit_assertion_is_carelog_and_the_audience() {
        let keys = TokenKeys::new(&generate_paserk_secret(), &[], "carelog", "clinic-a").unwrap();
        assert_eq!(keys.implicit_assertion(), "carelog:clinic-a");
    }

    #[test]
    fn a_flipped_byte_breaks_the_signature() {
        let keys = keys();
        let token = keys.sign(&claims(TokenPurpose::Access));
        let mut bytes = token.into_bytes();
        let at = "v4.public.".len() + 20;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let token = String::from_utf8(bytes).unwrap();
        assert_eq!(
            keys.verify(&token, t0(), TokenPurpose::Access),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_token_of_another_key_names_an_unknown_kid() {
        let ours = keys();
        let theirs = keys();
        let token = theirs.sign(&claims(TokenPurpose::Access));
        assert_eq!(
            ours.verify(&token, t0(), TokenPurpose::Access),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_token_of_another_key_claiming_our_kid_has_a_bad_signature() {
        let ours = keys();
        let other = AsymmetricKeyPair::<V4>::generate().unwrap();
        let payload = serde_json::to_string(&claims(TokenPurpose::Access)).unwrap();
        let footer = serde_json::json!({ "kid": ours.current_kid() }).to_string();
        let forged = PublicToken::sign(
            &other.secret,
            payload.as_bytes(),
            Some(footer.as_bytes()),
            Some(ours.implicit_assertion().as_bytes()),
        )
        .unwrap();
        assert_eq!(
            ours.verify(&forged, t0(), TokenPurpose::Access),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_token_without_a_kid_is_refused() {
        let keys = keys();
        let secret = AsymmetricKeyPair::<V4>::generate().unwrap().secret;
        let payload = serde_json::to_string(&claims(TokenPurpose::Access)).unwrap();
        let ia = keys.implicit_assertion();
        let bare =
            PublicToken::sign(&secret, payload.as_bytes(), None, Some(ia.as_bytes())).unwrap();
        let no_kid = PublicToken::sign(
            &secret,
            payload.as_bytes(),
            Some(b"{}"),
            Some(ia.as_bytes()),
        )
        .unwrap();
        let not_json = PublicToken::sign(
            &secret,
            payload.as_bytes(),
            Some(b"kid=1"),
            Some(ia.as_bytes()),
        )
        .unwrap();
        let check = |t: &str| keys.verify(t, t0(), TokenPurpose::Access);
        assert_eq!(check(&bare), Err(TokenError::UnknownKey));
        assert_eq!(check(&no_kid), Err(TokenError::UnknownKey));
        assert_eq!(check(&not_json), Err(TokenError::Malformed));
    }

    #[test]
    fn a_token_bound_to_another_audience_assertion_is_refused() {
        let secret = generate_paserk_secret();
        let a = TokenKeys::new(&secret, &[], "carelog", "clinic-a").unwrap();
        let b = TokenKeys::new(&secret, &[], "carelog", "clinic-b").unwrap();
        let mut c = claims(TokenPurpose::Access);
        c.aud = "clinic-b".into();
        // Even with the claim set to b's audience, a's assertion does not verify at b.
        let token = a.sign(&c);
        assert_eq!(
            b.verify(&token, t0(), TokenPurpose::Access),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused_at_exp() {
        let keys = keys();
        let c = claims(TokenPurpose::Access);
        let token = keys.sign(&c);
        let check = |now| keys.verify(&token, now, TokenPurpose::Access);
        assert!(check(c.exp - TimeDelta::seconds(1)).is_ok());
        let expired = Err(TokenError::Expired {
            user: c.sub,
            session: c.sid,
        });
        assert_eq!(check(c.exp), expired);
        assert_eq!(check(c.exp + TimeDelta::hours(1)), expired);
    }

    #[test]
    fn a_token_not_yet_valid_is_refused_beyond_the_leeway() {
        let keys = keys();
        let mut c = claims(TokenPurpose::Access);
        c.nbf = t0() + TimeDelta::minutes(5);
        let token = keys.sign(&c);
        let check = |now| keys.verify(&token, now, TokenPurpose::Access);
        assert_eq!(check(t0()), Err(TokenError::NotYetValid));
        let leeway = TimeDelta::seconds(NBF_LEEWAY_SECONDS);
        assert_eq!(
            check(c.nbf - leeway - TimeDelta::seconds(1)),
            Err(TokenError::NotYetValid)
        );
        assert!(check(c.nbf - leeway).is_ok());
    }

    #[test]
    fn a_v4_local_token_is_refused() {
        let keys = keys();
        let local = pasetors::keys::SymmetricKey::<V4>::generate().unwrap();
        let token = LocalToken::encrypt(
            &local,
            serde_json::to_string(&claims(TokenPurpose::Access))
                .unwrap()
                .as_bytes(),
            None,
            None,
        )
        .unwrap();
        assert!(token.starts_with("v4.local."));
        assert_eq!(
            keys.verify(&token, t0(), TokenPurpose::Access),
            Err(TokenError::WrongVersionOrPurpose)
        );
    }

    #[test]
    fn v2_and_v3_tokens_are_refused() {
        let keys = keys();
        let v4 = keys.sign(&claims(TokenPurpose::Access));
        let body = v4.strip_prefix("v4.public.").unwrap();
        for header in ["v2.public.", "v3.public.", "v2.local.", "V4.PUBLIC.", ""] {
            assert_eq!(
                keys.verify(&format!("{header}{body}"), t0(), TokenPurpose::Access),
                Err(TokenError::WrongVersionOrPurpose),
                "{header}"
            );
        }
    }

    #[test]
    fn garbage_after_the_header_is_malformed() {
        let keys = keys();
        for token in [
            "v4.public.",
            "v4.public.!!!",
            "v4.public.AAAA",
            "v4.public.a.b.c",
        ] {
            assert_eq!(
                keys.verify(token, t0(), TokenPurpose::Access),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
        let huge = format!("v4.public.{}", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(
            keys.verify(&huge, t0(), TokenPurpose::Access),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn another_issuer_or_audience_claim_is_refused() {
        let keys = keys();
        let mut c = claims(TokenPurpose::Access);
        c.aud = "elsewhere".into();
        assert_eq!(
            keys.verify(&keys.sign(&c), t0(), TokenPurpose::Access),
            Err(TokenError::WrongIssuerOrAudience)
        );
        let mut c = claims(TokenPurpose::Access);
        c.iss = "someone-else".into();
        assert_eq!(
            keys.verify(&keys.sign(&c), t0(), TokenPurpose::Access),
            Err(TokenError::WrongIssuerOrAudience)
        );
    }

    #[test]
    fn an_mfa_token_is_not_an_access_token_nor_the_reverse() {
        let keys = keys();
        let mfa = keys.sign(&claims(TokenPurpose::Mfa));
        let access = keys.sign(&claims(TokenPurpose::Access));
        assert_eq!(
            keys.verify(&mfa, t0(), TokenPurpose::Access),
            Err(TokenError::WrongTokenPurpose)
        );
        assert_eq!(
            keys.verify(&access, t0(), TokenPurpose::Mfa),
            Err(TokenError::WrongTokenPurpose)
        );
        assert!(keys.verify(&mfa, t0(), TokenPurpose::Mfa).is_ok());
    }

    #[test]
    fn tokens_of_a_retired_key_verify_only_while_it_is_listed() {
        let old_secret = generate_paserk_secret();
        let old = keys_with(&old_secret, &[]);
        let token = old.sign(&claims(TokenPurpose::Access));

        let old_public = paserk_public_of_secret(&old_secret).unwrap();
        let rotated = keys_with(&generate_paserk_secret(), std::slice::from_ref(&old_public));
        assert!(rotated.verify(&token, t0(), TokenPurpose::Access).is_ok());
        assert_ne!(rotated.current_kid(), old.current_kid());

        let keys = rotated.public_keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].0, rotated.current_kid());
        assert_eq!(keys[1], (old.current_kid().to_owned(), old_public));

        let forgotten = keys_with(&generate_paserk_secret(), &[]);
        assert_eq!(
            forgotten.verify(&token, t0(), TokenPurpose::Access),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn the_current_key_listed_as_retired_is_not_listed_twice() {
        let secret = generate_paserk_secret();
        let public = paserk_public_of_secret(&secret).unwrap();
        let keys = keys_with(&secret, &[public]);
        assert_eq!(keys.public_keys().len(), 1);
    }

    #[test]
    fn bad_key_material_is_refused_without_echoing_it() {
        let secret = generate_paserk_secret();
        let public = paserk_public_of_secret(&secret).unwrap();
        for bad in [public.as_str(), "k4.secret.AAAA", "", "k3.secret.x"] {
            let err = TokenKeys::new(bad, &[], "carelog", "carelog").unwrap_err();
            assert!(matches!(err, TokenError::KeyMaterial(_)));
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad));
            }
        }
        let err = TokenKeys::new(&secret, std::slice::from_ref(&secret), "carelog", "carelog")
            .unwrap_err();
        assert!(matches!(err, TokenError::KeyMaterial(_)));
        assert!(!err.to_string().contains(&secret));
    }

    #[test]
    fn token_keys_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<TokenKeys>();
    }

    #[test]
    fn debug_shows_no_key_material() {
        let secret = generate_paserk_secret();
        let keys = keys_with(&secret, &[]);
        let shown = format!("{keys:?}");
        let body = secret.strip_prefix("k4.secret.").unwrap();
        assert!(!shown.contains(body));
        assert!(shown.contains(keys.current_kid()));
    }

    #[test]
    fn official_4_s_vectors_verify_and_sign_identically() {
        let mut seen = 0;
        for test in vector_tests(V4_VECTORS) {
            let name = field(&test, "name");
            if !name.starts_with("4-S-") || test["expect-fail"].as_bool().unwrap() {
                continue;
            }
            seen += 1;
            let public = AsymmetricPublicKey::<V4>::from(&hex_field(&test, "public-key")).unwrap();
            let token = field(&test, "token");
            let footer = field(&test, "footer");
            let ia = field(&test, "implicit-assertion");
            let payload =
                verify_vector(token, &public, ia).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(payload, field(&test, "payload"), "{name}");

            // The footer the token carries is the vector's.
            let untrusted = parse_untrusted(token).unwrap();
            assert_eq!(untrusted.untrusted_footer(), footer.as_bytes(), "{name}");

            // With the wrong implicit assertion it no longer verifies.
            assert_eq!(
                verify_vector(token, &public, "carelog:other"),
                Err(TokenError::BadSignature),
                "{name}"
            );

            // Ed25519 is deterministic: signing the payload gives the very token.
            let secret = AsymmetricSecretKey::<V4>::from(&hex_field(&test, "secret-key")).unwrap();
            let signed = PublicToken::sign(
                &secret,
                payload.as_bytes(),
                (!footer.is_empty()).then_some(footer.as_bytes()),
                (!ia.is_empty()).then_some(ia.as_bytes()),
            )
            .unwrap();
            assert_eq!(signed, token, "{name}");
        }
        assert_eq!(seen, 3);
    }

    #[test]
    fn official_4_f_vectors_are_refused() {
        let tests = vector_tests(V4_VECTORS);
        // The 4-F vectors that carry no public key are tried against the 4-S key.
        let s_key = tests
            .iter()
            .find(|t| field(t, "name").starts_with("4-S-"))
            .map(|t| hex_field(t, "public-key"))
            .unwrap();
        let mut seen = 0;
        for test in &tests {
            let name = field(test, "name");
            if !name.starts_with("4-F-") {
                continue;
            }
            seen += 1;
            assert!(test["expect-fail"].as_bool().unwrap(), "{name}");
            let key_bytes = match test.get("public-key").and_then(Value::as_str) {
                Some(hex_key) => hex::decode(hex_key).unwrap(),
                None => s_key.clone(),
            };
            let public = AsymmetricPublicKey::<V4>::from(&key_bytes).unwrap();
            let token = field(test, "token");
            let ia = field(test, "implicit-assertion");
            assert!(
                verify_vector(token, &public, ia).is_err(),
                "{name} must be refused"
            );
            // And through the full `verify`, whatever key it names.
            let keys = keys();
            assert!(keys.verify(token, t0(), TokenPurpose::Access).is_err());
        }
        assert_eq!(seen, 5);
    }

    #[test]
    fn paserk_ids_match_the_k4_pid_vectors() {
        let mut valid = 0;
        for test in vector_tests(K4_PID) {
            let name = field(&test, "name");
            let key = AsymmetricPublicKey::<V4>::from(&hex_field(&test, "key"));
            if test["expect-fail"].as_bool().unwrap() {
                assert!(key.is_err(), "{name}: the key must be refused");
                continue;
            }
            valid += 1;
            let key = key.unwrap();
            assert_eq!(pid_of(&key), field(&test, "paserk"), "{name}");
            assert_eq!(
                paserk_pid(&paserk_of(&key)).unwrap(),
                field(&test, "paserk"),
                "{name}"
            );
        }
        assert_eq!(valid, 3);
    }

    /// k4.secret-1 has an all-zero seed, which pasetors 0.8 cannot load (ed25519-compact
    /// panics on it); `TokenKeys` refuses it instead.
    fn has_zero_seed(test: &Value) -> bool {
        let seed = field(test, "secret-key-seed");
        !seed.is_empty() && seed.bytes().all(|b| b == b'0')
    }

    #[test]
    fn current_kid_is_the_pid_of_the_public_key() {
        for test in vector_tests(K4_SECRET) {
            if test["expect-fail"].as_bool().unwrap() || has_zero_seed(&test) {
                continue;
            }
            let keys = keys_with(field(&test, "paserk"), &[]);
            let public = AsymmetricPublicKey::<V4>::from(&hex_field(&test, "public-key")).unwrap();
            assert_eq!(keys.current_kid(), pid_of(&public));
            assert_eq!(keys.public_keys()[0].1, paserk_of(&public));
        }
    }

    #[test]
    fn k4_public_vectors_round_trip() {
        let mut valid = 0;
        for test in vector_tests(K4_PUBLIC) {
            let name = field(&test, "name");
            let key = AsymmetricPublicKey::<V4>::from(&hex_field(&test, "key"));
            if test["expect-fail"].as_bool().unwrap() {
                assert!(key.is_err(), "{name}: the key must be refused");
                continue;
            }
            valid += 1;
            let paserk = field(&test, "paserk");
            assert_eq!(paserk_of(&key.unwrap()), paserk, "{name}");
            let parsed = AsymmetricPublicKey::<V4>::try_from(paserk).unwrap();
            assert_eq!(parsed.as_bytes(), hex_field(&test, "key"), "{name}");
        }
        assert_eq!(valid, 3);
    }

    #[test]
    fn k4_secret_vectors_round_trip() {
        let mut valid = 0;
        for test in vector_tests(K4_SECRET) {
            let name = field(&test, "name");
            if has_zero_seed(&test) {
                let paserk = field(&test, "paserk");
                let refused = TokenError::KeyMaterial("the signing key's seed is all zeros".into());
                assert_eq!(paserk_public_of_secret(paserk), Err(refused.clone()));
                assert_eq!(
                    TokenKeys::new(paserk, &[], "carelog", "carelog").unwrap_err(),
                    refused
                );
                continue;
            }
            let key = AsymmetricSecretKey::<V4>::from(&hex_field(&test, "key"));
            if test["expect-fail"].as_bool().unwrap() {
                assert!(key.is_err(), "{name}: the key must be refused");
                continue;
            }
            valid += 1;
            let paserk = field(&test, "paserk");
            let mut formatted = String::new();
            key.unwrap().fmt(&mut formatted).unwrap();
            assert_eq!(formatted, paserk, "{name}");
            let parsed = AsymmetricSecretKey::<V4>::try_from(paserk).unwrap();
            assert_eq!(parsed.as_bytes(), hex_field(&test, "key"), "{name}");

            let public = AsymmetricPublicKey::<V4>::from(&hex_field(&test, "public-key")).unwrap();
            assert_eq!(
                paserk_public_of_secret(paserk).unwrap(),
                paserk_of(&public),
                "{name}"
            );
        }
        assert_eq!(valid, 2, "k4.secret-2 and -3; -1 is the all-zero seed");
    }
}
