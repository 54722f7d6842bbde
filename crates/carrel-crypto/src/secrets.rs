//! The server secrets key: HMAC and at-rest encryption under purpose-bound subkeys.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::KeyError;
use crate::fsutil::{self, Published};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Standard alphabet, padding optional (both `...=` and `...` accepted).
const STANDARD_PAD_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// 32 random bytes: keys the CSRF HMAC, hashes recovery codes and encrypts TOTP secrets at
/// rest. `Debug` prints `SecretsKey([redacted])`. Zeroized on drop.
///
/// Every use goes through a subkey derived for a named purpose, so the same key never serves
/// two purposes:
/// * [`mac`](Self::mac): `HMAC-SHA256(HMAC-SHA256(key, "carrel/mac/" + purpose), data)`
/// * [`seal`](Self::seal): XChaCha20-Poly1305 under `HMAC-SHA256(key, "carrel/seal/" + purpose)`
///
/// These derivations are a stored format (recovery-code hashes, sealed TOTP secrets): do not
/// change them.
#[derive(Clone)]
pub struct SecretsKey {
    bytes: [u8; KEY_LEN],
}

impl SecretsKey {
    /// Reads a file holding base64 (standard alphabet, padding optional, surrounding whitespace
    /// ignored) of exactly 32 bytes.
    ///
    /// If the file is missing and `generate_if_missing` is true, creates it (and its parent
    /// directories) holding 32 fresh random bytes, mode 0600 on unix, written atomically
    /// (temporary file + link/rename), and returns that key. If another process creates the
    /// file at the same moment, its key wins and is returned. If the file is missing and
    /// `generate_if_missing` is false: [`KeyError::Io`] with kind `NotFound`.
    ///
    /// A file with the wrong length or encoding: [`KeyError::Invalid`] naming the path, never
    /// the content.
    pub fn load_or_generate(path: &Path, generate_if_missing: bool) -> Result<Self, KeyError> {
        match fsutil::read_key_file(path) {
            Ok(content) => Self::parse_file(path, &content),
            Err(e) if generate_if_missing && fsutil::is_not_found(&e) => {
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                fsutil::try_fill_random(&mut bytes[..])?;
                let mut encoded = Zeroizing::new(STANDARD.encode(&bytes[..]));
                encoded.push('\n');
                match fsutil::write_new_key_file(path, encoded.as_bytes())? {
                    Published::Created => Ok(Self::from_bytes(*bytes)),
                    Published::AlreadyExisted => {
                        let content = fsutil::read_key_file(path)?;
                        Self::parse_file(path, &content)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    fn parse_file(path: &Path, content: &[u8]) -> Result<Self, KeyError> {
        let expected = "expected base64 (standard alphabet) of exactly 32 bytes";
        let text = content.trim_ascii();
        // The decode error is dropped unread: base64's messages quote the offending byte.
        let decoded = Zeroizing::new(
            STANDARD_PAD_OPTIONAL
                .decode(text)
                .map_err(|_| KeyError::invalid(path, expected))?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::invalid(path, expected))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Wraps existing key bytes (the caller's copy is not wiped).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// HMAC-SHA256 of `data` under the subkey for `purpose`
    /// (`HMAC(HMAC(key, "carrel/mac/" + purpose), data)`).
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let subkey = self.subkey("mac", purpose);
        hmac_sha256(&subkey, &[data])
    }

    /// Authenticated encryption: XChaCha20-Poly1305 under the subkey for `purpose`
    /// (`HMAC(key, "carrel/seal/" + purpose)`), with `aad` as associated data binding the
    /// ciphertext to its owner (e.g. the user id). Output: 24-byte random nonce, then the
    /// ciphertext and 16-byte tag (`plaintext.len() + 40` bytes).
    ///
    /// The only failure XChaCha20-Poly1305 has is a plaintext beyond its ~256 GiB limit; that
    /// yields an empty vector, which [`open`](Self::open) rejects (fails closed).
    pub fn seal(&self, purpose: &str, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = self.cipher(purpose);
        let mut nonce = [0u8; NONCE_LEN];
        fsutil::fill_random(&mut nonce);
        let Ok(ciphertext) = cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        ) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Reverses [`seal`](Self::seal). Any mismatch (other key, other `purpose`, other `aad`,
    /// modified or truncated data) is [`KeyError::Crypto`]; nothing is returned unauthenticated.
    pub fn open(&self, purpose: &str, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(KeyError::Crypto("sealed data is too short".to_owned()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| KeyError::Crypto("sealed data is too short".to_owned()))?;
        self.cipher(purpose)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                KeyError::Crypto(
                    "cannot open sealed data: wrong key, purpose or associated data, or the data was modified"
                        .to_owned(),
                )
            })
    }

    fn cipher(&self, purpose: &str) -> XChaCha20Poly1305 {
        let subkey = self.subkey("seal", purpose);
        // Borrowed as an array reference: no unwiped copy of the subkey.
        let key: &chacha20poly1305::Key = (&*subkey).into();
        XChaCha20Poly1305::new(key)
    }

    fn subkey(&self, kind: &str, purpose: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac_sha256(
            &self.bytes,
            &[b"carrel/", kind.as_bytes(), b"/", purpose.as_bytes()],
        ))
    }
}

impl Drop for SecretsKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey([redacted])")
    }
}

/// HMAC-SHA256 with a 32-byte key over the concatenation of `parts`.
///
/// HMAC zero-pads keys shorter than the hash block (RFC 2104 §2), so padding the 32-byte key
/// to SHA-256's 64-byte block here gives the standard result while using the infallible
/// `KeyInit::new` (a unit test checks equality with `new_from_slice`).
pub(crate) fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    let block_key: &hmac::digest::Key<Hmac<Sha256>> = (&*block).into();
    let mut mac = <Hmac<Sha256> as KeyInit>::new(block_key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn padded_key_hmac_matches_standard_hmac() {
        for seed in [0u8, 1, 0x5a, 0xff] {
            let key: [u8; 32] = std::array::from_fn(|i| seed.wrapping_add(i as u8));
            let mut reference = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
            reference.update(b"hello world");
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(hmac_sha256(&key, &[b"hello", b" ", b"world"]), expected);
        }
    }
}
