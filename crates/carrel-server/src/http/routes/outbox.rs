//! `/api/v1/admin/outbox` (admin): the durable outbox of emails and notices,
//! and requeueing of dead-lettered messages. Never shows a message's body or
//! its link: recipient, kind, state, attempts, last error and times only.

use axum::extract::{Path, State};
use carrel_core::statuses::OutboxState;
use carrel_store::{OutboxEntry, OutboxQuery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::Actor;
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Query, parse_id};
use crate::http::pagination::{self, Page};
use crate::http::principal::RequireAdmin;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_messages))
        .routes(routes!(retry_message))
}

/// One outgoing message, without its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxMessageView {
    pub id: Uuid,
    /// The template: `verify_email`, `password_reset`, `invitation`, `account_locked`,
    /// `registration_attempt`, `username_taken`, `hold_ready`, `due_soon` or `overdue`.
    pub kind: String,
    pub recipient: String,
    /// `security` (sent first) or `normal`.
    pub priority: &'static str,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// The transport's last complaint (never the message's content).
    pub last_error: Option<String>,
    /// When a pending message is next tried.
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

impl From<OutboxEntry> for OutboxMessageView {
    fn from(e: OutboxEntry) -> Self {
        Self {
            id: e.id,
            kind: e.kind.as_str().to_owned(),
            recipient: e.recipient,
            priority: if e.priority == 0 {
                "security"
            } else {
                "normal"
            },
            state: e.state.as_str().to_owned(),
            attempts: e.attempts,
            last_error: e.last_error,
            next_attempt_at: e.next_attempt_at,
            created_at: e.created_at,
            updated_at: e.updated_at,
            sent_at: e.sent_at,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStateParam {
    Pending,
    Sent,
    Dead,
}

impl OutboxStateParam {
    pub fn state(self) -> OutboxState {
        match self {
            OutboxStateParam::Pending => OutboxState::Pending,
            OutboxStateParam::Sent => OutboxState::Sent,
            OutboxStateParam::Dead => OutboxState::Dead,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxParams {
    /// Default: every state.
    pub state: Option<OutboxStateParam>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Outgoing messages, newest first (admin).
#[utoipa::path(get, path = "/admin/outbox", tag = "operations", security(("bearer" = [])), params(OutboxParams),
    responses((status = 200, body = Page<OutboxMessageView>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_messages(
    State(state): State<AppState>,
    RequireAdmin(_admin): RequireAdmin,
    Query(params): Query<OutboxParams>,
) -> Result<axum::Json<Page<OutboxMessageView>>, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let rows = state
        .store
        .list_outbox(&OutboxQuery {
            state: params.state.map(OutboxStateParam::state),
            before: pagination::decode_cursor(params.cursor.as_deref())?,
            limit,
        })
        .await?;
    Ok(axum::Json(pagination::paginate(
        rows,
        limit,
        |m| (m.created_at, m.id),
        OutboxMessageView::from,
    )))
}

/// Requeues a dead-lettered message (admin): it is pending again, due now,
/// with a fresh set of attempts. Audited as `outbox.retried`.
#[utoipa::path(post, path = "/admin/outbox/{id}/retry", tag = "operations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = OutboxMessageView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the message is not dead (pending or already sent)")))]
async fn retry_message(
    State(state): State<AppState>,
    client: ClientInfo,
    RequireAdmin(admin): RequireAdmin,
    Path(id): Path<String>,
) -> Result<axum::Json<OutboxMessageView>, ApiError> {
    let actor = Actor::api(admin.user_id, &client);
    let entry = crate::app::outbox::retry_message(&state, &actor, parse_id(&id)?).await?;
    Ok(axum::Json(entry.into()))
}
