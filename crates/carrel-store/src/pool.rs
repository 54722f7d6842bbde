//! Connecting to either backend, the SQLite writer's turns, and health checks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Store;
use crate::error::StoreError;

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
    Sqlite(Db<sqlx::Sqlite>),
    Postgres(Db<sqlx::Postgres>),
}

/// One backend's connections: reads, and the only way to write.
#[derive(Debug)]
pub(crate) struct Db<DB: sqlx::Database> {
    /// For reads; never queues behind writers. On SQLite its connections are
    /// read-only (see [`Writer`]).
    pub(crate) read: sqlx::Pool<DB>,
    /// For every write (see [`Writer`]).
    pub(crate) write: Writer<DB>,
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

/// Opens a pool for `url` (`sqlite://…` or `postgres://…`). SQLite files and
/// their directory are created when missing.
pub(crate) async fn open_pool(url: &str, options: &StoreOptions) -> Result<DbPool, StoreError> {
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
            let file = connect.get_filename().to_path_buf();
            if let Some(parent) = file.parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
            }
            // Writers take turns, so one connection serves them all (and
            // creates the file and switches it to WAL before any reader opens it).
            let write = sqlite_pool_options(1, options.acquire_timeout)
                .connect_with(connect.clone())
                .await?;
            let read = sqlite_pool_options(options.max_connections, options.acquire_timeout)
                .connect_with(connect.create_if_missing(false).read_only(true))
                .await?;
            DbPool::Sqlite(Db {
                read,
                write: Writer {
                    pool: write,
                    turns: Some(sqlite_turns(file)),
                    begin: Some("BEGIN IMMEDIATE"),
                },
            })
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
            // PostgreSQL locks rows, not the database: one pool, no turns.
            DbPool::Postgres(Db {
                read: pool.clone(),
                write: Writer {
                    pool,
                    turns: None,
                    begin: None,
                },
            })
        }
    };
    Ok(pool)
}

impl Store {
    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        match self.pool {
            DbPool::Sqlite(_) => Backend::Sqlite,
            DbPool::Postgres(_) => Backend::Postgres,
        }
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Connection-pool occupancy, for the metrics endpoint.
    pub fn pool_status(&self) -> PoolStatus {
        fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> PoolStatus {
            PoolStatus {
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match &self.pool {
            // The reader pool and the one writer connection.
            DbPool::Sqlite(db) => {
                let (read, write) = (of(&db.read), of(&db.write.pool));
                PoolStatus {
                    size: read.size + write.size,
                    idle: read.idle + write.idle,
                    max: read.max + write.max,
                }
            }
            // One pool serves both.
            DbPool::Postgres(db) => of(&db.read),
        }
    }

    /// Closes every connection; pending acquisitions fail.
    pub async fn close(&self) {
        match &self.pool {
            DbPool::Sqlite(db) => {
                db.read.close().await;
                db.write.pool.close().await;
            }
            DbPool::Postgres(db) => db.read.close().await,
        }
    }
}

/// The one door to writing (issue 13, item 4). Every INSERT, UPDATE, DELETE
/// and migration of the store goes through a `Writer`, and a `Writer` hands
/// out a connection only together with this process's turn to write to that
/// database ([`Writer::begin_write`], [`Writer::turn`]).
///
/// Why a bypass cannot be built any more:
/// - The write pool is a private field of this module: no code outside
///   `pool.rs` can name it, so it cannot take a write-capable connection
///   without the turn (that does not compile). [`on_pool!`] binds the *read*
///   pool only, and [`on_writer!`] binds the `Writer`, which is not an
///   executor: `execute(writer)` does not compile either.
/// - On SQLite the read pool's connections are opened read-only
///   (`SQLITE_OPEN_READONLY`), so a write sent to the read pool fails with
///   SQLITE_READONLY on its first run, every time, instead of working until
///   two writers collide (the test suite runs every write).
///
/// On PostgreSQL the writer is the same pool and takes no turn: it locks rows,
/// not the database.
#[derive(Debug)]
pub(crate) struct Writer<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    /// SQLite: one turn per database file in this process (see [`sqlite_turns`]).
    turns: Option<Arc<Semaphore>>,
    /// The statement that opens a write transaction (`None`: the driver's own).
    begin: Option<&'static str>,
}

// By hand: a derive would require `DB: Clone`.
impl<DB: sqlx::Database> Clone for Db<DB> {
    fn clone(&self) -> Self {
        Self {
            read: self.read.clone(),
            write: self.write.clone(),
        }
    }
}

impl<DB: sqlx::Database> Clone for Writer<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            turns: self.turns.clone(),
            begin: self.begin,
        }
    }
}

