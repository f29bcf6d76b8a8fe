//! A published set of rates, and converting money with it.
//!
//! ## The conversion rule
//!
//! Rates are quoted against one base currency (EUR): `rate(X)` units of X
//! buy one EUR. An amount of `m` minor units of currency F, whose minor unit
//! has `f` digits, is the decimal amount `m / 10^f` of F; that is
//! `m / 10^f / rate(F)` EUR, which is `m / 10^f / rate(F) × rate(T)` of the
//! target currency T, or that times `10^t` in T's minor units.
//!
//! Every rate is a decimal `mantissa / 10^scale`, so the whole chain is one
//! fraction of integers. It is evaluated exactly (no floating point, no
//! intermediate rounding, not even of the EUR amount) and rounded ONCE, half
//! to even ("banker's rounding"), to T's minor unit: a result of exactly
//! 12.5 cents becomes 12, 13.5 becomes 14, anything else goes to the nearest
//! cent. Negative amounts round symmetrically. All integer arithmetic is
//! checked: an amount too large to convert is an error, never a wrapped
//! number. Converting a currency to itself returns the amount unchanged.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

use super::{CurrencyCode, CurrencyName, Invalid, MAX_MINOR_DIGITS, Money, Rate, RatesDate};

/// One supported currency and its rate against the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyInfo {
    pub code: CurrencyCode,
    pub name: CurrencyName,
    /// Digits of the minor unit: 2 for EUR (cents), 0 for JPY.
    pub minor_digits: u32,
    pub rate: Rate,
}

impl CurrencyInfo {
    pub fn new(
        code: CurrencyCode,
        name: CurrencyName,
        minor_digits: u32,
        rate: Rate,
    ) -> Result<Self, Invalid> {
        if minor_digits > MAX_MINOR_DIGITS {
            return Err(Invalid::new(
                "minor_unit_digits",
                format!("{minor_digits} is above the maximum of {MAX_MINOR_DIGITS}"),
            ));
        }
        Ok(Self {
            code,
            name,
            minor_digits,
            rate,
        })
    }
}

/// The result of a conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    pub converted: Money,
    /// Units of the target per unit of the source, rounded half to even to
    /// [`RateTable::DISPLAY_RATE_SCALE`] places for display (the conversion
    /// itself uses the exact ratio).
    pub rate: Decimal,
    pub date: RatesDate,
}

/// Why a conversion could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("currency {code} is not supported (supported: {})", list(.supported))]
    UnknownCurrency {
        code: CurrencyCode,
        supported: Vec<CurrencyCode>,
    },
    #[error("{amount} minor units of {from} are too large to convert to {to}")]
    TooLarge {
        amount: i64,
        from: CurrencyCode,
        to: CurrencyCode,
    },
}

