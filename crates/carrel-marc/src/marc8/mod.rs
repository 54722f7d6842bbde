//! MARC-8 → UTF-8.
//!
//! MARC-8 is an ISO 2022 style encoding: a G0 set (bytes 0x21–0x7E) and a G1 set
//! (bytes 0xA1–0xFE) are designated by escape sequences; Basic Latin (ASCII) and
//! ANSEL (extended Latin) are in force at the start of every field. Combining
//! diacritics come *before* their base letter in MARC-8 and *after* it in Unicode,
//! so they are held back until the next spacing character. The result is NFC.
//!
//! The code tables are the Library of Congress ones (see `tools/gen_marc8_table.py`).

mod table;

use unicode_normalization::UnicodeNormalization;

/// Why MARC-8 data could not be decoded strictly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Marc8Error {
    /// An escape sequence this decoder does not know.
    #[error("unknown MARC-8 escape sequence at byte {0}")]
    Escape(usize),
    /// A byte (or EACC triple) with no character in the designated set.
    #[error("byte {offset} (0x{value:X}) has no character in MARC-8 set '{set}'")]
    Unmapped {
        /// Offset of the byte in the input.
        offset: usize,
        /// The byte, or the three EACC bytes as a number.
        value: u32,
        /// The final character of the designated set.
        set: char,
    },
    /// A multibyte (EACC) character cut short.
    #[error("truncated EACC character at byte {0}")]
    Truncated(usize),
}

const BASIC_LATIN: u8 = 0x42;
const ANSEL: u8 = 0x45;
const EACC: u8 = 0x31;
/// Sets that the technique-1 escapes (`ESC g`, `ESC b`, `ESC p`) put in G0.
const GREEK_SYMBOLS: u8 = 0x67;
const SUBSCRIPTS: u8 = 0x62;
const SUPERSCRIPTS: u8 = 0x70;
/// One-byte sets a designation escape may name.
const ONE_BYTE_SETS: [u8; 8] = [0x42, 0x45, 0x32, 0x33, 0x34, 0x4E, 0x51, 0x53];
const ESC: u8 = 0x1B;

/// Decoder state carried across the subfields of one field.
#[derive(Debug, Clone)]
pub struct Marc8Decoder {
    g0: u8,
    g1: u8,
    strict: bool,
    error: Option<Marc8Error>,
}

impl Marc8Decoder {
    /// A decoder with the default sets (Basic Latin in G0, ANSEL in G1). `strict`
    /// makes the first problem an error; otherwise problems become U+FFFD.
    pub fn new(strict: bool) -> Self {
        Marc8Decoder {
            g0: BASIC_LATIN,
            g1: ANSEL,
            strict,
            error: None,
        }
    }

    /// Back to the default sets (done at the start of each field).
    pub fn reset(&mut self) {
        self.g0 = BASIC_LATIN;
        self.g1 = ANSEL;
    }

    /// The first problem met in strict mode, if any (cleared by this call).
    pub fn take_error(&mut self) -> Option<Marc8Error> {
        self.error.take()
    }

