//! Read models for self-check desks (SIP2): a copy's circulation state by
//! barcode, and a patron's loans, holds and fines with titles and barcodes.

use carrel_core::statuses::{CopyStatus, HoldStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use super::fines::{Fine, fine_select};
use crate::stored::Stored;
use crate::{Store, StoreError};

/// A copy by barcode, with its item, open loan and hold queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CopyState {
    pub copy_id: Uuid,
    pub item_id: Uuid,
    pub barcode: String,
    pub title: String,
    pub item_type: String,
    #[sqlx(try_from = "Stored<CopyStatus>")]
    pub status: CopyStatus,
    pub location: Option<String>,
    pub call_number: Option<String>,
    /// The open loan's due instant and borrower.
    pub due_at: Option<OffsetDateTime>,
    pub borrower: Option<Uuid>,
    /// Waiting holds on the item.
    pub holds_waiting: i64,
    /// The ready hold this copy sits on the hold shelf for: its pickup deadline.
    pub hold_expires_at: Option<OffsetDateTime>,
}

/// One open loan with what a desk shows.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeskLoan {
    pub loan_id: Uuid,
    pub barcode: String,
    pub title: String,
    pub due_at: OffsetDateTime,
}

/// One open hold with its title.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeskHold {
    pub hold_id: Uuid,
    pub title: String,
    /// `Waiting` or `Ready`.
    #[sqlx(try_from = "Stored<HoldStatus>")]
    pub status: HoldStatus,
}

/// A patron's open loans, holds and fines, oldest first, and the limits of
/// their patron category.
#[derive(Debug, Clone, Default)]
pub struct PatronSummary {
    pub loans: Vec<DeskLoan>,
    pub holds: Vec<DeskHold>,
    pub fines: Vec<Fine>,
    /// The category's loan limit; `None`: the global setting applies.
    pub max_active_loans: Option<u32>,
    /// The category's hold limit; `None`: the global setting applies.
    pub max_active_holds: Option<u32>,
}

impl Store {
    /// The live copy with `barcode`, or `None`.
    pub async fn copy_state(&self, barcode: &str) -> Result<Option<CopyState>, StoreError> {
        const SELECT: &str = "SELECT c.id AS copy_id, c.item_id, c.barcode, i.title, i.item_type, c.status, c.location, c.call_number, \
             l.due_at, l.user_id AS borrower, \
             (SELECT COUNT(*) FROM holds w WHERE w.item_id = c.item_id AND w.status = 'waiting') AS holds_waiting, \
             (SELECT h.expires_at FROM holds h WHERE h.copy_id = c.id AND h.status = 'ready') AS hold_expires_at \
             FROM copies c JOIN items i ON i.id = c.item_id \
             LEFT JOIN loans l ON l.copy_id = c.id AND l.status IN ('active', 'overdue') \
             WHERE c.barcode = $1 AND c.deleted_at IS NULL";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(barcode).fetch_optional(pool).await?),
        )
    }

    /// The open loans (with barcode and title), open holds and open fines of a patron.
    pub async fn patron_summary(&self, user_id: Uuid) -> Result<PatronSummary, StoreError> {
        const LOANS: &str = "SELECT l.id AS loan_id, c.barcode, i.title, l.due_at FROM loans l \
             JOIN copies c ON c.id = l.copy_id JOIN items i ON i.id = l.item_id \
             WHERE l.user_id = $1 AND l.status IN ('active', 'overdue') ORDER BY l.due_at, l.id";
        const HOLDS: &str = "SELECT h.id AS hold_id, i.title, h.status FROM holds h JOIN items i ON i.id = h.item_id \
             WHERE h.user_id = $1 AND h.status IN ('waiting', 'ready') ORDER BY h.created_at, h.id";
        const FINES: &str = concat!(
            "SELECT ",
            fine_select!(),
            " FROM fines WHERE user_id = $1 AND status = 'open' ORDER BY created_at, id"
        );
        const LIMITS: &str = "SELECT pc.max_active_loans, pc.max_active_holds FROM users u \
             JOIN patron_categories pc ON pc.code = u.category WHERE u.id = $1";
        crate::on_pool!(self, pool => {
            let loans = sqlx::query_as(LOANS).bind(user_id).fetch_all(pool).await?;
            let holds = sqlx::query_as(HOLDS).bind(user_id).fetch_all(pool).await?;
            let fines = sqlx::query_as(FINES).bind(user_id).fetch_all(pool).await?;
            let limits: Option<(Option<i32>, Option<i32>)> = sqlx::query_as(LIMITS).bind(user_id).fetch_optional(pool).await?;
            let (loans_limit, holds_limit) = limits.unwrap_or_default();
            let limit = |n: Option<i32>| n.map(|n| u32::try_from(n).unwrap_or(0));
            Ok(PatronSummary { loans, holds, fines, max_active_loans: limit(loans_limit), max_active_holds: limit(holds_limit) })
        })
    }
}
