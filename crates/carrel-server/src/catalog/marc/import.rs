//! The import engine shared by `carrel catalog import` and import jobs.
//!
//! A blocking thread reads the file one record at a time, maps each record and
//! validates it with the JSON API's own rules (`catalog::fields`), and hands
//! batches over a bounded channel, so memory stays at a few batches whatever the
//! file's size. The async side decides each record against the catalog (one
//! lookup per batch) and writes the batch in one transaction
//! ([`Store::write_import_batch`]), together with the job's progress. A batch
//! refused by a unique index (a concurrent edit) is redone one record per
//! transaction, so only the culprit fails.
//!
//! Counting: `created`, `updated`, `skipped` (matched and nothing changed, or
//! could not be created because its ISBN is taken), `failed` (unreadable,
//! unmappable or invalid, or with a new copy whose 952 $a names no branch).
//! Cuts and left-out copies are reported too, without changing the count.
//!
//! Branches: a 952 $a is matched exactly against the branch codes (read once
//! when the import starts); a holding without one goes to MAIN. A record that
//! would add a copy at an unknown code fails whole, with the code in its reason:
//! placing the copy at MAIN would put it on the wrong shelf for holds and
//! returns, and moving many copies by hand is worse than creating the branch
//! and re-running the import (which only does the records that failed).
//! `--dry-run` lists every unknown code before anything is written.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use carrel_core::Clock;
use carrel_marc::{Iso2709Reader, MarcXmlReader, ReadError, Record};
use carrel_store::{
    Copy, ImportBatch, ImportCounts, ImportIssue, ImportLookup, ImportProgress, ImportWrite,
    ImportedItem, ItemFields, ItemRow, NewCopy, Store, StoreError, StoredRecord,
};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    BranchCodes, Format, LIMITS, MatchMode, control_value, export_item, iso2709_bytes,
    stored_record,
};
use crate::catalog::fields::{self, ItemInput, MIN_YEAR};

/// Records per transaction.
pub const DEFAULT_BATCH: usize = 500;

/// How one import runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub format: Format,
    pub match_mode: MatchMode,
    /// Decide every record but write nothing.
    pub dry_run: bool,
    /// Named in the item history (None for the command line).
    pub actor: Option<Uuid>,
    pub batch_size: usize,
    /// The job whose progress each batch commits.
    pub job: Option<Job>,
    /// Committed totals to carry on from: records up to `resume.processed` are skipped.
    pub resume: ImportCounts,
}

impl Settings {
    pub fn new(format: Format, match_mode: MatchMode) -> Self {
        Settings {
            format,
            match_mode,
            dry_run: false,
            actor: None,
            batch_size: DEFAULT_BATCH,
            job: None,
            resume: ImportCounts::default(),
        }
    }
}

/// An import job's identity and lease.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub import_id: Uuid,
    pub holder: Uuid,
    pub lease_ttl: time::Duration,
}

/// Told about progress after each committed batch.
pub trait Observer: Send {
    /// A reported record (failed, skipped for a reason, or cut).
    fn issue(&mut self, _issue: &ImportIssue) {}
    /// Totals so far and bytes of the file read.
    fn progress(&mut self, _counts: &ImportCounts, _bytes_read: u64) {}
}

/// Observes nothing.
#[derive(Debug, Default)]
pub struct Quiet;
impl Observer for Quiet {}

/// Why an import stopped before the end of its file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Read(String),
    #[error("another instance has taken over this import")]
    LeaseLost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One record, read and mapped.
#[derive(Debug)]
struct Prepared {
    index: u64,
    control_number: Option<String>,
    notes: Vec<String>,
    body: Result<Box<Mapped>, String>,
}

#[derive(Debug)]
struct Mapped {
    fields: ItemFields,
    copies: Vec<NewCopy>,
    /// `(barcode, 952 $a)` of the copies whose branch code is unknown.
    unknown_branches: Vec<(String, String)>,
    record: Record,
    stored: StoredRecord,
}

enum Message {
    Batch(Vec<Prepared>),
    Fatal(String),
}

