//! The one insert path of catalog rows: items (with SQLite's FTS rows), copies,
//! history entries and stored MARC records, inside the caller's transaction.
//! The JSON API inserts one item through it, bulk loads and MARC imports many.
//!
//! SQLite (embedded, no round trips to save): multi-row `INSERT`s of a fixed
//! size, so the same few prepared statements are reused batch after batch, and
//! the FTS rows of a chunk in one `INSERT … SELECT`.
//!
//! PostgreSQL: a handful of rows take one multi-row `INSERT`; more are streamed
//! with `COPY … FROM STDIN` (one statement a table, no per-row parsing or
//! planning, and the rows go in 1 MiB messages). It needs sqlx ≥ 0.9.1, which
//! sets `TCP_NODELAY`: with Nagle's algorithm on (0.9.0), each COPY's final
//! `CopyDone` waited ~40 ms for the delayed ACK of the data before it, which
//! halved the import rate over TCP.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::imports::StoredRecord;
use super::items::{ItemFields, UNKNOWN_YEAR};
use crate::StoreError;

/// A new copy row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopyRow<'a> {
    pub id: Uuid,
    pub item_id: Uuid,
    pub barcode: &'a str,
    pub location: Option<&'a str>,
    pub call_number: Option<&'a str>,
    /// The home branch.
    pub branch_id: Uuid,
}

/// A new catalog history entry (no loan, hold or patron).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventRow<'a> {
    pub item_id: Uuid,
    pub event_type: &'static str,
    pub actor_id: Option<Uuid>,
    pub details: &'a Value,
}

/// Rows per multi-row INSERT: at most 17 bind parameters a row stay far below every
/// backend's limit (SQLite 32,766, PostgreSQL 65,535).
const ROWS_PER_INSERT: usize = 200;

/// PostgreSQL: up to this many rows go in one multi-row INSERT, more in a COPY.
const COPY_FROM: usize = 8;

/// Bytes buffered before a `CopyData` message is sent.
const COPY_FLUSH: usize = 1 << 20;

const ITEM_INSERT: &str = "INSERT INTO items (id, title, subtitle, authors, isbn, item_type, publisher, publication_year, \
     language, subjects, description, title_key, authors_key, subjects_key, year_key, created_at, updated_at) ";
const ITEM_COPY: &str = "COPY items (id, title, subtitle, authors, isbn, item_type, publisher, publication_year, \
     language, subjects, description, title_key, authors_key, subjects_key, year_key, created_at, updated_at) FROM STDIN";
const COPY_INSERT: &str = "INSERT INTO copies (id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id) ";
const COPY_COPY: &str = "COPY copies (id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id) FROM STDIN";
const EVENT_INSERT: &str =
    "INSERT INTO item_events (id, item_id, event_type, actor_id, at, details) ";
const EVENT_COPY: &str =
    "COPY item_events (id, item_id, event_type, actor_id, at, details) FROM STDIN";
const RECORD_INSERT: &str = "INSERT INTO item_marc (item_id, format, record, control_number, control_number_identifier, fingerprint, updated_at) ";
const RECORD_UPSERT: &str = " ON CONFLICT (item_id) DO UPDATE SET format = excluded.format, record = excluded.record, \
     control_number = excluded.control_number, control_number_identifier = excluded.control_number_identifier, \
     fingerprint = excluded.fingerprint, updated_at = excluded.updated_at";
const RECORD_COPY: &str = "COPY item_marc (item_id, format, record, control_number, control_number_identifier, fingerprint, updated_at) FROM STDIN";

