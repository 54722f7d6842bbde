//! Passwords, login-failure counting and single-use tokens.

use time::OffsetDateTime;
use uuid::Uuid;

use carrel_core::lockout::{AttemptDecision, LockoutPolicy, LockoutState};

use crate::audit::append_audit_trail;
use crate::outbox::enqueue_messages;
use crate::revocation::AuthChange;
use crate::{AuditTrail, NewOutboxMessage, Store, StoreError};

/// A session to open, with its first refresh token (declared here, where a
/// sign-in opens it, so that `sessions` may import this module and not the reverse).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub scope: Option<String>,
    pub refresh_hash: [u8; 32],
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions (id, user_id, device_name, user_agent, ip_address, scope, \
     created_at, last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)";
pub(crate) const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)";

/// Inserts a [`NewSession`] and its first refresh token on the transaction
/// (here rather than in `sessions`, which imports `users`, which imports this module)
/// `$tx` (so a sign-in can open its session in the transaction that settles it).
macro_rules! insert_session {
    ($tx:expr, $new:expr) => {{
        let new: &$crate::NewSession = $new;
        sqlx::query($crate::credentials::INSERT_SESSION)
            .bind(new.id)
            .bind(new.user_id)
            .bind(new.device_name.as_deref())
            .bind(new.user_agent.as_deref())
            .bind(new.ip_address.as_deref())
            .bind(new.scope.as_deref())
            .bind(new.now)
            .bind(new.expires_at)
            .execute(&mut *$tx)
            .await?;
        sqlx::query($crate::credentials::INSERT_REFRESH_TOKEN)
            .bind(&new.refresh_hash[..])
            .bind(new.id)
            .bind(new.now)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use insert_session;

/// What a single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    PasswordReset,
    Invitation,
}

impl TokenPurpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::Invitation => "invitation",
        }
    }
}

/// Stores a single-use token. Binds: hash, purpose, user id, now, expiry.
pub(crate) const INSERT_TOKEN: &str = "INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5)";

/// Why a password is being replaced; decides which sessions survive.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChange<'a> {
    pub user_id: Uuid,
    pub hash: &'a str,
    pub now: OffsetDateTime,
    /// How many recent hashes to keep in the history (the current one included).
    pub history: u32,
    /// The session that made the change keeps working; every other one is revoked.
    pub keep_session: Option<Uuid>,
    /// Clear a lockout (a completed reset proves control of the mailbox).
    pub unlock: bool,
    /// Mark the email verified (a reset or invitation link proves it).
    pub verify_email: bool,
    /// Consume this single-use token in the same transaction; if it was already
    /// used or has expired, nothing changes and the result is `NotFound`.
    pub token: Option<([u8; 32], TokenPurpose)>,
}

/// What [`Store::reserve_sign_in_attempt`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved: check the secret, then report with [`Store::finish_sign_in_attempt`].
    Reserved(Uuid),
    /// The failures and attempts in flight already fill the lockout budget.
    Wait,
    /// Locked: check nothing.
    Locked,
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum AttemptResult<'a> {
    /// A wrong password or code: one more failure (it may lock the account).
    Failed,
    /// The secret was right. `signed_in`: a sign-in completed with every
    /// factor, so the count goes back to zero; otherwise (a second factor
    /// follows, or a re-authentication) it stays as it is.
    Passed {
        signed_in: bool,
        /// A current hash of the same password (legacy or outdated costs).
        upgraded_hash: Option<&'a str>,
    },
    /// The secret was right and completes a sign-in: the count goes back to
    /// zero and `session` is opened in the same transaction (an account gone
    /// meanwhile is `NotFound`, and no session is opened).
    SignedIn {
        upgraded_hash: Option<&'a str>,
        session: &'a NewSession,
    },
}

/// The account's row locked for the rest of the transaction (PostgreSQL; SQLite
/// transactions that write are serialised anyway).
fn lockout_select(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Sqlite => "SELECT failed_logins, locked_until FROM users WHERE id = $1",
        crate::Backend::Postgres => {
            "SELECT failed_logins, locked_until FROM users WHERE id = $1 FOR UPDATE"
        }
    }
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

