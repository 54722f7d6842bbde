//! Connecting to either backend, applying migrations, and health checks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::StoreError;
use crate::migrations;

/// A PostgreSQL connection idle at least this long is pinged before it is used.
pub(crate) const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (bundled, WAL mode).
    Sqlite,
    /// PostgreSQL over the network.
    Postgres,
}

impl Backend {
    /// The backend a `sqlite://` or `postgres://` URL selects, if any.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    /// A short lower-case name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Pool settings taken from configuration.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum number of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before the store reports
    /// [`StoreError::Unavailable`] (which the API turns into 503).
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum DbPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to the database; cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: DbPool,
    /// Live sessions held in memory (see [`crate::session_cache`]).
    pub(crate) session_view: Arc<crate::session_cache::SessionCache>,
    /// Raised after a commit that enqueued outbox messages (see
    /// [`Store::wake_outbox`]); shared by clones, so one process's sender hears
    /// every handle.
    pub(crate) outbox_signal: Arc<tokio::sync::Notify>,
    /// The library's zone and closed-day rule (see [`Store::with_library_time`]).
    pub(crate) library_time: Arc<crate::LibraryTime>,
}

/// A snapshot of the connection pool, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    /// Open connections (idle and in use).
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

impl Store {
    /// Opens a pool for `url` (`sqlite://…` or `postgres://…`). SQLite files and
    /// their directory are created when missing.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let backend = Backend::from_url(url).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Configuration(
                "database URL must start with sqlite:// or postgres://".into(),
            ))
        })?;
        let pool = match backend {
            Backend::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                if let Some(parent) = connect.get_filename().parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    // The connection lives in this process: a ping before each use
                    // would only check that its worker thread runs (a broken one
                    // fails the query instead), at the cost of a hand-off to that
                    // thread and back on every acquisition.
                    .test_before_acquire(false)
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            // sqlx queues the ROLLBACK of a dropped transaction, and its
                            // transaction depth falls only once that has run: at depth 0
                            // nothing is queued and the connection is clean (no round trip
                            // to its worker, the common case: a read outside a
                            // transaction, or a transaction that finished).
                            if !conn.is_in_transaction() {
                                return Ok(true);
                            }
                            // After SQLITE_FULL (or an I/O error) SQLite rolls the
                            // transaction back itself; sqlx's own ROLLBACK then fails and
                            // leaves its transaction depth at 1, so every later BEGIN on
                            // this connection would fail (a 500 for good, even once the
                            // disk has room again). The ping runs after that queued
                            // ROLLBACK; a connection still "in a transaction" is closed.
                            conn.ping().await?;
                            Ok(!conn.is_in_transaction())
                        })
                    })
                    .connect_with(connect)
                    .await?;
                DbPool::Sqlite(pool)
            }
            Backend::Postgres => {
                let connect = PgConnectOptions::from_str(url)?.application_name("carrel");
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    // sqlx pings every connection before handing it out: a round trip
                    // to the server per query. Only a connection that sat idle for
                    // [`PING_IDLE_AFTER`] is checked now (the server or a proxy may
                    // have dropped it meanwhile); a busy one proved itself moments ago,
                    // and if it broke since, its query fails and sqlx discards it.
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_IDLE_AFTER {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(connect)
                    .await?;
                DbPool::Postgres(pool)
            }
        };
        let session_view = match &pool {
            DbPool::Sqlite(pool) => crate::session_cache::SessionCache::for_sqlite_file(
                pool.connect_options().get_filename().to_path_buf(),
            ),
            DbPool::Postgres(_) => Arc::new(crate::session_cache::SessionCache::new()),
        };
        Ok(Store {
            pool,
            session_view,
            outbox_signal: Arc::default(),
            library_time: Arc::default(),
        })
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        match self.pool {
            DbPool::Sqlite(_) => Backend::Sqlite,
            DbPool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending embedded migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = migrations::migrator(self.backend());
        crate::on_pool!(self, pool => migrator.run(pool).await?);
        Ok(())
    }

    /// The highest migration version this binary embeds.
    pub fn latest_migration(&self) -> i64 {
        migrations::latest_version(self.backend())
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// True when every migration this binary embeds has been applied successfully.
    pub async fn schema_is_current(&self) -> Result<bool, StoreError> {
        const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success";
        let applied: Vec<i64> =
            crate::on_pool!(self, pool => sqlx::query_scalar(APPLIED).fetch_all(pool).await?);
        Ok(migrations::versions(self.backend()).all(|v| applied.contains(&v)))
    }

    /// Connection-pool occupancy, for the metrics endpoint.
    pub fn pool_status(&self) -> PoolStatus {
        let (size, idle, max) = crate::on_pool!(self, pool => (
            pool.size(),
            u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            pool.options().get_max_connections(),
        ));
        PoolStatus { size, idle, max }
    }

    /// Closes every connection; pending acquisitions fail.
    pub async fn close(&self) {
        crate::on_pool!(self, pool => pool.close().await);
    }
}

/// A write transaction. On SQLite it also holds this process's turn to write
/// to that database file (see [`BeginWrite`]). Derefs to the connection, so
/// `&mut *tx` is an executor, as with a plain transaction.
pub(crate) struct WriteTx<DB: sqlx::Database> {
    tx: sqlx::Transaction<'static, DB>,
    // Released after the commit or rollback (fields drop in declaration order).
    _turn: Option<OwnedSemaphorePermit>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// Opens a transaction that will write.
///
/// On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`): a deferred
/// transaction that later upgrades can fail with SQLITE_BUSY without waiting,
/// even with a busy timeout. And writers of one process queue for their turn
/// here, first come first served, before they take a connection: SQLite admits
/// one writer at a time, and its own busy handler makes the others poll with
/// sleeps of up to 100 ms, which under contention costs far more than the
/// writes themselves.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(&self) -> impl Future<Output = Result<WriteTx<Self::Db>, sqlx::Error>> + Send;

    /// The turn for a single write statement outside a transaction (SQLite);
    /// hold it until the statement has run.
    fn write_turn(
        &self,
    ) -> impl Future<Output = Result<Option<OwnedSemaphorePermit>, sqlx::Error>> + Send;
}

/// One writer's turn per SQLite database file in this process.
fn sqlite_turns(pool: &SqlitePool) -> Arc<Semaphore> {
    static TURNS: LazyLock<Mutex<HashMap<PathBuf, Weak<Semaphore>>>> =
        LazyLock::new(Default::default);
    let file = pool.connect_options().get_filename().to_path_buf();
    let mut turns = TURNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    turns.retain(|_, turn| turn.strong_count() > 0);
    if let Some(turn) = turns.get(&file).and_then(Weak::upgrade) {
        return turn;
    }
    let turn = Arc::new(Semaphore::new(1));
    turns.insert(file, Arc::downgrade(&turn));
    turn
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<WriteTx<Self::Db>, sqlx::Error> {
        let turn = self.write_turn().await?;
        let tx = self.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    async fn write_turn(&self) -> Result<Option<OwnedSemaphorePermit>, sqlx::Error> {
        let turn = sqlite_turns(self)
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        Ok(Some(turn))
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<WriteTx<Self::Db>, sqlx::Error> {
        Ok(WriteTx {
            tx: self.begin().await?,
            _turn: None,
        })
    }

    async fn write_turn(&self) -> Result<Option<OwnedSemaphorePermit>, sqlx::Error> {
        // PostgreSQL locks rows, not the database: writers need no turn.
        Ok(None)
    }
}
