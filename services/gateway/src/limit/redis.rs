//! Limit state in Redis, shared by every gateway replica.
//!
//! Each decision is ONE Lua script on one key (EVALSHA; EVAL when Redis
//! does not know the script yet): Redis runs a script without interleaving other commands, so reading
//! the state, deciding and writing it back is atomic across replicas. The
//! scripts are the same rules as [`super::gcra`] and [`super::login_step`],
//! which the conformance suite (tests/limit_backends.rs) holds them to. Keys
//! expire when their state is worth nothing (a rested bucket, an elapsed
//! window), so Redis holds only active clients.
//!
//! Keys: `<key_prefix><class>:u:<user id>` or `…:a:<address>` for request
//! budgets, `<key_prefix>login:<hash of the e-mail>` for sign-ins.

use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Backend, BackendError, Decision, LoginOp, LoginPolicy, LoginVerdict, Millis, Quota};
use emporium_chassis::config::ConfigError;

/// GCRA. `KEYS[1]`: the TAT. `ARGV`: now, interval, tolerance (ms).
/// Answers `{allowed (0/1), remaining, reset, retry_after}`.
const GCRA: &str = r"
local now, interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
local used = new_tat - now
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', used))
return {1, math.floor((tolerance - used) / interval), used, 0}
";

/// Failed sign-ins. `KEYS[1]`: a hash (failures, start, locked).
/// `ARGV`: op (`attempt`, `succeeded`, `refund`), now, max failures, window,
/// lockout (ms). Answers `{locked (0/1), retry_after}`.
const LOGIN: &str = r"
local key, op, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local max, window, lockout = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if op == 'succeeded' then
  redis.call('DEL', key)
  return {0, 0}
end
local s = redis.call('HMGET', key, 'failures', 'start', 'locked')
local failures, start, locked = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0
if math.max(start + window, locked) <= now then
  failures, start, locked = 0, 0, 0
end
if op == 'attempt' then
  if now < locked then
    return {1, locked - now}
  end
  if failures == 0 or now >= start + window then
    failures, start = 0, now
  end
  failures = failures + 1
  if failures >= max then locked = now + lockout end
elseif op == 'refund' then
  if failures == 0 then
    redis.call('DEL', key)
    return {0, 0}
  end
  failures = failures - 1
  if failures < max then locked = 0 end
else
  return redis.error_reply('unknown login op ' .. tostring(op))
end
redis.call('HSET', key, 'failures', string.format('%d', failures),
  'start', string.format('%d', start), 'locked', string.format('%d', locked))
redis.call('PEXPIRE', key, string.format('%d', math.max(start + window, locked) - now))
return {0, 0}
";

/// A client for `url`: `redis://…`, or `rediss://…` over TLS (rustls)
/// verified against the system's roots, or only against `ca_cert` (PEM)
/// when given. Nothing is dialled yet. (The cart builds its client the same
/// way; a service never links another's crate.)
pub fn redis_client(url: &str, ca_cert: Option<&str>) -> Result<redis::Client, ConfigError> {
    let invalid_url =
        |e: redis::RedisError| ConfigError::invalid("gateway.rate_limit.redis.url", e.to_string());
    let Some(ca_cert) = ca_cert else {
        return redis::Client::open(url).map_err(invalid_url);
    };
    let invalid_ca =
        |reason: String| ConfigError::invalid("gateway.rate_limit.redis.ca_cert", reason);
    if let Some(reason) = ca_cert_problem(url, ca_cert) {
        return Err(invalid_ca(reason.into()));
    }
    let info = url.into_connection_info().map_err(invalid_url)?;
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca_cert.as_bytes().to_vec()),
    };
    redis::Client::build_with_tls(info, certificates).map_err(|e| invalid_ca(e.to_string()))
}

