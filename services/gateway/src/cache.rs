//! The response cache of public reads, and their validators.
//!
//! Only `GET`/`HEAD` of the public catalog routes (product list and search,
//! one product, categories, currencies) are cached, and only for requests
//! that carry no `Authorization` and no `Cookie`: nothing personal is ever
//! stored or shared. The key is the path with its query (so `?currency=EUR`
//! is its own entry) and the request's `Accept-Encoding` (the stored body is
//! the encoded one; `Vary: Accept-Encoding`).
//!
//! - **Fresh** for `ttl` after it was fetched: served from memory (`X-Cache:
//!   HIT`).
//! - **Stale** for `stale_while_revalidate` more: served at once (`X-Cache:
//!   STALE`) while one background request fetches it again.
//! - **On error** (the upstream answers 5xx) an entry up to `stale_if_error`
//!   old is served instead (`X-Cache: STALE`).
//! - **Misses coalesce**: N concurrent requests for a missing key make one
//!   upstream call; all N get its answer (`X-Cache: MISS`).
//!
//! So a change in the catalog shows in every replica within
//! `ttl + stale_while_revalidate` (2 s by default) unless the catalog is
//! failing. Memory is bounded by `max_bytes` (oldest entries go first).
//!
//! Every 200 answer of these routes, cached or not, carries a strong `ETag`
//! (SHA-256 of the body) and `Cache-Control: public, max-age, stale-while-
//! revalidate, stale-if-error`; `If-None-Match` with a matching tag (or `*`)
//! is answered 304 without a body. A malformed `If-None-Match` matches
//! nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use emporium_chassis::Metrics;
use emporium_chassis::config::{ConfigError, Duration as ConfigDuration};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Routes whose `GET` answers are public and the same for everyone.
const PUBLIC_READS: [&str; 4] = [
    "/api/v1/products",
    "/api/v1/products/{id}",
    "/api/v1/categories",
    "/api/v1/currencies",
];

/// `[gateway.cache]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Off: every request goes upstream (validators are still sent).
    pub enabled: bool,
    /// Memory for stored answers, bodies and headers.
    pub max_bytes: usize,
    /// Answers larger than this are not stored.
    pub max_entry_bytes: usize,
    /// How long an answer is fresh.
    pub ttl: ConfigDuration,
    /// How much longer it is served while being fetched again.
    pub stale_while_revalidate: ConfigDuration,
    /// How old an answer may be served when the upstream fails.
    pub stale_if_error: ConfigDuration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            ttl: ConfigDuration::from_secs(1),
            stale_while_revalidate: ConfigDuration::from_secs(1),
            stale_if_error: ConfigDuration::from_secs(60),
        }
    }
}

impl CacheConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("gateway.cache.{k}");
        if self.enabled && self.max_bytes < 64 * 1024 {
            return Err(ConfigError::invalid(
                key("max_bytes"),
                "must be at least 65536",
            ));
        }
        if self.max_entry_bytes == 0 || self.max_entry_bytes > self.max_bytes {
            return Err(ConfigError::invalid(
                key("max_entry_bytes"),
                "must be above 0 and at most gateway.cache.max_bytes",
            ));
        }
        if self.ttl.get().is_zero() || self.ttl.get() > Duration::from_secs(3600) {
            return Err(ConfigError::invalid(
                key("ttl"),
                "must be above 0 and at most 1h",
            ));
        }
        if self.stale_if_error.get() < self.ttl.get() + self.stale_while_revalidate.get() {
            return Err(ConfigError::invalid(
                key("stale_if_error"),
                "must be at least ttl + stale_while_revalidate",
            ));
        }
        Ok(())
    }

    /// The `Cache-Control` of public reads.
    fn cache_control(&self) -> HeaderValue {
        let value = format!(
            "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
            self.ttl.get().as_secs(),
            self.stale_while_revalidate.get().as_secs(),
            self.stale_if_error.get().as_secs()
        );
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("public, max-age=1"))
    }
}

/// A stored answer.
#[derive(Debug)]
struct Stored {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    etag: HeaderValue,
    fetched: Instant,
}

impl Stored {
    fn size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.as_str().len() + v.len() + 32)
                .sum::<usize>()
            + 128
    }
}

/// What a fetch yields: the answer read whole, and whether it may be
/// stored (a 200) or only handed to the requests that waited for it.
#[derive(Debug, Clone)]
struct Fetched {
    answer: Arc<Stored>,
    cacheable: bool,
}

type Pending = Shared<BoxFuture<'static, Fetched>>;

#[derive(Debug, Default)]
struct Entries {
    ready: HashMap<String, Arc<Stored>>,
    /// Keys in the order they were stored, for eviction.
    order: VecDeque<String>,
    bytes: usize,
    /// Fetches in flight: misses and background revalidations.
    pending: HashMap<String, Pending>,
}

