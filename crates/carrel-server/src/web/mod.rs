//! The web interface: server-rendered pages served by the same binary as the
//! API (see "The web interface" in INTEROP.md).
//!
//! - Templates are askama's, compiled and type-checked with the binary
//!   (`crates/carrel-server/templates/`); every text comes from the message
//!   catalog in [`i18n`] (English and French), chosen by the `carrel_lang`
//!   cookie (the language switch) or `Accept-Language`.
//! - One stylesheet, embedded and served under a content-hashed name with a
//!   year-long immutable cache; no script at all, and a CSP that allows
//!   nothing else (no inline script or style).
//! - Sessions are the API's cookie mode (`carrel_access` + `carrel_csrf`):
//!   signing in here starts the same session the JSON login does. Every form
//!   carries the CSRF token in a hidden `csrf` field; every POST is refused
//!   without it. For a signed-in caller the check is the API's own
//!   ([`check_csrf`](crate::http::principal::check_csrf)): the field must
//!   equal the cookie and be bound to the session, and a foreign `Origin` is
//!   refused; before sign-in it is a double submit against the cookie.
//! - Pages call the same use cases as the JSON handlers (`accounts::*`,
//!   `app::*`, the catalog's search), with the same rate limits and audit.

mod account;
mod admin;
mod assets;
mod desk;
pub mod i18n;
mod public;
mod session;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use i18n::Lang;
pub use session::Web;

use crate::state::AppState;

/// The pages' CSP: the API's, plus the one stylesheet and images from this
/// origin, and forms posting only here. No script source at all.
pub const WEB_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Every page, the language switch and the stylesheet.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(public::search))
        .route("/items/{id}", get(public::item))
        .route("/items/{id}/hold", post(public::place_hold))
        .route("/login", get(session::login_page).post(session::login))
        .route("/login/mfa", post(session::login_mfa))
        .route("/logout", post(session::logout))
        .route("/logout-all", post(session::logout_all))
        .route(
            "/register",
            get(session::register_page).post(session::register),
        )
        .route(
            "/verify-email",
            get(session::verify_page).post(session::verify),
        )
        .route(
            "/forgot-password",
            get(session::forgot_page).post(session::forgot),
        )
        .route(
            "/reset-password",
            get(session::reset_page).post(session::reset),
        )
        .route("/language", post(session::set_language))
        .route("/account", get(account::overview))
        .route("/account/loans/{id}/renew", post(account::renew))
        .route("/account/holds/{id}/cancel", post(account::cancel_hold))
        .route("/account/holds/{id}/pickup", post(account::change_pickup))
        .route("/account/fines/{id}/pay", post(account::pay_fine))
        .route(
            "/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route("/account/pin", post(account::set_pin))
        .route("/account/history", post(account::set_history))
        .route("/account/export", get(account::export))
        .route("/account/mfa", get(account::mfa_settings))
        .route("/account/mfa/setup", post(account::mfa_setup))
        .route("/account/mfa/confirm", post(account::mfa_confirm))
        .route("/account/mfa/disable", post(account::mfa_disable))
        .route("/desk", get(desk::desk))
        .route("/desk/checkout", post(desk::checkout))
        .route("/desk/return", post(desk::return_copy))
        .route("/desk/branch", post(desk::choose_branch))
        .route("/desk/receive", post(desk::receive))
        .route("/desk/fines/{id}/pay", post(desk::pay_fine))
        .route("/desk/fines/{id}/waive", post(desk::waive_fine))
        .route("/admin", get(admin::home))
        .route("/admin/rules", get(admin::rules))
        .route(
            "/admin/rules/edit",
            get(admin::edit_rules).post(admin::save_rules),
        )
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{id}/role", post(admin::set_role))
        .route("/admin/users/{id}/active", post(admin::set_active))
        .route(
            "/admin/branches",
            get(admin::branches).post(admin::create_branch),
        )
        .route(
            "/admin/branches/{id}",
            get(admin::branch).post(admin::update_branch),
        )
        .route("/admin/branches/{id}/calendar", post(admin::set_calendar))
        .route("/admin/types", get(admin::types))
        .route(
            "/admin/imports",
            get(admin::imports)
                .post(admin::start_import)
                // The import's own limit applies while the file streams.
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/admin/item-types", post(admin::create_type))
        .route("/admin/item-types/{code}", post(admin::rename_type))
        .route("/admin/item-types/{code}/delete", post(admin::delete_type))
        .route("/admin/categories", post(admin::create_category))
        .route("/admin/categories/{code}", post(admin::update_category))
        .route(
            "/admin/categories/{code}/delete",
            post(admin::delete_category),
        )
        .layer(axum::middleware::from_fn(page_headers))
        .merge(assets::router())
}

/// HTML pages send `Referrer-Policy: same-origin` (under `no-referrer`
/// browsers send `Origin: null` on same-origin form posts) and the pages'
/// CSP; the outer security middleware adds the rest and keeps these.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(WEB_CSP),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    response
}

/// A rendered page with its status. The response is marked as final so the
/// API's error normaliser leaves a 4xx page as HTML.
pub(crate) fn html(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => {
            let mut response = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response();
            response
                .extensions_mut()
                .insert(crate::http::error::ContractErrorBody);
            response
        }
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            crate::http::error::ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
    }
}

/// 303 See Other to a path of this site.
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A local path to go back to after a form (`next`): only this site's paths,
/// never `//host` or a scheme; `/` otherwise.
pub(crate) fn local_path(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if ok { next.to_owned() } else { "/".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn next_paths_stay_on_this_site() {
        assert_eq!(local_path("/account"), "/account");
        assert_eq!(local_path("/items/x?y=1"), "/items/x?y=1");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path(""), "/");
    }
}