/// Counts the bytes read through it, for progress and ETA.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Which reader a file needs: `<` (after blanks and a byte-order mark) is MARCXML.
fn detect(input: &mut impl BufRead) -> std::io::Result<Format> {
    let head = input.fill_buf()?;
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    Ok(match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Format::MarcXml,
        _ => Format::Marc,
    })
}

/// Counts the records of a file quickly, without parsing them (ISO 2709: record
/// terminators; MARCXML: closing record tags). For the job's `total`.
pub fn count_records(path: &std::path::Path, format: Format) -> std::io::Result<u64> {
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let format = match format {
        Format::Auto => detect(&mut input)?,
        f => f,
    };
    let mut count = 0u64;
    match format {
        Format::MarcXml => {
            // `</record>` or `</prefix:record>`; a tail kept across buffer ends.
            let mut carry: Vec<u8> = Vec::new();
            loop {
                let buf = input.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                let mut window = std::mem::take(&mut carry);
                window.extend_from_slice(buf);
                let n = buf.len();
                input.consume(n);
                let mut i = 0;
                while let Some(p) = window[i..].iter().position(|&b| b == b'<') {
                    let start = i + p;
                    let rest = &window[start..];
                    if rest.len() < 64 && !rest.contains(&b'>') {
                        carry = rest.to_vec();
                        break;
                    }
                    if rest.starts_with(b"</") {
                        let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
                        let name = &rest[2..end];
                        let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
                        if local.trim_ascii() == b"record" {
                            count += 1;
                        }
                    }
                    i = start + 1;
                }
            }
        }
        _ => {
            // A truncated last record (data after the last terminator) counts too.
            let mut tail = false;
            loop {
                let buf = input.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                for &b in buf {
                    if b == 0x1D {
                        count += 1;
                        tail = false;
                    } else if !b.is_ascii_whitespace() && b != 0 && b != 0x1A {
                        tail = true;
                    }
                }
                let n = buf.len();
                input.consume(n);
            }
            count += u64::from(tail);
        }
    }
    Ok(count)
}

/// The reader thread: parses, maps and validates, `batch` records a message.
fn read_records(
    input: Box<dyn Read + Send>,
    format: Format,
    skip_through: u64,
    batch: usize,
    rules: MapRules,
    read: Arc<AtomicU64>,
    tx: mpsc::Sender<Message>,
) {
    let mut input = BufReader::with_capacity(256 * 1024, Counting { inner: input, read });
    let format = match format {
        Format::Auto => match detect(&mut input) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Message::Fatal(e.to_string()));
                return;
            }
        },
        f => f,
    };
    let records: Box<dyn Iterator<Item = Result<Record, ReadError>>> = match format {
        Format::MarcXml => Box::new(MarcXmlReader::from_buf_read(input)),
        _ => Box::new(Iso2709Reader::new(input)),
    };
    let mut pending = Vec::with_capacity(batch);
    let mut index = 0u64;
    for result in records {
        let prepared = match result {
            Ok(record) => {
                index += 1;
                if index <= skip_through {
                    continue;
                }
                prepare(index, record, &rules)
            }
            Err(error) => {
                if let carrel_marc::ReadErrorKind::Io(io) = &error.kind {
                    let _ = tx.blocking_send(Message::Fatal(io.to_string()));
                    return;
                }
                // Malformed XML ends the file: this record is reported, and the reader stops.
                index = error.index.max(index + 1);
                if index <= skip_through {
                    continue;
                }
                Prepared {
                    index,
                    control_number: error.control_number.clone(),
                    notes: Vec::new(),
                    body: Err(error.reason()),
                }
            }
        };
        pending.push(prepared);
        if pending.len() >= batch
            && tx
                .blocking_send(Message::Batch(std::mem::replace(
                    &mut pending,
                    Vec::with_capacity(batch),
                )))
                .is_err()
        {
            return;
        }
    }
    if !pending.is_empty() {
        let _ = tx.blocking_send(Message::Batch(pending));
    }
}

/// What mapping a record needs besides the record.
struct MapRules {
    /// The latest publication year accepted.
    max_year: i32,
    branches: Arc<BranchCodes>,
}

