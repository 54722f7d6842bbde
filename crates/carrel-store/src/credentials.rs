//! Passwords, login-failure counting and single-use tokens.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::pool::BeginWrite as _;
use crate::{Store, StoreError};

/// The login-failure counter of an account as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounter {
    pub failed_logins: i32,
    pub locked_until: Option<OffsetDateTime>,
}

/// What a single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    PasswordReset,
    Invitation,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::Invitation => "invitation",
        }
    }
}

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

impl Store {
    /// Compare-and-swap of the failure counter: writes `next` only if the stored
    /// counter still equals `expected`. Returns false when another request changed
    /// it first (the caller re-reads and decides again). This is what makes
    /// parallel wrong guesses unable to exceed the lockout threshold.
    pub async fn swap_failure_counter(
        &self,
        user_id: Uuid,
        expected: FailureCounter,
        next: FailureCounter,
    ) -> Result<bool, StoreError> {
        const SWAP: &str = "UPDATE users SET failed_logins = $2, locked_until = $3 \
             WHERE id = $1 AND failed_logins = $4 \
               AND (locked_until = $5 OR (locked_until IS NULL AND $5 IS NULL))";
        let done = crate::on_pool!(self, pool => sqlx::query(SWAP)
            .bind(user_id)
            .bind(next.failed_logins)
            .bind(next.locked_until)
            .bind(expected.failed_logins)
            .bind(expected.locked_until)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// The stored failure counter.
    pub async fn failure_counter(&self, user_id: Uuid) -> Result<FailureCounter, StoreError> {
        const SELECT: &str = "SELECT failed_logins, locked_until FROM users WHERE id = $1";
        let (failed_logins, locked_until): (i32, Option<OffsetDateTime>) =
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(user_id).fetch_optional(pool).await?)
                .ok_or(StoreError::NotFound)?;
        Ok(FailureCounter {
            failed_logins,
            locked_until,
        })
    }

    /// Clears the failure counter and lock, optionally replacing the password hash
    /// with an upgraded one (same password, current parameters).
    pub async fn record_login_success(
        &self,
        user_id: Uuid,
        upgraded_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        const RESET: &str = "UPDATE users SET failed_logins = 0, locked_until = NULL, \
             password_hash = COALESCE($2, password_hash) WHERE id = $1";
        crate::on_pool!(self, pool => {
            sqlx::query(RESET).bind(user_id).bind(upgraded_hash).execute(pool).await?;
        });
        Ok(())
    }

    /// Staff unlock: clears the failure counter and lock.
    pub async fn unlock_user(&self, user_id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        const UNLOCK: &str = "UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = $2 \
             WHERE id = $1 AND deleted_at IS NULL";
        let done = crate::on_pool!(self, pool => sqlx::query(UNLOCK).bind(user_id).bind(now).execute(pool).await?.rows_affected());
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
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
    /// sessions and optionally unlocks and verifies the account.
    pub async fn change_password(&self, change: &PasswordChange<'_>) -> Result<(), StoreError> {
        const CONSUME: &str = "UPDATE one_time_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND user_id = $4 AND used_at IS NULL AND expires_at > $3";
        const SET: &str = "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3, \
             failed_logins = CASE WHEN $4 THEN 0 ELSE failed_logins END, \
             locked_until = CASE WHEN $4 THEN NULL ELSE locked_until END, \
             email_verified = CASE WHEN $5 THEN TRUE ELSE email_verified END \
             WHERE id = $1 AND deleted_at IS NULL";
        const HISTORY: &str =
            "INSERT INTO password_history (user_id, password_hash, created_at) VALUES ($1, $2, $3)";
        const PRUNE: &str = "DELETE FROM password_history WHERE user_id = $1 AND password_hash NOT IN \
             (SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2)";
        crate::on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
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
            sqlx::query(HISTORY).bind(change.user_id).bind(change.hash).bind(change.now).execute(&mut *tx).await?;
            sqlx::query(PRUNE).bind(change.user_id).bind(i64::from(change.history.max(1))).execute(&mut *tx).await?;
            sqlx::query(crate::sessions::REVOKE_ALL)
                .bind(change.user_id)
                .bind(change.now)
                .bind("password_changed")
                .bind(change.keep_session)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a single-use token (hashed) and invalidates older unused tokens of
    /// the same purpose for the user, so only the newest link works.
    pub async fn create_one_time_token(
        &self,
        hash: [u8; 32],
        purpose: TokenPurpose,
        user_id: Uuid,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const RETIRE: &str = "UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL";
        const INSERT: &str = "INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)";
        crate::on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(RETIRE).bind(user_id).bind(purpose.as_str()).bind(now).execute(&mut *tx).await?;
            sqlx::query(INSERT).bind(&hash[..]).bind(purpose.as_str()).bind(user_id).bind(now).bind(expires_at).execute(&mut *tx).await?;
            tx.commit().await?;
        });
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

    /// Consumes a usable token atomically and returns its user; `None` if it was
    /// unknown, used (also by a concurrent request) or expired.
    pub async fn consume_one_time_token(
        &self,
        hash: [u8; 32],
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        const CONSUME: &str = "UPDATE one_time_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id";
        Ok(crate::on_pool!(self, pool => sqlx::query_scalar(CONSUME)
            .bind(&hash[..]).bind(purpose.as_str()).bind(now).fetch_optional(pool).await?))
    }
}
