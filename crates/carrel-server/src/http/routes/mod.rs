//! Route tables, one module per area of the API.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod covers;
pub mod ops;
pub mod test_clock;
pub mod users;
