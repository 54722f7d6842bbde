//! The circulation service around the store's use cases: payment providers
//! and idempotency. Rules live in `carrel_core::circulation`, transactions in
//! `carrel_store`, use cases in `app::circulation`, HTTP in
//! `http::routes::{loans, holds, fines, policies}`, the background jobs in
//! `crate::jobs`. Below the application state, which holds a provider.

pub mod payments;
