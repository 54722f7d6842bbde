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
use carrel_store::{AttemptResult, NewAuditEvent, NewSession, Reservation, User};
use secrecy::SecretString;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::AccountError;
use crate::audit;
use crate::auth::tokens::{IssuedTokens, PendingSession};
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
    pub(crate) async fn failed(self) -> Result<(), AccountError> {
        self.failed_with(Vec::new()).await
    }

    /// [`Attempt::failed`], with the caller's audit `events` committed in the
    /// same transaction.
    pub(crate) async fn failed_with(
        mut self,
        events: Vec<NewAuditEvent>,
    ) -> Result<(), AccountError> {
        self.finished = true;
        settle_failure(&self.state, &self.client, &self.user, self.id, events).await
    }

    /// The password was right and completes a sign-in: in one transaction the
    /// count goes back to zero, `session` is opened and `events` are written.
    pub(crate) async fn signed_in(
        mut self,
        upgraded_hash: Option<&str>,
        session: &NewSession,
        events: Vec<NewAuditEvent>,
    ) -> Result<(), AccountError> {
        self.finished = true;
        self.state
            .store
            .finish_sign_in_attempt_audited(
                self.user.id,
                self.id,
                AttemptResult::SignedIn {
                    upgraded_hash,
                    session,
                },
                &self.state.lockout,
                self.state.clock.now(),
                |_| None,
                move |_: &bool| events,
            )
            .await?;
        Ok(())
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
                if let Err(error) = settle_failure(&state, &client, &user, id, Vec::new()).await {
                    tracing::warn!(%error, "could not record an abandoned sign-in attempt");
                }
            });
        }
    }
}

/// Records a failed attempt with `events`; when it locks the account,
/// `auth.locked` is written first, and the owner's mail enqueued, in the same
/// transaction.
async fn settle_failure(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    attempt: Uuid,
    events: Vec<NewAuditEvent>,
) -> Result<(), AccountError> {
    let email = user.email.clone();
    let now = state.clock.now();
    let locked_event = audit::event(
        state,
        client,
        "auth.locked",
        None,
        Some(user.id),
        json!({"locked_until": (now + state.lockout.duration).format(&Rfc3339).ok()}),
    );
    state
        .store
        .finish_sign_in_attempt_audited(
            user.id,
            attempt,
            AttemptResult::Failed,
            &state.lockout,
            now,
            move |until| {
                let until = until.format(&Rfc3339).unwrap_or_default();
                Some(crate::outbox::messages::account_locked(&email, &until))
            },
            move |locked: &bool| {
                let mut trail = Vec::with_capacity(events.len() + 1);
                if *locked {
                    trail.push(locked_event);
                }
                trail.extend(events);
                trail
            },
        )
        .await?;
    Ok(())
}

/// How a right password settles its attempt.
pub(crate) enum OnPass<'a> {
    /// The failure count stays (a re-authentication).
    Keep,
    /// A sign-in completes: the count is cleared and `session` opened, with
    /// `events`, in the same transaction.
    SignIn {
        session: &'a NewSession,
        events: Vec<NewAuditEvent>,
    },
}

/// Checks `password` for `user`, counting the attempt toward lockout. A
/// wrong password's audit event (`on_failure`, built from why it failed) is
/// written with the failure, in its transaction. An outdated hash is upgraded
/// when the password is right.
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub(crate) async fn check_password(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    password: SecretString,
    on_pass: OnPass<'_>,
    // Not generic: one compiled body (coverage tools attribute lines of
    // generic async functions poorly, and nothing is gained by inlining).
    on_failure: &(dyn Fn(Failure) -> NewAuditEvent + Send + Sync),
) -> Result<Result<(), Failure>, AccountError> {
    let Some(attempt) = Attempt::begin(state, client, user).await? else {
        // Locked: same work, same answer.
        state.hasher.verify(password, None).await?;
        audit::record_event(state, &on_failure(Failure::Locked)).await;
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
            match on_pass {
                OnPass::Keep => attempt.passed(false, upgraded.as_deref()).await?,
                OnPass::SignIn { session, events } => {
                    attempt
                        .signed_in(upgraded.as_deref(), session, events)
                        .await?;
                }
            }
            Ok(Ok(()))
        }
        Verification::Invalid => {
            attempt
                .failed_with(vec![on_failure(Failure::WrongPassword)])
                .await?;
            Ok(Err(Failure::WrongPassword))
        }
    }
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

/// Proof that a login request passed the per-address login limit
/// (`CARREL_RATE_LIMIT_LOGIN`). The API checks it before reading the body,
/// the web page after reading its form; [`login`] cannot run without it.
#[derive(Debug)]
pub struct Admitted(());

