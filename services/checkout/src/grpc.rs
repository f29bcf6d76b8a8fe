//! The gRPC API (`emporium.checkout.v1.CheckoutService`). The caller is the
//! identity in the request metadata; orders are visible to their owner only.

use std::sync::Arc;

use emporium_api::checkout::v1 as pb;
use emporium_api::checkout::v1::checkout_service_server::CheckoutService;
use emporium_api::types::v1 as types;
use emporium_chassis::grpc::CallContext;
use emporium_chassis::identity::Identity;
use tonic::{Request, Response, Status};

use crate::domain::{
    Address, Card, Currency, IdempotencyKey, Invalid, Order, OrderId, OrderStatus,
};
use crate::error::CheckoutError;
use crate::saga::{PlaceOrder, Saga};
use crate::store::Store;

const MAX_PAGE: u32 = 50;

#[derive(Debug, Clone)]
pub struct CheckoutApi {
    saga: Arc<Saga>,
    store: Store,
}

impl CheckoutApi {
    pub fn new(saga: Arc<Saga>, store: Store) -> Self {
        Self { saga, store }
    }

    pub fn into_server(self) -> pb::checkout_service_server::CheckoutServiceServer<Self> {
        pb::checkout_service_server::CheckoutServiceServer::new(self)
            .max_decoding_message_size(64 * 1024)
    }
}

fn invalid(e: Invalid) -> Status {
    CheckoutError::from(e).into()
}

fn money(minor: i64, currency: Currency) -> Option<types::Money> {
    Some(types::Money {
        minor_units: minor,
        currency_code: currency.to_string(),
    })
}

fn timestamp(t: time::OffsetDateTime) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    })
}

pub fn to_pb(o: Order) -> pb::Order {
    let status = match o.status() {
        OrderStatus::Pending => pb::OrderStatus::Pending,
        OrderStatus::Placed => pb::OrderStatus::Placed,
        OrderStatus::Failed => pb::OrderStatus::Failed,
    };
    let a = o.address;
    pb::Order {
        id: o.id.to_string(),
        status: status as i32,
        items: o
            .items
            .into_iter()
            .map(|i| pb::OrderItem {
                product_id: i.product_id,
                sku: i.sku,
                name: i.name,
                quantity: i.quantity,
                unit_price: money(i.unit_price, o.currency),
            })
            .collect(),
        items_total: money(o.items_total.minor(), o.currency),
        shipping_cost: money(o.shipping_cost.minor(), o.currency),
        total: money(o.total.minor(), o.currency),
        shipping_address: Some(types::Address {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country_code: a.country_code,
        }),
        charge_id: o.charge_id.unwrap_or_default(),
        failure_reason: o.failure.map(|f| f.reason).unwrap_or_default(),
        create_time: timestamp(o.created_at),
        update_time: timestamp(o.updated_at),
    }
}

#[tonic::async_trait]
impl CheckoutService for CheckoutApi {
    #[tracing::instrument(skip_all)]
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let caller = Identity::require(&request)?;
        let ctx = CallContext::of(&request);
        let r = request.into_inner();
        let address = r
            .shipping_address
            .ok_or_else(|| invalid(Invalid::new("shipping_address", "is required")))?;
        let card = r
            .card
            .ok_or_else(|| invalid(Invalid::new("card", "is required")))?;
        let place = PlaceOrder {
            user_id: caller.user_id,
            email: caller.email,
            idempotency_key: IdempotencyKey::parse(&r.idempotency_key).map_err(invalid)?,
            currency: Currency::parse(&r.currency_code).map_err(|e| invalid(e.into()))?,
            address: Address::parse(
                &address.name,
                &address.line1,
                &address.line2,
                &address.city,
                &address.postal_code,
                &address.country_code,
            )
            .map_err(invalid)?,
            card: Card::parse(&card.number, card.exp_month, card.exp_year, &card.cvc)
                .map_err(invalid)?,
        };
        let order = self.saga.place(ctx, place).await?;
        Ok(Response::new(to_pb(order)))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().id))]
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let caller = Identity::require(&request)?;
        let id = OrderId::parse(&request.get_ref().id).map_err(invalid)?;
        match self.store.get(id).await? {
            // Someone else's order is indistinguishable from none at all.
            Some(order) if order.user_id == caller.user_id => Ok(Response::new(to_pb(order))),
            _ => Err(CheckoutError::OrderNotFound(id.to_string()).into()),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let caller = Identity::require(&request)?;
        let r = request.into_inner();
        let size = match r.page_size {
            0 => 20,
            n if n <= MAX_PAGE => n,
            n => {
                return Err(invalid(Invalid::new(
                    "page_size",
                    format!("{n} is above the maximum of {MAX_PAGE}"),
                )));
            }
        };
        let before = if r.page_token.is_empty() {
            None
        } else {
            Some(OrderId::parse(&r.page_token).map_err(|_| {
                invalid(Invalid::new("page_token", "is not a cursor from this API"))
            })?)
        };
        let mut orders = self
            .store
            .list_for_user(&caller.user_id, before, size + 1)
            .await?;
        let next_page_token = if orders.len() > size as usize {
            orders.truncate(size as usize);
            orders.last().map(|o| o.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.into_iter().map(to_pb).collect(),
            next_page_token,
        }))
    }
}
