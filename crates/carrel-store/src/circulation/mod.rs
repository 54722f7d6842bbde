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

/// A circulation rule refused the request: the core's decisions' refusals.
pub use carrel_core::decide::Refusal;

// The item history's writer lives with the history, in the catalog.
pub(crate) use crate::catalog::{CirculationEvent, circulation_event};
