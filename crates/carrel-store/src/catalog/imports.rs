//! MARC imports: the original record kept with each item, batched writes of
//! imported records, and import jobs with their reported records.
//!
//! An import writes through [`Store::write_import_batch`]: one transaction per
//! batch holding the items, their copies, their history entries, their stored
//! records, the records reported, and the job's progress. So an interruption
//! leaves whole batches, and `imports.processed` always names the last record
//! whose result is committed. The same unique indexes as the JSON API's writes
//! (ISBN, barcode) apply; a batch that hits one is refused whole, and the caller
//! retries it one record per transaction to find the culprit.
//!
//! The rows go through the catalog's one insert path (`catalog::write`, also
//! behind `create_item` and `bulk_create_items`): fixed-size multi-row INSERTs
//! on SQLite, `COPY` on PostgreSQL.

use carrel_core::statuses::ImportStatus;
use serde_json::json;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::items::{FTS_DELETE, FTS_INSERT, UNKNOWN_YEAR, bind_fields, item_columns};
use super::write::{CatalogWrite as _, CopyRow, EventRow};
use super::{Copy, ItemFields, ItemRow, NewCopy};
use crate::audit::append_audit_trail;
use crate::stored::Stored;
use crate::{AuditTrail, Backend, Store, StoreError};

/// SQLite: the page cache of the importing connection (KiB, negative).
const IMPORT_CACHE_SQLITE: &str = "PRAGMA cache_size = -65536";

/// Reported records per multi-row INSERT (5 bind parameters a row).
const ROWS_PER_INSERT: usize = 400;

/// The original MARC record of an item.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRecord {
    /// `marc` (ISO 2709, UTF-8) or `marcxml`.
    pub format: String,
    /// The record's bytes.
    pub record: Vec<u8>,
    /// 001.
    pub control_number: Option<String>,
    /// 003, `""` when the record has none.
    pub control_number_identifier: String,
    /// A hash of `record` (SHA-256, hex, 32 digits).
    pub fingerprint: String,
}

/// A stored record with its item.
#[derive(sqlx::FromRow)]
struct RecordRow {
    item_id: Uuid,
    #[sqlx(flatten)]
    stored: StoredRecord,
}

/// What an import needs to know about the catalog to decide each record of a
/// batch: the items its keys match, their copies and records, and who holds
/// its barcodes.
#[derive(Debug, Clone, Default)]
pub struct ImportLookup {
    /// Items whose ISBN or id was asked for, or whose stored record has one of
    /// the control numbers (soft-deleted ones included).
    pub items: Vec<ItemRow>,
    /// `(001, 003 or "", item id)` of the stored records with those control numbers.
    pub control_numbers: Vec<(String, String, Uuid)>,
    /// `(fingerprint, item id)` of the stored records with those fingerprints.
    pub fingerprints: Vec<(String, Uuid)>,
    /// The stored records of the items found.
    pub records: Vec<(Uuid, StoredRecord)>,
    /// The live copies of the items found.
    pub copies: Vec<Copy>,
    /// `(barcode, item id)` for every asked barcode already taken (withdrawn copies included).
    pub barcodes: Vec<(String, Uuid)>,
}

/// A new item from an imported record.
#[derive(Debug, Clone)]
pub struct ImportedItem {
    pub fields: ItemFields,
    pub copies: Vec<NewCopy>,
    pub record: StoredRecord,
}

/// One change an import makes.
#[derive(Debug, Clone)]
pub enum ImportWrite {
    /// Creates an item with its copies and record.
    Create { index: u64, item: ImportedItem },
    /// Changes a matched (live) item: its fields (with the names of those that
    /// changed), new copies, and its stored record.
    Update {
        index: u64,
        item_id: Uuid,
        fields: Option<(ItemFields, Vec<&'static str>)>,
        copies: Vec<NewCopy>,
        record: Option<StoredRecord>,
    },
}

impl ImportWrite {
    /// The 1-based index of the record in its file.
    pub fn index(&self) -> u64 {
        match self {
            ImportWrite::Create { index, .. } | ImportWrite::Update { index, .. } => *index,
        }
    }
}

/// A record the import reports: why it failed, was skipped, or was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportIssue {
    /// 1-based position in the file.
    pub index: u64,
    /// The record's 001, when known.
    pub control_number: Option<String>,
    pub reason: String,
}

