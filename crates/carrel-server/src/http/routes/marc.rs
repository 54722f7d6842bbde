//! MARC 21: `POST /api/v1/imports` and its progress and report, and
//! `GET /api/v1/items/{id}/marc`.
//!
//! An upload is streamed to a file in the data directory and cut off at
//! `CARREL_IMPORT_MAX_BYTES` (413); the import then runs as a background job
//! (`catalog::marc::jobs`) with the same engine as `carrel catalog import`.

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carrel_core::statuses::ImportStatus;
use carrel_store::{ImportErrorRow, ImportRow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::Actor;
use crate::app::imports::{self, ImportUpload};
use crate::catalog::marc::{self, Format, MatchMode, jobs};
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody, ErrorCode, field_error};
use crate::http::extract::parse_id;
use crate::http::pagination::{self, Page};
use crate::http::principal::RequireLibrarian;
use crate::state::AppState;

/// Multipart framing and the small fields allowed on top of the file itself.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_import))
        // The import limit is enforced while streaming (it is far above the JSON limit).
        .layer(DefaultBodyLimit::disable())
        .routes(routes!(get_import))
        .routes(routes!(import_errors))
        .routes(routes!(item_marc))
}

/// An import job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub id: Uuid,
    /// `queued`, `running`, `done` or `failed`.
    #[schema(value_type = String)]
    pub status: ImportStatus,
    /// `auto`, `marc` or `marcxml`.
    pub format: String,
    /// `isbn`, `control-number` or `none`.
    #[serde(rename = "match")]
    pub match_mode: String,
    pub file_name: Option<String>,
    /// Records in the file (known once the job has started).
    pub total: Option<i64>,
    /// Records handled so far (the index of the last one committed).
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
    /// Why the job failed.
    pub error: Option<String>,
    pub created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl From<ImportRow> for ImportView {
    fn from(r: ImportRow) -> Self {
        ImportView {
            id: r.id,
            status: r.status,
            format: r.format,
            match_mode: r.match_mode,
            file_name: r.file_name,
            total: r.total,
            processed: r.processed,
            created: r.created,
            updated: r.updated,
            skipped: r.skipped,
            failed: r.failed,
            error: r.error,
            created_by: r.created_by,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "the file is larger than the import limit",
    )
    .with_detail("max_bytes", json!(max))
}

/// Removes a partial upload when the request fails.
struct PartialUpload(Option<std::path::PathBuf>);

impl Drop for PartialUpload {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts a catalog import (librarian): multipart field `file` (ISO 2709 or
/// MARCXML, at most `CARREL_IMPORT_MAX_BYTES`), and optional fields `format`
/// (`auto`, `marc`, `marcxml`) and `match` (`isbn`, `control-number`, `none`).
#[utoipa::path(post, path = "/imports", tag = "catalog", security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "fields `file`, `format`, `match`"),
    responses((status = 202, body = ImportView), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_import(
    State(state): State<AppState>,
    RequireLibrarian(staff): RequireLibrarian,
    client: ClientInfo,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, axum::Json<ImportView>), ApiError> {
    let row = receive_upload(&state, staff.user_id, &client, &headers, &mut multipart).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(row.into())))
}

/// Receives an import upload (the fields `file`, `format`, `match` of
/// `multipart`, whatever came before them already read), records the job for
/// `staff` and starts it: `POST /api/v1/imports` and the administration page
/// both start imports here.
pub(crate) async fn receive_upload(
    state: &AppState,
    staff: Uuid,
    client: &ClientInfo,
    headers: &HeaderMap,
    multipart: &mut Multipart,
) -> Result<ImportRow, ApiError> {
    let max = state.config.import_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(too_large(max));
    }
    let mut partial = PartialUpload(None);
    let upload = read_import_form(state, multipart, max, &mut partial).await?;
    let actor = Actor::api(staff, client);
    let row = imports::start(state, &actor, upload).await?;
    partial.0 = None;
    Ok(row)
}

/// Reads the import form: the file (streamed to the upload dir, the path kept
/// in `partial` so a failed request removes it), `format` and `match`.
async fn read_import_form(
    state: &AppState,
    multipart: &mut Multipart,
    max: u64,
    partial: &mut PartialUpload,
) -> Result<ImportUpload, ApiError> {
    let id = Uuid::now_v7();
    let dir = jobs::upload_dir(state);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let path = dir.join(format!("{id}.upload"));
    let (mut format, mut match_mode) = (Format::Auto, MatchMode::Isbn);
    let mut file: Option<(Option<String>, u64)> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") if file.is_none() => {
                let name = field.file_name().map(|n| n.chars().take(255).collect());
                partial.0 = Some(path.clone());
                file = Some((name, write_field(field, &path, max).await?));
            }
            Some("format") => format = choice(field, Format::parse, FORMATS).await?,
            Some("match") => match_mode = choice(field, MatchMode::parse, MATCH_MODES).await?,
            _ => {}
        }
    }
    let (file_name, file_bytes) =
        file.ok_or_else(|| field_error("file", "a multipart field named file is required"))?;
    Ok(ImportUpload {
        id,
        path,
        file_name,
        file_bytes,
        format,
        match_mode,
    })
}

const FORMATS: (&str, &str) = ("format", "must be one of auto, marc, marcxml");
const MATCH_MODES: (&str, &str) = ("match", "must be one of isbn, control-number, none");

