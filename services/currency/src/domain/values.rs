//! Value types of the currency service. Each has one constructor that checks
//! its rule.

use std::fmt;

use rust_decimal::Decimal;

use super::Invalid;

/// An ISO 4217 currency code (the chassis type shared by every service).
pub use emporium_chassis::currency::Currency as CurrencyCode;

/// A currency's display name: 1 to 60 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyName(String);

impl CurrencyName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim();
        let len = value.chars().count();
        if !(1..=60).contains(&len) || value.chars().any(char::is_control) {
            return Err(Invalid::new(
                "name",
                "must be 1 to 60 characters without control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Most digits after the decimal point a currency's minor unit may have
/// (ISO 4217 uses 0 to 4).
pub const MAX_MINOR_DIGITS: u32 = 4;

/// An amount in a currency's minor unit (cents for USD, yen for JPY).
/// Negative amounts (credits) convert by the same rule, symmetrically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: CurrencyCode,
}

impl Money {
    pub fn new(minor: i64, currency: CurrencyCode) -> Self {
        Self { minor, currency }
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> CurrencyCode {
        self.currency
    }
}

/// Units of a currency per one unit of the base currency: a positive decimal
/// of at most [`Rate::MAX_SCALE`] decimal places and at most [`Rate::MAX`].
/// The bounds keep every conversion of a realistic amount far inside `i128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(Decimal);

impl Rate {
    pub const MAX_SCALE: u32 = 12;
    pub const MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

    pub const ONE: Rate = Rate(Decimal::ONE);

    /// Parses a decimal string such as `"1.0478"`. Exponents, signs other
    /// than none, and anything that is not a plain decimal are refused.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let invalid = |why: &str| Invalid::new("rate", format!("`{}` {why}", value.escape_debug()));
        let plain = !value.is_empty()
            && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && value.bytes().filter(|&b| b == b'.').count() <= 1
            && !value.starts_with('.')
            && !value.ends_with('.');
        if !plain {
            return Err(invalid("is not a plain decimal number like \"1.0478\""));
        }
        let decimal: Decimal = value
            .parse()
            .map_err(|_| invalid("is not a decimal number"))?;
        let decimal = decimal.normalize();
        if decimal <= Decimal::ZERO {
            return Err(invalid("must be greater than zero"));
        }
        if decimal > Self::MAX {
            return Err(invalid("is implausibly large"));
        }
        if decimal.scale() > Self::MAX_SCALE {
            return Err(invalid(&format!(
                "has more than {} decimal places",
                Self::MAX_SCALE
            )));
        }
        Ok(Self(decimal))
    }

    pub fn get(self) -> Decimal {
        self.0
    }

    /// The rate as an integer and a power of ten: `mantissa / 10^scale`.
    pub(super) fn parts(self) -> (i128, u32) {
        (self.0.mantissa(), self.0.scale())
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The day a set of rates was published, written `YYYY-MM-DD` (RFC 3339 full-date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatesDate(time::Date);

impl RatesDate {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let invalid = || {
            Invalid::new(
                "date",
                format!("`{}` is not a date like 2026-11-24", value.escape_debug()),
            )
        };
        let bytes = value.as_bytes();
        let shape = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape {
            return Err(invalid());
        }
        let year: i32 = value[0..4].parse().map_err(|_| invalid())?;
        let month: u8 = value[5..7].parse().map_err(|_| invalid())?;
        let day: u8 = value[8..10].parse().map_err(|_| invalid())?;
        let month = time::Month::try_from(month).map_err(|_| invalid())?;
        time::Date::from_calendar_date(year, month, day)
            .map(Self)
            .map_err(|_| invalid())
    }
}

impl fmt::Display for RatesDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_are_three_uppercase_letters() {
        assert_eq!(CurrencyCode::parse("EUR").unwrap().as_str(), "EUR");
        for bad in ["", "eur", "EURO", "EU", "E1R", "ÉUR"] {
            assert!(CurrencyCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_plain_positive_bounded_decimals() {
        assert_eq!(Rate::parse("1.0478").unwrap().to_string(), "1.0478");
        assert_eq!(Rate::parse("161.4200").unwrap().to_string(), "161.42");
        assert_eq!(Rate::parse("1").unwrap(), Rate::ONE);
        for bad in [
            "",
            "0",
            "0.000",
            "-1",
            "+1",
            "1e3",
            "1.",
            ".5",
            "1.2.3",
            "abc",
            " 1",
            "1000000001",
            "0.0000000000001",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Rate::parse("1000000000").unwrap().get(), Rate::MAX);
    }

    #[test]
    fn dates_are_real_calendar_days() {
        assert_eq!(
            RatesDate::parse("2026-11-24").unwrap().to_string(),
            "2026-11-24"
        );
        assert_eq!(
            RatesDate::parse("2024-02-29").unwrap().to_string(),
            "2024-02-29"
        );
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "24.11.2026",
            "2026-11-24T00:00:00Z",
        ] {
            assert!(RatesDate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(CurrencyName::parse(" Euro ").unwrap().as_str(), "Euro");
        assert!(CurrencyName::parse("").is_err());
        assert!(CurrencyName::parse(&"x".repeat(61)).is_err());
        assert!(CurrencyName::parse("Eu\u{7}ro").is_err());
    }
}
