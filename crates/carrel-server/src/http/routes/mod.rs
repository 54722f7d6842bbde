//! Route tables, one module per area of the API.

pub mod audit;
pub mod auth;
pub mod branches;
pub mod catalog;
pub mod covers;
pub mod fines;
pub mod holds;
pub mod item_types;
pub mod loans;
pub mod marc;
pub mod ops;
pub mod outbox;
pub mod patron_categories;
pub mod policies;
pub mod rules;
pub mod test_clock;
pub mod users;
