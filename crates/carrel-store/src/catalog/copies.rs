//! Copies: the physical pieces of an item, each with a unique barcode.

use carrel_core::statuses::CopyStatus;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{EventRecord, append_event};
use crate::stored::Stored;
use crate::{Store, StoreError};

/// A stored copy.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Copy {
    pub id: Uuid,
    pub item_id: Uuid,
    pub barcode: String,
    pub location: Option<String>,
    pub call_number: Option<String>,
    #[sqlx(try_from = "Stored<CopyStatus>")]
    pub status: CopyStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The home branch (where it is shelved when available).
    #[sqlx(default)]
    pub branch_id: Uuid,
    /// Where it travels to while `in_transit`.
    #[sqlx(default)]
    pub transit_to_branch_id: Option<Uuid>,
}

/// How many copies of an item a branch holds (its home), and how many are on
/// its shelf.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BranchAvailability {
    pub item_id: Uuid,
    pub branch_id: Uuid,
    /// Copies whose home is the branch (withdrawn ones left out).
    pub copies_total: i64,
    /// Of those, the ones available there now.
    pub copies_available: i64,
}

/// A copy to add to an item.
#[derive(Debug, Clone)]
pub struct NewCopy {
    pub barcode: String,
    /// The home branch; None means MAIN.
    pub branch_id: Option<Uuid>,
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
    pub status: Option<CopyStatus>,
    /// A new home branch.
    pub branch_id: Option<Uuid>,
}

/// Why a copy that circulates cannot be deleted.
const IN_CIRCULATION: &str = "the copy is in circulation; return it or cancel its hold first";

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
        const INSERT: &str = "INSERT INTO copies (id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id) \
             VALUES ($1, $2, $3, $4, $5, 'available', $6, $6, $7) \
             RETURNING id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
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
                .bind(copy.branch_id.unwrap_or(crate::MAIN_BRANCH_ID))
                .fetch_one(&mut *tx)
                .await?;
            append_event!(tx, EventRecord { item_id, event_type: "copy_added", actor_id: actor, at: now, details: &json!({"copy_id": created.id, "barcode": created.barcode}) });
            tx.commit().await?;
            Ok(created)
        })
    }

    /// Copy counts per item and home branch, for the items given (at most a
    /// page of them), in item and branch order.
    pub async fn copy_availability(
        &self,
        items: &[Uuid],
    ) -> Result<Vec<BranchAvailability>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        crate::on_pool!(self, pool => {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT item_id, branch_id, CAST(COUNT(*) AS BIGINT) AS copies_total, \
                 CAST(SUM(CASE WHEN status = 'available' THEN 1 ELSE 0 END) AS BIGINT) AS copies_available \
                 FROM copies WHERE deleted_at IS NULL AND status <> 'withdrawn' AND item_id IN (",
            );
            let mut list = qb.separated(", ");
            for id in items {
                list.push_bind(*id);
            }
            qb.push(") GROUP BY item_id, branch_id ORDER BY item_id, branch_id");
            Ok(qb.build_query_as().fetch_all(pool).await?)
        })
    }

    /// The live copies of an item, in barcode order.
    pub async fn list_copies(&self, item_id: Uuid) -> Result<Vec<Copy>, StoreError> {
        const LIST: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id \
             FROM copies WHERE item_id = $1 AND deleted_at IS NULL ORDER BY barcode";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).bind(item_id).fetch_all(pool).await?))
    }

    /// A live copy.
    pub async fn find_copy(&self, id: Uuid) -> Result<Option<Copy>, StoreError> {
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id \
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
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id \
             FROM copies WHERE id = $1 AND deleted_at IS NULL";
        const UPDATE: &str = "UPDATE copies SET barcode = COALESCE($2, barcode), \
             location = CASE WHEN $3 THEN $4 ELSE location END, call_number = CASE WHEN $5 THEN $6 ELSE call_number END, \
             status = COALESCE($7, status), updated_at = $8, branch_id = COALESCE($9, branch_id) WHERE id = $1 \
             RETURNING id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let before: Copy = sqlx::query_as(SELECT).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            if changes.status.is_some_and(|s| s != before.status) && before.status.in_circulation() {
                return Err(StoreError::Refused(IN_CIRCULATION));
            }
            let after: Copy = sqlx::query_as(UPDATE)
                .bind(id)
                .bind(changes.barcode.as_deref())
                .bind(changes.location.is_some())
                .bind(changes.location.clone().flatten())
                .bind(changes.call_number.is_some())
                .bind(changes.call_number.clone().flatten())
                .bind(changes.status.map(CopyStatus::as_str))
                .bind(now)
                .bind(changes.branch_id)
                .fetch_one(&mut *tx)
                .await?;
            let mut details = json!({"copy_id": id, "barcode": after.barcode, "status": {"from": before.status, "to": after.status}});
            if before.branch_id != after.branch_id {
                details["branch_id"] = json!({"from": before.branch_id, "to": after.branch_id});
            }
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
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id \
             FROM copies WHERE id = $1 AND deleted_at IS NULL";
        // A compare-and-set: a checkout (or hold) that took the copy after the
        // SELECT above wins, and the delete is refused, not applied over it.
        const DELETE: &str = "UPDATE copies SET deleted_at = $2, status = 'withdrawn', updated_at = $2 \
             WHERE id = $1 AND deleted_at IS NULL AND status NOT IN ('on_loan', 'on_hold_shelf', 'in_transit')";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let copy: Copy = sqlx::query_as(SELECT).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            if copy.status.in_circulation() {
                return Err(StoreError::Refused(IN_CIRCULATION));
            }
            if sqlx::query(DELETE).bind(id).bind(now).execute(&mut *tx).await?.rows_affected() == 0 {
                return Err(StoreError::Refused(IN_CIRCULATION));
            }
            append_event!(tx, EventRecord { item_id: copy.item_id, event_type: "copy_deleted", actor_id: actor, at: now, details: &json!({"copy_id": id, "barcode": copy.barcode}) });
            tx.commit().await?;
            Ok(())
        })
    }
}
