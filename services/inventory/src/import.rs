//! Loading a stock data file (`emporium import stock FILE`, and the local
//! launcher's seed from `data/stock.json`).
//!
//! The file is JSON: `{"levels": [{"sku": "KIT-0001", "available": 25}, …]}`.
//! It is validated whole before anything is written (every SKU valid and
//! listed once, every quantity 0 to one billion), then applied in one
//! transaction that sets the available units of each SKU. Running the same
//! import twice leaves the same stock; units held by reservations are kept.

use std::collections::HashSet;

use serde::Deserialize;

use crate::domain::{Available, Invalid, Sku};
use crate::error::InventoryError;
use crate::store::Store;

/// Largest file accepted.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StockFile {
    levels: Vec<LevelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelEntry {
    sku: String,
    available: i64,
}

/// Parses and validates a stock file. Errors name the entry and field,
/// e.g. `levels[3].sku: …`.
pub fn parse(text: &str) -> Result<Vec<(Sku, Available)>, Invalid> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Invalid::new(
            "file",
            format!("is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let file: StockFile =
        serde_json::from_str(text).map_err(|e| Invalid::new("file", e.to_string()))?;
    if file.levels.is_empty() {
        return Err(Invalid::new("levels", "lists no SKU"));
    }
    let mut seen = HashSet::new();
    file.levels
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let at = format!("levels[{i}]");
            let sku = Sku::parse(&entry.sku).map_err(|e| e.within(&at))?;
            let available = Available::new(entry.available).map_err(|e| e.within(&at))?;
            if !seen.insert(sku.clone()) {
                return Err(Invalid::new(
                    format!("{at}.sku"),
                    format!("{sku} is listed more than once"),
                ));
            }
            Ok((sku, available))
        })
        .collect()
}

/// Validates `json` and sets the stock it lists; returns how many SKUs it set.
pub async fn import_stock(store: &Store, json: &str) -> Result<usize, InventoryError> {
    let levels = parse(json)?;
    store.set_stock(&levels).await?;
    Ok(levels.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_levels_and_names_bad_entries() {
        let got = parse(
            r#"{"levels":[{"sku":"KIT-0001","available":25},{"sku":"BK-0001","available":0}]}"#,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.as_str(), "KIT-0001");
        assert_eq!(got[0].1.get(), 25);
        let err =
            parse(r#"{"levels":[{"sku":"KIT-0001","available":1},{"sku":"kit","available":1}]}"#)
                .unwrap_err();
        assert_eq!(err.field, "levels[1].sku");
        let err = parse(r#"{"levels":[{"sku":"KIT-0001","available":-3}]}"#).unwrap_err();
        assert_eq!(err.field, "levels[0].available");
        let err = parse(
            r#"{"levels":[{"sku":"KIT-0001","available":1},{"sku":"KIT-0001","available":2}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "levels[1].sku");
        assert!(parse(r#"{"levels":[]}"#).is_err());
        assert!(parse(r#"{"levels":[{"sku":"KIT-0001","available":1,"extra":true}]}"#).is_err());
        assert!(parse("not json").is_err());
    }

    #[test]
    fn the_shipped_stock_file_covers_every_catalog_sku_once() {
        let stock = parse(include_str!("../../../data/stock.json")).unwrap();
        let catalog: serde_json::Value =
            serde_json::from_str(include_str!("../../../data/catalog.json")).unwrap();
        let mut catalog_skus: Vec<String> = catalog["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect();
        catalog_skus.sort();
        let mut stock_skus: Vec<String> = stock.iter().map(|(s, _)| s.to_string()).collect();
        stock_skus.sort();
        assert_eq!(stock_skus, catalog_skus);
        for (sku, available) in &stock {
            assert!(
                (5..=60).contains(&available.get()),
                "{sku}: {}",
                available.get()
            );
        }
    }
}
