//! `/api/v1/loans`: checkout, return, renewal, loss, and the loan listing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use carrel_core::statuses::LoanStatus;
use carrel_store::{Loan, LoanQuery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::fines::FineView;
use super::holds::HoldView;
use crate::app::Actor;
use crate::app::circulation::{self, PatronRef};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody, field_error};
use crate::http::extract::{Json, Query, parse_id};
use crate::http::pagination::{self, Page};
use crate::http::principal::{Authenticated, RequireLibrarian};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_loans, checkout))
        .routes(routes!(return_copy))
        .routes(routes!(get_loan))
        .routes(routes!(renew_loan))
        .routes(routes!(mark_lost))
}

/// A loan. `status` is `overdue` as soon as the due instant has passed.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoanView {
    pub id: Uuid,
    pub copy_id: Uuid,
    pub item_id: Uuid,
    /// Null once the loan has been anonymised.
    pub user_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_out_at: OffsetDateTime,
    /// 23:59:59 local time (of the lending branch) of the due day, in UTC.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// The due day, `YYYY-MM-DD`, in the lending branch's local calendar.
    #[schema(example = "2026-12-28")]
    pub due_date: String,
    /// The lending branch (where the desk was at checkout).
    pub branch_id: Uuid,
    #[serde(with = "time::serde::rfc3339::option")]
    pub returned_at: Option<OffsetDateTime>,
    pub renewals: i32,
    /// Renewals the policy recorded at checkout allows.
    pub max_renewals: i32,
    /// `active`, `overdue`, `returned` or `lost`.
    pub status: String,
}

