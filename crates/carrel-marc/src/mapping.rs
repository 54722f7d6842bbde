//! A MARC record → Carrel's item fields and copies, as `INTEROP.md` defines it.
//!
//! Every text is NFC, has control characters removed (MARC-8's non-sort markers
//! among them) and runs of whitespace collapsed. A text longer than the caller's
//! limit is cut at a word boundary and a [`MappingNote`] says so; the record
//! itself is never changed, so an export still has the whole text.

use std::fmt;

use carrel_core::isbn::normalize_isbn;
use unicode_normalization::UnicodeNormalization;

use crate::record::{Field, Record};

/// Carrel's fields for one record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatalogRecord {
    /// 245 $a, $n and $p.
    pub title: String,
    /// 245 $b.
    pub subtitle: Option<String>,
    /// 100/110/111 $a then 700/710/711 $a, in order, without duplicates.
    pub authors: Vec<String>,
    /// The first valid 020 $a, as ISBN-13.
    pub isbn: Option<String>,
    /// `book`, `ebook`, `audiobook`, `dvd`, `magazine` or `other` (leader/06-07).
    pub item_type: String,
    /// 264 (2nd indicator 1) $b, else 260 $b.
    pub publisher: Option<String>,
    /// First 4-digit year of 264 $c / 260 $c, else 008/07-10.
    pub publication_year: Option<i32>,
    /// 008/35-37, else 041 $a: a 3-letter MARC language code.
    pub language: Option<String>,
    /// 600/610/611/630/650/651: $a with $x $y $z joined by ` -- `.
    pub subjects: Vec<String>,
    /// 520 $a.
    pub description: Option<String>,
    /// 001.
    pub control_number: Option<String>,
    /// 003 (the organisation whose number 001 is).
    pub control_number_identifier: Option<String>,
    /// Copies from 952 (Koha) or, when there is no 952, 852.
    pub holdings: Vec<Holding>,
}

/// One copy found in the record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holding {
    /// 952 $p / 852 $p.
    pub barcode: Option<String>,
    /// 952 $o / 852 $h and $i.
    pub call_number: Option<String>,
    /// 952 $a (Koha's home branch); 852 has none.
    pub branch_code: Option<String>,
}

/// Carrel's limits, in characters, for each text field (passed in by the caller
/// so the numbers live in one place, the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Title.
    pub title: usize,
    /// Subtitle.
    pub subtitle: usize,
    /// Each author.
    pub author: usize,
    /// Number of authors kept.
    pub max_authors: usize,
    /// Publisher.
    pub publisher: usize,
    /// Each subject.
    pub subject: usize,
    /// Number of subjects kept.
    pub max_subjects: usize,
    /// Description.
    pub description: usize,
    /// A copy's call number.
    pub call_number: usize,
}

impl Limits {
    /// No limits at all.
    pub const UNLIMITED: Limits = Limits {
        title: usize::MAX,
        subtitle: usize::MAX,
        author: usize::MAX,
        max_authors: usize::MAX,
        publisher: usize::MAX,
        subject: usize::MAX,
        max_subjects: usize::MAX,
        description: usize::MAX,
        call_number: usize::MAX,
    };
}

/// Something the mapping changed or left out; worth a line in the import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingNote {
    /// A text was cut at a word boundary to fit its limit.
    Truncated {
        /// Carrel's field name (`subtitle`, `authors`…).
        field: &'static str,
        /// Its length in characters before the cut.
        original_chars: usize,
        /// The limit.
        limit: usize,
    },
    /// A list had more entries than the limit; the first ones were kept.
    EntriesDropped {
        /// Carrel's field name.
        field: &'static str,
        /// Entries kept.
        kept: usize,
        /// Entries left out.
        dropped: usize,
    },
    /// The record has 020 $a values but none is a valid ISBN.
    NoValidIsbn {
        /// The first 020 $a, as found.
        first: String,
    },
}

