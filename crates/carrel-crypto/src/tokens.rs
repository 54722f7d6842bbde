//! Opaque bearer tokens, their stored hashes, and recovery codes.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::fsutil::{self, hex};

/// A freshly generated bearer token (refresh, e-mail verification, password reset, invitation,
/// MFA login): 32 random bytes as base64url without padding (43 characters).
///
/// Give [`as_str`](Self::as_str) to the client and store only [`hash`](Self::hash).
/// `Debug` is redacted; the text is wiped on drop.
pub struct OpaqueToken {
    text: Zeroizing<String>,
}

impl OpaqueToken {
    /// 256 bits from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fsutil::fill_random(&mut bytes[..]);
        Self {
            text: Zeroizing::new(URL_SAFE_NO_PAD.encode(&bytes[..])),
        }
    }

    /// The token text to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// What the database stores: `TokenHash::of(self.as_str())`.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.as_str())
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([redacted])")
    }
}

/// SHA-256 of a token's text: what the database stores and looks tokens up by. (The tokens
/// carry 256 bits of entropy, so a fast unsalted hash is appropriate.) `Debug` prints a short
/// hex prefix only.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hash of a presented token's text (exactly as presented; no normalisation).
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", hex(&self.0[..4]))
    }
}

/// Recovery-code alphabet: lowercase letters and digits without the look-alikes 0/o, 1/l/i.
/// 31 symbols, ≈4.95 bits each.
const RECOVERY_ALPHABET: &[u8; 31] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// Characters per group and groups per code: `xxxx-xxxx-xxxx`.
const RECOVERY_GROUP_LEN: usize = 4;
const RECOVERY_GROUPS: usize = 3;

/// Generates `n` distinct recovery codes formatted `xxxx-xxxx-xxxx` from the alphabet
/// `23456789abcdefghjkmnpqrstuvwxyz` (no 0/o/1/l/i), each character uniform (rejection
/// sampling from the OS CSPRNG).
///
/// Entropy: 12 characters from 31 symbols is 12·log2(31) ≈ 59.45 bits per code. (Exactly
/// 60 bits is not reachable with this alphabet and format; see the crate report.)
///
/// Store `key.mac("recovery", normalize_recovery_code(code).as_bytes())`, never the code.
pub fn generate_recovery_codes(n: usize) -> Vec<String> {
    let mut seen = HashSet::with_capacity(n);
    let mut codes = Vec::with_capacity(n);
    let mut rng = ByteSource::new();
    while codes.len() < n {
        let code = recovery_code(&mut rng);
        // A duplicate within a batch (≈2^-59 per pair) is simply redrawn.
        if seen.insert(code.clone()) {
            codes.push(code);
        }
    }
    codes
}

fn recovery_code(rng: &mut ByteSource) -> String {
    let len = RECOVERY_GROUPS * (RECOVERY_GROUP_LEN + 1) - 1;
    let mut code = String::with_capacity(len);
    for group in 0..RECOVERY_GROUPS {
        if group > 0 {
            code.push('-');
        }
        for _ in 0..RECOVERY_GROUP_LEN {
            code.push(char::from(random_symbol(rng)));
        }
    }
    code
}

/// A uniform symbol of [`RECOVERY_ALPHABET`]: bytes ≥ 248 (= 8·31) are rejected so that
/// `b % 31` has no modulo bias.
fn random_symbol(rng: &mut ByteSource) -> u8 {
    const N: u8 = RECOVERY_ALPHABET.len() as u8;
    const LIMIT: u8 = N * (u8::MAX / N);
    loop {
        let b = rng.next();
        if b < LIMIT {
            return RECOVERY_ALPHABET[usize::from(b % N)];
        }
    }
}

/// Buffered CSPRNG bytes (fewer system calls when generating a batch of codes).
struct ByteSource {
    buf: Zeroizing<[u8; 64]>,
    pos: usize,
}

impl ByteSource {
    fn new() -> Self {
        Self {
            buf: Zeroizing::new([0u8; 64]),
            pos: 64,
        }
    }

    fn next(&mut self) -> u8 {
        if self.pos >= self.buf.len() {
            fsutil::fill_random(&mut self.buf[..]);
            self.pos = 0;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        b
    }
}

/// Normalises a typed recovery code before hashing it with `key.mac("recovery", ..)`: trims,
/// lowercases, and drops whitespace and hyphens anywhere (so `ABCD EFGH-jkmn` and
/// `abcd-efgh-jkmn` both become `abcdefghjkmn`). The generated codes' hyphens are dropped too,
/// so hash the normalised form when storing as well.
pub fn normalize_recovery_code(input: &str) -> String {
    input
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}
