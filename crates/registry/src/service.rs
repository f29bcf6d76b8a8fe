//! [`ServiceName`]: the one part of a key that callers choose.

use crate::Error;

/// A service name: 1 to 63 characters of `a-z`, `0-9` and `-` (a DNS label,
/// lower case), so it never contains the `/` that separates key parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceName(String);

impl ServiceName {
    pub(crate) fn parse(name: &str) -> Result<Self, Error> {
        let valid = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::BadServiceName {
                name: name.to_owned(),
            })
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_in_lower_case() {
        for good in ["orders", "a", "catalog-v2", "0", &"x".repeat(63)] {
            assert!(ServiceName::parse(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "Orders",
            "a/b",
            "a.b",
            "a_b",
            " a",
            "ü",
            &"x".repeat(64),
        ] {
            assert!(
                matches!(ServiceName::parse(bad), Err(Error::BadServiceName { .. })),
                "{bad:?}"
            );
        }
    }
}
