//! Accounts: registration, login, recovery, profiles and staff management.
//! Plain Rust over the store; errors are [`AccountError`], which the HTTP
//! layer maps to the contract in one place.

mod error;
pub mod export;
pub mod login;
pub mod manage;
pub mod mfa;
pub mod pins;
pub mod recovery;
pub mod sessions;
mod view;

use carrel_core::identity;
use carrel_core::password_policy::PasswordViolation;
use carrel_core::roles::Role;
use carrel_store::{NewAuditEvent, NewUser, StoreError, User};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

pub use error::AccountError;
pub use view::UserView;

use crate::state::AppState;

/// An account to create (registration, staff, CLI, bootstrap, import).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    pub role: Role,
    /// `None`: the user sets one through an invitation link.
    pub password: Option<SecretString>,
    pub email_verified: bool,
    /// A patron card as typed (normalised here); without one a patron gets a
    /// generated number when `CARREL_CARD_NUMBER_PREFIX` is set.
    pub card_number: Option<String>,
    /// A defined patron category (checked by the caller); `None`: `adult`.
    pub category: Option<String>,
}

/// Validated, normalised identity fields.
pub(crate) struct Identity {
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
}

/// Validates email, username and full name, collecting every bad field.
pub(crate) fn validate_identity(
    email: &str,
    username: &str,
    full_name: Option<&str>,
) -> Result<Identity, AccountError> {
    let mut bad = Vec::new();
    let email = identity::normalize_email(email)
        .map_err(|e| bad.push(("email".to_owned(), e.to_owned())))
        .ok();
    let username = identity::validate_username(username)
        .map_err(|e| bad.push(("username".to_owned(), e.to_owned())))
        .ok();
    let full_name = match full_name.map(identity::normalize_full_name).transpose() {
        Ok(name) => name.flatten(),
        Err(e) => {
            bad.push(("full_name".to_owned(), e.to_owned()));
            None
        }
    };
    match (email, username) {
        (Some(email), Some(username)) if bad.is_empty() => Ok(Identity {
            email,
            username,
            full_name,
        }),
        _ => Err(AccountError::InvalidFields(bad)),
    }
}

/// Applies the password policy, and the history rule when `history_of` names an
/// existing account (its last `CARREL_PASSWORD_HISTORY` hashes, current included).
pub(crate) async fn check_new_password(
    state: &AppState,
    password: &SecretString,
    username: &str,
    email: &str,
    history_of: Option<Uuid>,
) -> Result<(), AccountError> {
    let mut violations = state
        .password_policy
        .check(password.expose_secret(), &[username, email]);
    let history = state.config.password.history;
    if let Some(user_id) = history_of
        && history > 0
        && violations.is_empty()
    {
        let hashes = state.store.password_history(user_id, history).await?;
        if !hashes.is_empty() && state.hasher.matches_any(password.clone(), hashes).await? {
            violations.push(PasswordViolation::RecentlyUsed { history });
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AccountError::PasswordPolicy(violations))
    }
}

/// Creates an account after validating every field and the password policy.
/// A taken email or username is [`AccountError::Conflict`].
#[tracing::instrument(skip_all)]
pub async fn create_account(state: &AppState, new: NewAccount) -> Result<User, AccountError> {
    create_account_with(state, new, None, &|_| Vec::new()).await
}

/// The audit entries of a new account, built from it and committed with it.
/// Not generic: one compiled body (see `login::check_password`).
pub(crate) type Registered<'a> = &'a (dyn Fn(&User) -> Vec<NewAuditEvent> + Send + Sync);

