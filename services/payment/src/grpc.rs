//! The gRPC API (`emporium.payment.v1.PaymentService`): maps requests to
//! domain values, asks the simulated processor, calls the store, maps
//! results and errors back.
//!
//! Every call first rolls the configured `faults.error_rate`, so an injected
//! failure happens before anything is read or written. A declined card is a
//! successful call returning a DECLINED charge; only malformed input is
//! `INVALID_ARGUMENT`, and then nothing is stored. Card numbers and CVCs are
//! never logged: spans carry the idempotency key and charge id only.

use emporium_api::payment::v1 as pb;
use emporium_api::payment::v1::payment_service_server::PaymentService;
use emporium_api::types::v1 as types;
use tonic::{Request, Response, Status};

use crate::domain::{
    Amount, Card, Charge, ChargeId, ChargeState, Currency, Description, IdempotencyKey, Invalid,
    KeyPrefix, NewCharge, YearMonth,
};
use crate::error::PaymentError;
use crate::faults::ErrorRate;
use crate::store::Store;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct PaymentApi {
    store: Store,
    error_rate: ErrorRate,
}

impl PaymentApi {
    pub fn new(store: Store, error_rate: ErrorRate) -> Self {
        Self { store, error_rate }
    }

    pub fn into_server(self) -> pb::payment_service_server::PaymentServiceServer<Self> {
        pb::payment_service_server::PaymentServiceServer::new(self)
            // Requests here are small; anything bigger is a mistake or an attack.
            .max_decoding_message_size(64 * 1024)
    }

    fn injected_fault(&self) -> Result<(), PaymentError> {
        if self.error_rate.strikes() {
            Err(PaymentError::InjectedFault)
        } else {
            Ok(())
        }
    }
}

fn invalid(e: Invalid) -> Status {
    PaymentError::from(e).into()
}

fn amount(money: Option<&types::Money>) -> Result<Amount, Invalid> {
    let money = money.ok_or_else(|| Invalid::new("amount", "is required"))?;
    let currency = Currency::parse(&money.currency_code)
        .map_err(|e| e.at("currency_code").within("amount"))?;
    Amount::new(money.minor_units, currency).map_err(|e| e.within("amount"))
}

fn card(card: Option<&types::Card>) -> Result<Card, Invalid> {
    let c = card.ok_or_else(|| Invalid::new("card", "is required"))?;
    Card::new(&c.number, c.exp_month, c.exp_year, &c.cvc)
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

fn to_pb(c: Charge) -> pb::Charge {
    pb::Charge {
        id: c.id.to_string(),
        idempotency_key: c.idempotency_key.to_string(),
        amount: Some(types::Money {
            minor_units: c.amount.minor(),
            currency_code: c.amount.currency().to_string(),
        }),
        status: match c.state {
            ChargeState::Succeeded => pb::ChargeStatus::Succeeded,
            ChargeState::Declined(_) => pb::ChargeStatus::Declined,
            ChargeState::Refunded => pb::ChargeStatus::Refunded,
        } as i32,
        card_last4: c.card_last4.as_str().to_owned(),
        card_brand: c.card_brand.as_str().to_owned(),
        decline_code: c
            .state
            .decline_code()
            .map(|d| d.as_str().to_owned())
            .unwrap_or_default(),
        create_time: Some(timestamp(c.created_at)),
    }
}

#[tonic::async_trait]
impl PaymentService for PaymentApi {
    #[tracing::instrument(skip_all, fields(idempotency_key = %request.get_ref().idempotency_key))]
    async fn charge(
        &self,
        request: Request<pb::ChargeRequest>,
    ) -> Result<Response<pb::Charge>, Status> {
        self.injected_fault()?;
        let r = request.into_inner();
        let key = IdempotencyKey::parse(&r.idempotency_key).map_err(invalid)?;
        let amount = amount(r.amount.as_ref()).map_err(invalid)?;
        let card = card(r.card.as_ref()).map_err(invalid)?;
        let description = Description::parse(&r.description).map_err(invalid)?;
        let today = YearMonth::of(time::OffsetDateTime::now_utc());
        let new = NewCharge::decide(key, amount, &card, description, today);
        let charge = self.store.charge(&new).await?;
        tracing::info!(
            charge_id = %charge.id,
            status = charge.state.as_str(),
            decline_code = charge.state.decline_code().map(|d| d.as_str()),
            amount = %charge.amount,
            "charge answered"
        );
        Ok(Response::new(to_pb(charge)))
    }

    #[tracing::instrument(skip_all, fields(charge_id = %request.get_ref().charge_id))]
    async fn refund(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::Charge>, Status> {
        self.injected_fault()?;
        let id = ChargeId::parse(&request.get_ref().charge_id).map_err(invalid)?;
        let charge = self.store.refund(id).await?;
        tracing::info!(amount = %charge.amount, "charge refunded");
        Ok(Response::new(to_pb(charge)))
    }

    #[tracing::instrument(skip_all, fields(charge_id = %request.get_ref().charge_id))]
    async fn get_charge(
        &self,
        request: Request<pb::GetChargeRequest>,
    ) -> Result<Response<pb::Charge>, Status> {
        self.injected_fault()?;
        let id = ChargeId::parse(&request.get_ref().charge_id).map_err(invalid)?;
        Ok(Response::new(to_pb(self.store.get_charge(id).await?)))
    }

    #[tracing::instrument(skip_all, fields(prefix = %request.get_ref().idempotency_key_prefix))]
    async fn list_charges(
        &self,
        request: Request<pb::ListChargesRequest>,
    ) -> Result<Response<pb::ListChargesResponse>, Status> {
        self.injected_fault()?;
        let prefix =
            KeyPrefix::parse(&request.get_ref().idempotency_key_prefix).map_err(invalid)?;
        let charges = self.store.list_charges(&prefix).await?;
        Ok(Response::new(pb::ListChargesResponse {
            charges: charges.into_iter().map(to_pb).collect(),
        }))
    }
}
