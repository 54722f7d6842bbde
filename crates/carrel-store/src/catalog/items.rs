//! Items: create, read, update, soft delete and restore, covers, history.

use serde_json::{Value, json};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::write::{CatalogWrite as _, CopyRow};
use super::{EventRecord, append_event};
use crate::{Backend, Store, StoreError};

/// The item columns plus the copy counts, computed by the database in the same
/// query (correlated counts over an index, never one query per item).
macro_rules! item_columns {
    () => {
        "i.id, i.title, i.subtitle, i.authors, i.isbn, i.item_type, i.publisher, i.publication_year, \
         i.language, i.subjects, i.description, i.cover_name, i.cover_thumb_name, i.cover_content_type, \
         i.title_key, i.year_key, i.created_at, i.updated_at, i.deleted_at, \
         (SELECT COUNT(*) FROM copies c WHERE c.item_id = i.id AND c.deleted_at IS NULL AND c.status <> 'withdrawn') AS copies_total, \
         (SELECT COUNT(*) FROM copies c WHERE c.item_id = i.id AND c.deleted_at IS NULL AND c.status = 'available') AS copies_available"
    };
}
pub(crate) use item_columns;

macro_rules! item_select {
    () => {
        concat!("SELECT ", item_columns!(), " FROM items i")
    };
}

/// A stored item with its copy counts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub id: Uuid,
    pub title: String,
    pub subtitle: Option<String>,
    pub authors: Json<Vec<String>>,
    pub isbn: Option<String>,
    pub item_type: String,
    pub publisher: Option<String>,
    pub publication_year: Option<i32>,
    pub language: Option<String>,
    pub subjects: Json<Vec<String>>,
    pub description: Option<String>,
    pub cover_name: Option<String>,
    pub cover_thumb_name: Option<String>,
    pub cover_content_type: Option<String>,
    pub title_key: String,
    pub year_key: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
    pub copies_total: i64,
    pub copies_available: i64,
}

/// Every editable field of an item, already validated and normalised.
#[derive(Debug, Clone)]
pub struct ItemFields {
    pub title: String,
    pub subtitle: Option<String>,
    pub authors: Vec<String>,
    /// ISBN-13.
    pub isbn: Option<String>,
    pub item_type: String,
    pub publisher: Option<String>,
    pub publication_year: Option<i32>,
    /// ISO 639 code.
    pub language: Option<String>,
    pub subjects: Vec<String>,
    pub description: Option<String>,
}

/// Unknown years sort before every known one (ascending) and after (descending).
pub(crate) const UNKNOWN_YEAR: i32 = -999_999;

impl ItemFields {
    pub(crate) fn title_key(&self) -> String {
        self.title.to_lowercase()
    }
    /// `|a|b|` lower-cased, so `LIKE '%|x|%'` is list membership.
    pub(crate) fn list_key(list: &[String]) -> String {
        let mut key = String::from("|");
        for entry in list {
            key.push_str(&entry.to_lowercase());
            key.push('|');
        }
        key
    }
}

/// Binds an item's editable fields and the keys derived from them, in the
/// column order both the INSERT and the UPDATE use (`$2` … `$15`).
macro_rules! bind_fields {
    ($query:expr, $fields:expr) => {{
        let f: &ItemFields = $fields;
        $query
            .bind(&f.title)
            .bind(f.subtitle.as_deref())
            .bind(Json(&f.authors))
            .bind(f.isbn.as_deref())
            .bind(&f.item_type)
            .bind(f.publisher.as_deref())
            .bind(f.publication_year)
            .bind(f.language.as_deref())
            .bind(Json(&f.subjects))
            .bind(f.description.as_deref())
            .bind(f.title_key())
            .bind(ItemFields::list_key(&f.authors))
            .bind(ItemFields::list_key(&f.subjects))
            .bind(f.publication_year.unwrap_or(UNKNOWN_YEAR))
    }};
}
pub(crate) use bind_fields;

/// One entry of an item's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemEvent {
    pub id: Uuid,
    pub item_id: Uuid,
    pub event_type: String,
    pub actor_id: Option<Uuid>,
    pub at: OffsetDateTime,
    pub details: Json<Value>,
    /// The patron of a circulation event (removed by anonymisation).
    pub patron_id: Option<Uuid>,
}