/// Maps one record and validates it as the JSON API would.
fn prepare(index: u64, record: Record, rules: &MapRules) -> Prepared {
    let (max_year, branches) = (rules.max_year, &rules.branches);
    let control_number = control_value(&record, "001");
    let failed = |reason: String, notes| Prepared {
        index,
        control_number: control_number.clone(),
        notes,
        body: Err(reason),
    };
    let mapped = match carrel_marc::map_record(&record, &LIMITS) {
        Ok(m) => m,
        Err(e) => return failed(e.to_string(), Vec::new()),
    };
    let mut notes: Vec<String> = mapped.notes.iter().map(ToString::to_string).collect();
    let m = mapped.record;
    // `|` separates list entries in Carrel's search keys; no name needs it.
    let mut piped = false;
    let mut unpipe = |list: Vec<String>| -> Vec<String> {
        list.into_iter()
            .map(|v| {
                if v.contains('|') {
                    piped = true;
                    v.replace('|', "/")
                } else {
                    v
                }
            })
            .collect()
    };
    let authors = unpipe(m.authors);
    let subjects = unpipe(m.subjects);
    if piped {
        notes.push("'|' in authors or subjects written as '/'".to_owned());
    }
    let publication_year = match m.publication_year {
        Some(y) if !(MIN_YEAR..=max_year).contains(&y) => {
            notes.push(format!(
                "publication year {y} is outside {MIN_YEAR}–{max_year}; left out"
            ));
            None
        }
        y => y,
    };
    let language = match m.language {
        Some(l) if l.len() == 3 && l.chars().all(|c| c.is_ascii_alphabetic()) => Some(l),
        Some(l) => {
            notes.push(format!(
                "language {l:?} is not a MARC language code; left out"
            ));
            None
        }
        None => None,
    };
    let input = ItemInput {
        title: Some(m.title),
        subtitle: m.subtitle,
        authors: Some(authors),
        isbn: m.isbn,
        item_type: Some(m.item_type),
        publisher: m.publisher,
        publication_year,
        language,
        subjects: Some(subjects),
        description: m.description,
    };
    let fields = match fields::validate_item(input, max_year) {
        Ok(f) => f,
        Err(fields::InvalidFields(bad)) => {
            let list: Vec<String> = bad.iter().map(|(f, r)| format!("{f} {r}")).collect();
            return failed(format!("invalid fields: {}", list.join("; ")), notes);
        }
    };
    let mut copies: Vec<NewCopy> = Vec::new();
    let mut unknown_branches = Vec::new();
    for holding in m.holdings {
        let Some(barcode) = holding.barcode.filter(|b| !b.trim().is_empty()) else {
            notes.push("a holding without a barcode was not added as a copy".to_owned());
            continue;
        };
        match fields::validate_new_copy(&barcode, None, holding.call_number) {
            Ok(copy) if copies.iter().any(|c| c.barcode == copy.barcode) => {
                notes.push(format!("barcode {:?} appears twice; one copy added", copy.barcode));
            }
            Ok(mut copy) => {
                match holding.branch_code {
                    None => {}
                    Some(code) => match branches.id_of(&code) {
                        Some(id) => copy.branch_id = Some(id),
                        None => unknown_branches.push((copy.barcode.clone(), code)),
                    },
                }
                copies.push(copy);
            }
            Err(_) => notes.push(format!(
                "barcode {barcode:?} is not 1–64 printable characters without spaces; copy not added"
            )),
        }
    }
    let stored = match stored_record(&record) {
        Ok(s) => s,
        Err(reason) => return failed(reason, notes),
    };
    Prepared {
        index,
        control_number,
        notes,
        body: Ok(Box::new(Mapped {
            fields,
            copies,
            unknown_branches,
            record,
            stored,
        })),
    }
}

