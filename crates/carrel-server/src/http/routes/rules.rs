//! `/api/v1/circulation-rules`: the rule matrix (read: librarian; write:
//! admin, the whole matrix at once), which row applies to a case and why, and
//! a dry run of checkout.

use axum::extract::State;
use carrel_core::circulation::LoanPolicy;
use carrel_core::rules::{Rule, RuleKey};
use carrel_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::Actor;
use crate::app::admin::{self, RulesRefusal};
use crate::app::circulation::{self, PatronRef};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody, ErrorCode};
use crate::http::extract::{Json, Query};
use crate::http::principal::{RequireAdmin, RequireLibrarian};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, replace_rules))
        .routes(routes!(resolve_rule))
        .routes(routes!(simulate_checkout))
}

/// One row of the matrix. A null key column (`branch_id`, `patron_category`,
/// `item_type`) means "any".
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleView {
    /// A branch id, or null for any branch.
    #[serde(default)]
    pub branch_id: Option<Uuid>,
    /// A patron category code, or null for any category.
    #[serde(default)]
    pub patron_category: Option<String>,
    /// An item type code, or null for any type.
    #[serde(default)]
    pub item_type: Option<String>,
    /// 1–365.
    pub loan_days: u32,
    /// 0–50.
    pub max_renewals: u32,
    /// 0–10000000.
    pub daily_fine_cents: i64,
    /// Cap on the overdue fine of one loan, 0–10000000.
    pub max_fine_cents: i64,
    /// 0–365.
    pub grace_days: u32,
    /// 0–10000000.
    pub replacement_cost_cents: i64,
    /// At most this many open loans of the checkout's item type per patron
    /// (0–10000); null: no per-type limit.
    #[serde(default)]
    pub max_loans_of_type: Option<u32>,
    /// Whether holds may be placed (default true).
    #[serde(default = "yes")]
    pub holds_allowed: bool,
}

fn yes() -> bool {
    true
}

impl From<Rule> for RuleView {
    fn from(r: Rule) -> Self {
        Self {
            branch_id: r.branch_id,
            patron_category: r.patron_category,
            item_type: r.item_type,
            loan_days: r.policy.loan_days,
            max_renewals: r.policy.max_renewals,
            daily_fine_cents: r.policy.daily_fine_cents,
            max_fine_cents: r.policy.max_fine_cents,
            grace_days: r.policy.grace_days,
            replacement_cost_cents: r.policy.replacement_cost_cents,
            max_loans_of_type: r.max_loans_of_type,
            holds_allowed: r.holds_allowed,
        }
    }
}

impl From<RuleView> for Rule {
    fn from(v: RuleView) -> Self {
        Rule {
            branch_id: v.branch_id,
            patron_category: v.patron_category,
            item_type: v.item_type,
            policy: LoanPolicy {
                loan_days: v.loan_days,
                max_renewals: v.max_renewals,
                daily_fine_cents: v.daily_fine_cents,
                max_fine_cents: v.max_fine_cents,
                grace_days: v.grace_days,
                replacement_cost_cents: v.replacement_cost_cents,
            },
            max_loans_of_type: v.max_loans_of_type,
            holds_allowed: v.holds_allowed,
        }
    }
}

/// The whole matrix, most specific rows first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleMatrix {
    pub data: Vec<RuleView>,
}

/// The matrix, most specific rows first (librarian).
#[utoipa::path(get, path = "/circulation-rules", tag = "rules", security(("bearer" = [])),
    responses((status = 200, body = RuleMatrix), (status = 403, body = ErrorBody)))]
async fn list_rules(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
) -> Result<axum::Json<RuleMatrix>, ApiError> {
    let rules = state.store.list_rules().await?;
    Ok(axum::Json(RuleMatrix {
        data: rules.into_iter().map(Into::into).collect(),
    }))
}

