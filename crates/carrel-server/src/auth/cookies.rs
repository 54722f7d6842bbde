//! Cookie mode: `carrel_access` and `carrel_refresh` (HttpOnly, SameSite=Strict,
//! Secure outside development; the refresh cookie only travels to
//! `/api/v1/auth`), and the readable `carrel_csrf` for the double submit.

use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};

pub const ACCESS_COOKIE: &str = "carrel_access";
pub const REFRESH_COOKIE: &str = "carrel_refresh";
pub const CSRF_COOKIE: &str = "carrel_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
const REFRESH_PATH: &str = "/api/v1/auth";

fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    http_only: bool,
    secure: bool,
    max_age: time::Duration,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(path)
        .http_only(http_only)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .build()
}

/// Sets the three cookies of a cookie-mode session.
pub fn set_session_cookies(
    jar: CookieJar,
    secure: bool,
    access: String,
    access_ttl: time::Duration,
    refresh: String,
    refresh_ttl: time::Duration,
    csrf: String,
) -> CookieJar {
    jar.add(cookie(ACCESS_COOKIE, access, "/", true, secure, access_ttl))
        .add(cookie(
            REFRESH_COOKIE,
            refresh,
            REFRESH_PATH,
            true,
            secure,
            refresh_ttl,
        ))
        .add(cookie(CSRF_COOKIE, csrf, "/", false, secure, refresh_ttl))
}

/// Opens a cookie-mode session for freshly issued tokens: the three cookies,
/// with the CSRF token bound to the session (returned too). The JSON login and
/// the web pages' login both call it.
pub fn start_session(
    state: &crate::state::AppState,
    jar: CookieJar,
    tokens: crate::auth::tokens::IssuedTokens,
) -> (CookieJar, String) {
    let csrf = carrel_crypto::csrf_token(&state.secrets, tokens.session_id);
    let jar = set_session_cookies(
        jar,
        state.config.secure_cookies(),
        tokens.access_token,
        crate::config::to_time(state.config.access_token_ttl),
        tokens.refresh_token,
        crate::config::to_time(state.config.refresh_token_ttl),
        csrf.clone(),
    );
    (jar, csrf)
}

/// Sets only the CSRF cookie.
pub fn set_csrf_cookie(
    jar: CookieJar,
    secure: bool,
    csrf: String,
    ttl: time::Duration,
) -> CookieJar {
    jar.add(cookie(CSRF_COOKIE, csrf, "/", false, secure, ttl))
}

/// Expires all three cookies (logout).
pub fn clear_session_cookies(jar: CookieJar, secure: bool) -> CookieJar {
    let gone = time::Duration::ZERO;
    jar.add(cookie(
        ACCESS_COOKIE,
        String::new(),
        "/",
        true,
        secure,
        gone,
    ))
    .add(cookie(
        REFRESH_COOKIE,
        String::new(),
        REFRESH_PATH,
        true,
        secure,
        gone,
    ))
    .add(cookie(CSRF_COOKIE, String::new(), "/", false, secure, gone))
}
