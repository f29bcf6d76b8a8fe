//! Access tokens: the key that signs them, and what they say.
//!
//! The signing key is an Ed25519 private key in PKCS#8 PEM. In a cluster it
//! comes from a Secret (`EMPORIUM_ACCOUNTS__SIGNING_KEY_FILE`); on a local
//! run it is kept at `signing_key_path`, generated on first start and written
//! with mode 0600, so tokens survive restarts. The key is never logged; only
//! its id (`kid`, an RFC 7638 thumbprint) is.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use emporium_chassis::jwt::{Claims, Jwks, SigningKey};
use time::OffsetDateTime;

use crate::domain::User;

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("accounts.signing_key is not a PKCS#8 Ed25519 PEM: {0}")]
    InvalidKey(String),
    #[error("accounts.signing_key_path `{path}` does not hold a PKCS#8 Ed25519 PEM: {reason}")]
    InvalidKeyFile { path: String, reason: String },
    #[error("accounts.signing_key_path `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot generate a signing key: {0}")]
    Generate(String),
}

/// Reads the key at `path`, or generates one and writes it there (mode
/// 0600, created atomically: a concurrent start or a crash never leaves a
/// half-written key, and the first key written wins).
pub fn load_or_generate(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => return parse_file(path, &pem),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let key = SigningKey::generate().map_err(|e| KeyError::Generate(e.to_string()))?;
    let pem = key
        .to_pem()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = write_private(&temporary, pem.as_bytes()).and_then(|()| {
        // A hard link fails if `path` exists: whoever linked first wins.
        std::fs::hard_link(&temporary, path)
    });
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            tracing::info!(path = %path.display(), kid = key.kid(), "generated a new token signing key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let pem = std::fs::read_to_string(path).map_err(io)?;
            parse_file(path, &pem)
        }
        Err(e) => Err(io(e)),
    }
}

fn parse_file(path: &Path, pem: &str) -> Result<SigningKey, KeyError> {
    warn_if_readable_by_others(path);
    SigningKey::from_pem(pem).map_err(|e| KeyError::InvalidKeyFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "the token signing key is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// A signed access token and how long it is valid.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Duration,
}

/// Issues access tokens with one key; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Issuer {
    key: SigningKey,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl Issuer {
    pub fn new(key: SigningKey, issuer: String, audience: String, ttl: Duration) -> Self {
        Self {
            key,
            issuer,
            audience,
            ttl,
        }
    }

    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// A token saying who `user` is and what they may do, valid from `now`
    /// for the configured time to live.
    pub fn issue(&self, user: &User, now: OffsetDateTime) -> AccessToken {
        let iat = now.unix_timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id.to_string(),
            role: user.role.as_str().to_owned(),
            iat,
            nbf: iat,
            exp: iat.saturating_add(ttl),
            jti: uuid::Uuid::new_v4().to_string(),
            email: Some(user.email.to_string()),
        };
        AccessToken {
            token: self.key.sign(&claims),
            expires_in: self.ttl,
        }
    }

    /// The public key as a JWK Set document.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.key.public_jwk()],
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_missing_key_file_is_generated_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("signing-key.pem");
        let first = load_or_generate(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = load_or_generate(&path).unwrap();
        assert_eq!(first.kid(), again.kid(), "the kept key is reused");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file is left: {leftovers:?}"
        );
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_naming_the_setting_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nsecretish\n").unwrap();
        let err = load_or_generate(&path).unwrap_err().to_string();
        assert!(err.contains("accounts.signing_key_path"), "{err}");
        assert!(!err.contains("secretish"), "{err}");
    }
}