impl fmt::Display for MappingNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingNote::Truncated {
                field,
                original_chars,
                limit,
            } => write!(
                f,
                "{field} cut to {limit} characters (was {original_chars}); the stored record keeps it whole"
            ),
            MappingNote::EntriesDropped {
                field,
                kept,
                dropped,
            } => write!(f, "{field}: kept the first {kept}, left out {dropped}"),
            MappingNote::NoValidIsbn { first } => {
                write!(
                    f,
                    "no valid ISBN in 020 $a (first: {first:?}); imported without one"
                )
            }
        }
    }
}

/// Why a record cannot become an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// No 245 $a (Carrel requires a title).
    #[error("no title (245 $a)")]
    MissingTitle,
}

/// The mapped fields and what was changed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// The fields.
    pub record: CatalogRecord,
    /// Cuts and omissions, in field order.
    pub notes: Vec<MappingNote>,
}

/// Maps `record` to Carrel's fields, cutting texts to `limits`.
pub fn map_record(record: &Record, limits: &Limits) -> Result<Mapped, MapError> {
    let mut notes = Vec::new();
    let full = map_unlimited(record, &mut notes)?;
    let mut cut = |field: &'static str, text: String, limit: usize| {
        let (text, original) = cut_at_word(text, limit);
        if let Some(original_chars) = original {
            notes.push(MappingNote::Truncated {
                field,
                original_chars,
                limit,
            });
        }
        text
    };
    let title = cut("title", full.title, limits.title);
    let subtitle = full.subtitle.map(|s| cut("subtitle", s, limits.subtitle));
    let authors: Vec<String> = full
        .authors
        .into_iter()
        .map(|a| cut("authors", a, limits.author))
        .collect();
    let publisher = full
        .publisher
        .map(|s| cut("publisher", s, limits.publisher));
    let subjects: Vec<String> = full
        .subjects
        .into_iter()
        .map(|s| cut("subjects", s, limits.subject))
        .collect();
    let description = full
        .description
        .map(|s| cut("description", s, limits.description));
    let holdings = full
        .holdings
        .into_iter()
        .map(|h| Holding {
            call_number: h
                .call_number
                .map(|c| cut("call_number", c, limits.call_number)),
            ..h
        })
        .collect();
    let authors = keep_first(authors, limits.max_authors, "authors", &mut notes);
    let subjects = keep_first(subjects, limits.max_subjects, "subjects", &mut notes);
    Ok(Mapped {
        record: CatalogRecord {
            title,
            subtitle,
            authors,
            publisher,
            subjects,
            description,
            holdings,
            ..full
        },
        notes,
    })
}

fn keep_first(
    mut list: Vec<String>,
    max: usize,
    field: &'static str,
    notes: &mut Vec<MappingNote>,
) -> Vec<String> {
    if list.len() > max {
        notes.push(MappingNote::EntriesDropped {
            field,
            kept: max,
            dropped: list.len() - max,
        });
        list.truncate(max);
    }
    list
}

/// Cuts `text` to at most `limit` characters at the last whitespace within the
/// limit (or exactly at the limit when one word is longer). Returns the text and,
/// when it was cut, its original length in characters.
pub fn cut_at_word(text: String, limit: usize) -> (String, Option<usize>) {
    let chars = text.chars().count();
    if chars <= limit {
        return (text, None);
    }
    let byte_end = text
        .char_indices()
        .nth(limit)
        .map_or(text.len(), |(i, _)| i);
    let head = &text[..byte_end];
    // The next character being whitespace means `head` already ends at a word boundary.
    let next_is_space = text[byte_end..].starts_with(char::is_whitespace);
    let cut = if next_is_space {
        head
    } else {
        match head.rfind(char::is_whitespace) {
            Some(i) if i > 0 => &head[..i],
            _ => head,
        }
    };
    let cut = cut
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '/' | '='));
    let cut = if cut.is_empty() { head } else { cut };
    (cut.to_owned(), Some(chars))
}