impl LoanView {
    pub fn new(loan: Loan, now: OffsetDateTime) -> Self {
        Self {
            status: loan.status_at(now).to_string(),
            id: loan.id,
            copy_id: loan.copy_id,
            item_id: loan.item_id,
            user_id: loan.user_id,
            checked_out_at: loan.checked_out_at,
            due_at: loan.due_at,
            due_date: carrel_core::calendar::format_date(loan.due_day()),
            branch_id: loan.branch_id,
            returned_at: loan.returned_at,
            renewals: loan.renewals,
            max_renewals: loan.max_renewals,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoanStatusParam {
    Active,
    Overdue,
    Returned,
    Lost,
}

impl LoanStatusParam {
    pub fn status(self) -> LoanStatus {
        match self {
            LoanStatusParam::Active => LoanStatus::Active,
            LoanStatusParam::Overdue => LoanStatus::Overdue,
            LoanStatusParam::Returned => LoanStatus::Returned,
            LoanStatusParam::Lost => LoanStatus::Lost,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LoanListParams {
    pub user_id: Option<Uuid>,
    /// Default: the open loans (`active` and `overdue`).
    pub status: Option<LoanStatusParam>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One page of loans, newest first.
pub async fn loan_page(
    state: &AppState,
    user_id: Option<Uuid>,
    status: Option<LoanStatusParam>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<LoanView>, ApiError> {
    let limit = pagination::limit(limit)?;
    let now = state.clock.now();
    let rows = state
        .store
        .list_loans(&LoanQuery {
            user_id,
            status: status.map(LoanStatusParam::status),
            after: pagination::decode_cursor(cursor)?,
            limit,
            now,
        })
        .await?;
    Ok(pagination::paginate(
        rows,
        limit,
        |l| (l.checked_out_at, l.id),
        |l| LoanView::new(l, now),
    ))
}

/// Loans, newest first (librarian; default: open loans).
#[utoipa::path(get, path = "/loans", tag = "circulation", security(("bearer" = [])), params(LoanListParams),
    responses((status = 200, body = Page<LoanView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_loans(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Query(p): Query<LoanListParams>,
) -> Result<axum::Json<Page<LoanView>>, ApiError> {
    Ok(axum::Json(
        loan_page(&state, p.user_id, p.status, p.limit, p.cursor.as_deref()).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub copy_barcode: String,
    /// The patron; give exactly one of `user_id` and `card_number`.
    pub user_id: Option<Uuid>,
    /// The patron's card (as scanned or typed).
    pub card_number: Option<String>,
    /// The desk's branch; default: the copy's home branch.
    pub branch_id: Option<Uuid>,
}

/// A barcode as typed or scanned (see [`circulation::scanned_barcode`]).
fn barcode(raw: &str) -> Result<&str, ApiError> {
    circulation::scanned_barcode(raw)
        .ok_or_else(|| field_error("copy_barcode", "must be 1 to 64 characters"))
}

/// Checks a copy out to a patron named by `user_id` or `card_number` (librarian).
#[utoipa::path(post, path = "/loans", tag = "circulation", security(("bearer" = [])), request_body = CheckoutRequest,
    responses((status = 201, body = LoanView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "COPY_UNAVAILABLE, LOAN_LIMIT_REACHED or PATRON_BLOCKED"),
        (status = 422, body = ErrorBody)))]
async fn checkout(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Json(req): Json<CheckoutRequest>,
) -> Result<(StatusCode, axum::Json<LoanView>), ApiError> {
    let barcode = barcode(&req.copy_barcode)?;
    let patron = match (req.user_id, req.card_number.as_deref()) {
        (Some(id), None) => PatronRef::Id(id),
        (None, Some(card)) => {
            carrel_core::cards::normalize_card_number(card)
                .map_err(|e| field_error("card_number", e))?;
            PatronRef::Card(card)
        }
        _ => {
            return Err(field_error(
                "user_id",
                "give exactly one of user_id and card_number",
            ));
        }
    };
    if let Some(branch) = req.branch_id {
        super::branches::require_branch(&state, branch).await?;
    }
    let patron = circulation::resolve_patron(&state, patron).await?;
    let actor = Actor::api(staff.user_id, &client);
    let outcome = circulation::checkout(&state, &actor, barcode, patron, req.branch_id).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(LoanView::new(outcome.loan, state.clock.now())),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    pub copy_barcode: String,
    /// The desk's branch; default: the copy's home branch.
    pub branch_id: Option<Uuid>,
}

/// The result of a return.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnView {
    /// The loan closed; null when the scan received a copy in transit to this
    /// branch instead (no loan was open).
    pub loan: Option<LoanView>,
    /// The overdue fine this return created, if any.
    pub fine: Option<FineView>,
    /// The hold the copy now fills, if any: `ready` (the copy is on this
    /// branch's hold shelf) or `waiting` while the copy travels to its pickup branch.
    pub hold: Option<HoldView>,
    /// Where the copy must be taken now (it is `in_transit`): the pickup branch
    /// of its hold, or its home. Null: it stays at this branch.
    pub transit_to_branch_id: Option<Uuid>,
    /// The branch the copy was scanned at.
    pub branch_id: Uuid,
}

/// Returns a copy (librarian) at the desk of `branch_id` (default: the copy's
/// home): closes its loan, charges any overdue fine, and passes the copy to the
/// first waiting hold (here, or in transit to its pickup branch) or sends it
/// home. Scanning a copy that is in transit to this branch receives it.
#[utoipa::path(post, path = "/loans/return", tag = "circulation", security(("bearer" = [])), request_body = ReturnRequest,
    responses((status = 200, body = ReturnView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the copy is not on loan"), (status = 422, body = ErrorBody)))]
async fn return_copy(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Json(req): Json<ReturnRequest>,
) -> Result<axum::Json<ReturnView>, ApiError> {
    let barcode = barcode(&req.copy_barcode)?;
    if let Some(branch) = req.branch_id {
        super::branches::require_branch(&state, branch).await?;
    }
    let actor = Actor::api(staff.user_id, &client);
    let outcome = match circulation::scan_in(&state, &actor, barcode, req.branch_id).await? {
        circulation::ScanIn::Returned(outcome) => outcome,
        circulation::ScanIn::Received(received) => {
            return Ok(axum::Json(ReturnView {
                loan: None,
                fine: None,
                hold: received.hold.map(HoldView::from),
                transit_to_branch_id: received.copy.transit_to_branch_id,
                branch_id: received.branch_id,
            }));
        }
    };
    let currency = &state.config.currency;
    Ok(axum::Json(ReturnView {
        fine: outcome.fine.map(|f| FineView::new(f, currency)),
        hold: outcome.hold.map(HoldView::from),
        transit_to_branch_id: outcome.transit_to_branch_id,
        branch_id: outcome.branch_id,
        loan: Some(LoanView::new(outcome.loan, state.clock.now())),
    }))
}

/// One loan: its borrower or a librarian (404 for anyone else).
#[utoipa::path(get, path = "/loans/{id}", tag = "circulation", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = LoanView), (status = 404, body = ErrorBody)))]
async fn get_loan(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<LoanView>, ApiError> {
    let loan = state
        .store
        .find_loan(parse_id(&id)?)
        .await?
        .filter(|l| me.is_staff() || l.user_id == Some(me.user_id))
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(LoanView::new(loan, state.clock.now())))
}

/// Renews a loan: its borrower or a librarian. Renewing an overdue loan
/// charges the lateness so far as an overdue fine (see `/users/me/fines`).
#[utoipa::path(post, path = "/loans/{id}/renew", tag = "circulation", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = LoanView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "RENEWAL_LIMIT_REACHED, HOLD_PENDING, PATRON_BLOCKED, or the loan is closed")))]
async fn renew_loan(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<LoanView>, ApiError> {
    let borrower = (!me.is_staff()).then_some(me.user_id);
    let actor = Actor::api(me.user_id, &client);
    let (loan, _fine) = circulation::renew(&state, &actor, parse_id(&id)?, borrower).await?;
    Ok(axum::Json(LoanView::new(loan, state.clock.now())))
}

/// The lost loan, with the replacement fine it created.
#[derive(Debug, Serialize, ToSchema)]
pub struct LostView {
    #[serde(flatten)]
    pub loan: LoanView,
    /// The replacement fine (none when the policy's replacement cost is 0).
    pub fine: Option<FineView>,
}

/// Declares a loaned copy lost (librarian): a replacement fine is created.
#[utoipa::path(post, path = "/loans/{id}/lost", tag = "circulation", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = LostView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mark_lost(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<axum::Json<LostView>, ApiError> {
    let actor = Actor::api(staff.user_id, &client);
    let (loan, fine) = circulation::mark_lost(&state, &actor, parse_id(&id)?).await?;
    Ok(axum::Json(LostView {
        fine: fine.map(|f| FineView::new(f, &state.config.currency)),
        loan: LoanView::new(loan, state.clock.now()),
    }))
}
