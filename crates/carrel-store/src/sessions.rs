//! Login sessions and their rotating refresh tokens.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::append_audit_trail;
use crate::credentials::{NewSession, insert_session};
use crate::revocation::{AuthChange, REVOKE_ALL};
use crate::users::user_columns;
use crate::{AuditTrail, Store, StoreError, User};

/// A stored session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    /// `None` for a full session; `mfa_setup` when it may only enrol MFA.
    pub scope: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What each authenticated request needs, read in one indexed lookup: the
/// session and its whole account, so handlers need not read the user again.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionAuth {
    pub session_id: Uuid,
    pub scope: Option<String>,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    #[sqlx(flatten)]
    pub user: User,
}

impl SessionAuth {
    /// Live: not revoked, not expired, and its account active and not deleted.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > now
            && self.user.is_active
            && self.user.deleted_at.is_none()
    }
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone)]
pub enum Refresh {
    /// Exchanged: the new token is stored, the presented one is dead.
    Rotated(Box<SessionAuth>),
    /// A token that was already exchanged came back outside the grace window:
    /// the whole session has been revoked.
    ReuseDetected { session_id: Uuid, user_id: Uuid },
    /// Unknown token, or its session is revoked or expired.
    Invalid,
}

const SESSION_AUTH: &str = concat!(
    "SELECT s.id AS session_id, s.scope, s.last_used_at, s.expires_at, s.revoked_at, ",
    user_columns!("u."),
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
);

