//! ISO 2709 (`.mrc`) records: a streaming reader that survives broken records,
//! and a writer with exact lengths.
//!
//! Each record ends with the record terminator 0x1D, a byte that never occurs
//! inside a valid record (its directory is digits, its data UTF-8 or MARC-8 text).
//! The reader therefore takes the bytes up to the next 0x1D as one record and
//! checks them against the leader and directory; when they disagree the record
//! is reported and the next one starts after that terminator. Memory stays at
//! one record (at most 99,999 bytes) plus the read buffer.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::error::{ReadError, ReadErrorKind, WriteError};
use crate::marc8::Marc8Decoder;
use crate::record::{Field, Leader, Record, Subfield, Tag};

/// Record terminator.
pub const RECORD_TERMINATOR: u8 = 0x1D;
/// Field terminator.
pub const FIELD_TERMINATOR: u8 = 0x1E;
/// Subfield delimiter.
pub const SUBFIELD_DELIMITER: u8 = 0x1F;
/// The largest record ISO 2709 can describe (five-digit record length).
pub const MAX_RECORD_LEN: usize = 99_999;
const MAX_FIELD_LEN: usize = 9_999;

/// How readers treat text that is not valid in the record's encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderOptions {
    /// `false` (the default): replace undecodable bytes with U+FFFD and keep the
    /// record. `true`: report the record as broken.
    pub strict_encoding: bool,
}

/// Streams records from ISO 2709 bytes. Yields one `Result` a record; a broken
/// record is an `Err` and the iteration continues with the next one. Only an
/// I/O error ends it early.
#[derive(Debug)]
pub struct Iso2709Reader<R> {
    input: BufReader<R>,
    buf: Vec<u8>,
    options: ReaderOptions,
    index: u64,
    offset: u64,
    done: bool,
}

impl<R: Read> Iso2709Reader<R> {
    /// A reader with default options.
    pub fn new(input: R) -> Self {
        Self::with_options(input, ReaderOptions::default())
    }

    /// A reader with `options`.
    pub fn with_options(input: R, options: ReaderOptions) -> Self {
        Iso2709Reader {
            input: BufReader::with_capacity(64 * 1024, input),
            buf: Vec::with_capacity(4096),
            options,
            index: 0,
            offset: 0,
            done: false,
        }
    }

    /// Bytes consumed so far (for progress reports).
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// Skips line ends, NULs, blanks and DOS end-of-file marks between records.
    /// Returns `false` at the end of the input.
    fn skip_gap(&mut self) -> io::Result<bool> {
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok(false);
            }
            let gap = available
                .iter()
                .take_while(|b| matches!(b, b'\n' | b'\r' | b' ' | b'\t' | 0 | 0x1A))
                .count();
            let all = gap == available.len();
            self.input.consume(gap);
            self.offset += gap as u64;
            if !all {
                return Ok(true);
            }
        }
    }

    /// Reads up to and including the next record terminator into `self.buf`.
    /// Returns (terminator found, record longer than ISO 2709 allows); an
    /// over-long record is skipped without being kept in memory.
    fn read_to_terminator(&mut self) -> io::Result<(bool, bool)> {
        self.buf.clear();
        let mut overflow = false;
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok((false, overflow));
            }
            let (take, found) = match available.iter().position(|&b| b == RECORD_TERMINATOR) {
                Some(p) => (p + 1, true),
                None => (available.len(), false),
            };
            if !overflow {
                if self.buf.len() + take > MAX_RECORD_LEN {
                    overflow = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&available[..take]);
                }
            }
            self.input.consume(take);
            self.offset += take as u64;
            if found {
                return Ok((true, overflow));
            }
        }
    }
}

