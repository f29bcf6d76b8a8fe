//! Payment's types and rules: no I/O, no transport types.
//!
//! Every value is built by one fallible constructor, so past the edge an
//! [`Amount`] is always positive with a well-formed currency, an
//! [`IdempotencyKey`] always printable and bounded, and a [`card::Card`]
//! always passed the Luhn, expiry and CVC format checks. A charge's life is
//! the [`ChargeState`] machine: `Succeeded → Refunded` is the only move.
//!
//! - [`card`] — card numbers, brands, expiry, and the simulated processor's answer

pub mod card;

use std::fmt;

use time::OffsetDateTime;

pub use card::{Brand, Card, DeclineCode, Last4, Outcome, YearMonth};

/// A value that broke a rule (the chassis type every service shares).
pub use emporium_chassis::error::Invalid;

/// A charge id: a UUID (version 7, so ids sort by creation time), written in
/// its canonical lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChargeId(uuid::Uuid);

impl ChargeId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let parsed = (value.len() == 36)
            .then(|| uuid::Uuid::try_parse(value).ok())
            .flatten();
        match parsed {
            Some(id) if id.hyphenated().to_string() == value => Ok(Self(id)),
            _ => Err(Invalid::new(
                "charge_id",
                format!(
                    "`{}` is not a charge id (a lowercase UUID)",
                    value.escape_debug()
                ),
            )),
        }
    }
}

impl fmt::Display for ChargeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Longest idempotency key (and key prefix), in characters.
pub const MAX_KEY_LEN: usize = 200;

fn key_chars(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic())
}

/// The caller's name for one charge attempt (checkout uses the order id):
/// 1 to [`MAX_KEY_LEN`] printable ASCII characters, no spaces. Every call with
/// the same key gets the same charge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if (1..=MAX_KEY_LEN).contains(&value.len()) && key_chars(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "idempotency_key",
                format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters without spaces"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The start of idempotency keys to list charges by; empty matches every key.
/// Matched literally (no wildcards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.len() <= MAX_KEY_LEN && key_chars(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "idempotency_key_prefix",
                format!("must be at most {MAX_KEY_LEN} printable ASCII characters without spaces"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The smallest string above every key that starts with this prefix:
    /// keys are printable ASCII (below DEL, 0x7F), so `prefix + DEL` bounds
    /// them, and `prefix <= key < upper_bound()` is exactly "starts with".
    pub fn upper_bound(&self) -> String {
        format!("{}\u{7f}", self.0)
    }
}

/// Most charges one list returns.
pub const MAX_LIST: u32 = 100;

/// An ISO 4217 currency code (the chassis type shared by every service).
pub use emporium_chassis::currency::Currency;

/// An amount to charge: positive integer minor units and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    minor: i64,
    currency: Currency,
}

impl Amount {
    /// Largest single charge: 10 billion major units.
    pub const MAX_MINOR: i64 = 1_000_000_000_000;

