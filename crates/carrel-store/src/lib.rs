//! Carrel's storage: one [`Store`], two backends.
//!
//! Every store method is a whole use case that runs in its own transaction. The
//! body of each method is written once and compiled once per backend (see
//! [`on_pool!`]), so the SQLite and PostgreSQL implementations cannot drift apart;
//! the few statements that genuinely differ (full-text search, locking) branch on
//! [`Backend`] explicitly. Every write goes through one door (see
//! `pool::Writer`). The conformance tests (`tests/conformance.rs`) run on both
//! backends: migrations, audit, bulk loading and the guarantees that only hold
//! under concurrency; the server's API tests exercise the other methods on both.

// Lint wall: a failure is a typed error, never a panic (tests may unwrap; see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod backup;
mod branches;
mod catalog;
mod circulation;
mod credentials;
mod error;
mod mfa;
mod migrations;
mod outbox;
mod pins;
mod pool;
mod revocation;
mod session_cache;
mod sessions;
mod sip2_terminals;
mod stored;
#[cfg(feature = "testing")]
pub mod testing;
mod users;

use std::sync::Arc;

pub use audit::{AuditEvent, AuditQuery, AuditTrail, NewAuditEvent, log as log_audit_events};
pub use backup::{
    BackupError, check_sqlite_snapshot, sqlite_file, sqlite_vacuum_into, verify_sqlite_backup,
};
pub use branches::{Branch, BranchChanges, LibraryTime, MAIN_BRANCH_ID, NewBranch, StoredCalendar};
pub use catalog::ItemPage;
pub use catalog::{
    BranchAvailability, Copy, CopyChanges, ExportEntry, FACET_VALUES, FacetCounts, ImportBatch,
    ImportCounts, ImportErrorRow, ImportIssue, ImportLookup, ImportProgress, ImportRow,
    ImportWrite, ImportedItem, ItemEvent, ItemFacets, ItemFields, ItemHit, ItemRow, ItemSearch,
    ItemSort, MAX_COMPLETIONS, MAX_TERMS, NewCopy, NewImport, SortKey, StoredRecord,
};
pub use circulation::{
    CategoryChanges, Checkout, CheckoutOutcome, CopyState, DEFAULT_CATEGORY, DeskHold, DeskLoan,
    Fine, FineQuery, Hold, HoldQuery, ItemType, Loan, LoanQuery, NewFine, Notice, NoticeKind,
    PatronCategory, PatronSummary, Payment, PaymentOutcome, PaymentRequest, PlaceHold, PolicyRow,
    ReceiveOutcome, Refusal, ReturnOutcome, ShelfEntry, Simulation, Transit, Waiver, WaiverRequest,
};
pub use credentials::{AttemptResult, NewSession, PasswordChange, Reservation, TokenPurpose};
pub use error::StoreError;
pub use mfa::{MfaChallenge, TotpEnrolment};
pub use outbox::{
    ClaimedMessage, FailureOutcome, NewOutboxMessage, OutboxCounts, OutboxEntry, OutboxPriority,
    OutboxQuery, StoredKind,
};
pub use pins::{PinCounter, PinHolder};
pub use pool::{Backend, PoolStatus, StoreOptions};
pub use session_cache::{
    CHANNEL as REVOCATION_CHANNEL, HEARTBEAT_EVERY, LiveSession, MAX_LAG, ViewStatus,
};
pub use sessions::{Refresh, Session, SessionAuth};
pub use sip2_terminals::Sip2Terminal;
pub use users::{FirstToken, NewUser, User, UserChanges, UserQuery, UserStatus};

/// A handle to the database; cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: pool::DbPool,
    /// Live sessions held in memory (see [`crate::session_cache`]).
    pub(crate) session_view: Arc<session_cache::SessionCache>,
    /// Raised after a commit that enqueued outbox messages (see
    /// [`Store::wake_outbox`]); shared by clones, so one process's sender hears
    /// every handle.
    pub(crate) outbox_signal: Arc<tokio::sync::Notify>,
    /// The library's zone and closed-day rule (see [`Store::with_library_time`]).
    pub(crate) library_time: Arc<LibraryTime>,
}

// `Store` is defined at the crate root, above every module: each module adds
// its use cases in an `impl Store` block and the fields' types come from the
// modules, so the modules form a DAG (the server's `tests/module_graph.rs`).
impl Store {
    /// Opens a pool for `url` (`sqlite://…` or `postgres://…`). SQLite files and
    /// their directory are created when missing.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let pool = pool::open_pool(url, options).await?;
        let session_view = session_cache::SessionCache::for_pool(&pool);
        Ok(Store {
            pool,
            session_view,
            outbox_signal: Arc::default(),
            library_time: Arc::default(),
        })
    }
}

/// Runs `$body` with `$pool` bound to the concrete *read* pool of whichever
/// backend the store uses. The body is expanded (and type-checked) once per
/// backend. Writes go through [`on_writer!`] instead: on SQLite this pool's
/// connections are read-only (see [`pool::Writer`]).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::pool::DbPool::Sqlite(db) => {
                let $pool = &db.read;
                $body
            }
            $crate::pool::DbPool::Postgres(db) => {
                let $pool = &db.read;
                $body
            }
        }
    };
    // Both: a method that reads first and then writes.
    ($store:expr, $pool:ident, $writer:ident => $body:expr) => {
        match &$store.pool {
            $crate::pool::DbPool::Sqlite(db) => {
                let ($pool, $writer) = (&db.read, &db.write);
                let _pages = $crate::session_cache::CatalogWrite(&$store.session_view);
                $body
            }
            $crate::pool::DbPool::Postgres(db) => {
                let ($pool, $writer) = (&db.read, &db.write);
                let _pages = $crate::session_cache::CatalogWrite(&$store.session_view);
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// Runs `$body` with `$writer` bound to the [`pool::Writer`] of whichever
/// backend the store uses: the only way to a connection that may write.
macro_rules! on_writer {
    ($store:expr, $writer:ident => $body:expr) => {
        match &$store.pool {
            $crate::pool::DbPool::Sqlite(db) => {
                let $writer = &db.write;
                let _pages = $crate::session_cache::CatalogWrite(&$store.session_view);
                $body
            }
            $crate::pool::DbPool::Postgres(db) => {
                let $writer = &db.write;
                let _pages = $crate::session_cache::CatalogWrite(&$store.session_view);
                $body
            }
        }
    };
}
pub(crate) use on_writer;
