//! The accounts' settings (section `[accounts]`, variables `EMPORIUM_ACCOUNTS__…`).

use std::net::SocketAddr;
use std::path::PathBuf;

use emporium_chassis::client::RegistrySettings;
use emporium_chassis::config::{
    ConfigError, DatabaseConfig, Duration, Secret, ShutdownConfig, Sources,
};
use emporium_chassis::grpc::Faults;
use serde::{Deserialize, Serialize};

/// The configuration section and environment prefix of this service.
pub const SECTION: &str = "accounts";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// gRPC API (and grpc.health.v1, reflection).
    pub grpc_addr: SocketAddr,
    /// `/livez`, `/readyz`, `/metrics`.
    pub admin_addr: SocketAddr,
    pub database: DatabaseConfig,
    pub token: TokenConfig,
    /// The Ed25519 private key (PKCS#8 PEM) that signs access tokens;
    /// usually `EMPORIUM_ACCOUNTS__SIGNING_KEY_FILE` naming a mounted Secret.
    pub signing_key: Option<Secret>,
    /// Where the key is kept when `signing_key` is unset: read if the file
    /// exists, else generated and written there (mode 0600).
    pub signing_key_path: Option<PathBuf>,
    pub password_hashing: PasswordHashing,
    pub shutdown: ShutdownConfig,
    pub faults: Faults,
    /// The optional service registry (etcd); DNS only when unset.
    pub registry: RegistrySettings,
}

/// What access tokens say and how long they last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// `iss` of every token; verifiers must expect the same.
    pub issuer: String,
    /// `aud` of every token; verifiers must expect the same.
    pub audience: String,
    /// Time to live of an access token.
    pub ttl: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            issuer: "emporium".into(),
            audience: "emporium-api".into(),
            ttl: Duration::from_secs(15 * 60),
        }
    }
}

/// argon2id cost. The defaults are OWASP's recommendation (19 MiB, 2 passes,
/// 1 lane); existing hashes keep the cost they were made with.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashing {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Most hashes (sign-ups, sign-ins) computed at once; more wait their
    /// turn (within the caller's deadline). Each holds `memory_kib`, so this
    /// bounds the memory hashing can take: size it to the memory limit.
    pub max_concurrent: u32,
    /// Most requests waiting for a hash slot; one more is refused at once
    /// (RESOURCE_EXHAUSTED, a 429 with Retry-After at the gateway) rather
    /// than left to wait out its deadline.
    pub max_waiting: u32,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 4,
            max_waiting: 64,
        }
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0u16; 8], 50057)),
            admin_addr: SocketAddr::from(([0u16; 8], 9090)),
            database: DatabaseConfig::default(),
            token: TokenConfig::default(),
            signing_key: None,
            signing_key_path: None,
            password_hashing: PasswordHashing::default(),
            shutdown: ShutdownConfig::default(),
            faults: Faults::default(),
            registry: RegistrySettings::default(),
        }
    }
}

/// The database accounts use when none is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://accounts.db";

