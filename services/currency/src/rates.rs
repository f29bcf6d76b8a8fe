//! Where the rates come from, and keeping them current without a restart.
//!
//! The rates are a JSON document, shipped in the repository as
//! `data/currency-rates.json`:
//!
//! ```json
//! { "base": "EUR", "date": "2026-11-24",
//!   "currencies": [ { "code": "USD", "name": "US Dollar", "minor_unit_digits": 2, "rate": "1.0478" } ] }
//! ```
//!
//! `rate` is a decimal STRING (units of the currency per one unit of the
//! base); a JSON number is refused, because a float cannot carry a rate
//! exactly. Unknown fields are refused too, so a typo is an error.
//!
//! Without `rates_path` the copy of that file embedded in the binary at build
//! time is used, and never changes. With it, the file is read at start (a
//! missing or invalid file stops the start) and then looked at every
//! `reload_interval` by [`RatesFile::watch`]: when its modification time or
//! size changed it is read again. A valid new document replaces the rates
//! for every later request at once (readers hold an [`Arc`] to one whole
//! table, never a mix); an invalid one is logged, counted in
//! `currency_rates_reload_failures_total`, and ignored: the previous rates
//! stay in force until the file changes again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use emporium_chassis::Metrics;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::domain::{
    CurrencyCode, CurrencyInfo, CurrencyName, Invalid, Rate, RateTable, RatesDate,
};
use crate::error::CurrencyError;

/// `data/currency-rates.json` as it was when this binary was built.
pub const EMBEDDED_RATES: &str = include_str!("../../../data/currency-rates.json");

/// The document as written; every field is checked by the domain afterwards.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatesDocument {
    base: String,
    date: String,
    currencies: Vec<CurrencyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrencyEntry {
    code: String,
    name: String,
    minor_unit_digits: u32,
    rate: String,
}

/// Parses and validates a rates document; `origin` names it in errors.
pub fn parse(origin: &str, text: &str) -> Result<RateTable, CurrencyError> {
    let bad = |reason: String| CurrencyError::BadRates {
        origin: origin.to_owned(),
        reason,
    };
    let doc: RatesDocument = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    table(doc).map_err(|e| bad(e.to_string()))
}

fn table(doc: RatesDocument) -> Result<RateTable, Invalid> {
    let base = CurrencyCode::parse(&doc.base).map_err(|e| e.at("currency_code").within("base"))?;
    let date = RatesDate::parse(&doc.date)?;
    let currencies = doc
        .currencies
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("currencies[{i}]");
            CurrencyInfo::new(
                CurrencyCode::parse(&c.code).map_err(|e| e.at("currency_code").within(&at))?,
                CurrencyName::parse(&c.name).map_err(|e| e.within(&at))?,
                c.minor_unit_digits,
                Rate::parse(&c.rate).map_err(|e| e.within(&at))?,
            )
            .map_err(|e| e.within(&at))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RateTable::new(base, date, currencies)
}

/// The rates in force; cheap to clone, shared by every request handler.
#[derive(Debug, Clone)]
pub struct Rates {
    current: watch::Receiver<Arc<RateTable>>,
}

impl Rates {
    /// Rates that never change (the embedded document, or a test's table).
    pub fn fixed(table: RateTable) -> Self {
        let (_, current) = watch::channel(Arc::new(table));
        Self { current }
    }

    /// The embedded document.
    pub fn embedded() -> Result<Self, CurrencyError> {
        parse("the built-in rates", EMBEDDED_RATES).map(Self::fixed)
    }

    /// The whole table in force right now.
    pub fn current(&self) -> Arc<RateTable> {
        self.current.borrow().clone()
    }
}

/// What one look at the rates file found.
#[derive(Debug)]
pub enum Reload {
    /// Same modification time and size as last time: not read.
    Unchanged,
    /// Read, valid, and now in force.
    Applied,
    /// Changed but unreadable or invalid; the previous rates stay.
    Rejected(CurrencyError),
}

/// When a file was last modified, and its size: a change in either means
/// the file must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// Counters of reloads, on the service's `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ReloadCounters {
    applied: Counter,
    rejected: Counter,
}

impl ReloadCounters {
    pub fn register(&self, metrics: &Metrics) {
        metrics.register(
            "currency_rates_reloads",
            "Changed rates files read and put in force",
            self.applied.clone(),
        );
        metrics.register(
            "currency_rates_reload_failures",
            "Changed rates files that were invalid and ignored",
            self.rejected.clone(),
        );
    }
}

/// A rates file being watched; owns the sending side of [`Rates`].
#[derive(Debug)]
pub struct RatesFile {
    path: PathBuf,
    /// The stamp of the last version looked at (applied or rejected), or
    /// `None` when the file could not even be inspected last time.
    seen: Option<Stamp>,
    publish: watch::Sender<Arc<RateTable>>,
    counters: ReloadCounters,
}

impl RatesFile {
    /// Reads `path` once; fails when it is missing or invalid.
    pub async fn open(path: &Path) -> Result<(Self, Rates), CurrencyError> {
        let stamp = stamp(path).await.map_err(|e| unreadable(path, &e))?;
        let table = read(path).await?;
        let (publish, current) = watch::channel(Arc::new(table));
        let file = Self {
            path: path.to_owned(),
            seen: Some(stamp),
            publish,
            counters: ReloadCounters::default(),
        };
        Ok((file, Rates { current }))
    }

    pub fn counters(&self) -> &ReloadCounters {
        &self.counters
    }