    pub fn new(minor: i64, currency: Currency) -> Result<Self, Invalid> {
        if minor <= 0 {
            return Err(Invalid::new(
                "minor_units",
                format!("must be greater than zero (got {minor})"),
            ));
        }
        if minor > Self::MAX_MINOR {
            return Err(Invalid::new(
                "minor_units",
                format!("must be at most {} (got {minor})", Self::MAX_MINOR),
            ));
        }
        Ok(Self { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

/// What the charge is for, as the caller describes it: up to 500
/// characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim();
        let len = value.chars().count();
        if len > 500 {
            return Err(Invalid::new(
                "description",
                format!("must be at most 500 characters (got {len})"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Invalid::new(
                "description",
                "must not contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a charge is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeState {
    /// The money was taken.
    Succeeded,
    /// The processor said no; nothing was taken, and nothing can follow.
    Declined(DeclineCode),
    /// The money was given back in full.
    Refunded,
}

/// A refund of a charge that took no money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the charge was declined ({0}); there is nothing to refund")]
pub struct NothingToRefund(pub DeclineCode);

impl ChargeState {
    pub fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Approved => Self::Succeeded,
            Outcome::Declined(code) => Self::Declined(code),
        }
    }

    /// The state after a refund: a succeeded charge is refunded, a refunded
    /// one stays refunded (refunds are idempotent), a declined one cannot be.
    pub fn refund(self) -> Result<Self, NothingToRefund> {
        match self {
            Self::Succeeded | Self::Refunded => Ok(Self::Refunded),
            Self::Declined(code) => Err(NothingToRefund(code)),
        }
    }

    /// The stored name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Declined(_) => "declined",
            Self::Refunded => "refunded",
        }
    }

    pub fn decline_code(self) -> Option<DeclineCode> {
        match self {
            Self::Declined(code) => Some(code),
            _ => None,
        }
    }

    /// Reads back [`Self::as_str`] and [`Self::decline_code`].
    pub fn parse(status: &str, decline_code: Option<&str>) -> Option<Self> {
        match (status, decline_code) {
            ("succeeded", None) => Some(Self::Succeeded),
            ("refunded", None) => Some(Self::Refunded),
            ("declined", Some(code)) => DeclineCode::parse(code).map(Self::Declined),
            _ => None,
        }
    }
}

/// A charge to record: everything but the id and times. Holds no card data
/// beyond the last four digits and the brand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCharge {
    pub idempotency_key: IdempotencyKey,
    pub amount: Amount,
    pub outcome: Outcome,
    pub card_last4: Last4,
    pub card_brand: Brand,
    pub description: Description,
}

impl NewCharge {
    /// The charge for `card`, decided by the simulated processor in `today`'s month.
    pub fn decide(
        idempotency_key: IdempotencyKey,
        amount: Amount,
        card: &Card,
        description: Description,
        today: YearMonth,
    ) -> Self {
        Self {
            idempotency_key,
            amount,
            outcome: card::decide(card, today),
            card_last4: card.number.last4(),
            card_brand: card.number.brand(),
            description,
        }
    }
}

/// A recorded charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: ChargeId,
    pub idempotency_key: IdempotencyKey,
    pub amount: Amount,
    pub state: ChargeState,
    pub card_last4: Last4,
    pub card_brand: Brand,
    pub description: Description,
    pub created_at: OffsetDateTime,
    pub refunded_at: Option<OffsetDateTime>,
}

/// The current time at the precision both databases keep (microseconds), so
/// a value reads back exactly as it was written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_and_bounded() {
        let usd = Currency::parse("USD").unwrap();
        assert!(Amount::new(0, usd).is_err());
        assert!(Amount::new(-5, usd).is_err());
        assert!(Amount::new(Amount::MAX_MINOR + 1, usd).is_err());
        assert_eq!(Amount::new(1, usd).unwrap().minor(), 1);
        for bad in ["usd", "US", "USDX", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_and_prefixes_are_printable_and_bounded() {
        assert!(IdempotencyKey::parse("0192f0c4-6a3b-7c3d-8e4f-0123456789ab").is_ok());
        for bad in ["", "a b", "ключ", &"k".repeat(MAX_KEY_LEN + 1)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad}");
        }
        assert!(KeyPrefix::parse("").is_ok());
        assert!(KeyPrefix::parse("a b").is_err());
        let prefix = KeyPrefix::parse("order-1").unwrap();
        let bound = prefix.upper_bound();
        for key in ["order-1", "order-1~", "order-10", "order-1/x"] {
            assert!(prefix.as_str() <= key && key < bound.as_str(), "{key}");
        }
        for key in ["order-", "order-2", "order-0~", "order_1"] {
            assert!(!(prefix.as_str() <= key && key < bound.as_str()), "{key}");
        }
    }

    #[test]
    fn only_succeeded_charges_can_be_refunded_and_refunds_repeat() {
        assert_eq!(ChargeState::Succeeded.refund(), Ok(ChargeState::Refunded));
        assert_eq!(ChargeState::Refunded.refund(), Ok(ChargeState::Refunded));
        assert_eq!(
            ChargeState::Declined(DeclineCode::CardDeclined).refund(),
            Err(NothingToRefund(DeclineCode::CardDeclined))
        );
    }

    #[test]
    fn states_read_back_as_stored() {
        for state in [
            ChargeState::Succeeded,
            ChargeState::Refunded,
            ChargeState::Declined(DeclineCode::ExpiredCard),
        ] {
            let code = state.decline_code().map(DeclineCode::as_str);
            assert_eq!(ChargeState::parse(state.as_str(), code), Some(state));
        }
        assert_eq!(ChargeState::parse("declined", None), None);
        assert_eq!(ChargeState::parse("succeeded", Some("card_declined")), None);
        assert_eq!(ChargeState::parse("pending", None), None);
    }

    #[test]
    fn descriptions_are_bounded() {
        assert_eq!(
            Description::parse("  Order 42 ").unwrap().as_str(),
            "Order 42"
        );
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"d".repeat(501)).is_err());
        assert!(Description::parse("a\u{1b}[31m").is_err());
    }
}
