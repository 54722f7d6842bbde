//! `/api/v1/holds`: the per-item queue of patrons waiting for a copy.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use carrel_core::statuses::HoldStatus;
use carrel_store::{Hold, HoldQuery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::{Actor, holds};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Query, parse_id};
use crate::http::pagination::{self, Page};
use crate::http::principal::{Authenticated, RequireLibrarian, forbidden};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_holds, place_hold))
        .routes(routes!(get_hold, cancel_hold))
}

/// A hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: Uuid,
    pub item_id: Uuid,
    /// Null once the hold has been anonymised.
    pub user_id: Option<Uuid>,
    /// `waiting`, `ready`, `fulfilled`, `cancelled` or `expired`.
    pub status: String,
    /// 1-based place among the item's waiting holds; null unless waiting.
    pub position: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ready_at: Option<OffsetDateTime>,
    /// When a ready hold stops waiting on the hold shelf.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The copy on the hold shelf for this hold (or travelling to it).
    pub copy_id: Option<Uuid>,
    /// Where the patron collects it.
    pub pickup_branch_id: Uuid,
}

impl From<Hold> for HoldView {
    fn from(h: Hold) -> Self {
        Self {
            id: h.id,
            item_id: h.item_id,
            user_id: h.user_id,
            status: h.status.to_string(),
            position: h.position,
            created_at: h.created_at,
            ready_at: h.ready_at,
            expires_at: h.expires_at,
            copy_id: h.copy_id,
            pickup_branch_id: h.pickup_branch_id,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HoldStatusParam {
    Waiting,
    Ready,
    Fulfilled,
    Cancelled,
    Expired,
}

impl HoldStatusParam {
    pub fn status(self) -> HoldStatus {
        match self {
            HoldStatusParam::Waiting => HoldStatus::Waiting,
            HoldStatusParam::Ready => HoldStatus::Ready,
            HoldStatusParam::Fulfilled => HoldStatus::Fulfilled,
            HoldStatusParam::Cancelled => HoldStatus::Cancelled,
            HoldStatusParam::Expired => HoldStatus::Expired,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HoldListParams {
    /// Default: the open holds (`waiting` and `ready`).
    pub status: Option<HoldStatusParam>,
    pub item_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// One page of holds, newest first.
pub async fn hold_page(
    state: &AppState,
    user_id: Option<Uuid>,
    item_id: Option<Uuid>,
    status: Option<HoldStatusParam>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<HoldView>, ApiError> {
    let limit = pagination::limit(limit)?;
    let rows = state
        .store
        .list_holds(&HoldQuery {
            user_id,
            item_id,
            status: status.map(HoldStatusParam::status),
            after: pagination::decode_cursor(cursor)?,
            limit,
        })
        .await?;
    Ok(pagination::paginate(
        rows,
        limit,
        |h| (h.created_at, h.id),
        HoldView::from,
    ))
}

/// Holds, newest first (librarian; default: waiting and ready).
#[utoipa::path(get, path = "/holds", tag = "circulation", security(("bearer" = [])), params(HoldListParams),
    responses((status = 200, body = Page<HoldView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_holds(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Query(p): Query<HoldListParams>,
) -> Result<axum::Json<Page<HoldView>>, ApiError> {
    Ok(axum::Json(
        hold_page(
            &state,
            p.user_id,
            p.item_id,
            p.status,
            p.limit,
            p.cursor.as_deref(),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    pub item_id: Uuid,
    /// For whom (librarians only; patrons place holds for themselves).
    pub user_id: Option<Uuid>,
    /// Where to collect it; default: the patron's home branch, else MAIN.
    pub pickup_branch_id: Option<Uuid>,
}

/// Places a hold: a patron for themselves, a librarian for anyone. Ready at
/// once when a copy is on the shelf.
#[utoipa::path(post, path = "/holds", tag = "circulation", security(("bearer" = [])), request_body = HoldRequest,
    responses((status = 201, body = HoldView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "HOLD_EXISTS, HOLD_LIMIT_REACHED (the patron category's limit, else CARREL_MAX_ACTIVE_HOLDS), HOLDS_NOT_ALLOWED (the circulation rule in force has holds_allowed = false), PATRON_BLOCKED, or the patron has the item on loan"), (status = 422, body = ErrorBody)))]
async fn place_hold(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Json(req): Json<HoldRequest>,
) -> Result<(StatusCode, axum::Json<HoldView>), ApiError> {
    let patron = req.user_id.unwrap_or(me.user_id);
    if patron != me.user_id && !me.is_staff() {
        return Err(forbidden());
    }
    if let Some(branch) = req.pickup_branch_id {
        super::branches::require_branch(&state, branch).await?;
    }
    let actor = Actor::api(me.user_id, &client);
    let hold = holds::place(&state, &actor, req.item_id, patron, req.pickup_branch_id).await?;
    Ok((StatusCode::CREATED, axum::Json(hold.into())))
}

/// The hold if the caller may see it: its holder or a librarian.
pub async fn visible_hold(
    state: &AppState,
    me: &crate::http::principal::Principal,
    id: &str,
) -> Result<Hold, ApiError> {
    state
        .store
        .find_hold(parse_id(id)?)
        .await?
        .filter(|h| me.is_staff() || h.user_id == Some(me.user_id))
        .ok_or_else(ApiError::not_found)
}

/// One hold: its holder or a librarian.
#[utoipa::path(get, path = "/holds/{id}", tag = "circulation", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = HoldView), (status = 404, body = ErrorBody)))]
async fn get_hold(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::Json<HoldView>, ApiError> {
    Ok(axum::Json(visible_hold(&state, &me, &id).await?.into()))
}

/// Cancels an open hold: its holder or a librarian. Holds behind it move up;
/// a copy on the hold shelf goes to the next in line.
#[utoipa::path(delete, path = "/holds/{id}", tag = "circulation", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the hold is closed")))]
async fn cancel_hold(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let hold = visible_hold(&state, &me, &id).await?;
    holds::cancel(&state, &Actor::api(me.user_id, &client), &hold).await?;
    Ok(StatusCode::NO_CONTENT)
}
