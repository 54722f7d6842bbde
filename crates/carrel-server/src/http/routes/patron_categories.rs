//! `/api/v1/patron-categories`: patron categories and their own loan and hold
//! limits (read: librarian; write: admin), addressed by code.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use carrel_store::PatronCategory;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::Actor;
use crate::app::admin;
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, nullable};
use crate::http::pagination::Page;
use crate::http::principal::{RequireAdmin, RequireLibrarian};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories, create_category))
        .routes(routes!(update_category, delete_category))
}

/// A patron category. Users have one (`adult` by default); its limits
/// replace the global ones for its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatronCategoryView {
    /// 1–32 of `a-z`, `0-9`, `_` and `-`; never changes.
    pub code: String,
    pub name: String,
    /// Open loans a member may have; null: `CARREL_MAX_ACTIVE_LOANS`.
    pub max_active_loans: Option<i32>,
    /// Waiting and ready holds a member may have; null: `CARREL_MAX_ACTIVE_HOLDS`.
    pub max_active_holds: Option<i32>,
}

impl From<PatronCategory> for PatronCategoryView {
    fn from(c: PatronCategory) -> Self {
        Self {
            code: c.code,
            name: c.name,
            max_active_loans: c.max_active_loans,
            max_active_holds: c.max_active_holds,
        }
    }
}

/// Every patron category, by code (librarian; one page holds them all).
#[utoipa::path(get, path = "/patron-categories", tag = "rules", security(("bearer" = [])),
    responses((status = 200, body = Page<PatronCategoryView>), (status = 403, body = ErrorBody)))]
async fn list_categories(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
) -> Result<axum::Json<Page<PatronCategoryView>>, ApiError> {
    let categories = state.store.list_patron_categories().await?;
    Ok(axum::Json(Page {
        data: categories.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatronCategoryRequest {
    /// 1–32 of `a-z`, `0-9`, `_` and `-`.
    pub code: String,
    /// 1–100 characters.
    pub name: String,
    /// 0–10000; absent or null: the global setting.
    pub max_active_loans: Option<u32>,
    /// 0–10000; absent or null: the global setting.
    pub max_active_holds: Option<u32>,
}

/// Defines a patron category (admin).
#[utoipa::path(post, path = "/patron-categories", tag = "rules", security(("bearer" = [])), request_body = PatronCategoryRequest,
    responses((status = 201, body = PatronCategoryView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the code is taken"), (status = 422, body = ErrorBody)))]
async fn create_category(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(me): RequireAdmin,
    Json(req): Json<PatronCategoryRequest>,
) -> Result<(StatusCode, axum::Json<PatronCategoryView>), ApiError> {
    let actor = Actor::api(me.user_id, &client);
    let new = admin::NewCategory {
        code: req.code,
        name: req.name,
        max_active_loans: req.max_active_loans,
        max_active_holds: req.max_active_holds,
    };
    let created = admin::create_category(&state, &actor, new).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatronCategoryUpdate {
    /// 1–100 characters.
    pub name: Option<String>,
    /// 0–10000, or null for the global setting.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>)]
    pub max_active_loans: Option<Option<u32>>,
    /// 0–10000, or null for the global setting.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>)]
    pub max_active_holds: Option<Option<u32>>,
}

/// Changes a patron category's name or limits (admin). The code never changes.
#[utoipa::path(patch, path = "/patron-categories/{code}", tag = "rules", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = PatronCategoryUpdate,
    responses((status = 200, body = PatronCategoryView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_category(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(me): RequireAdmin,
    Path(code): Path<String>,
    Json(req): Json<PatronCategoryUpdate>,
) -> Result<axum::Json<PatronCategoryView>, ApiError> {
    let actor = Actor::api(me.user_id, &client);
    let update = admin::CategoryUpdate {
        name: req.name,
        max_active_loans: req.max_active_loans,
        max_active_holds: req.max_active_holds,
    };
    let updated = admin::update_category(&state, &actor, &code, update).await?;
    Ok(axum::Json(updated.into()))
}

/// Deletes a patron category (admin); refused for `adult` (the default) and
/// while users or rules name it.
#[utoipa::path(delete, path = "/patron-categories/{code}", tag = "rules", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the default category, or one users (deleted ones included) or circulation rules name")))]
async fn delete_category(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(me): RequireAdmin,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::api(me.user_id, &client);
    admin::delete_category(&state, &actor, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
