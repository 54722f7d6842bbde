//! Route tables, one module per area of the API.

pub mod ops;
