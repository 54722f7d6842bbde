//! `/api/v1/fines`: fines, payments under an `Idempotency-Key`, and waivers.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carrel_core::statuses::{FineReason, FineStatus};
use carrel_store::{Fine, FineQuery, Payment, PaymentOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::Actor;
use crate::app::fines::{self, PayRefusal};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody, ErrorCode, field_error};
use crate::http::extract::{Json, Query, parse_id};
use crate::http::pagination::{self, Page};
use crate::http::principal::{Authenticated, Principal, RequireLibrarian, forbidden};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_fines, create_fine))
        .routes(routes!(get_fine))
        .routes(routes!(pay_fine))
        .routes(routes!(waive_fine))
}

/// The largest single fine or payment, in cents (a typo guard, not a policy).
const MAX_CENTS: i64 = 10_000_000;

/// A fine. Money is integer cents in `currency`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FineView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub loan_id: Option<Uuid>,
    /// `overdue`, `lost`, `damage` or `manual`.
    #[schema(value_type = String)]
    pub reason: FineReason,
    pub amount_cents: i64,
    pub paid_cents: i64,
    pub waived_cents: i64,
    pub balance_cents: i64,
    /// `open`, `paid` or `waived`.
    #[schema(value_type = String)]
    pub status: FineStatus,
    pub currency: String,
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl FineView {
    pub fn new(f: Fine, currency: &str) -> Self {
        Self {
            balance_cents: f.balance_cents(),
            id: f.id,
            user_id: f.user_id,
            loan_id: f.loan_id,
            reason: f.reason,
            amount_cents: f.amount_cents,
            paid_cents: f.paid_cents,
            waived_cents: f.waived_cents,
            status: f.status,
            currency: currency.to_owned(),
            note: f.note,
            created_at: f.created_at,
        }
    }
}

/// How an overdue fine's amount was reached.
#[derive(Debug, Serialize, ToSchema)]
pub struct Calculation {
    /// Local days (of the lending branch) after the due day, up to the day of
    /// return; closed days are not counted unless `CARREL_FINES_COUNT_CLOSED_DAYS`.
    pub days_late: i32,
    pub grace_days: i32,
    pub daily_fine_cents: i64,
    /// The per-loan cap of the policy recorded at checkout.
    pub max_fine_cents: i64,
    /// Whether the cap cut the amount.
    pub capped: bool,
    /// Closed days of the lending branch after the due day that were not counted.
    pub closed_days_skipped: i32,
}

fn calculation(f: &Fine) -> Option<Calculation> {
    match (
        f.days_late,
        f.grace_days,
        f.daily_fine_cents,
        f.max_fine_cents,
        f.capped,
    ) {
        (
            Some(days_late),
            Some(grace_days),
            Some(daily_fine_cents),
            Some(max_fine_cents),
            Some(capped),
        ) => Some(Calculation {
            days_late,
            grace_days,
            daily_fine_cents,
            max_fine_cents,
            capped,
            closed_days_skipped: f.closed_days_skipped.unwrap_or(0),
        }),
        _ => None,
    }
}

/// A payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub fine_id: Uuid,
    pub amount_cents: i64,
    /// `cash`, `card` or `online`.
    pub method: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Payment> for PaymentView {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id,
            fine_id: p.fine_id,
            amount_cents: p.amount_cents,
            method: p.method.to_string(),
            created_at: p.created_at,
        }
    }
}

/// A waiver.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaiverView {
    pub id: Uuid,
    pub amount_cents: i64,
    pub reason: String,
    pub waived_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A fine with the explanation of its amount and what has been paid or waived.
