//! Hold use cases: placing and cancelling, each with its audit entry in the
//! same transaction. The JSON API's
//! `/holds` handlers and the web pages call these, so both apply the same
//! rules (the store's) and leave the same audit trail.

use carrel_store::{Hold, PlaceHold, StoreError};
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use crate::state::AppState;

/// Places a hold on `item_id` for `patron` (who may be the actor), picked up
/// at `pickup` (None: the patron's home branch, else MAIN). Ready at once when
/// a copy is on the shelf. Who may place a hold for whom is the caller's check.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, item_id = %item_id, patron = %patron, pickup = ?pickup))]
pub async fn place(
    state: &AppState,
    actor: &Actor,
    item_id: Uuid,
    patron: Uuid,
    pickup: Option<Uuid>,
) -> Result<Hold, StoreError> {
    state
        .store
        .place_hold(
            &PlaceHold {
                item_id,
                user_id: patron,
                actor: Some(actor.id),
                pickup_branch_id: pickup,
                now: state.clock.now(),
                pickup_days: state.config.hold_pickup_days,
                max_active_holds: state.config.max_active_holds,
                block_threshold_cents: state.config.fine_block_threshold_cents,
            },
            |hold: &Hold| {
                vec![actor.event(
                    state,
                    "hold.placed",
                    Some(patron),
                    json!({"hold_id": hold.id, "item_id": hold.item_id, "status": hold.status}),
                )]
            },
        )
        .await
}

/// Cancels an open hold (the caller checked it may see it). Holds behind it
/// move up; a copy on the hold shelf goes to the next in line (their mail is
/// enqueued with the cancellation).
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, hold_id = %hold.id))]
pub async fn cancel(state: &AppState, actor: &Actor, hold: &Hold) -> Result<(), StoreError> {
    state
        .store
        .cancel_hold(
            hold.id,
            Some(actor.id),
            state.clock.now(),
            state.config.hold_pickup_days,
            |_: &Vec<Uuid>| {
                vec![actor.event(
                    state,
                    "hold.cancelled",
                    hold.user_id,
                    json!({"hold_id": hold.id, "item_id": hold.item_id}),
                )]
            },
        )
        .await?;
    Ok(())
}

/// Why a pickup branch change was refused (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum PickupRefusal {
    /// No such hold, or one the actor may not see (someone else's, for a
    /// patron): the same answer, so ids of others' holds reveal nothing.
    #[error("not found")]
    HoldNotFound,
    /// The branch does not exist (or was deleted).
    #[error("no such branch")]
    UnknownBranch,
    /// Not waiting any more ([`carrel_store::Refusal::HoldNotWaiting`]),
    /// holds not allowed at that branch, or a storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Moves a waiting hold's pickup to `branch`: its holder, or a librarian
/// (`staff`) for anyone. The store refuses a hold that is no longer waiting
/// (a ready hold's copy is on a hold shelf already) and a branch whose rules
/// do not allow holds; `hold.pickup_changed` is committed with the change.
/// The web account page calls this; the JSON API has no such route (the
/// contract has none).
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, hold_id = %hold_id, branch = %branch))]
pub async fn change_pickup(
    state: &AppState,
    actor: &Actor,
    staff: bool,
    hold_id: Uuid,
    branch: Uuid,
) -> Result<Hold, PickupRefusal> {
    let hold = state
        .store
        .find_hold(hold_id)
        .await?
        .filter(|h| staff || h.user_id == Some(actor.id))
        .ok_or(PickupRefusal::HoldNotFound)?;
    if state.store.find_branch(branch).await?.is_none() {
        return Err(PickupRefusal::UnknownBranch);
    }
    let changed = state
        .store
        .change_hold_pickup(
            hold.id,
            branch,
            Some(actor.id),
            state.clock.now(),
            |before: &Hold| {
                vec![actor.event(
                    state,
                    "hold.pickup_changed",
                    before.user_id,
                    json!({"hold_id": before.id, "item_id": before.item_id,
                        "from": before.pickup_branch_id, "to": branch}),
                )]
            },
        )
        .await
        .map_err(|error| match error {
            StoreError::NotFound => PickupRefusal::HoldNotFound,
            other => PickupRefusal::Store(other),
        })?;
    Ok(changed)
}
