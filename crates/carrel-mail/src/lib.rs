//! Carrel outgoing mail.
//!
//! A [`Mailer`] delivers plain-text [`Email`]s either over SMTP (via `lettre`, TLS through
//! rustls) or into a file *outbox* directory of RFC 5322 `.eml` files (development and
//! tests; [`read_outbox`] reads it back). [`Mailer::send_later`] queues a message for a
//! background task that retries failed deliveries with backoff, so the request that
//! triggers a mail never waits for it or fails because of it.
//!
//! Ready-made message texts live in [`messages`].
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

pub use mailer::{DEFAULT_RETRY_DELAYS, Mailer, QUEUE_CAPACITY, Transport};
pub use outbox::{OutboxMessage, read_outbox};
pub use smtp::{SmtpRelay, SmtpSecurity};

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
}

impl Email {
    pub fn new(to: impl Into<String>, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
        }
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
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
