//! Carrel's domain: types and rules that know nothing about HTTP or SQL.
//!
//! Everything here is plain Rust so it can be unit-tested without a server or a
//! database, and shared by the storage and HTTP layers.

// Security rules live here: a panic in an authentication path is a denial of
// service at best, so non-test code must handle every case explicitly.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Every public item says what it is for; other crates code against these.
#![warn(missing_docs)]

pub mod calendar;
pub mod cards;
pub mod circulation;
pub mod clock;
pub mod decide;
pub mod identity;
pub mod isbn;
pub mod lockout;
pub mod password_policy;
pub mod roles;
pub mod rules;
pub mod statuses;

pub use clock::Clock;
pub use decide::Refusal;
pub use lockout::{AttemptDecision, LockoutPolicy, LockoutState};
pub use password_policy::{PasswordPolicy, PasswordViolation};
pub use roles::{Role, UnknownRole};