/// A text field naming one of a set of choices (`(field, message)` when it names none).
async fn choice<T>(
    field: axum::extract::multipart::Field<'_>,
    parse: fn(&str) -> Option<T>,
    (name, message): (&str, &str),
) -> Result<T, ApiError> {
    let text = field.text().await.map_err(multipart_error)?;
    parse(text.trim()).ok_or_else(|| field_error(name, message))
}

/// Streams one multipart field into a new file at `path`, at most `max` bytes.
async fn write_field(
    mut field: axum::extract::multipart::Field<'_>,
    path: &std::path::Path,
    max: u64,
) -> Result<u64, ApiError> {
    let mut out = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let mut written = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        written += chunk.len() as u64;
        if written > max {
            return Err(too_large(max));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    out.flush().await.map_err(|e| ApiError::internal(&e))?;
    Ok(written)
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
    } else {
        ApiError::bad_request("malformed multipart body")
    }
}

/// An import job and its progress (librarian).
#[utoipa::path(get, path = "/imports/{id}", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = ImportView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_import(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Path(id): Path<String>,
) -> Result<axum::Json<ImportView>, ApiError> {
    let row = state
        .store
        .find_import(parse_id(&id)?)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(row.into()))
}

/// A record an import reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorView {
    /// 1-based position of the record in the file.
    pub index: i64,
    /// The record's 001.
    pub control_number: Option<String>,
    pub reason: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ErrorPageParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn decode_position(cursor: Option<&str>) -> Result<Option<(i64, i64)>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request("invalid cursor")
            .with_detail("fields", json!({"cursor": "is not a cursor from this API"}))
    };
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let (index, seq) = text.split_once(':').ok_or_else(invalid)?;
    Ok(Some((
        index.parse().map_err(|_| invalid())?,
        seq.parse().map_err(|_| invalid())?,
    )))
}

/// The records an import failed, skipped for a reason, or cut, in file order (librarian).
#[utoipa::path(get, path = "/imports/{id}/errors", tag = "catalog", security(("bearer" = [])), params(("id" = Uuid, Path), ErrorPageParams),
    responses((status = 200, body = Page<ImportErrorView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn import_errors(
    State(state): State<AppState>,
    RequireLibrarian(_staff): RequireLibrarian,
    Path(id): Path<String>,
    Query(p): Query<ErrorPageParams>,
) -> Result<axum::Json<Page<ImportErrorView>>, ApiError> {
    let id = parse_id(&id)?;
    state
        .store
        .find_import(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let limit = pagination::limit(p.limit)?;
    let mut rows: Vec<ImportErrorRow> = state
        .store
        .import_errors(id, decode_position(p.cursor.as_deref())?, limit)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|r| URL_SAFE_NO_PAD.encode(format!("{}:{}", r.record_index, r.seq)));
    Ok(axum::Json(Page {
        data: rows
            .into_iter()
            .map(|r| ImportErrorView {
                index: r.record_index,
                control_number: r.control_number,
                reason: r.reason,
            })
            .collect(),
        next_cursor,
    }))
}

const MARCXML: &str = "application/marcxml+xml";
const MARC: &str = "application/marc";

/// Whether `Accept` prefers ISO 2709 over MARCXML (by q-value, then order).
/// Anything else, or no `Accept` at all, gets MARCXML.
fn wants_iso2709(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut best: Option<(f32, bool)> = None;
    for entry in accept.split(',') {
        let mut parts = entry.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        let iso = match media.as_str() {
            MARC => true,
            MARCXML | "application/xml" | "text/xml" => false,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, iso));
        }
    }
    best.is_some_and(|(_, iso)| iso)
}

/// An item as a MARC 21 record (no login needed): its original record with
/// Carrel's current fields and copies (as 952) written over it. `Accept:
/// application/marc` gives ISO 2709; anything else MARCXML.
#[utoipa::path(get, path = "/items/{id}/marc", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The record: MARCXML, or ISO 2709 with `Accept: application/marc`", content_type = "application/marcxml+xml"), (status = 404, body = ErrorBody)))]
async fn item_marc(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let item = state
        .store
        .find_item(id, false)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let copies = state.store.list_copies(id).await?;
    let stored = state.store.find_item_record(id).await?;
    let branches = marc::BranchCodes::load(&state.store).await?;
    let record = marc::export_item(&item, &copies, stored.as_ref(), &branches)
        .map_err(crate::catalog::CatalogError::Internal)?;
    let (content_type, body) = if wants_iso2709(&headers) {
        let mut out = Vec::new();
        carrel_marc::iso2709::write_record(&record, &mut out)
            .map_err(|e| crate::catalog::CatalogError::Internal(e.to_string()))?;
        (MARC, out)
    } else {
        let text = carrel_marc::marcxml::to_marcxml_document(&record)
            .map_err(|e| crate::catalog::CatalogError::Internal(e.to_string()))?;
        (MARCXML, text.into_bytes())
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::VARY, HeaderValue::from_static("accept")),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accept_negotiation() {
        assert!(!wants_iso2709(&HeaderMap::new()));
        assert!(wants_iso2709(&accept("application/marc")));
        assert!(!wants_iso2709(&accept("application/marcxml+xml")));
        assert!(!wants_iso2709(&accept("*/*")));
        assert!(!wants_iso2709(&accept("text/html")));
        assert!(wants_iso2709(&accept(
            "application/marcxml+xml;q=0.5, application/marc"
        )));
        assert!(!wants_iso2709(&accept(
            "application/marc;q=0.2, application/xml;q=0.9"
        )));
        assert!(!wants_iso2709(&accept("application/marc;q=0")));
    }
}
