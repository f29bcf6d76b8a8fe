//! Typed, layered configuration.
//!
//! Each service owns a `serde` struct for its settings and loads it once at
//! start-up with [`load`]. Values are layered, later layers winning:
//!
//! 1. the struct's own defaults (`#[serde(default)]`);
//! 2. `base`: defaults a launcher adds (e.g. `emporium up` puts SQLite files in
//!    its data directory);
//! 3. the TOML file named by `--config`/`EMPORIUM_CONFIG`, table `[<section>]`;
//! 4. environment variables `EMPORIUM_<SECTION>__<KEY>[__<KEY>…]`, e.g.
//!    `EMPORIUM_CATALOG__DATABASE__URL`. A variable ending in `_FILE` names a
//!    file whose content (trailing newline removed) is the value: that is how
//!    Kubernetes Secrets mounted as files reach a service.
//!
//! Environment values that read as integers or booleans are typed as such,
//! and `[…]` is read as a TOML array (a list); everything else is a string. Unknown keys are errors, and every error names
//! the key it is about, so a typo fails the start instead of being ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use toml::Table;
use toml::Value;

/// Exit code for a bad configuration (`EX_CONFIG` would be 78; sysexits'
/// `EX_USAGE`, 64, is what operators grep for in our runbooks).
pub const EXIT_BAD_CONFIG: i32 = 64;

