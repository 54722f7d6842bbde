//! Cover images: `PUT/GET/DELETE /api/v1/items/{id}/cover`.
//!
//! The upload is read as a stream and abandoned as soon as it passes
//! `CARREL_UPLOAD_MAX_BYTES`; what the bytes are is decided by sniffing them
//! (the filename and declared type are ignored); decoding has dimension and
//! allocation limits and runs on the blocking pool; the stored image is a
//! clean re-encoding under a server-chosen name.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::catalog::ItemView;
use crate::app::{Actor, covers};
use crate::catalog::CatalogError;
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::parse_id;
use crate::http::principal::RequireLibrarian;
use crate::limits::{self, Limit};
use crate::state::AppState;

/// Multipart framing allowed on top of the file itself.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router(upload_max_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_cover, get_cover, delete_cover))
        .layer(DefaultBodyLimit::max(upload_max_bytes + MULTIPART_OVERHEAD))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CoverResponse {
    pub cover_url: String,
}

/// Uploads a cover (multipart field `file`, JPEG/PNG/GIF/WebP by content, at most 5 MiB).
#[utoipa::path(put, path = "/items/{id}/cover", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)),
    request_body(content_type = "multipart/form-data", description = "field `file`"),
    responses((status = 200, body = CoverResponse), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_cover(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Path(id): Path<String>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<axum::Json<CoverResponse>, ApiError> {
    limits::enforce(
        &state,
        Limit::CoverUpload,
        &format!("user:{}", staff.user_id),
    )
    .await?;
    let id = parse_id(&id)?;
    let max = state.config.upload_max_bytes;
    // A declared length over the limit is refused before anything is read.
    if declared_length(&headers).is_some_and(|n| n > max + MULTIPART_OVERHEAD) {
        return Err(CatalogError::ImageTooLarge.into());
    }
    covers::item(&state, id).await?;
    let bytes = read_file_field(multipart, max).await?;
    let actor = Actor::api(staff.user_id, &client);
    let row = covers::upload(&state, &actor, id, bytes).await?;
    let cover_url = ItemView::from(row).cover_url.unwrap_or_default();
    Ok(axum::Json(CoverResponse { cover_url }))
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// The bytes of the multipart field `file`, read as a stream and abandoned as
/// soon as they pass `max`.
async fn read_file_field(mut multipart: Multipart, max: usize) -> Result<Vec<u8>, ApiError> {
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let mut buffer = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if buffer.len() + chunk.len() > max {
                return Err(CatalogError::ImageTooLarge.into());
            }
            buffer.extend_from_slice(&chunk);
        }
        return Ok(buffer);
    }
    Err(crate::http::error::field_error(
        "file",
        "a multipart field named file is required",
    ))
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        CatalogError::ImageTooLarge.into()
    } else {
        ApiError::bad_request("malformed multipart body")
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CoverParams {
    /// `thumb` for the 300-pixel thumbnail.
    pub size: Option<CoverSize>,
    /// Cache-busting version from `cover_url`.
    pub v: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CoverSize {
    Full,
    Thumb,
}

/// The cover image (no login needed), with its true Content-Type.
#[utoipa::path(get, path = "/items/{id}/cover", tag = "catalog", params(("id" = Uuid, Path), CoverParams),
    responses((status = 200, description = "The image", content_type = "image/*"), (status = 304), (status = 404, body = ErrorBody)))]
async fn get_cover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<CoverParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let thumb = matches!(params.size, Some(CoverSize::Thumb));
    let cover = covers::find(&state, parse_id(&id)?, thumb).await?;
    let etag = cover.etag();
    let common = [
        (
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(|_| ApiError::not_found())?,
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let bytes = covers::read(&state, &cover).await?;
    let content_type = HeaderValue::from_static(cover.content_type);
    Ok((
        common,
        [(header::CONTENT_TYPE, content_type)],
        Body::from(bytes),
    )
        .into_response())
}

/// Removes the cover (librarian).
#[utoipa::path(delete, path = "/items/{id}/cover", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_cover(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireLibrarian(staff): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::api(staff.user_id, &client);
    covers::remove(&state, &actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
