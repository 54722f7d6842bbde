//! Storage errors, classified so the HTTP layer can map them to the contract.

use std::borrow::Cow;

/// What went wrong in the store, in terms the layers above can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (or is not visible).
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint refused the write. `constraint` names it in a
    /// backend-neutral way (`table.column` on both backends, or the index name).
    #[error("unique constraint violated: {constraint}")]
    Conflict { constraint: Cow<'static, str> },
    /// A business rule checked inside the transaction refused the change
    /// (e.g. deleting an item whose copies are on loan).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// A circulation rule refused the request (each maps to its own error code).
    #[error("refused: {0}")]
    Circulation(crate::circulation::Refusal),
    /// The database could not be reached in time (pool timeout, I/O, closed pool).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug or a broken database. Logged, never shown to clients.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<crate::circulation::Refusal> for StoreError {
    fn from(refusal: crate::circulation::Refusal) -> Self {
        StoreError::Circulation(refusal)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                let constraint = unique_constraint_name(db.as_ref());
                StoreError::Conflict { constraint }
            }
            other => StoreError::Database(other),
        }
    }
}

/// PostgreSQL reports the constraint name; SQLite only says
/// `UNIQUE constraint failed: users.email`. Both are reduced to one name here.
fn unique_constraint_name(db: &dyn sqlx::error::DatabaseError) -> Cow<'static, str> {
    if let Some(name) = db.constraint() {
        return Cow::Owned(name.to_owned());
    }
    // SQLite names `table.column`; unique indexes are named `table_column`, so
    // both backends report the same name.
    let message = db.message();
    match message.split_once("failed: ") {
        Some((_, columns)) => Cow::Owned(columns.trim().replace('.', "_").replace(", ", "+")),
        None => Cow::Borrowed("unknown"),
    }
}