impl<R: Read> Iterator for Iso2709Reader<R> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let fail = |index, offset, kind| ReadError {
            index,
            offset,
            control_number: None,
            kind,
        };
        match self.skip_gap() {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(fail(self.index + 1, self.offset, e.into())));
            }
        }
        let start = self.offset;
        self.index += 1;
        let (terminated, overflow) = match self.read_to_terminator() {
            Ok(r) => r,
            Err(e) => {
                self.done = true;
                return Some(Err(fail(self.index, start, e.into())));
            }
        };
        if overflow {
            return Some(Err(fail(self.index, start, ReadErrorKind::TooLong)));
        }
        if !terminated {
            self.done = true;
            return Some(Err(ReadError {
                index: self.index,
                offset: start,
                control_number: find_control_number(&self.buf),
                kind: ReadErrorKind::Truncated(self.buf.len()),
            }));
        }
        Some(
            parse_record(&self.buf, self.options).map_err(|kind| ReadError {
                index: self.index,
                offset: start,
                control_number: find_control_number(&self.buf),
                kind,
            }),
        )
    }
}

fn digits(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0usize, |n, b| n * 10 + usize::from(b - b'0')),
    )
}

/// Parses one whole record (leader to record terminator inclusive).
pub fn parse_record(bytes: &[u8], options: ReaderOptions) -> Result<Record, ReadErrorKind> {
    let Some(leader_bytes) = bytes.get(..24) else {
        return Err(ReadErrorKind::Leader(format!(
            "the record is only {} bytes long",
            bytes.len()
        )));
    };
    let mut leader =
        Leader::from_bytes(leader_bytes).map_err(|e| ReadErrorKind::Leader(e.to_string()))?;
    let declared = digits(&leader_bytes[0..5])
        .ok_or_else(|| ReadErrorKind::Leader("record length (00-04) is not a number".into()))?;
    if declared != bytes.len() {
        return Err(ReadErrorKind::RecordLength {
            declared,
            actual: bytes.len(),
        });
    }
    let base = digits(&leader_bytes[12..17]).ok_or_else(|| {
        ReadErrorKind::Leader("base address of data (12-16) is not a number".into())
    })?;
    if base < 25 || base > bytes.len() - 1 {
        return Err(ReadErrorKind::BaseAddress(format!(
            "{base} is outside the record ({} bytes)",
            bytes.len()
        )));
    }
    if bytes[base - 1] != FIELD_TERMINATOR {
        return Err(ReadErrorKind::BaseAddress(format!(
            "no field terminator before byte {base} (end of the directory)"
        )));
    }
    let directory = &bytes[24..base - 1];
    if !directory.len().is_multiple_of(12) {
        return Err(ReadErrorKind::Directory(format!(
            "{} bytes is not a whole number of 12-byte entries",
            directory.len()
        )));
    }
    let data = &bytes[base..bytes.len() - 1];
    let unicode = leader.is_unicode();
    let mut marc8 = Marc8Decoder::new(options.strict_encoding);
    let mut fields = Vec::with_capacity(directory.len() / 12);
    for (n, entry) in directory.chunks_exact(12).enumerate() {
        let tag = Tag::from_bytes(&entry[0..3]).map_err(|_| {
            ReadErrorKind::Directory(format!(
                "entry {} has an invalid tag {:?}",
                n + 1,
                String::from_utf8_lossy(&entry[0..3])
            ))
        })?;
        let (Some(len), Some(start)) = (digits(&entry[3..7]), digits(&entry[7..12])) else {
            return Err(ReadErrorKind::Directory(format!(
                "entry {} ({tag}) has a non-numeric length or start",
                n + 1
            )));
        };
        if len == 0 || start + len > data.len() {
            return Err(ReadErrorKind::Directory(format!(
                "field {tag} (start {start}, length {len}) lies outside the data ({} bytes)",
                data.len()
            )));
        }
        let raw = &data[start..start + len];
        let field_error = |reason: &str| ReadErrorKind::Field {
            tag: tag.to_string(),
            reason: reason.to_owned(),
        };
        let Some((&FIELD_TERMINATOR, content)) = raw.split_last() else {
            return Err(field_error(
                "does not end with a field terminator (the directory's length or start is wrong)",
            ));
        };
        if content.contains(&FIELD_TERMINATOR) {
            return Err(field_error(
                "contains a field terminator (directory length is wrong)",
            ));
        }
        marc8.reset();
        let mut decode = |bytes: &[u8]| -> Result<String, ReadErrorKind> {
            if unicode {
                if options.strict_encoding {
                    std::str::from_utf8(bytes).map(str::to_owned).map_err(|e| {
                        ReadErrorKind::Encoding {
                            tag: tag.to_string(),
                            reason: format!("invalid UTF-8: {e}"),
                        }
                    })
                } else {
                    Ok(String::from_utf8_lossy(bytes).into_owned())
                }
            } else {
                let text = marc8.decode(bytes);
                match marc8.take_error() {
                    Some(e) => Err(ReadErrorKind::Encoding {
                        tag: tag.to_string(),
                        reason: e.to_string(),
                    }),
                    None => Ok(text),
                }
            }
        };
        if tag.is_control() {
            // A stray delimiter in a control field (LC's own files have `001` values
            // ending in 0x1F) carries nothing and no format could write it back: dropped.
            let value = if content.contains(&SUBFIELD_DELIMITER) {
                let cleaned: Vec<u8> = content
                    .iter()
                    .copied()
                    .filter(|&b| b != SUBFIELD_DELIMITER)
                    .collect();
                decode(&cleaned)?
            } else {
                decode(content)?
            };
            fields.push(Field::Control { tag, value });
            continue;
        }
        // A data field that starts with a delimiter lost its indicators: read them as blanks.
        let (i1, i2, rest) = match content {
            [SUBFIELD_DELIMITER, ..] => (&b' ', &b' ', content),
            [i1, i2, rest @ ..] => (i1, i2, rest),
            _ => return Err(field_error("has no indicators")),
        };
        let indicator = |b: u8| {
            if (0x20..0x7F).contains(&b) && b != b'\x1F' {
                Ok(char::from(b))
            } else {
                Err(field_error(&format!("invalid indicator byte 0x{b:02X}")))
            }
        };
        let indicators = [indicator(*i1)?, indicator(*i2)?];
        let mut subfields = Vec::new();
        // Stray bytes between the indicators and the first delimiter (a third
        // "indicator" some editors write) are dropped, as other readers do.
        let first_delimiter = rest.iter().position(|&b| b == SUBFIELD_DELIMITER);
        match first_delimiter
            .map(|p| &rest[p..])
            .unwrap_or(rest)
            .split_first()
        {
            None => {}
            Some((&SUBFIELD_DELIMITER, after)) => {
                for piece in after.split(|&b| b == SUBFIELD_DELIMITER) {
                    let Some((&code, value)) = piece.split_first() else {
                        return Err(field_error("empty subfield (no code)"));
                    };
                    if !(0x21..0x7F).contains(&code) {
                        return Err(field_error(&format!(
                            "invalid subfield code byte 0x{code:02X}"
                        )));
                    }
                    subfields.push(Subfield {
                        code: char::from(code),
                        value: decode(value)?,
                    });
                }
            }
            Some(_) => return Err(field_error("has data but no subfield delimiter")),
        }
        fields.push(Field::Data {
            tag,
            indicators,
            subfields,
        });
    }
    // Everything is UTF-8 from here on.
    leader.set(9, b'a');
    Ok(Record { leader, fields })
}

