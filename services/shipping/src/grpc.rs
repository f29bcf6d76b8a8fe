//! The gRPC API (`emporium.shipping.v1.ShippingService`): maps requests to
//! domain values, prices quotes or calls the store, maps results and errors
//! back.

use emporium_api::shipping::v1 as pb;
use emporium_api::shipping::v1::shipping_service_server::ShippingService;
use emporium_api::types::v1 as types;
use tonic::{Request, Response, Status};

use crate::domain::{
    self, Address, Invalid, Item, NewShipment, OrderId, Parcel, Shipment, ShipmentId,
    ShipmentStatus,
};
use crate::error::ShippingError;
use crate::store::Store;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct ShippingApi {
    store: Store,
}

impl ShippingApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn into_server(self) -> pb::shipping_service_server::ShippingServiceServer<Self> {
        pb::shipping_service_server::ShippingServiceServer::new(self)
            // 100 items with addresses fit easily; anything bigger is a mistake.
            .max_decoding_message_size(256 * 1024)
    }
}

fn invalid(e: Invalid) -> Status {
    ShippingError::from(e).into()
}

fn address(address: Option<&types::Address>) -> Result<Address, Invalid> {
    let a = address.ok_or_else(|| Invalid::new("address", "is required"))?;
    Address::new(
        &a.name,
        &a.line1,
        &a.line2,
        &a.city,
        &a.postal_code,
        &a.country_code,
    )
    .map_err(|e| e.within("address"))
}

fn parcel(items: &[pb::Item]) -> Result<Parcel, Invalid> {
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            Item::new(&item.sku, item.quantity, item.unit_weight_grams)
                .map_err(|e| e.within(format!("items[{i}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Parcel::new(items)
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

fn to_pb(s: Shipment) -> pb::Shipment {
    let a = &s.address;
    pb::Shipment {
        id: s.id.to_string(),
        order_id: s.order_id.to_string(),
        tracking_id: s.tracking_id.to_string(),
        status: match s.status {
            ShipmentStatus::Created => pb::ShipmentStatus::Created,
            ShipmentStatus::Shipped => pb::ShipmentStatus::Shipped,
            ShipmentStatus::Delivered => pb::ShipmentStatus::Delivered,
        } as i32,
        address: Some(types::Address {
            name: a.name().to_owned(),
            line1: a.line1().to_owned(),
            line2: a.line2().to_owned(),
            city: a.city().to_owned(),
            postal_code: a.postal_code().to_owned(),
            country_code: a.country().to_string(),
        }),
        items: s
            .parcel
            .items()
            .iter()
            .map(|i| pb::Item {
                sku: i.sku().to_string(),
                quantity: i.quantity(),
                unit_weight_grams: i.unit_weight_grams(),
            })
            .collect(),
        create_time: Some(timestamp(s.created_at)),
    }
}

#[tonic::async_trait]
impl ShippingService for ShippingApi {
    #[tracing::instrument(skip_all)]
    async fn get_quote(
        &self,
        request: Request<pb::GetQuoteRequest>,
    ) -> Result<Response<pb::Quote>, Status> {
        let r = request.into_inner();
        let address = address(r.address.as_ref()).map_err(invalid)?;
        let parcel = parcel(&r.items).map_err(invalid)?;
        let quote = domain::quote(&parcel, address.country().zone());
        Ok(Response::new(pb::Quote {
            cost: Some(types::Money {
                minor_units: quote.cost_usd_cents,
                currency_code: domain::parcel::PRICE_CURRENCY.to_owned(),
            }),
            zone: quote.zone.number(),
            total_weight_grams: quote.total_weight_grams,
        }))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn create_shipment(
        &self,
        request: Request<pb::CreateShipmentRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        let r = request.into_inner();
        let new = NewShipment {
            order_id: OrderId::parse(&r.order_id).map_err(invalid)?,
            address: address(r.address.as_ref()).map_err(invalid)?,
            parcel: parcel(&r.items).map_err(invalid)?,
        };
        let shipment = self.store.create_shipment(&new).await?;
        tracing::info!(
            shipment_id = %shipment.id,
            tracking_id = %shipment.tracking_id,
            "shipment ready"
        );
        Ok(Response::new(to_pb(shipment)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_shipment(
        &self,
        request: Request<pb::GetShipmentRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        let r = request.into_inner();
        let shipment = match (r.id.is_empty(), r.order_id.is_empty()) {
            (false, true) => {
                let id = ShipmentId::parse(&r.id).map_err(invalid)?;
                self.store.get_shipment(id).await?
            }
            (true, false) => {
                let order = OrderId::parse(&r.order_id).map_err(invalid)?;
                self.store.get_shipment_of_order(&order).await?
            }
            _ => {
                return Err(invalid(Invalid::new(
                    "id",
                    "give exactly one of id and order_id",
                )));
            }
        };
        Ok(Response::new(to_pb(shipment)))
    }
}
