//! Access tokens: JWTs signed with Ed25519 (`alg: EdDSA`), and their public
//! keys as a JWK Set.
//!
//! Accounts signs with a [`SigningKey`] (PKCS#8 PEM, from a Secret file or
//! generated for a local run); the gateway checks tokens with a [`Verifier`]
//! built from the published JWKS. Only `EdDSA` is accepted — the algorithm is
//! never taken from the token — and `kid`, `iss`, `aud`, `exp` and `nbf` are
//! all checked. Key ids are RFC 7638 thumbprints.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{Identity, Role};

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not EdDSA")]
    UnsupportedAlgorithm,
    #[error("the token was signed by an unknown key")]
    UnknownKey(String),
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another issuer or audience")]
    WrongIssuerOrAudience,
    #[error("invalid key: {0}")]
    InvalidKey(String),
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub role: String,
    /// Seconds since the Unix epoch.
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The token's own id.
    pub jti: String,
    /// The user's e-mail address (so services can write to them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Claims {
    pub fn identity(&self) -> Option<Identity> {
        Some(Identity {
            user_id: self.sub.clone(),
            role: Role::parse(&self.role)?,
            email: self.email.clone(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

/// A public key in JWK form (RFC 8037 `OKP`/`Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// A JWK Set (RFC 7517).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The private key that signs tokens.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn thumbprint(public: &VerifyingKey) -> String {
    // RFC 7638: the required members, lexicographic order, no whitespace.
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        B64.encode(public.as_bytes())
    );
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, JwtError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| JwtError::InvalidKey(e.to_string()))?;
        Ok(Self::from_key(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    fn from_key(key: ed25519_dalek::SigningKey) -> Self {
        let kid = thumbprint(&key.verifying_key());
        Self { key, kid }
    }

    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self, JwtError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(Self::from_key)
            .map_err(|e| JwtError::InvalidKey(e.to_string()))
    }

    /// The key as PKCS#8 PEM, for keeping in a file.
    pub fn to_pem(&self) -> Result<String, JwtError> {
        self.key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| JwtError::InvalidKey(e.to_string()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: B64.encode(self.key.verifying_key().as_bytes()),
            kid: self.kid.clone(),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            typ: Some("JWT".into()),
            kid: self.kid.clone(),
        };
        let header = B64.encode(serde_json::to_vec(&header).unwrap_or_default());
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(signature.to_bytes()))
    }
}

/// Checks tokens against a set of public keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: HashMap<String, VerifyingKey>,
    issuer: String,
    audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    leeway: i64,
}

impl Verifier {
    /// A verifier for the Ed25519 keys in `jwks` (others are ignored).
    pub fn new(jwks: &Jwks, issuer: &str, audience: &str) -> Result<Self, JwtError> {
        let mut keys = HashMap::new();
        for jwk in jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
        {
            let bytes: [u8; 32] = B64
                .decode(&jwk.x)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| JwtError::InvalidKey(format!("key {} is not 32 bytes", jwk.kid)))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|e| JwtError::InvalidKey(e.to_string()))?;
            keys.insert(jwk.kid.clone(), key);
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway: 30,
        })
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The key id a token names, without checking anything else.
    pub fn kid_of(token: &str) -> Result<String, JwtError> {
        let header = token.split('.').next().ok_or(JwtError::Malformed)?;
        let header: Header =
            serde_json::from_slice(&B64.decode(header).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        Ok(header.kid)
    }

    /// Verifies `token` at time `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        if token.len() > 4096 {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header =
            serde_json::from_slice(&B64.decode(header_b64).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        let key = self
            .keys
            .get(&header.kid)
            .ok_or_else(|| JwtError::UnknownKey(header.kid.clone()))?;
        let signature: [u8; 64] = B64
            .decode(signature_b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(JwtError::Malformed)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        key.verify(signing_input.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| JwtError::BadSignature)?;
        let claims: Claims =
            serde_json::from_slice(&B64.decode(payload_b64).map_err(|_| JwtError::Malformed)?)
                .map_err(|_| JwtError::Malformed)?;
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(JwtError::WrongIssuerOrAudience);
        }
        if now > claims.exp + self.leeway {
            return Err(JwtError::Expired);
        }
        if now + self.leeway < claims.nbf {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "emporium".into(),
            aud: "emporium-api".into(),
            sub: "user-1".into(),
            role: "customer".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: "t1".into(),
            email: None,
        }
    }

    fn verifier(keys: &[&SigningKey]) -> Verifier {
        let jwks = Jwks {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        };
        Verifier::new(&jwks, "emporium", "emporium-api").unwrap()
    }

    #[test]
    fn signed_tokens_verify_and_carry_the_identity() {
        let key = SigningKey::generate().unwrap();
        let token = key.sign(&claims(1_000));
        let got = verifier(&[&key]).verify(&token, 1_100).unwrap();
        assert_eq!(
            got.identity().unwrap(),
            Identity {
                user_id: "user-1".into(),
                role: Role::Customer,
                email: None,
            }
        );
        assert_eq!(Verifier::kid_of(&token).unwrap(), key.kid());
    }

    #[test]
    fn tampered_expired_and_foreign_tokens_are_refused() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let v = verifier(&[&key]);
        let token = key.sign(&claims(1_000));
        assert_eq!(v.verify(&token, 1_000 + 900 + 31), Err(JwtError::Expired));
        assert_eq!(v.verify(&token, 1_000 - 31), Err(JwtError::NotYetValid));
        assert!(matches!(
            v.verify(&other.sign(&claims(1_000)), 1_000),
            Err(JwtError::UnknownKey(_))
        ));
        // Swap in another payload: the signature no longer matches.
        let mut admin = claims(1_000);
        admin.role = "admin".into();
        let forged_payload = B64.encode(serde_json::to_vec(&admin).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(v.verify(&forged, 1_000), Err(JwtError::BadSignature));
        // A key with the same kid but different bytes is the same as a bad signature.
        let impostor = Jwks {
            keys: vec![Jwk {
                x: other.public_jwk().x,
                ..key.public_jwk()
            }],
        };
        let v2 = Verifier::new(&impostor, "emporium", "emporium-api").unwrap();
        assert_eq!(v2.verify(&token, 1_000), Err(JwtError::BadSignature));
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"a".repeat(5000)] {
            assert!(v.verify(junk, 1_000).is_err(), "{junk}");
        }
    }

    #[test]
    fn other_algorithms_are_refused_even_with_a_known_kid() {
        let key = SigningKey::generate().unwrap();
        let header = B64.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid()));
        let payload = B64.encode(serde_json::to_vec(&claims(1_000)).unwrap());
        let token = format!("{header}.{payload}.");
        assert_eq!(
            verifier(&[&key]).verify(&token, 1_000),
            Err(JwtError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn keys_survive_pem_and_have_rfc7638_ids() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(key.kid().len(), 43);
        assert!(SigningKey::from_pem("not a key").is_err());
    }

    #[test]
    fn wrong_issuer_or_audience_is_refused() {
        let key = SigningKey::generate().unwrap();
        let mut c = claims(1_000);
        c.aud = "someone-else".into();
        assert_eq!(
            verifier(&[&key]).verify(&key.sign(&c), 1_000),
            Err(JwtError::WrongIssuerOrAudience)
        );
    }
}
