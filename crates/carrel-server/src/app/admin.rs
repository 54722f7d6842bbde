//! Administration use cases: branches, their opening calendars, loan
//! policies, the circulation-rule matrix, item types and patron categories. Each commits its audit entry in the same transaction as the
//! change. Who may call them (admins) is the front door's check.

use std::collections::HashSet;

use carrel_core::calendar::{OpeningCalendar, WEEKDAY_NAMES, Zone};
use carrel_core::circulation::LoanPolicy;
use carrel_core::rules::{MAX_LIMIT, Rule, validate_matrix};
use carrel_store::{
    Branch, BranchChanges, CategoryChanges, ItemType, NewBranch, PatronCategory, PolicyRow,
    StoreError, StoredCalendar,
};
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

/// A new branch's fields, checked: the code (1–16 of `[A-Za-z0-9_-]`), the
/// name (1–200 characters), an IANA zone (its canonical name; none: the
/// library's) and an address (at most 1000 characters). Every problem is
/// named by its field.
pub fn check_new_branch(
    code: String,
    name: &str,
    timezone: Option<&str>,
    address: Option<&str>,
) -> Result<NewBranch, Vec<(String, String)>> {
    let mut bad = Vec::new();
    check_branch_code(&code, &mut bad);
    let name = check_name(name, &mut bad);
    let timezone = check_timezone(timezone, &mut bad);
    let address = check_address(address, &mut bad);
    if bad.is_empty() {
        Ok(NewBranch {
            code,
            name,
            timezone,
            address,
        })
    } else {
        Err(bad)
    }
}

/// Changes to a branch, checked as [`check_new_branch`] checks its fields;
/// `Some(None)` clears the zone (the library's again) or the address.
pub fn check_branch_changes(
    code: Option<String>,
    name: Option<&str>,
    timezone: Option<Option<&str>>,
    address: Option<Option<&str>>,
) -> Result<BranchChanges, Vec<(String, String)>> {
    let mut bad = Vec::new();
    if let Some(code) = &code {
        check_branch_code(code, &mut bad);
    }
    let name = name.map(|n| check_name(n, &mut bad));
    let timezone = timezone.map(|z| check_timezone(z, &mut bad));
    let address = address.map(|a| check_address(a, &mut bad));
    if bad.is_empty() {
        Ok(BranchChanges {
            code,
            name,
            timezone,
            address,
        })
    } else {
        Err(bad)
    }
}

fn check_branch_code(code: &str, bad: &mut Vec<(String, String)>) {
    let ok = (1..=16).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        bad.push((
            "code".into(),
            "must be 1 to 16 of A-Z, a-z, 0-9, _ and -".into(),
        ));
    }
}

fn check_name(name: &str, bad: &mut Vec<(String, String)>) -> String {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bad.push(("name".into(), "must be 1 to 200 characters".into()));
    }
    name.to_owned()
}

/// The zone's canonical name, or a field problem.
fn check_timezone(zone: Option<&str>, bad: &mut Vec<(String, String)>) -> Option<String> {
    let zone = zone?;
    match Zone::named(zone) {
        Ok(zone) => Some(zone.name().to_owned()),
        Err(_) => {
            bad.push(("timezone".into(), "is not an IANA time zone name".into()));
            None
        }
    }
}

