//! Authentication mechanics below the front doors: who the caller is
//! ([`principal::Principal`]), session cookies, token issuance and the password
//! hasher's calibration. The HTTP extractors are `http::principal`; the hasher
//! itself is `crate::passwords`.

pub mod cookies;
pub mod passwords;
pub mod principal;
pub mod tokens;