#[derive(Debug, Serialize, ToSchema)]
pub struct FineDetailView {
    #[serde(flatten)]
    pub fine: FineView,
    /// For overdue fines; null otherwise.
    pub calculation: Option<Calculation>,
    pub payments: Vec<PaymentView>,
    pub waivers: Vec<WaiverView>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FineStatusParam {
    Open,
    Paid,
    Waived,
}

impl FineStatusParam {
    pub fn status(self) -> FineStatus {
        match self {
            FineStatusParam::Open => FineStatus::Open,
            FineStatusParam::Paid => FineStatus::Paid,
            FineStatusParam::Waived => FineStatus::Waived,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FineListParams {
    pub user_id: Option<Uuid>,
    /// Default: `open`.
    pub status: Option<FineStatusParam>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One page of fines, newest first.
pub async fn fine_page(
    state: &AppState,
    user_id: Option<Uuid>,
    status: Option<FineStatusParam>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<FineView>, ApiError> {
    let limit = pagination::limit(limit)?;
    let rows = state
        .store
        .list_fines(&FineQuery {
            user_id,
            status: status.map(FineStatusParam::status),
            after: pagination::decode_cursor(cursor)?,
            limit,
        })
        .await?;
    let currency = &state.config.currency;
    Ok(pagination::paginate(
        rows,
        limit,
        |f| (f.created_at, f.id),
        |f| FineView::new(f, currency),
    ))
}

/// Fines, newest first (librarian; default: open).
#[utoipa::path(get, path = "/fines", tag = "fines", security(("bearer" = [])), params(FineListParams),
    responses((status = 200, body = Page<FineView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_fines(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Query(p): Query<FineListParams>,
) -> Result<axum::Json<Page<FineView>>, ApiError> {
    Ok(axum::Json(
        fine_page(&state, p.user_id, p.status, p.limit, p.cursor.as_deref()).await?,
    ))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManualReason {
    Manual,
    Damage,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFineRequest {
    pub user_id: Uuid,
    pub amount_cents: i64,
    pub reason: ManualReason,
    /// Why (shown to the patron), at most 500 characters.
    pub note: Option<String>,
}

pub(crate) fn check_amount(amount: i64) -> Result<i64, ApiError> {
    if (1..=MAX_CENTS).contains(&amount) {
        Ok(amount)
    } else {
        Err(field_error(
            "amount_cents",
            "must be between 1 and 10000000",
        ))
    }
}

/// Trimmed text of at most 500 characters; `required` refuses empty text.
pub(crate) fn short_text(
    field: &str,
    text: Option<String>,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > 500 => {
            Err(field_error(field, "must be at most 500 characters"))
        }
        Some(t) if t.chars().any(char::is_control) => {
            Err(field_error(field, "must not contain control characters"))
        }
        None if required => Err(field_error(field, "is required")),
        other => Ok(other),
    }
}

/// Charges a manual or damage fine (librarian).
#[utoipa::path(post, path = "/fines", tag = "fines", security(("bearer" = [])), request_body = NewFineRequest,
    responses((status = 201, body = FineView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_fine(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Json(req): Json<NewFineRequest>,
) -> Result<(StatusCode, axum::Json<FineView>), ApiError> {
    let input = fines::ChargeInput {
        user_id: req.user_id,
        amount_cents: check_amount(req.amount_cents)?,
        reason: match req.reason {
            ManualReason::Manual => fines::ManualReason::Manual,
            ManualReason::Damage => fines::ManualReason::Damage,
        },
        note: short_text("note", req.note, false)?,
    };
    let fine = fines::charge(&state, &Actor::api(staff.user_id, &client), input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(FineView::new(fine, &state.config.currency)),
    ))
}

/// The fine if the caller may see it: its owner or a librarian (404 otherwise).
async fn visible_fine(state: &AppState, me: &Principal, id: Uuid) -> Result<Fine, ApiError> {
    state
        .store
        .find_fine(id)
        .await?
        .filter(|f| me.is_staff() || f.user_id == me.user_id)
        .ok_or_else(ApiError::not_found)
}

/// One fine with its `calculation`: its owner or a librarian.
#[utoipa::path(get, path = "/fines/{id}", tag = "fines", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = FineDetailView), (status = 404, body = ErrorBody)))]
async fn get_fine(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<FineDetailView>, ApiError> {
    let fine = visible_fine(&state, &me, parse_id(&id)?).await?;
    let (payments, waivers) = state.store.fine_history(fine.id).await?;
    Ok(axum::Json(FineDetailView {
        calculation: calculation(&fine),
        payments: payments.iter().map(PaymentView::from).collect(),
        waivers: waivers
            .into_iter()
            .map(|w| WaiverView {
                id: w.id,
                amount_cents: w.amount_cents,
                reason: w.reason,
                waived_by: w.created_by,
                created_at: w.created_at,
            })
            .collect(),
        fine: FineView::new(fine, &state.config.currency),
    }))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Cash,
    Card,
    Online,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// 0 < amount ≤ the fine's balance.
    pub amount_cents: i64,
    /// Patrons pay `online`; librarians also record `cash` and `card` taken at the desk.
    pub method: PaymentMethod,
    /// Required for `online`, refused otherwise: what the payment provider's
    /// client-side flow produced (with `CARREL_PAYMENT_PROVIDER=test`,
    /// `tok_test_ok` is approved and `tok_test_declined` declined).
    #[schema(value_type = Option<String>, format = Password)]
    pub payment_token: Option<String>,
}

/// The response of a payment (also what a retry with the same key replays).
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResult {
    pub payment: PaymentView,
    pub fine: FineView,
}

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The `Idempotency-Key` header: 1–255 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let invalid = |reason: &str| {
        ApiError::bad_request("a valid Idempotency-Key header is required")
            .with_detail("fields", json!({"Idempotency-Key": reason}))
    };
    let value = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| invalid("is required"))?;
    let key = value
        .to_str()
        .map_err(|_| invalid("must be printable ASCII"))?;
    check_idempotency_key(key).map_err(|_| invalid("must be 1 to 255 printable ASCII characters"))
}

/// An idempotency key: 1 to 255 printable ASCII characters (the API's
/// header, the desk's hidden form field).
pub(crate) fn check_idempotency_key(key: &str) -> Result<&str, ApiError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(field_error(
            "idempotency_key",
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(key)
}

fn stored_response(status: u16, body: String, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "idempotent-replayed",
        HeaderValue::from_static(if replayed { "true" } else { "false" }),
    );
    response
}

fn online_payments_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::OnlinePaymentsDisabled,
        "online payments are not available; pay at the desk",
    )
}

/// Pays (part of) a fine. Requires an `Idempotency-Key`: a retry with the same
/// key and body gets the first response again; the same key with another body
/// is refused. The owner pays `online`, charged through the payment provider
/// before anything is recorded; librarians also record `cash` and `card`.
/// Staff never pay their own fines.
#[utoipa::path(post, path = "/fines/{id}/payments", tag = "fines", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "1–255 printable characters, unique per payment")),
    request_body = PaymentBody,
    responses((status = 201, body = PaymentResult), (status = 400, body = ErrorBody),
        (status = 402, body = ErrorBody, description = "PAYMENT_DECLINED: the provider refused the charge; nothing was recorded"),
        (status = 403, body = ErrorBody, description = "FORBIDDEN (a desk method from a patron, or staff paying their own fine), or ONLINE_PAYMENTS_DISABLED"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "IDEMPOTENCY_KEY_REUSED"),
        (status = 422, body = ErrorBody, description = "a bad amount (a settled fine has balance 0) or payment_token"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody, description = "the payment provider is unavailable; nothing was recorded")))]
async fn pay_fine(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<PaymentBody>,
) -> Result<Response, ApiError> {
    let input = fines::PayInput {
        fine_id: parse_id(&id)?,
        idempotency_key: idempotency_key(&headers)?,
        amount_cents: check_amount(req.amount_cents)?,
        method: match req.method {
            PaymentMethod::Cash => fines::Method::Cash,
            PaymentMethod::Card => fines::Method::Card,
            PaymentMethod::Online => fines::Method::Online,
        },
        payment_token: req.payment_token.as_deref(),
        staff: me.is_staff(),
    };
    let currency = &state.config.currency;
    let actor = Actor::api(me.user_id, &client);
    let render = |payment: &Payment, fine: &Fine| {
        serde_json::to_string(&PaymentResult {
            payment: payment.into(),
            fine: FineView::new(fine.clone(), currency),
        })
        .unwrap_or_default()
    };
    match fines::pay(&state, &actor, input, render).await? {
        PaymentOutcome::Created { response, .. } => Ok(stored_response(201, response, false)),
        PaymentOutcome::Replayed { status, response } => {
            Ok(stored_response(status, response, true))
        }
    }
}

impl From<PayRefusal> for ApiError {
    fn from(refusal: PayRefusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            PayRefusal::DeskMethodForPatron => forbidden().with_message(message),
            PayRefusal::OnlinePaymentsDisabled => online_payments_disabled(),
            PayRefusal::PaymentToken(reason) => field_error("payment_token", reason),
            PayRefusal::FineSettled => {
                field_error("amount_cents", "the fine is settled: its balance is 0")
            }
            PayRefusal::RateLimited(limited) => limited.into(),
            PayRefusal::Declined => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                ErrorCode::PaymentDeclined,
                message,
            ),
            PayRefusal::ProviderUnavailable => ApiError::unavailable(message),
            PayRefusal::Store(error) => error.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiveRequest {
    /// Why (kept with the waiver), 1–500 characters.
    pub reason: String,
    /// Default: the whole balance.
    pub amount_cents: Option<i64>,
}

/// Waives (part of) a fine's balance (librarian).
#[utoipa::path(post, path = "/fines/{id}/waive", tag = "fines", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body = WaiveRequest,
    responses((status = 200, body = FineView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn waive_fine(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Path(id): Path<String>,
    Json(req): Json<WaiveRequest>,
) -> Result<axum::Json<FineView>, ApiError> {
    let input = fines::WaiveInput {
        fine_id: parse_id(&id)?,
        reason: short_text("reason", Some(req.reason), true)?.unwrap_or_default(),
        amount_cents: req.amount_cents.map(check_amount).transpose()?,
    };
    let fine = fines::waive(&state, &Actor::api(staff.user_id, &client), input).await?;
    Ok(axum::Json(FineView::new(fine, &state.config.currency)))
}

/// The fine's JSON for data exports.
pub fn fine_json(fine: Fine, currency: &str) -> Value {
    let calc = calculation(&fine);
    let mut value = serde_json::to_value(FineView::new(fine, currency)).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert(
            "calculation".into(),
            serde_json::to_value(calc).unwrap_or(Value::Null),
        );
    }
    value
}