impl<DB: sqlx::Database> Writer<DB> {
    /// Waits for this process's turn to write (SQLite), first come first served.
    async fn take_turn(&self) -> Result<Option<OwnedSemaphorePermit>, sqlx::Error> {
        match &self.turns {
            Some(turns) => Ok(Some(
                Arc::clone(turns)
                    .acquire_owned()
                    .await
                    .map_err(|_| sqlx::Error::PoolClosed)?,
            )),
            None => Ok(None),
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
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<DB>, sqlx::Error> {
        let turn = self.take_turn().await?;
        let tx = match self.begin {
            Some(statement) => self.pool.begin_with(statement).await?,
            None => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// A connection for writes outside a transaction (single statements, each
    /// its own transaction), held with the turn until it is dropped.
    pub(crate) async fn turn(&self) -> Result<WriteConn<DB>, sqlx::Error> {
        let turn = self.take_turn().await?;
        let conn = self.pool.acquire().await?;
        Ok(WriteConn { conn, _turn: turn })
    }
}

/// A write transaction, holding the turn (SQLite) until it has committed or
/// rolled back. Derefs to the connection, so `&mut *tx` is an executor, as with
/// a plain transaction. Only [`Writer::begin_write`] makes one.
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

/// A writing connection outside a transaction, holding the turn (SQLite) until
/// it is dropped. Only [`Writer::turn`] makes one.
pub(crate) struct WriteConn<DB: sqlx::Database> {
    conn: sqlx::pool::PoolConnection<DB>,
    // Released after the connection went back (fields drop in declaration order).
    _turn: Option<OwnedSemaphorePermit>,
}

impl<DB: sqlx::Database> std::ops::Deref for WriteConn<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteConn<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

/// Pool settings shared by SQLite's reader and writer pools.
fn sqlite_pool_options(max_connections: u32, acquire_timeout: Duration) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
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
}

/// One writer's turn per SQLite database file in this process (several
/// `Store`s may open one file; each has its own write pool).
fn sqlite_turns(file: PathBuf) -> Arc<Semaphore> {
    static TURNS: LazyLock<Mutex<HashMap<PathBuf, Weak<Semaphore>>>> =
        LazyLock::new(Default::default);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime half of the one door: a write sent to SQLite's read pool
    /// fails on its first run, and a read never waits for the writer's turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_read_pool_refuses_writes_and_never_queues() {
        let dir = std::env::temp_dir().join(format!("carrel-pool-{}", uuid::Uuid::now_v7()));
        let url = format!("sqlite://{}", dir.join("carrel.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let DbPool::Sqlite(db) = &store.pool else {
            unreachable!("a sqlite:// URL")
        };

        const BYPASS: &str = "INSERT INTO job_leases (name) VALUES ('bypass')";
        let error = sqlx::query(BYPASS).execute(&db.read).await.unwrap_err();
        assert!(
            error.to_string().contains("readonly"),
            "a write through the read pool must fail: {error}"
        );

        // A writer holds the turn (and SQLite's write lock)...
        let mut tx = db.write.begin_write().await.unwrap();
        sqlx::query("UPDATE job_leases SET holder = NULL")
            .execute(&mut *tx)
            .await
            .unwrap();
        // ...readers go on meanwhile...
        let quick = Duration::from_secs(2);
        tokio::time::timeout(quick, store.ping())
            .await
            .expect("a read does not wait for the writer")
            .unwrap();
        tokio::time::timeout(quick, store.schema_is_current())
            .await
            .expect("a read does not wait for the writer")
            .unwrap();
        // ...and the next writer queues for its turn until the first is done.
        let next = {
            let store = store.clone();
            tokio::spawn(async move { store.mark_overdue(time::OffsetDateTime::UNIX_EPOCH).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!next.is_finished(), "a second writer waits for its turn");
        tx.commit().await.unwrap();
        tokio::time::timeout(quick, next)
            .await
            .expect("the turn passes on")
            .unwrap()
            .unwrap();

        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