/// The running totals of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// The index of the last record handled.
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
}

/// An import job's progress, committed with a batch. The write is refused when
/// `holder` no longer holds the job's lease (another instance took it over).
#[derive(Debug, Clone, Copy)]
pub struct ImportProgress {
    pub import_id: Uuid,
    pub holder: Uuid,
    /// Totals after this batch.
    pub counts: ImportCounts,
    /// The lease is extended to this instant.
    pub lease_until: OffsetDateTime,
}

/// One batch of an import, written in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct ImportBatch<'a> {
    pub writes: &'a [ImportWrite],
    /// Reported records, in record order.
    pub issues: &'a [ImportIssue],
    /// For import jobs; the CLI has none.
    pub progress: Option<ImportProgress>,
    /// Named in the item history entries.
    pub import_id: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub now: OffsetDateTime,
}

/// A new import job.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub id: Uuid,
    /// `auto`, `marc` or `marcxml`.
    pub format: String,
    /// `isbn`, `control-number` or `none`.
    pub match_mode: String,
    pub file_name: Option<String>,
    pub file_path: String,
    pub file_bytes: i64,
    pub created_by: Option<Uuid>,
}

/// A stored import job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    pub id: Uuid,
    /// A CHECK constraint holds it to the four statuses.
    #[sqlx(try_from = "Stored<ImportStatus>")]
    pub status: ImportStatus,
    pub format: String,
    pub match_mode: String,
    pub file_name: Option<String>,
    pub file_path: String,
    pub file_bytes: i64,
    pub total: Option<i64>,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
    /// Why the job failed (status `failed`).
    pub error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

impl ImportRow {
    /// The committed totals (where a resumed job carries on from).
    pub fn counts(&self) -> ImportCounts {
        ImportCounts {
            processed: self.processed,
            created: self.created,
            updated: self.updated,
            skipped: self.skipped,
            failed: self.failed,
        }
    }
}

/// A record an import reported.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportErrorRow {
    pub record_index: i64,
    pub seq: i64,
    pub control_number: Option<String>,
    pub reason: String,
}

/// An item as an export writes it: its fields, live copies and stored record.
#[derive(Debug, Clone)]
pub struct ExportEntry {
    pub item: ItemRow,
    pub copies: Vec<Copy>,
    pub record: Option<StoredRecord>,
}

macro_rules! import_columns {
    () => {
        "id, status, format, match_mode, file_name, file_path, file_bytes, total, processed, \
         created, updated, skipped, failed, error, created_by, created_at, started_at, finished_at, updated_at"
    };
}
const COPY_COLUMNS: &str = "id, item_id, barcode, location, call_number, status, created_at, updated_at, \
     branch_id, transit_to_branch_id";

