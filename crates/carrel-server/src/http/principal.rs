//! The authenticated caller, as extractors: a handler that takes
//! [`Authenticated`], [`RequireLibrarian`] or [`RequireAdmin`] cannot forget to
//! check, and a handler without one is public.
//!
//! Every request re-checks the session and its account: in the store's
//! in-process view of live sessions when that view may answer, else in the
//! database (one indexed lookup that also reads the account). Either way logout,
//! password change, deactivation, deletion and role changes take effect for
//! access tokens at once: on this instance as soon as the change has committed,
//! on other instances within half a second (see `carrel_store::session_cache`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum_extra::extract::CookieJar;
use carrel_core::roles::Role;
use uuid::Uuid;

use super::error::{ApiError, ErrorCode};
use crate::auth::cookies::{ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER};
pub use crate::auth::principal::Principal;
use crate::state::AppState;

/// What a session that must enrol in MFA may reach.
/// (The web pages' enrolment and sign-out are the same actions.)
const MFA_SETUP_PATHS: [&str; 9] = [
    "/api/v1/auth/mfa/totp/setup",
    "/api/v1/auth/mfa/totp/confirm",
    "/api/v1/auth/logout",
    "/api/v1/auth/logout-all",
    "/api/v1/users/me",
    "/account/mfa",
    "/account/mfa/setup",
    "/account/mfa/confirm",
    "/logout",
];

/// How stale `last_used_at` may get before a request refreshes it (a write).
const TOUCH_AFTER: time::Duration = time::Duration::seconds(60);

/// Any signed-in user.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

/// A librarian or an admin.
#[derive(Debug, Clone)]
pub struct RequireLibrarian(pub Principal);

/// An admin.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub Principal);

pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "authentication required",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    )
}

pub fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        "you are not allowed to do this",
    )
}

pub fn csrf_failed() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::CsrfFailed,
        "missing or invalid CSRF token",
    )
}

/// The bearer token, or the access cookie (then `true`).
fn presented_token(headers: &HeaderMap, jar: &CookieJar) -> Option<(String, bool)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_owned(), false));
    }
    jar.get(ACCESS_COOKIE).map(|c| (c.value().to_owned(), true))
}

/// True unless the request sends an `Origin` other than this server's or a
/// configured CORS origin (a cross-site form post).
pub fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    headers.get(header::ORIGIN).is_none_or(|origin| {
        let origin = origin.to_str().unwrap_or_default();
        origin == state.config.own_origin() || state.config.cors_origins.iter().any(|o| o == origin)
    })
}

/// Cookie-authenticated unsafe requests need `X-CSRF-Token` equal to the CSRF
/// cookie and bound to the session, and a same-site `Origin` when one is sent.
pub fn check_csrf(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    jar: &CookieJar,
    session_id: Uuid,
) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if !origin_allowed(state, headers) {
        return Err(csrf_failed());
    }
    let header_token = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let cookie_token = jar
        .get(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let ok = !header_token.is_empty()
        && carrel_crypto::constant_time_eq(header_token.as_bytes(), cookie_token.as_bytes())
        && carrel_crypto::verify_csrf_token(&state.secrets, session_id, header_token);
    if ok { Ok(()) } else { Err(csrf_failed()) }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Authenticated(principal.clone()));
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let (token, via_cookie) = presented_token(&parts.headers, &jar).ok_or_else(unauthorized)?;
        let now = state.clock.now();
        let claims = state
            .jwt
            .verify(&token, now.unix_timestamp())
            .map_err(|_| unauthorized())?;
        let session = state
            .store
            .live_session(claims.sid, now)
            .await?
            .ok_or_else(unauthorized)?;
        if session.user.id != claims.sub {
            return Err(unauthorized());
        }
        if via_cookie {
            check_csrf(
                state,
                &parts.method,
                &parts.headers,
                &jar,
                session.session_id,
            )?;
        }
        // Users of a role that must use MFA may only enrol (or leave) until they have.
        // Nested routers see a stripped path; the allow-list names full paths.
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(parts.uri.path(), |u| u.path());
        if session.scope.as_deref() == Some(crate::accounts::mfa::SCOPE_MFA_SETUP)
            && !MFA_SETUP_PATHS.contains(&path)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "set up multi-factor authentication first",
            )
            .with_detail("mfa_enrolment_required", serde_json::Value::Bool(true)));
        }
        if now - session.last_used_at > TOUCH_AFTER {
            state.store.touch_session(session.session_id, now).await?;
        }
        let principal = Principal {
            user_id: session.user.id,
            session_id: session.session_id,
            role: session.user.role,
            via_cookie,
            user: session.user,
        };
        parts.extensions.insert(principal.clone());
        Ok(Authenticated(principal))
    }
}

/// The caller if a valid session is presented; `None` otherwise (no error).
pub async fn optional(parts: &mut Parts, state: &AppState) -> Option<Principal> {
    Authenticated::from_request_parts(parts, state)
        .await
        .ok()
        .map(|Authenticated(p)| p)
}

impl FromRequestParts<AppState> for RequireLibrarian {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if principal.role.includes(Role::Librarian) {
            Ok(RequireLibrarian(principal))
        } else {
            Err(forbidden())
        }
    }
}

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if principal.role.includes(Role::Admin) {
            Ok(RequireAdmin(principal))
        } else {
            Err(forbidden())
        }
    }
}
