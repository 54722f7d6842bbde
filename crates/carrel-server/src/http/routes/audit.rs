//! `GET /api/v1/audit-events` (admin).

use axum::extract::State;
use carrel_store::{AuditEvent, AuditQuery};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Query;
use crate::http::pagination::{self, Page};
use crate::http::principal::RequireAdmin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: Uuid,
    pub event_type: String,
    pub actor_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            actor_id: e.actor_id,
            subject_id: e.subject_id,
            ip_address: e.ip_address,
            user_agent: e.user_agent,
            request_id: e.request_id,
            at: e.at,
            details: e.details.0,
        }
    }
}

/// An event as JSON (also used by the personal data export).
pub fn event_json(event: AuditEvent) -> Value {
    serde_json::to_value(AuditEventView::from(event)).unwrap_or(Value::Null)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    pub actor_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    /// Exact match, e.g. `auth.login_failed`; an unknown type is a 400.
    pub event_type: Option<String>,
    /// RFC 3339.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub since: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub until: Option<OffsetDateTime>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The audit log, newest first (admin).
#[utoipa::path(get, path = "/audit-events", tag = "audit", security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = Page<AuditEventView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    Query(params): Query<AuditParams>,
) -> Result<axum::Json<Page<AuditEventView>>, ApiError> {
    let limit = pagination::limit(params.limit)?;
    // Every filter filters: an unknown event type is refused, never ignored.
    if let Some(t) = params.event_type.as_deref()
        && !crate::audit::is_event_type(t)
    {
        return Err(ApiError::bad_request("unknown event_type").with_detail(
            "fields",
            serde_json::json!({"event_type": "is not a known event type"}),
        ));
    }
    let event_type = params.event_type;
    let query = AuditQuery {
        actor_id: params.actor_id,
        subject_id: params.subject_id,
        event_type,
        since: params.since,
        until: params.until,
        before: pagination::decode_cursor(params.cursor.as_deref())?,
        limit,
    };
    let rows = state.store.list_audit_events(&query).await?;
    Ok(axum::Json(pagination::paginate(
        rows,
        limit,
        |e| (e.at, e.id),
        AuditEventView::from,
    )))
}
