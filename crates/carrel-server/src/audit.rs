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

/// The only events recorded on their own with [`record`] / [`record_event`]
/// instead of inside a use case's transaction: each records a refusal that
/// changes nothing (or nothing but the sign-in attempt's failure count, which
/// is settled before), so there is no change for it to commit with. Every
/// other event goes into its store method as an [`carrel_store::AuditTrail`];
/// a test scans the source for standalone call sites to keep it that way.
pub const STANDALONE_EVENTS: &[&str] = &[
    // A wrong, locked-out, unknown or unusable login (nothing opened).
    "auth.login_failed",
    // The per-identifier login budget refused the request.
    "auth.login_rate_limited",
    // A wrong second factor or enrolment code (its failure count is settled
    // by the attempt before the entry is written).
    "auth.mfa_failed",
    // A wrong password when re-authenticating for a sensitive action.
    "auth.reauthentication_failed",
    // Self-registration with a taken email or username: no account is made.
    "user.registration_refused",
    // Only when no account matches the address (nothing is written); for an
    // account the entry commits with the reset link.
    "auth.password_reset_requested",
    // The exception that is not a refusal: a SIP2 PIN attempt is counted as a
    // failure (compare-and-swap, which sets the lock when it is the last one
    // allowed) before the PIN is checked, and a right PIN clears it again; the
    // lock stands only once the check failed, when no write remains for the
    // entry to join.
    "auth.pin_locked",
];

/// Records one event on its own, for the refusals in [`STANDALONE_EVENTS`].
/// A failure to store it is logged, not returned: the action it describes
/// has already happened.
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

    use super::{EVENT_TYPES, STANDALONE_EVENTS};

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

    /// Builders of events that [`super::record_event`] may be handed, with the
    /// only event types they build (checked against their source below).
    const REFUSAL_BUILDERS: &[(&str, &[&str])] = &[
        // `login::failed_event`: `auth.login_failed`.
        ("failed_event(", &["auth.login_failed"]),
        // `check_password`'s `on_failure` closures: `login::login` passes one
        // building `auth.login_failed`, `reauthenticate` one building
        // `auth.reauthentication_failed`.
        (
            "on_failure(",
            &["auth.login_failed", "auth.reauthentication_failed"],
        ),
    ];

    /// The argument text of the call whose `(` is at `open` (strings aware).
    fn call_arguments(text: &str, open: usize) -> &str {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (i, c) in text[open..].char_indices() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[open + 1..open + i];
                    }
                }
                _ => {}
            }
        }
        &text[open..]
    }

    /// Every standalone audit call in the `.rs` files under `dir` (this file
    /// excepted): (file, the call as written, its arguments).
    fn standalone_calls(dir: &Path, out: &mut Vec<(String, String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                standalone_calls(&path, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("src/audit.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for call in [
                "audit::record(",
                "audit::record_event(",
                "record_audit_event(",
            ] {
                for (at, _) in text.match_indices(call) {
                    let open = at + call.len() - 1;
                    out.push((
                        path.display().to_string(),
                        call.to_owned(),
                        call_arguments(&text, open).to_owned(),
                    ));
                }
            }
        }
    }

    /// The event-type literals (`"area.name"`) in `text`.
    fn event_literals(text: &str) -> Vec<&str> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .filter(|piece| EVENT_TYPES.contains(piece))
            .collect()
    }

    #[test]
    fn only_refusals_are_recorded_outside_a_transaction() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut calls = Vec::new();
        standalone_calls(&root.join("src"), &mut calls);
        assert!(calls.len() >= 5, "the scan found the call sites: {calls:?}");
        for (file, call, arguments) in &calls {
            let where_ = format!("{call}{arguments}) in {file}");
            match call.as_str() {
                "audit::record(" => {
                    let events = event_literals(arguments);
                    assert_eq!(events.len(), 1, "one literal event type: {where_}");
                    assert!(
                        STANDALONE_EVENTS.contains(&events[0]),
                        "{} is recorded outside its use case's transaction (pass it to \
                         the store method as an AuditTrail): {where_}",
                        events[0]
                    );
                }
                "audit::record_event(" => assert!(
                    REFUSAL_BUILDERS
                        .iter()
                        .any(|(builder, _)| arguments.contains(builder)),
                    "an event not built by a known refusal builder is recorded \
                     outside a transaction: {where_}"
                ),
                // The command-line import (`carrel catalog import`) writes many
                // batch transactions and no job row; its start and end markers
                // are its only writes of their own.
                _ => assert!(
                    file.ends_with("cli/catalog.rs"),
                    "record_audit_event outside audit.rs: {where_}"
                ),
            }
        }
        // Each builder builds only the refusals it is listed with.
        let login = std::fs::read_to_string(root.join("src/accounts/login.rs")).unwrap();
        let failed_event = &login[login.find("fn failed_event(").unwrap()..];
        let failed_event = &failed_event[..failed_event.find("\n}\n").unwrap()];
        assert_eq!(event_literals(failed_event), ["auth.login_failed"]);
        for (_, events) in REFUSAL_BUILDERS {
            for event in *events {
                assert!(STANDALONE_EVENTS.contains(event), "{event}");
            }
        }
        let on_failure: Vec<&str> = login
            .match_indices("let on_failure")
            .map(|(at, _)| {
                let rest = &login[at..];
                let statement = &rest[..rest.find(";\n").unwrap()];
                event_literals(statement)
                    .into_iter()
                    .chain(
                        statement
                            .contains("failed_event(")
                            .then_some("auth.login_failed"),
                    )
                    .collect::<Vec<_>>()
            })
            .map(|events| {
                assert_eq!(events.len(), 1, "{events:?}");
                events[0]
            })
            .collect();
        assert_eq!(
            on_failure,
            ["auth.login_failed", "auth.reauthentication_failed"]
        );
        // The list holds refusals, and no event a use case commits itself.
        for event in STANDALONE_EVENTS {
            assert!(EVENT_TYPES.contains(event), "{event}");
        }
        for committed in [
            "auth.mfa_enabled",
            "auth.mfa_disabled",
            "auth.password_changed",
            "auth.password_reset",
            "auth.logout",
            "auth.login_succeeded",
            "user.email_verified",
            "user.registered",
        ] {
            assert!(!STANDALONE_EVENTS.contains(&committed), "{committed}");
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
