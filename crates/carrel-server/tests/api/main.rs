//! API integration tests: one binary, a real server per test, every test on
//! SQLite and (with `CARREL_TEST_POSTGRES_URL`) PostgreSQL.

mod helpers;

mod audit_trail;
mod auth_flows;
mod auth_refusals;
mod backup;
mod branches;
mod cards;
mod catalog;
mod catalog_use_cases;
mod circulation;
mod cli;
mod covers;
mod desk;
mod fines;
mod hardening;
mod import;
mod limits;
mod listing;
mod logs;
mod mail_flooding;
mod marc;
mod mfa;
mod openapi;
mod outbox;
mod page_view;
mod platform;
mod readiness;
mod revocation;
mod rules;
mod sessions;
mod shutdown;
mod sip2;
mod test_mode;
mod users;
mod web;