/// Why `ca_cert` cannot verify the server at `url`, if it cannot.
pub fn ca_cert_problem(url: &str, ca_cert: &str) -> Option<&'static str> {
    if !url.starts_with("rediss://") {
        Some("is only used with a rediss:// url")
    } else if !ca_cert.contains("-----BEGIN CERTIFICATE-----") {
        Some("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    } else {
        None
    }
}

/// Limit state in Redis; one multiplexed, self-reconnecting connection.
pub struct RedisBackend {
    connection: ConnectionManager,
    key_prefix: String,
    gcra: LuaScript,
    login: LuaScript,
}

/// A script run by its SHA-1 (EVALSHA), sent whole (EVAL, which also caches
/// it) only when Redis does not know it yet (after a restart or failover).
struct LuaScript {
    source: &'static str,
    sha: String,
}

impl LuaScript {
    fn new(source: &'static str) -> Self {
        use sha1::Digest;
        let sha = sha1::Sha1::digest(source.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { source, sha }
    }

    async fn run(
        &self,
        connection: &mut ConnectionManager,
        key: String,
        args: &[String],
    ) -> Result<Vec<i64>, redis::RedisError> {
        let command = |verb: &str, script: &str| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(script).arg(1).arg(&key).arg(args);
            cmd
        };
        match command("EVALSHA", &self.sha).query_async(connection).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                command("EVAL", self.source).query_async(connection).await
            }
            answer => answer,
        }
    }
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Prepares a connection through `client`, opened on first use and
    /// reopened after failures; connecting and each answer are bounded by
    /// `timeout` (the limiter bounds the whole decision by it too).
    pub fn connect(
        client: redis::Client,
        key_prefix: &str,
        timeout: Duration,
    ) -> Result<Self, BackendError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            connection,
            key_prefix: key_prefix.to_owned(),
            gcra: LuaScript::new(GCRA),
            login: LuaScript::new(LOGIN),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_prefix)
    }
}

fn protocol(what: &str, answer: &[i64]) -> BackendError {
    BackendError::Protocol(format!("{what} script answered {answer:?}"))
}

impl Backend for RedisBackend {
    fn acquire<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        now: Millis,
    ) -> BoxFuture<'a, Result<Decision, BackendError>> {
        async move {
            let mut connection = self.connection.clone();
            let args = [now, quota.interval, quota.tolerance()].map(|n| n.to_string());
            let answer = self.gcra.run(&mut connection, self.key(key), &args).await?;
            let [allowed, remaining, reset, retry_after] = answer[..] else {
                return Err(protocol("GCRA", &answer));
            };
            let ms = |v: i64| u64::try_from(v).map_err(|_| protocol("GCRA", &answer));
            Ok(Decision {
                allowed: allowed == 1,
                remaining: u32::try_from(remaining).map_err(|_| protocol("GCRA", &answer))?,
                reset: ms(reset)?,
                retry_after: ms(retry_after)?,
            })
        }
        .boxed()
    }

    fn login<'a>(
        &'a self,
        key: &'a str,
        op: LoginOp,
        policy: LoginPolicy,
        now: Millis,
    ) -> BoxFuture<'a, Result<LoginVerdict, BackendError>> {
        async move {
            let mut connection = self.connection.clone();
            let op = match op {
                LoginOp::Attempt => "attempt",
                LoginOp::Succeeded => "succeeded",
                LoginOp::Refund => "refund",
            };
            let args = [
                op.to_owned(),
                now.to_string(),
                policy.max_failures.to_string(),
                policy.window.to_string(),
                policy.lockout.to_string(),
            ];
            let answer = self
                .login
                .run(&mut connection, self.key(key), &args)
                .await?;
            match answer[..] {
                [0, _] => Ok(LoginVerdict::Allowed),
                [1, retry_after] => Ok(LoginVerdict::Locked {
                    retry_after: u64::try_from(retry_after)
                        .map_err(|_| protocol("login", &answer))?,
                }),
                _ => Err(protocol("login", &answer)),
            }
        }
        .boxed()
    }
}