impl Store {
    /// Reserves a sign-in attempt for `user_id` before its secret is checked
    /// (see `carrel_core::lockout`): in one transaction holding the account row,
    /// drops expired reservations, counts the live ones with the committed
    /// failures and, if the policy allows, records a new one that expires at
    /// `expires_at` unless finished before.
    pub async fn reserve_sign_in_attempt(
        &self,
        user_id: Uuid,
        policy: &LockoutPolicy,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        const PRUNE: &str = "DELETE FROM sign_in_attempts WHERE user_id = $1 AND expires_at <= $2";
        const COUNT: &str = "SELECT COUNT(*) FROM sign_in_attempts WHERE user_id = $1";
        const INSERT: &str = "INSERT INTO sign_in_attempts (id, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)";
        let select = lockout_select(self.backend());
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let (failed, locked_until): (i32, Option<OffsetDateTime>) = sqlx::query_as(select)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            sqlx::query(PRUNE).bind(user_id).bind(now).execute(&mut *tx).await?;
            let in_flight: i64 = sqlx::query_scalar(COUNT).bind(user_id).fetch_one(&mut *tx).await?;
            let state = LockoutState {
                failed_attempts: to_u32(i64::from(failed)),
                in_flight: to_u32(in_flight),
                locked_until,
            };
            let reservation = match policy.begin_attempt(&state, now) {
                AttemptDecision::Refused { .. } => Reservation::Locked,
                AttemptDecision::Wait => Reservation::Wait,
                AttemptDecision::Proceed => {
                    let id = Uuid::now_v7();
                    sqlx::query(INSERT).bind(id).bind(user_id).bind(now).bind(expires_at).execute(&mut *tx).await?;
                    Reservation::Reserved(id)
                }
            };
            tx.commit().await?;
            Ok(reservation)
        })
    }

    /// What [`Store::reserve_sign_in_attempt`] would decide now, without
    /// writing (a cheap read for attempts that wait).
    pub async fn peek_sign_in_attempt(
        &self,
        user_id: Uuid,
        policy: &LockoutPolicy,
        now: OffsetDateTime,
    ) -> Result<AttemptDecision, StoreError> {
        const SELECT: &str = "SELECT u.failed_logins, u.locked_until, \
             (SELECT COUNT(*) FROM sign_in_attempts a WHERE a.user_id = u.id AND a.expires_at > $2) \
             FROM users u WHERE u.id = $1";
        let (failed, locked_until, in_flight): (i32, Option<OffsetDateTime>, i64) =
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(user_id).bind(now).fetch_optional(pool).await?)
                .ok_or(StoreError::NotFound)?;
        let state = LockoutState {
            failed_attempts: to_u32(i64::from(failed)),
            in_flight: to_u32(in_flight),
            locked_until,
        };
        Ok(policy.begin_attempt(&state, now))
    }

    /// Finishes a reserved attempt: releases the reservation and records the
    /// result in the same transaction. Returns true when this failure is the
    /// one that locked the account; then `lock_notice(locked_until)` builds the
    /// owner's mail, enqueued in the same transaction. A reservation that
    /// already expired still records its result (a failure always counts).
    pub async fn finish_sign_in_attempt(
        &self,
        user_id: Uuid,
        attempt: Uuid,
        result: AttemptResult<'_>,
        policy: &LockoutPolicy,
        now: OffsetDateTime,
        lock_notice: impl FnOnce(OffsetDateTime) -> Option<NewOutboxMessage> + Send,
    ) -> Result<bool, StoreError> {
        self.finish_sign_in_attempt_audited(
            user_id,
            attempt,
            result,
            policy,
            now,
            lock_notice,
            |_: &bool| Vec::new(),
        )
        .await
    }

    /// [`Store::finish_sign_in_attempt`] with the attempt's audit events,
    /// built from whether it locked the account and committed with it (and,
    /// for [`AttemptResult::SignedIn`], with the session it opens): a login is
    /// one write after its reservation.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_sign_in_attempt_audited(
        &self,
        user_id: Uuid,
        attempt: Uuid,
        result: AttemptResult<'_>,
        policy: &LockoutPolicy,
        now: OffsetDateTime,
        lock_notice: impl FnOnce(OffsetDateTime) -> Option<NewOutboxMessage> + Send,
        audit: impl AuditTrail<bool>,
    ) -> Result<bool, StoreError> {
        const RELEASE: &str = "DELETE FROM sign_in_attempts WHERE id = $1";
        const SET: &str = "UPDATE users SET failed_logins = $2, locked_until = $3, \
             password_hash = COALESCE($4, password_hash) WHERE id = $1";
        let select = lockout_select(self.backend());
        let (locked, events) = self.auth_write(AuthChange::User(user_id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let Some((failed, locked_until)): Option<(i32, Option<OffsetDateTime>)> = sqlx::query_as(select)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                // The account is gone (and its reservations with it).
                if matches!(result, AttemptResult::SignedIn { .. }) {
                    return Err(StoreError::NotFound);
                }
                return Ok((false, Vec::new()));
            };
            sqlx::query(RELEASE).bind(attempt).execute(&mut *tx).await?;
            let state = LockoutState {
                failed_attempts: to_u32(i64::from(failed)),
                in_flight: 0,
                locked_until,
            };
            let (next, locked, upgraded) = match result {
                AttemptResult::Failed => {
                    let (next, locked) = policy.after_failure(&state, now);
                    (next, locked, None)
                }
                AttemptResult::Passed { signed_in: true, upgraded_hash }
                | AttemptResult::SignedIn { upgraded_hash, .. } => {
                    (policy.after_success(&state), false, upgraded_hash)
                }
                AttemptResult::Passed { signed_in: false, upgraded_hash } => {
                    (state, false, upgraded_hash)
                }
            };
            sqlx::query(SET)
                .bind(user_id)
                .bind(i32::try_from(next.failed_attempts).unwrap_or(i32::MAX))
                .bind(next.locked_until)
                .bind(upgraded)
                .execute(&mut *tx)
                .await?;
            if let AttemptResult::SignedIn { session, .. } = result {
                insert_session!(tx, session);
            }
            // The owner's "account locked" mail commits with the lock itself.
            let notice = match next.locked_until {
                Some(until) if locked => lock_notice(until),
                _ => None,
            };
            enqueue_messages!(tx, notice.iter(), now);
            let events = append_audit_trail!(tx, audit, &locked);
            tx.commit().await?;
            if notice.is_some() {
                self.wake_outbox();
            }
            Ok((locked, events))
        })
        }).await?;
        crate::audit::log(&events);
        Ok(locked)
    }

    /// One stored password hash per kind other than `current_kind` (kinds as
    /// `kind_of` tells them apart: legacy or outdated parameters), for timing
    /// calibration. Reads the accounts in pages, so memory stays bounded.
    pub async fn legacy_hash_samples(
        &self,
        current_kind: &str,
        kind_of: impl Fn(&str) -> &str,
    ) -> Result<Vec<String>, StoreError> {
        const PAGE: &str = "SELECT id, password_hash FROM users \
             WHERE password_hash IS NOT NULL AND substr(password_hash, 1, $2) <> $1 AND id > $3 \
             ORDER BY id LIMIT 1000";
        let current = format!("{current_kind}$");
        let length = i32::try_from(current.chars().count()).unwrap_or(i32::MAX);
        let mut samples: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        let mut after = Uuid::nil();
        loop {
            let rows: Vec<(Uuid, String)> = crate::on_pool!(self, pool => sqlx::query_as(PAGE)
                .bind(&current)
                .bind(length)
                .bind(after)
                .fetch_all(pool)
                .await?);
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            for (_, hash) in rows {
                let kind = kind_of(&hash).to_owned();
                samples.entry(kind).or_insert(hash);
            }
        }
        Ok(samples.into_values().collect())
    }

    /// Staff unlock: clears the password and PIN failure counters and locks,
    /// with `audit`'s entries, in one transaction.
    pub async fn unlock_user(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        audit: impl AuditTrail<()>,
    ) -> Result<(), StoreError> {
        const UNLOCK: &str = "UPDATE users SET failed_logins = 0, locked_until = NULL, \
             pin_failed_attempts = 0, pin_locked_until = NULL, updated_at = $2 \
             WHERE id = $1 AND deleted_at IS NULL";
        self.auth_write(AuthChange::User(user_id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let done = sqlx::query(UNLOCK).bind(user_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(())
        })
        }).await
    }

    /// The most recent `limit` password hashes of the account, newest first.
    pub async fn password_history(
        &self,
        user_id: Uuid,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        const SELECT: &str = "SELECT password_hash FROM password_history WHERE user_id = $1 \
             ORDER BY created_at DESC LIMIT $2";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_scalar(SELECT).bind(user_id).bind(i64::from(limit)).fetch_all(pool).await?),
        )
    }

    /// Replaces the password in one transaction: consumes the token if any,
    /// stores the hash, appends it to the history (pruned to `history`), revokes
    /// sessions, retires every unused reset or invitation link of the account and
    /// optionally unlocks and verifies the account, with `audit`'s entries.
    pub async fn change_password(
        &self,
        change: &PasswordChange<'_>,
        audit: impl AuditTrail<()>,
    ) -> Result<(), StoreError> {
        const CONSUME: &str = "UPDATE one_time_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND user_id = $4 AND used_at IS NULL AND expires_at > $3";
        const SET: &str = "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3, \
             failed_logins = CASE WHEN $4 THEN 0 ELSE failed_logins END, \
             locked_until = CASE WHEN $4 THEN NULL ELSE locked_until END, \
             email_verified = CASE WHEN $5 THEN TRUE ELSE email_verified END \
             WHERE id = $1 AND deleted_at IS NULL";
        const RETIRE_LINKS: &str = "UPDATE one_time_tokens SET used_at = $2 \
             WHERE user_id = $1 AND purpose IN ('password_reset', 'invitation') AND used_at IS NULL";
        const HISTORY: &str =
            "INSERT INTO password_history (user_id, password_hash, created_at) VALUES ($1, $2, $3)";
        const PRUNE: &str = "DELETE FROM password_history WHERE user_id = $1 AND password_hash NOT IN \
             (SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2)";
        self.auth_write(AuthChange::User(change.user_id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if let Some((hash, purpose)) = change.token {
                let used = sqlx::query(CONSUME)
                    .bind(&hash[..])
                    .bind(purpose.as_str())
                    .bind(change.now)
                    .bind(change.user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if used == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            let done = sqlx::query(SET)
                .bind(change.user_id)
                .bind(change.hash)
                .bind(change.now)
                .bind(change.unlock)
                .bind(change.verify_email)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            // A reset or invitation link issued before this change dies with it.
            sqlx::query(RETIRE_LINKS).bind(change.user_id).bind(change.now).execute(&mut *tx).await?;
            sqlx::query(HISTORY).bind(change.user_id).bind(change.hash).bind(change.now).execute(&mut *tx).await?;
            sqlx::query(PRUNE).bind(change.user_id).bind(i64::from(change.history.max(1))).execute(&mut *tx).await?;
            sqlx::query(crate::revocation::REVOKE_ALL)
                .bind(change.user_id)
                .bind(change.now)
                .bind("password_changed")
                .bind(change.keep_session)
                .execute(&mut *tx)
                .await?;
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
        });
        Ok(())
        }).await
    }

    /// Stores a single-use token (hashed) and invalidates older unused tokens of
    /// the same purpose for the user, so only the newest link works. `mail`
    /// (the email carrying the link) is enqueued in the outbox in the same
    /// transaction: no token without its mail, no mail without its token.
    pub async fn create_one_time_token(
        &self,
        hash: [u8; 32],
        purpose: TokenPurpose,
        user_id: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        mail: &[NewOutboxMessage],
    ) -> Result<(), StoreError> {
        self.create_one_time_token_audited(
            hash,
            purpose,
            user_id,
            now,
            expires_at,
            mail,
            |_: &()| Vec::new(),
        )
        .await
    }

    /// [`Store::create_one_time_token`] with `audit`'s entries, committed
    /// with the token and its mail.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_one_time_token_audited(
        &self,
        hash: [u8; 32],
        purpose: TokenPurpose,
        user_id: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        mail: &[NewOutboxMessage],
        audit: impl AuditTrail<()>,
    ) -> Result<(), StoreError> {
        const RETIRE: &str = "UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            sqlx::query(RETIRE).bind(user_id).bind(purpose.as_str()).bind(now).execute(&mut *tx).await?;
            sqlx::query(INSERT_TOKEN).bind(&hash[..]).bind(purpose.as_str()).bind(user_id).bind(now).bind(expires_at).execute(&mut *tx).await?;
            enqueue_messages!(tx, mail, now);
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
        });
        if !mail.is_empty() {
            self.wake_outbox();
        }
        Ok(())
    }

    /// The user a usable (unused, unexpired) token belongs to, without consuming it.
    pub async fn peek_one_time_token(
        &self,
        hash: [u8; 32],
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        const SELECT: &str = "SELECT user_id FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3";
        Ok(crate::on_pool!(self, pool => sqlx::query_scalar(SELECT)
            .bind(&hash[..]).bind(purpose.as_str()).bind(now).fetch_optional(pool).await?))
    }
}
