//! The sales report (`emporium report sales`, the daily CronJob): the orders
//! created in a time window — per currency how many were placed, are still
//! pending or failed and what the placed ones sold for; failures by kind; and
//! the best-selling products.
//!
//! Amounts are exact minor units of their currency (cents for EUR, yen for
//! JPY), never converted: a report adds up money only within one currency.
//! The JSON form carries the minor units (`…_minor`); the text form shows
//! them as people read them (`EUR 1,234.56`).

use std::collections::BTreeMap;
use std::fmt;

use emporium_chassis::currency::{Amount, Currency};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::OrderStatus;
use crate::error::CheckoutError;
use crate::store::{PageCursor, Store};

/// Placed orders read per query while summing product lines.
const PAGE: u32 = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalesReport {
    /// Start of the window (inclusive), RFC 3339.
    pub from: String,
    /// End of the window (exclusive), RFC 3339.
    pub until: String,
    /// One entry per currency that has orders in the window, by code.
    pub currencies: Vec<CurrencySales>,
    /// Failed orders per failure kind, most frequent first.
    pub failures: Vec<FailureCount>,
    /// Best-selling products of the placed orders, most units first.
    pub top_products: Vec<ProductSales>,
    /// How many different products were sold (`top_products` may list fewer).
    pub products_sold: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CurrencySales {
    pub currency: String,
    pub placed: u64,
    pub pending: u64,
    pub failed: u64,
    /// Sums over the placed orders, in minor units.
    pub items_minor: i64,
    pub shipping_minor: i64,
    pub revenue_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    pub kind: String,
    pub orders: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductSales {
    pub sku: String,
    pub name: String,
    pub units: u64,
    /// Line revenue per currency code, minor units.
    pub revenue_minor: BTreeMap<String, i64>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn overflow(what: &str) -> CheckoutError {
    CheckoutError::Corrupt(format!("sales report: {what} overflows 64 bits"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    // Formatting a UTC time as RFC 3339 only fails for years beyond 9999.
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Builds the report of the orders created in `[from, until)`, listing at
/// most `top` products.
pub async fn sales(
    store: &Store,
    from: OffsetDateTime,
    until: OffsetDateTime,
    top: usize,
) -> Result<SalesReport, CheckoutError> {
    let mut currencies: BTreeMap<String, CurrencySales> = BTreeMap::new();
    for (currency, status, orders, items, shipping, total) in
        store.sales_by_status(from, until).await?
    {
        let currency = currency.trim().to_owned();
        let entry = currencies
            .entry(currency.clone())
            .or_insert_with(|| CurrencySales {
                currency,
                ..CurrencySales::default()
            });
        match status.as_str() {
            s if s == OrderStatus::Placed.as_str() => {
                entry.placed = count(orders);
                entry.items_minor = items;
                entry.shipping_minor = shipping;
                entry.revenue_minor = total;
            }
            s if s == OrderStatus::Failed.as_str() => entry.failed = count(orders),
            _ => entry.pending += count(orders),
        }
    }

    let mut failures: Vec<FailureCount> = store
        .failures(from, until)
        .await?
        .into_iter()
        .map(|(kind, orders)| FailureCount {
            kind,
            orders: count(orders),
        })
        .collect();
    failures.sort_by(|a, b| b.orders.cmp(&a.orders).then_with(|| a.kind.cmp(&b.kind)));

    let mut products: BTreeMap<String, ProductSales> = BTreeMap::new();
    let mut cursor: PageCursor = (from, String::new());
    loop {
        let page = store.placed_orders_after(&cursor, until, PAGE).await?;
        let Some(last) = page.last() else { break };
        cursor = last.cursor.clone();
        let full = page.len() == PAGE as usize;
        for order in page {
            for item in order.items {
                let p = products
                    .entry(item.sku.clone())
                    .or_insert_with(|| ProductSales {
                        sku: item.sku.clone(),
                        name: item.name.clone(),
                        units: 0,
                        revenue_minor: BTreeMap::new(),
                    });
                p.units = p
                    .units
                    .checked_add(u64::from(item.quantity))
                    .ok_or_else(|| overflow("units sold"))?;
                let line = item
                    .unit_price
                    .checked_mul(i64::from(item.quantity))
                    .ok_or_else(|| overflow("a line total"))?;
                let sum = p
                    .revenue_minor
                    .entry(order.currency.as_str().to_owned())
                    .or_insert(0);
                *sum = sum
                    .checked_add(line)
                    .ok_or_else(|| overflow("product revenue"))?;
            }
        }
        if !full {
            break;
        }
    }
    let products_sold = products.len();
    let mut top_products: Vec<ProductSales> = products.into_values().collect();
    top_products.sort_by(|a, b| b.units.cmp(&a.units).then_with(|| a.sku.cmp(&b.sku)));
    top_products.truncate(top);

    Ok(SalesReport {
        from: rfc3339(from),
        until: rfc3339(until),
        currencies: currencies.into_values().collect(),
        failures,
        top_products,
        products_sold,
    })
}

/// `minor` units of `code` as people read them (`EUR 1,234.56`).
fn amount(minor: i64, code: &str) -> String {
    match Currency::parse(code) {
        Ok(currency) => Amount { minor, currency }.to_string(),
        // Codes come from validated orders; show anything else unscaled.
        Err(_) => format!("{code} {minor} (minor units)"),
    }
}

impl fmt::Display for SalesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Sales from {} until {}", self.from, self.until)?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<8} {:>7} {:>7} {:>7} {:>20} {:>16} {:>20}",
            "CURRENCY", "PLACED", "PENDING", "FAILED", "ITEMS", "SHIPPING", "REVENUE"
        )?;
        for c in &self.currencies {
            writeln!(
                f,
                "{:<8} {:>7} {:>7} {:>7} {:>20} {:>16} {:>20}",
                c.currency,
                c.placed,
                c.pending,
                c.failed,
                amount(c.items_minor, &c.currency),
                amount(c.shipping_minor, &c.currency),
                amount(c.revenue_minor, &c.currency)
            )?;
        }
        if self.currencies.is_empty() {
            writeln!(f, "(no orders)")?;
        }
        if !self.failures.is_empty() {
            writeln!(f)?;
            writeln!(f, "{:<24} {:>8}", "FAILURE", "ORDERS")?;
            for x in &self.failures {
                writeln!(f, "{:<24} {:>8}", x.kind, x.orders)?;
            }
        }
        if !self.top_products.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "Top {} of {} products sold",
                self.top_products.len(),
                self.products_sold
            )?;
            writeln!(f, "{:<16} {:>8}  {:<28} NAME", "SKU", "UNITS", "REVENUE")?;
            for p in &self.top_products {
                let revenue = p
                    .revenue_minor
                    .iter()
                    .map(|(c, m)| amount(*m, c))
                    .collect::<Vec<_>>()
                    .join(", ");
                writeln!(
                    f,
                    "{:<16} {:>8}  {:<28} {}",
                    p.sku, p.units, revenue, p.name
                )?;
            }
        }
        Ok(())
    }
}
