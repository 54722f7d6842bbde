//! `/api/v1/item-types`: the item types a library defines (read: anyone;
//! write: admin), addressed by code. Items name one; so may circulation rules.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use carrel_store::ItemType;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit;
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

/// A display name: trimmed, 1–100 characters.
pub(crate) fn display_name(raw: &str) -> Result<String, (String, String)> {
    let name = raw.trim();
    if (1..=100).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(("name".to_owned(), "must be 1-100 characters".to_owned()))
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
    RequireAdmin(admin): RequireAdmin,
    Json(req): Json<ItemTypeRequest>,
) -> Result<(StatusCode, axum::Json<ItemTypeView>), ApiError> {
    let mut bad = Vec::new();
    if !carrel_core::rules::is_valid_code(&req.code) {
        bad.push(("code".to_owned(), carrel_core::rules::CODE_RULE.to_owned()));
    }
    let name = display_name(&req.name).map_err(|e| bad.push(e)).ok();
    let (true, Some(name)) = (bad.is_empty(), name) else {
        return Err(ApiError::invalid_fields(bad));
    };
    let created = state
        .store
        .create_item_type(
            &ItemType {
                code: req.code,
                name,
            },
            |t: &ItemType| {
                vec![audit::event(
                    &state,
                    &client,
                    "item_type.created",
                    Some(admin.user_id),
                    None,
                    json!({"code": t.code, "name": t.name}),
                )]
            },
        )
        .await?;
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
    RequireAdmin(admin): RequireAdmin,
    Path(code): Path<String>,
    Json(req): Json<ItemTypeUpdate>,
) -> Result<axum::Json<ItemTypeView>, ApiError> {
    let name = display_name(&req.name).map_err(|e| ApiError::invalid_fields([e]))?;
    let updated = state
        .store
        .rename_item_type(&code, &name, |t: &ItemType| {
            vec![audit::event(
                &state,
                &client,
                "item_type.updated",
                Some(admin.user_id),
                None,
                json!({"code": t.code, "name": t.name}),
            )]
        })
        .await?;
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
    RequireAdmin(admin): RequireAdmin,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_item_type(&code, |t: &ItemType| {
            vec![audit::event(
                &state,
                &client,
                "item_type.deleted",
                Some(admin.user_id),
                None,
                json!({"code": t.code}),
            )]
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
