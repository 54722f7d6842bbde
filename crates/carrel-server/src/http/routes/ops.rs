//! Operations endpoints (no `/api/v1` prefix): liveness, readiness, metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// How long readiness waits for the database before answering 503.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(readiness))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    /// Always `ok` while the process serves.
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadinessStatus {
    /// `ready`.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
    /// The highest migration version applied and expected.
    pub migration_version: i64,
}

/// Liveness: 200 while the process serves requests.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is serving", body = HealthStatus)))]
async fn health() -> axum::Json<HealthStatus> {
    axum::Json(HealthStatus { status: "ok" })
}

/// Readiness: 200 when the database answers and every migration is applied.
#[utoipa::path(get, path = "/readiness", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve traffic", body = ReadinessStatus),
        (status = 503, description = "Database unreachable or migrations pending", body = ErrorBody),
    ))]
async fn readiness(State(state): State<AppState>) -> Result<axum::Json<ReadinessStatus>, ApiError> {
    let store = &state.store;
    let check = async {
        store.ping().await?;
        store.schema_is_current().await
    };
    match tokio::time::timeout(READINESS_TIMEOUT, check).await {
        Ok(Ok(true)) => Ok(axum::Json(ReadinessStatus {
            status: "ready",
            database: store.backend().name(),
            migration_version: store.latest_migration(),
        })),
        Ok(Ok(false)) => Err(ApiError::unavailable("database migrations are not current")
            .with_detail("migrations", json!("pending"))),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: database check failed");
            Err(ApiError::unavailable("the database is unavailable")
                .with_detail("database", json!("unreachable")))
        }
        Err(_) => Err(ApiError::unavailable("the database did not answer in time")
            .with_detail("database", json!("timeout"))),
    }
}

/// Prometheus metrics in the text exposition format. With `CARREL_METRICS_BIND`
/// they are served on that listener only, and this route is a 404.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 404, description = "Served on `CARREL_METRICS_BIND` instead", body = ErrorBody),
    ))]
async fn metrics(State(state): State<AppState>) -> Response {
    if state.config.metrics_bind.is_some() {
        return ApiError::not_found().into_response();
    }
    render_metrics(&state).into_response()
}

/// The metrics text (the main route, or the `CARREL_METRICS_BIND` listener).
pub fn render_metrics(state: &AppState) -> impl IntoResponse + use<> {
    let pool = state.store.pool_status();
    let backend = state.store.backend().name();
    metrics::gauge!("db_pool_connections", "backend" => backend, "state" => "open")
        .set(f64::from(pool.size));
    metrics::gauge!("db_pool_connections", "backend" => backend, "state" => "idle")
        .set(f64::from(pool.idle));
    metrics::gauge!("db_pool_connections_max", "backend" => backend).set(f64::from(pool.max));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
