//! Carrel's storage: one [`Store`], two backends.
//!
//! Every store method is a whole use case that runs in its own transaction. The
//! body of each method is written once and compiled once per backend (see
//! [`on_pool!`]), so the SQLite and PostgreSQL implementations cannot drift apart;
//! the few statements that genuinely differ (full-text search, locking) branch on
//! [`Backend`] explicitly. The conformance tests run every method on both.

mod audit;
mod backup;
mod catalog;
mod circulation;
mod credentials;
mod error;
mod mfa;
mod migrations;
mod pool;
mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
mod users;

pub use audit::{AuditEvent, AuditQuery, AuditTrail, NewAuditEvent, log as log_audit_events};
pub use backup::{
    BackupError, check_sqlite_snapshot, sqlite_file, sqlite_vacuum_into, verify_sqlite_backup,
};
pub use catalog::{
    Copy, CopyChanges, ItemEvent, ItemFields, ItemHit, ItemRow, ItemSearch, ItemSort, MAX_TERMS,
    NewCopy, SortKey,
};
pub use circulation::{
    Checkout, CheckoutOutcome, Fine, FineQuery, Hold, HoldQuery, Loan, LoanQuery, NewFine, Notice,
    NoticeKind, Payment, PaymentOutcome, PaymentRequest, PlaceHold, PolicyRow, Refusal,
    ReturnOutcome, Waiver, WaiverRequest,
};
pub use credentials::{FailureCounter, PasswordChange, TokenPurpose};
pub use error::StoreError;
pub use mfa::{MfaChallenge, TotpEnrolment};
pub use pool::{Backend, PoolStatus, Store, StoreOptions};
pub use sessions::{NewSession, Refresh, Session, SessionAuth};
pub use users::{NewUser, User, UserChanges, UserQuery, UserStatus};

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend the
/// store uses. The body is expanded (and type-checked) once per backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::pool::DbPool::Sqlite($pool) => $body,
            $crate::pool::DbPool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;
