//! Embedded, versioned migrations: one folder per backend, the same version number
//! in both for a change made to both.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::pool::Backend;
use crate::{Store, StoreError};

/// One migration file compiled into the binary by `build.rs`.
#[derive(Debug)]
pub(crate) struct EmbeddedMigration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

fn embedded(backend: Backend) -> &'static [EmbeddedMigration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// The migrator for `backend`, with advisory locking so several instances
/// starting at once apply each migration exactly once.
pub(crate) fn migrator(backend: Backend) -> Migrator {
    let migrations: Vec<Migration> = embedded(backend)
        .iter()
        .map(|m| {
            Migration::new(
                m.version,
                Cow::Borrowed(m.description),
                MigrationType::Simple,
                sqlx::SqlStr::from_static(m.sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// The highest migration version this binary knows for `backend`.
pub(crate) fn latest_version(backend: Backend) -> i64 {
    embedded(backend)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// Versions this binary embeds for `backend`, in order.
pub(crate) fn versions(backend: Backend) -> impl Iterator<Item = i64> {
    embedded(backend).iter().map(|m| m.version)
}

impl Store {
    /// Applies every pending embedded migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrator(migrator(self.backend())).await
    }

    /// Applies the pending embedded migrations up to `version` only, so that a
    /// test can write data under an older schema and then upgrade it with
    /// [`Store::migrate`]. Not for production use.
    #[doc(hidden)]
    pub async fn migrate_up_to(&self, version: i64) -> Result<(), StoreError> {
        let mut migrator = migrator(self.backend());
        migrator.migrations = Cow::Owned(
            migrator
                .migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        );
        self.run_migrator(migrator).await
    }

    async fn run_migrator(&self, migrator: Migrator) -> Result<(), StoreError> {
        crate::on_writer!(self, writer => {
            let mut conn = writer.turn().await?;
            migrator.run(&mut *conn).await?;
        });
        Ok(())
    }

    /// The highest migration version this binary embeds.
    pub fn latest_migration(&self) -> i64 {
        latest_version(self.backend())
    }

    /// True when every migration this binary embeds has been applied successfully.
    pub async fn schema_is_current(&self) -> Result<bool, StoreError> {
        const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success";
        let applied: Vec<i64> =
            crate::on_pool!(self, pool => sqlx::query_scalar(APPLIED).fetch_all(pool).await?);
        Ok(versions(self.backend()).all(|v| applied.contains(&v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_versions() {
        let sqlite: Vec<_> = versions(Backend::Sqlite).collect();
        let postgres: Vec<_> = versions(Backend::Postgres).collect();
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "every migration needs a twin in the other backend"
        );
        assert_eq!(
            latest_version(Backend::Sqlite),
            *sqlite.last().unwrap_or(&0)
        );
    }
}
