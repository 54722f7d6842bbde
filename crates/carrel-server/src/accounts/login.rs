//! Login and re-authentication, with lockout.
//!
//! Every check of an account's secret (password or second-factor code) goes
//! through an [`Attempt`]: the attempt is reserved in the database *before* the
//! secret is checked (see `carrel_core::lockout`), so any number of parallel
//! guesses gets at most `CARREL_LOCKOUT_THRESHOLD` checks; attempts beyond the
//! budget wait for the ones in flight rather than fail. Unknown accounts run
//! the same hash against a dummy, and every failure cause returns the same
//! [`AccountError::InvalidCredentials`].

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration as StdDuration;

use carrel_core::identity;
use carrel_core::lockout::AttemptDecision;
use carrel_store::{AttemptResult, Reservation, User};
use secrecy::SecretString;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::{AccountError, role_of};
use crate::audit;
use crate::auth::tokens::{self, IssuedTokens};
use crate::client::ClientInfo;
use crate::passwords::Verification;
use crate::state::AppState;

/// How long an attempt may wait for attempts in flight before giving up (503).
const MAX_WAIT: StdDuration = StdDuration::from_secs(15);
/// First and longest pause between looks while waiting.
const FIRST_PAUSE: StdDuration = StdDuration::from_millis(5);
const LONGEST_PAUSE: StdDuration = StdDuration::from_millis(100);
/// A reservation whose instance died is forgotten after this (server clock);
/// longer than any check takes (a hashing slot is waited for at most 10 s).
const RESERVATION_TTL: time::Duration = time::Duration::seconds(60);

/// In this process, at most `threshold` attempts per account go to the database
/// at once; the others queue here (fairly, without polling the database). The
/// database reservation stays the rule across instances.
fn local_gate(user_id: Uuid, threshold: u32) -> Arc<Semaphore> {
    static GATES: LazyLock<Mutex<HashMap<Uuid, Weak<Semaphore>>>> = LazyLock::new(Default::default);
    let mut gates = GATES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(gate) = gates.get(&user_id).and_then(Weak::upgrade) {
        return gate;
    }
    gates.retain(|_, gate| gate.strong_count() > 0);
    let permits = usize::try_from(threshold.max(1))
        .unwrap_or(Semaphore::MAX_PERMITS)
        .min(Semaphore::MAX_PERMITS);
    let gate = Arc::new(Semaphore::new(permits));
    gates.insert(user_id, Arc::downgrade(&gate));
    gate
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

/// A reserved check of one of `user`'s secrets. Report the result with
/// [`Attempt::failed`] or [`Attempt::passed`]; an attempt dropped without a
/// result (the client went away mid-check) is recorded as a failure in the
/// background, so cancelling requests cannot buy free guesses.
pub(crate) struct Attempt {
    state: AppState,
    client: ClientInfo,
    user: User,
    id: Uuid,
    finished: bool,
    _turn: Option<OwnedSemaphorePermit>,
}

impl Attempt {
    /// Reserves an attempt at `user`'s secrets. `None`: the account is locked,
    /// refuse without checking. Waits (bounded) while the lockout budget is
    /// taken by attempts in flight; `Busy` if they never finish.
    pub(crate) async fn begin(
        state: &AppState,
        client: &ClientInfo,
        user: &User,
    ) -> Result<Option<Attempt>, AccountError> {
        let started = std::time::Instant::now();
        let turn = if state.lockout.threshold > 0 {
            let gate = local_gate(user.id, state.lockout.threshold);
            let permit = tokio::time::timeout(MAX_WAIT, gate.acquire_owned())
                .await
                .map_err(|_| AccountError::Busy)?
                .map_err(|_| AccountError::Busy)?;
            Some(permit)
        } else {
            None
        };
        let mut pause = FIRST_PAUSE;
        loop {
            let now = state.clock.now();
            match state
                .store
                .reserve_sign_in_attempt(user.id, &state.lockout, now, now + RESERVATION_TTL)
                .await?
            {
                Reservation::Reserved(id) => {
                    return Ok(Some(Attempt {
                        state: state.clone(),
                        client: client.clone(),
                        user: user.clone(),
                        id,
                        finished: false,
                        _turn: turn,
                    }));
                }
                Reservation::Locked => return Ok(None),
                Reservation::Wait => {}
            }
            // Look (cheaply) until the budget frees up, then try to reserve again.
            loop {
                if started.elapsed() >= MAX_WAIT {
                    return Err(AccountError::Busy);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
                let decision = state
                    .store
                    .peek_sign_in_attempt(user.id, &state.lockout, state.clock.now())
                    .await?;
                if decision != AttemptDecision::Wait {
                    break;
                }
            }
        }
    }

    /// The secret was wrong: one more failure. When it locks the account,
    /// `auth.locked` is audited and the owner emailed.
    pub(crate) async fn failed(mut self) -> Result<(), AccountError> {
        self.finished = true;
        settle_failure(&self.state, &self.client, &self.user, self.id).await
    }

    /// Nothing was checked: release the reservation, counting nothing.
    pub(crate) async fn release(self) -> Result<(), AccountError> {
        self.passed(false, None).await
    }

    /// The secret was right. `signed_in`: this completes a sign-in with every
    /// factor (the count goes back to zero); otherwise the count is unchanged.
    pub(crate) async fn passed(
        mut self,
        signed_in: bool,
        upgraded_hash: Option<&str>,
    ) -> Result<(), AccountError> {
        self.finished = true;
        self.state
            .store
            .finish_sign_in_attempt(
                self.user.id,
                self.id,
                AttemptResult::Passed {
                    signed_in,
                    upgraded_hash,
                },
                &self.state.lockout,
                self.state.clock.now(),
                |_| None,
            )
            .await?;
        Ok(())
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (state, client, user, id) = (
            self.state.clone(),
            self.client.clone(),
            self.user.clone(),
            self.id,
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = settle_failure(&state, &client, &user, id).await {
                    tracing::warn!(%error, "could not record an abandoned sign-in attempt");
                }
            });
        }
    }
}

