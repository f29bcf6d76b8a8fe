//! The cluster cart store: Redis, one hash per user.
//!
//! Key `<key_prefix><user_id>` (by default `cart:<user_id>`), one field per
//! product id, each value a small JSON document
//! (`{"quantity":2,"name":"…","unit_price_minor":1299,"currency":"USD"}`).
//! Every change is one Lua script: Redis runs a script without interleaving
//! other commands, so reading a line, checking the limits, writing it and
//! reading the cart back is atomic, and concurrent adds never lose an update
//! (a multiplexed connection cannot use WATCH/MULTI safely; a script needs
//! neither). Each change also renews the key's time to live, so abandoned
//! carts disappear on their own.

use std::time::Duration;

use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use super::{StoredLine, cart_of, corrupt};
use crate::domain::{Cart, Invalid, Line, MAX_LINES, Owner, ProductId, Quantity, Refused};
use crate::error::CartError;

/// `KEYS[1]`: the cart. `ARGV`: mode (`add`, `set`, `remove`, `clear`),
/// product id, quantity, the line's other fields as the tail of a JSON
/// object (`"name":…}`), most units per line, most lines, TTL in seconds.
///
/// Answers `{"ok", field, value, field, value, …}` (the cart after the
/// change), `{"too_many", wanted}` or `{"cart_full"}`.
const SCRIPT: &str = r#"
local key, mode = KEYS[1], ARGV[1]
if mode == 'add' or mode == 'set' then
  local field, quantity = ARGV[2], tonumber(ARGV[3])
  local current = redis.call('HGET', key, field)
  if current then
    if mode == 'add' then
      quantity = quantity + cjson.decode(current)['quantity']
    end
  elseif redis.call('HLEN', key) >= tonumber(ARGV[6]) then
    return {'cart_full'}
  end
  if quantity > tonumber(ARGV[5]) then
    return {'too_many', tostring(quantity)}
  end
  redis.call('HSET', key, field, '{"quantity":' .. string.format('%d', quantity) .. ',' .. ARGV[4])
  redis.call('EXPIRE', key, ARGV[7])
elseif mode == 'remove' then
  redis.call('HDEL', key, ARGV[2])
  if redis.call('EXISTS', key) == 1 then
    redis.call('EXPIRE', key, ARGV[7])
  end
elseif mode == 'clear' then
  redis.call('DEL', key)
else
  return redis.error_reply('unknown cart script mode ' .. tostring(mode))
end
local answer = redis.call('HGETALL', key)
table.insert(answer, 1, 'ok')
return answer
"#;

/// A line's value in the hash.
#[derive(Debug, Serialize, Deserialize)]
struct Value {
    quantity: i64,
    name: String,
    unit_price_minor: i64,
    currency: String,
}

/// The fields after `quantity`, serialized by serde (so names are escaped
/// correctly) and spliced into the script's JSON after the quantity it computes.
#[derive(Serialize)]
struct Tail<'a> {
    name: &'a str,
    unit_price_minor: i64,
    currency: &'a str,
}

/// A client for `url`: `redis://…` in plain text, or `rediss://…` over TLS
/// (rustls), verifying the server against the system's roots, or only
/// against `ca_cert` (PEM: the CA certificates to trust) when given — a
/// private CA, as managed and in-cluster Redis servers often use. Nothing is
/// dialled yet.
pub fn redis_client(url: &str, ca_cert: Option<&str>) -> Result<redis::Client, CartError> {
    let invalid_url =
        |e: redis::RedisError| CartError::from(Invalid::new("redis.url", e.to_string()));
    let Some(ca_cert) = ca_cert else {
        return redis::Client::open(url).map_err(invalid_url);
    };
    let invalid_ca = |reason: String| CartError::from(Invalid::new("redis.ca_cert", reason));
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

/// Why `ca_cert` cannot be used to verify the server at `url`, if it cannot:
/// checked when the configuration loads and again when a client is built.
pub fn ca_cert_problem(url: &str, ca_cert: &str) -> Option<&'static str> {
    if !url.starts_with("rediss://") {
        Some("is only used with a rediss:// url")
    } else if !ca_cert.contains("-----BEGIN CERTIFICATE-----") {
        Some("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    } else {
        None
    }
}

/// Carts in Redis; cheap to clone (one multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct RedisCarts {
    connection: ConnectionManager,
    key_prefix: String,
    ttl: Duration,
}

