//! Administration use cases: branches, their opening calendars, and loan
//! policies. Each commits its audit entry in the same transaction as the
//! change. Who may call them (admins) is the front door's check.

use carrel_core::calendar::{OpeningCalendar, WEEKDAY_NAMES};
use carrel_core::circulation::LoanPolicy;
use carrel_store::{Branch, BranchChanges, NewBranch, PolicyRow, StoreError, StoredCalendar};
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use crate::state::AppState;

/// Creates a branch (its fields already validated); a taken code is
/// [`StoreError::Conflict`].
pub async fn create_branch(
    state: &AppState,
    actor: &Actor,
    branch: &NewBranch,
) -> Result<Branch, StoreError> {
    state
        .store
        .create_branch(branch, state.clock.now(), |branch: &Branch| {
            branch_event(state, actor, "branch.created", branch)
        })
        .await
}

/// Changes a branch (its fields already validated). Loans already made keep
/// their due dates.
pub async fn update_branch(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    changes: &BranchChanges,
) -> Result<Branch, StoreError> {
    state
        .store
        .update_branch(id, changes, state.clock.now(), |branch: &Branch| {
            branch_event(state, actor, "branch.updated", branch)
        })
        .await
}

fn branch_event(
    state: &AppState,
    actor: &Actor,
    event_type: &'static str,
    branch: &Branch,
) -> Vec<carrel_store::NewAuditEvent> {
    vec![actor.event(
        state,
        event_type,
        None,
        json!({"branch_id": branch.id, "code": branch.code, "timezone": branch.timezone}),
    )]
}

/// Replaces a branch's opening calendar.
pub async fn set_calendar(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    calendar: &OpeningCalendar,
) -> Result<StoredCalendar, StoreError> {
    let open_weekdays: Vec<&str> = WEEKDAY_NAMES
        .iter()
        .enumerate()
        .filter(|(n, _)| !calendar.weekly()[*n].is_empty())
        .map(|(_, d)| *d)
        .collect();
    let details = json!({"branch_id": id, "closed_dates": calendar.closed_dates().count(),
        "open_weekdays": open_weekdays});
    state
        .store
        .set_branch_calendar(id, calendar, state.clock.now(), |_: &Uuid| {
            vec![actor.event(state, "branch.calendar_updated", None, details)]
        })
        .await
}

/// Why a policy was not replaced.
#[derive(Debug, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("unknown item type")]
    UnknownItemType,
    /// The fields that are out of range, with why.
    #[error("invalid policy")]
    Invalid(Vec<(&'static str, &'static str)>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replaces the loan policy of a defined item type. Loans already out keep
/// theirs.
pub async fn put_policy(
    state: &AppState,
    actor: &Actor,
    item_type: &str,
    policy: &LoanPolicy,
) -> Result<PolicyRow, PolicyRefusal> {
    if !state.store.item_type_exists(item_type).await? {
        return Err(PolicyRefusal::UnknownItemType);
    }
    policy.validate().map_err(PolicyRefusal::Invalid)?;
    let details = json!({"item_type": item_type, "loan_days": policy.loan_days, "max_renewals": policy.max_renewals,
        "daily_fine_cents": policy.daily_fine_cents, "max_fine_cents": policy.max_fine_cents,
        "grace_days": policy.grace_days, "replacement_cost_cents": policy.replacement_cost_cents});
    Ok(state
        .store
        .put_policy(
            item_type,
            policy,
            Some(actor.id),
            state.clock.now(),
            |_: &PolicyRow| vec![actor.event(state, "policy.updated", None, details)],
        )
        .await?)
}
