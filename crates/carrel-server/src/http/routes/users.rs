//! `/api/v1/users`: the caller's own account, and staff management.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use carrel_core::roles::Role;
use carrel_store::{UserQuery, UserStatus};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::fines::{FineStatusParam, FineView, PaymentView, fine_json, fine_page};
use super::holds::{HoldStatusParam, HoldView, hold_page};
use super::loans::{LoanStatusParam, LoanView, loan_page};
use crate::accounts::UserView;
use crate::accounts::export;
use crate::accounts::manage::{self, ProfileUpdate, StaffCreate, StaffUpdate};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Query, nullable, parse_id};
use crate::http::pagination::{self, Page};
use crate::http::principal::{Authenticated, Principal, RequireLibrarian};
use crate::limits::{self, Limit};
use crate::state::AppState;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_me, update_me, delete_me))
        .routes(routes!(export_me))
        .routes(routes!(my_loans))
        .routes(routes!(my_holds))
        .routes(routes!(my_fines))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(restore_user))
        .routes(routes!(unlock_user))
        .routes(routes!(reset_mfa))
        .routes(routes!(set_my_pin))
        .routes(routes!(set_user_pin))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMyPinRequest {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// 4–12 ASCII digits, as a JSON string.
    #[schema(value_type = String, format = Password)]
    pub pin: SecretString,
}