impl Store {
    /// Looks up what the records of one batch may match (see [`ImportLookup`]).
    pub async fn import_lookup(
        &self,
        isbns: &[String],
        control_numbers: &[String],
        ids: &[Uuid],
        barcodes: &[String],
        fingerprints: &[String],
    ) -> Result<ImportLookup, StoreError> {
        let mut lookup = ImportLookup::default();
        crate::on_pool!(self, pool => {
            if !fingerprints.is_empty() {
                let mut qb = sqlx::QueryBuilder::new("SELECT fingerprint, item_id FROM item_marc WHERE fingerprint IN (");
                let mut list = qb.separated(", ");
                for f in fingerprints {
                    list.push_bind(f.as_str());
                }
                qb.push(") ORDER BY item_id");
                lookup.fingerprints = qb.build_query_as().fetch_all(pool).await?;
            }
            if !control_numbers.is_empty() {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT control_number, control_number_identifier, item_id FROM item_marc WHERE control_number IN (",
                );
                let mut list = qb.separated(", ");
                for cn in control_numbers {
                    list.push_bind(cn.as_str());
                }
                qb.push(") ORDER BY item_id");
                lookup.control_numbers = qb.build_query_as().fetch_all(pool).await?;
            }
            let mut item_ids: Vec<Uuid> = ids.to_vec();
            item_ids.extend(lookup.control_numbers.iter().map(|(_, _, id)| *id));
            item_ids.extend(lookup.fingerprints.iter().map(|(_, id)| *id));
            if !isbns.is_empty() || !item_ids.is_empty() {
                let mut qb = sqlx::QueryBuilder::new(concat!("SELECT ", item_columns!(), " FROM items i WHERE i.isbn IN ("));
                let mut list = qb.separated(", ");
                // An empty IN list is not valid SQL: NULL matches nothing.
                list.push_bind(None::<String>);
                for isbn in isbns {
                    list.push_bind(isbn.as_str());
                }
                qb.push(") OR i.id IN (");
                let mut list = qb.separated(", ");
                list.push_bind(None::<Uuid>);
                for id in &item_ids {
                    list.push_bind(*id);
                }
                qb.push(")");
                lookup.items = qb.build_query_as().fetch_all(pool).await?;
            }
            if !lookup.items.is_empty() {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT item_id, format, record, control_number, control_number_identifier, fingerprint FROM item_marc WHERE item_id IN (",
                );
                let mut list = qb.separated(", ");
                for item in &lookup.items {
                    list.push_bind(item.id);
                }
                qb.push(")");
                let rows: Vec<RecordRow> = qb.build_query_as().fetch_all(pool).await?;
                lookup.records = rows.into_iter().map(|r| (r.item_id, r.stored)).collect();
                let mut qb = sqlx::QueryBuilder::new(format!(
                    "SELECT {COPY_COLUMNS} FROM copies WHERE deleted_at IS NULL AND item_id IN ("
                ));
                let mut list = qb.separated(", ");
                for item in &lookup.items {
                    list.push_bind(item.id);
                }
                qb.push(") ORDER BY item_id, barcode");
                lookup.copies = qb.build_query_as().fetch_all(pool).await?;
            }
            if !barcodes.is_empty() {
                let mut qb = sqlx::QueryBuilder::new("SELECT barcode, item_id FROM copies WHERE barcode IN (");
                let mut list = qb.separated(", ");
                for barcode in barcodes {
                    list.push_bind(barcode.as_str());
                }
                qb.push(")");
                lookup.barcodes = qb.build_query_as().fetch_all(pool).await?;
            }
        });
        Ok(lookup)
    }

