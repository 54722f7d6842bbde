//! `/api/v1/item-types`: the item types a library defines (read: anyone;
//! write: admin), addressed by code. Items name one; so may circulation rules.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use carrel_store::ItemType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::Actor;
use crate::app::admin;
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Json;
use crate::http::pagination::Page;
use crate::http::principal::RequireAdmin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_item_types, create_item_type))
        .routes(routes!(update_item_type, delete_item_type))
}

/// An item type: its code (what items and rules name) and a display name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemTypeView {
    /// 1–32 of `a-z`, `0-9`, `_` and `-`; never changes.
    pub code: String,
    pub name: String,
}

impl From<ItemType> for ItemTypeView {
    fn from(t: ItemType) -> Self {
        Self {
            code: t.code,
            name: t.name,
        }
    }
}

/// Every item type, by code (no login needed; one page holds them all).
#[utoipa::path(get, path = "/item-types", tag = "rules",
    responses((status = 200, body = Page<ItemTypeView>)))]
async fn list_item_types(
    State(state): State<AppState>,
) -> Result<axum::Json<Page<ItemTypeView>>, ApiError> {
    let types = state.store.list_item_types().await?;
    Ok(axum::Json(Page {
        data: types.into_iter().map(Into::into).collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemTypeRequest {
    /// 1–32 of `a-z`, `0-9`, `_` and `-`.
    pub code: String,
    /// 1–100 characters.
    pub name: String,
}

/// Defines an item type (admin).
#[utoipa::path(post, path = "/item-types", tag = "rules", security(("bearer" = [])), request_body = ItemTypeRequest,
    responses((status = 201, body = ItemTypeView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the code is taken"), (status = 422, body = ErrorBody)))]
async fn create_item_type(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(me): RequireAdmin,
    Json(req): Json<ItemTypeRequest>,
) -> Result<(StatusCode, axum::Json<ItemTypeView>), ApiError> {
    let actor = Actor::api(me.user_id, &client);
    let created = admin::create_item_type(&state, &actor, req.code, &req.name).await?;
    Ok((StatusCode::CREATED, axum::Json(created.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemTypeUpdate {
    /// 1–100 characters. The code never changes.
    pub name: String,
}

/// Renames an item type (admin).
#[utoipa::path(patch, path = "/item-types/{code}", tag = "rules", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = ItemTypeUpdate,
    responses((status = 200, body = ItemTypeView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_item_type(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(me): RequireAdmin,
    Path(code): Path<String>,
    Json(req): Json<ItemTypeUpdate>,
) -> Result<axum::Json<ItemTypeView>, ApiError> {
    let actor = Actor::api(me.user_id, &client);
    let updated = admin::rename_item_type(&state, &actor, &code, &req.name).await?;
    Ok(axum::Json(updated.into()))
}

/// Deletes an item type (admin); refused while items or rules name it.
#[utoipa::path(delete, path = "/item-types/{code}", tag = "rules", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "items (deleted ones included) or circulation rules use the type")))]
async fn delete_item_type(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(me): RequireAdmin,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::api(me.user_id, &client);
    admin::delete_item_type(&state, &actor, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
