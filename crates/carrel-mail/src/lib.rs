//! Carrel outgoing mail.