/// A configuration that could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("cannot read {var} (from {path}): {source}")]
    ReadSecret {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration at `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    /// An invalid value found by a service's own validation.
    pub fn invalid(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// Where environment variables come from: the process, or a map in tests.
pub trait Env: Send + Sync {
    /// All variables, as (name, value).
    fn vars(&self) -> Vec<(String, String)>;

    fn var(&self, name: &str) -> Option<String> {
        self.vars()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
}

/// A fixed set of variables, for tests and for launchers that compose configs.
#[derive(Debug, Clone, Default)]
pub struct MapEnv(pub BTreeMap<String, String>);

impl MapEnv {
    pub fn new<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Env for MapEnv {
    fn vars(&self) -> Vec<(String, String)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Where to read a service's configuration from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: &'a dyn Env,
}

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sources")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// The config file named by `EMPORIUM_CONFIG`, if any.
pub fn file_from_env(env: &dyn Env) -> Option<PathBuf> {
    env.var("EMPORIUM_CONFIG")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// Loads section `section` (e.g. `"catalog"`) into `T`, layering `base`, the
/// file and the environment over `T`'s defaults.
///
/// Layers merge key by key, so setting one nested key (e.g.
/// `EMPORIUM_GATEWAY__CATALOG__TIMEOUT`) keeps the defaults of its siblings.
pub fn load<T>(section: &str, base: Table, sources: Sources<'_>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut merged = Table::try_from(T::default())
        .map_err(|e| ConfigError::invalid(section, format!("defaults do not serialize: {e}")))?;
    merge(&mut merged, base);
    if let Some(path) = sources.file {
        let file = read_file_section(path, section)?;
        merge(&mut merged, file);
    }
    merge(&mut merged, env_layer(section, sources.env)?);
    deserialize(section, merged)
}

fn read_file_section(path: &Path, section: &str) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let mut doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::ParseFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    match doc.remove(section) {
        None => Ok(Table::new()),
        Some(Value::Table(t)) => Ok(t),
        Some(_) => Err(ConfigError::invalid(section, "expected a table")),
    }
}

/// Turns `EMPORIUM_<SECTION>__A__B=v` into `{a = {b = v}}`.
fn env_layer(section: &str, env: &dyn Env) -> Result<Table, ConfigError> {
    let prefix = format!("EMPORIUM_{}__", section.to_ascii_uppercase());
    let mut vars: Vec<_> = env
        .vars()
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    // `X_FILE` and `X` for the same key: the plain value wins, deterministically.
    vars.sort_by(|a, b| b.0.cmp(&a.0));
    let mut table = Table::new();
    for (name, raw) in vars {
        let rest = &name[prefix.len()..];
        let (rest, value) = match rest.strip_suffix("_FILE") {
            Some(key) => {
                let path = PathBuf::from(&raw);
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadSecret {
                        var: name.clone(),
                        path,
                        source,
                    })?;
                (
                    key,
                    Value::String(text.trim_end_matches(['\n', '\r']).to_owned()),
                )
            }
            None => (rest, typed(&raw)),
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                name,
                "empty key segment (double `__`?)",
            ));
        }
        insert_path(&mut table, &path, value);
    }
    Ok(table)
}

fn typed(raw: &str) -> Value {
    if let Ok(i) = raw.parse::<i64>() {
        return Value::Integer(i);
    }
    // A list, written as a TOML array: `["a@example.com", "b@example.com"]`.
    if raw.trim_start().starts_with('[')
        && let Ok(mut t) = format!("v = {raw}").parse::<Table>()
        && let Some(list @ Value::Array(_)) = t.remove("v")
    {
        return list;
    }
    match raw {
        "true" => Value::Boolean(true),
        "false" => Value::Boolean(false),
        _ => Value::String(raw.to_owned()),
    }
}

fn insert_path(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(t) = entry else {
            unreachable!("made a table above")
        };
        current = t;
    }
    current.insert(last.clone(), value);
}

/// Deep-merges `over` into `base`; tables merge, everything else replaces.
pub fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn deserialize<T: DeserializeOwned>(section: &str, table: Table) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            section.to_owned()
        } else {
            format!("{section}.{path}")
        };
        ConfigError::Invalid {
            key,
            message: e.into_inner().to_string(),
        }
    })
}

/// A duration written as `"250ms"`, `"2s"`, `"5m"`, `"1h"` or `"7d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl std::str::FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a duration like \"250ms\", \"2s\", \"5m\""))?;
        let ms = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1_000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            "" => {
                return Err(format!(
                    "`{s}` has no unit; write e.g. \"{n}s\" or \"{n}ms\""
                ));
            }
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{unit}`; use ms, s, m, h or d"
                ));
            }
        };
        ms.map(Self::from_millis)
            .ok_or_else(|| format!("`{s}` is too long"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number (from TOML, or an environment value typed as one)
        // gets the same "no unit" message as the string "10".
        match Value::deserialize(d)? {
            Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            Value::Integer(i) => i.to_string().parse().map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected a duration like \"2s\", found {}",
                other.type_str()
            ))),
        }
    }
}

/// A value that must never be printed: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call at the point of use only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Serialized only to layer defaults inside [`load`]; never logged.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Accept numbers and booleans too: an all-digit password is still a string.
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Self(s)),
            Value::Integer(i) => Ok(Self(i.to_string())),
            Value::Boolean(b) => Ok(Self(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, found {}",
                other.type_str()
            ))),
        }
    }
}

/// Settings shared by every service with a database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path.db` or `postgres://user:password@host/db`; `None`
    /// means the service's embedded default. Usually a secret (`URL_FILE`).
    pub url: Option<Secret>,
    pub max_connections: u32,
    /// Run migrations at start-up. Off in a cluster, where a Job runs them.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            migrate_on_start: true,
        }
    }
}

