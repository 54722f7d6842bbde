//! Recording audit events: stored in `audit_events` and emitted as a structured
//! log line (target `audit`). Callers pass only non-secret details.

use serde_json::Value;
use uuid::Uuid;

use crate::http::client::ClientInfo;
use crate::state::AppState;

/// Records one event. A failure to store it is logged, not returned: the action
/// it describes has already happened.
pub async fn record(
    state: &AppState,
    client: &ClientInfo,
    event_type: &'static str,
    actor_id: Option<Uuid>,
    subject_id: Option<Uuid>,
    details: Value,
) {
    tracing::info!(
        target: "audit",
        event_type,
        actor_id = ?actor_id,
        subject_id = ?subject_id,
        ip = ?client.ip,
        request_id = %client.request_id,
        details = %details,
        "audit event"
    );
    let event = carrel_store::NewAuditEvent {
        event_type,
        actor_id,
        subject_id,
        ip_address: client.ip_string(),
        user_agent: client.user_agent.clone(),
        request_id: Some(client.request_id.clone()),
        at: state.clock.now(),
        details,
    };
    if let Err(error) = state.store.record_audit_event(&event).await {
        tracing::error!(%error, event_type, "could not store an audit event");
    }
}