pub(crate) const FTS_DELETE: &str =
    "DELETE FROM items_fts WHERE rowid = (SELECT rowid FROM items WHERE id = $1)";
pub(crate) const FTS_INSERT: &str = "INSERT INTO items_fts (rowid, title, subtitle, authors, subjects, description) \
     SELECT rowid, title, subtitle, replace(authors_key, '|', ' '), replace(subjects_key, '|', ' '), description \
     FROM items WHERE id = $1";

impl Store {
    /// Creates an item; a taken ISBN is [`StoreError::Conflict`].
    pub async fn create_item(
        &self,
        fields: &ItemFields,
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<ItemRow, StoreError> {
        const SELECT: &str = concat!(item_select!(), " WHERE i.id = $1");
        let id = Uuid::now_v7();
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            tx.insert_items(&[(id, fields)], now).await?;
            append_event!(tx, EventRecord { item_id: id, event_type: "created", actor_id: actor, at: now, details: &json!({"title": fields.title}) });
            let row: ItemRow = sqlx::query_as(SELECT).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// An item (deleted ones only when `include_deleted`).
    pub async fn find_item(
        &self,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<Option<ItemRow>, StoreError> {
        const SELECT: &str = concat!(
            item_select!(),
            " WHERE i.id = $1 AND ($2 OR i.deleted_at IS NULL)"
        );
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(id).bind(include_deleted).fetch_optional(pool).await?),
        )
    }

    /// The titles of the given items, deleted ones included (a loan outlives
    /// its catalog record), in one statement; unknown ids are left out.
    pub async fn item_titles(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        crate::on_pool!(self, pool => {
            let mut qb = sqlx::QueryBuilder::new("SELECT id, title FROM items WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            qb.push(")");
            Ok(qb.build_query_as().fetch_all(pool).await?)
        })
    }

    /// Replaces the editable fields of a live item; `changed` names them for the history.
    pub async fn update_item(
        &self,
        id: Uuid,
        fields: &ItemFields,
        changed: &[&str],
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<ItemRow, StoreError> {
        const UPDATE: &str = "UPDATE items SET title = $2, subtitle = $3, authors = $4, isbn = $5, item_type = $6, \
             publisher = $7, publication_year = $8, language = $9, subjects = $10, description = $11, title_key = $12, \
             authors_key = $13, subjects_key = $14, year_key = $15, updated_at = $16 WHERE id = $1 AND deleted_at IS NULL";
        const SELECT: &str = concat!(item_select!(), " WHERE i.id = $1");
        let sqlite = self.backend() == Backend::Sqlite;
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if sqlite {
                sqlx::query(FTS_DELETE).bind(id).execute(&mut *tx).await?;
            }
            let done = bind_fields!(sqlx::query(UPDATE).bind(id), fields)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound);
            }
            if sqlite {
                sqlx::query(FTS_INSERT).bind(id).execute(&mut *tx).await?;
            }
            append_event!(tx, EventRecord { item_id: id, event_type: "updated", actor_id: actor, at: now, details: &json!({"fields": changed}) });
            let row: ItemRow = sqlx::query_as(SELECT).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Soft-deletes an item; refused while any copy is on loan.
    pub async fn soft_delete_item(
        &self,
        id: Uuid,
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const ON_LOAN: &str =
            "SELECT COUNT(*) FROM copies WHERE item_id = $1 AND status = 'on_loan'";
        const DELETE: &str = "UPDATE items SET deleted_at = $2, deleted_by = $3, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL";
        // PostgreSQL: lock the item row before counting, against every checkout's
        // key share of it: a checkout in flight commits first (its copy is then
        // counted) or finds the item deleted. (SQLite serialises writers already.)
        const LOCK: &str = "SELECT id FROM items WHERE id = $1 FOR UPDATE";
        let lock = self.backend() == crate::Backend::Postgres;
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if lock {
                sqlx::query(LOCK).bind(id).execute(&mut *tx).await?;
            }
            let on_loan: i64 = sqlx::query_scalar(ON_LOAN).bind(id).fetch_one(&mut *tx).await?;
            if on_loan > 0 {
                return Err(StoreError::Refused("copies of this item are on loan"));
            }
            if sqlx::query(DELETE).bind(id).bind(now).bind(actor).execute(&mut *tx).await?.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, EventRecord { item_id: id, event_type: "deleted", actor_id: actor, at: now, details: &json!({}) });
            tx.commit().await?;
            Ok(())
        })
    }

    /// Restores a soft-deleted item.
    pub async fn restore_item(
        &self,
        id: Uuid,
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<ItemRow, StoreError> {
        const RESTORE: &str = "UPDATE items SET deleted_at = NULL, deleted_by = NULL, updated_at = $2 WHERE id = $1 AND deleted_at IS NOT NULL";
        const SELECT: &str = concat!(item_select!(), " WHERE i.id = $1");
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if sqlx::query(RESTORE).bind(id).bind(now).execute(&mut *tx).await?.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_event!(tx, EventRecord { item_id: id, event_type: "restored", actor_id: actor, at: now, details: &json!({}) });
            let row: ItemRow = sqlx::query_as(SELECT).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Records a new cover (names in the cover store) and returns the previous
    /// names so the caller can delete those files.
    pub async fn set_item_cover(
        &self,
        id: Uuid,
        cover: Option<(&str, &str, &str)>,
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        const PREVIOUS: &str =
            "SELECT cover_name, cover_thumb_name FROM items WHERE id = $1 AND deleted_at IS NULL";
        const UPDATE: &str = "UPDATE items SET cover_name = $2, cover_thumb_name = $3, cover_content_type = $4, updated_at = $5 WHERE id = $1";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let previous: (Option<String>, Option<String>) =
                sqlx::query_as(PREVIOUS).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            sqlx::query(UPDATE)
                .bind(id)
                .bind(cover.map(|c| c.0))
                .bind(cover.map(|c| c.1))
                .bind(cover.map(|c| c.2))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let event = if cover.is_some() { "cover_updated" } else { "cover_removed" };
            append_event!(tx, EventRecord { item_id: id, event_type: event, actor_id: actor, at: now, details: &json!({}) });
            tx.commit().await?;
            Ok(previous)
        })
    }

    /// An item's history, oldest first, `limit + 1` rows after the cursor.
    pub async fn item_events(
        &self,
        item_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<ItemEvent>, StoreError> {
        const LIST: &str = "SELECT id, item_id, event_type, actor_id, at, details, patron_id FROM item_events \
             WHERE item_id = $1 AND ($2 IS NULL OR at > $2 OR (at = $2 AND id > $3)) ORDER BY at, id LIMIT $4";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(item_id)
            .bind(after.map(|(at, _)| at))
            .bind(after.map(|(_, id)| id))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?))
    }
}

