//! Ed25519 (EdDSA) access tokens, key files, rotation and the JWKS document.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::error::{KeyError, TokenError};
use crate::fsutil::{self, Published};

/// The `scope` value of a token that may only reach MFA enrolment.
pub const SCOPE_MFA_SETUP: &str = "mfa_setup";

/// Tokens longer than this are refused as [`TokenError::Malformed`] before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// How far in the future `iat` may be (clock skew between replicas) before
/// [`TokenError::NotYetValid`].
const MAX_IAT_SKEW_SECS: i64 = 60;

/// How many verified tokens [`JwtKeys::verify`] remembers (~200 bytes each).
const VERIFIED_CAPACITY: usize = 8192;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: uuid::Uuid,
    /// Session id.
    pub sid: uuid::Uuid,
    pub role: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds); the token is refused from `exp` on.
    pub exp: i64,
    /// Filled from the keys' configuration by [`JwtKeys::sign`] when empty.
    pub iss: String,
    /// Filled from the keys' configuration by [`JwtKeys::sign`] when empty.
    pub aud: String,
    /// Present and `"mfa_setup"` ([`SCOPE_MFA_SETUP`]) when the token may only reach MFA
    /// enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// One key tokens may be verified with.
#[derive(Clone)]
struct VerificationKey {
    /// RFC 7638 thumbprint.
    kid: String,
    /// base64url of the raw 32-byte public key (JWK `x`).
    x: String,
    decoding: DecodingKey,
}

impl VerificationKey {
    fn new(key: &VerifyingKey) -> Self {
        let raw = key.to_bytes();
        let x = URL_SAFE_NO_PAD.encode(raw);
        Self {
            kid: jwk_thumbprint(&x),
            x,
            // jsonwebtoken's EdDSA verifier reads the raw 32-byte public key from this
            // (despite the name, `from_ed_der` stores the bytes as given; it is what
            // `from_ed_components` produces after base64-decoding `x`).
            decoding: DecodingKey::from_ed_der(&raw),
        }
    }
}

/// The access-token signing key plus the verification-only keys of earlier rotations.
///
/// `Debug` shows kids, issuer and audience only, never key material.
#[derive(Clone)]
pub struct JwtKeys {
    /// PKCS#8 DER of the signing key (wiped on drop by jsonwebtoken).
    encoding: EncodingKey,
    /// The signing key's public half.
    current: VerificationKey,
    /// Verification-only keys of earlier rotations (deduplicated, never the current key).
    previous: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    /// Shared by clones, which have the same keys.
    verified: Arc<VerifiedTokens>,
}

/// The claims of tokens that passed every check but the clock ones, by the
/// SHA-256 of the whole compact token. An Ed25519 verification (~50 µs) is the
/// biggest CPU cost of an authenticated request, and a client presents the same
/// token for its whole lifetime. Only fully verified tokens enter (nothing an
/// attacker can forge), the keys never change for a given [`JwtKeys`], and the
/// expiry and `iat` checks run again on every hit. Revocation is unaffected: it
/// is the caller's session check.
#[derive(Default)]
struct VerifiedTokens(Mutex<HashMap<[u8; 32], AccessClaims>>);

impl VerifiedTokens {
    fn get(&self, digest: &[u8; 32]) -> Option<AccessClaims> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(digest).cloned()
    }

    fn insert(&self, digest: [u8; 32], claims: AccessClaims, now_unix: i64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= VERIFIED_CAPACITY {
            // Bounded: drop the expired ones, or everything if that is not enough.
            map.retain(|_, c| c.exp > now_unix);
            if map.len() >= VERIFIED_CAPACITY {
                map.clear();
            }
        }
        map.insert(digest, claims);
    }
}

