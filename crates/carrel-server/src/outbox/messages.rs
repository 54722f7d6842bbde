//! The outbox's message kinds: what is stored when a message is enqueued (the
//! template's parameters) and how a stored message becomes an email again.
//!
//! A payload may hold a single-use link; it is only ever rendered into the
//! email itself, never logged or listed.

use carrel_mail::{Email, messages};
use carrel_store::{NewOutboxMessage, OutboxPriority};
use serde_json::{Value, json};

/// Every kind the sender can render (the store's circulation notices are
/// `hold_ready`, `due_soon` and `overdue`).
pub const KINDS: &[&str] = &[
    "verify_email",
    "password_reset",
    "invitation",
    "account_locked",
    "registration_attempt",
    "username_taken",
    "hold_ready",
    "due_soon",
    "overdue",
];

fn message(
    kind: &'static str,
    to: &str,
    priority: OutboxPriority,
    payload: Value,
) -> NewOutboxMessage {
    NewOutboxMessage {
        kind,
        recipient: to.to_owned(),
        priority,
        payload,
    }
}

/// "Confirm your email address".
pub fn verify_email(to: &str, link: &str) -> NewOutboxMessage {
    message(
        "verify_email",
        to,
        OutboxPriority::Normal,
        json!({"link": link}),
    )
}

/// "Reset your password" (security).
pub fn password_reset(to: &str, link: &str, valid_minutes: u32) -> NewOutboxMessage {
    message(
        "password_reset",
        to,
        OutboxPriority::Security,
        json!({"link": link, "valid_minutes": valid_minutes}),
    )
}

/// "You have been invited to Carrel" (security).
pub fn invitation(to: &str, link: &str, valid_hours: u32) -> NewOutboxMessage {
    message(
        "invitation",
        to,
        OutboxPriority::Security,
        json!({"link": link, "valid_hours": valid_hours}),
    )
}

/// "Your account was locked" (security).
pub fn account_locked(to: &str, until_rfc3339: &str) -> NewOutboxMessage {
    message(
        "account_locked",
        to,
        OutboxPriority::Security,
        json!({"until": until_rfc3339}),
    )
}

/// "Someone tried to register with your email" (with a reset link).
pub fn registration_attempt(to: &str, reset_link: &str) -> NewOutboxMessage {
    message(
        "registration_attempt",
        to,
        OutboxPriority::Normal,
        json!({"link": reset_link}),
    )
}

/// "Your Carrel registration": the username asked for is taken.
pub fn username_taken(to: &str, username: &str) -> NewOutboxMessage {
    message(
        "username_taken",
        to,
        OutboxPriority::Normal,
        json!({"username": username}),
    )
}

/// Why a stored message cannot be turned back into an email (a permanent
/// failure: it is dead-lettered at once).
#[derive(Debug, thiserror::Error)]
#[error("cannot render a `{kind}` message: {reason}")]
pub struct RenderError {
    kind: String,
    reason: &'static str,
}

/// The email a stored message stands for.
pub fn render(kind: &str, recipient: &str, payload: Option<&Value>) -> Result<Email, RenderError> {
    let fail = |reason| RenderError {
        kind: kind.to_owned(),
        reason,
    };
    let payload = payload.ok_or_else(|| fail("its payload is gone"))?;
    let text = |field: &str| {
        payload
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| fail("a field is missing"))
    };
    let number = |field: &str| {
        payload
            .get(field)
            .and_then(Value::as_i64)
            .ok_or_else(|| fail("a field is missing"))
    };
    let small = |field: &str| number(field).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let instant = |field: &str| {
        number(field).and_then(|n| {
            time::OffsetDateTime::from_unix_timestamp(n).map_err(|_| fail("a time is out of range"))
        })
    };
    Ok(match kind {
        "verify_email" => messages::verify_email(recipient, text("link")?),
        "password_reset" => {
            messages::password_reset(recipient, text("link")?, small("valid_minutes")?)
        }
        "invitation" => messages::invitation(recipient, text("link")?, small("valid_hours")?),
        "account_locked" => messages::account_locked(recipient, text("until")?),
        "registration_attempt" => messages::registration_attempt(recipient, text("link")?),
        "username_taken" => messages::username_taken(recipient, text("username")?),
        "hold_ready" => messages::hold_ready(
            recipient,
            text("title")?,
            &carrel_core::clock::rfc3339(instant("pickup_until")?),
        ),
        "due_soon" => messages::due_soon(
            recipient,
            text("title")?,
            &instant("due_at")?.date().to_string(),
        ),
        "overdue" => messages::overdue(
            recipient,
            text("title")?,
            &instant("due_at")?.date().to_string(),
        ),
        _ => return Err(fail("the kind is unknown")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_renders_what_it_stores() {
        let to = "ada@example.org";
        let link = "https://lib.example/reset-password?token=abc";
        let stored = [
            verify_email(to, link),
            password_reset(to, link, 30),
            invitation(to, link, 72),
            account_locked(to, "2026-12-06T10:00:00Z"),
            registration_attempt(to, link),
            username_taken(to, "ada"),
            message(
                "hold_ready",
                to,
                OutboxPriority::Normal,
                json!({"title": "Dune", "pickup_until": 1_800_000_000}),
            ),
            message(
                "due_soon",
                to,
                OutboxPriority::Normal,
                json!({"title": "Dune", "due_at": 1_800_000_000}),
            ),
            message(
                "overdue",
                to,
                OutboxPriority::Normal,
                json!({"title": "Dune", "due_at": 1_800_000_000}),
            ),
        ];
        assert_eq!(stored.len(), KINDS.len());
        for m in &stored {
            assert!(KINDS.contains(&m.kind));
            let email = render(m.kind, &m.recipient, Some(&m.payload)).expect(m.kind);
            assert_eq!(email.to, to);
            let security = matches!(m.kind, "password_reset" | "invitation" | "account_locked");
            assert_eq!(
                m.priority == OutboxPriority::Security,
                security,
                "{}",
                m.kind
            );
            assert_eq!(
                email.priority == carrel_mail::Priority::Security,
                security,
                "{}",
                m.kind
            );
        }
        assert!(render("nonsense", to, Some(&json!({}))).is_err());
        assert!(render("verify_email", to, None).is_err());
        assert!(render("verify_email", to, Some(&json!({}))).is_err());
    }
}
