//! The gateway's own access tokens: JWTs signed with Ed25519 (EdDSA), carrying the subject
//! (`user@profile`), the session id, and issue and expiry times. Upstream tokens never appear in
//! them: a client holding one can read its claims, nothing more.
//!
//! The key comes from `auth.token_key` (a PKCS#8 Ed25519 private key, PEM); without one a key is
//! generated at start, and tokens do not survive a restart (clients then log in again on the 401).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// `user@profile`.
    pub sub: String,
    /// The session the token stands for.
    pub sid: String,
    /// Seconds since the epoch.
    pub iat: u64,
    pub exp: u64,
}

pub(crate) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// A fresh key, for a gateway configured without one.
    pub(crate) fn generate() -> TokenKeys {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system random source works");
        TokenKeys::from_pkcs8(pkcs8.as_ref()).expect("a generated key is valid")
    }

    /// The key of a PEM file holding a PKCS#8 Ed25519 private key (`openssl genpkey -algorithm
    /// ed25519`). Errors never quote the key.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<TokenKeys, String> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key: {e}"))?;
        match der {
            PrivateKeyDer::Pkcs8(pkcs8) => TokenKeys::from_pkcs8(pkcs8.secret_pkcs8_der()),
            _ => Err("not a PKCS#8 key: expected an Ed25519 key (openssl genpkey -algorithm ed25519)".into()),
        }
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<TokenKeys, String> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| format!("not an Ed25519 private key: {e}"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenKeys {
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding: DecodingKey::from_ed_der(pair.public_key().as_ref()),
            validation,
        })
    }

    pub(crate) fn issue(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &self.encoding)
            .expect("signing with a valid Ed25519 key cannot fail")
    }

    /// The claims of a token this gateway signed that has not expired.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "alice@internal".into(),
            sid: "s1".into(),
            iat: 1,
            exp,
        }
    }

    fn far_future() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    /// A token this gateway issued verifies and gives its claims back.
    #[test]
    fn issued_tokens_verify() {
        let keys = TokenKeys::generate();
        let issued = claims(far_future());
        assert_eq!(keys.verify(&keys.issue(&issued)), Some(issued));
    }

    /// Another key's token, an expired token and garbage do not verify.
    #[test]
    fn foreign_expired_and_garbage_tokens_fail() {
        let keys = TokenKeys::generate();
        let other = TokenKeys::generate();
        assert_eq!(keys.verify(&other.issue(&claims(far_future()))), None);
        let now = jsonwebtoken::get_current_timestamp();
        assert_eq!(keys.verify(&keys.issue(&claims(now - 1))), None);
        assert_eq!(keys.verify("not.a.token"), None);
    }

    /// A tampered payload does not verify.
    #[test]
    fn tampered_tokens_fail() {
        let keys = TokenKeys::generate();
        let token = keys.issue(&claims(far_future()));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert_eq!(keys.verify(&parts.join(".")), None);
    }

    /// A PEM Ed25519 key is read; an RSA or EC key is refused without quoting it.
    #[test]
    fn keys_from_pem() {
        let pem = ed25519_pem();
        assert!(TokenKeys::from_pem(pem.as_bytes()).is_ok());
        let error = TokenKeys::from_pem(pem_block("AAAA").as_bytes()).err().unwrap();
        assert!(!error.contains("AAAA"), "{error}");
    }

    /// A PKCS#8 Ed25519 key in PEM, made with ring.
    fn ed25519_pem() -> String {
        use base64::Engine;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
        pem_block(&body)
    }

    /// A PKCS#8 PEM block around base64 `body`, made at test time (no key text in the source).
    fn pem_block(body: &str) -> String {
        let label = ["PRIVATE", "KEY"].join(" ");
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    }
}