/// Sets the caller's PIN for self-check machines (SIP2) after re-entering the
/// password. The PIN is stored hashed and never returned.
#[utoipa::path(put, path = "/me/pin", tag = "users", security(("bearer" = [])), request_body = SetMyPinRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_my_pin(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Json(req): Json<SetMyPinRequest>,
) -> Result<StatusCode, ApiError> {
    crate::accounts::pins::set_own_pin(&state, &client, &me, req.password, req.pin).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPinRequest {
    /// 4–12 ASCII digits, as a JSON string.
    #[schema(value_type = String, format = Password)]
    pub pin: SecretString,
}

/// Sets a user's PIN (staff; librarians for patrons only). Clears a PIN lockout.
#[utoipa::path(put, path = "/{id}/pin", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = SetPinRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_user_pin(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(actor): RequireLibrarian,
    Path(id): Path<String>,
    Json(req): Json<SetPinRequest>,
) -> Result<StatusCode, ApiError> {
    crate::accounts::pins::set_pin_by_staff(&state, &client, &actor, parse_id(&id)?, req.pin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account.
#[utoipa::path(get, path = "/me", tag = "users", security(("bearer" = [])), responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
async fn get_me(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = manage::me(&me);
    Ok(axum::Json(UserView::new(user, state.clock.now())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub full_name: Option<Option<String>>,
    pub username: Option<String>,
    pub keep_loan_history: Option<bool>,
}

/// Updates the caller's profile: `full_name`, `username`, `keep_loan_history`
/// only; anything else (`role`, `is_active`, …) is refused with 422.
#[utoipa::path(patch, path = "/me", tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Json(req): Json<UpdateMeRequest>,
) -> Result<axum::Json<UserView>, ApiError> {
    let update = ProfileUpdate {
        full_name: req.full_name,
        username: req.username,
        keep_loan_history: req.keep_loan_history,
    };
    let user = manage::update_me(&state, &client, &me, update).await?;
    Ok(axum::Json(UserView::new(user, state.clock.now())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteMeRequest {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Deletes the caller's account (soft delete) after re-entering the password.
#[utoipa::path(delete, path = "/me", tag = "users", security(("bearer" = [])), request_body = DeleteMeRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_me(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Json(req): Json<DeleteMeRequest>,
) -> Result<StatusCode, ApiError> {
    limits::enforce(
        &state,
        Limit::AccountDeletion,
        &format!("user:{}", me.user_id),
    )
    .await?;
    manage::delete_me(&state, &client, &me, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything stored about the caller, as one JSON document (GDPR access).
/// Never a password hash, token hash, TOTP secret or recovery-code hash, and
/// never another person's IP address or user agent.
#[utoipa::path(get, path = "/me/export", tag = "users", security(("bearer" = [])), responses((status = 200, body = Object)))]
async fn export_me(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(export_document(&state, &me).await?))
}

/// The export document of `GET /users/me/export` (the account page offers the
/// same document as a download).
pub(crate) async fn export_document(state: &AppState, me: &Principal) -> Result<Value, ApiError> {
    let r = export::records(state, me).await?;
    let (now, currency) = (r.exported_at, &state.config.currency);
    Ok(json!({
        "exported_at": crate::http::rfc3339(now),
        "profile": UserView::new(r.user, now),
        "sessions": r.sessions.into_iter().map(|s| json!({
            "id": s.id, "device_name": s.device_name, "user_agent": s.user_agent, "ip_address": s.ip_address,
            "created_at": crate::http::rfc3339(s.created_at), "last_used_at": crate::http::rfc3339(s.last_used_at),
        })).collect::<Vec<_>>(),
        "audit_events": r.audit_events.into_iter().map(super::audit::event_json).collect::<Vec<_>>(),
        "loans": r.loans.into_iter().map(|l| LoanView::new(l, now)).collect::<Vec<_>>(),
        "holds": r.holds.into_iter().map(HoldView::from).collect::<Vec<_>>(),
        "fines": r.fines.into_iter().map(|f| fine_json(f, currency)).collect::<Vec<_>>(),
        "payments": r.payments.iter().map(PaymentView::from).collect::<Vec<_>>(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MyLoansParams {
    /// Default: the open loans (`active` and `overdue`).
    pub status: Option<LoanStatusParam>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The caller's loans, newest first (default: open ones).
#[utoipa::path(get, path = "/me/loans", tag = "users", security(("bearer" = [])), params(MyLoansParams),
    responses((status = 200, body = Page<LoanView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn my_loans(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
    Query(p): Query<MyLoansParams>,
) -> Result<axum::Json<Page<LoanView>>, ApiError> {
    Ok(axum::Json(
        loan_page(
            &state,
            Some(me.user_id),
            p.status,
            p.limit,
            p.cursor.as_deref(),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MyHoldsParams {
    /// Default: the open holds (`waiting` and `ready`).
    pub status: Option<HoldStatusParam>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The caller's holds, newest first (default: waiting and ready).
#[utoipa::path(get, path = "/me/holds", tag = "users", security(("bearer" = [])), params(MyHoldsParams),
    responses((status = 200, body = Page<HoldView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn my_holds(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
    Query(p): Query<MyHoldsParams>,
) -> Result<axum::Json<Page<HoldView>>, ApiError> {
    Ok(axum::Json(
        hold_page(
            &state,
            Some(me.user_id),
            None,
            p.status,
            p.limit,
            p.cursor.as_deref(),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MyFinesParams {
    /// Default: `open`.
    pub status: Option<FineStatusParam>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The caller's fines, newest first (default: open ones).
#[utoipa::path(get, path = "/me/fines", tag = "users", security(("bearer" = [])), params(MyFinesParams),
    responses((status = 200, body = Page<FineView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn my_fines(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
    Query(p): Query<MyFinesParams>,
) -> Result<axum::Json<Page<FineView>>, ApiError> {
    Ok(axum::Json(
        fine_page(
            &state,
            Some(me.user_id),
            p.status,
            p.limit,
            p.cursor.as_deref(),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListUsersParams {
    /// Case-insensitive substring of email, username or full name.
    pub q: Option<String>,
    #[param(value_type = Option<String>)]
    pub role: Option<Role>,
    /// `active`, `locked` or `deleted` (default: every account not deleted).
    pub status: Option<StatusParam>,
    /// Exactly this patron card (case-insensitive).
    pub card_number: Option<String>,
    /// Patron category code.
    pub category: Option<String>,
    /// Home branch.
    pub home_branch_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusParam {
    Active,
    Locked,
    Deleted,
}

/// Lists accounts (librarian).
#[utoipa::path(get, path = "/", tag = "users", security(("bearer" = [])), params(ListUsersParams),
    responses((status = 200, body = Page<UserView>), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Query(params): Query<ListUsersParams>,
) -> Result<axum::Json<Page<UserView>>, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let query = UserQuery {
        q: params
            .q
            .map(|q| q.trim().chars().take(100).collect())
            .filter(|q: &String| !q.is_empty()),
        role: params.role,
        status: params.status.map(|s| match s {
            StatusParam::Active => UserStatus::Active,
            StatusParam::Locked => UserStatus::Locked,
            StatusParam::Deleted => UserStatus::Deleted,
        }),
        before: pagination::decode_cursor(params.cursor.as_deref())?,
        limit,
        now: None,
        card_number: params
            .card_number
            .as_deref()
            .map(|c| {
                carrel_core::cards::normalize_card_number(c)
                    .map_err(|e| ApiError::bad_request(format!("card_number {e}")))
            })
            .transpose()?,
        category: params.category.map(|c| c.trim().to_owned()),
        home_branch_id: params.home_branch_id,
    };
    let rows = manage::list_for_staff(&state, query).await?;
    let now = state.clock.now();
    Ok(axum::Json(pagination::paginate(
        rows,
        limit,
        |u| (u.created_at, u.id),
        |u| UserView::new(u, now),
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// Without a password the user gets an invitation email with a set-password link.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// 1–32 of `[A-Za-z0-9-]` (stored upper-cased); unique.
    pub card_number: Option<String>,
    /// A defined patron category code; default `adult`.
    pub category: Option<String>,
}

/// Creates an account (librarians: patrons only).
#[utoipa::path(post, path = "/", tag = "users", security(("bearer" = [])), request_body = CreateUserRequest,
    responses((status = 201, body = UserView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(actor): RequireLibrarian,
    Json(req): Json<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<UserView>), ApiError> {
    let create = StaffCreate {
        email: req.email,
        username: req.username,
        full_name: req.full_name,
        role: req.role,
        password: req.password,
        card_number: req.card_number,
        category: req.category,
    };
    let user = manage::create_by_staff(&state, &client, &actor, create).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(UserView::new(user, state.clock.now())),
    ))
}

/// One account (librarian).
#[utoipa::path(get, path = "/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = manage::get_by_staff(&state, parse_id(&id)?).await?;
    Ok(axum::Json(UserView::new(user, state.clock.now())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub full_name: Option<Option<String>>,
    pub email: Option<String>,
    /// Admins only.
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// 1–32 of `[A-Za-z0-9-]` (stored upper-cased), or null to remove the card.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub card_number: Option<Option<String>>,
    /// The patron's home branch (the default pickup branch), or null to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub home_branch_id: Option<Option<uuid::Uuid>>,
    /// A defined patron category code.
    pub category: Option<String>,
}

/// Updates an account (librarians: patrons only; roles: admins only).
#[utoipa::path(patch, path = "/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the email or username is taken")))]
async fn update_user(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(actor): RequireLibrarian,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> Result<axum::Json<UserView>, ApiError> {
    if let Some(Some(branch)) = req.home_branch_id {
        super::branches::require_branch(&state, branch).await?;
    }
    let update = StaffUpdate {
        full_name: req.full_name,
        email: req.email,
        role: req.role,
        is_active: req.is_active,
        card_number: req.card_number,
        home_branch_id: req.home_branch_id,
        category: req.category,
    };
    let user = manage::update_by_staff(&state, &client, &actor, parse_id(&id)?, update).await?;
    Ok(axum::Json(UserView::new(user, state.clock.now())))
}

/// Soft-deletes an account and ends its sessions. Never the caller's own
/// account (403): that takes the password, through `DELETE /users/me`.
#[utoipa::path(delete, path = "/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the account has loans out or fines owed")))]
async fn delete_user(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(actor): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    manage::delete_by_staff(&state, &client, &actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restores a soft-deleted account.
#[utoipa::path(post, path = "/{id}/restore", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the account is not deleted")))]
async fn restore_user(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(actor): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = manage::restore_by_staff(&state, &client, &actor, parse_id(&id)?).await?;
    Ok(axum::Json(UserView::new(user, state.clock.now())))
}

/// Lifts a lockout.
#[utoipa::path(post, path = "/{id}/unlock", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
async fn unlock_user(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(actor): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = manage::unlock_by_staff(&state, &client, &actor, parse_id(&id)?).await?;
    Ok(axum::Json(UserView::new(user, state.clock.now())))
}

/// Removes a user's MFA (lost device) and ends their sessions (staff; audited).
#[utoipa::path(post, path = "/{id}/mfa/reset", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reset_mfa(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(actor): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::accounts::mfa::reset_by_staff(&state, &client, &actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
