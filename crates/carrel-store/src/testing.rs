//! Throw-away databases for tests: a fresh SQLite file, or a fresh PostgreSQL
//! schema (when `CARREL_TEST_POSTGRES_URL` is set), removed when dropped.

// Test support only (the `testing` feature): a broken test database must stop the test at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::sync::Once;

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tempfile::TempDir;
use uuid::Uuid;

use crate::Backend;

/// The variable that enables the PostgreSQL half of every backend test.
pub const POSTGRES_URL_VAR: &str = "CARREL_TEST_POSTGRES_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    dir: TempDir,
    postgres: Option<PostgresSchema>,
}

#[derive(Debug)]
struct PostgresSchema {
    admin_url: String,
    schema: String,
}

impl TestDatabase {
    /// A fresh database for `backend`, or `None` (with a notice on stderr) when
    /// PostgreSQL is asked for but `CARREL_TEST_POSTGRES_URL` is not set.
    pub async fn create(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("carrel.db").display());
                Some(Self {
                    url,
                    dir,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
                    announce_postgres_skipped();
                    return None;
                };
                let schema = format!("carrel_test_{}", Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unreachable: {e}"));
                // The name is generated from a UUID above, never from input.
                sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test schema");
                let _ = conn.close().await;
                let mut url =
                    url::Url::parse(&admin_url).expect("CARREL_TEST_POSTGRES_URL is a URL");
                url.query_pairs_mut()
                    .append_pair("options", &format!("-c search_path={schema}"));
                Some(Self {
                    url: url.to_string(),
                    dir,
                    postgres: Some(PostgresSchema { admin_url, schema }),
                })
            }
        }
    }

    /// The connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A private scratch directory that lives as long as the database.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(pg) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async; a short-lived thread with its own runtime does
        // the clean-up so it also works while a test's runtime is shutting down.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&pg.admin_url).await.ok()?;
                sqlx::query(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    pg.schema
                )))
                .execute(&mut conn)
                .await
                .ok()?;
                conn.close().await.ok()
            })
        });
        let _ = cleanup.join();
    }
}

/// Says once per test binary, visibly even under output capture, that the
/// PostgreSQL tests are being skipped.
fn announce_postgres_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: {POSTGRES_URL_VAR} is not set: every PostgreSQL test in this binary is SKIPPED \
             (it returns early and shows as passed). Set it, e.g. to postgres://postgres@127.0.0.1:5432/test, \
             to run them.\n"
        );
    });
}
