//! The hold shelf of a branch: copies set aside for patrons, waiting to be
//! picked up there (the desk lists them, oldest deadline first).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreError};

/// A ready hold on a branch's hold shelf.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShelfEntry {
    pub hold_id: Uuid,
    pub item_id: Uuid,
    pub title: String,
    /// The copy set aside (null only for a hold made ready without one).
    pub barcode: Option<String>,
    pub user_id: Uuid,
    /// The patron's full name, else username.
    pub patron: String,
    pub card_number: Option<String>,
    /// The last day of the pickup period, as an instant.
    pub expires_at: Option<OffsetDateTime>,
}

impl Store {
    /// The ready holds to be picked up at `branch`, the first to expire first
    /// (index `holds_pickup`); at most `limit`.
    pub async fn hold_shelf(
        &self,
        branch: Uuid,
        limit: u32,
    ) -> Result<Vec<ShelfEntry>, StoreError> {
        const SHELF: &str = "SELECT h.id AS hold_id, h.item_id, i.title, c.barcode, h.user_id, \
             COALESCE(NULLIF(u.full_name, ''), u.username) AS patron, u.card_number, h.expires_at \
             FROM holds h JOIN items i ON i.id = h.item_id JOIN users u ON u.id = h.user_id \
             LEFT JOIN copies c ON c.id = h.copy_id \
             WHERE h.pickup_branch_id = $1 AND h.status = 'ready' \
             ORDER BY h.expires_at, h.id LIMIT $2";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(SHELF)
            .bind(branch)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?))
    }
}
