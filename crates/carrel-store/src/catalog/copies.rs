//! Copies: the physical pieces of an item, each with a unique barcode.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{EventRecord, append_event};
use crate::pool::BeginWrite as _;
use crate::{Store, StoreError};

/// A stored copy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Copy {
    pub id: Uuid,
    pub item_id: Uuid,
    pub barcode: String,
    pub location: Option<String>,
    pub call_number: Option<String>,
    /// `available`, `on_loan`, `on_hold_shelf`, `lost`, `damaged` or `withdrawn`.
    pub status: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A copy to add to an item.
#[derive(Debug, Clone)]
pub struct NewCopy {
    pub barcode: String,
    pub location: Option<String>,
    pub call_number: Option<String>,
}

/// Staff changes to a copy; `None` leaves a field alone. Circulation owns the
/// `on_loan` and `on_hold_shelf` statuses, so they cannot be set here.
#[derive(Debug, Clone, Default)]
pub struct CopyChanges {
    pub barcode: Option<String>,
    pub location: Option<Option<String>>,
    pub call_number: Option<Option<String>>,
    pub status: Option<String>,
}

impl Store {
    /// Adds a copy to a live item; a taken barcode is [`StoreError::Conflict`].
    pub async fn add_copy(
        &self,
        item_id: Uuid,
        copy: &NewCopy,
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<Copy, StoreError> {
        const ITEM: &str = "SELECT COUNT(*) FROM items WHERE id = $1 AND deleted_at IS NULL";
        const INSERT: &str = "INSERT INTO copies (id, item_id, barcode, location, call_number, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'available', $6, $6) \
             RETURNING id, item_id, barcode, location, call_number, status, created_at, updated_at";
        crate::on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let exists: i64 = sqlx::query_scalar(ITEM).bind(item_id).fetch_one(&mut *tx).await?;
            if exists == 0 {
                return Err(StoreError::NotFound);
            }
            let created: Copy = sqlx::query_as(INSERT)
                .bind(Uuid::now_v7())
                .bind(item_id)
                .bind(&copy.barcode)
                .bind(copy.location.as_deref())
                .bind(copy.call_number.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            append_event!(tx, EventRecord { item_id, event_type: "copy_added", actor_id: actor, at: now, details: &json!({"copy_id": created.id, "barcode": created.barcode}) });
            tx.commit().await?;
            Ok(created)
        })
    }

    /// The live copies of an item, in barcode order.
    pub async fn list_copies(&self, item_id: Uuid) -> Result<Vec<Copy>, StoreError> {
        const LIST: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at \
             FROM copies WHERE item_id = $1 AND deleted_at IS NULL ORDER BY barcode";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).bind(item_id).fetch_all(pool).await?))
    }

    /// A live copy.
    pub async fn find_copy(&self, id: Uuid) -> Result<Option<Copy>, StoreError> {
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at \
             FROM copies WHERE id = $1 AND deleted_at IS NULL";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await?),
        )
    }

    /// Changes a copy. A copy that is on loan or on the hold shelf keeps its status
    /// ([`StoreError::Refused`]); other fields may still change.
    pub async fn update_copy(
        &self,
        id: Uuid,
        changes: &CopyChanges,
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<Copy, StoreError> {
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at \
             FROM copies WHERE id = $1 AND deleted_at IS NULL";
        const UPDATE: &str = "UPDATE copies SET barcode = COALESCE($2, barcode), \
             location = CASE WHEN $3 THEN $4 ELSE location END, call_number = CASE WHEN $5 THEN $6 ELSE call_number END, \
             status = COALESCE($7, status), updated_at = $8 WHERE id = $1 \
             RETURNING id, item_id, barcode, location, call_number, status, created_at, updated_at";
        crate::on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let before: Copy = sqlx::query_as(SELECT).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            if changes.status.as_ref().is_some_and(|s| *s != before.status) && matches!(before.status.as_str(), "on_loan" | "on_hold_shelf") {
                return Err(StoreError::Refused("the copy is in circulation; return it or cancel its hold first"));
            }
            let after: Copy = sqlx::query_as(UPDATE)
                .bind(id)
                .bind(changes.barcode.as_deref())
                .bind(changes.location.is_some())
                .bind(changes.location.clone().flatten())
                .bind(changes.call_number.is_some())
                .bind(changes.call_number.clone().flatten())
                .bind(changes.status.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let details = json!({"copy_id": id, "barcode": after.barcode, "status": {"from": before.status, "to": after.status}});
            append_event!(tx, EventRecord { item_id: after.item_id, event_type: "copy_updated", actor_id: actor, at: now, details: &details });
            tx.commit().await?;
            Ok(after)
        })
    }

    /// Removes a copy from the catalog (soft delete, marked withdrawn); refused
    /// while it is on loan or on the hold shelf.
    pub async fn delete_copy(
        &self,
        id: Uuid,
        actor: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at \
             FROM copies WHERE id = $1 AND deleted_at IS NULL";
        const DELETE: &str = "UPDATE copies SET deleted_at = $2, status = 'withdrawn', updated_at = $2 WHERE id = $1";
        crate::on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let copy: Copy = sqlx::query_as(SELECT).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            if matches!(copy.status.as_str(), "on_loan" | "on_hold_shelf") {
                return Err(StoreError::Refused("the copy is in circulation; return it or cancel its hold first"));
            }
            sqlx::query(DELETE).bind(id).bind(now).execute(&mut *tx).await?;
            append_event!(tx, EventRecord { item_id: copy.item_id, event_type: "copy_deleted", actor_id: actor, at: now, details: &json!({"copy_id": id, "barcode": copy.barcode}) });
            tx.commit().await?;
            Ok(())
        })
    }
}
