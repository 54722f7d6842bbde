//! Fines and payments use cases: charging a fine, paying one (idempotent,
//! through the payment provider for online payments) and waiving one. Each
//! commits its audit entry in the same transaction as the change, so money
//! never moves without its `fine.*` entry.

use carrel_core::statuses::FineReason;
use carrel_store::{
    Fine, NewFine, Payment, PaymentOutcome, PaymentRequest, Refusal, StoreError, WaiverRequest,
};
use serde_json::json;
use uuid::Uuid;

use super::{Actor, Channel};
use crate::circulation::payments::{Charge, PaymentProvider, ProviderError, Receipt};
use crate::limits::{self, Limit, RateLimited};
use crate::state::AppState;

/// How a payment is made (cash and card: staff and terminals only).
pub use carrel_core::statuses::PaymentMethod as Method;

/// A payment request, as a front door parsed it.
#[derive(Debug, Clone, Copy)]
pub struct PayInput<'a> {
    pub fine_id: Uuid,
    /// In cents, already checked to be positive and within the typo guard.
    pub amount_cents: i64,
    pub method: Method,
    /// What the provider's client-side flow produced (online payments only).
    pub payment_token: Option<&'a str>,
    /// The caller's idempotency key: a retry with the same key and request
    /// gets the first answer again.
    pub idempotency_key: &'a str,
    /// Staff (or a terminal) pay towards anyone's fine, at the desk too.
    pub staff: bool,
}

/// Why a payment was refused; nothing was recorded or charged (a charge
/// that could not be recorded is refunded).
#[derive(Debug, thiserror::Error)]
pub enum PayRefusal {
    #[error("patrons pay online; cash and card are recorded at the desk")]
    DeskMethodForPatron,
    #[error("online payments are not available; pay at the desk")]
    OnlinePaymentsDisabled,
    /// The `payment_token` is missing, malformed or not for this method.
    #[error("payment_token {0}")]
    PaymentToken(&'static str),
    /// The fine is paid or waived already: its balance is 0.
    #[error("the fine is settled: its balance is 0")]
    FineSettled,
    #[error("too many payments")]
    RateLimited(RateLimited),
    /// The provider refused the charge.
    #[error("the payment was declined; nothing was recorded")]
    Declined,
    #[error("the payment provider is unavailable; nothing was recorded")]
    ProviderUnavailable,
    /// Not found, the actor's own fine, over the balance, a reused key, or a
    /// storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pays (part of) a fine under an idempotency key, in one transaction with
/// its `fine.paid` entry. Online payments are charged through the provider
/// first (with a key derived from the caller, their key and the request, so
/// duplicates on several instances are charged once) and refunded if the
/// payment cannot be recorded. `render` makes the answer stored with the key
/// and replayed to a retry ([`PaymentOutcome::Replayed`]).
pub async fn pay(
    state: &AppState,
    actor: &Actor,
    input: PayInput<'_>,
    render: impl Fn(&Payment, &Fine) -> String,
) -> Result<PaymentOutcome, PayRefusal> {
    let amount = input.amount_cents;
    if !input.staff && input.method != Method::Online {
        return Err(PayRefusal::DeskMethodForPatron);
    }
    let provider = match input.method {
        Method::Online => Some(
            state
                .payments
                .clone()
                .ok_or(PayRefusal::OnlinePaymentsDisabled)?,
        ),
        Method::Cash | Method::Card => None,
    };
    let token = payment_token(input.method, input.payment_token)?;
    let request_hash = request_hash(state, actor.channel, &input, token);
    let key = input.idempotency_key;
    // Duplicates from this instance queue here, then replay below.
    let _serialised = state.key_locks.lock(actor.id, key).await;
    if let Some((hash, status, response)) = state.store.idempotent_response(actor.id, key).await? {
        if hash.as_slice() != request_hash {
            return Err(StoreError::Circulation(Refusal::IdempotencyKeyReused).into());
        }
        return Ok(PaymentOutcome::Replayed { status, response });
    }
    // The store checks these again atomically; checking first keeps the
    // provider from charging for a payment the store would refuse.
    let fine = state
        .store
        .find_fine(input.fine_id)
        .await?
        .filter(|f| input.staff || f.user_id == actor.id)
        .ok_or(StoreError::NotFound)?;
    carrel_core::decide::decide_payment(&carrel_core::decide::PaymentFacts {
        fine: fine.facts(),
        payer: actor.id,
        staff: input.staff,
        amount_cents: amount,
    })
    .map_err(|refusal| match refusal {
        Refusal::FineSettled => PayRefusal::FineSettled,
        other => StoreError::Circulation(other).into(),
    })?;
    // Terminals are trusted desk devices; people are limited per account.
    if actor.channel == Channel::Api {
        limits::enforce(state, Limit::Payments, &actor.id.to_string())
            .await
            .map_err(PayRefusal::RateLimited)?;
    }
    let receipt = match (&provider, token) {
        (Some(provider), Some(token)) => {
            let provider_key = hex(&state.secrets.mac(
                "payment-provider-key",
                format!("{}|{key}|{}", actor.id, hex(&request_hash)).as_bytes(),
            ));
            let charge = Charge {
                fine_id: fine.id,
                payer_id: fine.user_id,
                amount_cents: amount,
                currency: &state.config.currency,
                payment_token: token,
                idempotency_key: &provider_key,
            };
            Some(provider.charge(&charge).await.map_err(|e| match e {
                ProviderError::Declined => PayRefusal::Declined,
                ProviderError::Unavailable => PayRefusal::ProviderUnavailable,
            })?)
        }
        _ => None,
    };
    let charged = provider.as_deref().zip(receipt.as_ref());
    let request = PaymentRequest {
        fine_id: fine.id,
        caller: actor.id,
        staff: input.staff,
        amount_cents: amount,
        method: input.method,
        reference: receipt.as_ref().map(|r| r.reference.clone()),
        key,
        request_hash: &request_hash,
        now: state.clock.now(),
    };
    // A concurrent duplicate that recorded it first comes back as `Replayed`;
    // its charge carried the same provider key, so the money was taken once.
    Ok(record_payment(state, actor, &request, charged, render).await?)
}

/// The `payment_token` of an online payment (required), or its absence for a
/// desk payment.
fn payment_token(method: Method, token: Option<&str>) -> Result<Option<&str>, PayRefusal> {
    match (method, token) {
        (Method::Online, Some(t))
            if (1..=255).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(t))
        }
        (Method::Online, Some(_)) => Err(PayRefusal::PaymentToken(
            "must be 1 to 255 printable ASCII characters",
        )),
        (Method::Online, None) => Err(PayRefusal::PaymentToken("is required for online payments")),
        (_, Some(_)) => Err(PayRefusal::PaymentToken("is only for online payments")),
        (_, None) => Ok(None),
    }
}

