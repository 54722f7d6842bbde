//! PINs for self-check and SIP2: stored hashed like passwords, with their own
//! failure counter and lock (`pin_failed_attempts`, `pin_locked_until`), so
//! guessing a PIN at a kiosk never locks the web account and vice versa.
//!
//! The counter is updated by compare-and-swap exactly like the password's
//! ([`Store::swap_pin_failure_counter`]); `carrel_core::lockout` decides.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::append_audit_trail;
use crate::revocation::AuthChange;
use crate::users::user_columns;
use crate::{AuditTrail, Store, StoreError, User};

/// The PIN's failure counter and lock as stored (`pin_failed_attempts`,
/// `pin_locked_until`), swapped by compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCounter {
    pub failed_attempts: i32,
    pub locked_until: Option<OffsetDateTime>,
}

/// A live account found by card number, with what a PIN check needs.
#[derive(Clone)]
pub struct PinHolder {
    pub user: User,
    /// `None`: no PIN set (every PIN is wrong).
    pub pin_hash: Option<String>,
    pub counter: PinCounter,
}

impl std::fmt::Debug for PinHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinHolder")
            .field("user", &self.user)
            .field("pin_set", &self.pin_hash.is_some())
            .field("counter", &self.counter)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct PinRow {
    #[sqlx(flatten)]
    user: User,
    pin_hash: Option<String>,
    pin_failed_attempts: i32,
    pin_locked_until: Option<OffsetDateTime>,
}

impl Store {
    /// The live account holding `card_number` (normalised), with its PIN state.
    pub async fn find_pin_holder(
        &self,
        card_number: &str,
    ) -> Result<Option<PinHolder>, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            user_columns!(),
            ", pin_hash, pin_failed_attempts, pin_locked_until FROM users WHERE card_number = $1 AND deleted_at IS NULL"
        );
        let row: Option<PinRow> = crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(card_number).fetch_optional(pool).await?);
        Ok(row.map(|r| PinHolder {
            user: r.user,
            pin_hash: r.pin_hash,
            counter: PinCounter {
                failed_attempts: r.pin_failed_attempts,
                locked_until: r.pin_locked_until,
            },
        }))
    }

    /// Stores a new PIN hash and clears the PIN's failure counter and lock,
    /// with `audit`'s entries.
    pub async fn set_pin(
        &self,
        user_id: Uuid,
        hash: &str,
        now: OffsetDateTime,
        audit: impl AuditTrail<()>,
    ) -> Result<(), StoreError> {
        const SET: &str = "UPDATE users SET pin_hash = $2, pin_failed_attempts = 0, pin_locked_until = NULL, updated_at = $3 \
             WHERE id = $1 AND deleted_at IS NULL";
        self.auth_write(AuthChange::User(user_id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let done = sqlx::query(SET).bind(user_id).bind(hash).bind(now).execute(&mut *tx).await?.rows_affected();
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

    /// The stored PIN failure counter.
    pub async fn pin_failure_counter(&self, user_id: Uuid) -> Result<PinCounter, StoreError> {
        const SELECT: &str =
            "SELECT pin_failed_attempts, pin_locked_until FROM users WHERE id = $1";
        let (failed_attempts, locked_until): (i32, Option<OffsetDateTime>) =
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(user_id).fetch_optional(pool).await?)
                .ok_or(StoreError::NotFound)?;
        Ok(PinCounter {
            failed_attempts,
            locked_until,
        })
    }

    /// Compare-and-swap of the PIN failure counter: writes `next` only if the
    /// stored counter still equals `expected` (false: re-read and decide again).
    pub async fn swap_pin_failure_counter(
        &self,
        user_id: Uuid,
        expected: PinCounter,
        next: PinCounter,
    ) -> Result<bool, StoreError> {
        const SWAP: &str = "UPDATE users SET pin_failed_attempts = $2, pin_locked_until = $3 \
             WHERE id = $1 AND pin_failed_attempts = $4 \
               AND (pin_locked_until = $5 OR (pin_locked_until IS NULL AND $5 IS NULL))";
        let done = crate::on_writer!(self, writer => sqlx::query(SWAP)
            .bind(user_id)
            .bind(next.failed_attempts)
            .bind(next.locked_until)
            .bind(expected.failed_attempts)
            .bind(expected.locked_until)
            .execute(&mut *writer.turn().await?)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Clears the PIN failure counter and lock (a right PIN, or staff unlock).
    pub async fn clear_pin_failures(&self, user_id: Uuid) -> Result<(), StoreError> {
        const RESET: &str = "UPDATE users SET pin_failed_attempts = 0, pin_locked_until = NULL \
             WHERE id = $1 AND (pin_failed_attempts <> 0 OR pin_locked_until IS NOT NULL)";
        crate::on_writer!(self, writer => {
            sqlx::query(RESET).bind(user_id).execute(&mut *writer.turn().await?).await?;
        });
        Ok(())
    }
}
