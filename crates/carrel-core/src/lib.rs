//! Carrel's domain: types and rules that know nothing about HTTP or SQL.
//!
//! Everything here is plain Rust so it can be unit-tested without a server or a
//! database, and shared by the storage and HTTP layers.

pub mod clock;

pub use clock::Clock;
