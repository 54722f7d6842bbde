//! The HTTP layer: routing, extractors, middleware and the error mapping.
//! Handlers translate between HTTP and the domain; they hold no business rules.

pub mod client;
pub mod context;
pub mod error;
pub mod extract;
mod middleware;
mod openapi;
pub mod pagination;
pub mod principal;
pub mod routes;

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{Config, Environment};
use crate::state::AppState;
use error::{ApiError, ErrorCode};

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// Every route with its OpenAPI description, before state is attached. The
/// test-clock endpoint exists only in test mode (and so only in its document).
fn documented_routes(env: Environment, upload_max_bytes: usize) -> OpenApiRouter<AppState> {
    let mut v1 = OpenApiRouter::new()
        .nest("/auth", routes::auth::router())
        .nest("/users", routes::users::router())
        .merge(routes::catalog::router())
        .merge(routes::marc::router())
        .merge(routes::covers::router(upload_max_bytes))
        .merge(routes::loans::router())
        .merge(routes::holds::router())
        .merge(routes::fines::router())
        .merge(routes::policies::router())
        .merge(routes::branches::router())
        .merge(routes::item_types::router())
        .merge(routes::patron_categories::router())
        .merge(routes::rules::router())
        .merge(routes::audit::router())
        .merge(routes::outbox::router());
    if env == Environment::Test {
        v1 = v1.merge(routes::test_clock::router());
    }
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::ops::router())
        .merge(routes::auth::well_known_router())
        .nest("/api/v1", v1)
}

/// The OpenAPI document (what `carrel openapi` prints and the server serves).
pub fn openapi_document(env: Environment) -> utoipa::openapi::OpenApi {
    let mut doc = documented_routes(env, 0).into_openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi::add_common_responses(&mut doc);
    doc
}

/// RFC 3339 text of a UTC timestamp (the clock's; shared with the layers below HTTP).
pub use carrel_core::clock::rfc3339;

/// The JSON API with its docs UI, the fallback and the middleware stack, around
/// `extra` routes that get the same stack: the other front doors mounted beside
/// the API (the web pages; see `startup::router`), and routes added for
/// embedding or by tests that need a deliberately slow or failing route.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let env = state.config.env;
    let (routes, _) = documented_routes(env, state.config.upload_max_bytes).split_for_parts();
    let docs: Router<AppState> = Router::from(
        SwaggerUi::new("/docs").url(OPENAPI_PATH, openapi_document(env)),
    )
    .layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(middleware::DOCS_CSP),
    ));
    let config = &state.config;
    // Outermost first. The request context comes first so everything below,
    // error bodies from panics and timeouts included, carries the request id.
    let stack = ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::establish,
        ))
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::security_headers,
        ))
        .layer(axum::middleware::from_fn(middleware::normalize_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::rate_limits,
        ))
        .layer(cors(config))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(config.body_max_bytes))
        .layer(CatchPanicLayer::custom(panic_response));
    routes
        .merge(docs)
        .merge(extra)
        .fallback(|| async { ApiError::not_found() })
        .layer(stack)
        .with_state(state)
}

/// Cross-origin access only for `CARREL_CORS_ORIGINS`; none when it is empty.
fn cors(config: &Config) -> CorsLayer {
    if config.cors_origins.is_empty() {
        return CorsLayer::new();
    }
    let exposed = [
        "x-request-id",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
        "idempotent-replayed",
    ];
    let layer = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-csrf-token"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers(exposed.map(HeaderName::from_static))
        .max_age(std::time::Duration::from_secs(600));
    if config.cors_origins.iter().any(|o| o == "*") {
        // Any origin, but never with credentials (refused in production anyway).
        return layer.allow_origin(AllowOrigin::any());
    }
    let origins = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect::<Vec<_>>();
    layer
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
}

/// A panicking handler yields a 500 in the contract's shape; the panic message
/// goes to the log only.
fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "internal server error",
    )
    .into_response()
}