impl std::fmt::Debug for RedisCarts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCarts")
            .field("key_prefix", &self.key_prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl RedisCarts {
    /// Prepares a connection through `client` (see [`redis_client`]); it is
    /// opened on first use and reopened after failures. Commands time out
    /// after two seconds, so a dead Redis makes calls fail, not hang.
    pub fn connect(
        client: redis::Client,
        key_prefix: &str,
        ttl: Duration,
    ) -> Result<Self, CartError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            connection,
            key_prefix: key_prefix.to_owned(),
            ttl,
        })
    }

    fn key(&self, owner: &Owner) -> String {
        format!("{}{}", self.key_prefix, owner.as_str())
    }

    /// The time to live this store gives a cart on every change.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The Redis key holding `owner`'s cart.
    pub fn key_of(&self, owner: &Owner) -> String {
        self.key(owner)
    }

    pub async fn get(&self, owner: &Owner) -> Result<Cart, CartError> {
        let mut connection = self.connection.clone();
        let fields: Vec<String> = redis::cmd("HGETALL")
            .arg(self.key(owner))
            .query_async(&mut connection)
            .await?;
        parse_cart(&fields)
    }

    pub async fn add(&self, owner: &Owner, line: &Line) -> Result<Cart, CartError> {
        self.write(owner, "add", Some(line), line.product_id).await
    }

    pub async fn set(&self, owner: &Owner, line: &Line) -> Result<Cart, CartError> {
        self.write(owner, "set", Some(line), line.product_id).await
    }

    pub async fn remove(&self, owner: &Owner, product_id: ProductId) -> Result<Cart, CartError> {
        self.write(owner, "remove", None, product_id).await
    }

    pub async fn clear(&self, owner: &Owner) -> Result<Cart, CartError> {
        let mut connection = self.connection.clone();
        let _: () = redis::cmd("DEL")
            .arg(self.key(owner))
            .query_async(&mut connection)
            .await?;
        Ok(Cart::default())
    }

    async fn write(
        &self,
        owner: &Owner,
        mode: &str,
        line: Option<&Line>,
        product_id: ProductId,
    ) -> Result<Cart, CartError> {
        let (quantity, tail) = match line {
            Some(line) => {
                let tail = serde_json::to_string(&Tail {
                    name: line.name.as_str(),
                    unit_price_minor: line.unit_price.minor(),
                    currency: line.unit_price.currency().as_str(),
                })
                .map_err(|e| corrupt("line", e))?;
                // `{"name":…}` → `"name":…}`: the script opens the object.
                let tail = tail
                    .strip_prefix('{')
                    .ok_or_else(|| corrupt("line", "does not serialize as an object"))?;
                (line.quantity.get(), tail.to_owned())
            }
            None => (0, String::new()),
        };
        let mut connection = self.connection.clone();
        let answer: Vec<String> = redis::cmd("EVAL")
            .arg(SCRIPT)
            .arg(1)
            .arg(self.key(owner))
            .arg(mode)
            .arg(product_id.to_string())
            .arg(quantity)
            .arg(tail)
            .arg(Quantity::MAX)
            .arg(MAX_LINES)
            .arg(self.ttl.as_secs().max(1))
            .query_async(&mut connection)
            .await?;
        match answer.split_first() {
            Some((status, fields)) if status == "ok" => parse_cart(fields),
            Some((status, rest)) if status == "too_many" => Err(Refused::TooMany {
                product_id,
                wanted: rest
                    .first()
                    .and_then(|w| w.parse().ok())
                    .unwrap_or(u64::MAX),
            }
            .into()),
            Some((status, _)) if status == "cart_full" => Err(Refused::CartFull.into()),
            _ => Err(corrupt(
                "cart script",
                format!("unexpected answer {answer:?}"),
            )),
        }
    }
}

/// `HGETALL` output (field, value, field, value, …) as a cart.
fn parse_cart(fields: &[String]) -> Result<Cart, CartError> {
    let lines = fields
        .chunks(2)
        .map(|pair| match pair {
            [product_id, value] => {
                let value: Value =
                    serde_json::from_str(value).map_err(|e| corrupt(product_id, e))?;
                Ok(StoredLine {
                    product_id: product_id.clone(),
                    quantity: value.quantity,
                    name: value.name,
                    unit_price_minor: value.unit_price_minor,
                    currency: value.currency,
                })
            }
            _ => Err(corrupt("cart", "odd number of hash entries")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    cart_of(lines)
}
