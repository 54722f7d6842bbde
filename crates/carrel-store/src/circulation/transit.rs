//! Transit: copies on their way between branches, and their arrival.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::holds::{Hold, fill_waiting_holds, hold_select, ready_hold, send_home_if_away};
use super::{CirculationEvent, Refusal, circulation_event};
use crate::audit::append_audit_trail;
use crate::{AuditTrail, Copy, Store, StoreError};

/// A copy on its way to a branch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Transit {
    pub copy_id: Uuid,
    pub item_id: Uuid,
    pub barcode: String,
    pub title: String,
    /// The copy's home branch.
    pub home_branch_id: Uuid,
    /// Where it is going.
    pub to_branch_id: Uuid,
    /// The hold it will fill there, if any.
    pub hold_id: Option<Uuid>,
    /// When it was sent.
    pub since: OffsetDateTime,
}

/// A copy that arrived at the branch it travelled to.
#[derive(Debug, Clone)]
pub struct ReceiveOutcome {
    /// The copy as it now is: on this branch's hold shelf, available here, or
    /// (should nobody here want it and this not be its home) on its way home.
    pub copy: Copy,
    /// The hold now ready for pickup here, if any.
    pub hold: Option<Hold>,
    /// The branch it arrived at.
    pub branch_id: Uuid,
}

impl Store {
    /// Scans in copy `copy_id` at branch `branch_id`, where it was travelling
    /// to. The hold it was sent for becomes ready (its pickup days start now);
    /// without one the copy goes to the next waiting hold, or on the shelf
    /// here, or home. Refused ([`Refusal::NotInTransit`]) for a copy that is
    /// not in transit to this branch.
    pub async fn receive_copy(
        &self,
        copy_id: Uuid,
        branch_id: Uuid,
        actor: Option<Uuid>,
        now: OffsetDateTime,
        pickup_days: u32,
        audit: impl AuditTrail<ReceiveOutcome>,
    ) -> Result<ReceiveOutcome, StoreError> {
        const COPY: &str = "SELECT item_id, status, transit_to_branch_id FROM copies WHERE id = $1 AND deleted_at IS NULL";
        const ARRIVE: &str = "UPDATE copies SET status = 'available', transit_to_branch_id = NULL, updated_at = $3 \
             WHERE id = $1 AND status = 'in_transit' AND transit_to_branch_id = $2";
        const FOR_HOLD: &str = "SELECT id, user_id FROM holds WHERE copy_id = $1 AND status = 'waiting' AND pickup_branch_id = $2 \
             AND user_id IS NOT NULL ORDER BY created_at LIMIT 1";
        const SHELVE: &str = "UPDATE copies SET status = 'on_hold_shelf', updated_at = $2 WHERE id = $1 AND status = 'available'";
        const RELEASE: &str =
            "UPDATE holds SET copy_id = NULL WHERE copy_id = $1 AND status = 'waiting'";
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id \
             FROM copies WHERE id = $1";
        const HOLD: &str = concat!(hold_select!(), "WHERE h.id = $1");
        let library = self.library_time.clone();
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let found: Option<(Uuid, String, Option<Uuid>)> = sqlx::query_as(COPY).bind(copy_id).fetch_optional(&mut *tx).await?;
            let (item_id, _, _) = found.ok_or(StoreError::NotFound)?;
            let arrived = sqlx::query(ARRIVE).bind(copy_id).bind(branch_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if arrived == 0 {
                return Err(Refusal::NotInTransit.into());
            }
            circulation_event!(tx, CirculationEvent {
                item_id, event_type: "transit_received", actor_id: actor, at: now,
                details: &json!({"copy_id": copy_id, "branch_id": branch_id}),
                loan_id: None, hold_id: None, patron_id: None,
            });
            let mut hold = None;
            let waiting: Option<(Uuid, Uuid)> = sqlx::query_as(FOR_HOLD).bind(copy_id).bind(branch_id).fetch_optional(&mut *tx).await?;
            if let Some((hold_id, patron)) = waiting
                && sqlx::query(SHELVE).bind(copy_id).bind(now).execute(&mut *tx).await?.rows_affected() == 1
            {
                if ready_hold!(tx, &library, item_id, hold_id, patron, copy_id, branch_id, now, pickup_days, actor) {
                    hold = Some(hold_id);
                } else {
                    sqlx::query("UPDATE copies SET status = 'available', updated_at = $2 WHERE id = $1")
                        .bind(copy_id).bind(now).execute(&mut *tx).await?;
                }
            }
            let mut ready = Vec::new();
            if hold.is_none() {
                // Its hold went away on the road: whoever waits next, or home.
                sqlx::query(RELEASE).bind(copy_id).execute(&mut *tx).await?;
                ready = fill_waiting_holds!(tx, &library, item_id, Some(copy_id), Some(branch_id), now, pickup_days, actor);
                send_home_if_away!(tx, item_id, copy_id, branch_id, now, actor);
                let filled: Option<Uuid> = sqlx::query_scalar("SELECT id FROM holds WHERE copy_id = $1 AND status = 'ready'")
                    .bind(copy_id).fetch_optional(&mut *tx).await?;
                hold = filled;
            }
            let copy: Copy = sqlx::query_as(SELECT).bind(copy_id).fetch_one(&mut *tx).await?;
            let hold: Option<Hold> = match hold {
                Some(id) => Some(sqlx::query_as(HOLD).bind(id).fetch_one(&mut *tx).await?),
                None => None,
            };
            let mailed = hold.is_some() || !ready.is_empty();
            let outcome = ReceiveOutcome { copy, hold, branch_id };
            let events = append_audit_trail!(tx, audit, &outcome);
            tx.commit().await?;
            crate::audit::log(&events);
            if mailed {
                self.wake_outbox();
            }
            Ok(outcome)
        })
    }

    /// Copies in transit, to `to_branch` when given, oldest first; keyset
    /// after (since, copy id).
    pub async fn list_transits(
        &self,
        to_branch: Option<Uuid>,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Transit>, StoreError> {
        const LIST: &str = "SELECT c.id AS copy_id, c.item_id, c.barcode, i.title, c.branch_id AS home_branch_id, \
             c.transit_to_branch_id AS to_branch_id, \
             (SELECT h.id FROM holds h WHERE h.copy_id = c.id AND h.status = 'waiting' ORDER BY h.created_at LIMIT 1) AS hold_id, \
             c.updated_at AS since \
             FROM copies c JOIN items i ON i.id = c.item_id \
             WHERE c.status = 'in_transit' AND c.deleted_at IS NULL AND ($1 IS NULL OR c.transit_to_branch_id = $1) \
               AND ($2 IS NULL OR c.updated_at > $2 OR (c.updated_at = $2 AND c.id > $3)) \
             ORDER BY c.updated_at, c.id LIMIT $4";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(to_branch)
            .bind(after.map(|(at, _)| at))
            .bind(after.map(|(_, id)| id))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?))
    }

    /// A live copy by barcode.
    pub async fn find_copy_by_barcode(&self, barcode: &str) -> Result<Option<Copy>, StoreError> {
        const SELECT: &str = "SELECT id, item_id, barcode, location, call_number, status, created_at, updated_at, branch_id, transit_to_branch_id \
             FROM copies WHERE barcode = $1 AND deleted_at IS NULL";
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(barcode).fetch_optional(pool).await?),
        )
    }
}
