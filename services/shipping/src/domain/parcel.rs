//! What is shipped, how much it weighs, and what shipping it costs.
//!
//! ## The price list (USD)
//!
//! | zone | base fee | per kg |
//! |---|---|---|
//! | 1 | $4.99 | $1.20 |
//! | 2 | $8.99 | $2.40 |
//! | 3 | $14.99 | $4.50 |
//! | 4 | $24.99 | $7.80 |
//!
//! `cost = base fee + total weight in kg × per-kg rate`, where the total
//! weight is the sum of quantity × unit weight over the items (a unit weight
//! of 0 means the default parcel weight, 500 g). The weight part is computed
//! in integers (grams × cents per kg) and rounded UP to a whole cent, so the
//! same parcel to the same zone always costs exactly the same. Bounds keep
//! every product far inside `u64`.

use std::fmt;

use super::{Invalid, Zone};

/// Weight of a unit whose weight is not given.
pub const DEFAULT_UNIT_WEIGHT_GRAMS: u32 = 500;
/// Heaviest accepted unit: 100 kg.
pub const MAX_UNIT_WEIGHT_GRAMS: u32 = 100_000;
/// Heaviest accepted parcel: 1 tonne.
pub const MAX_TOTAL_WEIGHT_GRAMS: u32 = 1_000_000;
/// Most units of one item.
pub const MAX_QUANTITY: u32 = 999;
/// Most item lines in one parcel.
pub const MAX_LINES: usize = 100;

/// A stock-keeping unit as the caller names it: 1 to 64 printable ASCII
/// characters without spaces. Shipping does not look SKUs up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sku(String);

impl Sku {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "sku",
                "must be 1 to 64 printable ASCII characters without spaces",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of a parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    sku: Sku,
    quantity: u32,
    /// As given: 0 means [`DEFAULT_UNIT_WEIGHT_GRAMS`].
    unit_weight_grams: u32,
}

impl Item {
    pub fn new(sku: &str, quantity: u32, unit_weight_grams: u32) -> Result<Self, Invalid> {
        let sku = Sku::parse(sku)?;
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(Invalid::new(
                "quantity",
                format!("must be 1 to {MAX_QUANTITY} (got {quantity})"),
            ));
        }
        if unit_weight_grams > MAX_UNIT_WEIGHT_GRAMS {
            return Err(Invalid::new(
                "unit_weight_grams",
                format!("must be at most {MAX_UNIT_WEIGHT_GRAMS} (got {unit_weight_grams})"),
            ));
        }
        Ok(Self {
            sku,
            quantity,
            unit_weight_grams,
        })
    }

    pub fn sku(&self) -> &Sku {
        &self.sku
    }

    pub fn quantity(&self) -> u32 {
        self.quantity
    }

    /// The unit weight as given (0 = default).
    pub fn unit_weight_grams(&self) -> u32 {
        self.unit_weight_grams
    }

    /// The weight of one unit, the default applied.
    pub fn effective_unit_weight_grams(&self) -> u32 {
        match self.unit_weight_grams {
            0 => DEFAULT_UNIT_WEIGHT_GRAMS,
            grams => grams,
        }
    }

    fn weight_grams(&self) -> u64 {
        u64::from(self.quantity) * u64::from(self.effective_unit_weight_grams())
    }
}

/// The items of one shipment: 1 to [`MAX_LINES`] lines weighing at most
/// [`MAX_TOTAL_WEIGHT_GRAMS`] together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    items: Vec<Item>,
    total_weight_grams: u32,
}

impl Parcel {
    pub fn new(items: Vec<Item>) -> Result<Self, Invalid> {
        if items.is_empty() {
            return Err(Invalid::new("items", "at least one item is required"));
        }
        if items.len() > MAX_LINES {
            return Err(Invalid::new(
                "items",
                format!("at most {MAX_LINES} items (got {})", items.len()),
            ));
        }
        // At most 100 × 999 × 100 000 g: no overflow in u64.
        let total: u64 = items.iter().map(Item::weight_grams).sum();
        let total_weight_grams = u32::try_from(total)
            .ok()
            .filter(|&t| t <= MAX_TOTAL_WEIGHT_GRAMS)
            .ok_or_else(|| {
                Invalid::new(
                    "items",
                    format!(
                        "weigh {total} g together; the most one parcel may weigh is {MAX_TOTAL_WEIGHT_GRAMS} g"
                    ),
                )
            })?;
        Ok(Self {
            items,
            total_weight_grams,
        })
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn total_weight_grams(&self) -> u32 {
        self.total_weight_grams
    }
}

/// A shipping quote: the cost in US cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub cost_usd_cents: i64,
    pub zone: Zone,
    pub total_weight_grams: u32,
}

