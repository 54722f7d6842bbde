//! Cross-cutting middleware: security headers, error-shape normalisation, and
//! one log line plus metrics per request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::client::{rate_key, request_client_ip};
use super::context::RequestContext;
use super::error::{ApiError, ContractErrorBody};
use crate::config::Environment;
use crate::limits::{self, Limit};
use crate::state::AppState;

/// The API serves JSON only: nothing may load, frame or run from its responses.
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// The bundled Swagger UI loads its own scripts and styles, and nothing else.
pub(crate) const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds the contract's security headers unless a handler chose its own value
/// (e.g. `Cache-Control` on cover images, the CSP of the docs UI).
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, API_CSP),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if state.config.env == Environment::Production {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(
                "max-age=63072000; includeSubDomains",
            ));
    }
    response
}

/// Rewrites error responses produced outside our handlers (axum's 404/405,
/// body-limit 413, timeout, panics) into the contract's error body, keeping
/// headers such as `Allow`.
pub async fn normalize_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<ContractErrorBody>().is_some()
    {
        return response;
    }
    let (parts, _body) = response.into_parts();
    let mut normalized = ApiError::from_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            normalized.headers_mut().insert(name, value.clone());
        }
    }
    normalized
}

/// One span and one log line per request (method, route template, status,
/// latency, request id), and the HTTP metrics. Only the route template is
/// recorded, never the raw URI: query strings may carry tokens.
pub async fn observe(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = request
        .extensions()
        .get::<RequestContext>()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let span = tracing::info_span!("request", %method, %route, request_id = %request_id);
    let started = Instant::now();
    metrics::gauge!("http_requests_in_flight").increment(1.0);
    let response = next.run(request).instrument(span.clone()).await;
    metrics::gauge!("http_requests_in_flight").decrement(1.0);
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let labels = [
        ("method", method_label(&method)),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(latency.as_secs_f64());
    let latency_ms = format!("{:.3}", latency.as_secs_f64() * 1_000.0);
    span.in_scope(|| tracing::info!(status, latency_ms, "request completed"));
    response
}

/// Methods outside the standard set collapse into one label (bounded cardinality).
fn method_label(method: &Method) -> String {
    match *method {
        Method::GET
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS => method.as_str().to_owned(),
        _ => "OTHER".to_owned(),
    }
}

/// The catch-all limit per client IP, then the `RateLimit-*` headers of the
/// tightest limit any handler checked (see [`crate::limits`]).
pub async fn rate_limits(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let subject = rate_key(request_client_ip(
        request.extensions(),
        request.headers(),
        &state,
    ));
    let (mut response, tightest) = limits::collecting_decisions(async {
        if let Err(refused) = limits::enforce(&state, Limit::Global, &subject).await {
            return ApiError::from(refused).into_response();
        }
        next.run(request).await
    })
    .await;
    if let Some(decision) = tightest {
        for (name, value) in super::error::rate_limit_headers(&decision) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