    /// Writes one batch of an import in one transaction (see the module docs).
    /// A unique index refusing any write refuses the whole batch
    /// ([`StoreError::Conflict`]); a lost lease is [`StoreError::Refused`].
    pub async fn write_import_batch<'a>(&self, batch: &ImportBatch<'a>) -> Result<(), StoreError> {
        let sqlite = self.backend() == Backend::Sqlite;
        let now = batch.now;
        let creates: Vec<(Uuid, &ImportedItem)> = batch
            .writes
            .iter()
            .filter_map(|w| match w {
                ImportWrite::Create { item, .. } => Some((Uuid::now_v7(), item)),
                ImportWrite::Update { .. } => None,
            })
            .collect();
        let items: Vec<(Uuid, &ItemFields)> = creates
            .iter()
            .map(|(id, item)| (*id, &item.fields))
            .collect();
        // Every copy to insert, with its item.
        let mut copies: Vec<CopyRow<'_>> = Vec::new();
        // (item, event type, details) for the history.
        let mut details: Vec<(Uuid, &'static str, serde_json::Value)> = Vec::new();
        // (item, record) of new items, and of matched items whose record changed.
        let mut new_records: Vec<(Uuid, &StoredRecord)> = Vec::with_capacity(creates.len());
        let mut changed_records: Vec<(Uuid, &StoredRecord)> = Vec::new();
        let copy_row = |item_id: Uuid, c: &'a NewCopy| CopyRow {
            id: Uuid::now_v7(),
            item_id,
            barcode: c.barcode.as_str(),
            location: c.location.as_deref(),
            call_number: c.call_number.as_deref(),
            branch_id: c.branch_id.unwrap_or(crate::MAIN_BRANCH_ID),
        };
        for (id, item) in &creates {
            details.push((
                *id,
                "created",
                json!({"title": item.fields.title, "import_id": batch.import_id}),
            ));
            new_records.push((*id, &item.record));
            copies.extend(item.copies.iter().map(|c| copy_row(*id, c)));
        }
        for write in batch.writes {
            if let ImportWrite::Update {
                item_id,
                fields,
                copies: new_copies,
                record,
                ..
            } = write
            {
                if fields.is_some() || record.is_some() {
                    let names: &[&str] = fields.as_ref().map_or(&[], |(_, names)| names.as_slice());
                    details.push((*item_id, "updated", json!({"fields": names, "marc_record": record.is_some(), "import_id": batch.import_id})));
                }
                if let Some(record) = record {
                    changed_records.push((*item_id, record));
                }
                copies.extend(new_copies.iter().map(|c| copy_row(*item_id, c)));
            }
        }
        for c in &copies {
            details.push((
                c.item_id,
                "copy_added",
                json!({"copy_id": c.id, "barcode": c.barcode, "import_id": batch.import_id}),
            ));
        }
        let events: Vec<EventRow<'_>> = details
            .iter()
            .map(|(item_id, event_type, details)| EventRow {
                item_id: *item_id,
                event_type,
                actor_id: batch.actor,
                details,
            })
            .collect();

        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if sqlite {
                // SQLite's default page cache (2 MiB) holds a small part of the
                // indexes an import writes into at random (title, ISBN,
                // fingerprint, FTS segments): every other insert re-read a page
                // from the file. 64 MiB on the importing connection (a bound,
                // whatever the file's size) cut the system time of the 250k LC
                // import by a third. It stays on that pooled connection.
                sqlx::query(IMPORT_CACHE_SQLITE).execute(&mut *tx).await?;
            }
            if let Some(progress) = &batch.progress {
                const PROGRESS: &str = "UPDATE imports SET processed = $2, created = $3, updated = $4, skipped = $5, failed = $6, \
                     lease_expires_at = $7, updated_at = $8 WHERE id = $1 AND lease_holder = $9 AND status = 'running'";
                let c = progress.counts;
                let done = sqlx::query(PROGRESS)
                    .bind(progress.import_id)
                    .bind(c.processed).bind(c.created).bind(c.updated).bind(c.skipped).bind(c.failed)
                    .bind(progress.lease_until).bind(now).bind(progress.holder)
                    .execute(&mut *tx).await?.rows_affected();
                if done == 0 {
                    return Err(StoreError::Refused("another instance has taken over this import"));
                }
            }
            tx.insert_items(&items, now).await?;
            for write in batch.writes {
                let ImportWrite::Update { item_id, fields: Some((fields, _)), .. } = write else { continue };
                const UPDATE: &str = "UPDATE items SET title = $2, subtitle = $3, authors = $4, isbn = $5, item_type = $6, \
                     publisher = $7, publication_year = $8, language = $9, subjects = $10, description = $11, title_key = $12, \
                     authors_key = $13, subjects_key = $14, year_key = $15, updated_at = $16 WHERE id = $1 AND deleted_at IS NULL";
                if sqlite {
                    sqlx::query(FTS_DELETE).bind(*item_id).execute(&mut *tx).await?;
                }
                let done = bind_fields!(sqlx::query(UPDATE).bind(*item_id), fields)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    return Err(StoreError::NotFound);
                }
                if sqlite {
                    sqlx::query(FTS_INSERT).bind(*item_id).execute(&mut *tx).await?;
                }
            }
            tx.put_records(&new_records, true, now).await?;
            tx.put_records(&changed_records, false, now).await?;
            tx.insert_copies(&copies, now).await?;
            tx.insert_events(&events, now).await?;
            if let Some(progress) = &batch.progress
                && !batch.issues.is_empty()
            {
                let mut numbered = Vec::with_capacity(batch.issues.len());
                let mut seq = 0i64;
                for (i, issue) in batch.issues.iter().enumerate() {
                    seq = if i > 0 && batch.issues[i - 1].index == issue.index { seq + 1 } else { 0 };
                    numbered.push((seq, issue));
                }
                for chunk in numbered.chunks(ROWS_PER_INSERT) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO import_errors (import_id, record_index, seq, control_number, reason) ",
                    );
                    qb.push_values(chunk, |mut row, (seq, issue)| {
                        row.push_bind(progress.import_id)
                            .push_bind(i64::try_from(issue.index).unwrap_or(i64::MAX))
                            .push_bind(*seq)
                            .push_bind(issue.control_number.as_deref())
                            .push_bind(issue.reason.as_str());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The stored original record of an item.
    pub async fn find_item_record(
        &self,
        item_id: Uuid,
    ) -> Result<Option<StoredRecord>, StoreError> {
        const SELECT: &str = "SELECT format, record, control_number, control_number_identifier, fingerprint FROM item_marc WHERE item_id = $1";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(item_id).fetch_optional(pool).await?),
        )
    }

    /// Up to `limit` live items after `after` in id order, with their live
    /// copies and stored records (a whole-catalog export reads page by page).
    pub async fn export_page(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportEntry>, StoreError> {
        const ITEMS: &str = concat!(
            "SELECT ",
            item_columns!(),
            " FROM items i WHERE i.deleted_at IS NULL AND ($1 IS NULL OR i.id > $1) ORDER BY i.id LIMIT $2"
        );
        crate::on_pool!(self, pool => {
            let items: Vec<ItemRow> = sqlx::query_as(ITEMS).bind(after).bind(i64::from(limit)).fetch_all(pool).await?;
            let (Some(first), Some(last)) = (items.first(), items.last()) else { return Ok(Vec::new()) };
            let (first, last) = (first.id, last.id);
            let copies: Vec<Copy> = sqlx::query_as(
                "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, \
                 transit_to_branch_id FROM copies WHERE deleted_at IS NULL AND item_id >= $1 AND item_id <= $2 ORDER BY item_id, barcode"
            ).bind(first).bind(last).fetch_all(pool).await?;
            let records: Vec<RecordRow> = sqlx::query_as(
                "SELECT item_id, format, record, control_number, control_number_identifier, fingerprint FROM item_marc \
                 WHERE item_id >= $1 AND item_id <= $2 ORDER BY item_id",
            ).bind(first).bind(last).fetch_all(pool).await?;
            let mut copies = copies.into_iter().peekable();
            let mut records = records.into_iter().peekable();
            let mut page = Vec::with_capacity(items.len());
            for item in items {
                let mut entry = ExportEntry { copies: Vec::new(), record: None, item };
                let id = entry.item.id;
                // Both lists are in item order; rows of deleted items in between are passed over.
                while let Some(copy) = copies.next_if(|c| c.item_id <= id) {
                    if copy.item_id == id {
                        entry.copies.push(copy);
                    }
                }
                while let Some(row) = records.next_if(|r| r.item_id <= id) {
                    if row.item_id == id {
                        entry.record = Some(row.stored);
                    }
                }
                page.push(entry);
            }
            Ok(page)
        })
    }

    /// Records a new import job (`queued`).
    pub async fn create_import(
        &self,
        new: &NewImport,
        now: OffsetDateTime,
    ) -> Result<ImportRow, StoreError> {
        self.create_import_audited(new, now, |_: &ImportRow| Vec::new())
            .await
    }

    /// [`Store::create_import`] with the audit events `audit` builds from the
    /// new job, committed with it.
    pub async fn create_import_audited(
        &self,
        new: &NewImport,
        now: OffsetDateTime,
        audit: impl AuditTrail<ImportRow>,
    ) -> Result<ImportRow, StoreError> {
        const INSERT: &str = concat!(
            "INSERT INTO imports (id, status, format, match_mode, file_name, file_path, file_bytes, created_by, created_at, updated_at) \
             VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $8) RETURNING ",
            import_columns!()
        );
        let (row, events) = crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let row: ImportRow = sqlx::query_as(INSERT)
                .bind(new.id)
                .bind(&new.format)
                .bind(&new.match_mode)
                .bind(new.file_name.as_deref())
                .bind(&new.file_path)
                .bind(new.file_bytes)
                .bind(new.created_by)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let events = append_audit_trail!(tx, audit, &row);
            tx.commit().await?;
            (row, events)
        });
        crate::audit::log(&events);
        Ok(row)
    }

    /// An import job.
    pub async fn find_import(&self, id: Uuid) -> Result<Option<ImportRow>, StoreError> {
        const SELECT: &str = concat!("SELECT ", import_columns!(), " FROM imports WHERE id = $1");
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await?),
        )
    }

    /// The newest import jobs first (at most `limit`).
    pub async fn list_imports(&self, limit: u32) -> Result<Vec<ImportRow>, StoreError> {
        const LIST: &str = concat!(
            "SELECT ",
            import_columns!(),
            " FROM imports ORDER BY created_at DESC, id DESC LIMIT $1"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?))
    }

    /// Takes the lease of a queued or running job for `ttl`, unless another
    /// instance holds a live one (the same instance does not take it twice
    /// either). Marks it `running`.
    pub async fn claim_import(
        &self,
        id: Uuid,
        holder: Uuid,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<ImportRow>, StoreError> {
        const CLAIM: &str = concat!(
            "UPDATE imports SET status = 'running', lease_holder = $2, lease_expires_at = $3, \
             started_at = COALESCE(started_at, $4), updated_at = $4 \
             WHERE id = $1 AND status IN ('queued', 'running') AND (lease_holder IS NULL OR lease_expires_at < $4) \
             RETURNING ",
            import_columns!()
        );
        Ok(crate::on_writer!(self, writer => {
            let mut conn = writer.turn().await?;
            sqlx::query_as(CLAIM).bind(id).bind(holder).bind(now + ttl).bind(now).fetch_optional(&mut *conn).await?
        }))
    }

    /// Queued or running jobs whose lease is free or has run out (to resume).
    pub async fn orphaned_imports(&self, now: OffsetDateTime) -> Result<Vec<Uuid>, StoreError> {
        const SELECT: &str = "SELECT id FROM imports WHERE status IN ('queued', 'running') \
             AND (lease_holder IS NULL OR lease_expires_at < $1) ORDER BY created_at, id";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_scalar(SELECT).bind(now).fetch_all(pool).await?),
        )
    }

    /// Records the number of records in the job's file.
    pub async fn set_import_total(
        &self,
        id: Uuid,
        holder: Uuid,
        total: i64,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const UPDATE: &str =
            "UPDATE imports SET total = $3, updated_at = $4 WHERE id = $1 AND lease_holder = $2";
        crate::on_writer!(self, writer => {
            let mut conn = writer.turn().await?;
            sqlx::query(UPDATE).bind(id).bind(holder).bind(total).bind(now).execute(&mut *conn).await?;
        });
        Ok(())
    }

    /// Ends a job as `done` or `failed` (with `error`) and releases its lease,
    /// with the audit events `audit` builds from the finished job (its final
    /// counts), committed with its end. Returns false (and writes no events)
    /// when `holder` no longer holds it.
    pub async fn finish_import_audited(
        &self,
        id: Uuid,
        holder: Option<Uuid>,
        failed_with: Option<&str>,
        now: OffsetDateTime,
        audit: impl AuditTrail<ImportRow>,
    ) -> Result<bool, StoreError> {
        const UPDATE: &str = concat!(
            "UPDATE imports SET status = $3, error = $4, finished_at = $5, updated_at = $5, \
             lease_holder = NULL, lease_expires_at = NULL \
             WHERE id = $1 AND status IN ('queued', 'running') AND ($2 IS NULL OR lease_holder = $2) RETURNING ",
            import_columns!()
        );
        let status = if failed_with.is_some() {
            ImportStatus::Failed
        } else {
            ImportStatus::Done
        };
        let events = crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let done: Option<ImportRow> = sqlx::query_as(UPDATE).bind(id).bind(holder).bind(status.as_str()).bind(failed_with).bind(now).fetch_optional(&mut *tx).await?;
            let Some(done) = done else {
                return Ok(false);
            };
            let events = append_audit_trail!(tx, audit, &done);
            tx.commit().await?;
            events
        });
        crate::audit::log(&events);
        Ok(true)
    }

    /// The records a job reported, in record order, `limit + 1` after the cursor.
    pub async fn import_errors(
        &self,
        id: Uuid,
        after: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<ImportErrorRow>, StoreError> {
        const LIST: &str = "SELECT record_index, seq, control_number, reason FROM import_errors \
             WHERE import_id = $1 AND ($2 IS NULL OR record_index > $2 OR (record_index = $2 AND seq > $3)) \
             ORDER BY record_index, seq LIMIT $4";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(id)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?))
    }
}