/// The cache and its settings; shared by every request.
#[derive(Debug)]
pub struct Cache {
    config: CacheConfig,
    cache_control: HeaderValue,
    entries: Mutex<Entries>,
    hits: Counter,
    misses: Counter,
    stale: Counter,
}

impl Cache {
    pub fn new(config: CacheConfig, metrics: &Metrics) -> Arc<Self> {
        let cache = Arc::new(Self {
            config,
            cache_control: config.cache_control(),
            entries: Mutex::new(Entries::default()),
            hits: Counter::default(),
            misses: Counter::default(),
            stale: Counter::default(),
        });
        metrics.register(
            "http_cache_hits",
            "Public reads answered fresh from the gateway's cache",
            cache.hits.clone(),
        );
        metrics.register(
            "http_cache_misses",
            "Public reads fetched upstream (coalesced misses count once each)",
            cache.misses.clone(),
        );
        metrics.register(
            "http_cache_stale",
            "Public reads answered stale (while revalidating, or on an upstream error)",
            cache.stale.clone(),
        );
        cache
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store(&self, key: &str, stored: Arc<Stored>) {
        let size = stored.size();
        let mut entries = self.lock();
        if let Some(old) = entries.ready.insert(key.to_owned(), stored) {
            entries.bytes -= old.size();
            entries.order.retain(|k| k != key);
        }
        entries.bytes += size;
        entries.order.push_back(key.to_owned());
        while entries.bytes > self.config.max_bytes {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(gone) = entries.ready.remove(&oldest) {
                entries.bytes -= gone.size();
            }
        }
    }
}

/// Whether `request` may be answered from, and stored in, the shared cache.
fn cacheable(request: &Request) -> bool {
    (request.method() == Method::GET || request.method() == Method::HEAD)
        && !request.headers().contains_key(header::AUTHORIZATION)
        && !request.headers().contains_key(header::COOKIE)
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|p| PUBLIC_READS.contains(&p.as_str()))
}

fn strong_etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2).
/// A malformed header matches nothing.
fn none_match(if_none_match: &[HeaderValue], etag: &HeaderValue) -> bool {
    let ours = etag.to_str().unwrap_or_default();
    if_none_match.iter().any(|value| {
        let Ok(value) = value.to_str() else {
            return false;
        };
        value.split(',').map(str::trim).any(|tag| {
            tag == "*" || {
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"') && tag == ours
            }
        })
    })
}

/// Fetches `request` from the routes and reads the answer whole.
async fn fetch(next: Next, request: Request, max_entry: usize) -> Fetched {
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, max_entry).await {
        Ok(body) => Fetched {
            cacheable: parts.status == StatusCode::OK,
            answer: Arc::new(Stored {
                status: parts.status,
                etag: strong_etag(&body),
                headers: parts.headers,
                body,
                fetched: Instant::now(),
            }),
        },
        Err(e) => {
            // Too big to keep (or the body failed): an error rather than a
            // truncated answer.
            tracing::warn!(error = %e, "an answer could not be read whole for the cache");
            let problem =
                axum::response::IntoResponse::into_response(emporium_chassis::Problem::new(
                    emporium_chassis::ErrorKind::Unavailable,
                    "The answer could not be read; try again shortly.",
                ));
            let (parts, body) = problem.into_parts();
            let body = axum::body::to_bytes(body, 64 * 1024)
                .await
                .unwrap_or_default();
            Fetched {
                cacheable: false,
                answer: Arc::new(Stored {
                    status: parts.status,
                    etag: strong_etag(&body),
                    headers: parts.headers,
                    body,
                    fetched: Instant::now(),
                }),
            }
        }
    }
}

