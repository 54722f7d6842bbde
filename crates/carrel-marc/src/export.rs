//! Carrel's current fields and copies written over the stored original record.
//!
//! Only what changed is rewritten: each Carrel field is compared with what the
//! stored record maps to (under the same limits), and the MARC fields behind it
//! are touched only when the two differ. So an item nobody edited exports as its
//! original record, fields Carrel does not model included, and an import of the
//! export gives the same Carrel fields back. Copies are always written as 952
//! (Koha: $a home branch, $o call number, $p barcode), replacing any 952.

use crate::mapping::{CatalogRecord, Holding, Limits, clean, map_record, trim_isbd};
use crate::record::{Field, Leader, Record, Subfield, Tag};

/// A tag for one of the literal MARC tags used below.
fn tag(t: &'static str) -> Tag {
    let b = t.as_bytes();
    Tag::literal([b[0], b[1], b[2]])
}

const AUTHOR_TAGS: [&str; 6] = ["100", "110", "111", "700", "710", "711"];
const SUBJECT_TAGS: [&str; 6] = ["600", "610", "611", "630", "650", "651"];

/// Builds the record to export for an item: `stored` (the record it was imported
/// from, if any) with `current` written over it. `current.holdings` are the
/// item's copies. `limits` must be the ones the import used.
pub fn export_record(stored: Option<&Record>, current: &CatalogRecord, limits: &Limits) -> Record {
    let mut record = stored
        .cloned()
        .unwrap_or_else(|| Record::new(Leader::new_book()));
    let before: CatalogRecord = stored
        .and_then(|r| map_record(r, limits).ok())
        .map(|m| m.record)
        .unwrap_or_default();

    if current.control_number.is_some() && current.control_number != before.control_number {
        set_control(&mut record, "001", current.control_number.as_deref());
    }
    if current.control_number_identifier.is_some()
        && current.control_number_identifier != before.control_number_identifier
    {
        set_control(
            &mut record,
            "003",
            current.control_number_identifier.as_deref(),
        );
    }
    if current.item_type != before.item_type {
        set_item_type(&mut record.leader, &current.item_type);
    }
    if current.publication_year != before.publication_year
        || current.language != before.language
        || record.control_value("008").is_none()
    {
        set_008(&mut record, current);
    }
    if current.isbn != before.isbn {
        set_isbn(&mut record, current.isbn.as_deref());
    }
    if current.authors != before.authors {
        set_authors(&mut record, &current.authors);
    }
    if current.title != before.title || current.subtitle != before.subtitle {
        set_title(
            &mut record,
            (current.title != before.title).then_some(current.title.as_str()),
            (current.subtitle != before.subtitle).then_some(current.subtitle.as_deref()),
            !current.authors.is_empty(),
        );
    }
    if current.publisher != before.publisher || current.publication_year != before.publication_year
    {
        set_publication(
            &mut record,
            (current.publisher != before.publisher).then_some(current.publisher.as_deref()),
            (current.publication_year != before.publication_year)
                .then_some(current.publication_year),
        );
    }
    if current.language != before.language {
        set_language_041(&mut record, current.language.as_deref());
    }
    if current.description != before.description {
        set_description(&mut record, current.description.as_deref());
    }
    if current.subjects != before.subjects {
        set_subjects(&mut record, &current.subjects);
    }
    set_holdings(&mut record, &current.holdings);
    record
}

fn set_control(record: &mut Record, t: &'static str, value: Option<&str>) {
    record.fields.retain(|f| f.tag().as_str() != t);
    if let Some(v) = value {
        record.insert_in_order(Field::control(tag(t), v));
    }
}

fn set_item_type(leader: &mut Leader, item_type: &str) {
    let (t, level) = match item_type {
        "book" => (b'a', b'm'),
        "magazine" => (b'a', b's'),
        "dvd" => (b'g', b'm'),
        "audiobook" => (b'i', b'm'),
        "ebook" => (b'm', b'm'),
        "other" => (b'p', b'm'),
        // A custom item type has no MARC equivalent: keep what the record says.
        _ => return,
    };
    leader.set(6, t);
    leader.set(7, level);
}