/// The currency of the price list.
pub const PRICE_CURRENCY: &str = "USD";

/// (base fee, rate per kg), in US cents.
fn rates(zone: Zone) -> (u64, u64) {
    match zone {
        Zone::One => (499, 120),
        Zone::Two => (899, 240),
        Zone::Three => (1_499, 450),
        Zone::Four => (2_499, 780),
    }
}

/// The cost of sending `parcel` to `zone`, by the price list above.
pub fn quote(parcel: &Parcel, zone: Zone) -> Quote {
    let (base, per_kg) = rates(zone);
    let grams = u64::from(parcel.total_weight_grams());
    // ≤ 1 000 000 g × 780 c/kg: far inside u64; the result fits i64 too.
    let weight_cents = (grams * per_kg).div_ceil(1_000);
    Quote {
        cost_usd_cents: i64::try_from(base + weight_cents).unwrap_or(i64::MAX),
        zone,
        total_weight_grams: parcel.total_weight_grams(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parcel(items: &[(u32, u32)]) -> Parcel {
        Parcel::new(
            items
                .iter()
                .map(|&(q, w)| Item::new("SKU-1", q, w).unwrap())
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn weights_sum_quantity_times_unit_weight_with_the_default_for_zero() {
        assert_eq!(parcel(&[(1, 0)]).total_weight_grams(), 500);
        assert_eq!(parcel(&[(2, 250), (3, 0)]).total_weight_grams(), 2_000);
    }

    #[test]
    fn quotes_are_base_plus_weight_rounded_up_to_a_cent() {
        // 500 g to zone 1: 4.99 + 0.5 × 1.20 = 5.59.
        assert_eq!(quote(&parcel(&[(1, 0)]), Zone::One).cost_usd_cents, 559);
        // 1234 g to zone 3: 14.99 + 1.234 × 4.50 = 14.99 + 5.553 → 20.55 (up).
        let q = quote(&parcel(&[(2, 617)]), Zone::Three);
        assert_eq!((q.cost_usd_cents, q.total_weight_grams), (2_055, 1_234));
        // 1 g to zone 4: 24.99 + 0.0078 → 25.00.
        assert_eq!(quote(&parcel(&[(1, 1)]), Zone::Four).cost_usd_cents, 2_500);
        // 10 kg to zone 2: 8.99 + 24.00 exactly.
        assert_eq!(
            quote(&parcel(&[(10, 1_000)]), Zone::Two).cost_usd_cents,
            3_299
        );
        // The heaviest parcel: 1 t to zone 4 = 24.99 + 7800.
        assert_eq!(
            quote(&parcel(&[(10, 100_000)]), Zone::Four).cost_usd_cents,
            782_499
        );
    }

    #[test]
    fn the_same_parcel_costs_more_the_further_it_goes() {
        let p = parcel(&[(3, 800)]);
        let costs: Vec<_> = [Zone::One, Zone::Two, Zone::Three, Zone::Four]
            .into_iter()
            .map(|z| quote(&p, z).cost_usd_cents)
            .collect();
        assert!(costs.windows(2).all(|w| w[0] < w[1]), "{costs:?}");
    }

    #[test]
    fn items_and_parcels_are_bounded() {
        assert_eq!(Item::new("A", 0, 1).unwrap_err().field, "quantity");
        assert_eq!(Item::new("A", 1000, 1).unwrap_err().field, "quantity");
        assert!(Item::new("A", 999, 1).is_ok());
        assert_eq!(
            Item::new("A", 1, MAX_UNIT_WEIGHT_GRAMS + 1)
                .unwrap_err()
                .field,
            "unit_weight_grams"
        );
        assert_eq!(Item::new("", 1, 1).unwrap_err().field, "sku");
        assert_eq!(Item::new("A B", 1, 1).unwrap_err().field, "sku");
        assert_eq!(Parcel::new(vec![]).unwrap_err().field, "items");
        let too_many = vec![Item::new("A", 1, 1).unwrap(); MAX_LINES + 1];
        assert_eq!(Parcel::new(too_many).unwrap_err().field, "items");
        let too_heavy = vec![Item::new("A", 11, 100_000).unwrap()];
        assert!(Parcel::new(too_heavy).is_err());
    }
}
