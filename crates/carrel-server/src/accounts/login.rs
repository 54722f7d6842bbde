//! Login and re-authentication, with lockout.
//!
//! Every password check against an account goes through [`check_password`]:
//! the attempt is counted in the database *before* the hash is verified
//! (compare-and-swap on the failure counter, see `carrel_core::lockout`), so
//! any number of parallel guesses gets at most `CARREL_LOCKOUT_THRESHOLD`
//! verifications. Unknown accounts run the same hash against a dummy, and every
//! failure cause returns the same [`AccountError::InvalidCredentials`].

use carrel_core::identity;
use carrel_core::lockout::{AttemptDecision, LockoutState};
use carrel_store::{FailureCounter, User};
use secrecy::SecretString;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{AccountError, role_of};
use crate::audit;
use crate::auth::passwords::Verification;
use crate::auth::tokens::{self, IssuedTokens};
use crate::http::client::ClientInfo;
use crate::state::AppState;

/// How often a lost compare-and-swap race is retried before giving up.
const MAX_CAS_RETRIES: usize = 16;

fn to_state(counter: FailureCounter) -> LockoutState {
    LockoutState {
        failed_attempts: u32::try_from(counter.failed_logins).unwrap_or(0),
        locked_until: counter.locked_until,
    }
}

fn to_counter(state: LockoutState) -> FailureCounter {
    FailureCounter {
        failed_logins: i32::try_from(state.failed_attempts).unwrap_or(i32::MAX),
        locked_until: state.locked_until,
    }
}

/// Why a password check failed (for the audit log only; callers all answer the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Locked,
    WrongPassword,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Locked => "locked",
            Failure::WrongPassword => "wrong_password",
        }
    }
}

/// Counts an attempt at one of `user`'s secrets (password, MFA code) toward
/// lockout *before* it is checked. `None`: the account is locked, refuse without
/// checking. `Some(locks)`: go ahead; if the secret proves wrong and `locks` is
/// true, this attempt is the one that locked the account.
pub(crate) async fn reserve_attempt(
    state: &AppState,
    user: &User,
) -> Result<Option<bool>, AccountError> {
    let mut counter = FailureCounter {
        failed_logins: user.failed_logins,
        locked_until: user.locked_until,
    };
    for _ in 0..MAX_CAS_RETRIES {
        match state
            .lockout
            .begin_attempt(&to_state(counter), state.clock.now())
        {
            AttemptDecision::Refused { .. } => return Ok(None),
            AttemptDecision::Proceed {
                reserved,
                locks_on_failure,
            } => {
                if state
                    .store
                    .swap_failure_counter(user.id, counter, to_counter(reserved))
                    .await?
                {
                    return Ok(Some(locks_on_failure));
                }
                counter = state.store.failure_counter(user.id).await?;
            }
        }
    }
    // An implausible storm of races: treat as locked.
    Ok(None)
}

/// After a wrong secret: if this attempt locked the account, audit it and tell the owner.
pub(crate) async fn after_failure(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    locks_on_failure: bool,
) {
    if locks_on_failure {
        on_locked(state, client, user).await;
    }
}

/// Checks `password` for `user`, counting the attempt toward lockout.
/// On success the counter is cleared and an outdated hash is upgraded. When
/// this attempt locks the account, `auth.locked` is audited and the owner emailed.
pub async fn check_password(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    password: SecretString,
) -> Result<Result<(), Failure>, AccountError> {
    let Some(locks_on_failure) = reserve_attempt(state, user).await? else {
        // Locked: same work, same answer.
        state.hasher.verify(password, None).await?;
        return Ok(Err(Failure::Locked));
    };
    match state
        .hasher
        .verify(password.clone(), user.password_hash.clone())
        .await?
    {
        Verification::Valid { rehash } => {
            // Legacy bcrypt or outdated Argon2 costs: store a current hash of the same password.
            let upgraded = if rehash {
                Some(state.hasher.hash(password).await?)
            } else {
                None
            };
            state
                .store
                .record_login_success(user.id, upgraded.as_deref())
                .await?;
            Ok(Ok(()))
        }
        Verification::Invalid => {
            after_failure(state, client, user, locks_on_failure).await;
            Ok(Err(Failure::WrongPassword))
        }
    }
}

async fn on_locked(state: &AppState, client: &ClientInfo, user: &User) {
    let until = state.clock.now() + state.lockout.duration;
    audit::record(
        state,
        client,
        "auth.locked",
        None,
        Some(user.id),
        json!({"locked_until": until.format(&Rfc3339).ok()}),
    )
    .await;
    let until_text = until.format(&Rfc3339).unwrap_or_default();
    state
        .mailer
        .send_later(carrel_mail::messages::account_locked(
            &user.email,
            &until_text,
        ));
}

