//! `/api/v1/circulation-policies`: loan rules per item type (read: librarian,
//! write: admin), a view of the type-only rows of the circulation rule matrix
//! (`/circulation-rules`). Loans keep the policy in force at their checkout.

use axum::extract::{Path, State};
use carrel_core::circulation::LoanPolicy;
use carrel_store::PolicyRow;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::Actor;
use crate::app::admin::{self, PolicyRefusal};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Json;
use crate::http::principal::{RequireAdmin, RequireLibrarian};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies))
        .routes(routes!(put_policy))
}

/// The loan rules of one item type.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    pub item_type: String,
    pub loan_days: i32,
    pub max_renewals: i32,
    pub daily_fine_cents: i64,
    /// Cap on the overdue fine of one loan.
    pub max_fine_cents: i64,
    pub grace_days: i32,
    pub replacement_cost_cents: i64,
    pub currency: String,
    /// Null while the seeded default is in force.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<Uuid>,
}

impl PolicyView {
    fn new(p: PolicyRow, currency: &str) -> Self {
        Self {
            item_type: p.item_type,
            loan_days: p.loan_days,
            max_renewals: p.max_renewals,
            daily_fine_cents: p.daily_fine_cents,
            max_fine_cents: p.max_fine_cents,
            grace_days: p.grace_days,
            replacement_cost_cents: p.replacement_cost_cents,
            currency: currency.to_owned(),
            updated_at: p.updated_at,
            updated_by: p.updated_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyList {
    pub data: Vec<PolicyView>,
}

/// Every policy, one per item type (librarian).
#[utoipa::path(get, path = "/circulation-policies", tag = "policies", security(("bearer" = [])),
    responses((status = 200, body = PolicyList), (status = 403, body = ErrorBody)))]
async fn list_policies(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
) -> Result<axum::Json<PolicyList>, ApiError> {
    let rows = state.store.list_policies().await?;
    Ok(axum::Json(PolicyList {
        data: rows
            .into_iter()
            .map(|p| PolicyView::new(p, &state.config.currency))
            .collect(),
    }))
}

/// Every field is required: a policy is replaced whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    pub loan_days: u32,
    pub max_renewals: u32,
    pub daily_fine_cents: i64,
    pub max_fine_cents: i64,
    pub grace_days: u32,
    pub replacement_cost_cents: i64,
}

/// Replaces the policy of an item type (admin). Loans already out keep theirs.
#[utoipa::path(put, path = "/circulation-policies/{item_type}", tag = "policies", security(("bearer" = [])),
    params(("item_type" = String, Path, description = "a defined item type code (see /item-types)")),
    request_body = PolicyRequest,
    responses((status = 200, body = PolicyView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_policy(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(admin): RequireAdmin,
    Path(item_type): Path<String>,
    Json(req): Json<PolicyRequest>,
) -> Result<axum::Json<PolicyView>, ApiError> {
    let policy = LoanPolicy {
        loan_days: req.loan_days,
        max_renewals: req.max_renewals,
        daily_fine_cents: req.daily_fine_cents,
        max_fine_cents: req.max_fine_cents,
        grace_days: req.grace_days,
        replacement_cost_cents: req.replacement_cost_cents,
    };
    let actor = Actor::api(admin.user_id, &client);
    let row = admin::put_policy(&state, &actor, &item_type, &policy)
        .await
        .map_err(|refusal| match refusal {
            PolicyRefusal::UnknownItemType => ApiError::bad_request("unknown item type")
                .with_detail(
                    "fields",
                    json!({"item_type": "must be a defined item type (see /api/v1/item-types)"}),
                ),
            PolicyRefusal::Invalid(problems) => ApiError::invalid_fields(
                problems
                    .into_iter()
                    .map(|(field, reason)| (field.to_owned(), reason.to_owned())),
            ),
            PolicyRefusal::Store(error) => error.into(),
        })?;
    Ok(axum::Json(PolicyView::new(row, &state.config.currency)))
}
