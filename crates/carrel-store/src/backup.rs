//! SQLite online backups: a consistent snapshot taken with `VACUUM INTO` while
//! the server keeps writing, and the checks a snapshot must pass before it is
//! restored. PostgreSQL deployments use PostgreSQL's own tools instead.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, SqliteConnection};

use crate::migrations;
use crate::pool::Backend;

/// Why a SQLite backup could not be taken or is not fit to restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database file to back up does not exist.
    #[error("no database at {0}")]
    Missing(PathBuf),
    /// SQLite refused to open or read the file (it may not be a database at all).
    #[error("cannot read the database: {0}")]
    Database(#[from] sqlx::Error),
    /// `PRAGMA integrity_check` or `PRAGMA foreign_key_check` found problems.
    #[error("integrity check failed: {0}")]
    Corrupt(String),
    /// The file has no migrations table: it is not a Carrel database.
    #[error("not a Carrel database (no migrations table)")]
    NotCarrel,
    /// A migration recorded in the file did not complete.
    #[error("migration {0} is recorded as failed")]
    FailedMigration(i64),
    /// The file was written by a newer Carrel (or holds migrations this binary
    /// does not know).
    #[error(
        "schema version {found} is newer than this binary knows (up to {known}); restore with a newer carrel"
    )]
    Newer { found: i64, known: i64 },
    /// A migration version this binary does not embed, below its newest one.
    #[error("migration {0} is unknown to this binary")]
    UnknownMigration(i64),
}

/// The SQLite database file a `sqlite://` URL names; `None` for PostgreSQL URLs,
/// in-memory databases and malformed URLs.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if Backend::from_url(url)? != Backend::Sqlite {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    (file.as_os_str() != ":memory:" && !file.as_os_str().is_empty()).then(|| file.to_path_buf())
}

async fn open(file: &Path, busy_timeout: Duration) -> Result<SqliteConnection, BackupError> {
    if !file.exists() {
        return Err(BackupError::Missing(file.to_path_buf()));
    }
    // No journal-mode pragma: the live database is already in WAL mode, and a
    // snapshot keeps whatever its header says.
    let connection = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false)
        .busy_timeout(busy_timeout)
        .connect()
        .await?;
    Ok(connection)
}

/// Writes a consistent copy of the SQLite database `source` to `dest` (which
/// must not exist) with `VACUUM INTO`. It reads one snapshot of the database, so
/// concurrent writers (in this or other processes) keep going in WAL mode; the
/// copy holds exactly the transactions committed before it started. `dest` is
/// written by SQLite and synced to disk before this returns.
pub async fn sqlite_vacuum_into(source: &Path, dest: &Path) -> Result<(), BackupError> {
    let mut connection = open(source, Duration::from_secs(30)).await?;
    let dest_text = dest.to_str().ok_or_else(|| {
        BackupError::Database(sqlx::Error::Configuration(
            "the backup path is not valid UTF-8".into(),
        ))
    })?;
    let result = sqlx::query("VACUUM INTO ?")
        .bind(dest_text)
        .execute(&mut connection)
        .await;
    connection.close().await?;
    result?;
    // SQLite does not sync the file VACUUM INTO writes; do it before anyone
    // relies on the copy.
    std::fs::File::open(dest)
        .and_then(|file| file.sync_all())
        .map_err(|e| BackupError::Database(sqlx::Error::Io(e)))?;
    Ok(())
}

/// Checks a fresh backup snapshot: `PRAGMA quick_check` and
/// `PRAGMA foreign_key_check` pass and the migrations table exists. Returns the
/// schema version (the newest applied migration). Used right after
/// [`sqlite_vacuum_into`], which has just rebuilt every index from its table, so
/// the quick check (pages and records, not index contents; about a third of the
/// time of the full check) is enough here; restore runs the full check. It does
/// not compare versions with this binary, so a newer schema can still be backed up.
pub async fn check_sqlite_snapshot(file: &Path) -> Result<i64, BackupError> {
    let mut connection = open(file, Duration::from_secs(5)).await?;
    let result = applied_migrations(&mut connection, "PRAGMA quick_check").await;
    connection.close().await?;
    Ok(result?.last().map_or(0, |(version, _)| *version))
}

/// Checks that the SQLite file at `file` is fit to restore with this binary:
/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check` pass, the migrations
/// table exists, and every recorded migration
/// succeeded and is known to this binary (none newer). Returns the schema version.
pub async fn verify_sqlite_backup(file: &Path) -> Result<i64, BackupError> {
    let mut connection = open(file, Duration::from_secs(5)).await?;
    let result = applied_migrations(&mut connection, "PRAGMA integrity_check").await;
    connection.close().await?;
    let known = migrations::latest_version(Backend::Sqlite);
    let mut version = 0;
    for (applied, success) in result? {
        if !success {
            return Err(BackupError::FailedMigration(applied));
        }
        if applied > known {
            return Err(BackupError::Newer {
                found: applied,
                known,
            });
        }
        if !migrations::versions(Backend::Sqlite).any(|v| v == applied) {
            return Err(BackupError::UnknownMigration(applied));
        }
        version = applied;
    }
    Ok(version)
}

/// `check` (`PRAGMA integrity_check` or `PRAGMA quick_check`) and the foreign
/// key check, then the migrations table's `(version, success)` rows in order.
async fn applied_migrations(
    connection: &mut SqliteConnection,
    check: &'static str,
) -> Result<Vec<(i64, bool)>, BackupError> {
    let integrity: Vec<String> = sqlx::query_scalar(check)
        .fetch_all(&mut *connection)
        .await?;
    if integrity != ["ok"] {
        return Err(BackupError::Corrupt(integrity.join("; ")));
    }
    let dangling: Vec<String> =
        sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(&mut *connection)
            .await?;
    if let Some(first) = dangling.first() {
        return Err(BackupError::Corrupt(format!(
            "{} foreign key violation(s), first in table {first}",
            dangling.len(),
        )));
    }
    let has_table: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *connection)
    .await?;
    if has_table.is_none() {
        return Err(BackupError::NotCarrel);
    }
    let applied = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut *connection)
        .await?;
    Ok(applied)
}