impl JwtKeys {
    /// Loads the Ed25519 private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`) at
    /// `private_key_path`.
    ///
    /// When the file is missing and `generate_if_missing` is true, a fresh key is written there
    /// (parent directories created, mode 0600 on unix, atomically via a temporary file; if
    /// another process creates it at the same moment its key wins and is loaded). When missing
    /// and not allowed to generate: [`KeyError::Io`] with kind `NotFound`.
    ///
    /// `previous_key_paths` are VERIFICATION-only keys (retired signing keys), each a PKCS#8
    /// private-key PEM or an SPKI public-key PEM (`-----BEGIN PUBLIC KEY-----`); tokens they
    /// signed keep verifying until they expire. Each must exist. A previous key equal to the
    /// signing key is ignored.
    ///
    /// Errors name the file, never its content.
    pub fn load_or_generate(
        private_key_path: &Path,
        generate_if_missing: bool,
        previous_key_paths: &[PathBuf],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, KeyError> {
        let signing = match fsutil::read_key_file(private_key_path) {
            Ok(content) => parse_private_key(private_key_path, &content)?,
            Err(e) if generate_if_missing && fsutil::is_not_found(&e) => {
                generate_key_file(private_key_path)?
            }
            Err(e) => return Err(e),
        };
        let previous = previous_key_paths
            .iter()
            .map(|path| {
                let content = fsutil::read_key_file(path)?;
                parse_verification_key(path, &content)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_keys(&signing, &previous, issuer, audience))
    }

    /// For tests: a fresh in-memory key (nothing written to disk).
    pub fn generate(issuer: &str, audience: &str) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        fsutil::fill_random(&mut seed[..]);
        Self::from_keys(&SigningKey::from_bytes(&seed), &[], issuer, audience)
    }

    fn from_keys(
        signing: &SigningKey,
        previous: &[VerifyingKey],
        issuer: &str,
        audience: &str,
    ) -> Self {
        install_crypto_provider();
        let der = pkcs8_der_from_seed(signing.as_bytes());
        let current = VerificationKey::new(&signing.verifying_key());
        let mut previous_keys: Vec<VerificationKey> = Vec::with_capacity(previous.len());
        for key in previous {
            let key = VerificationKey::new(key);
            if key.kid != current.kid && !previous_keys.iter().any(|k| k.kid == key.kid) {
                previous_keys.push(key);
            }
        }
        Self {
            encoding: EncodingKey::from_ed_der(&der),
            current,
            previous: previous_keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            verified: Arc::default(),
        }
    }

    /// The signing key's `kid`: its RFC 7638 JWK thumbprint (base64url of the SHA-256 of
    /// `{"crv":"Ed25519","kty":"OKP","x":"…"}`).
    pub fn kid(&self) -> &str {
        &self.current.kid
    }

    /// The configured issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured audience (`aud`).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The signing key, then the verification-only keys.
    fn all_keys(&self) -> impl Iterator<Item = &VerificationKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Signs with EdDSA; the header carries `kid` and `typ: "JWT"`. Empty `iss`/`aud` in
    /// `claims` are filled from the configuration; non-empty ones are kept as given.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let mut claims = claims.clone();
        if claims.iss.is_empty() {
            claims.iss.clone_from(&self.issuer);
        }
        if claims.aud.is_empty() {
            claims.aud.clone_from(&self.audience);
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| KeyError::Crypto(format!("signing access token: {e}")))
    }

    /// Verifies an access token, in this order:
    ///
    /// 1. compact form (three base64url parts, at most 8 KiB), header a JSON object → else
    ///    `Malformed`;
    /// 2. header `alg` exactly `"EdDSA"` (`none`, `HS256`, `RS256`, …) → else `WrongAlgorithm`;
    ///    a `crit` header (no extensions are understood) → `Malformed`;
    /// 3. `kid` names the signing key or a previous key → else `UnknownKey`;
    /// 4. Ed25519 signature → else `BadSignature`; claims JSON → else `Malformed`;
    /// 5. `iss` and `aud` exactly equal to the configuration → else `WrongIssuer` /
    ///    `WrongAudience`;
    /// 6. `exp <= now_unix` → `Expired` (no leeway);
    /// 7. `iat > now_unix + 60` → `NotYetValid`.
    ///
    /// Time is only ever taken from `now_unix` (jsonwebtoken's own clock checks are off).
    ///
    /// A token that passed steps 1–5 before is remembered (by its SHA-256) and only
    /// steps 6 and 7 run again.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = match self.verified.get(&digest) {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signed(token)?;
                self.verified.insert(digest, claims.clone(), now_unix);
                claims
            }
        };
        if claims.exp <= now_unix {
            return Err(TokenError::Expired);
        }
        if claims.iat > now_unix.saturating_add(MAX_IAT_SKEW_SECS) {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }

    /// Steps 1–5 of [`JwtKeys::verify`]: everything that does not depend on the clock.
    fn verify_signed(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        // Structure before semantics: every part must be base64url (no padding), so that a
        // garbled token is `Malformed` whatever its header says.
        if URL_SAFE_NO_PAD.decode(payload_b64).is_err()
            || URL_SAFE_NO_PAD.decode(signature_b64).is_err()
        {
            return Err(TokenError::Malformed);
        }
        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| TokenError::Malformed)?;
        let header: RawHeader =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        if header.alg.as_deref() != Some("EdDSA") {
            return Err(TokenError::WrongAlgorithm);
        }
        if header.crit.is_some() {
            return Err(TokenError::Malformed);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.all_keys().find(|k| k.kid == kid))
            .ok_or(TokenError::UnknownKey)?;

        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &signature_only())
            .map_err(map_jwt_error)?;
        let claims = data.claims;

        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }

    /// The JWKS document: `{"keys": [{"kty":"OKP","crv":"Ed25519","x","kid","alg":"EdDSA",
    /// "use":"sig"}, …]}`, the signing key first, then every verification-only key.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .all_keys()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": k.x,
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("JwtKeys")
            .field("kid", &self.kid())
            .field("previous_kids", &previous)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The header fields `verify` decides on before any cryptography. Duplicate fields make the
/// JSON invalid (serde), so this and jsonwebtoken cannot read different `alg`s.
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// jsonwebtoken validation reduced to the algorithm and signature: no required claims, no
/// clock-based checks (they would read the system clock), no iss/aud (checked by `verify`).
fn signature_only() -> Validation {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation
}

