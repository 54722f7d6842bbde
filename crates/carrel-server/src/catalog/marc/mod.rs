//! MARC 21 in and out of the catalog (INTEROP.md, "MARC 21 import and export").
//!
//! - [`import`]: the one import engine, used by `carrel catalog import` and by
//!   import jobs (`POST /api/v1/imports`): a reader thread parses and maps
//!   records while the writer commits them in batches.
//! - [`jobs`]: import jobs in the server (lease, resume after a restart).
//! - here: the field limits, the conversion of mapped records into the JSON
//!   API's validated fields, and the record an item exports.

pub mod import;
pub mod jobs;

use std::collections::HashMap;

use carrel_marc::{CatalogRecord, Holding, Limits, Record};
use carrel_store::{Copy, ExportEntry, ItemRow, Store, StoreError, StoredRecord};
use uuid::Uuid;

/// Carrel's field limits, as `catalog::fields` enforces them for the JSON API
/// (a unit test checks they agree).
pub const LIMITS: Limits = Limits {
    title: 500,
    subtitle: 500,
    author: 200,
    max_authors: 20,
    publisher: 200,
    subject: 100,
    max_subjects: 20,
    description: 5_000,
    call_number: 100,
};

/// The library's branch codes (952 $a), read once per import or export.
#[derive(Debug, Clone, Default)]
pub struct BranchCodes {
    by_code: HashMap<String, Uuid>,
    by_id: HashMap<Uuid, String>,
}

impl BranchCodes {
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        Ok(Self::new(store.branch_codes().await?))
    }

    pub fn new(branches: Vec<(Uuid, String)>) -> Self {
        BranchCodes {
            by_code: branches.iter().map(|(id, c)| (c.clone(), *id)).collect(),
            by_id: branches.into_iter().collect(),
        }
    }

    /// The branch with this code (codes are case-sensitive, as in the API).
    pub fn id_of(&self, code: &str) -> Option<Uuid> {
        self.by_code.get(code).copied()
    }

    pub fn code_of(&self, id: Uuid) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }
}

/// The input format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decided from the first bytes: `<` is MARCXML, anything else ISO 2709.
    Auto,
    Marc,
    MarcXml,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Marc => "marc",
            Format::MarcXml => "marcxml",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Format::Auto),
            "marc" => Some(Format::Marc),
            "marcxml" => Some(Format::MarcXml),
            _ => None,
        }
    }
}

/// How imported records find the item they update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// The item with the same ISBN; a record without a valid ISBN is matched
    /// by its control number instead.
    Isbn,
    /// The item whose stored record has the same 001 and 003 (or whose id is the 001).
    ControlNumber,
    /// Always create (a record whose ISBN is taken is skipped).
    None,
}

impl MatchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchMode::Isbn => "isbn",
            MatchMode::ControlNumber => "control-number",
            MatchMode::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "isbn" => Some(MatchMode::Isbn),
            "control-number" => Some(MatchMode::ControlNumber),
            "none" => Some(MatchMode::None),
            _ => None,
        }
    }
}

/// The record to keep for an item: ISO 2709 (UTF-8), or MARCXML when the
/// record does not fit ISO 2709's lengths.
pub fn stored_record(record: &Record) -> Result<StoredRecord, String> {
    let (format, bytes) = match iso2709_bytes(record) {
        Some(bytes) => ("marc", bytes),
        None => (
            "marcxml",
            carrel_marc::marcxml::to_marcxml_document(record)
                .map_err(|e| format!("the record cannot be stored: {e}"))?
                .into_bytes(),
        ),
    };
    Ok(StoredRecord {
        format: format.to_owned(),
        fingerprint: fingerprint(&bytes),
        record: bytes,
        control_number: control_value(record, "001"),
        control_number_identifier: control_value(record, "003").unwrap_or_default(),
    })
}

/// The hash a record without ISBN or 001 is found again by (SHA-256, 32 hex digits).
pub fn fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A record as ISO 2709 bytes (None when it does not fit).
pub fn iso2709_bytes(record: &Record) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(2048);
    carrel_marc::iso2709::write_record(record, &mut out).ok()?;
    Some(out)
}

