//! Carrel outgoing mail.
//!
//! A [`Mailer`] delivers plain-text [`Email`]s either over SMTP (via `lettre`, TLS through
//! rustls) or into a file *outbox* directory of RFC 5322 `.eml` files (development and
//! tests; [`read_outbox`] reads it back). [`Mailer::send_later`] queues a message for a
//! background task that retries failed deliveries with backoff, so the request that
//! triggers a mail never waits for it or fails because of it. Security mail (password
//! resets, invitations, lockout notices; [`Priority::Security`]) has a queue lane of its
//! own that is served first, so a flood of other mail can neither drop nor delay it.
//!
//! Ready-made message texts live in [`messages`].
//!
//! The Carrel server does not use the in-memory queue: it writes every message to its
//! durable outbox (a database table, in the transaction that causes the mail) and its
//! sender delivers each one with [`Mailer::send`], retrying and dead-lettering in the
//! database (see `carrel_server::outbox`).
//!
//! # Transport security
//!
//! * `smtps://[user:pass@]host[:465]`: implicit TLS (rustls, `ring` provider, Mozilla roots
//!   from `webpki-roots`; certificates are always verified).
//! * `smtp://[user:pass@]host[:587]`: STARTTLS is *required*; a server that does not offer
//!   it is not used (nothing, in particular no password, is sent in clear).
//! * The single exception: `smtp://` to a loopback host (`localhost`, `127.0.0.0/8`, `::1`)
//!   **without** credentials talks plain SMTP, for local mail catchers (e.g. Mailpit) and
//!   tests. With credentials, loopback also requires STARTTLS.
//! * Query parameters such as lettre's `?tls=none|opportunistic|required` are refused.
//!
//! # Body encoding
//!
//! Outbox files use `7bit` (ASCII) or `8bit` (UTF-8) so links can be found by substring
//! search (quoted-printable only for lines over 998 octets). Over SMTP lettre picks the
//! encoding (7bit, else quoted-printable/base64), which is safe for any server.

mod mailer;
pub mod messages;
mod outbox;
mod smtp;

use std::fmt;

pub use mailer::{
    DEFAULT_RETRY_DELAYS, Mailer, QUEUE_CAPACITY, SECURITY_QUEUE_CAPACITY, Transport,
};
pub use outbox::{OutboxMessage, read_outbox};
pub use smtp::{SmtpRelay, SmtpSecurity};

/// Which lane of the background queue a message takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    /// Verification mail, notices and everything else.
    #[default]
    Normal,
    /// Account security (password reset, invitation, lockout notice): a lane of its own
    /// ([`SECURITY_QUEUE_CAPACITY`]) that is served first, so no flood of normal mail can
    /// push these out of the queue or hold them up behind it.
    Security,
}

/// One plain-text message.
///
/// `Debug` prints `to` and `subject` only: bodies contain single-use tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    /// Recipient mailbox, e.g. `reader@example.org` or `Ada <ada@example.org>`.
    pub to: String,
    pub subject: String,
    /// Plain-text UTF-8 body (LF line endings).
    pub body: String,
    /// The queue lane; [`Priority::Normal`] unless the message is about account security.
    pub priority: Priority,
}

impl Email {
    /// A message of [`Priority::Normal`].
    pub fn new(to: impl Into<String>, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
            priority: Priority::Normal,
        }
    }

    /// The same message in the [`Priority::Security`] lane.
    pub fn security(mut self) -> Self {
        self.priority = Priority::Security;
        self
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// Errors of this crate. No variant ever carries the SMTP password or a message body.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Bad configuration: from-address or SMTP URL.
    #[error("mail configuration error: {0}")]
    Config(String),
    /// Bad recipient address.
    #[error("invalid recipient address: {0}")]
    Address(String),
    /// Building or delivering the message failed.
    #[error("sending mail failed: {0}")]
    Send(String),
    /// Outbox file system error.
    #[error("mail outbox I/O error: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests;
