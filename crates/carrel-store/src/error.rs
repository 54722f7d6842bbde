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
    Circulation(carrel_core::decide::Refusal),
    /// The database could not be reached in time (pool timeout, I/O, closed pool),
    /// or it is shutting down, starting up or dropped the connection.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database has no space left to write (a full disk: SQLite's
    /// `SQLITE_FULL`, PostgreSQL's `disk_full`). Reads may still work.
    #[error("database storage full")]
    StorageFull(#[source] sqlx::Error),
    /// Anything else: a bug or a broken database. Logged, never shown to clients.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A stored status, reason or method is not one of its known words: a
    /// broken database, never guessed at. Logged, never shown to clients.
    #[error("invalid stored value: {0}")]
    InvalidStored(#[from] carrel_core::statuses::UnknownValue),
    /// Applying migrations failed.
    #[error("migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<carrel_core::decide::Refusal> for StoreError {
    fn from(refusal: carrel_core::decide::Refusal) -> Self {
        StoreError::Circulation(refusal)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            // A status, reason or method column holding an unknown word.
            sqlx::Error::ColumnDecode { ref source, .. }
                if source.is::<carrel_core::statuses::UnknownValue>() =>
            {
                match source.downcast_ref::<carrel_core::statuses::UnknownValue>() {
                    Some(unknown) => StoreError::InvalidStored(*unknown),
                    None => StoreError::Database(error),
                }
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                let constraint = unique_constraint_name(db.as_ref());
                StoreError::Conflict { constraint }
            }
            // A foreign key refused: a code (item type, patron category) that
            // was deleted meanwhile, or a row something else still names.
            sqlx::Error::Database(ref db) if db.is_foreign_key_violation() => {
                StoreError::Refused("refers to a record that no longer exists, or is still in use")
            }
            sqlx::Error::Database(ref db) => match classify(db.as_ref()) {
                Some(Class::Unavailable) => StoreError::Unavailable(error),
                Some(Class::Full) => StoreError::StorageFull(error),
                None => StoreError::Database(error),
            },
            other => StoreError::Database(other),
        }
    }
}

enum Class {
    Unavailable,
    Full,
}

/// Database errors that are about the server, not the request: a PostgreSQL
/// that is shutting down, restarting or refusing connections (SQLSTATE class
/// 08, `57P01`–`57P03`, `53300`), and a full disk (`53100`; SQLite's
/// `SQLITE_FULL`, primary result code 13, which it reports when a write gets
/// `ENOSPC`).
fn classify(db: &dyn sqlx::error::DatabaseError) -> Option<Class> {
    let code = db.code()?;
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes keep the primary code in the low byte.
        return match code.parse::<i32>().ok()? & 0xff {
            13 => Some(Class::Full),
            _ => None,
        };
    }
    match code.as_ref() {
        "53100" => Some(Class::Full),
        "57P01" | "57P02" | "57P03" | "53300" => Some(Class::Unavailable),
        c if c.starts_with("08") => Some(Class::Unavailable),
        _ => None,
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use carrel_core::statuses::{LoanStatus, UnknownValue};

    #[test]
    fn an_unknown_stored_word_is_a_typed_error_not_a_guess() {
        // What a row decoder reports for a status column it cannot read.
        let source = "borrowed".parse::<LoanStatus>().unwrap_err();
        let error = sqlx::Error::ColumnDecode {
            index: "\"status\"".to_owned(),
            source: Box::new(source),
        };
        assert!(matches!(
            StoreError::from(error),
            StoreError::InvalidStored(UnknownValue("loan status"))
        ));
        // Any other decoding failure stays a database error.
        let other = sqlx::Error::ColumnDecode {
            index: "\"n\"".to_owned(),
            source: "not a number".into(),
        };
        assert!(matches!(StoreError::from(other), StoreError::Database(_)));
    }
}
