//! Validation of item and copy fields: trimmed, length-bounded strings, ISBN
//! checksums, year bounds, well-formed item type codes and copy statuses as closed sets.
//! Pure rules without the database: the use cases in `app::catalog` call them
//! (and add the checks that need the database), and so does the MARC importer.

use carrel_core::isbn::normalize_isbn;
use carrel_core::statuses::CopyStatus;
use carrel_store::{CopyChanges, ItemFields, ItemRow, NewCopy};

/// Every bad field of an input, each with its reason (in the order checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFields(pub Vec<(String, String)>);

/// Copy statuses staff may set (circulation owns `on_loan` and `on_hold_shelf`).
pub const SETTABLE_COPY_STATUSES: [CopyStatus; 4] = [
    CopyStatus::Available,
    CopyStatus::Lost,
    CopyStatus::Damaged,
    CopyStatus::Withdrawn,
];
/// Oldest publication year accepted (antiquity in translation is dated by the translation).
pub const MIN_YEAR: i32 = -3000;

/// Input for a new item or a full replacement (PATCH merges into this first).
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub authors: Option<Vec<String>>,
    pub isbn: Option<String>,
    pub item_type: Option<String>,
    pub publisher: Option<String>,
    pub publication_year: Option<i32>,
    pub language: Option<String>,
    pub subjects: Option<Vec<String>>,
    pub description: Option<String>,
}

struct Check {
    bad: Vec<(String, String)>,
}

impl Check {
    fn fail(&mut self, field: &str, reason: &str) {
        self.bad.push((field.to_owned(), reason.to_owned()));
    }

    /// Trims; `None`/empty → `None`; too long or with control characters → error.
    fn text(&mut self, field: &str, value: Option<String>, max: usize) -> Option<String> {
        let value = value?.trim().to_owned();
        if value.is_empty() {
            return None;
        }
        if value.chars().count() > max {
            self.fail(field, &format!("must be at most {max} characters"));
            return None;
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            self.fail(field, "must not contain control characters");
            return None;
        }
        Some(value)
    }

    fn list(
        &mut self,
        field: &str,
        values: Option<Vec<String>>,
        max_entries: usize,
        max_len: usize,
    ) -> Vec<String> {
        let values = values.unwrap_or_default();
        if values.len() > max_entries {
            self.fail(field, &format!("must have at most {max_entries} entries"));
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        for value in values {
            match self.text(field, Some(value), max_len) {
                Some(v) if v.contains('|') => self.fail(field, "entries must not contain '|'"),
                Some(v) if !out.iter().any(|o| o.eq_ignore_ascii_case(&v)) => out.push(v),
                Some(_) => {}
                None => {}
            }
        }
        out
    }
}

/// Validates a whole item. `max_year` is next year by the server clock.
pub fn validate_item(input: ItemInput, max_year: i32) -> Result<ItemFields, InvalidFields> {
    let mut c = Check { bad: Vec::new() };
    let title = c.text("title", input.title, 500);
    if title.is_none() && !c.bad.iter().any(|(f, _)| f == "title") {
        c.fail("title", "is required");
    }
    let subtitle = c.text("subtitle", input.subtitle, 500);
    let authors = c.list("authors", input.authors, 20, 200);
    let isbn = match c.text("isbn", input.isbn, 20) {
        Some(raw) => match normalize_isbn(&raw) {
            Ok(isbn) => Some(isbn),
            Err(e) => {
                c.fail("isbn", &e.to_string());
                None
            }
        },
        None => None,
    };
    let item_type = match input.item_type.as_deref().map(str::trim) {
        None | Some("") => "book".to_owned(),
        // Whether the type is defined is the caller's check (it needs the database).
        Some(t) if carrel_core::rules::is_valid_code(t) => t.to_owned(),
        Some(_) => {
            c.fail("item_type", carrel_core::rules::CODE_RULE);
            "book".to_owned()
        }
    };
    let publisher = c.text("publisher", input.publisher, 200);
    if let Some(year) = input.publication_year
        && !(MIN_YEAR..=max_year).contains(&year)
    {
        c.fail(
            "publication_year",
            &format!("must be between {MIN_YEAR} and {max_year}"),
        );
    }
    let language = match c.text("language", input.language, 3) {
        Some(l) if (2..=3).contains(&l.len()) && l.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            Some(l.to_ascii_lowercase())
        }
        Some(_) => {
            c.fail("language", "must be an ISO 639 code such as en or fre");
            None
        }
        None => None,
    };
    let subjects = c.list("subjects", input.subjects, 20, 100);
    let description = c.text("description", input.description, 5_000);
    match title {
        Some(title) if c.bad.is_empty() => Ok(ItemFields {
            title,
            subtitle,
            authors,
            isbn,
            item_type,
            publisher,
            publication_year: input.publication_year,
            language,
            subjects,
            description,
        }),
        _ => Err(InvalidFields(c.bad)),
    }
}

