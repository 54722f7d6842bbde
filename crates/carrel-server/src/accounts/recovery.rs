//! Registration, email verification, password change, forgot and reset.
//!
//! Nothing here reveals whether an account exists: registration, resend and
//! forgot answer the same way in every case and the mailbox owner learns the rest.

use carrel_core::identity;
use carrel_core::roles::Role;
use carrel_crypto::{OpaqueToken, TokenHash};
use carrel_store::{
    FirstToken, NewAuditEvent, NewOutboxMessage, PasswordChange, TokenPurpose, User,
};
use secrecy::SecretString;
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use super::{AccountError, NewAccount, check_new_password, link, validate_identity};
use crate::audit;
use crate::client::ClientInfo;
use crate::outbox::messages as mail;
use crate::state::AppState;

pub const VERIFY_EMAIL_TTL: Duration = Duration::hours(24);
pub const RESET_TTL: Duration = Duration::minutes(30);
pub const INVITATION_TTL: Duration = Duration::hours(72);

/// Issues a single-use token for `user` and enqueues the email that carries
/// it (built by `mail` from the link), both in one transaction: the link
/// exists only in that email.
async fn issue_token(
    state: &AppState,
    user: Uuid,
    purpose: TokenPurpose,
    ttl: Duration,
    page: &str,
    mail: impl FnOnce(&str) -> NewOutboxMessage,
    events: Vec<NewAuditEvent>,
) -> Result<(), AccountError> {
    let token = OpaqueToken::generate();
    let message = mail(&link(state, page, token.as_str()));
    let now = state.clock.now();
    state
        .store
        .create_one_time_token_audited(
            *token.hash().as_bytes(),
            purpose,
            user,
            now,
            now + ttl,
            std::slice::from_ref(&message),
            move |_: &()| events,
        )
        .await?;
    Ok(())
}

pub(crate) async fn send_verification(state: &AppState, user: &User) -> Result<(), AccountError> {
    issue_token(
        state,
        user.id,
        TokenPurpose::VerifyEmail,
        VERIFY_EMAIL_TTL,
        "verify-email",
        |link| mail::verify_email(&user.email, link),
        Vec::new(),
    )
    .await
}

/// Mails `user` a reset link; `events` commit with the link.
async fn send_reset(
    state: &AppState,
    user: &User,
    events: Vec<NewAuditEvent>,
) -> Result<(), AccountError> {
    let minutes = u32::try_from(RESET_TTL.whole_minutes()).unwrap_or(30);
    issue_token(
        state,
        user.id,
        TokenPurpose::PasswordReset,
        RESET_TTL,
        "reset-password",
        |link| mail::password_reset(&user.email, link, minutes),
        events,
    )
    .await
}

/// The first link a new account is mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Welcome {
    /// Self-registration: confirm the email address.
    Verification,
    /// Created by staff without a password: set one.
    Invitation,
}

/// A new account's first token and the email carrying its link, to be stored
/// with the account (see [`carrel_store::Store::create_user_with_token`]).
pub(crate) fn first_token(state: &AppState, email: &str, welcome: Welcome) -> FirstToken {
    let token = OpaqueToken::generate();
    let (purpose, ttl, mail) = match welcome {
        Welcome::Verification => (
            TokenPurpose::VerifyEmail,
            VERIFY_EMAIL_TTL,
            mail::verify_email(email, &link(state, "verify-email", token.as_str())),
        ),
        Welcome::Invitation => (
            TokenPurpose::Invitation,
            INVITATION_TTL,
            mail::invitation(
                email,
                &link(state, "reset-password", token.as_str()),
                u32::try_from(INVITATION_TTL.whole_hours()).unwrap_or(72),
            ),
        ),
    };
    FirstToken {
        hash: *token.hash().as_bytes(),
        purpose,
        expires_at: state.clock.now() + ttl,
        mail,
    }
}