impl Store {
    /// Loads many items (and `copies_per_item` available copies each, barcodes
    /// `{barcode_prefix}{n}`) in one transaction. For benchmarks and bulk loads:
    /// no history entries are written.
    pub async fn bulk_create_items(
        &self,
        items: &[ItemFields],
        copies_per_item: u32,
        barcode_prefix: &str,
        first_barcode: u64,
        now: OffsetDateTime,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<Uuid> = items.iter().map(|_| Uuid::now_v7()).collect();
        let copies: Vec<(Uuid, String)> = ids
            .iter()
            .flat_map(|id| (0..copies_per_item).map(move |_| *id))
            .zip(first_barcode + 1..)
            .map(|(id, n)| (id, format!("{barcode_prefix}{n}")))
            .collect();
        let rows: Vec<(Uuid, &ItemFields)> = ids.iter().copied().zip(items).collect();
        let copy_rows: Vec<CopyRow<'_>> = copies
            .iter()
            .map(|(item_id, barcode)| CopyRow {
                id: Uuid::now_v7(),
                item_id: *item_id,
                barcode,
                location: None,
                call_number: None,
                branch_id: crate::MAIN_BRANCH_ID,
            })
            .collect();
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            tx.insert_items(&rows, now).await?;
            tx.insert_copies(&copy_rows, now).await?;
            tx.commit().await?;
        });
        Ok(ids)
    }
}
