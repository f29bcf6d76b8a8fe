//! ISO 4217 currency codes and how amounts in them are written.
//!
//! Every service keeps money as integer minor units with a [`Currency`]; what
//! a service adds on top (price limits, arithmetic rules, rates) stays in the
//! service. A currency knows how many digits its minor unit has (2 for EUR
//! cents, 0 for JPY, 3 for KWD fils), and [`Amount`] writes an amount as the
//! code, a space, the major units with comma thousands separators and the
//! minor digits: `EUR 1,234.56`, `JPY 1,500`, `KWD 12.345`.

use std::fmt;

/// ISO 4217 currencies whose minor unit has no digits.
const ZERO_DIGITS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies whose minor unit has three digits.
const THREE_DIGITS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
/// ISO 4217 currencies whose minor unit has four digits.
const FOUR_DIGITS: &[&str] = &["CLF", "UYW"];

/// An ISO 4217 alphabetic currency code: three uppercase ASCII letters.
/// Whether a service supports the currency is the service's question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// A string that is not a currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO 4217 code like USD (three uppercase letters)")]
pub struct InvalidCurrency(String);

impl InvalidCurrency {
    /// As a problem with the field `field`.
    pub fn at(&self, field: &str) -> crate::error::Invalid {
        crate::error::Invalid::new(field, self.to_string())
    }
}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, InvalidCurrency> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(InvalidCurrency(code.escape_debug().to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only `parse` builds a Currency, from three ASCII letters, so the
        // fallback (ISO 4217's own "no currency" code) is never taken.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits of the minor unit: 2 unless ISO 4217 says otherwise.
    pub fn minor_digits(&self) -> u32 {
        let code = self.as_str();
        if ZERO_DIGITS.contains(&code) {
            0
        } else if THREE_DIGITS.contains(&code) {
            3
        } else if FOUR_DIGITS.contains(&code) {
            4
        } else {
            2
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of minor units of a currency, as people read it
/// (`EUR 1,234.56`); exact for every `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub minor: i64,
    pub currency: Currency,
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let scale = 10u64.pow(digits);
        let magnitude = self.minor.unsigned_abs();
        let (major, minor) = (magnitude / scale, magnitude % scale);
        write!(f, "{} ", self.currency)?;
        if self.minor < 0 {
            f.write_str("-")?;
        }
        f.write_str(&grouped(major))?;
        if digits > 0 {
            write!(f, ".{minor:0width$}", width = digits as usize)?;
        }
        Ok(())
    }
}

/// `1234567` → `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn amount(minor: i64, code: &str) -> String {
        Amount {
            minor,
            currency: Currency::parse(code).unwrap(),
        }
        .to_string()
    }

    #[test]
    fn two_digit_currencies_show_cents() {
        assert_eq!(amount(4498, "EUR"), "EUR 44.98");
        assert_eq!(amount(500, "USD"), "USD 5.00");
        assert_eq!(amount(7, "GBP"), "GBP 0.07");
        assert_eq!(amount(0, "EUR"), "EUR 0.00");
        assert_eq!(amount(123_456_789, "CHF"), "CHF 1,234,567.89");
        assert_eq!(amount(100_000, "SEK"), "SEK 1,000.00");
    }

    #[test]
    fn yen_has_no_minor_digits() {
        assert_eq!(amount(1500, "JPY"), "JPY 1,500");
        assert_eq!(amount(7, "JPY"), "JPY 7");
        assert_eq!(amount(999, "KRW"), "KRW 999");
    }

    #[test]
    fn other_exponents_follow_iso_4217() {
        assert_eq!(amount(12_345, "KWD"), "KWD 12.345");
        assert_eq!(amount(5, "BHD"), "BHD 0.005");
        assert_eq!(amount(10_000, "CLF"), "CLF 1.0000");
    }

    #[test]
    fn negative_and_extreme_amounts_are_exact() {
        assert_eq!(amount(-250, "EUR"), "EUR -2.50");
        assert_eq!(amount(i64::MAX, "EUR"), "EUR 92,233,720,368,547,758.07");
        assert_eq!(amount(i64::MIN, "JPY"), "JPY -9,223,372,036,854,775,808");
    }

    #[test]
    fn currency_codes_are_three_uppercase_letters() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EUR").unwrap() < Currency::parse("USD").unwrap());
        for bad in ["", "eur", "EU", "EURO", "E1R", "€€€", "EUR "] {
            let e = Currency::parse(bad).unwrap_err();
            assert!(e.to_string().contains("ISO 4217"), "{bad}: {e}");
        }
    }
}