/// The answer for one request from a fetched or stored one. Only a 200
/// gets validators, `Age` and may be answered 304.
fn answer(
    cache: &Cache,
    stored: &Stored,
    if_none_match: &[HeaderValue],
    head: bool,
    outcome: &'static str,
) -> Response {
    let ok = stored.status == StatusCode::OK;
    let not_modified = ok && none_match(if_none_match, &stored.etag);
    let body = if not_modified || head {
        Body::empty()
    } else {
        Body::from(stored.body.clone())
    };
    let mut response = Response::new(body);
    *response.status_mut() = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        stored.status
    };
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if not_modified && name == header::CONTENT_LENGTH {
            continue;
        }
        headers.append(name, value.clone());
    }
    headers.insert("x-cache", HeaderValue::from_static(outcome));
    if ok {
        headers.insert(header::ETAG, stored.etag.clone());
        headers.insert(header::CACHE_CONTROL, cache.cache_control.clone());
        headers.insert(
            header::AGE,
            HeaderValue::from(stored.fetched.elapsed().as_secs()),
        );
        if !headers.contains_key(header::VARY) {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    response
}

/// The middleware: validators on every public read; the cache when enabled.
pub async fn cache(State(cache): State<Arc<Cache>>, request: Request, next: Next) -> Response {
    if !cacheable(&request) {
        return next.run(request).await;
    }
    let head = request.method() == Method::HEAD;
    // Only what the answer depends on (no allocation when absent).
    let if_none_match: Vec<HeaderValue> = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .cloned()
        .collect();
    let max_entry = cache.config.max_entry_bytes;
    if !cache.config.enabled {
        let fetched = fetch(next, request, max_entry).await;
        return answer(&cache, &fetched.answer, &if_none_match, head, "MISS");
    }
    let encoding = request
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = format!(
        "{} {}",
        request.uri().path_and_query().map_or("", |pq| pq.as_str()),
        encoding
    );
    let (ttl, swr, sie) = (
        cache.config.ttl.get(),
        cache.config.stale_while_revalidate.get(),
        cache.config.stale_if_error.get(),
    );
    // One look under the lock: fresh, stale, or join (or lead) a fetch.
    let (stored, pending) = {
        let mut entries = cache.lock();
        let stored = entries.ready.get(&key).cloned();
        if let Some(found) = &stored {
            let age = found.fetched.elapsed();
            if age < ttl {
                drop(entries);
                cache.hits.inc();
                return answer(&cache, found, &if_none_match, head, "HIT");
            }
            if age < ttl + swr {
                // Serve it now; fetch it again, once, in the background.
                if !entries.pending.contains_key(&key) {
                    let fetching =
                        start_fetch(&cache, &mut entries, key.clone(), next, request, max_entry);
                    tokio::spawn(fetching);
                }
                drop(entries);
                cache.stale.inc();
                return answer(&cache, found, &if_none_match, head, "STALE");
            }
        }
        let pending = match entries.pending.get(&key) {
            Some(pending) => pending.clone(),
            None => {
                cache.misses.inc();
                start_fetch(&cache, &mut entries, key.clone(), next, request, max_entry)
            }
        };
        (stored, pending)
    };
    let fetched = pending.await;
    if fetched.answer.status.is_server_error() {
        // The upstream failed: an answer not too old beats an error.
        if let Some(stale) = stored.filter(|s| s.fetched.elapsed() < sie) {
            cache.stale.inc();
            return answer(&cache, &stale, &if_none_match, head, "STALE");
        }
    }
    answer(&cache, &fetched.answer, &if_none_match, head, "MISS")
}

/// Starts a shared fetch of `key`, registered in `entries.pending` (whose
/// lock the caller holds) until it has stored its answer.
fn start_fetch(
    cache: &Arc<Cache>,
    entries: &mut Entries,
    key: String,
    next: Next,
    request: Request,
    max_entry: usize,
) -> Pending {
    let owner = Arc::clone(cache);
    let pending_key = key.clone();
    let fetching = async move {
        let cache = owner;
        let fetched = fetch(next, request, max_entry).await;
        if fetched.cacheable {
            cache.store(&key, Arc::clone(&fetched.answer));
        }
        cache.lock().pending.remove(&key);
        fetched
    }
    .boxed()
    .shared();
    entries.pending.insert(pending_key, fetching.clone());
    fetching
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_ignores_malformed_tags() {
        let etag = HeaderValue::from_static("\"abc\"");
        let with = |value: &'static str| none_match(&[HeaderValue::from_static(value)], &etag);
        assert!(with("\"abc\""));
        assert!(with("W/\"abc\""));
        assert!(with("\"x\", \"abc\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
        assert!(!with("abc"));
        assert!(!with("\""));
        assert!(!with(""));
        assert!(!none_match(&[], &etag));
    }

    #[test]
    fn settings_that_make_no_sense_are_refused_naming_the_key() {
        let base = CacheConfig::default();
        let err = |c: CacheConfig| c.validate().unwrap_err().to_string();
        assert!(
            err(CacheConfig {
                max_bytes: 10,
                ..base
            })
            .contains("gateway.cache.max_bytes")
        );
        assert!(
            err(CacheConfig {
                max_entry_bytes: 0,
                ..base
            })
            .contains("gateway.cache.max_entry_bytes")
        );
        assert!(
            err(CacheConfig {
                ttl: ConfigDuration::from_secs(0),
                ..base
            })
            .contains("gateway.cache.ttl")
        );
        assert!(
            err(CacheConfig {
                stale_if_error: ConfigDuration::from_millis(500),
                ..base
            })
            .contains("gateway.cache.stale_if_error")
        );
        assert!(base.validate().is_ok());
    }
}