async fn settle_failure(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    attempt: Uuid,
) -> Result<(), AccountError> {
    // The owner's mail is enqueued with the lock, in its transaction.
    let email = user.email.clone();
    let locked = state
        .store
        .finish_sign_in_attempt(
            user.id,
            attempt,
            AttemptResult::Failed,
            &state.lockout,
            state.clock.now(),
            move |until| {
                let until = until.format(&Rfc3339).unwrap_or_default();
                Some(crate::outbox::messages::account_locked(&email, &until))
            },
        )
        .await?;
    if locked {
        on_locked(state, client, user).await;
    }
    Ok(())
}

/// Checks `password` for `user`, counting the attempt toward lockout.
/// `completes_sign_in`: a right password completes a sign-in (no second factor
/// follows), so it clears the failure count; otherwise the count is left as
/// it is. An outdated hash is upgraded either way.
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn check_password(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    password: SecretString,
    completes_sign_in: bool,
) -> Result<Result<(), Failure>, AccountError> {
    let Some(attempt) = Attempt::begin(state, client, user).await? else {
        // Locked: same work, same answer.
        state.hasher.verify(password, None).await?;
        return Ok(Err(Failure::Locked));
    };
    let verification = match state
        .hasher
        .verify(password.clone(), user.password_hash.clone())
        .await
    {
        Ok(verification) => verification,
        Err(error) => {
            // Nothing was checked (no hashing slot, or the hash failed): no guess
            // was evaluated, so the reservation is released without a failure.
            attempt.release().await?;
            return Err(error.into());
        }
    };
    match verification {
        Verification::Valid { rehash } => {
            // Legacy bcrypt or outdated Argon2 costs: store a current hash of the
            // same password (if that fails, the next login tries again).
            let upgraded = if rehash {
                state
                    .hasher
                    .hash(password)
                    .await
                    .inspect_err(
                        |error| tracing::warn!(%error, "could not upgrade a password hash"),
                    )
                    .ok()
            } else {
                None
            };
            attempt
                .passed(completes_sign_in, upgraded.as_deref())
                .await?;
            Ok(Ok(()))
        }
        Verification::Invalid => {
            attempt.failed().await?;
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

/// The per-identifier login limit's subject: the identifier as typed, trimmed
/// and lower-cased, whether or not it names an account (so the limit, its
/// headers and its 429 are the same for a name that exists and one that does
/// not). Keyed-hashed, so limiter keys (in Redis too) never hold an email address.
pub fn identifier_subject(state: &AppState, typed: &str) -> String {
    use base64::Engine as _;
    let normalised = typed.trim().to_lowercase();
    let mac = state.secrets.mac("login-identifier", normalised.as_bytes());
    format!(
        "id:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    )
}

/// Logs in with a username or email and a password.
#[tracing::instrument(skip_all)]
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
    // One identifier cannot be hammered from many addresses: a budget per
    // identifier typed, checked before anything is looked up.
    let limited = crate::limits::enforce(
        state,
        crate::limits::Limit::Login,
        &identifier_subject(state, &typed),
    )
    .await;
    let user = state.store.find_user_by_login(&key).await?;
    if let Err(refused) = limited {
        state.hasher.verify(password, None).await?;
        audit::record(
            state,
            client,
            "auth.login_rate_limited",
            None,
            user.as_ref().map(|u| u.id),
            json!({"identifier": typed, "limit": "login_per_identifier"}),
        )
        .await;
        return Err(AccountError::RateLimited(refused));
    }
    let Some(user) = user else {
        state.hasher.verify(password, None).await?;
        fail(state, client, None, &typed, "unknown_user").await;
        return Err(AccountError::InvalidCredentials);
    };
    let usable = user.deleted_at.is_none()
        && user.is_active
        && (user.email_verified || !state.config.require_email_verification);
    // A right password completes the sign-in only when no second factor follows.
    let completes = usable && !user.mfa_enabled;
    if let Err(failure) = check_password(state, client, &user, password, completes).await? {
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
    count_login(true);
    Ok(LoginOutcome::Tokens {
        tokens,
        user_id: user.id,
    })
}

/// `auth_logins_total{outcome}`: only `success` or `failure`, never why a
/// login failed (that would tell unknown names from known ones).
pub(crate) fn count_login(success: bool) {
    let outcome = if success { "success" } else { "failure" };
    metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
}

/// A failed login: counted as a plain `failure`; the reason goes to the audit
/// log only (admins may see it).
async fn fail(
    state: &AppState,
    client: &ClientInfo,
    subject: Option<Uuid>,
    typed: &str,
    reason: &'static str,
) {
    count_login(false);
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
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
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
    // Not a sign-in: a right password leaves the failure count as it is.
    match check_password(state, client, &user, password, false).await? {
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

/// Ends the caller's current session (its access token stops working at once)
/// and audits it. The API's `POST /auth/logout` and the web page's sign-out
/// both call it.
#[tracing::instrument(skip_all, fields(user_id = %me.user_id))]
pub async fn logout(
    state: &AppState,
    client: &ClientInfo,
    me: &crate::auth::principal::Principal,
) -> Result<(), carrel_store::StoreError> {
    state
        .store
        .revoke_session(me.user_id, me.session_id, "logout", state.clock.now())
        .await?;
    crate::audit::record(
        state,
        client,
        "auth.logout",
        Some(me.user_id),
        Some(me.user_id),
        serde_json::json!({"session_id": me.session_id}),
    )
    .await;
    Ok(())
}
