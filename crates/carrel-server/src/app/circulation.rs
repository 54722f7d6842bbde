//! Circulation use cases: checkout, return, receipt of a copy in transit,
//! renewal and loss, each with its audit entries committed in the same
//! transaction as the change.

use carrel_core::statuses::{CopyStatus, HoldStatus};
use carrel_store::{CheckoutOutcome, Fine, Loan, ReceiveOutcome, ReturnOutcome, StoreError};
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use crate::state::AppState;

/// The patron a desk names: by id or by card number (as typed).
#[derive(Debug, Clone, Copy)]
pub enum PatronRef<'a> {
    Id(Uuid),
    Card(&'a str),
}

/// The id of the live patron `patron` names; an unknown or malformed card is
/// [`StoreError::NotFound`] (like an unknown id).
pub async fn resolve_patron(state: &AppState, patron: PatronRef<'_>) -> Result<Uuid, StoreError> {
    match patron {
        PatronRef::Id(id) => Ok(id),
        PatronRef::Card(card) => {
            let card = carrel_core::cards::normalize_card_number(card)
                .map_err(|_| StoreError::NotFound)?;
            state
                .store
                .find_user_by_card(&card)
                .await?
                .map(|u| u.id)
                .ok_or(StoreError::NotFound)
        }
    }
}

/// A copy barcode as typed or scanned: trimmed, 1–64 characters (None
/// otherwise). Every desk (the API's checkout and return, the web desk) reads
/// barcodes through it.
pub fn scanned_barcode(raw: &str) -> Option<&str> {
    let trimmed = raw.trim();
    (!trimmed.is_empty() && trimmed.chars().count() <= 64).then_some(trimmed)
}

/// The checkout of `barcode` to `patron` at `now`, lent by `branch_id`, with
/// the configured global limits. Real checkout and the rule simulation build
/// their request here, so both decide on the same limits.
pub fn checkout_request<'a>(
    state: &AppState,
    actor: Option<Uuid>,
    barcode: &'a str,
    patron: Uuid,
    branch_id: Option<Uuid>,
    now: time::OffsetDateTime,
) -> carrel_store::Checkout<'a> {
    carrel_store::Checkout {
        copy_barcode: barcode,
        user_id: patron,
        actor,
        now,
        branch_id,
        max_active_loans: state.config.max_active_loans,
        block_threshold_cents: state.config.fine_block_threshold_cents,
    }
}

/// What checking `barcode` out to `patron` would do (the rule, the due
/// instant, every refusal), changing nothing. `at` defaults to now.
#[tracing::instrument(skip_all, fields(barcode = %barcode, patron = %patron, branch_id = ?branch_id))]
pub async fn simulate_checkout(
    state: &AppState,
    barcode: &str,
    patron: Uuid,
    branch_id: Option<Uuid>,
    at: Option<time::OffsetDateTime>,
) -> Result<carrel_store::Simulation, StoreError> {
    let now = at.unwrap_or_else(|| state.clock.now());
    state
        .store
        .simulate_checkout(&checkout_request(
            state, None, barcode, patron, branch_id, now,
        ))
        .await
}

/// Checks the copy with `barcode` out to `patron` at the desk of `branch`
/// (None: the copy's home branch). The rules are the store's.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, barcode = %barcode, patron = %patron, branch = ?branch))]
pub async fn checkout(
    state: &AppState,
    actor: &Actor,
    barcode: &str,
    patron: Uuid,
    branch: Option<Uuid>,
) -> Result<CheckoutOutcome, StoreError> {
    state
        .store
        .checkout(
            &checkout_request(state, Some(actor.id), barcode, patron, branch, state.clock.now()),
            |outcome: &CheckoutOutcome| {
                let loan = &outcome.loan;
                let mut events = vec![actor.event(
                    state,
                    "loan.checked_out",
                    Some(patron),
                    json!({"loan_id": loan.id, "copy_id": loan.copy_id, "item_id": loan.item_id, "barcode": barcode,
                        "due_at": carrel_core::clock::rfc3339(loan.due_at), "due_date": loan.due_date.map(carrel_core::calendar::format_date),
                        "branch_id": loan.branch_id, "hold_id": outcome.fulfilled_hold}),
                )];
                if let Some(hold_id) = outcome.fulfilled_hold {
                    events.push(actor.event(
                        state,
                        "hold.fulfilled",
                        Some(patron),
                        json!({"hold_id": hold_id, "loan_id": loan.id}),
                    ));
                }
                events
            },
        )
        .await
}

