//! Payment cards: checking what the customer typed, and what the simulated
//! processor answers.
//!
//! A card is valid when its number is 12 to 19 digits (spaces allowed and
//! ignored, nothing else) that pass the Luhn check, its expiry month is 1 to
//! 12 and its year is four digits from 2000 (or two digits, read as 20YY),
//! and its CVC is 3 or 4 digits. An invalid card is a caller error; a valid
//! one gets an [`Outcome`] from [`decide`]:
//!
//! 1. expired (expiry month before the current month) → declined `expired_card`;
//! 2. `4000 0000 0000 0002` → declined `card_declined`;
//! 3. `4000 0000 0000 9995` → declined `insufficient_funds`;
//! 4. any other valid number (e.g. `4242 4242 4242 4242`) → approved.
//!
//! The full number and the CVC never leave this module's types except as
//! the last four digits and the brand; their `Debug` output is masked.

use std::fmt;

use super::Invalid;

/// A card number that passed the format and Luhn checks: 12 to 19 digits.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let invalid = |why: &str| Invalid::new("card.number", why);
        if value.len() > 64 {
            return Err(invalid("is too long to be a card number"));
        }
        let digits: String = value.chars().filter(|c| *c != ' ').collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("may contain only digits and spaces"));
        }
        if !(12..=19).contains(&digits.len()) {
            return Err(invalid(&format!(
                "must have 12 to 19 digits (got {})",
                digits.len()
            )));
        }
        if !luhn(&digits) {
            return Err(invalid("fails the Luhn check; is there a typo?"));
        }
        Ok(Self(digits))
    }

    /// The last four digits, the only part of the number that is kept.
    pub fn last4(&self) -> Last4 {
        Last4(self.0[self.0.len() - 4..].to_owned())
    }

    /// The card network, from the number's prefix.
    pub fn brand(&self) -> Brand {
        let prefix = |n: usize| self.0[..n].parse::<u32>().unwrap_or(0);
        match (prefix(1), prefix(2), prefix(4)) {
            (4, _, _) => Brand::Visa,
            (_, 34 | 37, _) => Brand::Amex,
            (_, 51..=55, _) | (_, _, 2221..=2720) => Brand::Mastercard,
            _ => Brand::Unknown,
        }
    }

    fn digits(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber(**** {})", self.last4().as_str())
    }
}

/// The Luhn (mod 10) checksum over ASCII digits: from the right, every
/// second digit is doubled (minus 9 when above 9) and the sum must end in 0.
pub fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .map(|b| u32::from(b - b'0'))
        .enumerate()
        .map(|(i, d)| match (i % 2 == 1, d * 2) {
            (false, _) => d,
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// The last four digits of a card number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last4(String);

impl Last4 {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new("card_last4", "must be four digits"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The card network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brand {
    /// Numbers starting with 4.
    Visa,
    /// 51–55, or 2221–2720.
    Mastercard,
    /// 34 or 37.
    Amex,
    Unknown,
}

impl Brand {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "visa" => Some(Self::Visa),
            "mastercard" => Some(Self::Mastercard),
            "amex" => Some(Self::Amex),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// A calendar month, the unit card expiry is stated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct YearMonth {
    year: u32,
    month: u32,
}

impl YearMonth {
    /// The month `t` falls in (UTC).
    pub fn of(t: time::OffsetDateTime) -> Self {
        let t = t.to_offset(time::UtcOffset::UTC);
        Self {
            year: u32::try_from(t.year()).unwrap_or(0),
            month: u32::from(u8::from(t.month())),
        }
    }
}

/// The month a card expires at the end of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry(YearMonth);

impl Expiry {
    pub fn new(month: u32, year: u32) -> Result<Self, Invalid> {
        if !(1..=12).contains(&month) {
            return Err(Invalid::new(
                "card.exp_month",
                format!("must be 1 to 12 (got {month})"),
            ));
        }
        let year = match year {
            0..=99 => 2000 + year,
            2000..=2199 => year,
            _ => {
                return Err(Invalid::new(
                    "card.exp_year",
                    format!("must be a year like 2030 or 30 (got {year})"),
                ));
            }
        };
        Ok(Self(YearMonth { year, month }))
    }

    /// A card is valid through the end of its expiry month.
    pub fn has_passed(self, today: YearMonth) -> bool {
        self.0 < today
    }
}

/// A card verification code: 3 or 4 digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvc(String);

impl Cvc {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if (3..=4).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new("card.cvc", "must be 3 or 4 digits"))
        }
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

/// A card that passed every format check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub number: CardNumber,
    pub expiry: Expiry,
    /// Checked for form, then only carried to the (simulated) processor.
    pub cvc: Cvc,
}

impl Card {
    pub fn new(number: &str, exp_month: u32, exp_year: u32, cvc: &str) -> Result<Self, Invalid> {
        Ok(Self {
            number: CardNumber::parse(number)?,
            expiry: Expiry::new(exp_month, exp_year)?,
            cvc: Cvc::parse(cvc)?,
        })
    }
}

/// Why a charge was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineCode {
    CardDeclined,
    InsufficientFunds,
    ExpiredCard,
}

impl DeclineCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CardDeclined => "card_declined",
            Self::InsufficientFunds => "insufficient_funds",
            Self::ExpiredCard => "expired_card",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "card_declined" => Some(Self::CardDeclined),
            "insufficient_funds" => Some(Self::InsufficientFunds),
            "expired_card" => Some(Self::ExpiredCard),
            _ => None,
        }
    }
}

