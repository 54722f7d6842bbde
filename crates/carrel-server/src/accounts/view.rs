use carrel_store::User;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// The public shape of an account: never a hash, token or secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    /// `patron`, `librarian` or `admin`.
    pub role: String,
    pub email_verified: bool,
    pub is_active: bool,
    pub mfa_enabled: bool,
    pub keep_loan_history: bool,
    /// The patron card (shown to staff and to its owner only: every user
    /// object goes to one of them).
    pub card_number: Option<String>,
    /// The patron's home branch (set by staff): the default pickup branch.
    pub home_branch_id: Option<Uuid>,
    /// The patron category (`adult`, `child`, `staff` or one the library
    /// defined): its loan and hold limits and rules apply. Set by staff only.
    pub category: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

impl UserView {
    /// `now` hides a lock that has already expired.
    pub fn new(user: User, now: OffsetDateTime) -> Self {
        Self {
            id: user.id,
            email: user.email,
            username: user.username,
            full_name: user.full_name,
            role: user.role.into(),
            email_verified: user.email_verified,
            is_active: user.is_active,
            mfa_enabled: user.mfa_enabled,
            keep_loan_history: user.keep_loan_history,
            card_number: user.card_number,
            home_branch_id: user.home_branch_id,
            category: user.category,
            locked_until: user.locked_until.filter(|until| *until > now),
            created_at: user.created_at,
            updated_at: user.updated_at,
            deleted_at: user.deleted_at,
        }
    }
}
