//! User accounts: creation, lookup, profile changes, soft delete and restore.

use carrel_core::roles::Role;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::append_audit_trail;
use crate::outbox::enqueue_messages;
use crate::revocation::AuthChange;
use crate::stored::Stored;
use crate::{AuditTrail, NewOutboxMessage, Store, StoreError, TokenPurpose};

/// The columns of [`User`], for `concat!` into static SQL; `user_columns!("u.")`
/// qualifies each one (for joins).
macro_rules! user_columns {
    () => {
        user_columns!("")
    };
    ($t:literal) => {
        concat!(
            $t,
            "id, ",
            $t,
            "email, ",
            $t,
            "username, ",
            $t,
            "full_name, ",
            $t,
            "role, ",
            $t,
            "password_hash, ",
            $t,
            "email_verified, ",
            $t,
            "is_active, ",
            $t,
            "mfa_enabled, ",
            $t,
            "keep_loan_history, ",
            $t,
            "failed_logins, ",
            $t,
            "locked_until, ",
            $t,
            "password_changed_at, ",
            $t,
            "created_at, ",
            $t,
            "updated_at, ",
            $t,
            "deleted_at, ",
            $t,
            "deleted_by, ",
            $t,
            "card_number, ",
            $t,
            "home_branch_id, ",
            $t,
            "category"
        )
    };
}
pub(crate) use user_columns;

/// A stored account.
#[derive(Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    /// Stored as `patron`, `librarian` or `admin` (a CHECK constraint
    /// guarantees it); any other text is [`StoreError::InvalidStored`].
    #[sqlx(try_from = "Stored<Role>")]
    pub role: Role,
    /// PHC string (argon2id, or a legacy bcrypt hash until the next login);
    /// `None` for invited users who have not set a password yet.
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub is_active: bool,
    pub mfa_enabled: bool,
    pub keep_loan_history: bool,
    pub failed_logins: i32,
    pub locked_until: Option<OffsetDateTime>,
    pub password_changed_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
    pub deleted_by: Option<Uuid>,
    /// The patron card (upper-case `[A-Z0-9-]`, 1–32), if any.
    pub card_number: Option<String>,
    /// The patron's home branch (staff set it): the default pickup branch.
    pub home_branch_id: Option<Uuid>,
    /// The patron category code (its limits and rules apply).
    pub category: String,
}

// The password hash never reaches a log.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("is_active", &self.is_active)
            .field("deleted_at", &self.deleted_at)
            .finish_non_exhaustive()
    }
}

/// A new account. Keys are the lower-cased uniqueness keys.
#[derive(Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub email_key: String,
    pub username: String,
    pub username_key: String,
    pub full_name: Option<String>,
    pub role: Role,
    pub password_hash: Option<String>,
    pub email_verified: bool,
    /// Normalised card number; unique.
    pub card_number: Option<String>,
    /// A defined patron category; `None`: the default (`adult`).
    pub category: Option<String>,
    pub now: OffsetDateTime,
}

/// The first single-use token of a new account and the email that carries
/// its link (see [`Store::create_user_with_token`]).
pub struct FirstToken {
    pub hash: [u8; 32],
    pub purpose: TokenPurpose,
    pub expires_at: OffsetDateTime,
    pub mail: NewOutboxMessage,
}

impl std::fmt::Debug for FirstToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstToken")
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Fields a profile or staff update may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub email: Option<(String, String)>,
    pub username: Option<(String, String)>,
    pub full_name: Option<Option<String>>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub keep_loan_history: Option<bool>,
    /// `Some(None)` removes the card.
    pub card_number: Option<Option<String>>,
    /// `Some(None)` clears the home branch.
    pub home_branch_id: Option<Option<Uuid>>,
    /// A defined patron category (staff only).
    pub category: Option<String>,
}

impl UserChanges {
    /// Role changes and deactivation end every session of the account.
    fn revokes_sessions(&self, before: &User) -> bool {
        self.role.is_some_and(|r| r != before.role)
            || self.is_active == Some(false) && before.is_active
    }
}

/// Listing filter for staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Locked,
    Deleted,
}

