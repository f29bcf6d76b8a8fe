//! Postal addresses, and the shipping zone a country is in.
//!
//! Zones (the price list in [`super::parcel`] has one rate per zone):
//!
//! | zone | destinations |
//! |---|---|
//! | 1 | United States (`US`) |
//! | 2 | Canada and Mexico (`CA`, `MX`) |
//! | 3 | the 27 EU member states, the United Kingdom, Switzerland, Norway |
//! | 4 | everywhere else |

use std::fmt;

use super::Invalid;

/// An ISO 3166-1 alpha-2 country code: two uppercase ASCII letters. Whether
/// the code is assigned is not checked; an unassigned one ships in zone 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        match <[u8; 2]>::try_from(value.as_bytes()) {
            Ok(code) if code.iter().all(u8::is_ascii_uppercase) => Ok(Self(code)),
            _ => Err(Invalid::new(
                "country_code",
                format!(
                    "`{}` is not an ISO 3166-1 alpha-2 code like DE (two uppercase letters)",
                    value.escape_debug()
                ),
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed from ASCII uppercase letters only.
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }

    /// The shipping zone this country is in.
    pub fn zone(&self) -> Zone {
        const ZONE_3: [&str; 30] = [
            // EU member states
            "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
            "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
            // and
            "GB", "CH", "NO",
        ];
        match self.as_str() {
            "US" => Zone::One,
            "CA" | "MX" => Zone::Two,
            code if ZONE_3.contains(&code) => Zone::Three,
            _ => Zone::Four,
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shipping zone: how far a parcel travels, which decides its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Zone {
    One,
    Two,
    Three,
    Four,
}

impl Zone {
    pub fn number(self) -> u32 {
        match self {
            Self::One => 1,
            Self::Two => 2,
            Self::Three => 3,
            Self::Four => 4,
        }
    }
}

/// A postal address. Text fields are trimmed, free of control characters
/// and bounded; `line2` may be empty, the others may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    name: String,
    line1: String,
    line2: String,
    city: String,
    postal_code: String,
    country: CountryCode,
}

/// Longest accepted value of each address field, in characters.
pub const MAX_NAME: usize = 100;
pub const MAX_LINE: usize = 200;
pub const MAX_CITY: usize = 100;
pub const MAX_POSTAL_CODE: usize = 20;

fn text(field: &str, value: &str, required: bool, max: usize) -> Result<String, Invalid> {
    let value = value.trim();
    let len = value.chars().count();
    if required && len == 0 {
        return Err(Invalid::new(field, "is required"));
    }
    if len > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters (got {len})"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

impl Address {
    /// Checks every field; errors name the field (`line1`, `country_code`, …).
    pub fn new(
        name: &str,
        line1: &str,
        line2: &str,
        city: &str,
        postal_code: &str,
        country_code: &str,
    ) -> Result<Self, Invalid> {
        Ok(Self {
            name: text("name", name, true, MAX_NAME)?,
            line1: text("line1", line1, true, MAX_LINE)?,
            line2: text("line2", line2, false, MAX_LINE)?,
            city: text("city", city, true, MAX_CITY)?,
            postal_code: text("postal_code", postal_code, true, MAX_POSTAL_CODE)?,
            country: CountryCode::parse(country_code)?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn line1(&self) -> &str {
        &self.line1
    }
    pub fn line2(&self) -> &str {
        &self.line2
    }
    pub fn city(&self) -> &str {
        &self.city
    }
    pub fn postal_code(&self) -> &str {
        &self.postal_code
    }
    pub fn country(&self) -> CountryCode {
        self.country
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(code: &str) -> u32 {
        CountryCode::parse(code).unwrap().zone().number()
    }

    #[test]
    fn countries_fall_into_the_documented_zones() {
        assert_eq!(zone("US"), 1);
        assert_eq!((zone("CA"), zone("MX")), (2, 2));
        for code in ["DE", "FR", "IE", "SE", "GB", "CH", "NO", "PL", "MT", "CY"] {
            assert_eq!(zone(code), 3, "{code}");
        }
        for code in ["JP", "AU", "BR", "IS", "TR", "ZZ"] {
            assert_eq!(zone(code), 4, "{code}");
        }
    }

    #[test]
    fn country_codes_are_two_uppercase_letters() {
        for bad in ["", "D", "de", "DEU", "D1", "Ü"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_need_their_lines_and_bound_them() {
        let ok = Address::new(" Ada ", "1 Main St", "", "Springfield", "12345", "US").unwrap();
        assert_eq!(ok.name(), "Ada");
        assert_eq!(ok.line2(), "");
        let cases = [
            (Address::new("", "l", "", "c", "p", "US"), "name"),
            (Address::new("n", "  ", "", "c", "p", "US"), "line1"),
            (Address::new("n", "l", "", "", "p", "US"), "city"),
            (Address::new("n", "l", "", "c", "", "US"), "postal_code"),
            (Address::new("n", "l", "", "c", "p", "us"), "country_code"),
            (
                Address::new("n", "l", &"x".repeat(201), "c", "p", "US"),
                "line2",
            ),
            (
                Address::new("n", "l", "", "c", &"1".repeat(21), "US"),
                "postal_code",
            ),
            (Address::new("n\u{0}", "l", "", "c", "p", "US"), "name"),
        ];
        for (result, field) in cases {
            assert_eq!(result.unwrap_err().field, field);
        }
    }
}