impl Store {
    /// Opens a session and stores its first refresh token (hashed).
    pub async fn create_session(&self, new: &NewSession) -> Result<(), StoreError> {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            insert_session!(tx, new);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The session behind an access token, with its account's state.
    pub async fn session_auth(&self, session_id: Uuid) -> Result<Option<SessionAuth>, StoreError> {
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SESSION_AUTH).bind(session_id).fetch_optional(pool).await?),
        )
    }

    /// Records use of a session (callers throttle this: it is a write).
    pub async fn touch_session(
        &self,
        session_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const UPDATE: &str =
            "UPDATE sessions SET last_used_at = $2 WHERE id = $1 AND last_used_at < $2";
        crate::on_writer!(self, writer => {
            sqlx::query(UPDATE).bind(session_id).bind(now).execute(&mut *writer.turn().await?).await?;
        });
        self.session_view.touched(session_id, now);
        Ok(())
    }

    /// Exchanges a refresh token for a new one, atomically: of two concurrent
    /// requests with the same token only one can win the `rotated_at IS NULL`
    /// update. A token rotated more than `grace` ago that comes back is reuse:
    /// the session is revoked. Each exchange slides the session's expiry.
    pub async fn rotate_refresh_token(
        &self,
        presented: [u8; 32],
        replacement: [u8; 32],
        now: OffsetDateTime,
        grace: time::Duration,
        expires_at: OffsetDateTime,
    ) -> Result<Refresh, StoreError> {
        self.rotate_refresh_token_audited(
            presented,
            replacement,
            now,
            grace,
            expires_at,
            |_: &(Uuid, Uuid)| Vec::new(),
        )
        .await
    }

    /// [`Store::rotate_refresh_token`] with the audit events `audit` builds
    /// on a [`Refresh::ReuseDetected`] outcome from its `(session_id,
    /// user_id)`, committed with the session's revocation (`audit` is not
    /// called for the other outcomes).
    pub async fn rotate_refresh_token_audited(
        &self,
        presented: [u8; 32],
        replacement: [u8; 32],
        now: OffsetDateTime,
        grace: time::Duration,
        expires_at: OffsetDateTime,
        audit: impl AuditTrail<(Uuid, Uuid)>,
    ) -> Result<Refresh, StoreError> {
        const CLAIM: &str = "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL RETURNING session_id";
        const LOOKUP: &str = "SELECT r.session_id, s.user_id, r.rotated_at FROM refresh_tokens r \
             JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1";
        const INSERT: &str =
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)";
        const SLIDE: &str = "UPDATE sessions SET last_used_at = $2, expires_at = $3 WHERE id = $1";
        const REVOKE: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_reuse' \
             WHERE id = $1 AND revoked_at IS NULL";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let claimed: Option<Uuid> = sqlx::query_scalar(CLAIM).bind(&presented[..]).bind(now).fetch_optional(&mut *tx).await?;
            let session_id = match claimed {
                Some(id) => id,
                None => {
                    let known: Option<(Uuid, Uuid, Option<OffsetDateTime>)> =
                        sqlx::query_as(LOOKUP).bind(&presented[..]).fetch_optional(&mut *tx).await?;
                    match known {
                        Some((session_id, _, Some(rotated_at))) if now - rotated_at <= grace && !grace.is_zero() => session_id,
                        Some((session_id, user_id, _)) => {
                            sqlx::query(REVOKE).bind(session_id).bind(now).execute(&mut *tx).await?;
                            let events = append_audit_trail!(tx, audit, &(session_id, user_id));
                            self.auth_write(AuthChange::Session(session_id), async {
                                Ok(tx.commit().await?)
                            }).await?;
                            crate::audit::log(&events);
                            return Ok(Refresh::ReuseDetected { session_id, user_id });
                        }
                        None => return Ok(Refresh::Invalid),
                    }
                }
            };
            let auth: SessionAuth = sqlx::query_as(SESSION_AUTH).bind(session_id).fetch_one(&mut *tx).await?;
            if !auth.is_live(now) {
                // Nothing to keep: the rotation of a dead session's token is rolled back.
                return Ok(Refresh::Invalid);
            }
            sqlx::query(INSERT).bind(&replacement[..]).bind(session_id).bind(now).execute(&mut *tx).await?;
            sqlx::query(SLIDE).bind(session_id).bind(now).bind(expires_at).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Refresh::Rotated(Box::new(SessionAuth { last_used_at: now, expires_at, ..auth })))
        })
    }

    /// The session a refresh token belongs to, without spending the token (the
    /// cookie-mode refresh checks CSRF against it first).
    pub async fn refresh_token_session(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<Uuid>, StoreError> {
        const SELECT: &str = "SELECT session_id FROM refresh_tokens WHERE token_hash = $1";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_scalar(SELECT).bind(&token_hash[..]).fetch_optional(pool).await?),
        )
    }

    /// Revokes one session of `user_id`; false when it is not theirs or already revoked.
    pub async fn revoke_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.revoke_session_audited(user_id, session_id, reason, now, |_: &bool| Vec::new())
            .await
    }

    /// [`Store::revoke_session`] with the audit events `audit` builds from
    /// whether a session was revoked, committed in the same transaction.
    pub async fn revoke_session_audited(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        reason: &str,
        now: OffsetDateTime,
        audit: impl AuditTrail<bool>,
    ) -> Result<bool, StoreError> {
        const UPDATE: &str = "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL";
        let (done, events) = self
            .auth_write(AuthChange::Session(session_id), async {
                crate::on_writer!(self, writer => {
                    let mut tx = writer.begin_write().await?;
                    let done = sqlx::query(UPDATE)
                        .bind(session_id).bind(user_id).bind(now).bind(reason)
                        .execute(&mut *tx).await?.rows_affected() > 0;
                    let events = append_audit_trail!(tx, audit, &done);
                    tx.commit().await?;
                    Ok((done, events))
                })
            })
            .await?;
        crate::audit::log(&events);
        Ok(done)
    }

    /// Revokes every session of `user_id`, except `keep` when given, with the
    /// audit events `audit` builds from how many were revoked, committed in the
    /// same transaction.
    pub async fn revoke_all_sessions(
        &self,
        user_id: Uuid,
        reason: &str,
        now: OffsetDateTime,
        keep: Option<Uuid>,
        audit: impl AuditTrail<u64>,
    ) -> Result<u64, StoreError> {
        let (revoked, events) = self
            .auth_write(AuthChange::User(user_id), async {
                crate::on_writer!(self, writer => {
                    let mut tx = writer.begin_write().await?;
                    let revoked = sqlx::query(REVOKE_ALL)
                        .bind(user_id).bind(now).bind(reason).bind(keep)
                        .execute(&mut *tx).await?.rows_affected();
                    let events = append_audit_trail!(tx, audit, &revoked);
                    tx.commit().await?;
                    Ok((revoked, events))
                })
            })
            .await?;
        crate::audit::log(&events);
        Ok(revoked)
    }

    /// The live sessions of `user_id`, newest first.
    pub async fn list_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        const LIST: &str = "SELECT id, user_id, device_name, user_agent, ip_address, scope, created_at, last_used_at, \
             expires_at, revoked_at FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(LIST).bind(user_id).bind(now).fetch_all(pool).await?),
        )
    }
}
