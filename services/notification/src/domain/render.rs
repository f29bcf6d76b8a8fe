//! The texts of the e-mails: plain text, one subject line and a body with
//! `\n` line ends (the mailers turn them into CRLF).
//!
//! - Order confirmation — subject `Your Emporium order <short id> is
//!   confirmed`; the body lists every line (quantity, name, SKU, unit price,
//!   line total), the items total, shipping and total in the order's
//!   currency, and the shipping address.
//! - Order shipped — subject `Your Emporium order <short id> has shipped`;
//!   the body names the order, the tracking id and the carrier if known.
//!
//! `<short id>` is [`OrderId::short`](super::OrderId::short). Every piece
//! of text put in is a one-line [`Text`](super::Text), so nothing an event
//! carries can add a line or a header.

use std::fmt::Write as _;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Email, MessageId, MessageKind, NewMessage, OrderContact, PlacedOrder, Shipped};

/// A subject and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// The confirmation of `order`.
pub fn order_confirmation(order: &PlacedOrder) -> Rendered {
    let subject = format!(
        "Your Emporium order {} is confirmed",
        order.order_id.short()
    );
    let mut body = String::new();
    // Writing to a String cannot fail; `let _` keeps that visible.
    let _ = writeln!(body, "Hello {},", order.address.name);
    body.push('\n');
    body.push_str("thank you for your order. We have received your payment and the order is\n");
    body.push_str("confirmed; we will write again when it ships.\n\n");
    let _ = writeln!(body, "Order {}", order.order_id);
    body.push('\n');

    let rows: Vec<[String; 4]> = order
        .lines
        .iter()
        .map(|l| {
            [
                format!("{} x", l.quantity()),
                format!("{} ({})", l.name(), l.sku()),
                format!("{} each", l.unit_price()),
                l.total().to_string(),
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (qty_w, desc_w, unit_w) = (width(0), width(1), width(2));
    let totals = [
        ("Items", order.totals.items.to_string()),
        ("Shipping", order.totals.shipping.to_string()),
        ("Total", order.totals.total.to_string()),
    ];
    let amount_w = rows
        .iter()
        .map(|r| r[3].chars().count())
        .chain(totals.iter().map(|(_, a)| a.chars().count()))
        .max()
        .unwrap_or(0);
    for [qty, desc, unit, total] in &rows {
        let _ = writeln!(
            body,
            "  {qty:>qty_w$}  {desc:<desc_w$}  {unit:>unit_w$}  {total:>amount_w$}"
        );
    }
    body.push('\n');
    // The totals' amounts end in the same column as the line totals.
    let label_w = 2 + qty_w + 2 + desc_w + 2 + unit_w;
    for (label, amount) in &totals {
        let label = format!("{label}:");
        let _ = writeln!(body, "{label:>label_w$}  {amount:>amount_w$}");
    }
    body.push('\n');

    let a = &order.address;
    body.push_str("Shipping to:\n");
    let _ = writeln!(body, "  {}", a.name);
    let _ = writeln!(body, "  {}", a.line1);
    if !a.line2.is_empty() {
        let _ = writeln!(body, "  {}", a.line2);
    }
    let _ = writeln!(body, "  {} {}", a.postal_code, a.city);
    let _ = writeln!(body, "  {}", a.country_code);
    body.push_str("\nEmporium\n");
    Rendered { subject, body }
}

/// The shipment e-mail for `shipped`, to the order's `contact`.
pub fn order_shipped(shipped: &Shipped, contact: &OrderContact) -> Rendered {
    let subject = format!(
        "Your Emporium order {} has shipped",
        shipped.order_id.short()
    );
    let mut body = String::new();
    let _ = writeln!(body, "Hello {},", contact.name);
    body.push('\n');
    body.push_str("good news: your order is on its way.\n\n");
    let _ = writeln!(body, "Order:            {}", shipped.order_id);
    let _ = writeln!(body, "Tracking number:  {}", shipped.tracking_id);
    if let Some(carrier) = &shipped.carrier {
        let _ = writeln!(body, "Carrier:          {carrier}");
    }
    body.push_str("\nEmporium\n");
    Rendered { subject, body }
}

/// The confirmation message for `order`, answering event `event_id`.
pub fn confirmation_message(
    event_id: Uuid,
    to: Email,
    order: &PlacedOrder,
    created_at: OffsetDateTime,
) -> NewMessage {
    let Rendered { subject, body } = order_confirmation(order);
    NewMessage {
        id: MessageId::generate(),
        event_id,
        kind: MessageKind::OrderConfirmation,
        to,
        subject,
        body,
        created_at,
    }
}

/// The shipment message for `shipped`, answering event `event_id`.
pub fn shipped_message(
    event_id: Uuid,
    to: Email,
    shipped: &Shipped,
    contact: &OrderContact,
    created_at: OffsetDateTime,
) -> NewMessage {
    let Rendered { subject, body } = order_shipped(shipped, contact);
    NewMessage {
        id: MessageId::generate(),
        event_id,
        kind: MessageKind::OrderShipped,
        to,
        subject,
        body,
        created_at,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::domain::order::Totals;
    use crate::domain::{Address, Currency, Line, Money, OrderId};

    fn order(
        code: &str,
        lines: &[(&str, &str, u32, i64)],
        shipping: i64,
        line2: &str,
    ) -> PlacedOrder {
        let currency = Currency::parse(code).unwrap();
        let money = |minor| Money::new(minor, currency);
        let lines: Vec<Line> = lines
            .iter()
            .map(|(name, sku, qty, price)| Line::new(name, sku, *qty, money(*price)).unwrap())
            .collect();
        let items: i64 = lines.iter().map(|l| l.total().minor).sum();
        PlacedOrder::new(
            OrderId::parse("0193a6f4-0b00-7a11-9c22-334455667788").unwrap(),
            "user-1",
            lines,
            Totals {
                items: money(items),
                shipping: money(shipping),
                total: money(items + shipping),
            },
            Address::new(
                "Ada Lovelace",
                "12 St James's Square",
                line2,
                "London",
                "SW1Y 4JH",
                "GB",
            )
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn confirmation_lists_lines_totals_and_address() {
        let order = order(
            "EUR",
            &[
                ("Desk lamp", "LAMP-001", 2, 1999),
                ("Notebook", "BOOK-7", 1, 450),
            ],
            500,
            "Flat 3",
        );
        let r = order_confirmation(&order);
        assert_eq!(r.subject, "Your Emporium order 55667788 is confirmed");
        let expected = "\
Hello Ada Lovelace,

thank you for your order. We have received your payment and the order is
confirmed; we will write again when it ships.

Order 0193a6f4-0b00-7a11-9c22-334455667788

  2 x  Desk lamp (LAMP-001)  EUR 19.99 each  EUR 39.98
  1 x  Notebook (BOOK-7)      EUR 4.50 each   EUR 4.50

                                     Items:  EUR 44.48
                                  Shipping:   EUR 5.00
                                     Total:  EUR 49.48

Shipping to:
  Ada Lovelace
  12 St James's Square
  Flat 3
  SW1Y 4JH London
  GB

Emporium
";
        assert_eq!(r.body, expected, "\n{}", r.body);
    }

    #[test]
    fn yen_amounts_have_no_decimals_and_an_empty_second_line_is_left_out() {
        let order = order("JPY", &[("Tea", "TEA-1", 3, 1500)], 0, "");
        let r = order_confirmation(&order);
        assert!(r.body.contains("JPY 1,500 each"), "{}", r.body);
        assert!(r.body.contains("Total:  JPY 4,500"), "{}", r.body);
        assert!(r.body.contains("Shipping:      JPY 0"), "{}", r.body);
        assert!(
            r.body
                .contains("  12 St James's Square\n  SW1Y 4JH London\n"),
            "{}",
            r.body
        );
    }

    #[test]
    fn shipment_mail_names_the_tracking_id_and_carrier() {
        let order = order("EUR", &[("Tea", "TEA-1", 1, 100)], 0, "");
        let contact = OrderContact::of(&order, Some(Email::parse("ada@example.com").unwrap()));
        let with_carrier =
            Shipped::new(order.order_id.clone(), "EMP0123456789AB", Some("DHL")).unwrap();
        let r = order_shipped(&with_carrier, &contact);
        assert_eq!(r.subject, "Your Emporium order 55667788 has shipped");
        assert!(r.body.starts_with("Hello Ada Lovelace,\n"), "{}", r.body);
        assert!(
            r.body.contains("Tracking number:  EMP0123456789AB\n"),
            "{}",
            r.body
        );
        assert!(r.body.contains("Carrier:          DHL\n"), "{}", r.body);
        let without = Shipped::new(order.order_id.clone(), "EMP0123456789AB", None).unwrap();
        assert!(!order_shipped(&without, &contact).body.contains("Carrier"));
    }

    #[test]
    fn messages_carry_the_event_kind_and_recipient() {
        let order = order("EUR", &[("Tea", "TEA-1", 1, 100)], 0, "");
        let to = Email::parse("ada@example.com").unwrap();
        let event = Uuid::now_v7();
        let now = crate::domain::now();
        let m = confirmation_message(event, to.clone(), &order, now);
        assert_eq!(
            (m.event_id, m.kind, &m.to, m.created_at),
            (event, MessageKind::OrderConfirmation, &to, now)
        );
        assert_eq!(m.subject, order_confirmation(&order).subject);
        let other = confirmation_message(event, to, &order, now);
        assert_ne!(m.id, other.id, "every message gets its own id");
    }
}