/// Best effort at a broken record's 001, for error reports.
fn find_control_number(bytes: &[u8]) -> Option<String> {
    let base = digits(bytes.get(12..17)?)?;
    let directory = bytes.get(24..base.checked_sub(1)?)?;
    let data = bytes.get(base..)?;
    for entry in directory.chunks_exact(12) {
        if &entry[0..3] == b"001" {
            let len = digits(&entry[3..7])?;
            let start = digits(&entry[7..12])?;
            let raw = data.get(start..start + len)?;
            let value = raw.strip_suffix(&[FIELD_TERMINATOR]).unwrap_or(raw);
            let text = String::from_utf8_lossy(value).trim().to_owned();
            return (!text.is_empty() && text.len() <= 64).then_some(text);
        }
    }
    None
}

/// Serialises `record` as ISO 2709 (UTF-8, leader/09 `a`) onto `out`, computing
/// the record length, base address and directory exactly.
pub fn write_record(record: &Record, out: &mut Vec<u8>) -> Result<(), WriteError> {
    let mut directory: Vec<u8> = Vec::with_capacity(record.fields.len() * 12);
    let mut data: Vec<u8> = Vec::with_capacity(1024);
    for field in &record.fields {
        let tag = field.tag();
        let invalid = |reason: String| WriteError::Invalid {
            tag: tag.to_string(),
            reason,
        };
        let check_text = |what: &str, text: &str| {
            if text
                .bytes()
                .any(|b| matches!(b, RECORD_TERMINATOR | FIELD_TERMINATOR | SUBFIELD_DELIMITER))
            {
                Err(invalid(format!(
                    "{what} contains a MARC delimiter (0x1D, 0x1E or 0x1F)"
                )))
            } else {
                Ok(())
            }
        };
        let start = data.len();
        match field {
            Field::Control { value, .. } => {
                check_text("value", value)?;
                data.extend_from_slice(value.as_bytes());
            }
            Field::Data {
                indicators,
                subfields,
                ..
            } => {
                for ind in indicators {
                    if !(' '..='~').contains(ind) {
                        return Err(invalid(format!("indicator {ind:?} is not printable ASCII")));
                    }
                    data.push(*ind as u8);
                }
                for sf in subfields {
                    if !('!'..='~').contains(&sf.code) {
                        return Err(invalid(format!(
                            "subfield code {:?} is not printable ASCII",
                            sf.code
                        )));
                    }
                    check_text("a subfield", &sf.value)?;
                    data.push(SUBFIELD_DELIMITER);
                    data.push(sf.code as u8);
                    data.extend_from_slice(sf.value.as_bytes());
                }
            }
        }
        data.push(FIELD_TERMINATOR);
        let len = data.len() - start;
        if len > MAX_FIELD_LEN {
            return Err(WriteError::TooLong(format!(
                "field {tag} is {len} bytes; ISO 2709 allows {MAX_FIELD_LEN}"
            )));
        }
        if start > MAX_RECORD_LEN {
            return Err(WriteError::TooLong(format!(
                "the record is longer than {MAX_RECORD_LEN} bytes"
            )));
        }
        directory.extend_from_slice(tag.as_bytes());
        directory.extend_from_slice(format!("{len:04}{start:05}").as_bytes());
    }
    let base = 24 + directory.len() + 1;
    let total = base + data.len() + 1;
    if total > MAX_RECORD_LEN {
        return Err(WriteError::TooLong(format!(
            "the record is {total} bytes; ISO 2709 allows {MAX_RECORD_LEN}"
        )));
    }
    let mut leader = record.leader.clone();
    for (i, b) in format!("{total:05}").bytes().enumerate() {
        leader.set(i, b);
    }
    for (i, b) in format!("{base:05}").bytes().enumerate() {
        leader.set(12 + i, b);
    }
    leader.set(9, b'a');
    leader.set(10, b'2');
    leader.set(11, b'2');
    for (i, b) in b"4500".iter().enumerate() {
        leader.set(20 + i, *b);
    }
    out.reserve(total);
    out.extend_from_slice(leader.as_bytes());
    out.extend_from_slice(&directory);
    out.push(FIELD_TERMINATOR);
    out.extend_from_slice(&data);
    out.push(RECORD_TERMINATOR);
    Ok(())
}

/// Writes records as ISO 2709 to any `Write`, one at a time.
#[derive(Debug)]
pub struct Iso2709Writer<W: Write> {
    output: W,
    buf: Vec<u8>,
}

impl<W: Write> Iso2709Writer<W> {
    /// A writer onto `output` (wrap files in a `BufWriter`).
    pub fn new(output: W) -> Self {
        Iso2709Writer {
            output,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Writes one record. A record that cannot be represented is refused whole
    /// and nothing of it is written.
    pub fn write(&mut self, record: &Record) -> Result<(), WriteError> {
        self.buf.clear();
        write_record(record, &mut self.buf)?;
        self.output.write_all(&self.buf)?;
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.output.flush()?;
        Ok(self.output)
    }
}
