//! Character encodings a SIP2 connection may use.
//!
//! SIP2 2.00 does not name a character set; self-check machines in the field speak
//! UTF-8, the DOS code page 850 or ISO-8859-1. The encoding is chosen per connection.
//! Decoding never fails (undecodable bytes become U+FFFD) and encoding never fails
//! (characters the encoding cannot represent become `?`).

use std::fmt;
use std::str::FromStr;

use oem_cp::code_table::{DECODING_TABLE_CP850, ENCODING_TABLE_CP850};

/// A connection's character encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// UTF-8 (the default).
    #[default]
    Utf8,
    /// IBM code page 850 (DOS Latin-1).
    Cp850,
    /// ISO-8859-1.
    Latin1,
}

/// The byte written for a character the encoding cannot represent.
const REPLACEMENT_BYTE: u8 = b'?';

impl Encoding {
    /// The name used in configuration (`utf-8`, `cp850`, `latin1`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Cp850 => "cp850",
            Encoding::Latin1 => "latin1",
        }
    }

    /// Decodes bytes read from the wire. Invalid UTF-8 sequences become U+FFFD.
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
            Encoding::Cp850 => bytes
                .iter()
                .map(|&b| {
                    if b < 0x80 {
                        char::from(b)
                    } else {
                        DECODING_TABLE_CP850[usize::from(b - 0x80)]
                    }
                })
                .collect(),
        }
    }

    /// Encodes text for the wire; unrepresentable characters become `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        self.encode_into(text, &mut out);
        out
    }

    /// Encodes text for the wire, appending to `out`.
    pub fn encode_into(self, text: &str, out: &mut Vec<u8>) {
        match self {
            Encoding::Utf8 => out.extend_from_slice(text.as_bytes()),
            Encoding::Latin1 => out.extend(
                text.chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(REPLACEMENT_BYTE)),
            ),
            Encoding::Cp850 => out.extend(text.chars().map(|c| {
                if c.is_ascii() {
                    c as u8
                } else {
                    ENCODING_TABLE_CP850
                        .get(&c)
                        .copied()
                        .unwrap_or(REPLACEMENT_BYTE)
                }
            })),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An encoding name that is not `utf-8`, `cp850` or `latin1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SIP2 encoding {0:?} (expected utf-8, cp850 or latin1)")]
pub struct UnknownEncoding(pub String);

impl FromStr for Encoding {
    type Err = UnknownEncoding;

    /// Accepts the configuration names and their common spellings, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "cp850" | "ibm850" | "850" => Ok(Encoding::Cp850),
            "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" => Ok(Encoding::Latin1),
            _ => Err(UnknownEncoding(s.to_owned())),
        }
    }
}
