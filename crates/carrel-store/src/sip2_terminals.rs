//! SIP2 terminal accounts: what a self-check machine logs in with (93).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreError};

/// A stored terminal account. Its `id` is the actor of everything the terminal does.
#[derive(Clone, sqlx::FromRow)]
pub struct Sip2Terminal {
    pub id: Uuid,
    pub login: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub institution: String,
    pub branch_code: Option<String>,
    pub created_at: OffsetDateTime,
}

// The hash never reaches a log.
impl std::fmt::Debug for Sip2Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sip2Terminal")
            .field("id", &self.id)
            .field("login", &self.login)
            .field("institution", &self.institution)
            .field("branch_code", &self.branch_code)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Adds a terminal account; a taken login is [`StoreError::Conflict`].
    pub async fn create_sip2_terminal(&self, terminal: &Sip2Terminal) -> Result<(), StoreError> {
        const INSERT: &str = "INSERT INTO sip2_terminals (id, login, password_hash, institution, branch_code, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)";
        crate::on_writer!(self, writer => {
            sqlx::query(INSERT)
                .bind(terminal.id)
                .bind(&terminal.login)
                .bind(&terminal.password_hash)
                .bind(&terminal.institution)
                .bind(terminal.branch_code.as_deref())
                .bind(terminal.created_at)
                .execute(&mut *writer.turn().await?)
                .await?;
        });
        Ok(())
    }

    /// Every terminal account, by login.
    pub async fn list_sip2_terminals(&self) -> Result<Vec<Sip2Terminal>, StoreError> {
        const LIST: &str = "SELECT id, login, password_hash, institution, branch_code, created_at \
             FROM sip2_terminals ORDER BY login";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).fetch_all(pool).await?))
    }

    /// The terminal account with this login.
    pub async fn find_sip2_terminal(
        &self,
        login: &str,
    ) -> Result<Option<Sip2Terminal>, StoreError> {
        const SELECT: &str = "SELECT id, login, password_hash, institution, branch_code, created_at \
             FROM sip2_terminals WHERE login = $1";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(login).fetch_optional(pool).await?),
        )
    }

    /// Removes a terminal account; unknown login is [`StoreError::NotFound`].
    pub async fn delete_sip2_terminal(&self, login: &str) -> Result<(), StoreError> {
        const DELETE: &str = "DELETE FROM sip2_terminals WHERE login = $1";
        let done = crate::on_writer!(self, writer => sqlx::query(DELETE).bind(login).execute(&mut *writer.turn().await?).await?.rows_affected());
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}