/// Writes catalog rows inside the caller's transaction (see the module docs).
pub(crate) trait CatalogWrite {
    /// Inserts items with the given ids (and their search rows).
    async fn insert_items(
        &mut self,
        rows: &[(Uuid, &ItemFields)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Inserts available copies.
    async fn insert_copies(
        &mut self,
        rows: &[CopyRow<'_>],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Appends catalog history entries, all at `now`.
    async fn insert_events(
        &mut self,
        rows: &[EventRow<'_>],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Inserts or replaces the stored MARC records of items; `new_items` says
    /// that none of them has one yet.
    async fn put_records(
        &mut self,
        rows: &[(Uuid, &StoredRecord)],
        new_items: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Pushes the bind values of one item row in [`ITEM_INSERT`]'s column order.
macro_rules! push_item {
    ($row:ident, $id:expr, $f:expr, $now:expr) => {{
        let f: &ItemFields = $f;
        $row.push_bind($id)
            .push_bind(f.title.as_str())
            .push_bind(f.subtitle.as_deref())
            .push_bind(Json(&f.authors))
            .push_bind(f.isbn.as_deref())
            .push_bind(f.item_type.as_str())
            .push_bind(f.publisher.as_deref())
            .push_bind(f.publication_year)
            .push_bind(f.language.as_deref())
            .push_bind(Json(&f.subjects))
            .push_bind(f.description.as_deref())
            .push_bind(f.title_key())
            .push_bind(ItemFields::list_key(&f.authors))
            .push_bind(ItemFields::list_key(&f.subjects))
            .push_bind(f.publication_year.unwrap_or(UNKNOWN_YEAR))
            .push_bind($now)
            .push_bind($now);
    }};
}

macro_rules! push_copy {
    ($row:ident, $c:expr, $now:expr) => {{
        let c: &CopyRow<'_> = $c;
        $row.push_bind(c.id)
            .push_bind(c.item_id)
            .push_bind(c.barcode)
            .push_bind(c.location)
            .push_bind(c.call_number)
            .push_bind("available")
            .push_bind($now)
            .push_bind($now)
            .push_bind(c.branch_id);
    }};
}

macro_rules! push_event {
    ($row:ident, $e:expr, $now:expr) => {{
        let e: &EventRow<'_> = $e;
        $row.push_bind(Uuid::now_v7())
            .push_bind(e.item_id)
            .push_bind(e.event_type)
            .push_bind(e.actor_id)
            .push_bind($now)
            .push_bind(Json(e.details));
    }};
}

macro_rules! push_record {
    ($row:ident, $id:expr, $r:expr, $now:expr) => {{
        let r: &StoredRecord = $r;
        $row.push_bind($id)
            .push_bind(r.format.as_str())
            .push_bind(r.record.as_slice())
            .push_bind(r.control_number.as_deref())
            .push_bind(r.control_number_identifier.as_str())
            .push_bind(r.fingerprint.as_str())
            .push_bind($now);
    }};
}

/// Multi-row INSERTs of `rows`, [`ROWS_PER_INSERT`] at a time.
macro_rules! insert_chunks {
    ($conn:expr, $db:ty, $head:expr, $tail:expr, $rows:expr, |$row:ident, $item:ident| $push:expr) => {{
        for chunk in $rows.chunks(ROWS_PER_INSERT) {
            let mut qb = sqlx::QueryBuilder::<$db>::new($head);
            qb.push_values(chunk, |mut $row, $item| $push);
            qb.push($tail);
            qb.build().execute(&mut *$conn).await?;
        }
    }};
}

impl CatalogWrite for SqliteConnection {
    async fn insert_items(
        &mut self,
        rows: &[(Uuid, &ItemFields)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(ITEM_INSERT);
            qb.push_values(chunk, |mut row, (id, f)| push_item!(row, *id, f, now));
            qb.build().execute(&mut *self).await?;
            // The FTS rows are keyed by the rowids SQLite just gave the items.
            let mut fts = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO items_fts (rowid, title, subtitle, authors, subjects, description) \
                 SELECT rowid, title, subtitle, replace(authors_key, '|', ' '), replace(subjects_key, '|', ' '), description \
                 FROM items WHERE id IN (",
            );
            let mut list = fts.separated(", ");
            for (id, _) in chunk {
                list.push_bind(*id);
            }
            fts.push(")");
            fts.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn insert_copies(
        &mut self,
        rows: &[CopyRow<'_>],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        insert_chunks!(
            self,
            sqlx::Sqlite,
            COPY_INSERT,
            "",
            rows,
            |row, c| push_copy!(row, c, now)
        );
        Ok(())
    }

    async fn insert_events(
        &mut self,
        rows: &[EventRow<'_>],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        insert_chunks!(
            self,
            sqlx::Sqlite,
            EVENT_INSERT,
            "",
            rows,
            |row, e| push_event!(row, e, now)
        );
        Ok(())
    }

    async fn put_records(
        &mut self,
        rows: &[(Uuid, &StoredRecord)],
        _new_items: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        insert_chunks!(
            self,
            sqlx::Sqlite,
            RECORD_INSERT,
            RECORD_UPSERT,
            rows,
            |row, r| push_record!(row, r.0, r.1, now)
        );
        Ok(())
    }
}

impl CatalogWrite for PgConnection {
    async fn insert_items(
        &mut self,
        rows: &[(Uuid, &ItemFields)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if rows.len() <= COPY_FROM {
            insert_chunks!(
                self,
                sqlx::Postgres,
                ITEM_INSERT,
                "",
                rows,
                |row, r| push_item!(row, r.0, r.1, now)
            );
            return Ok(());
        }
        let at = copy_timestamp(now);
        let mut copy = CopyIn::start(self, ITEM_COPY).await?;
        for (id, f) in rows {
            let authors = serde_json::to_string(&f.authors).unwrap_or_default();
            let subjects = serde_json::to_string(&f.subjects).unwrap_or_default();
            let year = f.publication_year.map(|y| y.to_string());
            let year_key = f.publication_year.unwrap_or(UNKNOWN_YEAR).to_string();
            copy.row(&[
                Some(&id.to_string()),
                Some(&f.title),
                f.subtitle.as_deref(),
                Some(&authors),
                f.isbn.as_deref(),
                Some(&f.item_type),
                f.publisher.as_deref(),
                year.as_deref(),
                f.language.as_deref(),
                Some(&subjects),
                f.description.as_deref(),
                Some(&f.title_key()),
                Some(&ItemFields::list_key(&f.authors)),
                Some(&ItemFields::list_key(&f.subjects)),
                Some(&year_key),
                Some(&at),
                Some(&at),
            ])
            .await?;
        }
        copy.finish().await
    }

    async fn insert_copies(
        &mut self,
        rows: &[CopyRow<'_>],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if rows.len() <= COPY_FROM {
            insert_chunks!(
                self,
                sqlx::Postgres,
                COPY_INSERT,
                "",
                rows,
                |row, c| push_copy!(row, c, now)
            );
            return Ok(());
        }
        let at = copy_timestamp(now);
        let mut copy = CopyIn::start(self, COPY_COPY).await?;
        for c in rows {
            copy.row(&[
                Some(&c.id.to_string()),
                Some(&c.item_id.to_string()),
                Some(c.barcode),
                c.location,
                c.call_number,
                Some("available"),
                Some(&at),
                Some(&at),
                Some(&c.branch_id.to_string()),
            ])
            .await?;
        }
        copy.finish().await
    }

    async fn insert_events(
        &mut self,
        rows: &[EventRow<'_>],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if rows.len() <= COPY_FROM {
            insert_chunks!(
                self,
                sqlx::Postgres,
                EVENT_INSERT,
                "",
                rows,
                |row, e| push_event!(row, e, now)
            );
            return Ok(());
        }
        let at = copy_timestamp(now);
        let mut copy = CopyIn::start(self, EVENT_COPY).await?;
        for e in rows {
            copy.row(&[
                Some(&Uuid::now_v7().to_string()),
                Some(&e.item_id.to_string()),
                Some(e.event_type),
                e.actor_id.map(|a| a.to_string()).as_deref(),
                Some(&at),
                Some(&e.details.to_string()),
            ])
            .await?;
        }
        copy.finish().await
    }

    async fn put_records(
        &mut self,
        rows: &[(Uuid, &StoredRecord)],
        new_items: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if !new_items || rows.len() <= COPY_FROM {
            insert_chunks!(
                self,
                sqlx::Postgres,
                RECORD_INSERT,
                RECORD_UPSERT,
                rows,
                |row, r| push_record!(row, r.0, r.1, now)
            );
            return Ok(());
        }
        let at = copy_timestamp(now);
        let mut copy = CopyIn::start(self, RECORD_COPY).await?;
        let mut hex = String::new();
        for (id, r) in rows {
            hex.clear();
            hex.push_str("\\x");
            for b in &r.record {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                hex.push(char::from(DIGITS[usize::from(b >> 4)]));
                hex.push(char::from(DIGITS[usize::from(b & 15)]));
            }
            copy.row(&[
                Some(&id.to_string()),
                Some(&r.format),
                Some(&hex),
                r.control_number.as_deref(),
                Some(&r.control_number_identifier),
                Some(&r.fingerprint),
                Some(&at),
            ])
            .await?;
        }
        copy.finish().await
    }
}

/// A `COPY … FROM STDIN` in text format, sent in [`COPY_FLUSH`]-byte messages.
struct CopyIn<'c> {
    copy: sqlx::postgres::PgCopyIn<&'c mut PgConnection>,
    buf: String,
}

impl<'c> CopyIn<'c> {
    async fn start(conn: &'c mut PgConnection, statement: &str) -> Result<Self, StoreError> {
        Ok(CopyIn {
            copy: conn.copy_in_raw(statement).await?,
            buf: String::with_capacity(COPY_FLUSH + 4096),
        })
    }

    async fn row(&mut self, fields: &[Option<&str>]) -> Result<(), StoreError> {
        copy_row(&mut self.buf, fields);
        if self.buf.len() >= COPY_FLUSH {
            self.copy.send(self.buf.as_bytes()).await?;
            self.buf.clear();
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), StoreError> {
        if !self.buf.is_empty() {
            self.copy.send(self.buf.as_bytes()).await?;
        }
        self.copy.finish().await?;
        Ok(())
    }
}

/// Appends one row in `COPY`'s text format: tab-separated, `\N` for NULL, and
/// backslash, tab, newline and carriage return escaped.
pub(crate) fn copy_row(buf: &mut String, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        match field {
            None => buf.push_str("\\N"),
            Some(text) => {
                let mut rest = *text;
                while let Some(p) = rest.find(['\\', '\t', '\n', '\r']) {
                    buf.push_str(&rest[..p]);
                    buf.push_str(match rest.as_bytes()[p] {
                        b'\\' => "\\\\",
                        b'\t' => "\\t",
                        b'\n' => "\\n",
                        _ => "\\r",
                    });
                    rest = &rest[p + 1..];
                }
                buf.push_str(rest);
            }
        }
    }
    buf.push('\n');
}

/// A timestamp as `COPY` reads a `timestamptz`: ISO 8601 in UTC, microseconds.
pub(crate) fn copy_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_separators_and_nulls() {
        let mut buf = String::new();
        copy_row(&mut buf, &[Some("a\tb\\c\nd\re"), None, Some("")]);
        assert_eq!(buf, "a\\tb\\\\c\\nd\\re\t\\N\t\n");
    }

    #[test]
    fn copy_timestamps_are_utc_with_microseconds() {
        let at = time::macros::datetime!(2026-03-04 05:06:07.123456789 +02:00);
        assert_eq!(copy_timestamp(at), "2026-03-04 03:06:07.123456+00");
    }
}
