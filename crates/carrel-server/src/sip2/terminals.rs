//! SIP2 terminal accounts: created, listed and removed from the command line,
//! checked at login (93) with the password hasher (a dummy hash for unknown
//! logins, so timing does not tell them apart).

use carrel_store::{Sip2Terminal, StoreError};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::state::AppState;

/// Why a terminal account could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("a terminal account with this login already exists")]
    Exists,
    #[error("no terminal account has this login")]
    NotFound,
    #[error(transparent)]
    Hash(#[from] crate::passwords::HashError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for TerminalError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { .. } => TerminalError::Exists,
            StoreError::NotFound => TerminalError::NotFound,
            other => TerminalError::Store(other),
        }
    }
}

/// 1..=max printable ASCII characters without `|` (the SIP2 field separator).
fn field(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'|')
}

/// Adds a terminal account (password hashed like user passwords).
pub async fn add(
    state: &AppState,
    login: &str,
    institution: &str,
    branch_code: Option<&str>,
    password: SecretString,
) -> Result<Sip2Terminal, TerminalError> {
    if !field(login, 64) {
        return Err(TerminalError::Invalid(
            "the login must be 1 to 64 printable characters without spaces or |",
        ));
    }
    if !field(institution, 64) {
        return Err(TerminalError::Invalid(
            "the institution must be 1 to 64 printable characters without spaces or |",
        ));
    }
    if branch_code.is_some_and(|b| !field(b, 32)) {
        return Err(TerminalError::Invalid(
            "the branch code must be 1 to 32 printable characters without spaces or |",
        ));
    }
    // The terminal's desk: checkouts and checkins there count at that branch.
    if let Some(code) = branch_code
        && state.store.find_branch_by_code(code).await?.is_none()
    {
        return Err(TerminalError::Invalid(
            "no branch has this code (see GET /api/v1/branches)",
        ));
    }
    let length = password.expose_secret().chars().count();
    if !(8..=128).contains(&length) || password.expose_secret().contains('|') {
        return Err(TerminalError::Invalid(
            "the password must be 8 to 128 characters without |",
        ));
    }
    let terminal = Sip2Terminal {
        id: Uuid::now_v7(),
        login: login.to_owned(),
        password_hash: state.hasher.hash(password).await?,
        institution: institution.to_owned(),
        branch_code: branch_code.map(str::to_owned),
        created_at: state.clock.now(),
    };
    state.store.create_sip2_terminal(&terminal).await?;
    Ok(terminal)
}

/// Every terminal account.
pub async fn list(state: &AppState) -> Result<Vec<Sip2Terminal>, TerminalError> {
    Ok(state.store.list_sip2_terminals().await?)
}

/// Removes a terminal account (its connections end at their next login).
pub async fn remove(state: &AppState, login: &str) -> Result<(), TerminalError> {
    Ok(state.store.delete_sip2_terminal(login).await?)
}

/// The account for a login (93), or `None` for an unknown login or a wrong
/// password after the same hashing work.
pub async fn authenticate(
    state: &AppState,
    login: &str,
    password: &str,
) -> Result<Option<Sip2Terminal>, TerminalError> {
    let password = SecretString::from(password.to_owned());
    let terminal = if field(login, 64) {
        state.store.find_sip2_terminal(login).await?
    } else {
        None
    };
    let stored = terminal.as_ref().map(|t| t.password_hash.clone());
    let valid = state.hasher.verify(password, stored).await?.is_valid();
    Ok(terminal.filter(|_| valid))
}
