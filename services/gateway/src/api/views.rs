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

fn rfc3339(t: Option<&prost_types::Timestamp>) -> String {
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
