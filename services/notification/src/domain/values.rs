//! Small values that arrive in events: e-mail addresses, order ids, and the
//! one-line texts (names, address lines) that go into e-mails.

use std::fmt;

use super::Invalid;

/// Longest e-mail address (RFC 5321's path limit minus the brackets).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest local part (before the `@`), per RFC 5321.
pub const MAX_LOCAL_LEN: usize = 64;
/// Longest order id.
pub const MAX_ORDER_ID_LEN: usize = 128;
/// How many characters of an order id make its short form.
pub const SHORT_ID_LEN: usize = 8;

/// A mailbox address such as `ada@example.com`: a dot-atom local part
/// (letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots between them) and a
/// domain of one or more dot-separated labels of letters, digits and inner
/// hyphens. Quoted local parts and address literals are not accepted: no
/// shop customer has one, and every mail server accepts what is left.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let invalid = |reason: &str| Invalid::new("email", reason.to_owned());
        let value = value.trim();
        if value.is_empty() {
            return Err(invalid("is empty"));
        }
        if value.len() > MAX_EMAIL_LEN {
            return Err(invalid("is longer than 254 characters"));
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err(invalid("has no `@`"));
        };
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let local_ok = !local.is_empty()
            && local.len() <= MAX_LOCAL_LEN
            && local
                .split('.')
                .all(|part| !part.is_empty() && part.chars().all(atext));
        if !local_ok {
            return Err(invalid(
                "the part before `@` must be 1 to 64 letters, digits or !#$%&'*+/=?^_`{|}~- with single dots between them",
            ));
        }
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !domain.split('.').all(label_ok) {
            return Err(invalid(
                "the domain must be dot-separated labels of letters, digits and inner hyphens",
            ));
        }
        Ok(Self(value.to_owned()))
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

/// An order id as checkout issued it (a UUID today; any 1 to 128 visible
/// characters are accepted, so the service does not break if that changes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let ok = !value.is_empty()
            && value.chars().count() <= MAX_ORDER_ID_LEN
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "order_id",
                "must be 1 to 128 characters without spaces or control characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form people read in a subject line: the last
    /// [`SHORT_ID_LEN`] letters and digits of the id (the whole id when it
    /// is shorter). The *last* ones because order ids are UUIDv7, whose
    /// leading digits are a timestamp shared by every order of the same
    /// minute; the trailing ones are random.
    pub fn short(&self) -> String {
        let alnum: Vec<char> = self.0.chars().filter(char::is_ascii_alphanumeric).collect();
        if alnum.len() < SHORT_ID_LEN {
            return self.0.clone();
        }
        alnum[alnum.len() - SHORT_ID_LEN..].iter().collect()
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A one-line text for an e-mail (a name, an address line, a SKU): trimmed,
/// at most `max` characters, no control characters (so it can never break
/// a line or a header).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// A required text: empty (after trimming) is refused.
    pub fn required(field: &str, value: &str, max: usize) -> Result<Self, Invalid> {
        let text = Self::optional(field, value, max)?;
        if text.is_empty() {
            return Err(Invalid::new(field, "is empty"));
        }
        Ok(text)
    }

    /// A text that may be empty (e.g. a second address line).
    pub fn optional(field: &str, value: &str, max: usize) -> Result<Self, Invalid> {
        let value = value.trim();
        if value.chars().any(char::is_control) {
            return Err(Invalid::new(field, "contains control characters"));
        }
        if value.chars().count() > max {
            return Err(Invalid::new(
                field,
                format!("is longer than {max} characters"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted_and_trimmed() {
        for good in [
            "ada@example.com",
            "a.b+tag@mail.example.co.uk",
            "x_y-z!#$%&'*/=?^`{|}~@localhost",
            "1@a-b.c",
        ] {
            assert_eq!(Email::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(
            Email::parse("  ada@example.com\n").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn broken_addresses_are_refused() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b.".repeat(130));
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@@example.com",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a b@example.com",
            "ada@exa mple.com",
            "ada@-example.com",
            "ada@example-.com",
            "ada@example..com",
            "\"quoted\"@example.com",
            "ada@[127.0.0.1]",
            "ada@example.com\r\nBcc: eve@example.com",
            "ädä@example.com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_order_ids_are_the_random_tail_of_the_id() {
        let id = OrderId::parse("0193a6f4-0b00-7a11-9c22-334455667788").unwrap();
        assert_eq!(id.short(), "55667788");
        assert_eq!(OrderId::parse("order-1").unwrap().short(), "order-1");
        assert_eq!(OrderId::parse("o-12345678").unwrap().short(), "12345678");
    }

    #[test]
    fn order_ids_are_visible_and_bounded() {
        assert!(OrderId::parse("").is_err());
        assert!(OrderId::parse("has space").is_err());
        assert!(OrderId::parse("tab\tid").is_err());
        assert!(OrderId::parse(&"x".repeat(129)).is_err());
        assert!(OrderId::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn texts_are_single_lines_within_bounds() {
        assert_eq!(
            Text::required("name", "  Ada  ", 10).unwrap().as_str(),
            "Ada"
        );
        assert!(Text::required("name", "   ", 10).is_err());
        assert!(Text::optional("line2", "", 10).unwrap().is_empty());
        let err = Text::required("name", "Ada\nBcc: x", 100).unwrap_err();
        assert_eq!(err.field, "name");
        assert!(Text::required("name", "Ünïcødé", 7).is_ok());
        assert!(Text::required("name", "Ünïcødé!", 7).is_err());
    }
}