/// The current fields of a stored item, as input for merging a PATCH.
pub fn input_from(row: &ItemRow) -> ItemInput {
    ItemInput {
        title: Some(row.title.clone()),
        subtitle: row.subtitle.clone(),
        authors: Some(row.authors.0.clone()),
        isbn: row.isbn.clone(),
        item_type: Some(row.item_type.clone()),
        publisher: row.publisher.clone(),
        publication_year: row.publication_year,
        language: row.language.clone(),
        subjects: Some(row.subjects.0.clone()),
        description: row.description.clone(),
    }
}

/// Barcodes: 1–64 printable ASCII characters without spaces.
fn barcode(c: &mut Check, raw: &str) -> Option<String> {
    let value = raw.trim();
    if value.is_empty() || value.len() > 64 || !value.chars().all(|ch| ch.is_ascii_graphic()) {
        c.fail(
            "barcode",
            "must be 1–64 printable characters without spaces",
        );
        return None;
    }
    Some(value.to_owned())
}

pub fn validate_new_copy(
    raw_barcode: &str,
    location: Option<String>,
    call_number: Option<String>,
) -> Result<NewCopy, InvalidFields> {
    let mut c = Check { bad: Vec::new() };
    let barcode = barcode(&mut c, raw_barcode);
    let location = c.text("location", location, 200);
    let call_number = c.text("call_number", call_number, 100);
    match barcode {
        Some(barcode) if c.bad.is_empty() => Ok(NewCopy {
            barcode,
            branch_id: None,
            location,
            call_number,
        }),
        _ => Err(InvalidFields(c.bad)),
    }
}

pub fn validate_copy_changes(
    raw_barcode: Option<String>,
    location: Option<Option<String>>,
    call_number: Option<Option<String>>,
    status: Option<String>,
) -> Result<CopyChanges, InvalidFields> {
    let mut c = Check { bad: Vec::new() };
    let barcode = raw_barcode.and_then(|b| barcode(&mut c, &b));
    let location = location.map(|l| c.text("location", l, 200));
    let call_number = call_number.map(|n| c.text("call_number", n, 100));
    let status = match status.map(|s| s.parse::<CopyStatus>()) {
        Some(Ok(s)) if SETTABLE_COPY_STATUSES.contains(&s) => Some(s),
        Some(_) => {
            c.fail("status", "must be one of available, lost, damaged, withdrawn (circulation sets on_loan and on_hold_shelf)");
            None
        }
        None => None,
    };
    if c.bad.is_empty() {
        Ok(CopyChanges {
            barcode,
            location,
            call_number,
            status,
            branch_id: None,
        })
    } else {
        Err(InvalidFields(c.bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(title: &str) -> ItemInput {
        ItemInput {
            title: Some(title.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_minimal_item_is_a_book() {
        let fields = validate_item(input("  Moby-Dick  "), 2027).unwrap();
        assert_eq!(fields.title, "Moby-Dick");
        assert_eq!(fields.item_type, "book");
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = ItemInput {
            title: Some("   ".into()),
            isbn: Some("978-0-306-40615-8".into()),
            item_type: Some("Scroll!".into()),
            publication_year: Some(3000),
            language: Some("english".into()),
            subjects: Some(vec!["a|b".into()]),
            ..Default::default()
        };
        let Err(InvalidFields(fields)) = validate_item(bad, 2027) else {
            panic!("expected invalid fields")
        };
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        for name in [
            "title",
            "isbn",
            "item_type",
            "publication_year",
            "language",
            "subjects",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
    }

    #[test]
    fn isbns_are_normalised_and_lists_deduplicated() {
        let mut i = input("Opticks");
        i.isbn = Some("0-306-40615-2".into());
        i.subjects = Some(vec!["Optics".into(), "optics".into(), " Physics ".into()]);
        let fields = validate_item(i, 2027).unwrap();
        assert_eq!(fields.isbn.as_deref(), Some("9780306406157"));
        assert_eq!(fields.subjects, ["Optics", "Physics"]);
    }

    #[test]
    fn copy_statuses_owned_by_circulation_cannot_be_set() {
        assert!(validate_copy_changes(None, None, None, Some("on_loan".into())).is_err());
        assert!(validate_copy_changes(None, None, None, Some("damaged".into())).is_ok());
        for settable in SETTABLE_COPY_STATUSES {
            let changes =
                validate_copy_changes(None, None, None, Some(settable.as_str().into())).unwrap();
            assert_eq!(changes.status, Some(settable));
        }
        for refused in ["on_hold_shelf", "in_transit", "Damaged", "broken", ""] {
            assert!(
                validate_copy_changes(None, None, None, Some(refused.into())).is_err(),
                "{refused:?}"
            );
        }
        assert!(validate_new_copy("has space", None, None).is_err());
        assert!(validate_new_copy("BC-0001", Some("Stacks".into()), None).is_ok());
    }
}
