//! Injected failures, for resilience demos: `faults.error_rate` makes that
//! share of calls fail with `UNAVAILABLE`.
//!
//! The check runs first thing in every API call, before the request is even
//! read, so a failed call has stored nothing and a retry is always safe.
//! The draw uses the random bits of a fresh UUIDv4 (no extra RNG crate);
//! that is uniform enough for a demo knob, not for cryptography.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A probability from 0.0 (never, the default) to 1.0 (always). Written as
/// a number or a string (`0.25`, `"0.25"`, `1`), since environment
/// variables arrive as strings.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct ErrorRate(f64);

impl ErrorRate {
    pub fn new(rate: f64) -> Result<Self, String> {
        if rate.is_finite() && (0.0..=1.0).contains(&rate) {
            Ok(Self(rate))
        } else {
            Err(format!("{rate} is not a rate from 0.0 to 1.0"))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// Whether this call fails: true with probability `rate`.
    pub fn strikes(self) -> bool {
        if self.0 <= 0.0 {
            return false;
        }
        let bytes = uuid::Uuid::new_v4().into_bytes();
        // Bytes 0–5 of a v4 UUID are all random: 48 bits, uniform in [0, 1).
        let draw = bytes[..6]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        (draw as f64) / ((1u64 << 48) as f64) < self.0
    }
}

impl fmt::Display for ErrorRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for ErrorRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for ErrorRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RateVisitor;

        impl Visitor<'_> for RateVisitor {
            type Value = ErrorRate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate from 0.0 to 1.0, like 0.25")
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ErrorRate, E> {
                ErrorRate::new(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ErrorRate, E> {
                match v {
                    0 => Ok(ErrorRate(0.0)),
                    1 => Ok(ErrorRate(1.0)),
                    _ => Err(E::custom(format!("{v} is not a rate from 0.0 to 1.0"))),
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ErrorRate, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ErrorRate, E> {
                let rate: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| E::custom(format!("`{v}` is not a rate like 0.25")))?;
                ErrorRate::new(rate).map_err(E::custom)
            }
        }

        d.deserialize_any(RateVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        assert!(ErrorRate::new(0.0).is_ok() && ErrorRate::new(1.0).is_ok());
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(ErrorRate::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_never_strikes_one_always_does_and_a_half_is_about_half() {
        let never = ErrorRate::new(0.0).unwrap();
        let always = ErrorRate::new(1.0).unwrap();
        assert!((0..1000).all(|_| !never.strikes()));
        assert!((0..1000).all(|_| always.strikes()));
        let half = ErrorRate::new(0.5).unwrap();
        let hits = (0..10_000).filter(|_| half.strikes()).count();
        // Binomial(10 000, 0.5): ±1000 is more than 20 standard deviations.
        assert!((4_000..=6_000).contains(&hits), "{hits}");
    }
}