/// What a return scan at a desk did.
#[derive(Debug)]
pub enum ScanIn {
    /// The copy was on loan: its loan is closed (see [`return_copy`]).
    Returned(Box<ReturnOutcome>),
    /// The copy was in transit to this branch: the move is complete (see
    /// [`receive`]).
    Received(Box<ReceiveOutcome>),
}

/// A return scan of `barcode` at the desk of `branch` (None: the copy's
/// home), as every front door does it (the API's `POST /loans/return`, a SIP2
/// checkin): a copy in transit is received here, any other is returned.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, barcode = %barcode, branch = ?branch))]
pub async fn scan_in(
    state: &AppState,
    actor: &Actor,
    barcode: &str,
    branch: Option<Uuid>,
) -> Result<ScanIn, StoreError> {
    if let Some(copy) = state.store.find_copy_by_barcode(barcode).await?
        && copy.status == CopyStatus::InTransit
    {
        let here = branch.unwrap_or(copy.branch_id);
        let received = receive(state, actor, copy.id, here).await?;
        return Ok(ScanIn::Received(Box::new(received)));
    }
    let returned = return_copy(state, actor, barcode, branch).await?;
    Ok(ScanIn::Returned(Box::new(returned)))
}

/// Returns the copy with `barcode` at the desk of `branch` (None: the copy's
/// home): closes its loan, charges any overdue fine, passes the copy to the
/// first waiting hold (and mails that patron) or sends it in transit to where
/// it must go (`transit_to_branch_id` of the outcome).
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, barcode = %barcode, branch = ?branch))]
pub async fn return_copy(
    state: &AppState,
    actor: &Actor,
    barcode: &str,
    branch: Option<Uuid>,
) -> Result<ReturnOutcome, StoreError> {
    // A hold this return makes ready has its mail enqueued in the same
    // transaction (see the store's `fill_waiting_holds`).
    state
        .store
        .return_copy(
            barcode,
            branch,
            Some(actor.id),
            state.clock.now(),
            state.config.hold_pickup_days,
            |outcome: &ReturnOutcome| {
                let loan = &outcome.loan;
                let mut events = vec![actor.event(
                    state,
                    "loan.returned",
                    loan.user_id,
                    json!({"loan_id": loan.id, "copy_id": loan.copy_id, "barcode": barcode, "branch_id": outcome.branch_id,
                        "fine_id": outcome.fine.as_ref().map(|f| f.id), "hold_id": outcome.hold.as_ref().map(|h| h.id)}),
                )];
                if let Some(fine) = &outcome.fine {
                    events.push(fine_created_event(state, actor, fine));
                }
                if let Some(to) = outcome.transit_to_branch_id {
                    events.push(actor.event(
                        state,
                        "copy.transit_started",
                        None,
                        json!({"copy_id": loan.copy_id, "barcode": barcode, "from_branch_id": outcome.branch_id,
                            "to_branch_id": to, "hold_id": outcome.hold.as_ref().map(|h| h.id)}),
                    ));
                }
                if let Some(hold) = outcome.hold.as_ref().filter(|h| h.status == HoldStatus::Ready) {
                    events.push(actor.event(
                        state,
                        "hold.ready",
                        hold.user_id,
                        json!({"hold_id": hold.id, "copy_id": hold.copy_id}),
                    ));
                }
                events
            },
        )
        .await
}

