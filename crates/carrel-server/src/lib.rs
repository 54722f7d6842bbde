//! The Carrel server: configuration, HTTP API and start-up.
//!
//! Layout: [`http`] (routes, extractors, middleware, error mapping) calls the
//! domain rules in `carrel-core` and the storage in `carrel-store`.

// Lint wall: a failure is a typed error, never a panic (tests may unwrap; see clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod circulation;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod jobs;
pub mod limits;
pub mod outbox;
pub mod passwords;
pub mod sip2;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