fn list(codes: &[CurrencyCode]) -> String {
    codes
        .iter()
        .map(CurrencyCode::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most currencies one table may hold.
pub const MAX_CURRENCIES: usize = 200;

/// A consistent set of rates published on one day: the base currency is
/// listed at rate exactly 1 and no code appears twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    base: CurrencyCode,
    date: RatesDate,
    currencies: BTreeMap<CurrencyCode, CurrencyInfo>,
}

impl RateTable {
    /// Places of the cross rate reported with a conversion.
    pub const DISPLAY_RATE_SCALE: u32 = 10;

    pub fn new(
        base: CurrencyCode,
        date: RatesDate,
        currencies: Vec<CurrencyInfo>,
    ) -> Result<Self, Invalid> {
        if currencies.len() > MAX_CURRENCIES {
            return Err(Invalid::new(
                "currencies",
                format!("at most {MAX_CURRENCIES} currencies"),
            ));
        }
        let mut by_code = BTreeMap::new();
        for (i, info) in currencies.into_iter().enumerate() {
            let code = info.code;
            if by_code.insert(code, info).is_some() {
                return Err(Invalid::new(
                    format!("currencies[{i}].code"),
                    format!("{code} is listed twice"),
                ));
            }
        }
        match by_code.get(&base) {
            None => Err(Invalid::new(
                "base",
                format!("the base currency {base} is not among the currencies"),
            )),
            Some(info) if info.rate != Rate::ONE => Err(Invalid::new(
                "base",
                format!(
                    "the base currency {base} must have rate 1, not {}",
                    info.rate
                ),
            )),
            Some(_) => Ok(Self {
                base,
                date,
                currencies: by_code,
            }),
        }
    }

    pub fn base(&self) -> CurrencyCode {
        self.base
    }

    pub fn date(&self) -> RatesDate {
        self.date
    }

    /// Every supported currency, ordered by code.
    pub fn currencies(&self) -> impl Iterator<Item = &CurrencyInfo> {
        self.currencies.values()
    }

    pub fn get(&self, code: CurrencyCode) -> Result<&CurrencyInfo, ConvertError> {
        self.currencies
            .get(&code)
            .ok_or_else(|| ConvertError::UnknownCurrency {
                code,
                supported: self.currencies.keys().copied().collect(),
            })
    }

    /// Converts `amount` into `to` by the rule in the module docs.
    pub fn convert(&self, amount: Money, to: CurrencyCode) -> Result<Conversion, ConvertError> {
        let from = self.get(amount.currency())?;
        let target = self.get(to)?;
        if from.code == target.code {
            return Ok(Conversion {
                converted: amount,
                rate: Decimal::ONE,
                date: self.date,
            });
        }
        let too_large = || ConvertError::TooLarge {
            amount: amount.minor(),
            from: from.code,
            to,
        };
        let minor = convert_minor(amount.minor(), from, target).ok_or_else(too_large)?;
        let rate = target
            .rate
            .get()
            .checked_div(from.rate.get())
            .ok_or_else(too_large)?
            .round_dp_with_strategy(
                Self::DISPLAY_RATE_SCALE,
                RoundingStrategy::MidpointNearestEven,
            )
            .normalize();
        Ok(Conversion {
            converted: Money::new(minor, to),
            rate,
            date: self.date,
        })
    }
}

/// `minor / 10^f / rate(F) × rate(T) × 10^t`, with each rate written as
/// `mantissa / 10^scale`:
///
/// ```text
/// minor × m(T) × 10^(t + s(F))
/// ----------------------------
/// m(F) × 10^(f + s(T))
/// ```
///
/// The common powers of ten are cancelled first, so only the difference of
/// the exponents is applied. `None` when any step overflows.
fn convert_minor(minor: i64, from: &CurrencyInfo, to: &CurrencyInfo) -> Option<i64> {
    let (m_from, s_from) = from.rate.parts();
    let (m_to, s_to) = to.rate.parts();
    let up = to.minor_digits + s_from;
    let down = from.minor_digits + s_to;
    let mut numerator = i128::from(minor).checked_mul(m_to)?;
    let mut denominator = m_from;
    if up >= down {
        numerator = numerator.checked_mul(10i128.checked_pow(up - down)?)?;
    } else {
        denominator = denominator.checked_mul(10i128.checked_pow(down - up)?)?;
    }
    i64::try_from(div_round_half_even(numerator, denominator)?).ok()
}

/// `numerator / denominator` rounded to the nearest integer, ties to the
/// even one. `denominator` must be positive (rates are).
fn div_round_half_even(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator <= 0 {
        return None;
    }
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    let twice = remainder.checked_abs()?.checked_mul(2)?;
    let away_from_zero = match twice.cmp(&denominator) {
        Ordering::Less => false,
        Ordering::Greater => true,
        Ordering::Equal => quotient % 2 != 0,
    };
    if away_from_zero {
        quotient.checked_add(numerator.signum())
    } else {
        Some(quotient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> CurrencyCode {
        CurrencyCode::parse(c).unwrap()
    }

    fn info(c: &str, digits: u32, rate: &str) -> CurrencyInfo {
        CurrencyInfo::new(
            code(c),
            CurrencyName::parse(c).unwrap(),
            digits,
            Rate::parse(rate).unwrap(),
        )
        .unwrap()
    }

    fn table(currencies: Vec<CurrencyInfo>) -> RateTable {
        RateTable::new(
            code("EUR"),
            RatesDate::parse("2026-11-24").unwrap(),
            currencies,
        )
        .unwrap()
    }

    /// Rates chosen so that results land exactly on half a minor unit.
    fn halves() -> RateTable {
        table(vec![
            info("EUR", 2, "1"),
            info("USD", 2, "1.5"),
            info("JPY", 0, "100"),
            info("XTS", 2, "2"),
            info("KWD", 3, "0.5"),
        ])
    }

    fn convert(t: &RateTable, minor: i64, from: &str, to: &str) -> i64 {
        t.convert(Money::new(minor, code(from)), code(to))
            .unwrap()
            .converted
            .minor()
    }

    #[test]
    fn exact_halves_round_to_the_even_neighbour() {
        let t = halves();
        // 0.25 EUR × 1.5 = 0.375 USD → 37.5 cents: ties to 38 (even).
        assert_eq!(convert(&t, 25, "EUR", "USD"), 38);
        // 0.15 EUR × 1.5 = 0.225 USD → 22.5 cents: ties to 22 (even).
        assert_eq!(convert(&t, 15, "EUR", "USD"), 22);
        // 1 JPY = 0.01 EUR = 0.02 XTS exactly; 1 XTS cent = 0.5 JPY → 0 (even).
        assert_eq!(convert(&t, 1, "XTS", "JPY"), 0);
        // 3 XTS cents = 1.5 JPY → 2 (even); 5 cents = 2.5 JPY → 2 (even).
        assert_eq!(convert(&t, 3, "XTS", "JPY"), 2);
        assert_eq!(convert(&t, 5, "XTS", "JPY"), 2);
        // Negative amounts round symmetrically.
        assert_eq!(convert(&t, -25, "EUR", "USD"), -38);
        assert_eq!(convert(&t, -15, "EUR", "USD"), -22);
        assert_eq!(convert(&t, -3, "XTS", "JPY"), -2);
    }

    #[test]
    fn non_ties_go_to_the_nearest_minor_unit() {
        let t = halves();
        // 1 USD cent = 0.00666… EUR → 0.67 cents of EUR → 1 cent.
        assert_eq!(convert(&t, 1, "USD", "EUR"), 1);
        // 100 USD = 66.666… EUR → 6666.67 cents → 6667.
        assert_eq!(convert(&t, 10_000, "USD", "EUR"), 6_667);
        // 1 EUR = 0.5 KWD = 500 fils, three minor digits.
        assert_eq!(convert(&t, 100, "EUR", "KWD"), 500);
        // 1 fils = 0.002 EUR = 0.2 cents → 0.
        assert_eq!(convert(&t, 1, "KWD", "EUR"), 0);
        assert_eq!(convert(&t, 3, "KWD", "EUR"), 1);
    }

    #[test]
    fn converting_to_the_same_currency_changes_nothing() {
        let t = halves();
        let c = t
            .convert(Money::new(i64::MAX, code("JPY")), code("JPY"))
            .unwrap();
        assert_eq!(c.converted.minor(), i64::MAX);
        assert_eq!(c.rate, Decimal::ONE);
    }

    #[test]
    fn the_cross_rate_is_reported_rounded_for_display() {
        let t = halves();
        let c = t
            .convert(Money::new(100, code("USD")), code("EUR"))
            .unwrap();
        assert_eq!(c.rate.to_string(), "0.6666666667");
        let c = t
            .convert(Money::new(100, code("EUR")), code("JPY"))
            .unwrap();
        assert_eq!(c.rate.to_string(), "100");
        assert_eq!(c.converted.minor(), 100);
    }

    #[test]
    fn overflow_is_an_error_not_a_wrapped_number() {
        let t = halves();
        let err = t
            .convert(Money::new(i64::MAX, code("EUR")), code("USD"))
            .unwrap_err();
        assert!(matches!(err, ConvertError::TooLarge { .. }), "{err}");
        assert!(
            t.convert(Money::new(i64::MIN, code("EUR")), code("USD"))
                .is_err()
        );
        // Big but representable amounts still convert exactly.
        assert_eq!(
            convert(&t, 9_000_000_000_000_000, "JPY", "EUR"),
            9_000_000_000_000_000
        );
    }

    #[test]
    fn unknown_currencies_are_named_with_the_supported_ones() {
        let t = halves();
        let err = t
            .convert(Money::new(1, code("EUR")), code("ABC"))
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ABC"), "{text}");
        assert!(text.contains("EUR, JPY, KWD, USD, XTS"), "{text}");
        assert!(t.convert(Money::new(1, code("ABC")), code("EUR")).is_err());
    }

    #[test]
    fn tables_need_their_base_at_rate_one_and_unique_codes() {
        let date = RatesDate::parse("2026-11-24").unwrap();
        let missing = RateTable::new(code("EUR"), date, vec![info("USD", 2, "1.1")]);
        assert_eq!(missing.unwrap_err().field, "base");
        let wrong = RateTable::new(code("EUR"), date, vec![info("EUR", 2, "1.01")]);
        assert_eq!(wrong.unwrap_err().field, "base");
        let twice = RateTable::new(
            code("EUR"),
            date,
            vec![
                info("EUR", 2, "1"),
                info("USD", 2, "1.1"),
                info("USD", 2, "1.2"),
            ],
        );
        assert_eq!(twice.unwrap_err().field, "currencies[2].code");
        assert!(
            CurrencyInfo::new(
                code("EUR"),
                CurrencyName::parse("Euro").unwrap(),
                5,
                Rate::ONE
            )
            .is_err()
        );
    }

    #[test]
    fn rounding_helper_handles_every_sign_and_tie() {
        assert_eq!(div_round_half_even(5, 2), Some(2));
        assert_eq!(div_round_half_even(7, 2), Some(4));
        assert_eq!(div_round_half_even(-5, 2), Some(-2));
        assert_eq!(div_round_half_even(-7, 2), Some(-4));
        assert_eq!(div_round_half_even(10, 3), Some(3));
        assert_eq!(div_round_half_even(11, 3), Some(4));
        assert_eq!(div_round_half_even(-11, 3), Some(-4));
        assert_eq!(div_round_half_even(0, 7), Some(0));
        assert_eq!(div_round_half_even(1, 0), None);
    }
}
