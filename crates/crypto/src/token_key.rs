//! Ed25519 signing keys for PASETO v4.public tokens, exchanged as PASERK strings.

use pasetors::keys::{AsymmetricKeyPair, Generate};
use pasetors::paserk::FormatAsPaserk;
use pasetors::version4::V4;

/// A fresh Ed25519 signing key as PASERK `k4.secret.…` (for `carelog keys generate`).
pub fn generate_paserk_secret() -> String {
    let pair = AsymmetricKeyPair::<V4>::generate().expect("the OS random source works");
    let mut out = String::new();
    pair.secret
        .fmt(&mut out)
        .expect("formatting a PASERK into a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pasetors::keys::AsymmetricSecretKey;

    #[test]
    fn generated_keys_are_valid_k4_secret_paserk() {
        let text = generate_paserk_secret();
        assert!(text.starts_with("k4.secret."));
        assert!(AsymmetricSecretKey::<V4>::try_from(text.as_str()).is_ok());
    }
}