/// Maps without limits (notes only for ISBNs).
fn map_unlimited(record: &Record, notes: &mut Vec<MappingNote>) -> Result<CatalogRecord, MapError> {
    let title = title(record).ok_or(MapError::MissingTitle)?;
    let subtitle = record.field("245").and_then(|f| {
        let parts: Vec<&str> = f.values('b').collect();
        non_empty(trim_isbd(&clean(&parts.join(" "))).to_owned())
    });
    let isbn = isbn(record, notes);
    let (publisher, year_text) = publication(record);
    let publication_year = year_text
        .iter()
        .find_map(|c| first_year(c))
        .or_else(|| fixed_year(record));
    Ok(CatalogRecord {
        title,
        subtitle,
        authors: authors(record),
        isbn,
        item_type: item_type(record).to_owned(),
        publisher,
        publication_year,
        language: language(record),
        subjects: subjects(record),
        description: record
            .field("520")
            .and_then(|f| f.first('a'))
            .and_then(|d| non_empty(clean(d))),
        control_number: record
            .control_value("001")
            .and_then(|v| non_empty(clean(v))),
        control_number_identifier: record
            .control_value("003")
            .and_then(|v| non_empty(clean(v))),
        holdings: holdings(record),
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// NFC, no control characters, whitespace runs collapsed, ends trimmed.
pub fn clean(text: &str) -> String {
    if text.is_ascii() {
        return clean_chars(text.chars(), text.len());
    }
    match unicode_normalization::is_nfc_quick(text.chars()) {
        unicode_normalization::IsNormalized::Yes => clean_chars(text.chars(), text.len()),
        _ => clean_chars(text.nfc(), text.len()),
    }
}

fn clean_chars(chars: impl Iterator<Item = char>, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut space = false;
    for c in chars {
        if c.is_whitespace() {
            space = true;
        } else if c.is_control() {
            // Non-sort markers (U+0098/U+009C) and stray C0/C1 controls.
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// Removes ISBD punctuation (` /`, ` :`, ` ;`, ` =`, `,`, `.`) and blanks from the
/// end. A period after a single-letter initial (`Tolkien, J. R. R.`) is kept.
pub fn trim_isbd(text: &str) -> &str {
    let mut s = text.trim();
    loop {
        let before = s.len();
        for sep in ['/', ':', ';', '='] {
            if let Some(rest) = s.strip_suffix(sep) {
                s = rest.trim_end();
            }
        }
        if let Some(rest) = s.strip_suffix(',') {
            s = rest.trim_end();
        }
        if let Some(rest) = s.strip_suffix('.')
            && !ends_with_initial(rest)
        {
            s = rest.trim_end();
        }
        if s.len() == before {
            return s;
        }
    }
}

/// `rest` ends with a lone capital letter (an initial such as the `R` of `R.`).
fn ends_with_initial(rest: &str) -> bool {
    let mut chars = rest.chars().rev();
    match (chars.next(), chars.next()) {
        (Some(c), None) => c.is_uppercase(),
        (Some(c), Some(before)) => {
            c.is_uppercase() && (before.is_whitespace() || before == '.' || before == '-')
        }
        _ => false,
    }
}

/// 245 $a, $n and $p in field order; separators that introduced a left-out
/// subfield (` :` before $b) are dropped between the pieces.
fn title(record: &Record) -> Option<String> {
    let field = record.field("245")?;
    field.first('a')?;
    let pieces: Vec<String> = field
        .subfields()
        .iter()
        .filter(|s| matches!(s.code, 'a' | 'n' | 'p'))
        .map(|s| clean(&s.value))
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = String::new();
    for piece in &pieces {
        let piece = piece
            .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '/' | ':' | ';' | '='));
        if piece.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(piece);
    }
    non_empty(trim_isbd(&out).to_owned())
}

fn authors(record: &Record) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for group in [["100", "110", "111"], ["700", "710", "711"]] {
        for field in record
            .fields
            .iter()
            .filter(|f| group.contains(&f.tag().as_str()))
        {
            if let Some(a) = field.first('a') {
                push_unique(&mut out, trim_isbd(&clean(a)));
            }
        }
    }
    out
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if value.is_empty() {
        return;
    }
    let lower = value.to_lowercase();
    if !list.iter().any(|v| v.to_lowercase() == lower) {
        list.push(value.to_owned());
    }
}

/// The first 020 $a that is a valid ISBN once qualifiers (`(pbk.)`, `:`) are dropped.
fn isbn(record: &Record, notes: &mut Vec<MappingNote>) -> Option<String> {
    let mut first_seen: Option<String> = None;
    for value in record.fields_tagged("020").flat_map(|f| f.values('a')) {
        if first_seen.is_none() {
            first_seen = Some(value.to_owned());
        }
        let candidate = value
            .trim()
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
            .trim_end_matches([':', ';', '.', ',']);
        if let Ok(isbn) = normalize_isbn(candidate) {
            return Some(isbn);
        }
    }
    if let Some(first) = first_seen {
        notes.push(MappingNote::NoValidIsbn { first });
    }
    None
}

/// Publisher and the texts to look for a year in: 264 (2nd indicator 1) first, then 260.
fn publication(record: &Record) -> (Option<String>, Vec<String>) {
    let rda: Vec<&Field> = record
        .fields_tagged("264")
        .filter(|f| f.indicators()[1] == '1')
        .collect();
    let aacr: Vec<&Field> = record.fields_tagged("260").collect();
    let publisher = rda
        .iter()
        .chain(aacr.iter())
        .flat_map(|f| f.values('b'))
        .map(|b| trim_isbd(&clean(b)).to_owned())
        .find(|b| !b.is_empty());
    let dates = rda
        .iter()
        .chain(aacr.iter())
        .flat_map(|f| f.values('c'))
        .map(str::to_owned)
        .collect();
    (publisher, dates)
}

/// The first run of exactly four digits.
fn first_year(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 4 {
                return text[start..i].parse().ok();
            }
        } else {
            i += 1;
        }
    }
    None
}

/// 008/07-10 when it is four digits.
fn fixed_year(record: &Record) -> Option<i32> {
    let f008 = record.control_value("008")?;
    let date = f008.get(7..11)?;
    if date.bytes().all(|b| b.is_ascii_digit()) {
        date.parse().ok()
    } else {
        None
    }
}

fn language(record: &Record) -> Option<String> {
    let from_008 = record
        .control_value("008")
        .and_then(|f| f.get(35..38))
        .filter(|code| code.bytes().all(|b| b.is_ascii_lowercase()));
    if let Some(code) = from_008 {
        return Some(code.to_owned());
    }
    record
        .fields_tagged("041")
        .flat_map(|f| f.values('a'))
        .find_map(|a| {
            let code = a.trim().get(0..3)?;
            code.bytes()
                .all(|b| b.is_ascii_alphabetic())
                .then(|| code.to_ascii_lowercase())
        })
}

const SUBJECT_TAGS: [&str; 6] = ["600", "610", "611", "630", "650", "651"];

fn subjects(record: &Record) -> Vec<String> {
    let mut out = Vec::new();
    for field in record
        .fields
        .iter()
        .filter(|f| SUBJECT_TAGS.contains(&f.tag().as_str()))
    {
        let Some(a) = field.first('a') else { continue };
        let mut parts = vec![trim_isbd(&clean(a)).to_owned()];
        for sf in field.subfields() {
            if matches!(sf.code, 'x' | 'y' | 'z') {
                let part = trim_isbd(&clean(&sf.value)).to_owned();
                if !part.is_empty() {
                    parts.push(part);
                }
            }
        }
        if parts[0].is_empty() {
            continue;
        }
        push_unique(&mut out, &parts.join(" -- "));
    }
    out
}

/// leader/06-07 → Carrel's item type.
pub fn item_type_from_leader(type_of_record: u8, bibliographic_level: u8) -> &'static str {
    match (type_of_record, bibliographic_level) {
        (b'a' | b't', b's' | b'b') => "magazine",
        (b'a' | b't', _) => "book",
        (b'g', _) => "dvd",
        (b'i', _) => "audiobook",
        (b'm', _) => "ebook",
        _ => "other",
    }
}

