//! The order saga, orchestrated here (see `docs/architecture.md`):
//!
//! 1. read the cart → 2. price the items (catalog) and convert them
//!    (currency) → the order row is created, step `priced`
//! 3. reserve stock (inventory) → 4. quote shipping (shipping, converted)
//! 5. charge the card (payment, idempotency key = order id)
//! 6. confirm the reservation, then in ONE transaction: order `placed` +
//!    `order.placed.v1` in the outbox → 7. clear the cart.
//!
//! Every step is persisted before its side effect (`reserving`, `charging`)
//! and after it, under a lease held by this instance. A failure runs the
//! compensations in reverse (refund, release). If the process dies, another
//! instance — or this one restarted — claims the saga once its lease expires
//! and resumes it from the persisted step: before the charge it compensates
//! (the card is never stored, so it cannot be charged later); from a charge
//! on it goes forward, asking payment what happened when the outcome of the
//! charge call is unknown. Every remote step is idempotent per order id, so
//! repeating one after a crash does no harm: no order is charged twice, none
//! is lost, and stock never leaks (reservations also expire on their own).

use std::sync::Arc;
use std::time::Duration;

use emporium_api::cart::v1 as cart;
use emporium_api::catalog::v1 as catalog;
use emporium_api::currency::v1 as currency;
use emporium_api::inventory::v1 as inventory;
use emporium_api::payment::v1 as payment;
use emporium_api::shipping::v1 as shipping;
use emporium_api::types::v1 as types;
use emporium_chassis::ErrorKind;
use emporium_chassis::grpc::CallContext;
use emporium_chassis::identity::{Identity, Role};
use sha2::{Digest, Sha256};

use crate::config::SagaConfig;
use crate::domain::{
    self, Address, Card, Currency, Failure, IdempotencyKey, Money, Order, OrderId, OrderItem, Step,
};
use crate::error::CheckoutError;
use crate::store::{Changes, Created, Lease, OutboxEvent, Store};
use crate::upstream::Upstreams;

/// A customer's request to place an order.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub user_id: String,
    pub email: Option<String>,
    pub idempotency_key: IdempotencyKey,
    pub currency: Currency,
    pub address: Address,
    pub card: Card,
}

