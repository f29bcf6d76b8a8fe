//! The cart's types and rules: no I/O, no transport types.
//!
//! A cart belongs to one [`Owner`] and holds at most [`MAX_LINES`] lines, one
//! per product, each with 1 to [`Quantity::MAX`] units and the product's name
//! and price when the line was last changed (checkout prices again). Both
//! stores apply the same rules: [`added`] for adding to a line and [`room`]
//! for starting a new one.

mod values;

pub use values::{Currency, Money, Owner, ProductId, ProductName, Quantity};

/// Most lines (distinct products) one cart may hold.
pub const MAX_LINES: usize = 50;

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;

/// A change the cart's rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("product {product_id}: at most {max} per line (the line would have {wanted})", max = Quantity::MAX)]
    TooMany { product_id: ProductId, wanted: u64 },
    #[error("a cart holds at most {MAX_LINES} different products")]
    CartFull,
}

/// One product in a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub name: ProductName,
    pub unit_price: Money,
}

/// A user's cart: lines ordered by product id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cart {
    pub lines: Vec<Line>,
}

impl Cart {
    /// A cart of `lines` in any order.
    pub fn new(mut lines: Vec<Line>) -> Self {
        lines.sort_by_key(|l| l.product_id);
        Self { lines }
    }

    pub fn line(&self, product_id: ProductId) -> Option<&Line> {
        self.lines.iter().find(|l| l.product_id == product_id)
    }
}

/// The quantity of a line after adding `add` units to `current` (none for a
/// new line).
pub fn added(
    product_id: ProductId,
    current: Option<u32>,
    add: Quantity,
) -> Result<Quantity, Refused> {
    let wanted = u64::from(current.unwrap_or(0)) + u64::from(add.get());
    u32::try_from(wanted)
        .ok()
        .and_then(|n| Quantity::new(n).ok())
        .ok_or(Refused::TooMany { product_id, wanted })
}

/// Whether a cart with `lines` lines may take one more.
pub fn room(lines: usize) -> Result<(), Refused> {
    if lines < MAX_LINES {
        Ok(())
    } else {
        Err(Refused::CartFull)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn adding_sums_quantities_up_to_99() {
        let id = ProductId::parse("0192f0c4-6a3b-7c3d-8e4f-0123456789ab").unwrap();
        let q = |n| Quantity::new(n).unwrap();
        assert_eq!(added(id, None, q(3)).unwrap(), q(3));
        assert_eq!(added(id, Some(90), q(9)).unwrap(), q(99));
        assert_eq!(
            added(id, Some(90), q(10)),
            Err(Refused::TooMany {
                product_id: id,
                wanted: 100
            })
        );
    }

    #[test]
    fn a_cart_has_room_for_50_lines() {
        assert!(room(0).is_ok());
        assert!(room(MAX_LINES - 1).is_ok());
        assert_eq!(room(MAX_LINES), Err(Refused::CartFull));
    }
}
