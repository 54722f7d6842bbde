//! Recording audit events: stored in `audit_events` and emitted as a structured
//! log line (target `audit`). Callers pass only non-secret details.
//!
//! A store use case that runs in a transaction takes its events as an
//! [`carrel_store::AuditTrail`] built with [`event`], and commits them with the
//! change; [`record`] is for actions that are not one store transaction.

use serde_json::Value;
use uuid::Uuid;

use crate::client::ClientInfo;
use crate::state::AppState;

/// Every event type Carrel records, for the exact `event_type` filter of
/// `GET /audit-events` (anything else is a 400). A test checks that every
/// event type written in the source is listed here.
pub const EVENT_TYPES: &[&str] = &[
    "auth.locked",
    "auth.login_failed",
    "auth.login_rate_limited",
    "auth.login_succeeded",
    "auth.logout",
    "auth.mfa_challenged",
    "auth.mfa_disabled",
    "auth.mfa_enabled",
    "auth.mfa_failed",
    "auth.password_changed",
    "auth.password_reset",
    "auth.password_reset_requested",
    "auth.pin_locked",
    "auth.reauthentication_failed",
    "auth.recovery_code_used",
    "auth.refresh_reuse_detected",
    "auth.session_revoked",
    "branch.calendar_updated",
    "branch.created",
    "branch.updated",
    "catalog.import_finished",
    "catalog.import_started",
    "copy.received",
    "copy.transit_started",
    "fine.created",
    "fine.paid",
    "fine.waived",
    "hold.cancelled",
    "hold.fulfilled",
    "hold.pickup_changed",
    "hold.placed",
    "hold.ready",
    "item_type.created",
    "item_type.deleted",
    "item_type.updated",
    "loan.checked_out",
    "loan.lost",
    "loan.renewed",
    "loan.returned",
    "outbox.retried",
    "patron_category.created",
    "patron_category.deleted",
    "patron_category.updated",
    "policy.updated",
    "rules.replaced",
    "user.deleted",
    "user.email_verified",
    "user.pin_changed",
    "user.registered",
    "user.registration_refused",
    "user.restored",
    "user.role_changed",
    "user.unlocked",
    "user.updated",
];

/// Whether `event_type` is one Carrel records.
pub fn is_event_type(event_type: &str) -> bool {
    EVENT_TYPES.contains(&event_type)
}

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::EVENT_TYPES;

    /// The dotted string literals of the given prefixes in every `.rs` file under `dir`.
    fn literals(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                literals(&path, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for piece in text.split('"').skip(1).step_by(2) {
                let Some((area, name)) = piece.split_once('.') else {
                    continue;
                };
                let known_area = [
                    "auth", "user", "loan", "hold", "fine", "policy", "item", "copy",
                ]
                .contains(&area);
                let word = |w: &str| {
                    !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                };
                // A template's file name (`item.html`) is not an event.
                let file = ["html", "css", "js", "txt"].contains(&name);
                if known_area && word(name) && !file {
                    out.push(piece.to_owned());
                }
            }
        }
    }

    #[test]
    fn every_event_type_in_the_source_is_listed() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        literals(&root.join("src"), &mut found);
        literals(&root.join("../carrel-store/src"), &mut found);
        assert!(found.len() > 20, "the scan found the sources");
        for event_type in &found {
            assert!(
                EVENT_TYPES.contains(&event_type.as_str()),
                "{event_type} is recorded but missing from audit::EVENT_TYPES"
            );
        }
        let mut sorted = EVENT_TYPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), EVENT_TYPES.len(), "sorted and unique");
    }
}
