//! Value types of the accounts service. Each has one constructor that checks its rule.

use std::fmt;

use super::Invalid;

/// A user id: a UUID (version 7, so ids sort by sign-up time), written in
/// its canonical lowercase hyphenated form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(uuid::Uuid);

impl UserId {
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
                    "`{}` is not a user id (a lowercase UUID)",
                    value.escape_debug()
                ),
            )),
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// An email address, lowercased, so uniqueness is case-insensitive: exactly
/// one `@` with something on both sides, 3 to 254 characters, no whitespace
/// or control characters. Surrounding whitespace is trimmed first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim().to_lowercase();
        let len = value.chars().count();
        let reason = if !(3..=Self::MAX_LEN).contains(&len) {
            Some(format!("must be 3 to {} characters", Self::MAX_LEN))
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("must not contain spaces".to_owned())
        } else {
            match value.split_once('@') {
                Some((local, domain))
                    if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
                {
                    None
                }
                _ => Some("must look like name@example.com (exactly one @)".to_owned()),
            }
        };
        match reason {
            None => Ok(Self(value)),
            Some(reason) => Err(Invalid::new("email", reason)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's display name: 1 to 100 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim();
        let len = value.chars().count();
        if !(1..=Self::MAX_LEN).contains(&len) {
            return Err(Invalid::new(
                "name",
                format!("must be 1 to {} characters (got {len})", Self::MAX_LEN),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Invalid::new("name", "must not contain control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as the user typed it: 8 to 128 characters, taken as is (no
/// trimming: spaces are part of a passphrase). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let len = value.chars().count();
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "password",
                format!("must be {} to {} characters", Self::MIN_LEN, Self::MAX_LEN),
            ))
        }
    }

    /// The password itself; for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A password hash in PHC string form (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored or freshly computed PHC string.
    pub fn new(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert!(Email::parse("a@b").is_ok());
        let long_ok = format!("{}@example.com", "a".repeat(254 - 12));
        assert!(Email::parse(&long_ok).is_ok());
        for bad in [
            "",
            "ab",
            "no-at.example.com",
            "two@@example.com",
            "a@b@c",
            "@example.com",
            "ada@",
            "ada lovelace@example.com",
            "ada@exa\tmple.com",
            &format!("{}@example.com", "a".repeat(254 - 11)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"p".repeat(128)).is_ok());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        let p = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        assert_eq!(p.expose(), "correct horse battery");
        let h = PasswordHash::new("$argon2id$secret");
        assert!(!format!("{h:?}").contains("secret"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(100)).is_ok());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
        assert!(UserName::parse("bell\u{7}").is_err());
    }

    #[test]
    fn user_ids_are_canonical_uuids() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string()).unwrap(), id);
        for bad in ["", "42", "0192F0C4-6A3B-7C3D-8E4F-0123456789AB"] {
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
    }
}