/// Staff listing query; every value is bound.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Case-insensitive substring of email, username or full name.
    pub q: Option<String>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    /// Keyset cursor: users strictly before `(created_at, id)` in newest-first order.
    pub before: Option<(OffsetDateTime, Uuid)>,
    pub limit: u32,
    pub now: Option<OffsetDateTime>,
    /// Exact (normalised) card number.
    pub card_number: Option<String>,
    /// Patron category code.
    pub category: Option<String>,
    /// Home branch.
    pub home_branch_id: Option<Uuid>,
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// Inserts an account (and its first password-history entry).
    /// Unique email or username → [`StoreError::Conflict`].
    pub async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
        self.create_user_with_token(user, None).await
    }

    /// Like [`create_user`](Self::create_user), and in the same transaction
    /// stores the account's first single-use token (verification or
    /// invitation) and enqueues the email carrying it: the account, its link
    /// and the mail are committed together or not at all.
    pub async fn create_user_with_token(
        &self,
        user: &NewUser,
        first_token: Option<&FirstToken>,
    ) -> Result<User, StoreError> {
        self.create_user_with_token_audited(user, first_token, |_: &User| Vec::new())
            .await
    }

    /// [`create_user_with_token`](Self::create_user_with_token) with the audit
    /// events `audit` builds from the new account, committed with it.
    pub async fn create_user_with_token_audited(
        &self,
        user: &NewUser,
        first_token: Option<&FirstToken>,
        audit: impl AuditTrail<User>,
    ) -> Result<User, StoreError> {
        const INSERT: &str = concat!(
            "INSERT INTO users (id, email, email_key, username, username_key, full_name, role, password_hash, \
             email_verified, is_active, password_changed_at, created_at, updated_at, card_number, category) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE, $10, $11, $11, $12, COALESCE($13, 'adult')) RETURNING ",
            user_columns!()
        );
        const HISTORY: &str =
            "INSERT INTO password_history (user_id, password_hash, created_at) VALUES ($1, $2, $3)";
        let changed_at = user.password_hash.as_ref().map(|_| user.now);
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let created: User = sqlx::query_as(INSERT)
                .bind(user.id)
                .bind(&user.email)
                .bind(&user.email_key)
                .bind(&user.username)
                .bind(&user.username_key)
                .bind(user.full_name.as_deref())
                .bind(user.role.as_str())
                .bind(user.password_hash.as_deref())
                .bind(user.email_verified)
                .bind(changed_at)
                .bind(user.now)
                .bind(user.card_number.as_deref())
                .bind(user.category.as_deref())
                .fetch_one(&mut *tx)
                .await?;
            if let Some(hash) = &user.password_hash {
                sqlx::query(HISTORY).bind(user.id).bind(hash).bind(user.now).execute(&mut *tx).await?;
            }
            if let Some(first) = first_token {
                sqlx::query(crate::credentials::INSERT_TOKEN)
                    .bind(&first.hash[..]).bind(first.purpose.as_str()).bind(user.id).bind(user.now).bind(first.expires_at)
                    .execute(&mut *tx).await?;
                enqueue_messages!(tx, [&first.mail], user.now);
            }
            let events = append_audit_trail!(tx, audit, &created);
            tx.commit().await?;
            crate::audit::log(&events);
            if first_token.is_some() {
                self.wake_outbox();
            }
            Ok(created)
        })
    }

    /// Inserts a batch of accounts in one transaction, skipping (not failing on)
    /// rows whose email or username already exists. Returns, per row, whether
    /// it was inserted.
    pub async fn import_users(&self, users: &[NewUser]) -> Result<Vec<bool>, StoreError> {
        const INSERT: &str = "INSERT INTO users (id, email, email_key, username, username_key, full_name, role, \
             password_hash, email_verified, is_active, password_changed_at, created_at, updated_at, card_number, category) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE, $10, $10, $10, $11, COALESCE($12, 'adult')) ON CONFLICT DO NOTHING";
        const HISTORY: &str =
            "INSERT INTO password_history (user_id, password_hash, created_at) VALUES ($1, $2, $3)";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let mut inserted = Vec::with_capacity(users.len());
            for user in users {
                let done = sqlx::query(INSERT)
                    .bind(user.id)
                    .bind(&user.email)
                    .bind(&user.email_key)
                    .bind(&user.username)
                    .bind(&user.username_key)
                    .bind(user.full_name.as_deref())
                    .bind(user.role.as_str())
                    .bind(user.password_hash.as_deref())
                    .bind(user.email_verified)
                    .bind(user.now)
                    .bind(user.card_number.as_deref())
                    .bind(user.category.as_deref())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if done && let Some(hash) = &user.password_hash {
                    sqlx::query(HISTORY).bind(user.id).bind(hash).bind(user.now).execute(&mut *tx).await?;
                }
                inserted.push(done);
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    /// An account by id, deleted ones included (callers decide visibility).
    pub async fn find_user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        const SELECT: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await?),
        )
    }

    /// The account whose email key or username key equals `key` (login accepts either;
    /// usernames cannot contain `@`, so the two never collide).
    pub async fn find_user_by_login(&self, key: &str) -> Result<Option<User>, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_key = $1 OR username_key = $1"
        );
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(key).fetch_optional(pool).await?),
        )
    }

    /// The account with this email key.
    pub async fn find_user_by_email(&self, email_key: &str) -> Result<Option<User>, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_key = $1"
        );
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(email_key).fetch_optional(pool).await?),
        )
    }

    /// True when a live admin account exists.
    pub async fn admin_exists(&self) -> Result<bool, StoreError> {
        const SELECT: &str =
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND deleted_at IS NULL";
        let count: i64 =
            crate::on_pool!(self, pool => sqlx::query_scalar(SELECT).fetch_one(pool).await?);
        Ok(count > 0)
    }

    /// Applies `changes` to a live (not deleted) account in one transaction; a role
    /// change or deactivation revokes every session of the account at the same time.
    /// `audit`'s entries are committed with the change.
    pub async fn update_user(
        &self,
        id: Uuid,
        changes: &UserChanges,
        now: OffsetDateTime,
        audit: impl AuditTrail<User>,
    ) -> Result<User, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1 AND deleted_at IS NULL"
        );
        const UPDATE: &str = concat!(
            "UPDATE users SET \
               email = COALESCE($2, email), email_key = COALESCE($3, email_key), \
               username = COALESCE($4, username), username_key = COALESCE($5, username_key), \
               full_name = CASE WHEN $6 THEN $7 ELSE full_name END, \
               role = COALESCE($8, role), is_active = COALESCE($9, is_active), \
               keep_loan_history = COALESCE($10, keep_loan_history), updated_at = $11, \
               card_number = CASE WHEN $12 THEN $13 ELSE card_number END, \
               home_branch_id = CASE WHEN $14 THEN $15 ELSE home_branch_id END, \
               category = COALESCE($16, category) \
             WHERE id = $1 RETURNING ",
            user_columns!()
        );
        self.auth_write(AuthChange::User(id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let before: User = sqlx::query_as(SELECT).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let after: User = sqlx::query_as(UPDATE)
                .bind(id)
                .bind(changes.email.as_ref().map(|(e, _)| e.as_str()))
                .bind(changes.email.as_ref().map(|(_, k)| k.as_str()))
                .bind(changes.username.as_ref().map(|(u, _)| u.as_str()))
                .bind(changes.username.as_ref().map(|(_, k)| k.as_str()))
                .bind(changes.full_name.is_some())
                .bind(changes.full_name.clone().flatten())
                .bind(changes.role.map(Role::as_str))
                .bind(changes.is_active)
                .bind(changes.keep_loan_history)
                .bind(now)
                .bind(changes.card_number.is_some())
                .bind(changes.card_number.clone().flatten())
                .bind(changes.home_branch_id.is_some())
                .bind(changes.home_branch_id.flatten())
                .bind(changes.category.as_deref())
                .fetch_one(&mut *tx)
                .await?;
            if changes.revokes_sessions(&before) {
                let reason = if changes.is_active == Some(false) { "deactivated" } else { "role_changed" };
                sqlx::query(crate::revocation::REVOKE_ALL).bind(id).bind(now).bind(reason).bind(None::<Uuid>).execute(&mut *tx).await?;
            }
            let events = append_audit_trail!(tx, audit, &after);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(after)
        })
        }).await
    }

    /// Soft-deletes a live account and revokes its sessions, with `audit`'s
    /// entries. Refused
    /// ([`StoreError::Refused`]) while the user has loans out or fines owed.
    pub async fn soft_delete_user(
        &self,
        id: Uuid,
        by: Option<Uuid>,
        now: OffsetDateTime,
        audit: impl AuditTrail<()>,
    ) -> Result<(), StoreError> {
        const DELETE: &str = "UPDATE users SET deleted_at = $2, deleted_by = $3, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL";
        // Checked inside the transaction, so a checkout cannot slip in between.
        const OBLIGATIONS: &str = "SELECT (SELECT COUNT(*) FROM loans WHERE user_id = $1 AND status IN ('active', 'overdue')) \
             + (SELECT COUNT(*) FROM fines WHERE user_id = $1 AND status = 'open')";
        // PostgreSQL: lock the user row first, as checkout does, so a checkout
        // either commits before the obligations are counted or finds the user
        // deleted (SQLite serialises writers already).
        const LOCK: &str = "SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE";
        let lock = self.backend() == crate::Backend::Postgres;
        self.auth_write(AuthChange::User(id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if lock {
                let live: Option<Uuid> = sqlx::query_scalar(LOCK).bind(id).fetch_optional(&mut *tx).await?;
                if live.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            let owing: i64 = sqlx::query_scalar(OBLIGATIONS).bind(id).fetch_one(&mut *tx).await?;
            if owing > 0 {
                return Err(StoreError::Refused("the account has loans out or fines owed"));
            }
            let done = sqlx::query(DELETE).bind(id).bind(now).bind(by).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(crate::revocation::REVOKE_ALL).bind(id).bind(now).bind("deleted").bind(None::<Uuid>).execute(&mut *tx).await?;
            let events = append_audit_trail!(tx, audit, &());
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(())
        })
        }).await
    }

    /// Undoes a soft delete, with `audit`'s entries.
    pub async fn restore_user(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        audit: impl AuditTrail<User>,
    ) -> Result<User, StoreError> {
        const RESTORE: &str = concat!(
            "UPDATE users SET deleted_at = NULL, deleted_by = NULL, updated_at = $2 \
             WHERE id = $1 AND deleted_at IS NOT NULL RETURNING ",
            user_columns!()
        );
        self.auth_write(AuthChange::User(id), async {
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let restored: User = sqlx::query_as(RESTORE).bind(id).bind(now).fetch_optional(&mut *tx).await?
                .ok_or(StoreError::NotFound)?;
            let events = append_audit_trail!(tx, audit, &restored);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(restored)
        })
        }).await
    }

    /// Consumes a usable email-verification token and marks its account's
    /// address as verified, with the audit events `audit` builds from the
    /// account's id, in one transaction. `None` (nothing written) if the token
    /// was unknown, used (also by a concurrent request) or expired.
    pub async fn verify_email_with_token(
        &self,
        hash: [u8; 32],
        now: OffsetDateTime,
        audit: impl AuditTrail<Uuid>,
    ) -> Result<Option<Uuid>, StoreError> {
        const CONSUME: &str = "UPDATE one_time_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id";
        const UPDATE: &str =
            "UPDATE users SET email_verified = TRUE, updated_at = $2 WHERE id = $1";
        let (user, events) = crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let user: Option<Uuid> = sqlx::query_scalar(CONSUME)
                .bind(&hash[..]).bind(TokenPurpose::VerifyEmail.as_str()).bind(now)
                .fetch_optional(&mut *tx).await?;
            let Some(user) = user else {
                return Ok(None);
            };
            self.auth_write(AuthChange::User(user), async {
                sqlx::query(UPDATE).bind(user).bind(now).execute(&mut *tx).await?;
                let events = append_audit_trail!(tx, audit, &user);
                tx.commit().await?;
                Ok((user, events))
            })
            .await?
        });
        crate::audit::log(&events);
        Ok(Some(user))
    }

    /// Staff listing, newest first, `limit + 1` rows (the extra one signals another page).
    pub async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        const LIST: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users \
             WHERE ($1 IS NULL OR email_key LIKE $1 ESCAPE '\\' OR username_key LIKE $1 ESCAPE '\\' \
                    OR LOWER(COALESCE(full_name, '')) LIKE $1 ESCAPE '\\') \
               AND ($2 IS NULL OR role = $2) \
               AND (CASE $3 \
                      WHEN 'active' THEN deleted_at IS NULL AND is_active AND (locked_until IS NULL OR locked_until <= $4) \
                      WHEN 'locked' THEN deleted_at IS NULL AND locked_until > $4 \
                      WHEN 'deleted' THEN deleted_at IS NOT NULL \
                      ELSE deleted_at IS NULL END) \
               AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
               AND ($8 IS NULL OR card_number = $8) \
               AND ($9 IS NULL OR category = $9) \
               AND ($10 IS NULL OR home_branch_id = $10) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        );
        let status = query.status.map(|s| match s {
            UserStatus::Active => "active",
            UserStatus::Locked => "locked",
            UserStatus::Deleted => "deleted",
        });
        let now = query.now.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(query.q.as_deref().map(like_pattern))
            .bind(query.role.map(Role::as_str))
            .bind(status.unwrap_or("default"))
            .bind(now)
            .bind(query.before.map(|(at, _)| at))
            .bind(query.before.map(|(_, id)| id))
            .bind(i64::from(query.limit) + 1)
            .bind(query.card_number.as_deref())
            .bind(query.category.as_deref())
            .bind(query.home_branch_id)
            .fetch_all(pool)
            .await?))
    }

    /// The live (not deleted) account holding this (normalised) card number.
    pub async fn find_user_by_card(&self, card_number: &str) -> Result<Option<User>, StoreError> {
        const SELECT: &str = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE card_number = $1 AND deleted_at IS NULL"
        );
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(card_number).fetch_optional(pool).await?),
        )
    }
}