/// Replaces the whole matrix in one transaction (admin) and answers with the
/// matrix as `GET` shows it. Refused with 422 (`details.fields` naming
/// `data[i].field`, `data[i]` or `data`) for a bad value, an unknown branch,
/// category or type, two rows with the same key, or no default row (all three key
/// columns null). Loans already out keep the rule frozen at their checkout.
#[utoipa::path(put, path = "/circulation-rules", tag = "rules", security(("bearer" = [])), request_body = RuleMatrix,
    responses((status = 200, body = RuleMatrix), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn replace_rules(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(admin): RequireAdmin,
    Json(req): Json<RuleMatrix>,
) -> Result<axum::Json<RuleMatrix>, ApiError> {
    let rules: Vec<Rule> = req.data.into_iter().map(Into::into).collect();
    let actor = Actor::api(admin.user_id, &client);
    let stored = admin::replace_rules(&state, &actor, rules).await?;
    Ok(axum::Json(RuleMatrix {
        data: stored.into_iter().map(Into::into).collect(),
    }))
}

impl From<RulesRefusal> for ApiError {
    fn from(refusal: RulesRefusal) -> Self {
        match refusal {
            RulesRefusal::Invalid(fields) => ApiError::invalid_fields(fields),
            RulesRefusal::Store(error) => error.into(),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResolveParams {
    /// The lending branch; absent: rows for any branch only.
    pub branch_id: Option<Uuid>,
    /// A defined patron category code; absent: rows for any category only.
    pub patron_category: Option<String>,
    /// A defined item type code; absent: rows for any type only.
    pub item_type: Option<String>,
}

/// The rule in force for a case, and which level of the matrix matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resolution {
    pub rule: RuleView,
    /// The matching row's level: `branch+category+type`, `branch+category`,
    /// `branch+type`, `branch`, `category+type`, `category`, `type` or `default`.
    pub matched: String,
}

/// Which row of the matrix applies to a branch, category and type, and why
/// (librarian). An unknown category or type is a 400.
#[utoipa::path(get, path = "/circulation-rules/resolve", tag = "rules", security(("bearer" = [])), params(ResolveParams),
    responses((status = 200, body = Resolution), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn resolve_rule(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Query(p): Query<ResolveParams>,
) -> Result<axum::Json<Resolution>, ApiError> {
    let unknown = |field: &str, what: &str| {
        ApiError::bad_request(format!("unknown {what}")).with_detail(
            "fields",
            json!({field: format!("must be a defined {what}")}),
        )
    };
    if let Some(category) = &p.patron_category
        && !state.store.patron_category_exists(category).await?
    {
        return Err(unknown("patron_category", "patron category"));
    }
    if let Some(item_type) = &p.item_type
        && !state.store.item_type_exists(item_type).await?
    {
        return Err(unknown("item_type", "item type"));
    }
    let key = RuleKey {
        branch_id: p.branch_id,
        patron_category: p.patron_category.as_deref(),
        item_type: p.item_type.as_deref(),
    };
    let (rule, matched) = state.store.resolve_rule(&key).await?;
    Ok(axum::Json(Resolution {
        rule: rule.into(),
        matched: matched.as_str().to_owned(),
    }))
}

/// A checkout to try without doing it: the patron by `user_id` or by
/// `card_number` (exactly one), the copy, where, and when.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    pub user_id: Option<Uuid>,
    pub card_number: Option<String>,
    pub copy_barcode: String,
    /// The lending branch (the desk's); default the copy's home. Unknown → 404.
    pub branch_id: Option<Uuid>,
    /// When the checkout would happen (RFC 3339); default now. The patron's
    /// loans, fines and holds are taken as they are now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<OffsetDateTime>,
}

/// What checkout would do.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulationView {
    /// The rule that would be frozen on the loan.
    pub rule: RuleView,
    /// The matching row's level (as in `/circulation-rules/resolve`).
    pub matched: String,
    /// When the loan would fall due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// The due day, `YYYY-MM-DD`, local to the lending branch and moved past
    /// its closed days, as checkout would set it.
    pub due_date: String,
    /// The error codes checkout would meet, in the order it checks them (it
    /// answers with the first); empty: checkout would succeed. Checkout would
    /// also run its race checks against other desks, which cannot be foreseen.
    pub refusals: Vec<ErrorCode>,
}

/// Runs checkout's own decision on a patron and a copy without changing
/// anything (librarian): the rule, the due date and every refusal. Unknown
/// patron, card, barcode or branch → 404, as for checkout.
#[utoipa::path(post, path = "/circulation-rules/simulate", tag = "rules", security(("bearer" = [])), request_body = SimulateRequest,
    responses((status = 200, body = SimulationView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn simulate_checkout(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Json(req): Json<SimulateRequest>,
) -> Result<axum::Json<SimulationView>, ApiError> {
    let patron = match (req.user_id, req.card_number.as_deref()) {
        (Some(id), None) => PatronRef::Id(id),
        (None, Some(card)) => PatronRef::Card(card),
        _ => {
            return Err(ApiError::invalid_fields([(
                "user_id".to_owned(),
                "give exactly one of user_id and card_number".to_owned(),
            )]));
        }
    };
    let patron = circulation::resolve_patron(&state, patron).await?;
    if let Some(branch) = req.branch_id {
        super::branches::require_branch(&state, branch).await?;
    }
    let simulation =
        circulation::simulate_checkout(&state, &req.copy_barcode, patron, req.branch_id, req.at)
            .await?;
    Ok(axum::Json(SimulationView {
        matched: simulation.matched.as_str().to_owned(),
        due_date: carrel_core::calendar::format_date(simulation.due_date),
        due_at: simulation.due_at,
        refusals: simulation
            .refusals
            .into_iter()
            .map(|r| ApiError::from(StoreError::Circulation(r)).code())
            .collect(),
        rule: simulation.rule.into(),
    }))
}
