//! The authenticated caller: who acts in a use case, whichever front door they
//! came in by. The HTTP extractors that establish one are `http::principal`.

use std::sync::Arc;

use carrel_core::roles::Role;
use carrel_store::User;
use uuid::Uuid;

/// The caller behind a valid access token and a live session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// From the database, not the token.
    pub role: Role,
    /// True when authenticated by the access cookie (CSRF rules apply).
    pub via_cookie: bool,
    /// The account as read with the session on this request (live, not deleted).
    pub user: Arc<User>,
}

impl Principal {
    pub fn is_staff(&self) -> bool {
        self.role.includes(Role::Librarian)
    }
}
