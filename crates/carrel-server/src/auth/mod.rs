//! Authentication mechanics: password hashing, the authenticated-caller
//! extractors (bearer or cookie + CSRF), cookies and token issuance.

pub mod cookies;
pub mod passwords;
pub mod principal;
pub mod tokens;