/// Imports `input`. Returns the totals (including `settings.resume`).
pub async fn run(
    store: &Store,
    clock: &Clock,
    input: Box<dyn Read + Send>,
    settings: &Settings,
    observer: &mut dyn Observer,
) -> Result<ImportCounts, ImportError> {
    let read = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::channel(2);
    let max_year = clock.now().year() + 1;
    let branches = Arc::new(BranchCodes::load(store).await?);
    let reader = {
        let (format, skip, batch, read) = (
            settings.format,
            u64::try_from(settings.resume.processed).unwrap_or(0),
            settings.batch_size.max(1),
            read.clone(),
        );
        let rules = MapRules {
            max_year,
            branches: branches.clone(),
        };
        tokio::task::spawn_blocking(move || {
            read_records(input, format, skip, batch, rules, read, tx)
        })
    };
    let mut counts = settings.resume;
    let result = async {
        while let Some(message) = rx.recv().await {
            let batch = match message {
                Message::Batch(batch) => batch,
                Message::Fatal(reason) => return Err(ImportError::Read(reason)),
            };
            for group in split_on_repeats(batch) {
                write_group(
                    store,
                    clock,
                    settings,
                    &branches,
                    group,
                    &mut counts,
                    observer,
                )
                .await?;
                observer.progress(&counts, read.load(Ordering::Relaxed));
            }
        }
        Ok(())
    }
    .await;
    // Stops the reader (its sends fail) before waiting for it.
    drop(rx);
    let _ = reader.await;
    result.map(|()| counts)
}

/// Splits a batch where a record repeats an ISBN, control number or barcode of
/// an earlier record in it, so each part can be decided against the catalog as
/// committed before it.
fn split_on_repeats(batch: Vec<Prepared>) -> Vec<Vec<Prepared>> {
    let mut groups: Vec<Vec<Prepared>> = Vec::new();
    let mut current: Vec<Prepared> = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    for p in batch {
        let mut own: Vec<String> = Vec::new();
        if let Ok(m) = &p.body {
            if let Some(isbn) = &m.fields.isbn {
                own.push(format!("i:{isbn}"));
            }
            match &m.stored.control_number {
                Some(cn) => own.push(format!(
                    "c:{cn}\u{1f}{}",
                    m.stored.control_number_identifier
                )),
                None => own.push(format!("f:{}", m.stored.fingerprint)),
            }
            own.extend(m.copies.iter().map(|c| format!("b:{}", c.barcode)));
        }
        if own.iter().any(|k| keys.contains(k)) {
            groups.push(std::mem::take(&mut current));
            keys.clear();
        }
        keys.extend(own);
        current.push(p);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// What happens to one record.
enum Decision {
    Write(Box<ImportWrite>),
    Skip(Option<String>),
    Fail(String),
}

/// The catalog as one lookup saw it, indexed.
struct Seen<'a> {
    by_isbn: HashMap<&'a str, &'a ItemRow>,
    by_id: HashMap<Uuid, &'a ItemRow>,
    by_control: HashMap<(&'a str, &'a str), Uuid>,
    by_fingerprint: HashMap<&'a str, Uuid>,
    records: HashMap<Uuid, &'a StoredRecord>,
    copies: HashMap<Uuid, Vec<&'a Copy>>,
    barcodes: HashMap<&'a str, Uuid>,
}

impl<'a> Seen<'a> {
    fn new(lookup: &'a ImportLookup) -> Self {
        let mut by_control = HashMap::new();
        for (cn, cni, id) in &lookup.control_numbers {
            by_control.entry((cn.as_str(), cni.as_str())).or_insert(*id);
        }
        let mut copies: HashMap<Uuid, Vec<&Copy>> = HashMap::new();
        for c in &lookup.copies {
            copies.entry(c.item_id).or_default().push(c);
        }
        Seen {
            by_isbn: lookup
                .items
                .iter()
                .filter_map(|i| i.isbn.as_deref().map(|isbn| (isbn, i)))
                .collect(),
            by_id: lookup.items.iter().map(|i| (i.id, i)).collect(),
            by_control,
            by_fingerprint: lookup
                .fingerprints
                .iter()
                .rev()
                .map(|(f, id)| (f.as_str(), *id))
                .collect(),
            records: lookup.records.iter().map(|(id, r)| (*id, r)).collect(),
            copies,
            barcodes: lookup
                .barcodes
                .iter()
                .map(|(b, id)| (b.as_str(), *id))
                .collect(),
        }
    }

    /// By 001 (+003); a record without 001 by its exact bytes.
    fn by_control_number(&self, stored: &StoredRecord) -> Option<&'a ItemRow> {
        let Some(cn) = stored.control_number.as_deref() else {
            let id = self.by_fingerprint.get(stored.fingerprint.as_str())?;
            return self.by_id.get(id).copied();
        };
        if let Some(id) = self
            .by_control
            .get(&(cn, stored.control_number_identifier.as_str()))
        {
            return self.by_id.get(id).copied();
        }
        // Items created through the API, or imported without 001, export their id as 001.
        let id = Uuid::parse_str(cn).ok()?;
        self.by_id.get(&id).copied().filter(|item| {
            self.records
                .get(&item.id)
                .is_none_or(|r| r.control_number.is_none())
        })
    }
}

