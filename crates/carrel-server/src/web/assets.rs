//! Static assets, embedded in the binary and served under content-hashed
//! names (`/static/carrel.<hash>.css`) so they may be cached for a year: a
//! changed file gets a new name.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;
use crate::state::AppState;

const STYLESHEET: &[u8] = include_bytes!("static/carrel.css");

/// `carrel.<first 16 hex digits of the SHA-256>.css`.
static STYLESHEET_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLESHEET);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("carrel.{hex}.css")
});

/// The stylesheet's URL, as pages link it.
pub fn stylesheet_url() -> String {
    format!("/static/{}", *STYLESHEET_NAME)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/{name}", get(asset))
        .route("/favicon.ico", get(favicon))
}

async fn asset(Path(name): Path<String>) -> Response {
    if name != *STYLESHEET_NAME {
        return ApiError::not_found().into_response();
    }
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    // A stylesheet may be loaded by this site's pages only.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::WEB_CSP),
    );
    response
}

/// Browsers ask for `/favicon.ico` on every site; there is none (204, cached
/// for a day) rather than a 404 in every console.
async fn favicon() -> Response {
    (
        axum::http::StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "public, max-age=86400")],
    )
        .into_response()
}
