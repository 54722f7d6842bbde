//! Carrel key material and token primitives.
//!
//! * [`SecretsKey`]: the 32-byte server secret that keys the CSRF HMAC, hashes recovery codes
//!   and encrypts TOTP secrets at rest ([`SecretsKey::mac`], [`SecretsKey::seal`]).
//! * CSRF tokens bound to a session ([`csrf_token`], [`verify_csrf_token`]).
//! * Opaque bearer tokens stored as SHA-256 hashes ([`OpaqueToken`], [`TokenHash`]) and
//!   recovery codes ([`generate_recovery_codes`]).
//! * Ed25519 (EdDSA) access JWTs with key rotation and a JWKS document ([`JwtKeys`]).
//!
//! Stable formats: the subkey derivation of [`SecretsKey`], the sealed layout and the CSRF
//! token encoding are persisted (recovery-code hashes, sealed TOTP secrets) or sent to clients;
//! changing them invalidates stored data. Known-answer tests pin them.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod csrf;
mod error;
mod fsutil;
mod jwt;
mod secrets;
mod tokens;

pub use csrf::{constant_time_eq, csrf_token, verify_csrf_token};
pub use error::{KeyError, TokenError};
pub use jwt::{AccessClaims, JwtKeys, SCOPE_MFA_SETUP};
pub use secrets::SecretsKey;
pub use tokens::{OpaqueToken, TokenHash, generate_recovery_codes, normalize_recovery_code};
