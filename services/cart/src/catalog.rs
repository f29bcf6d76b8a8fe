//! Asking the catalog about a product before it goes into a cart.
//!
//! Every call carries the configured deadline, the caller's trace context and
//! identity ([`emporium_chassis::grpc::Client`]). The catalog's answer is
//! mapped to the cart's terms: no such product is the caller's mistake
//! (`INVALID_ARGUMENT`); a catalog that cannot be reached is `UNAVAILABLE`.

use emporium_api::catalog::v1 as pb;
use emporium_api::catalog::v1::catalog_service_client::CatalogServiceClient;
use emporium_chassis::Metrics;
use emporium_chassis::config::ConfigError;
use emporium_chassis::grpc::{CallContext, CallError, Channel, Client, Upstream};

use crate::domain::{Currency, Money, ProductId, ProductName};
use crate::error::CartError;

/// What the cart keeps of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    pub name: ProductName,
    pub unit_price: Money,
}

/// A catalog client; cheap to clone (one lazily connected channel).
#[derive(Debug, Clone)]
pub struct Catalog {
    client: Client<CatalogServiceClient<Channel>>,
}

impl Catalog {
    pub fn new(upstream: &Upstream, metrics: &Metrics) -> Result<Self, ConfigError> {
        Ok(Self {
            client: Client::new("cart.catalog", upstream, metrics, CatalogServiceClient::new)?,
        })
    }

    /// The product's current name and price.
    pub async fn product(
        &self,
        ctx: &CallContext,
        id: ProductId,
    ) -> Result<ProductInfo, CartError> {
        let request = pb::GetProductRequest { id: id.to_string() };
        let answer = self
            .client
            .call_idempotent(
                ctx,
                request,
                |mut c, r| async move { c.get_product(r).await },
            )
            .await;
        let product = match answer {
            Ok(product) => product,
            Err(CallError::DeadlineExceeded) => return Err(CartError::CatalogTimeout),
            Err(CallError::Status(status)) => {
                return Err(match status.code() {
                    tonic::Code::NotFound => CartError::ProductNotFound(id),
                    tonic::Code::Unavailable | tonic::Code::Cancelled => {
                        CartError::CatalogUnavailable(status.message().to_owned())
                    }
                    tonic::Code::DeadlineExceeded => CartError::CatalogTimeout,
                    code => CartError::Catalog(format!("{code:?}: {}", status.message())),
                });
            }
        };
        let bad = |e: crate::domain::Invalid| CartError::Catalog(format!("product {id}: {e}"));
        let price = product
            .price
            .ok_or_else(|| CartError::Catalog(format!("product {id} has no price")))?;
        let currency = Currency::parse(&price.currency_code).map_err(|e| bad(e.into()))?;
        Ok(ProductInfo {
            name: ProductName::parse(&product.name).map_err(bad)?,
            unit_price: Money::new(price.minor_units, currency).map_err(bad)?,
        })
    }
}