/// What makes two requests under one key "the same". The descriptions are the
/// ones keys were stored with before this layer existed, per front door.
fn request_hash(
    state: &AppState,
    channel: Channel,
    input: &PayInput<'_>,
    token: Option<&str>,
) -> [u8; 32] {
    let (fine_id, amount, method) = (input.fine_id, input.amount_cents, input.method.as_str());
    let mut described = match channel {
        Channel::Api => format!("POST /fines/{fine_id}/payments|{amount}|{method}"),
        Channel::Sip2 => format!("SIP2 37|{fine_id}|{amount}|{method}"),
    };
    if let Some(token) = token {
        // A payment token is single-use: another token is another request.
        described.push('|');
        described.push_str(token);
    }
    state.secrets.mac("idempotency-key", described.as_bytes())
}

/// Records a payment and its `fine.paid` entry in one transaction; money
/// already taken by a provider (`charged`) is refunded if that fails.
async fn record_payment(
    state: &AppState,
    actor: &Actor,
    request: &PaymentRequest<'_>,
    charged: Option<(&dyn PaymentProvider, &Receipt)>,
    render: impl Fn(&Payment, &Fine) -> String,
) -> Result<PaymentOutcome, StoreError> {
    let outcome = state
        .store
        .pay_fine(request, render, |payment: &Payment, fine: &Fine| {
            vec![actor.event(
                state,
                "fine.paid",
                Some(fine.user_id),
                json!({"fine_id": fine.id, "payment_id": payment.id, "amount_cents": payment.amount_cents,
                    "method": payment.method, "balance_cents": fine.balance_cents()}),
            )]
        })
        .await;
    if outcome.is_err()
        && let Some((provider, receipt)) = charged
        && let Err(refund) = provider.refund(receipt).await
    {
        tracing::error!(error = %refund, fine_id = %request.fine_id, "a charge that could not be recorded was not refunded");
    }
    outcome
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a fine is charged by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualReason {
    Manual,
    Damage,
}

/// A fine charged by staff.
#[derive(Debug, Clone)]
pub struct ChargeInput {
    pub user_id: Uuid,
    pub amount_cents: i64,
    pub reason: ManualReason,
    /// Shown to the patron; already trimmed and checked.
    pub note: Option<String>,
}

/// Charges a manual or damage fine to a live patron, with its `fine.created`
/// entry in the same transaction.
pub async fn charge(
    state: &AppState,
    actor: &Actor,
    input: ChargeInput,
) -> Result<Fine, StoreError> {
    state
        .store
        .create_fine(
            &NewFine {
                user_id: input.user_id,
                amount_cents: input.amount_cents,
                reason: match input.reason {
                    ManualReason::Manual => FineReason::Manual,
                    ManualReason::Damage => FineReason::Damage,
                },
                note: input.note,
                actor: Some(actor.id),
                now: state.clock.now(),
            },
            |fine: &Fine| {
                vec![actor.event(
                    state,
                    "fine.created",
                    Some(fine.user_id),
                    json!({"fine_id": fine.id, "reason": fine.reason, "amount_cents": fine.amount_cents}),
                )]
            },
        )
        .await
}

/// A waiver, as a front door parsed it.
#[derive(Debug, Clone)]
pub struct WaiveInput {
    pub fine_id: Uuid,
    /// None waives the whole balance.
    pub amount_cents: Option<i64>,
    /// Why (kept with the waiver); already trimmed and checked.
    pub reason: String,
}

/// Waives (part of) an open fine's balance (staff; never their own), with its
/// `fine.waived` entry in the same transaction. Returns the updated fine.
pub async fn waive(state: &AppState, actor: &Actor, input: WaiveInput) -> Result<Fine, StoreError> {
    let reason = input.reason.clone();
    state
        .store
        .waive_fine(
            &WaiverRequest {
                fine_id: input.fine_id,
                amount_cents: input.amount_cents,
                reason: input.reason,
                actor: actor.id,
                now: state.clock.now(),
            },
            |fine: &Fine| {
                vec![actor.event(
                    state,
                    "fine.waived",
                    Some(fine.user_id),
                    json!({"fine_id": fine.id, "waived_cents": fine.waived_cents, "balance_cents": fine.balance_cents(), "reason": reason}),
                )]
            },
        )
        .await
}