/// How long a stopping service lets in-flight requests finish.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    pub drain_timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        port: u16,
        name: String,
        timeout: Duration,
        db: Db,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Db {
        url: Option<Secret>,
        pool: u32,
        migrate: bool,
    }

    impl Default for Example {
        fn default() -> Self {
            Self {
                port: 1,
                name: "default".into(),
                timeout: Duration::from_secs(2),
                db: Db::default(),
            }
        }
    }

    impl Default for Db {
        fn default() -> Self {
            Self {
                url: None,
                pool: 5,
                migrate: true,
            }
        }
    }

    fn load_ex(file: Option<&Path>, env: &[(&str, &str)]) -> Result<Example, ConfigError> {
        let env = MapEnv::new(env.iter().copied());
        load("example", Table::new(), Sources { file, env: &env })
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        assert_eq!(load_ex(None, &[]).unwrap(), Example::default());
    }

    #[test]
    fn environment_overrides_file_overrides_base_and_defaults() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[example]\nport = 10\nname = \"from-file\"\n[example.db]\npool = 7\n[other]\nx = 1"
        )
        .unwrap();
        let mut base = Table::new();
        base.insert("name".into(), Value::String("from-base".into()));
        base.insert("timeout".into(), Value::String("9s".into()));
        let env = MapEnv::new([
            ("EMPORIUM_EXAMPLE__PORT", "20"),
            ("EMPORIUM_EXAMPLE__DB__MIGRATE", "false"),
        ]);
        let got: Example = load(
            "example",
            base,
            Sources {
                file: Some(file.path()),
                env: &env,
            },
        )
        .unwrap();
        assert_eq!(got.port, 20);
        assert_eq!(got.name, "from-file");
        assert_eq!(got.timeout, Duration::from_secs(9));
        assert_eq!(got.db.pool, 7);
        assert!(!got.db.migrate);
    }

    #[test]
    fn secrets_are_read_from_file_variables_and_never_printed() {
        let mut secret = tempfile::NamedTempFile::new().unwrap();
        writeln!(secret, "postgres://u:p4ss@db/x").unwrap();
        let path = secret.path().to_str().unwrap();
        let got = load_ex(None, &[("EMPORIUM_EXAMPLE__DB__URL_FILE", path)]).unwrap();
        let url = got.db.url.unwrap();
        assert_eq!(url.expose(), "postgres://u:p4ss@db/x");
        assert_eq!(format!("{url:?}"), "[redacted]");
    }

    #[test]
    fn lists_are_written_as_toml_arrays() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(default)]
        struct Lists {
            emails: Vec<String>,
        }
        let env = MapEnv::new([(
            "EMPORIUM_L__EMAILS",
            r#"["a@example.com", "b@example.com"]"#,
        )]);
        let got: Lists = load(
            "l",
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
        .unwrap();
        assert_eq!(got.emails, ["a@example.com", "b@example.com"]);
        let env = MapEnv::new([("EMPORIUM_L__EMAILS", "[not toml")]);
        let err = load::<Lists>(
            "l",
            Table::new(),
            Sources {
                file: None,
                env: &env,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("l.emails"), "{err}");
    }

    #[test]
    fn numeric_looking_secret_stays_a_string() {
        let got = load_ex(None, &[("EMPORIUM_EXAMPLE__DB__URL", "12345")]).unwrap();
        assert_eq!(got.db.url.unwrap().expose(), "12345");
    }

    #[test]
    fn unknown_key_is_named_in_the_error() {
        let err = load_ex(None, &[("EMPORIUM_EXAMPLE__DB__PORT", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("example.db"), "{err}");
        assert!(err.contains("unknown field `port`"), "{err}");
    }

    #[test]
    fn bad_value_is_named_in_the_error() {
        let err = load_ex(None, &[("EMPORIUM_EXAMPLE__PORT", "99999")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`example.port`"), "{err}");
        let err = load_ex(None, &[("EMPORIUM_EXAMPLE__TIMEOUT", "10")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`example.timeout`") && err.contains("no unit"),
            "{err}"
        );
    }

    #[test]
    fn missing_secret_file_names_the_variable() {
        let err = load_ex(
            None,
            &[("EMPORIUM_EXAMPLE__DB__URL_FILE", "/nonexistent/secret")],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("EMPORIUM_EXAMPLE__DB__URL_FILE"),
            "{err}"
        );
    }

    #[test]
    fn invalid_toml_file_is_reported_with_its_path() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "[example\nport = ").unwrap();
        let err = load_ex(Some(file.path()), &[]).unwrap_err().to_string();
        assert!(err.contains(&file.path().display().to_string()), "{err}");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(
            "250ms".parse::<Duration>().unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!("5m".parse::<Duration>().unwrap(), Duration::from_secs(300));
        assert_eq!(Duration::from_secs(3).to_string(), "3s");
        assert_eq!(
            "7d".parse::<Duration>().unwrap(),
            Duration::from_secs(604_800)
        );
        assert!("5".parse::<Duration>().is_err());
        assert!(
            "5x".parse::<Duration>()
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!("s".parse::<Duration>().is_err());
        assert!("99999999999999999h".parse::<Duration>().is_err());
    }
}
