//! Per-request context: the request id and the moment the request arrived (by
//! the server's clock). It is stored in the request's extensions for handlers
//! and in a task-local so error bodies built anywhere below can include it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::AppState;

/// The `X-Request-Id` header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every part of a request's handling may need to know about it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller's id if it was acceptable, otherwise a generated one.
    pub request_id: Arc<str>,
    /// Arrival time by the server clock (used for error timestamps).
    pub started_at: OffsetDateTime,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// The context of the request being handled on this task, or a fresh one when
/// called outside a request (e.g. a rejection built before the middleware ran).
pub fn current() -> RequestContext {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| RequestContext {
            request_id: Uuid::now_v7().simple().to_string().into(),
            started_at: carrel_core::clock::truncate_to_seconds(OffsetDateTime::now_utc()),
        })
}

/// An incoming id is kept only if it is 1–128 characters of `[A-Za-z0-9._-]`,
/// so it cannot inject anything into logs or headers.
fn acceptable_request_id(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then_some(text)
}

/// Middleware: establishes the request context and echoes `X-Request-Id`.
pub async fn establish(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id: Arc<str> = match request
        .headers()
        .get(&REQUEST_ID)
        .and_then(acceptable_request_id)
    {
        Some(id) => id.into(),
        None => Uuid::now_v7().simple().to_string().into(),
    };
    #[allow(
        clippy::expect_used,
        reason = "an accepted id is ASCII letters, digits, '.', '_' and '-'; a new one is a UUID"
    )]
    let header =
        HeaderValue::from_str(&request_id).expect("request ids are header-safe by construction");
    request
        .headers_mut()
        .insert(REQUEST_ID.clone(), header.clone());
    let ctx = RequestContext {
        request_id,
        started_at: state.clock.now(),
    };
    request.extensions_mut().insert(ctx.clone());
    let mut response = CURRENT.scope(ctx, next.run(request)).await;
    response.headers_mut().insert(REQUEST_ID.clone(), header);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_validation() {
        let ok = |s: &str| acceptable_request_id(&HeaderValue::from_str(s).unwrap()).is_some();
        assert!(ok("abc-123_X.y"));
        assert!(ok(&"a".repeat(128)));
        assert!(!ok(&"a".repeat(129)));
        assert!(!ok(""));
        assert!(!ok("has space"));
        assert!(!ok("semi;colon"));
        assert!(!ok("quote\"d"));
    }
}