fn decide(
    mode: MatchMode,
    seen: &Seen<'_>,
    branches: &BranchCodes,
    index: u64,
    m: &Mapped,
    notes: &mut Vec<String>,
) -> Decision {
    let matched = match mode {
        MatchMode::Isbn => match &m.fields.isbn {
            Some(isbn) => seen.by_isbn.get(isbn.as_str()).copied(),
            None => seen.by_control_number(&m.stored),
        },
        MatchMode::ControlNumber => seen.by_control_number(&m.stored),
        MatchMode::None => None,
    };
    let Some(item) = matched else {
        if let Some(isbn) = &m.fields.isbn
            && seen.by_isbn.contains_key(isbn.as_str())
        {
            return Decision::Skip(Some(format!(
                "an item with ISBN {isbn} already exists (ISBNs are unique)"
            )));
        }
        let copies = new_copies(seen, None, &m.copies, notes);
        if let Some(reason) = unknown_branch(m, &copies) {
            return Decision::Fail(reason);
        }
        return Decision::Write(Box::new(ImportWrite::Create {
            index,
            item: ImportedItem {
                fields: m.fields.clone(),
                copies,
                record: m.stored.clone(),
            },
        }));
    };
    if item.deleted_at.is_some() {
        return Decision::Skip(Some(format!(
            "matches the deleted item {}; restore it to update it",
            item.id
        )));
    }
    let changed = changed_fields(&m.fields, item);
    let copies = new_copies(seen, Some(item.id), &m.copies, notes);
    if let Some(reason) = unknown_branch(m, &copies) {
        return Decision::Fail(reason);
    }
    let stored = seen.records.get(&item.id).copied();
    let same_record = match stored {
        Some(s) if s.format == m.stored.format && s.record == m.stored.record => true,
        // What Carrel would export for the item now (a re-imported export).
        _ => {
            let current: Vec<Copy> = seen
                .copies
                .get(&item.id)
                .map(|c| c.iter().map(|c| (*c).clone()).collect())
                .unwrap_or_default();
            match export_item(item, &current, stored, branches) {
                Ok(exported) => {
                    let a = iso2709_bytes(&exported);
                    a.is_some() && a == iso2709_bytes(&m.record)
                }
                Err(_) => false,
            }
        }
    };
    if changed.is_empty() && copies.is_empty() && same_record {
        return Decision::Skip(None);
    }
    Decision::Write(Box::new(ImportWrite::Update {
        index,
        item_id: item.id,
        fields: (!changed.is_empty()).then(|| (m.fields.clone(), changed)),
        copies,
        record: (!same_record).then(|| m.stored.clone()),
    }))
}

/// Why a record cannot be written: a copy it adds names an unknown branch.
/// (A copy already there keeps its branch, so its 952 $a does not matter.)
fn unknown_branch(m: &Mapped, new: &[NewCopy]) -> Option<String> {
    let codes: Vec<String> = m
        .unknown_branches
        .iter()
        .filter(|(barcode, _)| new.iter().any(|c| c.barcode == *barcode))
        .map(|(barcode, code)| format!("{code:?} (copy {barcode:?})"))
        .collect();
    (!codes.is_empty()).then(|| {
        format!(
            "952 $a names no branch: {}; create the branch (codes are case-sensitive) and import again",
            codes.join(", ")
        )
    })
}

