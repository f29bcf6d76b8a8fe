//! The gRPC API (`emporium.inventory.v1.InventoryService`): maps requests to
//! domain values, calls the store, maps results and errors back.
//!
//! Reads are open to every caller; `SetStock` needs the admin role. Reserve,
//! Confirm and Release are called by checkout on behalf of an order, keyed
//! by its id and idempotent, so checkout may retry any of them.

use std::time::Duration;

use emporium_api::inventory::v1 as pb;
use emporium_api::inventory::v1::inventory_service_server::InventoryService;
use emporium_chassis::identity::Identity;
use tonic::{Request, Response, Status};

use crate::domain::{
    self, Available, Invalid, Items, OrderId, Reservation, ReservationStatus, Sku, StockLevel,
};
use crate::error::InventoryError;
use crate::store::Store;

/// Most SKUs one GetStock or SetStock may name.
pub const MAX_SKUS_PER_CALL: usize = 1000;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct InventoryApi {
    store: Store,
    reservation_ttl: Duration,
}

impl InventoryApi {
    pub fn new(store: Store, reservation_ttl: Duration) -> Self {
        Self {
            store,
            reservation_ttl,
        }
    }

    pub fn into_server(self) -> pb::inventory_service_server::InventoryServiceServer<Self> {
        pb::inventory_service_server::InventoryServiceServer::new(self)
            // Requests here are small; anything bigger is a mistake or an attack.
            .max_decoding_message_size(1024 * 1024)
    }
}

fn invalid(e: Invalid) -> Status {
    InventoryError::from(e).into()
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

fn status_to_pb(s: ReservationStatus) -> pb::ReservationStatus {
    match s {
        ReservationStatus::Reserved => pb::ReservationStatus::Reserved,
        ReservationStatus::Confirmed => pb::ReservationStatus::Confirmed,
        ReservationStatus::Released => pb::ReservationStatus::Released,
        ReservationStatus::Expired => pb::ReservationStatus::Expired,
    }
}

fn reservation_to_pb(r: Reservation) -> pb::Reservation {
    pb::Reservation {
        order_id: r.order_id.to_string(),
        status: status_to_pb(r.status) as i32,
        items: r
            .items
            .iter()
            .map(|i| pb::Item {
                sku: i.sku.to_string(),
                quantity: i.quantity.get(),
            })
            .collect(),
        expire_time: Some(timestamp(r.expires_at)),
    }
}

fn levels_to_pb(levels: Vec<StockLevel>) -> pb::GetStockResponse {
    pb::GetStockResponse {
        levels: levels
            .into_iter()
            .map(|l| pb::StockLevel {
                sku: l.sku.to_string(),
                available: l.available,
                reserved: l.reserved,
            })
            .collect(),
    }
}

fn bounded<T>(field: &str, list: &[T]) -> Result<(), Status> {
    if list.is_empty() {
        return Err(invalid(Invalid::new(field, "names no SKU")));
    }
    if list.len() > MAX_SKUS_PER_CALL {
        return Err(invalid(Invalid::new(
            field,
            format!("at most {MAX_SKUS_PER_CALL} per call"),
        )));
    }
    Ok(())
}

fn order_id(value: &str) -> Result<OrderId, Status> {
    OrderId::parse(value).map_err(invalid)
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    #[tracing::instrument(skip_all)]
    async fn get_stock(
        &self,
        request: Request<pb::GetStockRequest>,
    ) -> Result<Response<pb::GetStockResponse>, Status> {
        let r = request.into_inner();
        bounded("skus", &r.skus)?;
        let skus = r
            .skus
            .iter()
            .enumerate()
            .map(|(i, s)| Sku::parse(s).map_err(|e| e.within(format!("skus[{i}]"))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        Ok(Response::new(levels_to_pb(
            self.store.get_stock(&skus).await?,
        )))
    }

    /// Sets `available` of each SKU; `reserved` in the request is ignored
    /// (reservations own it), so a GetStock answer can be sent back as is.
    #[tracing::instrument(skip_all)]
    async fn set_stock(
        &self,
        request: Request<pb::SetStockRequest>,
    ) -> Result<Response<pb::GetStockResponse>, Status> {
        let admin = Identity::require_admin(&request)?;
        let r = request.into_inner();
        bounded("levels", &r.levels)?;
        let mut levels: Vec<(Sku, Available)> = Vec::with_capacity(r.levels.len());
        for (i, level) in r.levels.iter().enumerate() {
            let at = format!("levels[{i}]");
            let sku = Sku::parse(&level.sku).map_err(|e| invalid(e.within(&at)))?;
            let available = Available::new(level.available).map_err(|e| invalid(e.within(&at)))?;
            if levels.iter().any(|(s, _)| *s == sku) {
                return Err(invalid(Invalid::new(
                    format!("{at}.sku"),
                    format!("{sku} is listed more than once"),
                )));
            }
            levels.push((sku, available));
        }
        let set = self.store.set_stock(&levels).await?;
        tracing::info!(user_id = %admin.user_id, skus = set.len(), "stock set");
        Ok(Response::new(levels_to_pb(set)))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn reserve(
        &self,
        request: Request<pb::ReserveRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let r = request.into_inner();
        let order_id = order_id(&r.order_id)?;
        let items =
            Items::new(r.items.iter().map(|i| (i.sku.as_str(), i.quantity))).map_err(invalid)?;
        let reservation = self
            .store
            .reserve(&order_id, &items, self.reservation_ttl, domain::now())
            .await?;
        tracing::info!(status = %reservation.status, items = reservation.items.len(), "reserve answered");
        Ok(Response::new(reservation_to_pb(reservation)))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn confirm(
        &self,
        request: Request<pb::ConfirmRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let order_id = order_id(&request.get_ref().order_id)?;
        let reservation = self.store.confirm(&order_id, domain::now()).await?;
        tracing::info!("reservation confirmed");
        Ok(Response::new(reservation_to_pb(reservation)))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn release(
        &self,
        request: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::Reservation>, Status> {
        let order_id = order_id(&request.get_ref().order_id)?;
        let reservation = self.store.release(&order_id, domain::now()).await?;
        tracing::info!(status = %reservation.status, "reservation released");
        Ok(Response::new(reservation_to_pb(reservation)))
    }
}
