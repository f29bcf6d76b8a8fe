//! The currency service's types and rules: no I/O, no transport types.
//!
//! Every value is built by one fallible constructor, so past the edge a
//! [`CurrencyCode`] is always three uppercase letters, a [`Rate`] always
//! positive and bounded, and a [`RateTable`] always internally consistent
//! (its base currency listed at rate 1, no code twice).
//!
//! The conversion rule lives in [`RateTable::convert`]: exact rational
//! arithmetic on integers, then one rounding, half to even, to the target's
//! minor unit.

mod table;
mod values;

pub use table::{Conversion, ConvertError, CurrencyInfo, RateTable};
pub use values::{CurrencyCode, CurrencyName, MAX_MINOR_DIGITS, Money, Rate, RatesDate};

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;