fn item_type(record: &Record) -> &'static str {
    item_type_from_leader(
        record.leader.type_of_record(),
        record.leader.bibliographic_level(),
    )
}

fn holdings(record: &Record) -> Vec<Holding> {
    let text = |v: Option<&str>| v.map(clean).and_then(non_empty);
    let koha: Vec<Holding> = record
        .fields_tagged("952")
        .map(|f| Holding {
            barcode: text(f.first('p')),
            call_number: text(f.first('o')),
            branch_code: text(f.first('a')),
        })
        .filter(|h| *h != Holding::default())
        .collect();
    if !koha.is_empty() {
        return koha;
    }
    record
        .fields_tagged("852")
        .map(|f| {
            let parts: Vec<&str> = f.values('h').chain(f.values('i')).collect();
            Holding {
                barcode: text(f.first('p')),
                call_number: non_empty(clean(&parts.join(" "))),
                branch_code: None,
            }
        })
        .filter(|h| *h != Holding::default())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn isbd_punctuation_is_trimmed_but_initials_keep_their_period() {
        assert_eq!(
            trim_isbd("The pragmatic programmer :"),
            "The pragmatic programmer"
        );
        assert_eq!(
            trim_isbd("from journeyman to master /"),
            "from journeyman to master"
        );
        assert_eq!(trim_isbd("Hunt, Andrew,"), "Hunt, Andrew");
        assert_eq!(trim_isbd("New York ;"), "New York");
        assert_eq!(trim_isbd("Wiley."), "Wiley");
        assert_eq!(trim_isbd("Tolkien, J. R. R."), "Tolkien, J. R. R.");
        assert_eq!(trim_isbd("World War, 1939-1945."), "World War, 1939-1945");
    }

    #[test]
    fn cut_at_word_boundary() {
        assert_eq!(
            cut_at_word("abc def ghi".into(), 20),
            ("abc def ghi".into(), None)
        );
        assert_eq!(
            cut_at_word("abc def ghi".into(), 9),
            ("abc def".into(), Some(11))
        );
        assert_eq!(
            cut_at_word("abc def ghi".into(), 7),
            ("abc def".into(), Some(11))
        );
        assert_eq!(
            cut_at_word("abcdefghij".into(), 4),
            ("abcd".into(), Some(10))
        );
        assert_eq!(cut_at_word("ab, cd".into(), 5), ("ab".into(), Some(6)));
        assert_eq!(cut_at_word("éèà ùü".into(), 4), ("éèà".into(), Some(6)));
    }

    #[test]
    fn years() {
        assert_eq!(first_year("c2000."), Some(2000));
        assert_eq!(first_year("[1999?]"), Some(1999));
        assert_eq!(first_year("1st ed., 2004-2007"), Some(2004));
        assert_eq!(first_year("19--"), None);
        assert_eq!(first_year("12345"), None);
    }

    #[test]
    fn item_types() {
        assert_eq!(item_type_from_leader(b'a', b'm'), "book");
        assert_eq!(item_type_from_leader(b'a', b's'), "magazine");
        assert_eq!(item_type_from_leader(b'g', b'm'), "dvd");
        assert_eq!(item_type_from_leader(b'i', b'm'), "audiobook");
        assert_eq!(item_type_from_leader(b'j', b'm'), "other");
        assert_eq!(item_type_from_leader(b'm', b'm'), "ebook");
        assert_eq!(item_type_from_leader(b'e', b'm'), "other");
    }
}
