//! The circulation service around the store's use cases: payment providers,
//! idempotency and the background jobs. Rules live in
//! `carrel_core::circulation`, transactions in `carrel_store`, HTTP in
//! `http::routes::{loans, holds, fines, policies}`.

pub mod jobs;
pub mod payments;
