//! The services checkout calls, each with its deadline.

use emporium_api::cart::v1::cart_service_client::CartServiceClient;
use emporium_api::catalog::v1::catalog_service_client::CatalogServiceClient;
use emporium_api::currency::v1::currency_service_client::CurrencyServiceClient;
use emporium_api::inventory::v1::inventory_service_client::InventoryServiceClient;
use emporium_api::payment::v1::payment_service_client::PaymentServiceClient;
use emporium_api::shipping::v1::shipping_service_client::ShippingServiceClient;
use emporium_chassis::Metrics;
use emporium_chassis::config::ConfigError;
use emporium_chassis::grpc::{Channel, Client};

use crate::config::CheckoutConfig;

/// Clients of every upstream; cheap to clone.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub cart: Client<CartServiceClient<Channel>>,
    pub catalog: Client<CatalogServiceClient<Channel>>,
    pub currency: Client<CurrencyServiceClient<Channel>>,
    pub inventory: Client<InventoryServiceClient<Channel>>,
    pub payment: Client<PaymentServiceClient<Channel>>,
    pub shipping: Client<ShippingServiceClient<Channel>>,
}

impl Upstreams {
    /// Lazily-connecting clients (needs a Tokio runtime).
    pub fn new(config: &CheckoutConfig, metrics: &Metrics) -> Result<Self, ConfigError> {
        let mut config = config.clone();
        let CheckoutConfig {
            cart,
            catalog,
            currency,
            inventory,
            payment,
            shipping,
            registry,
            ..
        } = &mut config;
        registry.apply(
            "checkout",
            [cart, catalog, currency, inventory, payment, shipping],
        )?;
        let config = &config;
        Ok(Self {
            cart: Client::new(
                "checkout.cart",
                &config.cart,
                metrics,
                CartServiceClient::new,
            )?,
            catalog: Client::new(
                "checkout.catalog",
                &config.catalog,
                metrics,
                CatalogServiceClient::new,
            )?,
            currency: Client::new(
                "checkout.currency",
                &config.currency,
                metrics,
                CurrencyServiceClient::new,
            )?,
            inventory: Client::new(
                "checkout.inventory",
                &config.inventory,
                metrics,
                InventoryServiceClient::new,
            )?,
            payment: Client::new(
                "checkout.payment",
                &config.payment,
                metrics,
                PaymentServiceClient::new,
            )?,
            shipping: Client::new(
                "checkout.shipping",
                &config.shipping,
                metrics,
                ShippingServiceClient::new,
            )?,
        })
    }
}
