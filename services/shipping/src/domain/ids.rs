//! Identifiers: shipments (ours), orders (checkout's) and tracking numbers
//! (what a customer types into a carrier's site).

use std::fmt;

use super::Invalid;

/// A shipment id: a UUID (version 7, so ids sort by creation time), written
/// in its canonical lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShipmentId(uuid::Uuid);

impl ShipmentId {
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
                "id",
                format!(
                    "`{}` is not a shipment id (a lowercase UUID)",
                    value.escape_debug()
                ),
            )),
        }
    }
}

impl fmt::Display for ShipmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// The order a shipment belongs to, as checkout names it: 1 to 64 of
/// `A-Z a-z 0-9 . _ : -` (checkout uses UUIDs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "order_id",
                format!(
                    "`{}` is not an order id (1 to 64 of A-Z, a-z, 0-9, '.', '_', ':', '-')",
                    value.escape_debug()
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tracking number: `EMP` and 12 characters of `0-9 A-Z`, chosen at
/// random (about 62 bits), so numbers cannot be guessed from one another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackingId(String);

const TRACKING_PREFIX: &str = "EMP";
const TRACKING_RANDOM_CHARS: usize = 12;
const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl TrackingId {
    pub fn generate() -> Self {
        let mut id = String::with_capacity(TRACKING_PREFIX.len() + TRACKING_RANDOM_CHARS);
        id.push_str(TRACKING_PREFIX);
        let mut bytes = random_bytes();
        while id.len() < TRACKING_PREFIX.len() + TRACKING_RANDOM_CHARS {
            let byte = bytes.next().unwrap_or(0);
            // 252 = 7 × 36: rejecting the top 4 values keeps every character
            // equally likely.
            if byte < 252 {
                id.push(char::from(ALPHABET[usize::from(byte % 36)]));
            }
        }
        Self(id)
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = value.len() == TRACKING_PREFIX.len() + TRACKING_RANDOM_CHARS
            && value.starts_with(TRACKING_PREFIX)
            && value[TRACKING_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "tracking_id",
                format!("`{}` is not a tracking id", value.escape_debug()),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An endless supply of random bytes: the 14 fully random bytes of each
/// fresh version-4 UUID (the version and variant bytes are skipped).
fn random_bytes() -> impl Iterator<Item = u8> {
    std::iter::repeat_with(|| uuid::Uuid::new_v4().into_bytes()).flat_map(|b| {
        [
            b[0], b[1], b[2], b[3], b[4], b[5], b[7], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15],
        ]
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tracking_ids_have_the_documented_shape_and_differ() {
        let ids: HashSet<String> = (0..1000)
            .map(|_| TrackingId::generate().to_string())
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(TrackingId::parse(id).unwrap().as_str(), id);
        }
        let all: String = ids.iter().map(|id| &id[3..]).collect();
        for c in ALPHABET {
            assert!(
                all.contains(char::from(*c)),
                "{} never drawn",
                char::from(*c)
            );
        }
        for bad in [
            "",
            "EMP",
            "EMP12345678901",
            "XYZ123456789012",
            "EMP12345678901a",
        ] {
            assert!(TrackingId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_and_shipment_ids_are_checked() {
        assert!(OrderId::parse("0192f0c4-6a3b-7c3d-8e4f-0123456789ab").is_ok());
        assert!(OrderId::parse("order:42").is_ok());
        for bad in ["", "a b", "ä", &"x".repeat(65)] {
            assert!(OrderId::parse(bad).is_err(), "{bad}");
        }
        let id = ShipmentId::generate();
        assert_eq!(ShipmentId::parse(&id.to_string()).unwrap(), id);
        assert!(ShipmentId::parse("0192F0C4-6A3B-7C3D-8E4F-0123456789AB").is_err());
    }
}
