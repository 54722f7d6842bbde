//! Multi-factor authentication: TOTP enrolment, replay-proof code use,
//! single-use recovery codes and the login challenge.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::append_audit_trail;
use crate::credentials::{NewSession, insert_session};
use crate::revocation::{AuthChange, REVOKE_ALL};
use crate::{AuditTrail, Store, StoreError};

/// A TOTP enrolment, pending until confirmed.
#[derive(Clone, sqlx::FromRow)]
pub struct TotpEnrolment {
    pub secret_sealed: Vec<u8>,
    pub confirmed_at: Option<OffsetDateTime>,
    pub last_used_step: i64,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// A live login challenge.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MfaChallenge {
    pub user_id: Uuid,
    pub device_name: Option<String>,
    pub use_cookies: bool,
}

impl Store {
    /// Starts (or restarts) a pending enrolment; refused once MFA is confirmed.
    pub async fn begin_totp_enrolment(
        &self,
        user_id: Uuid,
        secret_sealed: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const CONFIRMED: &str =
            "SELECT COUNT(*) FROM user_mfa WHERE user_id = $1 AND confirmed_at IS NOT NULL";
        const CLEAR: &str = "DELETE FROM user_mfa WHERE user_id = $1";
        const INSERT: &str =
            "INSERT INTO user_mfa (user_id, secret_sealed, created_at) VALUES ($1, $2, $3)";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let confirmed: i64 = sqlx::query_scalar(CONFIRMED).bind(user_id).fetch_one(&mut *tx).await?;
            if confirmed > 0 {
                return Err(StoreError::Refused("multi-factor authentication is already enabled"));
            }
            sqlx::query(CLEAR).bind(user_id).execute(&mut *tx).await?;
            sqlx::query(INSERT).bind(user_id).bind(secret_sealed).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn totp_enrolment(&self, user_id: Uuid) -> Result<Option<TotpEnrolment>, StoreError> {
        const SELECT: &str =
            "SELECT secret_sealed, confirmed_at, last_used_step FROM user_mfa WHERE user_id = $1";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(user_id).fetch_optional(pool).await?),
        )
    }

    /// Confirms a pending enrolment with the step of a valid code (which counts
    /// as used), stores the recovery-code hashes, enables MFA on the account and
    /// lifts any enrolment-only restriction from its sessions, with `audit`'s
    /// entries. False (nothing written, no entry) if the enrolment was not
    /// pending or the step was already used.
    pub async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[[u8; 32]],
        now: OffsetDateTime,
        audit: impl AuditTrail<()>,
    ) -> Result<bool, StoreError> {
        const CONFIRM: &str = "UPDATE user_mfa SET confirmed_at = $3, last_used_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NULL AND last_used_step < $2";
        const CLEAR: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
        const CODE: &str = "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)";
        const ENABLE: &str = "UPDATE users SET mfa_enabled = TRUE, updated_at = $2 WHERE id = $1";
        const UNSCOPE: &str =
            "UPDATE sessions SET scope = NULL WHERE user_id = $1 AND scope IS NOT NULL";
        self.auth_write(AuthChange::User(user_id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if sqlx::query(CONFIRM).bind(user_id).bind(step).bind(now).execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(CLEAR).bind(user_id).execute(&mut *tx).await?;
            for hash in recovery_hashes {
                sqlx::query(CODE).bind(user_id).bind(&hash[..]).execute(&mut *tx).await?;
            }
            sqlx::query(ENABLE).bind(user_id).bind(now).execute(&mut *tx).await?;
            sqlx::query(UNSCOPE).bind(user_id).execute(&mut *tx).await?;
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(true)
        })
        }).await
    }

    /// Accepts a confirmed code's step exactly once: a step at or before the
    /// last accepted one (a replay, or a concurrent twin) is refused.
    pub async fn claim_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        const CLAIM: &str = "UPDATE user_mfa SET last_used_step = $2 \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_used_step < $2";
        Ok(
            crate::on_writer!(self, writer => sqlx::query(CLAIM).bind(user_id).bind(step).execute(&mut *writer.turn().await?).await?.rows_affected())
                == 1,
        )
    }

    /// Spends a recovery code, with `audit`'s entries; false (no entry) if
    /// unknown or already used.
    pub async fn use_recovery_code(
        &self,
        user_id: Uuid,
        hash: [u8; 32],
        now: OffsetDateTime,
        audit: impl AuditTrail<()>,
    ) -> Result<bool, StoreError> {
        const USE: &str = "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if sqlx::query(USE).bind(user_id).bind(&hash[..]).bind(now).execute(&mut *tx).await?.rows_affected() != 1 {
                return Ok(false);
            }
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(true)
        })
    }

    /// Removes MFA from an account (enrolment, recovery codes, open challenges)
    /// with `audit`'s entries; with `revoke_reason`, every session of the
    /// account is revoked (for that reason) in the same transaction.
    pub async fn disable_mfa(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        revoke_reason: Option<&str>,
        audit: impl AuditTrail<()>,
    ) -> Result<(), StoreError> {
        const STATEMENTS: [&str; 3] = [
            "DELETE FROM user_mfa WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM mfa_challenges WHERE user_id = $1",
        ];
        const DISABLE: &str = "UPDATE users SET mfa_enabled = FALSE, updated_at = $2 WHERE id = $1";
        self.auth_write(AuthChange::User(user_id), async {
            crate::on_writer!(self, writer => {
                let mut tx = writer.begin_write().await?;
                for statement in STATEMENTS {
                    sqlx::query(statement).bind(user_id).execute(&mut *tx).await?;
                }
                sqlx::query(DISABLE).bind(user_id).bind(now).execute(&mut *tx).await?;
                if let Some(reason) = revoke_reason {
                    sqlx::query(REVOKE_ALL).bind(user_id).bind(now).bind(reason).bind(None::<Uuid>).execute(&mut *tx).await?;
                }
                let events = append_audit_trail!(tx, audit, &());
                tx.commit().await?;
                crate::audit::log(&events);
            });
            Ok(())
        })
        .await
    }

    /// Records the second step of a login for `user_id`, with `audit`'s entries.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_mfa_challenge(
        &self,
        hash: [u8; 32],
        user_id: Uuid,
        device_name: Option<&str>,
        use_cookies: bool,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
        audit: impl AuditTrail<()>,
    ) -> Result<(), StoreError> {
        const INSERT: &str = "INSERT INTO mfa_challenges (token_hash, user_id, device_name, use_cookies, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            sqlx::query(INSERT).bind(&hash[..]).bind(user_id).bind(device_name).bind(use_cookies).bind(now).bind(expires_at).execute(&mut *tx).await?;
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
        });
        Ok(())
    }

    /// Counts one attempt against a live challenge (unused, unexpired, under
    /// `max_attempts`) and returns it; `None` when there is no such challenge.
    pub async fn attempt_mfa_challenge(
        &self,
        hash: [u8; 32],
        now: OffsetDateTime,
        max_attempts: i32,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        const ATTEMPT: &str = "UPDATE mfa_challenges SET attempts = attempts + 1 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3 \
             RETURNING user_id, device_name, use_cookies";
        Ok(
            crate::on_writer!(self, writer => sqlx::query_as(ATTEMPT).bind(&hash[..]).bind(now).bind(max_attempts).fetch_optional(&mut *writer.turn().await?).await?),
        )
    }

    /// Completes a login's second step in one transaction: marks the challenge
    /// used, opens `session` and appends `audit`'s entries. False (nothing
    /// written) if the challenge already was used (a concurrent twin won).
    pub async fn complete_mfa_challenge(
        &self,
        hash: [u8; 32],
        now: OffsetDateTime,
        session: &NewSession,
        audit: impl AuditTrail<()>,
    ) -> Result<bool, StoreError> {
        const COMPLETE: &str =
            "UPDATE mfa_challenges SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if sqlx::query(COMPLETE).bind(&hash[..]).bind(now).execute(&mut *tx).await?.rows_affected() != 1 {
                return Ok(false);
            }
            insert_session!(tx, session);
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(true)
        })
    }
}
