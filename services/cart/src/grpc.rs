//! The gRPC API (`emporium.cart.v1.CartService`): maps requests to domain
//! values, checks products with the catalog, calls the store, maps results
//! and errors back.
//!
//! The cart is always the caller's own: its owner is the identity in the
//! request metadata ([`Identity::require`]); requests carry no user id, so
//! nobody can reach another user's cart.

use emporium_api::cart::v1 as pb;
use emporium_api::cart::v1::cart_service_server::CartService;
use emporium_api::types::v1 as types;
use emporium_chassis::grpc::CallContext;
use emporium_chassis::identity::Identity;
use tonic::{Request, Response, Status};

use crate::catalog::Catalog;
use crate::domain::{Cart, Line, Owner, ProductId, Quantity};
use crate::error::CartError;
use crate::store::CartStore;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct CartApi {
    store: CartStore,
    catalog: Catalog,
}

impl CartApi {
    pub fn new(store: CartStore, catalog: Catalog) -> Self {
        Self { store, catalog }
    }

    pub fn into_server(self) -> pb::cart_service_server::CartServiceServer<Self> {
        pb::cart_service_server::CartServiceServer::new(self)
            // Requests here are tiny; anything bigger is a mistake or an attack.
            .max_decoding_message_size(64 * 1024)
    }

    /// A line for `product_id` with `quantity` units at the catalog's
    /// current name and price.
    async fn line<T>(
        &self,
        request: &Request<T>,
        product_id: ProductId,
        quantity: Quantity,
    ) -> Result<Line, CartError> {
        let product = self
            .catalog
            .product(&CallContext::of(request), product_id)
            .await?;
        Ok(Line {
            product_id,
            quantity,
            name: product.name,
            unit_price: product.unit_price,
        })
    }
}

/// The caller, whose cart this is.
fn owner<T>(request: &Request<T>) -> Result<Owner, Status> {
    let identity = Identity::require(request)?;
    let owner = Owner::parse(&identity.user_id).map_err(CartError::from)?;
    tracing::Span::current().record("user_id", owner.as_str());
    Ok(owner)
}

fn product_id(value: &str) -> Result<ProductId, Status> {
    ProductId::parse(value).map_err(|e| CartError::from(e).into())
}

fn quantity(value: u32) -> Result<Quantity, Status> {
    Quantity::new(value).map_err(|e| CartError::from(e).into())
}

fn cart_to_pb(cart: Cart) -> pb::Cart {
    pb::Cart {
        items: cart
            .lines
            .into_iter()
            .map(|line| pb::CartItem {
                product_id: line.product_id.to_string(),
                quantity: line.quantity.get(),
                name: line.name.to_string(),
                unit_price: Some(types::Money {
                    minor_units: line.unit_price.minor(),
                    currency_code: line.unit_price.currency().to_string(),
                }),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl CartService for CartApi {
    #[tracing::instrument(skip_all, fields(user_id))]
    async fn get_cart(
        &self,
        request: Request<pb::GetCartRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = owner(&request)?;
        Ok(Response::new(cart_to_pb(self.store.get(&owner).await?)))
    }

    #[tracing::instrument(skip_all, fields(user_id, product_id = %request.get_ref().product_id))]
    async fn add_item(
        &self,
        request: Request<pb::AddItemRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = owner(&request)?;
        let product_id = product_id(&request.get_ref().product_id)?;
        let quantity = quantity(request.get_ref().quantity)?;
        let line = self.line(&request, product_id, quantity).await?;
        let cart = self.store.add(&owner, &line).await?;
        tracing::info!(quantity = quantity.get(), "added to cart");
        Ok(Response::new(cart_to_pb(cart)))
    }

    #[tracing::instrument(skip_all, fields(user_id, product_id = %request.get_ref().product_id))]
    async fn set_quantity(
        &self,
        request: Request<pb::SetQuantityRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = owner(&request)?;
        let product_id = product_id(&request.get_ref().product_id)?;
        let cart = match request.get_ref().quantity {
            0 => self.store.remove(&owner, product_id).await?,
            n => {
                let quantity = quantity(n)?;
                let line = self.line(&request, product_id, quantity).await?;
                self.store.set(&owner, &line).await?
            }
        };
        tracing::info!(quantity = request.get_ref().quantity, "cart quantity set");
        Ok(Response::new(cart_to_pb(cart)))
    }

    #[tracing::instrument(skip_all, fields(user_id, product_id = %request.get_ref().product_id))]
    async fn remove_item(
        &self,
        request: Request<pb::RemoveItemRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = owner(&request)?;
        let product_id = product_id(&request.get_ref().product_id)?;
        Ok(Response::new(cart_to_pb(
            self.store.remove(&owner, product_id).await?,
        )))
    }

    #[tracing::instrument(skip_all, fields(user_id))]
    async fn clear_cart(
        &self,
        request: Request<pb::ClearCartRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = owner(&request)?;
        let cart = self.store.clear(&owner).await?;
        tracing::info!("cart cleared");
        Ok(Response::new(cart_to_pb(cart)))
    }
}
