//! Currencies and amounts, as e-mails show them.
//!
//! Amounts are integer minor units with an ISO 4217 currency, as everywhere
//! in Emporium; nothing here does arithmetic with floats. A currency knows
//! how many digits its minor unit has (2 for EUR cents, 0 for JPY, 3 for
//! KWD fils), and an amount is written as the code, a space, the major
//! units with comma thousands separators, and the minor digits:
//! `EUR 1,234.56`, `JPY 1,500`, `KWD 12.345`.

use std::fmt;

/// An ISO 4217 currency code (the chassis type shared by every service).
pub use emporium_chassis::currency::Currency;

/// An amount: integer minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// `self × quantity`, or `None` if that overflows.
    pub fn times(self, quantity: u32) -> Option<Self> {
        self.minor
            .checked_mul(i64::from(quantity))
            .map(|minor| Self::new(minor, self.currency))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        emporium_chassis::currency::Amount {
            minor: self.minor,
            currency: self.currency,
        }
        .fmt(f)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn amounts_show_as_customers_read_them() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::new(123_456, eur).to_string(), "EUR 1,234.56");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::new(1500, jpy).to_string(), "JPY 1,500");
    }

    #[test]
    fn multiplication_is_checked() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::new(1999, eur).times(3), Some(Money::new(5997, eur)));
        assert_eq!(Money::new(i64::MAX / 2, eur).times(3), None);
    }
}