/// 008/07-10 (date 1) and 008/35-37 (language); a minimal 008 when there is none.
fn set_008(record: &mut Record, current: &CatalogRecord) {
    let existing = record.control_value("008").map(str::to_owned);
    let mut bytes: Vec<u8> = match existing {
        Some(v) if v.len() >= 40 && v.is_ascii() => v.into_bytes(),
        Some(_) | None => {
            // Date entered unknown (blank), type of date 's', place 'xx ', the rest
            // blank, cataloguing source 'd' (other).
            let mut b = vec![b' '; 40];
            b[6] = b's';
            b[7..11].copy_from_slice(b"uuuu");
            b[15..18].copy_from_slice(b"xx ");
            b[39] = b'd';
            b
        }
    };
    match current.publication_year {
        Some(year) if (1000..=9999).contains(&year) => {
            bytes[7..11].copy_from_slice(year.to_string().as_bytes());
        }
        // A year 008 cannot hold, or none: unknown, so it is not read back.
        _ => bytes[7..11].copy_from_slice(b"uuuu"),
    }
    match current.language.as_deref() {
        Some(code) if code.len() == 3 && code.is_ascii() => {
            bytes[35..38].copy_from_slice(code.as_bytes());
        }
        _ => bytes[35..38].copy_from_slice(b"   "),
    }
    let value = String::from_utf8(bytes).unwrap_or_default();
    set_control(record, "008", Some(&value));
}

fn set_language_041(record: &mut Record, language: Option<&str>) {
    // 008 carries the language now; an 041 $a that disagrees would win on
    // re-import only when 008 has none, so drop 041 when the language is cleared.
    if language.is_none() {
        record.fields.retain(|f| f.tag().as_str() != "041");
    }
}

fn isbn_of(field: &Field) -> Option<String> {
    field.values('a').find_map(|a| {
        let candidate = a
            .trim()
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
            .trim_end_matches([':', ';', '.', ',']);
        carrel_core::isbn::normalize_isbn(candidate).ok()
    })
}