    fn problem(&mut self, error: Marc8Error, out: &mut String) {
        if self.strict {
            if self.error.is_none() {
                self.error = Some(error);
            }
        } else {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }

    /// Decodes `input` (one subfield's bytes), keeping the set designations for the
    /// next call, and returns NFC text. In strict mode check [`Self::take_error`].
    pub fn decode(&mut self, input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len());
        // Combining marks waiting for their base character.
        let mut pending: Vec<char> = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            if b == ESC {
                match self.escape(&input[i + 1..]) {
                    Some(len) => i += 1 + len,
                    None => {
                        self.problem(Marc8Error::Escape(i), &mut out);
                        i += 1;
                    }
                }
                continue;
            }
            if self.g0 == EACC
                && (0x21..=0x7F).contains(&b)
                && let Some(triple) = input.get(i..i + 3)
            {
                // Besides the LC table, some vendors' EACC triples contain 0x20 or 0x7F.
                let key = (u32::from(triple[0]) << 16)
                    | (u32::from(triple[1]) << 8)
                    | u32::from(triple[2]);
                if let Some(cp) = lookup_eacc(key) {
                    emit(cp, false, &mut out, &mut pending);
                    i += 3;
                    continue;
                }
            }
            if b < 0x20 {
                // C0 controls other than ESC pass through (they are rare and harmless).
                emit(b as u32, false, &mut out, &mut pending);
                i += 1;
                continue;
            }
            if b == 0x20 {
                emit(0x20, false, &mut out, &mut pending);
                i += 1;
                continue;
            }
            if (0x80..=0xA0).contains(&b) || b == 0x7F || b == 0xFF {
                // C1 controls MARC-8 defines: non-sort markers and (non-)joiners.
                match lookup_single(ANSEL, b) {
                    Some((cp, combining)) if b < 0xA0 => {
                        emit(cp, combining, &mut out, &mut pending);
                    }
                    _ => self.problem(
                        Marc8Error::Unmapped {
                            offset: i,
                            value: b.into(),
                            set: char::from(self.g1),
                        },
                        &mut out,
                    ),
                }
                i += 1;
                continue;
            }
            let set = if b < 0x80 { self.g0 } else { self.g1 };
            if set == EACC {
                let Some(triple) = input.get(i..i + 3) else {
                    self.problem(Marc8Error::Truncated(i), &mut out);
                    break;
                };
                let high = b & 0x80;
                if triple
                    .iter()
                    .any(|c| c & 0x80 != high || !(0x21..=0x7E).contains(&(c & 0x7F)))
                {
                    self.problem(Marc8Error::Truncated(i), &mut out);
                    i += 1;
                    continue;
                }
                let key = (u32::from(triple[0] & 0x7F) << 16)
                    | (u32::from(triple[1] & 0x7F) << 8)
                    | u32::from(triple[2] & 0x7F);
                match lookup_eacc(key) {
                    Some(cp) => emit(cp, false, &mut out, &mut pending),
                    None => self.problem(
                        Marc8Error::Unmapped {
                            offset: i,
                            value: key,
                            set: '1',
                        },
                        &mut out,
                    ),
                }
                i += 3;
                continue;
            }
            match lookup_single(set, b) {
                Some((cp, combining)) => emit(cp, combining, &mut out, &mut pending),
                None => self.problem(
                    Marc8Error::Unmapped {
                        offset: i,
                        value: b.into(),
                        set: char::from(set),
                    },
                    &mut out,
                ),
            }
            i += 1;
        }
        // Marks with no base character left: keep them rather than lose them.
        out.extend(pending);
        if out.is_ascii() {
            out
        } else {
            out.nfc().collect()
        }
    }

    /// Applies the escape sequence starting after ESC; returns its length (without
    /// ESC), or `None` when it is not one MARC-8 defines.
    fn escape(&mut self, rest: &[u8]) -> Option<usize> {
        let first = *rest.first()?;
        match first {
            // Technique 1: ESC g / ESC b / ESC p put a special set in G0; ESC s restores ASCII.
            b'g' => self.g0 = GREEK_SYMBOLS,
            b'b' => self.g0 = SUBSCRIPTS,
            b'p' => self.g0 = SUPERSCRIPTS,
            b's' => self.g0 = BASIC_LATIN,
            // One-byte sets: ESC ( F or ESC , F into G0, ESC ) F or ESC - F into G1;
            // ANSEL's final character is preceded by '!'.
            b'(' | b',' | b')' | b'-' => {
                let (final_byte, len) = match rest.get(1)? {
                    b'!' => (*rest.get(2)?, 3),
                    other => (*other, 2),
                };
                if !ONE_BYTE_SETS.contains(&final_byte) {
                    return None;
                }
                if matches!(first, b'(' | b',') {
                    self.g0 = final_byte;
                } else {
                    self.g1 = final_byte;
                }
                return Some(len);
            }
            // Multibyte (EACC): ESC $ 1 or ESC $ , 1 into G0; ESC $ ) 1 or ESC $ - 1 into G1.
            b'$' => {
                let (target, final_byte, len) = match rest.get(1)? {
                    b',' => (0, *rest.get(2)?, 3),
                    b')' | b'-' => (1, *rest.get(2)?, 3),
                    other => (0, *other, 2),
                };
                if final_byte != EACC {
                    return None;
                }
                if target == 0 {
                    self.g0 = EACC;
                } else {
                    self.g1 = EACC;
                }
                return Some(len);
            }
            _ => return None,
        }
        Some(1)
    }
}