/// What a successful password step leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    Tokens {
        tokens: IssuedTokens,
        user_id: Uuid,
    },
    /// The account has MFA: the second step goes through `/auth/mfa/verify`.
    MfaRequired {
        mfa_token: String,
    },
}

/// Logs in with a username or email and a password.
pub async fn login(
    state: &AppState,
    client: &ClientInfo,
    identifier: &str,
    password: SecretString,
    device_name: Option<String>,
    use_cookies: bool,
) -> Result<LoginOutcome, AccountError> {
    let typed: String = identifier.trim().chars().take(254).collect();
    let key = identity::email_key(&typed);
    let Some(user) = state.store.find_user_by_login(&key).await? else {
        state.hasher.verify(password, None).await?;
        fail(state, client, None, &typed, "unknown_user").await;
        return Err(AccountError::InvalidCredentials);
    };
    // One account cannot be hammered from many addresses: a budget per target account too.
    if let Err(refused) = crate::limits::enforce(
        state,
        crate::limits::Limit::Login,
        &format!("account:{}", user.id),
    )
    .await
    {
        state.hasher.verify(password, None).await?;
        audit::record(
            state,
            client,
            "auth.login_rate_limited",
            None,
            Some(user.id),
            json!({"identifier": typed, "limit": "login_per_account"}),
        )
        .await;
        return Err(AccountError::RateLimited(refused));
    }
    if let Err(failure) = check_password(state, client, &user, password).await? {
        fail(state, client, Some(user.id), &typed, failure.as_str()).await;
        return Err(AccountError::InvalidCredentials);
    }
    // Checked after the password so that timing and answers are the same as a wrong password.
    if user.deleted_at.is_some() || !user.is_active {
        let reason = if user.deleted_at.is_some() {
            "deleted"
        } else {
            "inactive"
        };
        fail(state, client, Some(user.id), &typed, reason).await;
        return Err(AccountError::InvalidCredentials);
    }
    if state.config.require_email_verification && !user.email_verified {
        fail(state, client, Some(user.id), &typed, "email_not_verified").await;
        return Err(AccountError::EmailNotVerified);
    }
    if user.mfa_enabled {
        let mfa_token =
            super::mfa::challenge(state, &user, device_name.as_deref(), use_cookies).await?;
        audit::record(
            state,
            client,
            "auth.mfa_challenged",
            None,
            Some(user.id),
            json!({"identifier": typed}),
        )
        .await;
        return Ok(LoginOutcome::MfaRequired { mfa_token });
    }
    // Roles that must use MFA get a session that can only enrol until they do.
    let role = role_of(&user);
    let scope = state
        .config
        .mfa_required_roles
        .iter()
        .any(|r| r == role.as_str())
        .then_some(super::mfa::SCOPE_MFA_SETUP);
    let tokens = tokens::open_session(state, user.id, role, client, device_name, scope).await?;
    audit::record(
        state,
        client,
        "auth.login_succeeded",
        Some(user.id),
        Some(user.id),
        json!({"identifier": typed, "session_id": tokens.session_id}),
    )
    .await;
    metrics::counter!("auth_logins_total", "outcome" => "success").increment(1);
    Ok(LoginOutcome::Tokens {
        tokens,
        user_id: user.id,
    })
}

async fn fail(
    state: &AppState,
    client: &ClientInfo,
    subject: Option<Uuid>,
    typed: &str,
    reason: &'static str,
) {
    metrics::counter!("auth_logins_total", "outcome" => reason).increment(1);
    audit::record(
        state,
        client,
        "auth.login_failed",
        None,
        subject,
        json!({"identifier": typed, "reason": reason}),
    )
    .await;
}

/// Re-authentication for sensitive actions (password change, account deletion):
/// a wrong password counts toward lockout and is `InvalidCredentials`.
pub async fn reauthenticate(
    state: &AppState,
    client: &ClientInfo,
    user_id: Uuid,
    password: SecretString,
) -> Result<User, AccountError> {
    let user = state
        .store
        .find_user(user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AccountError::Unauthorized)?;
    match check_password(state, client, &user, password).await? {
        Ok(()) => Ok(user),
        Err(failure) => {
            audit::record(
                state,
                client,
                "auth.reauthentication_failed",
                Some(user.id),
                Some(user.id),
                json!({"reason": failure.as_str()}),
            )
            .await;
            Err(AccountError::InvalidCredentials)
        }
    }
}
