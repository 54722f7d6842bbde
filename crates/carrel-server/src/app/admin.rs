//! Administration use cases: branches, their opening calendars, and loan
//! policies. Each commits its audit entry in the same transaction as the
//! change. Who may call them (admins) is the front door's check.

use carrel_core::calendar::{OpeningCalendar, WEEKDAY_NAMES};
use std::collections::HashSet;

use carrel_core::circulation::LoanPolicy;
use carrel_core::rules::{Rule, validate_matrix};
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

/// The most rows a rule matrix may have.
pub const MAX_RULE_ROWS: usize = 2_000;

/// Why a rule matrix was not stored.
#[derive(Debug, thiserror::Error)]
pub enum RulesRefusal {
    /// The fields at fault (`data[i].field`), with why.
    #[error("invalid rule matrix")]
    Invalid(Vec<(String, String)>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replaces the whole rule matrix: every row must be well formed (see
/// `carrel_core::rules::validate_matrix`) and name only defined item types,
/// patron categories and branches; `rules.replaced` is audited with it.
pub async fn replace_rules(
    state: &AppState,
    actor: &Actor,
    rules: Vec<Rule>,
) -> Result<Vec<Rule>, RulesRefusal> {
    if rules.len() > MAX_RULE_ROWS {
        return Err(RulesRefusal::Invalid(vec![(
            "data".to_owned(),
            format!("must have at most {MAX_RULE_ROWS} rows"),
        )]));
    }
    let mut bad = validate_matrix(&rules).err().unwrap_or_default();
    bad.extend(undefined_references(state, &rules).await?);
    if !bad.is_empty() {
        return Err(RulesRefusal::Invalid(bad));
    }
    Ok(state
        .store
        .replace_rules(
            &rules,
            Some(actor.id),
            state.clock.now(),
            |stored: &Vec<Rule>| {
                vec![actor.event(state, "rules.replaced", None, json!({"rows": stored.len()}))]
            },
        )
        .await?)
}

/// The rows' branches, item types and patron categories that are not defined.
async fn undefined_references(
    state: &AppState,
    rules: &[Rule],
) -> Result<Vec<(String, String)>, StoreError> {
    let types: HashSet<String> = state
        .store
        .list_item_types()
        .await?
        .into_iter()
        .map(|t| t.code)
        .collect();
    let categories: HashSet<String> = state
        .store
        .list_patron_categories()
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    let mut branches: HashSet<Uuid> = HashSet::new();
    for id in rules.iter().filter_map(|r| r.branch_id) {
        if !branches.contains(&id) && state.store.find_branch(id).await?.is_some() {
            branches.insert(id);
        }
    }
    let mut bad = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if rule.branch_id.is_some_and(|b| !branches.contains(&b)) {
            bad.push((
                format!("data[{i}].branch_id"),
                "must be a branch".to_owned(),
            ));
        }
        if rule.item_type.as_ref().is_some_and(|t| !types.contains(t)) {
            bad.push((
                format!("data[{i}].item_type"),
                "must be a defined item type".to_owned(),
            ));
        }
        if rule
            .patron_category
            .as_ref()
            .is_some_and(|c| !categories.contains(c))
        {
            bad.push((
                format!("data[{i}].patron_category"),
                "must be a defined patron category".to_owned(),
            ));
        }
    }
    Ok(bad)
}