impl PlaceOrder {
    /// A digest of what the request asks for (the card only by its last
    /// digits and expiry), to tell a retry from a different request.
    fn digest(&self) -> String {
        let card = &self.card.number[self.card.number.len().saturating_sub(4)..];
        let a = &self.address;
        let text = format!(
            "{}|{}|{}|{}|{}|{}|{}|{card}|{}/{}",
            self.currency,
            a.name,
            a.line1,
            a.line2,
            a.city,
            a.postal_code,
            a.country_code,
            self.card.exp_month,
            self.card.exp_year
        );
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Drives sagas for one checkout instance.
#[derive(Debug)]
pub struct Saga {
    store: Store,
    upstreams: Upstreams,
    config: SagaConfig,
    /// This instance's lease owner id.
    owner: String,
    halt_after: Option<Step>,
    exit_after: Option<Step>,
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn money(m: Money) -> types::Money {
    types::Money {
        minor_units: m.minor(),
        currency_code: m.currency().to_string(),
    }
}

impl Saga {
    pub fn new(store: Store, upstreams: Upstreams, config: SagaConfig) -> Self {
        let halt_after = config.halt_after.as_deref().and_then(Step::parse);
        let exit_after = config.exit_after.as_deref().and_then(Step::parse);
        Self {
            store,
            upstreams,
            config,
            owner: uuid::Uuid::new_v4().simple().to_string(),
            halt_after,
            exit_after,
        }
    }

    fn lease(&self) -> Lease {
        let ms = i64::try_from(self.config.lease.get().as_millis()).unwrap_or(i64::MAX);
        Lease {
            owner: self.owner.clone(),
            until_ms: now_ms().saturating_add(ms),
        }
    }

    /// Places an order, or returns the one an earlier request with the same
    /// key placed (waiting for it to finish if it is still running).
    pub async fn place(
        self: &Arc<Self>,
        ctx: CallContext,
        request: PlaceOrder,
    ) -> Result<Order, CheckoutError> {
        let digest = request.digest();
        if let Some(existing) = self
            .store
            .find_by_key(&request.user_id, &request.idempotency_key)
            .await?
        {
            return self.replay(existing, &digest).await;
        }
        // Pricing has no side effects: a request that fails here writes nothing.
        let items = self.price(&ctx, request.currency).await?;
        let items_total = domain::items_total(request.currency, &items)?;
        let now = domain::now();
        let order = Order {
            id: OrderId::generate(),
            user_id: request.user_id.clone(),
            email: request.email.clone(),
            idempotency_key: request.idempotency_key.clone(),
            request_hash: digest.clone(),
            step: Step::Priced,
            currency: request.currency,
            items,
            items_total,
            shipping_cost: Money::zero(request.currency),
            total: items_total,
            address: request.address.clone(),
            charge_id: None,
            failure: None,
            created_at: now,
            updated_at: now,
        };
        let order = match self.store.create(&order, &self.lease()).await? {
            Created::New => order,
            Created::Existing(existing) => return self.replay(*existing, &digest).await,
        };
        tracing::info!(order_id = %order.id, user_id = %order.user_id, total = order.total.minor(), "order created");
        // The saga runs on its own task: a caller that hangs up mid-way must
        // not stop it between two steps.
        let saga = Arc::clone(self);
        let card = request.card;
        let driven = tokio::spawn(async move { saga.drive(order, Some(card), ctx).await })
            .await
            .map_err(|e| CheckoutError::Task(e.to_string()))??;
        // Answer with the stored order, exactly what a retry will read.
        let stored = self.store.get(driven.id).await?.unwrap_or(driven);
        outcome(stored)
    }

    async fn replay(&self, existing: Order, digest: &str) -> Result<Order, CheckoutError> {
        if existing.request_hash != digest {
            return Err(CheckoutError::KeyReused);
        }
        let deadline = tokio::time::Instant::now() + self.config.replay_wait.get();
        let mut order = existing;
        while order.status() == domain::OrderStatus::Pending {
            if tokio::time::Instant::now() >= deadline {
                return Err(CheckoutError::InProgress(order.id.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            order = self
                .store
                .get(order.id)
                .await?
                .ok_or_else(|| CheckoutError::OrderNotFound(order.id.to_string()))?;
        }
        outcome(order)
    }

    /// Prices the caller's cart in `currency` (read-only).
    async fn price(
        &self,
        ctx: &CallContext,
        currency: Currency,
    ) -> Result<Vec<OrderItem>, CheckoutError> {
        let u = &self.upstreams;
        let cart = u
            .cart
            .call_idempotent(ctx, cart::GetCartRequest {}, |mut c, r| async move {
                c.get_cart(r).await
            })
            .await
            .map_err(CheckoutError::upstream("cart"))?;
        if cart.items.is_empty() {
            return Err(CheckoutError::EmptyCart);
        }
        let mut items = Vec::with_capacity(cart.items.len());
        for line in cart.items {
            let request = catalog::GetProductRequest {
                id: line.product_id.clone(),
            };
            let product = u
                .catalog
                .call_idempotent(
                    ctx,
                    request,
                    |mut c, r| async move { c.get_product(r).await },
                )
                .await
                .map_err(CheckoutError::upstream("catalog"))
                .map_err(|e| match e.kind() {
                    ErrorKind::NotFound => CheckoutError::OrderFailed {
                        kind: ErrorKind::Conflict,
                        reason: format!(
                            "product {} is no longer sold; remove it from the cart",
                            line.product_id
                        ),
                    },
                    _ => e,
                })?;
            let price = product.price.unwrap_or_default();
            let unit_price = self.convert(ctx, price, currency).await?;
            items.push(OrderItem {
                product_id: product.id,
                sku: product.sku,
                name: product.name,
                quantity: line.quantity,
                unit_price,
            });
        }
        Ok(items)
    }

    /// Minor units of `currency` for `amount` (no call when it is already in it).
    async fn convert(
        &self,
        ctx: &CallContext,
        amount: types::Money,
        to: Currency,
    ) -> Result<i64, CheckoutError> {
        if amount.currency_code == to.as_str() {
            return Ok(amount.minor_units);
        }
        let u = &self.upstreams;
        let request = currency::ConvertRequest {
            from: Some(amount),
            to_currency_code: to.to_string(),
        };
        let converted = u
            .currency
            .call_idempotent(ctx, request, |mut c, r| async move { c.convert(r).await })
            .await
            .map_err(CheckoutError::upstream("currency"))?;
        Ok(converted
            .converted
            .map(|m| m.minor_units)
            .unwrap_or_default())
    }

    /// Persists `to` (with `changes`) and applies it to `order`; then the
    /// configured crash fault points, if any.
    async fn step(
        &self,
        order: &mut Order,
        to: Step,
        changes: Changes,
    ) -> Result<(), CheckoutError> {
        if !self
            .store
            .advance(order.id, order.step, to, &changes, &self.lease())
            .await?
        {
            return Err(CheckoutError::LostLease);
        }
        tracing::info!(order_id = %order.id, from = order.step.as_str(), to = to.as_str(), "saga step");
        order.step = to;
        if let Some(cost) = changes.shipping_cost {
            order.shipping_cost = Money::new(cost, order.currency)?;
        }
        if let Some(total) = changes.total {
            order.total = Money::new(total, order.currency)?;
        }
        if changes.charge_id.is_some() {
            order.charge_id = changes.charge_id;
        }
        if changes.failure.is_some() {
            order.failure = changes.failure;
        }
        if self.exit_after == Some(to) {
            tracing::error!(order_id = %order.id, step = to.as_str(), "configured fault: exiting the process");
            std::process::exit(70);
        }
        if self.halt_after == Some(to) {
            tracing::warn!(order_id = %order.id, step = to.as_str(), "configured fault: halting this saga");
            return Err(CheckoutError::Halted(to));
        }
        Ok(())
    }

    /// Runs the saga from `order.step` to a final step. `card` is present
    /// only while the customer's request is being served.
    pub async fn drive(
        &self,
        mut order: Order,
        card: Option<Card>,
        ctx: CallContext,
    ) -> Result<Order, CheckoutError> {
        let u = &self.upstreams;
        let id = order.id.to_string();
        loop {
            match order.step {
                Step::Priced => {
                    self.step(&mut order, Step::Reserving, Changes::default())
                        .await?;
                    let items = order
                        .items
                        .iter()
                        .map(|i| inventory::Item {
                            sku: i.sku.clone(),
                            quantity: i.quantity,
                        })
                        .collect();
                    let request = inventory::ReserveRequest {
                        order_id: id.clone(),
                        items,
                    };
                    match u
                        .inventory
                        .call_idempotent(
                            &ctx,
                            request,
                            |mut c, r| async move { c.reserve(r).await },
                        )
                        .await
                    {
                        Ok(_) => {
                            self.step(&mut order, Step::Reserved, Changes::default())
                                .await?
                        }
                        Err(e) => {
                            let e = CheckoutError::upstream("inventory")(e);
                            let failure = failure_of(&e, "reserving stock");
                            return self.compensate(order, failure, &ctx).await;
                        }
                    }
                }
                Step::Reserving => {
                    // Recovered mid-reservation: undo whatever it did.
                    return self.compensate(order, interrupted(), &ctx).await;
                }
                Step::Reserved => match self.quote(&ctx, &order).await {
                    Ok(cost) => {
                        let total = order.items_total.plus(Money::new(cost, order.currency)?)?;
                        let changes = Changes {
                            shipping_cost: Some(cost),
                            total: Some(total.minor()),
                            ..Changes::default()
                        };
                        self.step(&mut order, Step::Quoted, changes).await?;
                    }
                    Err(e) => {
                        let failure = failure_of(&e, "quoting shipping");
                        return self.compensate(order, failure, &ctx).await;
                    }
                },
                Step::Quoted => {
                    let Some(card) = card.as_ref() else {
                        // Recovered before the charge: the card is gone with the request.
                        return self.compensate(order, interrupted(), &ctx).await;
                    };
                    self.step(&mut order, Step::Charging, Changes::default())
                        .await?;
                    let request = payment::ChargeRequest {
                        idempotency_key: id.clone(),
                        amount: Some(money(order.total)),
                        card: Some(types::Card {
                            number: card.number.clone(),
                            exp_month: card.exp_month,
                            exp_year: card.exp_year,
                            cvc: card.cvc.clone(),
                        }),
                        description: format!("Emporium order {id}"),
                    };
                    let charged = u
                        .payment
                        .call_idempotent(&ctx, request, |mut c, r| async move { c.charge(r).await })
                        .await;
                    match charged {
                        Ok(charge) => self.after_charge(&mut order, charge).await?,
                        Err(e) => {
                            let e = CheckoutError::upstream("payment")(e);
                            if e.kind() == ErrorKind::InvalidArgument {
                                let failure = failure_of(&e, "charging the card");
                                return self.compensate(order, failure, &ctx).await;
                            }
                            // The outcome is unknown: ask payment what happened.
                            tracing::warn!(order_id = %id, error = %e, "charge outcome unknown; looking it up");
                            self.resolve_charge(&mut order, &ctx).await?;
                        }
                    }
                    if order.step == Step::Compensating {
                        let failure = order.failure.clone().unwrap_or_else(interrupted);
                        return self.compensate(order, failure, &ctx).await;
                    }
                }
                Step::Charging => {
                    self.resolve_charge(&mut order, &ctx).await?;
                    if order.step == Step::Compensating {
                        let failure = order.failure.clone().unwrap_or_else(interrupted);
                        return self.compensate(order, failure, &ctx).await;
                    }
                }
                Step::Charged => {
                    // Paid: placing the order must finish whatever the
                    // customer's deadline says.
                    let ctx = ctx.detached();
                    // Confirm before placing, so a placed order always has its stock.
                    let request = inventory::ConfirmRequest {
                        order_id: id.clone(),
                    };
                    match u
                        .inventory
                        .call_idempotent(
                            &ctx,
                            request,
                            |mut c, r| async move { c.confirm(r).await },
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(e) => {
                            let e = CheckoutError::upstream("inventory")(e);
                            if e.kind() != ErrorKind::Conflict && e.kind() != ErrorKind::NotFound {
                                return Err(e); // transient: recovery retries
                            }
                            // The reservation expired or vanished: refund rather than oversell.
                            let failure = Failure {
                                kind: slug(ErrorKind::Conflict),
                                reason: "the stock held for this order expired before it could be placed; \
                                         the payment was refunded"
                                    .into(),
                            };
                            return self.compensate(order, failure, &ctx).await;
                        }
                    }
                    let event = placed_event(&order, ctx.trace)?;
                    if !self.store.place(order.id, &self.lease(), &event).await? {
                        return Err(CheckoutError::LostLease);
                    }
                    tracing::info!(order_id = %id, "order placed");
                    order.step = Step::Placed;
                    if self.exit_after == Some(Step::Placed) {
                        std::process::exit(70);
                    }
                    if self.halt_after == Some(Step::Placed) {
                        return Err(CheckoutError::Halted(Step::Placed));
                    }
                }
                Step::Placed => {
                    let owner = Identity {
                        user_id: order.user_id.clone(),
                        role: Role::Customer,
                        email: None,
                    };
                    let as_owner = CallContext::new(ctx.trace, Some(owner));
                    let cleared = u
                        .cart
                        .call_idempotent(
                            &as_owner,
                            cart::ClearCartRequest {},
                            |mut c, r| async move { c.clear_cart(r).await },
                        )
                        .await;
                    if let Err(e) = cleared {
                        // The order is placed; recovery clears the cart later.
                        tracing::warn!(order_id = %id, error = ?e, "could not clear the cart yet");
                        return Ok(order);
                    }
                    self.step(&mut order, Step::Completed, Changes::default())
                        .await?;
                }
                Step::Compensating => {
                    let failure = order.failure.clone().unwrap_or_else(interrupted);
                    return self.compensate(order, failure, &ctx).await;
                }
                Step::Completed | Step::Failed => return Ok(order),
            }
        }
    }

    async fn quote(&self, ctx: &CallContext, order: &Order) -> Result<i64, CheckoutError> {
        let u = &self.upstreams;
        let a = &order.address;
        let request = shipping::GetQuoteRequest {
            address: Some(types::Address {
                name: a.name.clone(),
                line1: a.line1.clone(),
                line2: a.line2.clone(),
                city: a.city.clone(),
                postal_code: a.postal_code.clone(),
                country_code: a.country_code.clone(),
            }),
            items: order
                .items
                .iter()
                .map(|i| shipping::Item {
                    sku: i.sku.clone(),
                    quantity: i.quantity,
                    unit_weight_grams: 0,
                })
                .collect(),
        };
        let quote = u
            .shipping
            .call_idempotent(ctx, request, |mut c, r| async move { c.get_quote(r).await })
            .await
            .map_err(CheckoutError::upstream("shipping"))?;
        self.convert(ctx, quote.cost.unwrap_or_default(), order.currency)
            .await
    }

    /// Records a charge's outcome: `Charged`, or `Compensating` when declined.
    async fn after_charge(
        &self,
        order: &mut Order,
        charge: payment::Charge,
    ) -> Result<(), CheckoutError> {
        match payment::ChargeStatus::try_from(charge.status) {
            Ok(payment::ChargeStatus::Succeeded) => {
                let changes = Changes {
                    charge_id: Some(charge.id),
                    ..Changes::default()
                };
                self.step(order, Step::Charged, changes).await
            }
            _ => {
                let code = if charge.decline_code.is_empty() {
                    "card_declined"
                } else {
                    charge.decline_code.as_str()
                };
                let failure = Failure {
                    kind: slug(ErrorKind::PaymentDeclined),
                    reason: format!("the card was declined ({code})"),
                };
                self.step(
                    order,
                    Step::Compensating,
                    Changes {
                        failure: Some(failure),
                        ..Changes::default()
                    },
                )
                .await
            }
        }
    }

    /// After a crash or an unanswered charge call: payment knows whether the
    /// order's charge exists (its idempotency key is the order id).
    async fn resolve_charge(
        &self,
        order: &mut Order,
        ctx: &CallContext,
    ) -> Result<(), CheckoutError> {
        // Money may have moved: find out even if the customer gave up.
        let ctx = &ctx.detached();
        let u = &self.upstreams;
        let request = payment::ListChargesRequest {
            idempotency_key_prefix: order.id.to_string(),
        };
        let charges = u
            .payment
            .call_idempotent(
                ctx,
                request,
                |mut c, r| async move { c.list_charges(r).await },
            )
            .await
            .map_err(CheckoutError::upstream("payment"))?;
        let id = order.id.to_string();
        match charges
            .charges
            .into_iter()
            .find(|c| c.idempotency_key == id)
        {
            Some(charge) => self.after_charge(order, charge).await,
            None => {
                let changes = Changes {
                    failure: Some(interrupted()),
                    ..Changes::default()
                };
                self.step(order, Step::Compensating, changes).await
            }
        }
    }

    /// Undoes what the saga did, in reverse: refund, then release the stock.
    /// Both are idempotent, so a compensation interrupted half-way is simply
    /// run again by recovery.
    async fn compensate(
        &self,
        mut order: Order,
        failure: Failure,
        ctx: &CallContext,
    ) -> Result<Order, CheckoutError> {
        // Undoing must finish even though the request that failed gave up.
        let ctx = &ctx.detached();
        if order.step != Step::Compensating {
            let changes = Changes {
                failure: Some(failure),
                ..Changes::default()
            };
            self.step(&mut order, Step::Compensating, changes).await?;
        }
        let u = &self.upstreams;
        let id = order.id.to_string();
        if let Some(charge_id) = order.charge_id.clone() {
            let request = payment::RefundRequest { charge_id };
            u.payment
                .call_idempotent(ctx, request, |mut c, r| async move { c.refund(r).await })
                .await
                .map_err(CheckoutError::upstream("payment"))?;
            tracing::info!(order_id = %id, "payment refunded");
        }
        let request = inventory::ReleaseRequest {
            order_id: id.clone(),
        };
        match u
            .inventory
            .call_idempotent(ctx, request, |mut c, r| async move { c.release(r).await })
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let e = CheckoutError::upstream("inventory")(e);
                // No reservation, or one that already ended, holds nothing to release.
                if !matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Conflict) {
                    return Err(e);
                }
            }
        }
        self.step(&mut order, Step::Failed, Changes::default())
            .await?;
        tracing::info!(order_id = %id, reason = order.failure.as_ref().map(|f| f.reason.as_str()), "order failed; compensated");
        Ok(order)
    }

    /// Claims and drives sagas abandoned by a dead instance (or this one,
    /// before a restart). Returns how many were taken over.
    pub async fn recover_once(&self) -> Result<usize, CheckoutError> {
        let claimed = self.store.claim_stale(now_ms(), &self.lease(), 20).await?;
        let n = claimed.len();
        for order in claimed {
            let id = order.id;
            let owner = Identity {
                user_id: order.user_id.clone(),
                role: Role::Customer,
                email: None,
            };
            let ctx = CallContext::new(emporium_chassis::TraceContext::new_root(), Some(owner));
            tracing::info!(order_id = %id, step = order.step.as_str(), "recovering an abandoned saga");
            match self.drive(order, None, ctx).await {
                Ok(order) => {
                    tracing::info!(order_id = %id, step = order.step.as_str(), "saga recovered")
                }
                Err(e) => {
                    tracing::warn!(order_id = %id, error = %e, "saga recovery will be retried")
                }
            }
        }
        Ok(n)
    }

    /// Runs recovery now and then every `recovery_interval` until `stop`.
    pub async fn recover_until(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            if let Err(e) = self.recover_once().await {
                tracing::warn!(error = %e, "saga recovery pass failed");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.config.recovery_interval.get()) => {}
            }
        }
    }
}

fn slug(kind: ErrorKind) -> String {
    kind.problem_type()
        .rsplit('/')
        .next()
        .unwrap_or("internal")
        .to_owned()
}

fn interrupted() -> Failure {
    Failure {
        kind: slug(ErrorKind::Unavailable),
        reason: "checkout was interrupted before the payment; nothing was charged".into(),
    }
}

fn failure_of(e: &CheckoutError, doing: &str) -> Failure {
    let kind = e.kind();
    let reason = match kind {
        ErrorKind::Unavailable | ErrorKind::DeadlineExceeded | ErrorKind::Internal => {
            format!("a service was unavailable while {doing}; nothing was charged")
        }
        _ => match e {
            CheckoutError::Upstream { message, .. } => message.clone(),
            other => other.to_string(),
        },
    };
    Failure {
        kind: slug(kind),
        reason,
    }
}

/// The result a customer gets for a finished (or still running) order.
fn outcome(order: Order) -> Result<Order, CheckoutError> {
    match (&order.step, &order.failure) {
        (Step::Failed, Some(failure)) => {
            let kind = ErrorKind::ALL
                .into_iter()
                .find(|k| k.problem_type().ends_with(&format!("/{}", failure.kind)))
                .unwrap_or(ErrorKind::Internal);
            Err(CheckoutError::OrderFailed {
                kind,
                reason: failure.reason.clone(),
            })
        }
        _ => Ok(order),
    }
}

/// The `order.placed.v1` event, as the envelope the outbox relay publishes
/// unchanged (its id makes a repeated publish a duplicate the bus drops).
fn placed_event(
    order: &Order,
    trace: emporium_chassis::TraceContext,
) -> Result<OutboxEvent, CheckoutError> {
    use emporium_eventbus::events::{OrderLine, OrderPlacedV1, ShippingAddress, sources};
    let a = &order.address;
    let event = OrderPlacedV1 {
        order_id: order.id.to_string(),
        user_id: order.user_id.clone(),
        email: order.email.clone(),
        currency: order.currency.to_string(),
        items: order
            .items
            .iter()
            .map(|i| OrderLine {
                product_id: i.product_id.clone(),
                sku: i.sku.clone(),
                name: i.name.clone(),
                quantity: i.quantity,
                unit_price: i.unit_price,
            })
            .collect(),
        items_total: order.items_total.minor(),
        shipping_cost: order.shipping_cost.minor(),
        total: order.total.minor(),
        shipping_address: ShippingAddress {
            name: a.name.clone(),
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            postal_code: a.postal_code.clone(),
            country_code: a.country_code.clone(),
        },
        charge_id: order.charge_id.clone().unwrap_or_default(),
    };
    let envelope = emporium_eventbus::Envelope::for_event(sources::CHECKOUT, &event)
        .map_err(|e| CheckoutError::Corrupt(e.to_string()))?
        .with_trace(trace);
    Ok(OutboxEvent {
        id: envelope.id().to_string(),
        aggregate_id: order.id.to_string(),
        event_type: envelope.event_type().as_str().to_owned(),
        payload: String::from_utf8(envelope.to_json())
            .map_err(|e| CheckoutError::Corrupt(e.to_string()))?,
    })
}