fn check_address(address: Option<&str>, bad: &mut Vec<(String, String)>) -> Option<String> {
    let address = address.map(str::trim).filter(|a| !a.is_empty())?;
    if address.chars().count() > 1000 {
        bad.push(("address".into(), "must be at most 1000 characters".into()));
    }
    Some(address.to_owned())
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

/// Why an administration change was refused: fields out of range (each named
/// as the API names it, with why), or the store's refusal (a taken code, a
/// type still in use, not found).
#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    #[error("invalid fields")]
    Invalid(Vec<(String, String)>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The most rows a rule matrix may have.
pub const MAX_RULE_ROWS: usize = 2_000;

/// Replaces the whole circulation-rule matrix in one transaction, after
/// checking it: every row's values in range, no two rows with the same key, a
/// default row (all three key columns "any"), and every branch, patron category
/// and item type it names defined. Refusals name `data[i].field`, `data[i]`
/// or `data`. Loans already out keep the rule frozen at their checkout.
pub async fn replace_rules(
    state: &AppState,
    actor: &Actor,
    rules: Vec<Rule>,
) -> Result<Vec<Rule>, AdminRefusal> {
    if rules.len() > MAX_RULE_ROWS {
        return Err(AdminRefusal::Invalid(vec![(
            "data".to_owned(),
            format!("must have at most {MAX_RULE_ROWS} rows"),
        )]));
    }
    let mut bad = validate_matrix(&rules).err().unwrap_or_default();
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
    if !bad.is_empty() {
        return Err(AdminRefusal::Invalid(bad));
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

/// A display name: trimmed, 1–100 characters.
pub fn display_name(raw: &str) -> Result<String, (String, String)> {
    let name = raw.trim();
    if (1..=100).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(("name".to_owned(), "must be 1-100 characters".to_owned()))
    }
}

fn check_code(code: &str, bad: &mut Vec<(String, String)>) {
    if !carrel_core::rules::is_valid_code(code) {
        bad.push(("code".to_owned(), carrel_core::rules::CODE_RULE.to_owned()));
    }
}

/// Defines an item type; a taken code is [`StoreError::Conflict`].
pub async fn create_item_type(
    state: &AppState,
    actor: &Actor,
    code: String,
    name: &str,
) -> Result<ItemType, AdminRefusal> {
    let mut bad = Vec::new();
    check_code(&code, &mut bad);
    let name = display_name(name).map_err(|e| bad.push(e)).ok();
    let (true, Some(name)) = (bad.is_empty(), name) else {
        return Err(AdminRefusal::Invalid(bad));
    };
    Ok(state
        .store
        .create_item_type(&ItemType { code, name }, |t: &ItemType| {
            vec![actor.event(
                state,
                "item_type.created",
                None,
                json!({"code": t.code, "name": t.name}),
            )]
        })
        .await?)
}

/// Renames an item type (its code never changes).
pub async fn rename_item_type(
    state: &AppState,
    actor: &Actor,
    code: &str,
    name: &str,
) -> Result<ItemType, AdminRefusal> {
    let name = display_name(name).map_err(|e| AdminRefusal::Invalid(vec![e]))?;
    Ok(state
        .store
        .rename_item_type(code, &name, |t: &ItemType| {
            vec![actor.event(
                state,
                "item_type.updated",
                None,
                json!({"code": t.code, "name": t.name}),
            )]
        })
        .await?)
}

/// Deletes an item type; refused ([`StoreError::Refused`]) while items
/// (deleted ones included) or circulation rules name it.
pub async fn delete_item_type(
    state: &AppState,
    actor: &Actor,
    code: &str,
) -> Result<(), AdminRefusal> {
    Ok(state
        .store
        .delete_item_type(code, |t: &ItemType| {
            vec![actor.event(state, "item_type.deleted", None, json!({"code": t.code}))]
        })
        .await?)
}

fn check_limit(field: &str, value: Option<u32>, bad: &mut Vec<(String, String)>) -> Option<i32> {
    match value {
        Some(n) if n <= MAX_LIMIT => i32::try_from(n).ok(),
        Some(_) => {
            bad.push((
                field.to_owned(),
                format!("must be between 0 and {MAX_LIMIT}"),
            ));
            None
        }
        None => None,
    }
}

/// A patron category to define.
#[derive(Debug)]
pub struct NewCategory {
    pub code: String,
    pub name: String,
    pub max_active_loans: Option<u32>,
    pub max_active_holds: Option<u32>,
}

/// Defines a patron category; a taken code is [`StoreError::Conflict`].
pub async fn create_category(
    state: &AppState,
    actor: &Actor,
    new: NewCategory,
) -> Result<PatronCategory, AdminRefusal> {
    let mut bad = Vec::new();
    check_code(&new.code, &mut bad);
    let name = display_name(&new.name).map_err(|e| bad.push(e)).ok();
    let max_active_loans = check_limit("max_active_loans", new.max_active_loans, &mut bad);
    let max_active_holds = check_limit("max_active_holds", new.max_active_holds, &mut bad);
    let (true, Some(name)) = (bad.is_empty(), name) else {
        return Err(AdminRefusal::Invalid(bad));
    };
    let category = PatronCategory {
        code: new.code,
        name,
        max_active_loans,
        max_active_holds,
    };
    Ok(state
        .store
        .create_patron_category(&category, |c: &PatronCategory| {
            vec![actor.event(state, "patron_category.created", None,
                json!({"code": c.code, "max_active_loans": c.max_active_loans, "max_active_holds": c.max_active_holds}))]
        })
        .await?)
}

/// What may change on a patron category (`Some(None)` removes a limit).
#[derive(Debug, Default)]
pub struct CategoryUpdate {
    pub name: Option<String>,
    pub max_active_loans: Option<Option<u32>>,
    pub max_active_holds: Option<Option<u32>>,
}

/// Changes a patron category's name or limits.
pub async fn update_category(
    state: &AppState,
    actor: &Actor,
    code: &str,
    update: CategoryUpdate,
) -> Result<PatronCategory, AdminRefusal> {
    let mut bad = Vec::new();
    let name = update
        .name
        .as_deref()
        .map(display_name)
        .transpose()
        .map_err(|e| bad.push(e))
        .ok()
        .flatten();
    let mut changes = CategoryChanges {
        name,
        ..Default::default()
    };
    if let Some(limit) = update.max_active_loans {
        check_limit("max_active_loans", limit, &mut bad);
        changes.max_active_loans = Some(limit);
    }
    if let Some(limit) = update.max_active_holds {
        check_limit("max_active_holds", limit, &mut bad);
        changes.max_active_holds = Some(limit);
    }
    if !bad.is_empty() {
        return Err(AdminRefusal::Invalid(bad));
    }
    Ok(state
        .store
        .update_patron_category(code, &changes, |c: &PatronCategory| {
            vec![actor.event(state, "patron_category.updated", None,
                json!({"code": c.code, "max_active_loans": c.max_active_loans, "max_active_holds": c.max_active_holds}))]
        })
        .await?)
}

/// Deletes a patron category; refused ([`StoreError::Refused`]) for the
/// default category and while users (deleted ones included) or rules name it.
pub async fn delete_category(
    state: &AppState,
    actor: &Actor,
    code: &str,
) -> Result<(), AdminRefusal> {
    Ok(state
        .store
        .delete_patron_category(code, |c: &PatronCategory| {
            vec![actor.event(
                state,
                "patron_category.deleted",
                None,
                json!({"code": c.code}),
            )]
        })
        .await?)
}
