//! `POST /api/v1/test/clock` (admin; only mounted when `CARREL_ENV=test`):
//! moves the server clock forward for every time-dependent rule.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Json;
use crate::http::principal::RequireAdmin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(advance_clock))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Seconds to move forward (0 ..= 100 years).
    pub advance_seconds: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClockNow {
    pub now: String,
}

/// Moves the server clock forward (test mode only).
#[utoipa::path(post, path = "/test/clock", tag = "test", security(("bearer" = [])), request_body = AdvanceClock,
    responses((status = 200, body = ClockNow), (status = 403, body = ErrorBody)))]
async fn advance_clock(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    Json(req): Json<AdvanceClock>,
) -> Result<axum::Json<ClockNow>, ApiError> {
    if !(0..=100 * 366 * 86_400).contains(&req.advance_seconds) {
        return Err(crate::http::error::field_error(
            "advance_seconds",
            "must be between 0 and 100 years",
        ));
    }
    state
        .clock
        .advance(time::Duration::seconds(req.advance_seconds));
    // The background jobs see the new time at once, not a jobs interval later.
    crate::jobs::run_once(&state, state.instance_id).await?;
    Ok(axum::Json(ClockNow {
        now: crate::http::rfc3339(state.clock.now()),
    }))
}
