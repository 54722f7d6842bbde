//! Recording audit events: stored in `audit_events` and emitted as a structured
//! log line (target `audit`). Callers pass only non-secret details.
//!
//! A store use case that runs in a transaction takes its events as an
//! [`carrel_store::AuditTrail`] built with [`event`], and commits them with the
//! change; [`record`] is for actions that are not one store transaction.

use serde_json::Value;
use uuid::Uuid;

use crate::http::client::ClientInfo;
use crate::state::AppState;

/// One event about this request, timestamped by the clock.
pub fn event(
    state: &AppState,
    client: &ClientInfo,
    event_type: &'static str,
    actor_id: Option<Uuid>,
    subject_id: Option<Uuid>,
    details: Value,
) -> carrel_store::NewAuditEvent {
    carrel_store::NewAuditEvent {
        event_type,
        actor_id,
        subject_id,
        ip_address: client.ip_string(),
        user_agent: client.user_agent.clone(),
        request_id: Some(client.request_id.clone()),
        at: state.clock.now(),
        details,
    }
}

/// Records one event on its own. A failure to store it is logged, not
/// returned: the action it describes has already happened.
pub async fn record(
    state: &AppState,
    client: &ClientInfo,
    event_type: &'static str,
    actor_id: Option<Uuid>,
    subject_id: Option<Uuid>,
    details: Value,
) {
    record_event(
        state,
        &event(state, client, event_type, actor_id, subject_id, details),
    )
    .await;
}

/// Records one event built with [`event`], as [`record`] does.
pub async fn record_event(state: &AppState, event: &carrel_store::NewAuditEvent) {
    if let Err(error) = state.store.record_audit_event(event).await {
        carrel_store::log_audit_events(std::slice::from_ref(event));
        tracing::error!(%error, event_type = event.event_type, "could not store an audit event");
    }
}