/// Decodes one piece of MARC-8 text with the default sets, replacing anything
/// undecodable with U+FFFD. The result is NFC.
pub fn decode_marc8_lossy(input: &[u8]) -> String {
    Marc8Decoder::new(false).decode(input)
}

/// Decodes one piece of MARC-8 text with the default sets; the first problem is an error.
pub fn decode_marc8(input: &[u8]) -> Result<String, Marc8Error> {
    let mut decoder = Marc8Decoder::new(true);
    let text = decoder.decode(input);
    match decoder.take_error() {
        Some(e) => Err(e),
        None => Ok(text),
    }
}

fn emit(cp: u32, combining: bool, out: &mut String, pending: &mut Vec<char>) {
    let ch = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    if combining {
        pending.push(ch);
    } else {
        out.push(ch);
        out.extend(pending.drain(..));
    }
}

/// A one-byte set's character for `byte`; the tables list each set at its usual
/// half (G0 or G1), so the other half is tried too.
fn lookup_single(set: u8, byte: u8) -> Option<(u32, bool)> {
    let find = |b: u8| {
        table::SINGLE_BYTE
            .binary_search_by(|&(s, k, _, _)| (s, k).cmp(&(set, b)))
            .ok()
            .map(|i| (table::SINGLE_BYTE[i].2, table::SINGLE_BYTE[i].3))
    };
    find(byte).or_else(|| {
        if byte >= 0x21 {
            find(byte ^ 0x80)
        } else {
            None
        }
    })
}

fn lookup_eacc(key: u32) -> Option<u32> {
    table::EACC
        .binary_search_by_key(&key, |&(k, _)| k)
        .ok()
        .map(|i| table::EACC[i].1)
        .or_else(|| {
            table::EACC_ODD
                .binary_search_by_key(&key, |&(k, _)| k)
                .ok()
                .map(|i| table::EACC_ODD[i].1)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn combining_acute_moves_after_its_letter_and_composes() {
        // ANSEL 0xE2 is the combining acute; MARC-8 puts it before the 'e'.
        assert_eq!(decode_marc8(b"communaut\xe2e").unwrap(), "communauté");
        assert_eq!(decode_marc8(b"solitude \xe1a").unwrap(), "solitude à");
    }

    #[test]
    fn two_marks_keep_their_order() {
        // Macron (0xE5) then acute (0xE2) over 'a': a + U+0304 + U+0301 (no precomposed form with both).
        assert_eq!(
            decode_marc8(b"\xe5\xe2a").unwrap(),
            "\u{101}\u{301}" // NFC composes a+macron, then the acute follows
        );
    }

    #[test]
    fn subscripts_and_greek_by_technique_one() {
        assert_eq!(
            decode_marc8(b"CO\x1bb2\x1bs is a gas").unwrap(),
            "CO\u{2082} is a gas"
        );
        assert_eq!(decode_marc8(b"\x1bga\x1bs").unwrap(), "\u{3b1}");
    }

    #[test]
    fn cyrillic_and_back() {
        // ESC ( N: basic Cyrillic in G0; 0x41 is а (U+0430). ESC ( B back to ASCII.
        assert_eq!(decode_marc8(b"\x1b(NA\x1b(B a").unwrap(), "\u{430} a");
    }

    #[test]
    fn eacc_triplet() {
        // 0x213536 is U+53EC in the LC table.
        assert_eq!(decode_marc8(b"\x1b$1!56\x1b(B").unwrap(), "\u{53ec}");
    }

    #[test]
    fn unknown_escape_is_an_error_or_a_replacement() {
        assert_eq!(decode_marc8(b"a\x1bZb"), Err(Marc8Error::Escape(1)));
        assert_eq!(decode_marc8_lossy(b"a\x1bZb"), "a\u{fffd}Zb");
        assert!(decode_marc8(b"\x1b$1!5").is_err());
    }
}
