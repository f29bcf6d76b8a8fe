//! The public REST types. They are the gateway's own: protobuf types are
//! mapped here and never serialized to clients directly.

use emporium_api::catalog::v1 as pb;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// An amount of money in the minor unit of its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// ISO 4217 code, e.g. `USD`.
    #[schema(example = "USD")]
    pub currency: String,
    /// Integer amount in minor units (cents for USD): 1299 is 12.99.
    #[schema(example = 1299)]
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Product {
    /// Opaque product id (a UUID).
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    /// The price in the currency asked for with `?currency=` (rounded
    /// half-to-even to its minor unit); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_price: Option<Money>,
    /// Category slugs.
    pub categories: Vec<String>,
    /// Path (or absolute URL) of the product image.
    pub image_url: String,
    /// RFC 3339 timestamp.
    pub created_at: String,
    /// RFC 3339 timestamp.
    pub updated_at: String,
}

/// One page of products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Category {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub product_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<Category>,
}

/// An RFC 9457 problem document; every error response is one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// Stable URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "https://emporium.example/problems/not-found")]
    pub type_: String,
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: Option<String>,
}

pub(crate) fn rfc3339(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| {
        let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()?
            .format(&Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

impl From<pb::Product> for Product {
    fn from(p: pb::Product) -> Self {
        let price = p.price.unwrap_or_default();
        Self {
            created_at: rfc3339(p.create_time.as_ref()),
            updated_at: rfc3339(p.update_time.as_ref()),
            id: p.id,
            sku: p.sku,
            name: p.name,
            description: p.description,
            price: Money {
                currency: price.currency_code,
                amount_minor: price.minor_units,
            },
            display_price: None,
            categories: p.categories,
            image_url: p.image_path,
        }
    }
}

impl From<pb::ListProductsResponse> for ProductPage {
    fn from(r: pb::ListProductsResponse) -> Self {
        Self {
            items: r.products.into_iter().map(Product::from).collect(),
            next_cursor: Some(r.next_page_token).filter(|t| !t.is_empty()),
        }
    }
}

impl From<pb::Category> for Category {
    fn from(c: pb::Category) -> Self {
        Self {
            slug: c.slug,
            name: c.name,
            description: c.description,
            product_count: c.product_count,
        }
    }
}

// ---- accounts ----

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `customer` or `admin`.
    pub role: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Token {
    /// A JWT (EdDSA); send it as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: u32,
    pub user: User,
}

impl From<emporium_api::accounts::v1::User> for User {
    fn from(u: emporium_api::accounts::v1::User) -> Self {
        let role = match emporium_api::accounts::v1::Role::try_from(u.role) {
            Ok(emporium_api::accounts::v1::Role::Admin) => "admin",
            _ => "customer",
        };
        Self {
            id: u.id,
            email: u.email,
            name: u.name,
            role: role.into(),
            created_at: rfc3339(u.create_time.as_ref()),
        }
    }
}

// ---- cart ----

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    pub product_id: String,
    /// 1 to 99 (a line holds at most 99).
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: u32,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// 0 removes the line.
    #[schema(minimum = 0, maximum = 99)]
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CartLine {
    pub product_id: String,
    pub name: String,
    pub quantity: u32,
    /// Price when the line was last changed; checkout prices again.
    pub unit_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cart {
    pub items: Vec<CartLine>,
    /// Number of units in the cart.
    pub item_count: u32,
}

impl From<emporium_api::cart::v1::Cart> for Cart {
    fn from(c: emporium_api::cart::v1::Cart) -> Self {
        let items: Vec<CartLine> = c
            .items
            .into_iter()
            .map(|i| {
                let price = i.unit_price.unwrap_or_default();
                CartLine {
                    product_id: i.product_id,
                    name: i.name,
                    quantity: i.quantity,
                    unit_price: Money {
                        currency: price.currency_code,
                        amount_minor: price.minor_units,
                    },
                }
            })
            .collect();
        let item_count = items.iter().map(|i| i.quantity).sum();
        Self { items, item_count }
    }
}

// ---- currencies ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Currency {
    pub code: String,
    pub name: String,
    pub minor_unit_digits: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrencyList {
    pub items: Vec<Currency>,
    /// The date of the exchange rates in use.
    pub rates_date: String,
}

// ---- checkout and orders ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country_code: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardIn {
    #[schema(example = "4242424242424242")]
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// ISO 4217 code to pay in, e.g. `EUR`.
    pub currency: String,
    pub shipping_address: Address,
    pub card: CardIn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Order {
    pub id: String,
    /// `pending`, `placed` or `failed`.
    pub status: String,
    pub items: Vec<OrderLine>,
    pub items_total: Money,
    pub shipping_cost: Money,
    pub total: Money,
    pub shipping_address: Address,
    /// Why the order failed, when it did.
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    pub next_cursor: Option<String>,
}

fn money(m: Option<emporium_api::types::v1::Money>) -> Money {
    let m = m.unwrap_or_default();
    Money {
        currency: m.currency_code,
        amount_minor: m.minor_units,
    }
}

impl From<emporium_api::checkout::v1::Order> for Order {
    fn from(o: emporium_api::checkout::v1::Order) -> Self {
        use emporium_api::checkout::v1::OrderStatus;
        let status = match OrderStatus::try_from(o.status) {
            Ok(OrderStatus::Placed) => "placed",
            Ok(OrderStatus::Failed) => "failed",
            _ => "pending",
        };
        let a = o.shipping_address.unwrap_or_default();
        Self {
            id: o.id,
            status: status.into(),
            items: o
                .items
                .into_iter()
                .map(|i| OrderLine {
                    product_id: i.product_id,
                    sku: i.sku,
                    name: i.name,
                    quantity: i.quantity,
                    unit_price: money(i.unit_price),
                })
                .collect(),
            items_total: money(o.items_total),
            shipping_cost: money(o.shipping_cost),
            total: money(o.total),
            shipping_address: Address {
                name: a.name,
                line1: a.line1,
                line2: a.line2,
                city: a.city,
                postal_code: a.postal_code,
                country_code: a.country_code,
            },
            failure_reason: Some(o.failure_reason).filter(|r| !r.is_empty()),
            created_at: rfc3339(o.create_time.as_ref()),
            updated_at: rfc3339(o.update_time.as_ref()),
        }
    }
}

// ---- admin product writes ----

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub price: Money,
    pub categories: Vec<String>,
    pub image_url: String,
}

/// Fields left out keep their value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<Money>,
    pub categories: Option<Vec<String>>,
    pub image_url: Option<String>,
}