/// Scans in a copy at `branch`, where it was travelling to: the hold it was
/// sent for becomes ready there (pickup days start now), or it is shelved.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, copy_id = %copy_id, branch = %branch))]
pub async fn receive(
    state: &AppState,
    actor: &Actor,
    copy_id: Uuid,
    branch: Uuid,
) -> Result<ReceiveOutcome, StoreError> {
    state
        .store
        .receive_copy(
            copy_id,
            branch,
            Some(actor.id),
            state.clock.now(),
            state.config.hold_pickup_days,
            |outcome: &ReceiveOutcome| {
                let mut events = vec![actor.event(
                    state,
                    "copy.received",
                    None,
                    json!({"copy_id": outcome.copy.id, "barcode": outcome.copy.barcode, "branch_id": outcome.branch_id,
                        "status": outcome.copy.status, "hold_id": outcome.hold.as_ref().map(|h| h.id)}),
                )];
                if let Some(to) = outcome.copy.transit_to_branch_id {
                    events.push(actor.event(
                        state,
                        "copy.transit_started",
                        None,
                        json!({"copy_id": outcome.copy.id, "barcode": outcome.copy.barcode,
                            "from_branch_id": outcome.branch_id, "to_branch_id": to}),
                    ));
                }
                if let Some(hold) = &outcome.hold {
                    events.push(actor.event(
                        state,
                        "hold.ready",
                        hold.user_id,
                        json!({"hold_id": hold.id, "copy_id": hold.copy_id, "branch_id": hold.pickup_branch_id}),
                    ));
                }
                events
            },
        )
        .await
}

/// Renews a loan. `borrower`, when given, must be the loan's patron. Renewing
/// an overdue loan charges the lateness so far (the fine is returned).
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, loan_id = %loan_id, borrower = ?borrower))]
pub async fn renew(
    state: &AppState,
    actor: &Actor,
    loan_id: Uuid,
    borrower: Option<Uuid>,
) -> Result<(Loan, Option<Fine>), StoreError> {
    state
        .store
        .renew_loan(
            loan_id,
            borrower,
            Some(actor.id),
            state.clock.now(),
            state.config.fine_block_threshold_cents,
            |(loan, fine): &(Loan, Option<Fine>)| {
                let mut events = vec![actor.event(
                    state,
                    "loan.renewed",
                    loan.user_id,
                    json!({"loan_id": loan.id, "renewals": loan.renewals, "due_at": carrel_core::clock::rfc3339(loan.due_at)}),
                )];
                events.extend(fine.iter().map(|fine| fine_created_event(state, actor, fine)));
                events
            },
        )
        .await
}

/// Declares the copy of an open loan lost (staff): the loan and the copy
/// become `lost` and the replacement cost becomes a fine (returned).
pub async fn mark_lost(
    state: &AppState,
    actor: &Actor,
    loan_id: Uuid,
) -> Result<(Loan, Option<Fine>), StoreError> {
    state
        .store
        .mark_lost(
            loan_id,
            Some(actor.id),
            state.clock.now(),
            |(loan, fine): &(Loan, Option<Fine>)| {
                let mut events = vec![actor.event(
                    state,
                    "loan.lost",
                    loan.user_id,
                    json!({"loan_id": loan.id, "copy_id": loan.copy_id, "fine_id": fine.as_ref().map(|f| f.id)}),
                )];
                events.extend(fine.iter().map(|fine| fine_created_event(state, actor, fine)));
                events
            },
        )
        .await
}

/// The audit entry of a fine that circulation created (overdue or replacement).
pub fn fine_created_event(
    state: &AppState,
    actor: &Actor,
    fine: &Fine,
) -> carrel_store::NewAuditEvent {
    actor.event(
        state,
        "fine.created",
        Some(fine.user_id),
        json!({"fine_id": fine.id, "loan_id": fine.loan_id, "reason": fine.reason, "amount_cents": fine.amount_cents}),
    )
}