fn set_isbn(record: &mut Record, isbn: Option<&str>) {
    // Every 020 with a valid ISBN goes (another one would be read back first);
    // 020s with only invalid or cancelled numbers stay.
    let first_020 = record.fields.iter().position(|f| f.tag().as_str() == "020");
    record
        .fields
        .retain(|f| !(f.tag().as_str() == "020" && isbn_of(f).is_some()));
    if let Some(isbn) = isbn {
        let field = Field::data(tag("020"), ' ', ' ', vec![Subfield::new('a', isbn)]);
        match first_020 {
            Some(at) => record.fields.insert(at.min(record.fields.len()), field),
            None => record.insert_in_order(field),
        }
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn set_authors(record: &mut Record, authors: &[String]) {
    // Fields of authors still listed are kept (with their dates and relator
    // terms); the first author becomes the main entry (1XX), the others added
    // entries (7XX), in Carrel's order; new names get 100 / 700 fields.
    let mut existing: Vec<(String, Field)> = Vec::new();
    let mut first_7xx: Option<usize> = None;
    let mut index = 0;
    record.fields.retain(|f| {
        let t = f.tag();
        let keep = !AUTHOR_TAGS.contains(&t.as_str());
        if !keep {
            if t.as_str().starts_with('7') && first_7xx.is_none() {
                first_7xx = Some(index);
            }
            if let Some(a) = f.first('a') {
                existing.push((trim_isbd(&clean(a)).to_owned(), f.clone()));
            }
        } else {
            index += 1;
        }
        keep
    });
    let mut added: Vec<Field> = Vec::new();
    for (i, name) in authors.iter().enumerate() {
        let found = existing
            .iter()
            .position(|(n, _)| same_name(n, name))
            .map(|p| existing.remove(p).1);
        let mut field = found
            .unwrap_or_else(|| Field::data(tag("700"), '1', ' ', vec![Subfield::new('a', name)]));
        let entry = field.tag().as_bytes()[1..].to_owned();
        let t = match (i == 0, entry.as_slice()) {
            (true, b"10") => "110",
            (true, b"11") => "111",
            (true, _) => "100",
            (false, b"10") => "710",
            (false, b"11") => "711",
            (false, _) => "700",
        };
        if let Field::Data { tag: ft, .. } = &mut field {
            *ft = tag(t);
        }
        added.push(field);
    }
    let mut added = added.into_iter();
    let main = added.next();
    // Added entries go where the old ones were, or in tag order; then the main entry.
    let at = first_7xx.unwrap_or_else(|| {
        record
            .fields
            .iter()
            .rposition(|f| f.tag().as_str() <= "700")
            .map_or(0, |i| i + 1)
    });
    for (k, f) in added.enumerate() {
        record.fields.insert((at + k).min(record.fields.len()), f);
    }
    if let Some(main) = main {
        record.insert_in_order(main);
    }
}

/// Rewrites 245: `title` replaces $a $n $p, `subtitle` replaces $b (each only
/// when given), then ISBD punctuation is set between $a, $b and $c.
fn set_title(
    record: &mut Record,
    title: Option<&str>,
    subtitle: Option<Option<&str>>,
    has_author: bool,
) {
    let position = record.fields.iter().position(|f| f.tag().as_str() == "245");
    let (indicators, mut subfields) = match position.map(|i| &record.fields[i]) {
        Some(Field::Data {
            indicators,
            subfields,
            ..
        }) => (*indicators, subfields.clone()),
        _ => ([if has_author { '1' } else { '0' }, '0'], Vec::new()),
    };
    if let Some(title) = title {
        subfields.retain(|s| !matches!(s.code, 'a' | 'n' | 'p'));
        subfields.insert(0, Subfield::new('a', title));
    }
    if let Some(subtitle) = subtitle {
        subfields.retain(|s| s.code != 'b');
        if let Some(sub) = subtitle {
            let after = subfields
                .iter()
                .rposition(|s| matches!(s.code, 'a' | 'n' | 'p'))
                .map_or(0, |i| i + 1);
            subfields.insert(after, Subfield::new('b', sub));
        }
    }
    // ISBD: "$a Title : $b subtitle / $c statement".
    for i in 0..subfields.len() {
        let next = subfields.get(i + 1).map(|s| s.code);
        let sf = &mut subfields[i];
        if !matches!(sf.code, 'a' | 'b' | 'n' | 'p') {
            continue;
        }
        let base = trim_isbd(&sf.value).to_owned();
        sf.value = match next {
            Some('b') if sf.code != 'b' => format!("{base} :"),
            Some('c') => format!("{base} /"),
            _ => base,
        };
    }
    let field = Field::Data {
        tag: tag("245"),
        indicators,
        subfields,
    };
    match position {
        Some(i) => record.fields[i] = field,
        None => record.insert_in_order(field),
    }
}

/// The first 264 (2nd indicator 1), else the first 260, else a new 264 _1.
fn set_publication(
    record: &mut Record,
    publisher: Option<Option<&str>>,
    year: Option<Option<i32>>,
) {
    let is_pub = |f: &Field| {
        (f.tag().as_str() == "264" && f.indicators()[1] == '1') || f.tag().as_str() == "260"
    };
    let target = record
        .fields
        .iter()
        .position(|f| f.tag().as_str() == "264" && f.indicators()[1] == '1')
        .or_else(|| record.fields.iter().position(|f| f.tag().as_str() == "260"));
    // Other publication fields must not supply a value on re-import.
    for (i, f) in record.fields.iter_mut().enumerate() {
        if Some(i) == target || !is_pub(f) {
            continue;
        }
        if let Field::Data { subfields, .. } = f {
            if publisher.is_some() {
                subfields.retain(|s| s.code != 'b');
            }
            if year.is_some() {
                subfields.retain(|s| s.code != 'c');
            }
        }
    }
    let index = match target {
        Some(i) => i,
        None => {
            if publisher.flatten().is_none() && year.flatten().is_none() {
                return;
            }
            record.insert_in_order(Field::data(tag("264"), ' ', '1', Vec::new()));
            match record
                .fields
                .iter()
                .position(|f| f.tag().as_str() == "264" && f.indicators()[1] == '1')
            {
                Some(i) => i,
                None => return,
            }
        }
    };
    if let Field::Data { subfields, .. } = &mut record.fields[index] {
        if let Some(publisher) = publisher {
            let at = subfields.iter().position(|s| s.code == 'b');
            subfields.retain(|s| s.code != 'b');
            if let Some(p) = publisher {
                let at = at
                    .unwrap_or_else(|| {
                        subfields
                            .iter()
                            .position(|s| s.code == 'c')
                            .unwrap_or(subfields.len())
                    })
                    .min(subfields.len());
                subfields.insert(at, Subfield::new('b', p));
            }
        }
        if let Some(year) = year {
            subfields.retain(|s| s.code != 'c');
            if let Some(y) = year {
                subfields.push(Subfield::new('c', y.to_string()));
            }
        }
        // ISBD between $a, $b and $c.
        for i in 0..subfields.len() {
            let next = subfields.get(i + 1).map(|s| s.code);
            let sf = &mut subfields[i];
            if !matches!(sf.code, 'a' | 'b') {
                continue;
            }
            let base = trim_isbd(&sf.value).to_owned();
            sf.value = match next {
                Some('b') => format!("{base} :"),
                Some('c') => format!("{base},"),
                _ => base,
            };
        }
    }
}

fn set_description(record: &mut Record, description: Option<&str>) {
    let Some(text) = description else {
        record.fields.retain(|f| f.tag().as_str() != "520");
        return;
    };
    if let Some(Field::Data { subfields, .. }) =
        record.fields.iter_mut().find(|f| f.tag().as_str() == "520")
    {
        match subfields.iter_mut().find(|s| s.code == 'a') {
            Some(a) => a.value = text.to_owned(),
            None => subfields.insert(0, Subfield::new('a', text)),
        }
        return;
    }
    record.insert_in_order(Field::data(
        tag("520"),
        ' ',
        ' ',
        vec![Subfield::new('a', text)],
    ));
}

fn subject_of(field: &Field) -> Option<String> {
    let a = field.first('a')?;
    let mut parts = vec![trim_isbd(&clean(a)).to_owned()];
    for sf in field.subfields() {
        if matches!(sf.code, 'x' | 'y' | 'z') {
            let part = trim_isbd(&clean(&sf.value)).to_owned();
            if !part.is_empty() {
                parts.push(part);
            }
        }
    }
    Some(parts.join(" -- "))
}

fn set_subjects(record: &mut Record, subjects: &[String]) {
    // Fields of subjects still listed are kept (with their other subfields) and
    // put in Carrel's order where the first subject field was; new ones are 650 _4.
    let mut existing: Vec<(String, Field)> = Vec::new();
    let mut first: Option<usize> = None;
    let mut index = 0;
    record.fields.retain(|f| {
        let subject = SUBJECT_TAGS
            .contains(&f.tag().as_str())
            .then(|| subject_of(f))
            .flatten();
        match subject {
            Some(s) => {
                first.get_or_insert(index);
                existing.push((s, f.clone()));
                false
            }
            // Not a subject, or a subject field without $a (maps to nothing): kept.
            None => {
                index += 1;
                true
            }
        }
    });
    let mut fields: Vec<Field> = Vec::new();
    for subject in subjects {
        let found = existing
            .iter()
            .position(|(s, _)| same_name(s, subject))
            .map(|p| existing.remove(p).1);
        fields.push(found.unwrap_or_else(|| {
            let mut parts = subject.split(" -- ");
            let mut subfields = vec![Subfield::new('a', parts.next().unwrap_or(subject))];
            subfields.extend(parts.map(|p| Subfield::new('x', p)));
            // Second indicator 4: source not specified.
            Field::data(tag("650"), ' ', '4', subfields)
        }));
    }
    let at = first.unwrap_or_else(|| {
        record
            .fields
            .iter()
            .rposition(|f| f.tag().as_str() <= "650")
            .map_or(0, |i| i + 1)
    });
    for (k, f) in fields.into_iter().enumerate() {
        record.fields.insert((at + k).min(record.fields.len()), f);
    }
}

fn set_holdings(record: &mut Record, holdings: &[Holding]) {
    record.fields.retain(|f| f.tag().as_str() != "952");
    for h in holdings {
        let mut subfields = Vec::new();
        if let Some(b) = &h.branch_code {
            subfields.push(Subfield::new('a', b));
        }
        if let Some(c) = &h.call_number {
            subfields.push(Subfield::new('o', c));
        }
        if let Some(b) = &h.barcode {
            subfields.push(Subfield::new('p', b));
        }
        if !subfields.is_empty() {
            record.insert_in_order(Field::data(tag("952"), ' ', ' ', subfields));
        }
    }
}