fn map_jwt_error(err: jsonwebtoken::errors::Error) -> TokenError {
    match err.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => TokenError::WrongAlgorithm,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        _ => TokenError::Malformed,
    }
}

/// Selects jsonwebtoken's RustCrypto provider explicitly, so signing keeps working even if
/// feature unification elsewhere in the build also enables `aws_lc_rs` (with both backends on
/// and none installed, jsonwebtoken panics on first use). A no-op once any provider is set.
fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

/// RFC 7638 thumbprint of an Ed25519 JWK (members in lexicographic order, no whitespace).
fn jwk_thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// PKCS#8 v1 `OneAsymmetricKey` DER of an Ed25519 seed (RFC 8410 §7): a fixed 16-byte prefix
/// then the 32-byte seed. Built by hand so the infallible constructors need no error path.
fn pkcs8_der_from_seed(seed: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = Zeroizing::new(Vec::with_capacity(PREFIX.len() + seed.len()));
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(seed);
    der
}

fn generate_key_file(path: &Path) -> Result<SigningKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    fsutil::try_fill_random(&mut seed[..])?;
    let key = SigningKey::from_bytes(&seed);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| KeyError::Crypto("encoding the new Ed25519 key as PKCS#8 PEM".to_owned()))?;
    match fsutil::write_new_key_file(path, pem.as_bytes())? {
        Published::Created => Ok(key),
        Published::AlreadyExisted => {
            let content = fsutil::read_key_file(path)?;
            parse_private_key(path, &content)
        }
    }
}

const EXPECT_PRIVATE: &str = "expected an Ed25519 private key in PKCS#8 PEM (BEGIN PRIVATE KEY)";
const EXPECT_ANY: &str = "expected an Ed25519 private key in PKCS#8 PEM (BEGIN PRIVATE KEY) \
                          or public key in SPKI PEM (BEGIN PUBLIC KEY)";

fn pem_text<'a>(path: &Path, content: &'a [u8], what: &str) -> Result<&'a str, KeyError> {
    std::str::from_utf8(content.trim_ascii()).map_err(|_| KeyError::invalid(path, what))
}

fn parse_private_key(path: &Path, content: &[u8]) -> Result<SigningKey, KeyError> {
    let text = pem_text(path, content, EXPECT_PRIVATE)?;
    // Parser errors are dropped: only the path and the expected format are reported.
    SigningKey::from_pkcs8_pem(text).map_err(|_| KeyError::invalid(path, EXPECT_PRIVATE))
}

fn parse_verification_key(path: &Path, content: &[u8]) -> Result<VerifyingKey, KeyError> {
    let text = pem_text(path, content, EXPECT_ANY)?;
    if let Ok(private) = SigningKey::from_pkcs8_pem(text) {
        return Ok(private.verifying_key());
    }
    VerifyingKey::from_public_key_pem(text).map_err(|_| KeyError::invalid(path, EXPECT_ANY))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn hand_built_pkcs8_is_the_same_key() {
        for seed in [[0u8; 32], [0xa5; 32], std::array::from_fn(|i| i as u8)] {
            let der = pkcs8_der_from_seed(&seed);
            // What jsonwebtoken's signer does with it.
            let parsed = SigningKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(parsed.to_bytes(), seed);
            // ed25519-dalek's encoder writes PKCS#8 v2 (with the public key); ours is v1 with
            // the same algorithm identifier and seed.
            let reference = SigningKey::from_bytes(&seed).to_pkcs8_der().unwrap();
            assert_eq!(der[5..], reference.as_bytes()[5..48]);
        }
    }

    #[test]
    fn remembered_tokens_still_expire_and_forgeries_are_never_remembered() {
        let keys = JwtKeys::generate("https://issuer.example", "carrel-api");
        let now = 1_700_000_000;
        let claims = AccessClaims {
            sub: uuid::Uuid::nil(),
            sid: uuid::Uuid::nil(),
            role: "patron".into(),
            iat: now,
            exp: now + 60,
            iss: String::new(),
            aud: String::new(),
            scope: None,
        };
        let token = keys.sign(&claims).unwrap();
        let first = keys.verify(&token, now).unwrap();
        assert_eq!(keys.verify(&token, now + 59).unwrap(), first);
        assert_eq!(keys.verify(&token, now + 60), Err(TokenError::Expired));
        // A clone shares what was verified; another key set does not.
        assert_eq!(keys.clone().verify(&token, now + 1).unwrap(), first);
        let other = JwtKeys::generate("https://issuer.example", "carrel-api");
        assert_eq!(other.verify(&token, now), Err(TokenError::UnknownKey));

        // The same payload with a broken signature stays refused after the real one verified.
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{signed}.{flipped}{}", &signature[1..]);
        for _ in 0..2 {
            assert!(keys.verify(&forged, now).is_err());
        }
        assert_eq!(keys.verified.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn signature_only_validation_never_reads_the_clock() {
        let v = signature_only();
        assert!(!v.validate_exp && !v.validate_nbf && !v.validate_aud);
        assert!(v.required_spec_claims.is_empty());
        assert_eq!(v.algorithms, vec![Algorithm::EdDSA]);
    }
}
