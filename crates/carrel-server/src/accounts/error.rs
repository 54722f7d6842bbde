use carrel_core::password_policy::PasswordViolation;
use carrel_store::StoreError;

use crate::auth::tokens::TokenError;
use crate::passwords::HashError;

/// What can go wrong in an account operation.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Field name → reason.
    #[error("invalid fields")]
    InvalidFields(Vec<(String, String)>),
    #[error("the password does not meet the policy")]
    PasswordPolicy(Vec<PasswordViolation>),
    /// Every login failure cause, and a wrong re-entered password.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("email address not verified")]
    EmailNotVerified,
    #[error("authentication required")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A bad, expired or used verification, reset or invitation token.
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("password hashing is saturated")]
    Busy,
    /// A per-account limit (login attempts against one account from anywhere).
    #[error("rate limited")]
    RateLimited(crate::limits::RateLimited),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<TokenError> for AccountError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Unauthorized => AccountError::Unauthorized,
            TokenError::Signing(_) => AccountError::Internal(error.to_string()),
            TokenError::Store(error) => AccountError::Store(error),
        }
    }
}

impl From<HashError> for AccountError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => AccountError::Busy,
            HashError::Failed(message) => AccountError::Internal(message),
        }
    }
}
