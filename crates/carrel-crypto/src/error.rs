use std::path::PathBuf;

/// Errors loading, generating or using key material.
///
/// Messages name the file involved but never contain key material or file content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, creating or writing a key file failed (includes a missing file when
    /// generation is not allowed: `source.kind() == NotFound`).
    #[error("key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key file exists but its content is not a valid key. The message names the path
    /// and what was expected, never the content.
    #[error("invalid key: {0}")]
    Invalid(String),
    /// A cryptographic operation failed (decryption/authentication failure, the OS random
    /// number generator being unavailable, encoding failure).
    #[error("crypto error: {0}")]
    Crypto(String),
}

impl KeyError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        KeyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn invalid(path: &std::path::Path, what: &str) -> Self {
        KeyError::Invalid(format!("{}: {what}", path.display()))
    }
}

/// Why an access token was refused by [`crate::JwtKeys::verify`].
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TokenError {
    /// Not a well-formed compact JWS, or its header/claims are not the expected JSON.
    #[error("malformed token")]
    Malformed,
    /// The header has no `kid`, or names a key this server does not know.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify under the key named by `kid`.
    #[error("bad token signature")]
    BadSignature,
    /// The header `alg` is anything other than exactly `EdDSA`.
    #[error("token uses a refused algorithm")]
    WrongAlgorithm,
    /// `exp <= now`.
    #[error("token expired")]
    Expired,
    /// `iss` differs from the configured issuer.
    #[error("token has the wrong issuer")]
    WrongIssuer,
    /// `aud` differs from the configured audience.
    #[error("token has the wrong audience")]
    WrongAudience,
    /// `iat` is more than 60 seconds in the future.
    #[error("token issued in the future")]
    NotYetValid,
}