/// Self-registration. Validation and policy errors are reported (they concern
/// what was typed, not who exists); a taken email or username is not: the
/// request looks the same and the owner of the address is told by email.
#[tracing::instrument(skip_all)]
pub async fn register(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    username: &str,
    password: SecretString,
    full_name: Option<&str>,
) -> Result<(), AccountError> {
    let id = validate_identity(email, username, full_name)?;
    check_new_password(state, &password, &id.username, &id.email, None).await?;
    let new = NewAccount {
        email: id.email.clone(),
        username: id.username.clone(),
        full_name: id.full_name.clone(),
        role: Role::Patron,
        password: Some(password),
        email_verified: false,
        card_number: None,
        category: None,
    };
    let registered = |user: &User| {
        vec![audit::event(
            state,
            client,
            "user.registered",
            Some(user.id),
            Some(user.id),
            json!({"username": user.username}),
        )]
    };
    let welcome = Some(Welcome::Verification);
    match super::create_account_with(state, new, welcome, &registered).await {
        Ok(_) => Ok(()),
        Err(AccountError::Conflict(_)) => {
            match state
                .store
                .find_user_by_email(&identity::email_key(&id.email))
                .await?
            {
                Some(owner) if owner.deleted_at.is_none() => {
                    issue_token(
                        state,
                        owner.id,
                        TokenPurpose::PasswordReset,
                        RESET_TTL,
                        "reset-password",
                        |link| mail::registration_attempt(&owner.email, link),
                        Vec::new(),
                    )
                    .await?;
                }
                Some(_) => {}
                // The username was taken by someone else: tell the address that
                // asked (nothing else is written, so the mail is its own transaction).
                None => {
                    state
                        .store
                        .enqueue_outbox(
                            &[mail::username_taken(&id.email, &id.username)],
                            state.clock.now(),
                        )
                        .await?;
                }
            }
            audit::record(
                state,
                client,
                "user.registration_refused",
                None,
                None,
                json!({"reason": "taken"}),
            )
            .await;
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// Confirms an email address with the token from the verification email.
#[tracing::instrument(skip_all)]
pub async fn verify_email(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
) -> Result<(), AccountError> {
    // The token is spent, the address verified and the change audited in one
    // transaction.
    let verified = |&user: &Uuid| {
        vec![audit::event(
            state,
            client,
            "user.email_verified",
            Some(user),
            Some(user),
            json!({}),
        )]
    };
    state
        .store
        .verify_email_with_token(
            *TokenHash::of(token).as_bytes(),
            state.clock.now(),
            verified,
        )
        .await?
        .ok_or(AccountError::InvalidToken)?;
    Ok(())
}

/// Sends a new verification email if the address belongs to an unverified account.
#[tracing::instrument(skip_all)]
pub async fn resend_verification(state: &AppState, email: &str) -> Result<(), AccountError> {
    if let Some(user) = state
        .store
        .find_user_by_email(&identity::email_key(email.trim()))
        .await?
        && user.deleted_at.is_none()
        && !user.email_verified
    {
        send_verification(state, &user).await?;
    }
    Ok(())
}

/// Emails a single-use reset link if the address belongs to a live account.
#[tracing::instrument(skip_all)]
pub async fn forgot_password(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
) -> Result<(), AccountError> {
    let user = state
        .store
        .find_user_by_email(&identity::email_key(email.trim()))
        .await?
        .filter(|u| u.deleted_at.is_none() && u.is_active);
    match &user {
        Some(user) => {
            let requested = audit::event(
                state,
                client,
                "auth.password_reset_requested",
                None,
                Some(user.id),
                json!({}),
            );
            send_reset(state, user, vec![requested]).await?;
        }
        // No account: nothing is written but the request itself.
        None => {
            audit::record(
                state,
                client,
                "auth.password_reset_requested",
                None,
                None,
                json!({}),
            )
            .await;
        }
    }
    Ok(())
}

/// Sets a new password with a reset or invitation token: single use, expiring;
/// every session is revoked, a lockout is lifted and the email counts as verified.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    state: &AppState,
    client: &ClientInfo,
    token: &str,
    new_password: SecretString,
) -> Result<(), AccountError> {
    let now = state.clock.now();
    let hash = *TokenHash::of(token).as_bytes();
    let mut found = None;
    for purpose in [TokenPurpose::PasswordReset, TokenPurpose::Invitation] {
        if let Some(user) = state.store.peek_one_time_token(hash, purpose, now).await? {
            found = Some((user, purpose));
            break;
        }
    }
    let (user_id, purpose) = found.ok_or(AccountError::InvalidToken)?;
    let user = state
        .store
        .find_user(user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AccountError::InvalidToken)?;
    check_new_password(
        state,
        &new_password,
        &user.username,
        &user.email,
        Some(user.id),
    )
    .await?;
    let password_hash = state.hasher.hash(new_password).await?;
    let change = PasswordChange {
        user_id: user.id,
        hash: &password_hash,
        now: state.clock.now(),
        history: state.config.password.history,
        keep_session: None,
        unlock: true,
        verify_email: true,
        token: Some((hash, purpose)),
    };
    let reset = audit::event(
        state,
        client,
        "auth.password_reset",
        Some(user.id),
        Some(user.id),
        json!({}),
    );
    state
        .store
        .change_password(&change, move |_: &()| vec![reset])
        .await
        .map_err(|e| match e {
            // Used by a concurrent request between the check and now.
            carrel_store::StoreError::NotFound => AccountError::InvalidToken,
            other => AccountError::Store(other),
        })?;
    Ok(())
}

/// Changes the password of a signed-in user who re-enters the current one;
/// every other session is revoked.
#[tracing::instrument(skip_all, fields(user_id = %user_id, session_id = %session_id))]
pub async fn change_password(
    state: &AppState,
    client: &ClientInfo,
    user_id: Uuid,
    session_id: Uuid,
    current: SecretString,
    new_password: SecretString,
) -> Result<(), AccountError> {
    let user = super::login::reauthenticate(state, client, user_id, current).await?;
    check_new_password(
        state,
        &new_password,
        &user.username,
        &user.email,
        Some(user.id),
    )
    .await?;
    let password_hash = state.hasher.hash(new_password).await?;
    let changed = audit::event(
        state,
        client,
        "auth.password_changed",
        Some(user.id),
        Some(user.id),
        json!({}),
    );
    let change = PasswordChange {
        user_id: user.id,
        hash: &password_hash,
        now: state.clock.now(),
        history: state.config.password.history,
        keep_session: Some(session_id),
        unlock: false,
        verify_email: false,
        token: None,
    };
    state
        .store
        .change_password(&change, move |_: &()| vec![changed])
        .await?;
    Ok(())
}
