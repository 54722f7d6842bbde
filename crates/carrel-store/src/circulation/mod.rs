//! Circulation: policies, loans, holds, fines, payments and the background
//! jobs that keep them moving.
//!
//! Each public method is one use case in one transaction. The invariants two
//! desks could race on are database constraints (see migration 0005); the code
//! additionally claims rows with compare-and-set updates (`... WHERE status =
//! 'available'`), so on PostgreSQL's READ COMMITTED a loser re-reads the
//! winner's committed row and refuses instead of double-booking.

mod desk;
mod fines;
mod holds;
mod jobs;
mod loans;
mod policies;
pub(crate) mod rules;
mod shelf;
mod transit;

pub use desk::{CopyState, DeskHold, DeskLoan, PatronSummary};
pub use fines::{
    Fine, FineQuery, NewFine, Payment, PaymentOutcome, PaymentRequest, Waiver, WaiverRequest,
};
pub use holds::{Hold, HoldQuery, PlaceHold};
pub use jobs::{Notice, NoticeKind};
pub use loans::{Checkout, CheckoutOutcome, Loan, LoanQuery, ReturnOutcome, Simulation};
pub use policies::PolicyRow;
pub use rules::{CategoryChanges, DEFAULT_CATEGORY, ItemType, PatronCategory};
pub use shelf::ShelfEntry;
pub use transit::{ReceiveOutcome, Transit};

/// A circulation rule refused the request. Each maps to one error code of the
/// contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not on the shelf, or on the hold shelf for someone else.
    #[error("the copy is not available")]
    CopyUnavailable,
    #[error("the patron has reached the loan limit")]
    LoanLimitReached,
    /// The rule in force allows no more open loans of this item type.
    #[error("the patron has reached the loan limit for this item type")]
    LoanTypeLimitReached,
    #[error("the patron owes at least the block threshold")]
    PatronBlocked,
    /// The account is deactivated.
    #[error("the patron's account is deactivated")]
    PatronInactive,
    #[error("the loan has reached its renewal limit")]
    RenewalLimitReached,
    #[error("other patrons are waiting for this item")]
    HoldPending,
    #[error("the patron already has an open hold on this item")]
    HoldExists,
    /// The patron already has the most waiting and ready holds allowed.
    #[error("the patron has reached the hold limit")]
    HoldLimitReached,
    /// The rule in force does not allow holds for this patron and item.
    #[error("holds are not allowed for this patron and item type")]
    HoldsNotAllowed,
    #[error("the patron already has this item on loan")]
    AlreadyBorrowed,
    /// Return or renewal of a copy or loan that is not out.
    #[error("the copy is not on loan")]
    NotOnLoan,
    /// Cancelling a hold that is already fulfilled, cancelled or expired.
    #[error("the hold is no longer open")]
    HoldClosed,
    /// Changing the pickup branch of a hold that is no longer waiting (its
    /// copy is on a hold shelf already, or the hold is closed).
    #[error("the hold is no longer waiting: its pickup branch cannot change")]
    HoldNotWaiting,
    /// Paying or waiving a fine that is already settled.
    #[error("the fine is already settled")]
    FineSettled,
    /// More than the balance of the fine.
    #[error("the amount exceeds the balance")]
    ExceedsBalance,
    /// Staff paying or waiving a fine of their own.
    #[error("staff may not pay or waive their own fines")]
    OwnFine,
    /// Receiving a copy that is not in transit to that branch.
    #[error("the copy is not in transit to this branch")]
    NotInTransit,
    /// The idempotency key was used with another request.
    #[error("the idempotency key was used with another request")]
    IdempotencyKeyReused,
}

// The item history's writer lives with the history, in the catalog.
pub(crate) use crate::catalog::{CirculationEvent, circulation_event};