/// A control field's trimmed value, if not blank.
pub fn control_value(record: &Record, tag: &str) -> Option<String> {
    record
        .control_value(tag)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Reads a stored record back.
pub fn parse_stored(stored: &StoredRecord) -> Result<Record, String> {
    match stored.format.as_str() {
        "marcxml" => carrel_marc::MarcXmlReader::new(stored.record.as_slice())
            .next()
            .ok_or_else(|| "the stored record is empty".to_owned())?
            .map_err(|e| e.to_string()),
        _ => carrel_marc::iso2709::parse_record(&stored.record, Default::default())
            .map_err(|e| e.to_string()),
    }
}

/// The item's current fields and copies in the mapping's terms. `stored` names
/// the control number; an item whose record has none (or that has no record)
/// gets its id as 001, so its export can be matched again.
pub fn current_fields(
    item: &ItemRow,
    copies: &[Copy],
    stored_meta: Option<&StoredRecord>,
    branches: &BranchCodes,
) -> CatalogRecord {
    // 952 $a is the copy's home branch now (moves included).
    let holdings = copies
        .iter()
        .map(|c| Holding {
            barcode: Some(c.barcode.clone()),
            call_number: c.call_number.clone(),
            branch_code: branches.code_of(c.branch_id).map(str::to_owned),
        })
        .collect();
    let (control_number, control_number_identifier) = match stored_meta {
        Some(meta) if meta.control_number.is_some() => (
            meta.control_number.clone(),
            Some(meta.control_number_identifier.clone()).filter(|s| !s.is_empty()),
        ),
        Some(meta) => (
            Some(item.id.to_string()),
            Some(meta.control_number_identifier.clone()).filter(|s| !s.is_empty()),
        ),
        None => (Some(item.id.to_string()), None),
    };
    CatalogRecord {
        title: item.title.clone(),
        subtitle: item.subtitle.clone(),
        authors: item.authors.0.clone(),
        isbn: item.isbn.clone(),
        item_type: item.item_type.clone(),
        publisher: item.publisher.clone(),
        publication_year: item.publication_year,
        language: item.language.clone(),
        subjects: item.subjects.0.clone(),
        description: item.description.clone(),
        control_number,
        control_number_identifier,
        holdings,
    }
}

/// The record an item exports: its stored record (if any) with Carrel's
/// current fields and copies written over it.
pub fn export_item(
    item: &ItemRow,
    copies: &[Copy],
    stored: Option<&StoredRecord>,
    branches: &BranchCodes,
) -> Result<Record, String> {
    let original = stored.map(parse_stored).transpose()?;
    let current = current_fields(item, copies, stored, branches);
    Ok(carrel_marc::export_record(
        original.as_ref(),
        &current,
        &LIMITS,
    ))
}

/// [`export_item`] for an entry of a whole-catalog export.
pub fn export_entry(entry: &ExportEntry, branches: &BranchCodes) -> Result<Record, String> {
    export_item(&entry.item, &entry.copies, entry.record.as_ref(), branches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fields::{ItemInput, validate_item, validate_new_copy};

    fn text(n: usize) -> String {
        "x".repeat(n)
    }

    #[test]
    fn limits_agree_with_the_json_api() {
        let ok = |input: ItemInput| validate_item(input, 2030).is_ok();
        let base = || ItemInput {
            title: Some("t".into()),
            ..Default::default()
        };
        assert!(ok(ItemInput {
            title: Some(text(LIMITS.title)),
            subtitle: Some(text(LIMITS.subtitle)),
            authors: Some(
                (0..LIMITS.max_authors)
                    .map(|i| format!("{i}{}", text(LIMITS.author - 2)))
                    .collect()
            ),
            publisher: Some(text(LIMITS.publisher)),
            subjects: Some(
                (0..LIMITS.max_subjects)
                    .map(|i| format!("{i}{}", text(LIMITS.subject - 2)))
                    .collect()
            ),
            description: Some(text(LIMITS.description)),
            ..Default::default()
        }));
        assert!(!ok(ItemInput {
            title: Some(text(LIMITS.title + 1)),
            ..base()
        }));
        assert!(!ok(ItemInput {
            subtitle: Some(text(LIMITS.subtitle + 1)),
            ..base()
        }));
        assert!(!ok(ItemInput {
            authors: Some(vec![text(LIMITS.author + 1)]),
            ..base()
        }));
        assert!(!ok(ItemInput {
            authors: Some((0..=LIMITS.max_authors).map(|i| i.to_string()).collect()),
            ..base()
        }));
        assert!(!ok(ItemInput {
            publisher: Some(text(LIMITS.publisher + 1)),
            ..base()
        }));
        assert!(!ok(ItemInput {
            subjects: Some(vec![text(LIMITS.subject + 1)]),
            ..base()
        }));
        assert!(!ok(ItemInput {
            subjects: Some((0..=LIMITS.max_subjects).map(|i| i.to_string()).collect()),
            ..base()
        }));
        assert!(!ok(ItemInput {
            description: Some(text(LIMITS.description + 1)),
            ..base()
        }));
        assert!(validate_new_copy("B1", None, Some(text(LIMITS.call_number))).is_ok());
        assert!(validate_new_copy("B1", None, Some(text(LIMITS.call_number + 1))).is_err());
    }
}
