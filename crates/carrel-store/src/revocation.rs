//! What ends or changes sessions, shared by every module that writes accounts
//! and sessions (users, sessions, credentials, MFA, PINs) and by the in-process
//! view of live sessions (`session_cache`), so none of them borrows from another.

use uuid::Uuid;

/// Revokes every live session of a user except, optionally, one.
/// Binds: user id, now, reason, kept session id (or NULL).
pub(crate) const REVOKE_ALL: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL AND ($4 IS NULL OR id <> $4)";

/// What a write may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthChange {
    /// One session (revoked, or its scope changed).
    Session(Uuid),
    /// An account, and so every session of it.
    User(Uuid),
}
