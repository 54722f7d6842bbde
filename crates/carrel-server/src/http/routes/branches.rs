//! `/api/v1/branches` (and their calendars), receiving copies in transit, and
//! the transit list.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use carrel_core::calendar::{OpeningCalendar, format_clock, format_date};
use carrel_store::{Branch, StoreError, Transit};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::catalog::CopyView;
use super::holds::HoldView;
use crate::app::Actor;
use crate::app::{admin, circulation};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Query, nullable, parse_id};
use crate::http::pagination::{self, Page};
use crate::http::principal::{RequireAdmin, RequireLibrarian};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_branches, create_branch))
        .routes(routes!(update_branch))
        .routes(routes!(get_calendar, put_calendar))
        .routes(routes!(receive_copy))
        .routes(routes!(list_transits))
}

/// 404 unless `id` names a branch (an unknown branch in a request body).
pub async fn require_branch(state: &AppState, id: Uuid) -> Result<Branch, ApiError> {
    state
        .store
        .find_branch(id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// A branch of the library.
#[derive(Debug, Serialize, ToSchema)]
pub struct BranchView {
    pub id: Uuid,
    /// 1–16 of `[A-Za-z0-9_-]`, unique (case-sensitively).
    #[schema(example = "MAIN")]
    pub code: String,
    pub name: String,
    /// The branch's IANA time zone; null means the library's (`CARREL_TIMEZONE`).
    #[schema(example = "America/New_York")]
    pub timezone: Option<String>,
    /// Free text.
    pub address: Option<String>,
}

impl From<Branch> for BranchView {
    fn from(b: Branch) -> Self {
        Self {
            id: b.id,
            code: b.code,
            name: b.name,
            timezone: b.timezone,
            address: b.address,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BranchListParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The branches, MAIN first (anyone).
#[utoipa::path(get, path = "/branches", tag = "branches", params(BranchListParams),
    responses((status = 200, body = Page<BranchView>), (status = 400, body = ErrorBody)))]
async fn list_branches(
    State(state): State<AppState>,
    Query(p): Query<BranchListParams>,
) -> Result<axum::Json<Page<BranchView>>, ApiError> {
    let limit = pagination::limit(p.limit)?;
    let after = pagination::decode_cursor(p.cursor.as_deref())?;
    let rows = state.store.list_branches(after, limit).await?;
    Ok(axum::Json(pagination::paginate(
        rows,
        limit,
        |b| (b.created_at, b.id),
        BranchView::from,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchRequest {
    /// 1–16 of `[A-Za-z0-9_-]`.
    pub code: String,
    /// 1–200 characters.
    pub name: String,
    /// An IANA zone name; null or absent: the library's.
    pub timezone: Option<String>,
    /// At most 1000 characters.
    pub address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchPatch {
    pub code: Option<String>,
    pub name: Option<String>,
    /// null: use the library's zone again.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
}

fn conflict_on_code(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict { .. } => ApiError::new(
            StatusCode::CONFLICT,
            crate::http::error::ErrorCode::Conflict,
            "a branch with this code already exists",
        ),
        other => other.into(),
    }
}

/// Creates a branch (admin).
#[utoipa::path(post, path = "/branches", tag = "branches", security(("bearer" = [])), request_body = BranchRequest,
    responses((status = 201, body = BranchView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the code is taken"), (status = 422, body = ErrorBody)))]
async fn create_branch(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(admin): RequireAdmin,
    Json(req): Json<BranchRequest>,
) -> Result<(StatusCode, axum::Json<BranchView>), ApiError> {
    let branch = admin::check_new_branch(
        req.code,
        &req.name,
        req.timezone.as_deref(),
        req.address.as_deref(),
    )
    .map_err(ApiError::invalid_fields)?;
    let actor = Actor::api(admin.user_id, &client);
    let branch = admin::create_branch(&state, &actor, &branch)
        .await
        .map_err(conflict_on_code)?;
    Ok((StatusCode::CREATED, axum::Json(branch.into())))
}

/// Changes a branch (admin). Loans already made keep their due dates.
#[utoipa::path(patch, path = "/branches/{id}", tag = "branches", security(("bearer" = [])), request_body = BranchPatch,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = BranchView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the code is taken"), (status = 422, body = ErrorBody)))]
async fn update_branch(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
    Json(req): Json<BranchPatch>,
) -> Result<axum::Json<BranchView>, ApiError> {
    let id = parse_id(&id)?;
    let changes = admin::check_branch_changes(
        req.code,
        req.name.as_deref(),
        req.timezone.as_ref().map(Option::as_deref),
        req.address.as_ref().map(Option::as_deref),
    )
    .map_err(ApiError::invalid_fields)?;
    let actor = Actor::api(admin.user_id, &client);
    let branch = admin::update_branch(&state, &actor, id, &changes)
        .await
        .map_err(conflict_on_code)?;
    Ok(axum::Json(branch.into()))
}

/// Weekly opening hours (local time of the branch, `[["09:00", "17:00"]]` per
/// day; an empty list is a closed day) and closed dates.
#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    #[serde(default)]
    pub mon: Vec<[String; 2]>,
    #[serde(default)]
    pub tue: Vec<[String; 2]>,
    #[serde(default)]
    pub wed: Vec<[String; 2]>,
    #[serde(default)]
    pub thu: Vec<[String; 2]>,
    #[serde(default)]
    pub fri: Vec<[String; 2]>,
    #[serde(default)]
    pub sat: Vec<[String; 2]>,
    #[serde(default)]
    pub sun: Vec<[String; 2]>,
}

impl Weekly {
    fn days(self) -> [Vec<[String; 2]>; 7] {
        [
            self.mon, self.tue, self.wed, self.thu, self.fri, self.sat, self.sun,
        ]
    }

    fn from_days(days: [Vec<[String; 2]>; 7]) -> Self {
        let [mon, tue, wed, thu, fri, sat, sun] = days;
        Weekly {
            mon,
            tue,
            wed,
            thu,
            fri,
            sat,
            sun,
        }
    }
}

/// A branch's opening calendar. A branch whose calendar was never set is open
/// every day (shown as 00:00–23:59 daily). A day absent from `weekly` is closed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarView {
    pub weekly: Weekly,
    /// `YYYY-MM-DD` dates the branch is closed (at most 2000).
    #[schema(example = json!(["2026-12-25"]))]
    pub closed_dates: Vec<String>,
}

fn calendar_view(calendar: &OpeningCalendar) -> CalendarView {
    let days = calendar.weekly().map(|intervals| {
        intervals
            .iter()
            .map(|h| [format_clock(h.opens), format_clock(h.closes)])
            .collect()
    });
    CalendarView {
        weekly: Weekly::from_days(days),
        closed_dates: calendar.closed_dates().map(format_date).collect(),
    }
}

/// A branch's opening calendar (anyone).
#[utoipa::path(get, path = "/branches/{id}/calendar", tag = "branches", params(("id" = Uuid, Path)),
    responses((status = 200, body = CalendarView), (status = 404, body = ErrorBody)))]
async fn get_calendar(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<CalendarView>, ApiError> {
    let stored = state
        .store
        .branch_calendar(parse_id(&id)?)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(calendar_view(&stored.calendar)))
}

/// Replaces a branch's calendar (admin). Loans already made keep their due
/// dates; lateness is counted against the calendar in force at return.
#[utoipa::path(put, path = "/branches/{id}/calendar", tag = "branches", security(("bearer" = [])),
    request_body = CalendarView, params(("id" = Uuid, Path)),
    responses((status = 200, body = CalendarView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn put_calendar(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
    Json(req): Json<CalendarView>,
) -> Result<axum::Json<CalendarView>, ApiError> {
    let id = parse_id(&id)?;
    let calendar =
        OpeningCalendar::parse(&req.weekly.days(), &req.closed_dates).map_err(|problems| {
            ApiError::invalid_fields(problems.into_iter().map(|(f, r)| (f, r.to_owned())))
        })?;
    let actor = Actor::api(admin.user_id, &client);
    let stored = admin::set_calendar(&state, &actor, id, &calendar).await?;
    Ok(axum::Json(calendar_view(&stored.calendar)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// The branch scanning the copy in (where it was travelling to).
    pub branch_id: Uuid,
}

/// A copy received at the end of its transit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiveView {
    /// The copy as it now is (`on_hold_shelf`, `available`, or `in_transit`
    /// again when nobody here wants it and this is not its home).
    pub copy: CopyView,
    /// The hold now ready for pickup here, if any.
    pub hold: Option<HoldView>,
}

/// Scans in a copy in transit at its destination (librarian): the hold it was
/// sent for becomes ready (pickup days start now), or it goes on the shelf.
#[utoipa::path(post, path = "/copies/{id}/receive", tag = "circulation", security(("bearer" = [])),
    request_body = ReceiveRequest, params(("id" = Uuid, Path)),
    responses((status = 200, body = ReceiveView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the copy is not in transit to this branch")))]
async fn receive_copy(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Path(id): Path<String>,
    Json(req): Json<ReceiveRequest>,
) -> Result<axum::Json<ReceiveView>, ApiError> {
    let id = parse_id(&id)?;
    require_branch(&state, req.branch_id).await?;
    let actor = Actor::api(staff.user_id, &client);
    let outcome = circulation::receive(&state, &actor, id, req.branch_id).await?;
    Ok(axum::Json(ReceiveView {
        copy: CopyView::from(outcome.copy),
        hold: outcome.hold.map(HoldView::from),
    }))
}

/// A copy on its way to a branch.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitView {
    pub copy_id: Uuid,
    pub item_id: Uuid,
    pub barcode: String,
    pub title: String,
    /// The copy's home branch.
    pub home_branch_id: Uuid,
    /// Where it is going.
    pub to_branch_id: Uuid,
    /// The hold it will fill there, if any.
    pub hold_id: Option<Uuid>,
    /// When it was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

impl From<Transit> for TransitView {
    fn from(t: Transit) -> Self {
        Self {
            copy_id: t.copy_id,
            item_id: t.item_id,
            barcode: t.barcode,
            title: t.title,
            home_branch_id: t.home_branch_id,
            to_branch_id: t.to_branch_id,
            hold_id: t.hold_id,
            since: t.since,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TransitListParams {
    /// Only copies travelling to this branch.
    pub branch_id: Option<Uuid>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Copies in transit, oldest first (librarian).
#[utoipa::path(get, path = "/transits", tag = "circulation", security(("bearer" = [])), params(TransitListParams),
    responses((status = 200, body = Page<TransitView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_transits(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Query(p): Query<TransitListParams>,
) -> Result<axum::Json<Page<TransitView>>, ApiError> {
    let limit = pagination::limit(p.limit)?;
    let after = pagination::decode_cursor(p.cursor.as_deref())?;
    let rows = state.store.list_transits(p.branch_id, after, limit).await?;
    Ok(axum::Json(pagination::paginate(
        rows,
        limit,
        |t| (t.since, t.copy_id),
        TransitView::from,
    )))
}