/// The copies of a record that are not there yet. A barcode of another item
/// is left out (and reported); one of this item is already there.
fn new_copies(
    seen: &Seen<'_>,
    item: Option<Uuid>,
    copies: &[NewCopy],
    notes: &mut Vec<String>,
) -> Vec<NewCopy> {
    copies
        .iter()
        .filter(|c| match seen.barcodes.get(c.barcode.as_str()) {
            None => true,
            Some(owner) if Some(*owner) == item => false,
            Some(_) => {
                notes.push(format!(
                    "barcode {:?} belongs to another item; copy not added",
                    c.barcode
                ));
                false
            }
        })
        .cloned()
        .collect()
}

fn changed_fields(f: &ItemFields, item: &ItemRow) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, same: bool| {
        if !same {
            changed.push(name);
        }
    };
    check("title", f.title == item.title);
    check("subtitle", f.subtitle == item.subtitle);
    check("authors", f.authors == item.authors.0);
    check("isbn", f.isbn == item.isbn);
    check("item_type", f.item_type == item.item_type);
    check("publisher", f.publisher == item.publisher);
    check(
        "publication_year",
        f.publication_year == item.publication_year,
    );
    check("language", f.language == item.language);
    check("subjects", f.subjects == item.subjects.0);
    check("description", f.description == item.description);
    changed
}

/// A record's outcome and everything reported about it.
struct Outcome {
    write: Option<ImportWrite>,
    issues: Vec<ImportIssue>,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Created,
    Updated,
    Skipped,
    Failed,
}

fn add(counts: &mut ImportCounts, index: u64, kind: Kind) {
    counts.processed = i64::try_from(index).unwrap_or(i64::MAX);
    match kind {
        Kind::Created => counts.created += 1,
        Kind::Updated => counts.updated += 1,
        Kind::Skipped => counts.skipped += 1,
        Kind::Failed => counts.failed += 1,
    }
}

async fn plan(
    store: &Store,
    mode: MatchMode,
    branches: &BranchCodes,
    group: &[Prepared],
) -> Result<Vec<Outcome>, StoreError> {
    let mut isbns = Vec::new();
    let mut control_numbers = Vec::new();
    let mut ids = Vec::new();
    let mut barcodes = Vec::new();
    let mut fingerprints = Vec::new();
    for m in group.iter().filter_map(|p| p.body.as_ref().ok()) {
        if m.stored.control_number.is_none() {
            fingerprints.push(m.stored.fingerprint.clone());
        }
        isbns.extend(m.fields.isbn.clone());
        if let Some(cn) = &m.stored.control_number {
            control_numbers.push(cn.clone());
            ids.extend(Uuid::parse_str(cn).ok());
        }
        barcodes.extend(m.copies.iter().map(|c| c.barcode.clone()));
    }
    let lookup = store
        .import_lookup(&isbns, &control_numbers, &ids, &barcodes, &fingerprints)
        .await?;
    let seen = Seen::new(&lookup);
    Ok(group
        .iter()
        .map(|p| {
            let mut notes = p.notes.clone();
            let (write, kind, reason) = match &p.body {
                Err(reason) => (None, Kind::Failed, Some(reason.clone())),
                Ok(m) => match decide(mode, &seen, branches, p.index, m, &mut notes) {
                    Decision::Write(w) => {
                        let kind = match *w {
                            ImportWrite::Create { .. } => Kind::Created,
                            ImportWrite::Update { .. } => Kind::Updated,
                        };
                        (Some(*w), kind, None)
                    }
                    Decision::Skip(reason) => (None, Kind::Skipped, reason),
                    Decision::Fail(reason) => (None, Kind::Failed, Some(reason)),
                },
            };
            let issues = reason
                .into_iter()
                .chain(notes)
                .map(|reason| ImportIssue {
                    index: p.index,
                    control_number: p.control_number.clone(),
                    reason,
                })
                .collect();
            Outcome {
                write,
                issues,
                kind,
            }
        })
        .collect())
}