impl fmt::Display for DeclineCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the processor answers for a valid card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    Declined(DeclineCode),
}

/// The test card declined as `card_declined`.
pub const DECLINED_CARD: &str = "4000000000000002";
/// The test card declined as `insufficient_funds`.
pub const INSUFFICIENT_FUNDS_CARD: &str = "4000000000009995";
/// The usual succeeding test card.
pub const SUCCEEDING_CARD: &str = "4242424242424242";

/// The simulated processor's answer for `card` in the month `today`, by the
/// rules in the module docs.
pub fn decide(card: &Card, today: YearMonth) -> Outcome {
    if card.expiry.has_passed(today) {
        return Outcome::Declined(DeclineCode::ExpiredCard);
    }
    match card.number.digits() {
        DECLINED_CARD => Outcome::Declined(DeclineCode::CardDeclined),
        INSUFFICIENT_FUNDS_CARD => Outcome::Declined(DeclineCode::InsufficientFunds),
        _ => Outcome::Approved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ym(year: u32, month: u32) -> YearMonth {
        YearMonth { year, month }
    }

    #[test]
    fn luhn_accepts_valid_numbers_and_catches_typos() {
        for valid in [
            SUCCEEDING_CARD,
            DECLINED_CARD,
            INSUFFICIENT_FUNDS_CARD,
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "6011111111111117",
            "79927398713",
            "0",
        ] {
            assert!(luhn(valid), "{valid}");
        }
        for invalid in [
            "4242424242424241",
            "4242424242424224", // two digits swapped
            "79927398710",
            "1",
            "",
        ] {
            assert!(!luhn(invalid), "{invalid}");
        }
    }

    #[test]
    fn numbers_allow_spaces_but_nothing_else_and_need_12_to_19_digits() {
        let n = CardNumber::parse("4242 4242 4242 4242").unwrap();
        assert_eq!(n.last4().as_str(), "4242");
        for bad in [
            "4242-4242-4242-4242",
            "4242424242424241",
            "42424242424",          // 11 digits
            "42424242424242424242", // 20 digits
            "",
            "abcd",
            "4242\t4242 4242 4242",
        ] {
            let err = CardNumber::parse(bad).unwrap_err();
            assert_eq!(err.field, "card.number", "{bad}");
        }
        // 12 and 19 digits are fine when the checksum is.
        assert!(CardNumber::parse("000000000000").is_ok());
        assert!(CardNumber::parse("4000000000000000006").is_ok());
    }

    #[test]
    fn the_debug_form_shows_only_the_last_four_digits() {
        let card = Card::new(SUCCEEDING_CARD, 12, 2030, "123").unwrap();
        let shown = format!("{card:?}");
        assert!(!shown.contains("424242424242"), "{shown}");
        assert!(!shown.contains("123"), "{shown}");
        assert!(shown.contains("**** 4242"), "{shown}");
    }

    #[test]
    fn brands_come_from_the_prefix() {
        let brand = |n: &str| CardNumber::parse(n).unwrap().brand();
        assert_eq!(brand(SUCCEEDING_CARD), Brand::Visa);
        assert_eq!(brand("5555555555554444"), Brand::Mastercard);
        assert_eq!(brand("2223003122003222"), Brand::Mastercard);
        assert_eq!(brand("378282246310005"), Brand::Amex);
        assert_eq!(brand("6011111111111117"), Brand::Unknown);
        assert_eq!(brand("2720990000000007"), Brand::Mastercard);
        assert_eq!(brand("2721000000000004"), Brand::Unknown);
        assert_eq!(brand("2220990000000002"), Brand::Unknown);
        for b in [Brand::Visa, Brand::Mastercard, Brand::Amex, Brand::Unknown] {
            assert_eq!(Brand::parse(b.as_str()), Some(b));
        }
    }

    #[test]
    fn expiry_and_cvc_are_checked() {
        assert_eq!(Expiry::new(0, 2030).unwrap_err().field, "card.exp_month");
        assert_eq!(Expiry::new(13, 2030).unwrap_err().field, "card.exp_month");
        assert_eq!(Expiry::new(1, 1999).unwrap_err().field, "card.exp_year");
        assert_eq!(Expiry::new(1, 30).unwrap(), Expiry::new(1, 2030).unwrap());
        assert!(Cvc::parse("12").is_err());
        assert!(Cvc::parse("12345").is_err());
        assert!(Cvc::parse("12a").is_err());
        assert!(Cvc::parse("123").is_ok() && Cvc::parse("1234").is_ok());
    }

    #[test]
    fn a_card_is_good_through_its_expiry_month() {
        let exp = Expiry::new(11, 2026).unwrap();
        assert!(!exp.has_passed(ym(2026, 10)));
        assert!(!exp.has_passed(ym(2026, 11)));
        assert!(exp.has_passed(ym(2026, 12)));
        assert!(exp.has_passed(ym(2027, 1)));
    }

    #[test]
    fn the_simulated_processor_follows_the_documented_test_cards() {
        let today = ym(2026, 11);
        let card = |n: &str, month, year| Card::new(n, month, year, "123").unwrap();
        assert_eq!(
            decide(&card(SUCCEEDING_CARD, 12, 2030), today),
            Outcome::Approved
        );
        assert_eq!(
            decide(&card(DECLINED_CARD, 12, 2030), today),
            Outcome::Declined(DeclineCode::CardDeclined)
        );
        assert_eq!(
            decide(&card(INSUFFICIENT_FUNDS_CARD, 12, 2030), today),
            Outcome::Declined(DeclineCode::InsufficientFunds)
        );
        assert_eq!(
            decide(&card("5555555555554444", 1, 2027), today),
            Outcome::Approved
        );
        assert_eq!(
            decide(&card(SUCCEEDING_CARD, 10, 2026), today),
            Outcome::Declined(DeclineCode::ExpiredCard)
        );
        // Expiry is checked first.
        assert_eq!(
            decide(&card(DECLINED_CARD, 1, 2020), today),
            Outcome::Declined(DeclineCode::ExpiredCard)
        );
        for code in [
            DeclineCode::CardDeclined,
            DeclineCode::InsufficientFunds,
            DeclineCode::ExpiredCard,
        ] {
            assert_eq!(DeclineCode::parse(code.as_str()), Some(code));
        }
    }
}
