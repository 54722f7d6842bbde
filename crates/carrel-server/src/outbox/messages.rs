//! The outbox's message kinds: what is stored when a message is enqueued (the
//! template's parameters) and how a stored message becomes an email again.
//!
//! A payload may hold a single-use link; it is only ever rendered into the
//! email itself, never logged or listed.

use carrel_core::statuses::MessageKind;
use carrel_mail::{Email, messages};
use carrel_store::{NewOutboxMessage, OutboxPriority, StoredKind};
use serde_json::{Value, json};

fn message(
    kind: MessageKind,
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
        MessageKind::VerifyEmail,
        to,
        OutboxPriority::Normal,
        json!({"link": link}),
    )
}

/// "Reset your password" (security).
pub fn password_reset(to: &str, link: &str, valid_minutes: u32) -> NewOutboxMessage {
    message(
        MessageKind::PasswordReset,
        to,
        OutboxPriority::Security,
        json!({"link": link, "valid_minutes": valid_minutes}),
    )
}

/// "You have been invited to Carrel" (security).
pub fn invitation(to: &str, link: &str, valid_hours: u32) -> NewOutboxMessage {
    message(
        MessageKind::Invitation,
        to,
        OutboxPriority::Security,
        json!({"link": link, "valid_hours": valid_hours}),
    )
}

/// "Your account was locked" (security).
pub fn account_locked(to: &str, until_rfc3339: &str) -> NewOutboxMessage {
    message(
        MessageKind::AccountLocked,
        to,
        OutboxPriority::Security,
        json!({"until": until_rfc3339}),
    )
}

/// "Someone tried to register with your email" (with a reset link).
pub fn registration_attempt(to: &str, reset_link: &str) -> NewOutboxMessage {
    message(
        MessageKind::RegistrationAttempt,
        to,
        OutboxPriority::Normal,
        json!({"link": reset_link}),
    )
}

/// "Your Carrel registration": the username asked for is taken.
pub fn username_taken(to: &str, username: &str) -> NewOutboxMessage {
    message(
        MessageKind::UsernameTaken,
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
pub fn render(
    kind: &StoredKind,
    recipient: &str,
    payload: Option<&Value>,
) -> Result<Email, RenderError> {
    let fail = |reason| RenderError {
        kind: kind.as_str().to_owned(),
        reason,
    };
    let payload = payload.ok_or_else(|| fail("its payload is gone"))?;
    let StoredKind::Known(kind) = *kind else {
        return Err(fail("the kind is unknown"));
    };
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
        MessageKind::VerifyEmail => messages::verify_email(recipient, text("link")?),
        MessageKind::PasswordReset => {
            messages::password_reset(recipient, text("link")?, small("valid_minutes")?)
        }
        MessageKind::Invitation => {
            messages::invitation(recipient, text("link")?, small("valid_hours")?)
        }
        MessageKind::AccountLocked => messages::account_locked(recipient, text("until")?),
        MessageKind::RegistrationAttempt => {
            messages::registration_attempt(recipient, text("link")?)
        }
        MessageKind::UsernameTaken => messages::username_taken(recipient, text("username")?),
        MessageKind::HoldReady => messages::hold_ready(
            recipient,
            text("title")?,
            &carrel_core::clock::rfc3339(instant("pickup_until")?),
        ),
        MessageKind::DueSoon => messages::due_soon(
            recipient,
            text("title")?,
            &instant("due_at")?.date().to_string(),
        ),
        MessageKind::Overdue => messages::overdue(
            recipient,
            text("title")?,
            &instant("due_at")?.date().to_string(),
        ),
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
                MessageKind::HoldReady,
                to,
                OutboxPriority::Normal,
                json!({"title": "Dune", "pickup_until": 1_800_000_000}),
            ),
            message(
                MessageKind::DueSoon,
                to,
                OutboxPriority::Normal,
                json!({"title": "Dune", "due_at": 1_800_000_000}),
            ),
            message(
                MessageKind::Overdue,
                to,
                OutboxPriority::Normal,
                json!({"title": "Dune", "due_at": 1_800_000_000}),
            ),
        ];
        let kinds: Vec<MessageKind> = stored.iter().map(|m| m.kind).collect();
        assert_eq!(kinds, MessageKind::ALL);
        for m in &stored {
            let kind = StoredKind::Known(m.kind);
            let email = render(&kind, &m.recipient, Some(&m.payload))
                .unwrap_or_else(|e| panic!("{}: {e}", m.kind));
            assert_eq!(email.to, to);
            let security = matches!(
                m.kind,
                MessageKind::PasswordReset | MessageKind::Invitation | MessageKind::AccountLocked
            );
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
        let unknown = StoredKind::from("nonsense".to_owned());
        assert_eq!(unknown, StoredKind::Unknown("nonsense".to_owned()));
        let refused = render(&unknown, to, Some(&json!({}))).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "cannot render a `nonsense` message: the kind is unknown"
        );
        let verify = StoredKind::from("verify_email".to_owned());
        assert_eq!(verify, StoredKind::Known(MessageKind::VerifyEmail));
        assert!(render(&verify, to, None).is_err());
        assert!(render(&verify, to, Some(&json!({}))).is_err());
    }
}