async fn commit(
    store: &Store,
    clock: &Clock,
    settings: &Settings,
    writes: &[ImportWrite],
    issues: &[ImportIssue],
    counts: ImportCounts,
) -> Result<(), StoreError> {
    let now = clock.now();
    if settings.job.is_none() && writes.is_empty() {
        return Ok(());
    }
    store
        .write_import_batch(&ImportBatch {
            writes,
            issues,
            progress: settings.job.map(|job| ImportProgress {
                import_id: job.import_id,
                holder: job.holder,
                counts,
                lease_until: now + job.lease_ttl,
            }),
            import_id: settings.job.map(|j| j.import_id),
            actor: settings.actor,
            now,
        })
        .await
}

fn lease_lost(error: StoreError) -> ImportError {
    match error {
        StoreError::Refused(_) => ImportError::LeaseLost,
        other => ImportError::Store(other),
    }
}

async fn write_group(
    store: &Store,
    clock: &Clock,
    settings: &Settings,
    branches: &BranchCodes,
    group: Vec<Prepared>,
    counts: &mut ImportCounts,
    observer: &mut dyn Observer,
) -> Result<(), ImportError> {
    let outcomes = plan(store, settings.match_mode, branches, &group).await?;
    let mut after = *counts;
    let mut writes = Vec::new();
    let mut issues = Vec::new();
    for (p, o) in group.iter().zip(&outcomes) {
        add(&mut after, p.index, o.kind);
        writes.extend(o.write.clone());
        issues.extend(o.issues.iter().cloned());
    }
    if settings.dry_run {
        *counts = after;
        issues.iter().for_each(|i| observer.issue(i));
        return Ok(());
    }
    match commit(store, clock, settings, &writes, &issues, after).await {
        Ok(()) => {
            *counts = after;
            issues.iter().for_each(|i| observer.issue(i));
            return Ok(());
        }
        // A unique index or a deleted match: someone changed the catalog since
        // the lookup. Redo the batch one record at a time.
        Err(StoreError::Conflict { .. } | StoreError::NotFound) => {}
        Err(other) => return Err(lease_lost(other)),
    }
    for p in group {
        let single = std::slice::from_ref(&p);
        let mut outcome = plan(store, settings.match_mode, branches, single)
            .await?
            .pop()
            .ok_or(ImportError::Read("empty plan".to_owned()))?;
        let mut next = *counts;
        add(&mut next, p.index, outcome.kind);
        let writes: Vec<ImportWrite> = outcome.write.iter().cloned().collect();
        match commit(store, clock, settings, &writes, &outcome.issues, next).await {
            Ok(()) => {}
            Err(error @ (StoreError::Conflict { .. } | StoreError::NotFound)) => {
                let reason = match &error {
                    StoreError::Conflict { constraint } if constraint.contains("isbn") => {
                        "an item with this ISBN was created meanwhile".to_owned()
                    }
                    StoreError::Conflict { constraint } if constraint.contains("barcode") => {
                        "a copy with one of its barcodes was created meanwhile".to_owned()
                    }
                    StoreError::NotFound => "the matched item was deleted meanwhile".to_owned(),
                    other => other.to_string(),
                };
                outcome.issues.insert(
                    0,
                    ImportIssue {
                        index: p.index,
                        control_number: p.control_number.clone(),
                        reason,
                    },
                );
                next = *counts;
                add(&mut next, p.index, Kind::Failed);
                commit(store, clock, settings, &[], &outcome.issues, next)
                    .await
                    .map_err(lease_lost)?;
            }
            Err(other) => return Err(lease_lost(other)),
        }
        *counts = next;
        outcome.issues.iter().for_each(|i| observer.issue(i));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_records_of_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("a.xml");
        std::fs::write(
            &xml,
            "<?xml version=\"1.0\"?>\n<marc:collection xmlns:marc=\"x\"><marc:record></marc:record>\n<marc:record></marc:record ></marc:collection>",
        )
        .unwrap();
        assert_eq!(count_records(&xml, Format::Auto).unwrap(), 2);
        let mrc = dir.path().join("a.mrc");
        std::fs::write(&mrc, b"00000\x1d00000\x1d\n").unwrap();
        assert_eq!(count_records(&mrc, Format::Auto).unwrap(), 2);
        std::fs::write(&mrc, b"00000\x1d00000\x1d00012").unwrap();
        assert_eq!(count_records(&mrc, Format::Auto).unwrap(), 3);
    }
}