    /// Reads the file again if it changed since the last look, and puts it
    /// in force if it is valid. Logs what it did.
    pub async fn check(&mut self) -> Reload {
        let stamp = match stamp(&self.path).await {
            Ok(stamp) => stamp,
            Err(e) => {
                if self.seen.take().is_none() {
                    return Reload::Unchanged; // already reported
                }
                return self.reject(unreadable(&self.path, &e));
            }
        };
        if self.seen == Some(stamp) {
            return Reload::Unchanged;
        }
        self.seen = Some(stamp);
        match read(&self.path).await {
            Ok(table) => {
                tracing::info!(
                    path = %self.path.display(),
                    rates_date = %table.date(),
                    currencies = table.currencies().count(),
                    "currency rates reloaded"
                );
                self.publish.send_replace(Arc::new(table));
                self.counters.applied.inc();
                Reload::Applied
            }
            Err(e) => self.reject(e),
        }
    }

    fn reject(&self, e: CurrencyError) -> Reload {
        tracing::warn!(error = %e, "ignoring the changed rates file; the previous rates stay in force");
        self.counters.rejected.inc();
        Reload::Rejected(e)
    }

    /// Looks at the file every `every` until `stop` is cancelled.
    pub async fn watch(mut self, every: Duration, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; the file was just read
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            self.check().await;
        }
    }
}

async fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = tokio::fs::metadata(path).await?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

async fn read(path: &Path) -> Result<RateTable, CurrencyError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| unreadable(path, &e))?;
    parse(&path.display().to_string(), &text)
}

fn unreadable(path: &Path, e: &std::io::Error) -> CurrencyError {
    CurrencyError::BadRates {
        origin: path.display().to_string(),
        reason: format!("cannot read the file: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rates_are_valid_and_cover_the_documented_currencies() {
        let table = Rates::embedded().unwrap().current();
        assert_eq!(table.base().as_str(), "EUR");
        let codes: Vec<_> = table.currencies().map(|c| c.code.to_string()).collect();
        for code in [
            "EUR", "USD", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "PLN", "CZK",
        ] {
            assert!(codes.iter().any(|c| c == code), "{code} missing");
        }
        let jpy = table
            .currencies()
            .find(|c| c.code.as_str() == "JPY")
            .unwrap();
        assert_eq!(jpy.minor_digits, 0);
    }

    #[test]
    fn documents_with_float_rates_typos_or_bad_values_are_refused_with_the_field() {
        let float = r#"{"base":"EUR","date":"2026-11-24","currencies":[{"code":"EUR","name":"Euro","minor_unit_digits":2,"rate":1}]}"#;
        let err = parse("test", float).unwrap_err().to_string();
        assert!(err.contains("expected a string"), "{err}");
        let typo = r#"{"base":"EUR","date":"2026-11-24","currency":[]}"#;
        let err = parse("test", typo).unwrap_err().to_string();
        assert!(err.contains("unknown field `currency`"), "{err}");
        let bad_rate = r#"{"base":"EUR","date":"2026-11-24","currencies":[{"code":"EUR","name":"Euro","minor_unit_digits":2,"rate":"1"},{"code":"USD","name":"US Dollar","minor_unit_digits":2,"rate":"-1"}]}"#;
        let err = parse("test", bad_rate).unwrap_err().to_string();
        assert!(err.contains("currencies[1].rate"), "{err}");
        assert!(err.starts_with("rates from test"), "{err}");
    }

    #[tokio::test]
    async fn a_changed_file_is_applied_and_a_bad_one_keeps_the_old_rates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rates.json");
        let doc = |usd: &str| {
            format!(
                r#"{{"base":"EUR","date":"2026-11-24","currencies":[{{"code":"EUR","name":"Euro","minor_unit_digits":2,"rate":"1"}},{{"code":"USD","name":"US Dollar","minor_unit_digits":2,"rate":"{usd}"}}]}}"#
            )
        };
        let usd = |rates: &Rates| {
            rates
                .current()
                .currencies()
                .find(|c| c.code.as_str() == "USD")
                .unwrap()
                .rate
                .to_string()
        };
        std::fs::write(&path, doc("1.1")).unwrap();
        let (mut file, rates) = RatesFile::open(&path).await.unwrap();
        assert!(matches!(file.check().await, Reload::Unchanged));

        std::fs::write(&path, doc("1.25")).unwrap();
        assert!(matches!(file.check().await, Reload::Applied));
        assert_eq!(usd(&rates), "1.25");

        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(file.check().await, Reload::Rejected(_)));
        assert_eq!(usd(&rates), "1.25");
        // Reported once, not on every look.
        assert!(matches!(file.check().await, Reload::Unchanged));

        std::fs::remove_file(&path).unwrap();
        assert!(matches!(file.check().await, Reload::Rejected(_)));
        assert!(matches!(file.check().await, Reload::Unchanged));
        assert_eq!(usd(&rates), "1.25");

        std::fs::write(&path, doc("1.3")).unwrap();
        assert!(matches!(file.check().await, Reload::Applied));
        assert_eq!(usd(&rates), "1.3");
        assert_eq!(file.counters.applied.get(), 2);
        assert_eq!(file.counters.rejected.get(), 2);
    }

    #[tokio::test]
    async fn a_missing_or_invalid_file_fails_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = RatesFile::open(&missing).await.unwrap_err().to_string();
        assert!(err.contains("nope.json"), "{err}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[]").unwrap();
        assert!(RatesFile::open(&bad).await.is_err());
    }
}