/// Like [`create_account`]; with `welcome`, the account's first link
/// (verification or invitation) and its email are committed with the account,
/// and so are the entries `registered` builds.
pub(crate) async fn create_account_with(
    state: &AppState,
    new: NewAccount,
    welcome: Option<recovery::Welcome>,
    registered: Registered<'_>,
) -> Result<User, AccountError> {
    let id = validate_identity(&new.email, &new.username, new.full_name.as_deref())?;
    let card_number = new.card_number.as_deref().map(normalize_card).transpose()?;
    let password_hash = match &new.password {
        Some(password) => {
            check_new_password(state, password, &id.username, &id.email, None).await?;
            Some(state.hasher.hash(password.clone()).await?)
        }
        None => None,
    };
    insert_user(
        state,
        id,
        new.role,
        password_hash,
        new.email_verified,
        PatronFields {
            card_number,
            category: new.category,
        },
        welcome,
        registered,
    )
    .await
}

/// A card number as typed → its stored form, or the field error.
pub(crate) fn normalize_card(raw: &str) -> Result<String, AccountError> {
    carrel_core::cards::normalize_card_number(raw)
        .map_err(|e| AccountError::InvalidFields(vec![("card_number".to_owned(), e.to_owned())]))
}

/// A fresh card number under `CARREL_CARD_NUMBER_PREFIX` for a new patron
/// without one (`None` for staff, or when no prefix is configured).
pub(crate) fn generated_card(state: &AppState, role: Role) -> Option<String> {
    let prefix = state.config.card_number_prefix.as_deref()?;
    (role == Role::Patron)
        .then(|| carrel_core::cards::generated_card_number(prefix, Uuid::new_v4().as_u128()))
}

/// What a library records about a borrower, validated: the card (normalised)
/// and the patron category (a defined one, or `None` for the default).
pub(crate) struct PatronFields {
    pub card_number: Option<String>,
    pub category: Option<String>,
}

/// Inserts a validated account, with the entries `registered` builds. A
/// generated card number that happens to be taken is drawn again.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_user(
    state: &AppState,
    id: Identity,
    role: Role,
    password_hash: Option<String>,
    email_verified: bool,
    patron: PatronFields,
    welcome: Option<recovery::Welcome>,
    registered: Registered<'_>,
) -> Result<User, AccountError> {
    let PatronFields {
        card_number,
        category,
    } = patron;
    let generate = card_number.is_none();
    let first_token = welcome.map(|w| recovery::first_token(state, &id.email, w));
    let mut user = NewUser {
        id: Uuid::now_v7(),
        email_key: identity::email_key(&id.email),
        username_key: identity::username_key(&id.username),
        email: id.email,
        username: id.username,
        full_name: id.full_name,
        role,
        password_hash,
        email_verified,
        card_number: card_number.or_else(|| generated_card(state, role)),
        category,
        now: state.clock.now(),
    };
    for _ in 0..3 {
        match state
            .store
            .create_user_with_token_audited(&user, first_token.as_ref(), |created: &User| {
                registered(created)
            })
            .await
        {
            Err(StoreError::Conflict { constraint })
                if generate && user.card_number.is_some() && constraint.contains("card") =>
            {
                user.card_number = generated_card(state, role);
            }
            other => return other.map_err(conflict_from),
        }
    }
    Err(AccountError::Conflict("card number is taken"))
}

/// Store errors of account writes: which uniqueness rule refused it, or not found.
pub(crate) fn conflict_from(error: StoreError) -> AccountError {
    match error {
        StoreError::Conflict { constraint } if constraint.contains("username") => {
            AccountError::Conflict("username is taken")
        }
        StoreError::Conflict { constraint } if constraint.contains("card") => {
            AccountError::Conflict("card number is taken")
        }
        StoreError::Conflict { .. } => AccountError::Conflict("email is already registered"),
        StoreError::NotFound => AccountError::NotFound,
        StoreError::Refused(reason) => AccountError::Conflict(reason),
        other => AccountError::Store(other),
    }
}

/// A link in an email: `{CARREL_PUBLIC_URL}/{path}?token=…`.
pub(crate) fn link(state: &AppState, path: &str, token: &str) -> String {
    format!(
        "{}/{path}?token={token}",
        state.config.public_url.as_str().trim_end_matches('/')
    )
}