/// The per-address login limit, the first step of every login.
pub async fn admit(state: &AppState, client: &ClientInfo) -> Result<Admitted, AccountError> {
    crate::limits::enforce(state, crate::limits::Limit::Login, &client.ip_key())
        .await
        .map_err(AccountError::RateLimited)?;
    Ok(Admitted(()))
}

/// A login as the front doors read it.
#[derive(Debug)]
pub struct LoginInput {
    /// A username or an email address, as typed.
    pub identifier: String,
    pub password: SecretString,
    /// A label for the session (trimmed, at most 100 characters kept).
    pub device_name: Option<String>,
    /// The session's tokens will travel in cookies (the MFA step keeps this).
    pub use_cookies: bool,
}

/// Logs in with a username or email and a password: the one login every
/// front door (the API's `POST /auth/login`, the web sign-in page) calls.
///
/// Database round trips of a login that opens a session: the account lookup,
/// the attempt's reservation, and one transaction that settles the attempt,
/// opens the session and writes `auth.login_succeeded` (a wrong password: the
/// lookup, the reservation, and one transaction with the failure, its
/// `auth.login_failed` and, when it locks, `auth.locked` and the owner's mail).
#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    client: &ClientInfo,
    _admitted: Admitted,
    input: LoginInput,
) -> Result<LoginOutcome, AccountError> {
    let typed: String = input.identifier.trim().chars().take(254).collect();
    let device_name = input
        .device_name
        .map(|d| d.trim().chars().take(100).collect::<String>())
        .filter(|d| !d.is_empty());
    let password = input.password;
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
    // A right password completes the sign-in only when no second factor
    // follows; then the session is opened with the attempt's settlement.
    let role = user.role;
    let session = (usable && !user.mfa_enabled).then(|| {
        // Roles that must use MFA get a session that can only enrol until they do.
        let scope = state
            .config
            .mfa_required_roles
            .iter()
            .any(|r| r == role.as_str())
            .then_some(super::mfa::SCOPE_MFA_SETUP);
        PendingSession::new(state, user.id, client, device_name.clone(), scope)
    });
    let on_pass = match &session {
        Some(session) => OnPass::SignIn {
            session: &session.new,
            events: vec![audit::event(
                state,
                client,
                "auth.login_succeeded",
                Some(user.id),
                Some(user.id),
                json!({"identifier": typed, "session_id": session.new.id}),
            )],
        },
        None => OnPass::Keep,
    };
    let on_failure =
        |failure: Failure| failed_event(state, client, Some(user.id), &typed, failure.as_str());
    if check_password(state, client, &user, password, on_pass, &on_failure)
        .await?
        .is_err()
    {
        count_login(false);
        return Err(AccountError::InvalidCredentials);
    }
    if let Some(session) = session {
        count_login(true);
        return Ok(LoginOutcome::Tokens {
            tokens: session.issue(state, role)?,
            user_id: user.id,
        });
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
    let challenged = audit::event(
        state,
        client,
        "auth.mfa_challenged",
        None,
        Some(user.id),
        json!({"identifier": typed}),
    );
    let mfa_token = super::mfa::challenge(
        state,
        &user,
        device_name.as_deref(),
        input.use_cookies,
        vec![challenged],
    )
    .await?;
    Ok(LoginOutcome::MfaRequired { mfa_token })
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
    audit::record_event(state, &failed_event(state, client, subject, typed, reason)).await;
}

/// `auth.login_failed` with its reason.
fn failed_event(
    state: &AppState,
    client: &ClientInfo,
    subject: Option<Uuid>,
    typed: &str,
    reason: &'static str,
) -> NewAuditEvent {
    audit::event(
        state,
        client,
        "auth.login_failed",
        None,
        subject,
        json!({"identifier": typed, "reason": reason}),
    )
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
    let on_failure = |failure: Failure| {
        audit::event(
            state,
            client,
            "auth.reauthentication_failed",
            Some(user.id),
            Some(user.id),
            json!({"reason": failure.as_str()}),
        )
    };
    match check_password(state, client, &user, password, OnPass::Keep, &on_failure).await? {
        Ok(()) => Ok(user),
        Err(_) => Err(AccountError::InvalidCredentials),
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
    let event = audit::event(
        state,
        client,
        "auth.logout",
        Some(me.user_id),
        Some(me.user_id),
        json!({"session_id": me.session_id}),
    );
    state
        .store
        .revoke_session_audited(
            me.user_id,
            me.session_id,
            "logout",
            state.clock.now(),
            move |_: &bool| vec![event],
        )
        .await?;
    Ok(())
}
