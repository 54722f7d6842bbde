//! CSRF tokens bound to a session, and constant-time comparison.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

use crate::secrets::SecretsKey;

/// The `purpose` under which CSRF tokens are MACed (see [`SecretsKey::mac`]).
const CSRF_PURPOSE: &str = "csrf";

/// The CSRF token of a session: base64url without padding (43 characters) of
/// `key.mac("csrf", session_id.as_bytes())`.
///
/// Deterministic for a session and bound to it: a token from another session does not verify.
pub fn csrf_token(key: &SecretsKey, session_id: uuid::Uuid) -> String {
    URL_SAFE_NO_PAD.encode(key.mac(CSRF_PURPOSE, session_id.as_bytes()))
}

/// Constant-time check of a presented token for `session_id`.
pub fn verify_csrf_token(key: &SecretsKey, session_id: uuid::Uuid, presented: &str) -> bool {
    let expected = csrf_token(key, session_id);
    constant_time_eq(expected.as_bytes(), presented.as_bytes())
}

/// Constant-time equality of two byte strings (for the cookie vs header double-submit
/// comparison). The time depends on the lengths, never on the content; strings of different
/// lengths are unequal.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