/// Longest access-token lifetime accepted.
pub const MAX_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl AccountsConfig {
    /// Loads and validates the configuration. The signing key must be given
    /// (`signing_key`) or have a place to be kept (`signing_key_path`).
    pub fn load(
        base: emporium_chassis::config::Table,
        sources: Sources<'_>,
    ) -> Result<Self, ConfigError> {
        let config: Self = emporium_chassis::config::load(SECTION, base, sources)?;
        config.registry.validate(SECTION)?;
        if let Some(url) = &config.database.url
            && crate::store::Backend::of_url(url.expose()).is_none()
        {
            return Err(ConfigError::invalid(
                "accounts.database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if config.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "accounts.database.max_connections",
                "must be at least 1",
            ));
        }
        if config.token.issuer.trim().is_empty() {
            return Err(ConfigError::invalid(
                "accounts.token.issuer",
                "must not be empty",
            ));
        }
        if config.token.audience.trim().is_empty() {
            return Err(ConfigError::invalid(
                "accounts.token.audience",
                "must not be empty",
            ));
        }
        let ttl = config.token.ttl.get();
        if ttl < std::time::Duration::from_secs(1) || ttl > MAX_TOKEN_TTL {
            return Err(ConfigError::invalid(
                "accounts.token.ttl",
                "must be between 1s and 24h",
            ));
        }
        crate::password::params(&config.password_hashing)
            .map_err(|e| ConfigError::invalid("accounts.password_hashing", e))?;
        if !(1..=1024).contains(&config.password_hashing.max_concurrent) {
            return Err(ConfigError::invalid(
                "accounts.password_hashing.max_concurrent",
                "must be between 1 and 1024",
            ));
        }
        if config.password_hashing.max_waiting > 100_000 {
            return Err(ConfigError::invalid(
                "accounts.password_hashing.max_waiting",
                "must be at most 100000",
            ));
        }
        match (&config.signing_key, &config.signing_key_path) {
            (Some(pem), _) => {
                emporium_chassis::jwt::SigningKey::from_pem(pem.expose()).map_err(|_| {
                    ConfigError::invalid(
                        "accounts.signing_key",
                        "is not a PKCS#8 Ed25519 private key in PEM form",
                    )
                })?;
            }
            (None, Some(path)) if path.as_os_str().is_empty() => {
                return Err(ConfigError::invalid(
                    "accounts.signing_key_path",
                    "must not be empty",
                ));
            }
            (None, Some(_)) => {}
            (None, None) => {
                return Err(ConfigError::invalid(
                    "accounts.signing_key",
                    "is required: set EMPORIUM_ACCOUNTS__SIGNING_KEY_FILE to a PKCS#8 Ed25519 PEM file, \
                     or accounts.signing_key_path to where a generated key is kept",
                ));
            }
        }
        Ok(config)
    }

    pub fn database_url(&self) -> Secret {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| Secret::new(DEFAULT_DATABASE_URL))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use emporium_chassis::config::{MapEnv, Table};
    use emporium_chassis::jwt::SigningKey;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<AccountsConfig, ConfigError> {
        let env = MapEnv::new(vars.iter().copied());
        AccountsConfig::load(
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
    }

    #[test]
    fn defaults_listen_dual_stack_and_issue_15_minute_tokens() {
        let c = load(&[("EMPORIUM_ACCOUNTS__SIGNING_KEY_PATH", "/tmp/k.pem")]).unwrap();
        assert_eq!(c.grpc_addr.to_string(), "[::]:50057");
        assert_eq!(c.admin_addr.to_string(), "[::]:9090");
        assert_eq!(c.database_url().expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.token.issuer, "emporium");
        assert_eq!(c.token.audience, "emporium-api");
        assert_eq!(c.token.ttl.get().as_secs(), 900);
        assert_eq!(c.password_hashing.memory_kib, 19456);
    }

    #[test]
    fn without_a_key_or_a_place_for_one_the_error_names_accounts_signing_key() {
        let err = load(&[]).unwrap_err().to_string();
        assert!(err.contains("`accounts.signing_key`"), "{err}");
    }

    #[test]
    fn the_key_is_read_from_a_secret_file_and_never_printed() {
        let pem = SigningKey::generate().unwrap().to_pem().unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(pem.as_bytes()).unwrap();
        let c = load(&[(
            "EMPORIUM_ACCOUNTS__SIGNING_KEY_FILE",
            file.path().to_str().unwrap(),
        )])
        .unwrap();
        assert_eq!(c.signing_key.as_ref().unwrap().expose().trim(), pem.trim());
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
        let err = load(&[("EMPORIUM_ACCOUNTS__SIGNING_KEY", "not-a-key")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("accounts.signing_key") && !err.contains("not-a-key"),
            "{err}"
        );
    }

    #[test]
    fn no_setting_grants_a_role_by_e_mail() {
        // Admins are made by an operator (`emporium accounts grant-admin`),
        // never by signing up with a listed e-mail (docs/architecture.md).
        let err = load(&[
            ("EMPORIUM_ACCOUNTS__SIGNING_KEY_PATH", "/tmp/k.pem"),
            ("EMPORIUM_ACCOUNTS__ADMIN_EMAILS", "boss@example.com"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("admin_emails"), "{err}");
    }

    #[test]
    fn token_and_hashing_settings_are_checked() {
        let key = ("EMPORIUM_ACCOUNTS__SIGNING_KEY_PATH", "/tmp/k.pem");
        let c = load(&[key, ("EMPORIUM_ACCOUNTS__TOKEN__TTL", "1h")]).unwrap();
        assert_eq!(c.token.ttl.get().as_secs(), 3600);
        let err = load(&[key, ("EMPORIUM_ACCOUNTS__TOKEN__TTL", "48h")]).unwrap_err();
        assert!(err.to_string().contains("accounts.token.ttl"), "{err}");
        let err = load(&[
            key,
            ("EMPORIUM_ACCOUNTS__PASSWORD_HASHING__MEMORY_KIB", "1"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("accounts.password_hashing"),
            "{err}"
        );
        let err = load(&[key, ("EMPORIUM_ACCOUNTS__TOKEN__ISSUER", " ")]).unwrap_err();
        assert!(err.to_string().contains("accounts.token.issuer"), "{err}");
    }
}
