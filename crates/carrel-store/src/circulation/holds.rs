//! Holds: a first-come, first-served queue per item, and the hold shelf.

use carrel_core::decide::{HoldFacts, decide_hold_placement};
use carrel_core::statuses::HoldStatus;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CirculationEvent, Refusal, circulation_event};
use crate::audit::append_audit_trail;
use crate::stored::Stored;
use crate::{AuditTrail, Backend, Store, StoreError};

/// Hold columns plus `position`: 1-based among the item's waiting holds
/// (first come, first served; ties on the second broken by id), NULL once the
/// hold is no longer waiting.
macro_rules! hold_select {
    () => {
        "SELECT h.id, h.item_id, h.user_id, h.status, h.created_at, h.ready_at, h.expires_at, h.copy_id, h.closed_at, h.pickup_branch_id, \
         CASE WHEN h.status = 'waiting' THEN (SELECT COUNT(*) FROM holds w WHERE w.item_id = h.item_id \
              AND w.status = 'waiting' AND (w.created_at < h.created_at OR (w.created_at = h.created_at AND w.id <= h.id))) \
         END AS position FROM holds h "
    };
}
pub(crate) use hold_select;

/// A stored hold.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Hold {
    pub id: Uuid,
    pub item_id: Uuid,
    /// None once the hold has been anonymised.
    pub user_id: Option<Uuid>,
    #[sqlx(try_from = "Stored<HoldStatus>")]
    pub status: HoldStatus,
    pub created_at: OffsetDateTime,
    pub ready_at: Option<OffsetDateTime>,
    /// The last moment a ready hold may be collected.
    pub expires_at: Option<OffsetDateTime>,
    /// The copy on the hold shelf for a ready hold (kept once fulfilled).
    pub copy_id: Option<Uuid>,
    /// When the hold was fulfilled, cancelled or expired.
    pub closed_at: Option<OffsetDateTime>,
    /// Where the patron collects it.
    pub pickup_branch_id: Uuid,
    pub position: Option<i64>,
}

/// A hold to place, with the limits from configuration.
#[derive(Debug, Clone)]
pub struct PlaceHold {
    pub item_id: Uuid,
    /// The patron who will collect it.
    pub user_id: Uuid,
    /// Who placed it (the patron or a librarian).
    pub actor: Option<Uuid>,
    /// Where to collect it; None: the patron's home branch, else MAIN.
    pub pickup_branch_id: Option<Uuid>,
    pub now: OffsetDateTime,
    pub pickup_days: u32,
    /// Waiting plus ready holds a patron may have, for patron categories
    /// without their own limit.
    pub max_active_holds: u32,
    /// Open fines of at least this much block new holds; 0 disables the block.
    pub block_threshold_cents: i64,
}

/// Filters of a hold listing.
#[derive(Debug, Clone)]
pub struct HoldQuery {
    pub user_id: Option<Uuid>,
    pub item_id: Option<Uuid>,
    /// One status, or None for the open ones (`waiting` and `ready`).
    pub status: Option<HoldStatus>,
    /// Keyset position (created_at, id) of the last row of the previous page.
    pub after: Option<(OffsetDateTime, Uuid)>,
    pub limit: u32,
}

/// PostgreSQL: the lock on an item's hold queue (a no-key lock of its row),
/// taken by placing a hold (`ITEM_LOCKED` in [`Store::place_hold`]) and by a
/// return (this statement, for the item of the copy with barcode `$1`) before
/// either reads the queue or the shelf. Without it, under READ COMMITTED, a
/// return that sees no one waiting shelves the copy while a hold placed at the
/// same moment sees no copy on the shelf, and both commit: a patron waits
/// beside an available copy (seen in the conformance suite). With it, the
/// second reads what the first committed. Checkouts take a key share of the
/// row, which does not wait for it. (SQLite serialises writers already.)
pub(crate) const LOCK_QUEUE_BY_BARCODE_PG: &str = "SELECT i.id FROM copies c JOIN items i ON i.id = c.item_id \
     WHERE c.barcode = $1 FOR NO KEY UPDATE OF i";

/// Makes hold `$hold` of `$patron` ready with `$copy` on the hold shelf of its
/// pickup branch `$pickup`: the pickup window counts open days of that branch.
/// Enqueues the "ready for pickup" mail (the caller wakes the sender after the
/// commit). Evaluates to whether the hold was still waiting (and is now ready).
macro_rules! ready_hold {
    ($tx:expr, $library:expr, $item:expr, $hold:expr, $patron:expr, $copy:expr, $pickup:expr, $now:expr, $pickup_days:expr, $actor:expr) => {{
        let (item_id, hold_id, patron, copy_id, pickup): (uuid::Uuid, uuid::Uuid, uuid::Uuid, uuid::Uuid, uuid::Uuid) =
            ($item, $hold, $patron, $copy, $pickup);
        let now: time::OffsetDateTime = $now;
        let days = $crate::branches::load_branch_days!($tx, pickup, $library, $library.zone.local_date(now));
        let expires_at = carrel_core::circulation::pickup_expires_at(&days, now, $pickup_days);
        let readied = sqlx::query(
            "UPDATE holds SET status = 'ready', copy_id = $2, ready_at = $3, expires_at = $4 WHERE id = $1 AND status = 'waiting'",
        )
        .bind(hold_id)
        .bind(copy_id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if readied == 1 {
            sqlx::query("INSERT INTO notices_sent (kind, subject_id, sent_at) VALUES ('hold_ready', $1, $2) ON CONFLICT DO NOTHING")
                .bind(hold_id)
                .bind(now)
                .execute(&mut *$tx)
                .await?;
            // The "ready for pickup" mail, in this transaction: it goes out if and
            // only if the hold became ready (a deleted patron gets none).
            let addressee: Option<(String, String)> = sqlx::query_as(
                "SELECT u.email, i.title FROM users u JOIN items i ON i.id = $2 WHERE u.id = $1 AND u.deleted_at IS NULL",
            )
            .bind(patron)
            .bind(item_id)
            .fetch_optional(&mut *$tx)
            .await?;
            if let Some((email, title)) = addressee {
                let mail = $crate::NewOutboxMessage {
                    kind: carrel_core::statuses::MessageKind::HoldReady,
                    recipient: email,
                    priority: $crate::OutboxPriority::Normal,
                    payload: serde_json::json!({"hold_id": hold_id, "title": title, "pickup_until": expires_at.unix_timestamp()}),
                };
                $crate::outbox::enqueue_messages!($tx, [&mail], now);
            }
            let details = serde_json::json!({"hold_id": hold_id, "copy_id": copy_id, "branch_id": pickup, "expires_at": expires_at.unix_timestamp()});
            $crate::circulation::circulation_event!($tx, $crate::circulation::CirculationEvent {
                item_id, event_type: "hold_ready", actor_id: $actor, at: now, details: &details,
                loan_id: None, hold_id: Some(hold_id), patron_id: Some(patron),
            });
        }
        readied == 1
    }};
}
pub(crate) use ready_hold;

/// Sends copy `$copy` (status `available`, physically at branch `$from`) in
/// transit to `$to`, for hold `$hold` when given. Records the step in the
/// item's history. Evaluates to whether the copy was claimed.
macro_rules! start_transit {
    ($tx:expr, $item:expr, $copy:expr, $from:expr, $to:expr, $hold:expr, $now:expr, $actor:expr) => {{
        let (item_id, copy_id, from, to): (uuid::Uuid, uuid::Uuid, uuid::Uuid, uuid::Uuid) = ($item, $copy, $from, $to);
        let hold: Option<uuid::Uuid> = $hold;
        let now: time::OffsetDateTime = $now;
        let moved = sqlx::query(
            "UPDATE copies SET status = 'in_transit', transit_to_branch_id = $2, updated_at = $3 WHERE id = $1 AND status = 'available'",
        )
        .bind(copy_id)
        .bind(to)
        .bind(now)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if moved == 1 {
            let details = serde_json::json!({"copy_id": copy_id, "from_branch_id": from, "to_branch_id": to, "hold_id": hold});
            $crate::circulation::circulation_event!($tx, $crate::circulation::CirculationEvent {
                item_id, event_type: "transit_started", actor_id: $actor, at: now, details: &details,
                loan_id: None, hold_id: hold, patron_id: None,
            });
        }
        moved == 1
    }};
}
pub(crate) use start_transit;

/// A copy left `available` at branch `$at` that is not its home goes home in
/// transit. Evaluates to the destination when it was sent.
macro_rules! send_home_if_away {
    ($tx:expr, $item:expr, $copy:expr, $at:expr, $now:expr, $actor:expr) => {{
        let (item_id, copy_id, at): (uuid::Uuid, uuid::Uuid, uuid::Uuid) = ($item, $copy, $at);
        let home: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT branch_id FROM copies WHERE id = $1 AND status = 'available'",
        )
        .bind(copy_id)
        .fetch_optional(&mut *$tx)
        .await?;
        match home {
            Some(home) if home != at => {
                if $crate::circulation::holds::start_transit!(
                    $tx, item_id, copy_id, at, home, None, $now, $actor
                ) {
                    Some(home)
                } else {
                    None
                }
            }
            _ => None,
        }
    }};
}
pub(crate) use send_home_if_away;

/// Gives available copies of `$item` to its waiting holds, first come first
/// served, preferring `$prefer` (the copy just returned or released, which is
/// physically at branch `$prefer_at`; every other available copy is at its home
/// branch). A copy already at the hold's pickup branch goes to its hold shelf
/// and the hold is ready; a copy elsewhere goes in transit there and the hold
/// keeps waiting with that copy assigned (it becomes ready on arrival). Each
/// claim is a compare-and-set, so concurrent transactions never hand one copy
/// to two holds or one hold two copies. Evaluates to the ids of the holds made
/// ready; their `hold_ready` mail is enqueued in the outbox here (the caller
/// wakes the sender after the commit).
macro_rules! fill_waiting_holds {
    ($tx:expr, $library:expr, $item:expr, $prefer:expr, $prefer_at:expr, $now:expr, $pickup_days:expr, $actor:expr) => {{
        let item_id: uuid::Uuid = $item;
        let prefer: Option<uuid::Uuid> = $prefer;
        let prefer_at: Option<uuid::Uuid> = $prefer_at;
        let now: time::OffsetDateTime = $now;
        let mut made_ready: Vec<uuid::Uuid> = Vec::new();
        // Bounded: each round either claims a copy for a hold or loses a race.
        for _ in 0..32 {
            let next: Option<(uuid::Uuid, uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
                "SELECT id, user_id, pickup_branch_id FROM holds WHERE item_id = $1 AND status = 'waiting' AND copy_id IS NULL \
                 ORDER BY created_at, id LIMIT 1",
            )
            .bind(item_id)
            .fetch_optional(&mut *$tx)
            .await?;
            let Some((hold_id, patron, pickup)) = next else { break };
            // The preferred copy first, then copies already at the pickup branch.
            let copy: Option<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
                "SELECT id, branch_id FROM copies WHERE item_id = $1 AND status = 'available' AND deleted_at IS NULL \
                 ORDER BY CASE WHEN id = $2 THEN 0 WHEN branch_id = $3 THEN 1 ELSE 2 END, barcode LIMIT 1",
            )
            .bind(item_id)
            .bind(prefer)
            .bind(pickup)
            .fetch_optional(&mut *$tx)
            .await?;
            let Some((copy_id, home)) = copy else { break };
            let fill = carrel_core::decide::decide_hold_fill(&carrel_core::decide::HoldFillFacts {
                copy: copy_id, copy_home: home, prefer, prefer_at, pickup,
            });
            if let carrel_core::decide::HoldFill::Transit { from, to } = fill {
                if !$crate::circulation::holds::start_transit!($tx, item_id, copy_id, from, to, Some(hold_id), now, $actor) {
                    continue;
                }
                let assigned = sqlx::query("UPDATE holds SET copy_id = $2 WHERE id = $1 AND status = 'waiting' AND copy_id IS NULL")
                    .bind(hold_id)
                    .bind(copy_id)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected();
                if assigned == 0 {
                    sqlx::query("UPDATE copies SET status = 'available', transit_to_branch_id = NULL, updated_at = $2 WHERE id = $1")
                        .bind(copy_id)
                        .bind(now)
                        .execute(&mut *$tx)
                        .await?;
                }
                continue;
            }
            let shelved = sqlx::query(
                "UPDATE copies SET status = 'on_hold_shelf', updated_at = $2 WHERE id = $1 AND status = 'available'",
            )
            .bind(copy_id)
            .bind(now)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if shelved == 0 {
                continue;
            }
            if !$crate::circulation::holds::ready_hold!($tx, $library, item_id, hold_id, patron, copy_id, pickup, now, $pickup_days, $actor) {
                sqlx::query("UPDATE copies SET status = 'available', updated_at = $2 WHERE id = $1")
                    .bind(copy_id)
                    .bind(now)
                    .execute(&mut *$tx)
                    .await?;
                continue;
            }
            made_ready.push(hold_id);
        }
        made_ready
    }};
}
pub(crate) use fill_waiting_holds;

impl Store {
    /// Places a hold on a live item. When a copy is on the shelf and nobody
    /// is ahead in the queue, the hold is ready at once and that copy goes to
    /// the hold shelf. Refused for a patron who owes at least the block
    /// threshold, when the rule in force does not allow holds, or for a patron
    /// who already has their category's (else `max_active_holds`) open holds; on PostgreSQL
    /// the patron row is locked first, so parallel placements are counted one
    /// after the other (SQLite serialises writers already).
    pub async fn place_hold(
        &self,
        request: &PlaceHold,
        audit: impl AuditTrail<Hold>,
    ) -> Result<Hold, StoreError> {
        const ITEM: &str = "SELECT item_type FROM items WHERE id = $1 AND deleted_at IS NULL";
        const ITEM_LOCKED: &str =
            "SELECT item_type FROM items WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE";
        const PATRON: &str = "SELECT u.is_active, u.category, pc.max_active_holds FROM users u \
             JOIN patron_categories pc ON pc.code = u.category WHERE u.id = $1 AND u.deleted_at IS NULL";
        const PATRON_LOCKED: &str = "SELECT u.is_active, u.category, pc.max_active_holds FROM users u \
             JOIN patron_categories pc ON pc.code = u.category WHERE u.id = $1 AND u.deleted_at IS NULL FOR UPDATE OF u";
        const OPEN_HOLDS: &str =
            "SELECT COUNT(*) FROM holds WHERE user_id = $1 AND status IN ('waiting', 'ready')";
        const BORROWED: &str = "SELECT COUNT(*) FROM loans WHERE item_id = $1 AND user_id = $2 AND status IN ('active', 'overdue')";
        const HELD: &str = "SELECT COUNT(*) FROM holds WHERE item_id = $1 AND user_id = $2 AND status IN ('waiting', 'ready')";
        const INSERT: &str = "INSERT INTO holds (id, item_id, user_id, status, created_at, pickup_branch_id) VALUES ($1, $2, $3, 'waiting', $4, $5)";
        const HOME: &str = "SELECT home_branch_id FROM users WHERE id = $1";
        const SELECT: &str = concat!(hold_select!(), "WHERE h.id = $1");
        let r = request;
        let library = self.library_time.clone();
        let (item_id, user_id, actor, now) = (r.item_id, r.user_id, r.actor, r.now);
        let (item_sql, patron_sql) = match self.backend() {
            Backend::Sqlite => (ITEM, PATRON),
            // The item's queue first (see [`LOCK_QUEUE_BY_BARCODE_PG`]), then the patron.
            Backend::Postgres => (ITEM_LOCKED, PATRON_LOCKED),
        };
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let item_type: String = sqlx::query_scalar(item_sql).bind(item_id).fetch_optional(&mut *tx).await?
                .ok_or(StoreError::NotFound)?;
            let (active, category, category_max_holds): (bool, String, Option<i32>) = sqlx::query_as(patron_sql)
                .bind(user_id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let owed: i64 = sqlx::query_scalar(super::loans::BALANCE).bind(user_id).fetch_one(&mut *tx).await?;
            // The pickup branch's rows of the rule matrix apply.
            let pickup = match r.pickup_branch_id {
                Some(branch) => branch,
                None => {
                    let home: Option<Uuid> = sqlx::query_scalar(HOME).bind(user_id).fetch_one(&mut *tx).await?;
                    home.unwrap_or(crate::MAIN_BRANCH_ID)
                }
            };
            let key = carrel_core::rules::RuleKey {
                branch_id: Some(pickup),
                patron_category: Some(category.as_str()),
                item_type: Some(item_type.as_str()),
            };
            let (rule, _) = super::rules::resolve_rule!(tx, &key);
            let open: i64 = sqlx::query_scalar(OPEN_HOLDS).bind(user_id).fetch_one(&mut *tx).await?;
            let borrowed: i64 = sqlx::query_scalar(BORROWED).bind(item_id).bind(user_id).fetch_one(&mut *tx).await?;
            let held: i64 = sqlx::query_scalar(HELD).bind(item_id).bind(user_id).fetch_one(&mut *tx).await?;
            decide_hold_placement(&HoldFacts {
                patron_active: active,
                balance_cents: owed,
                block_threshold_cents: r.block_threshold_cents,
                holds_allowed: rule.holds_allowed,
                open_holds: u64::try_from(open).unwrap_or(0),
                max_holds: category_max_holds.map_or(u64::from(r.max_active_holds), |n| u64::try_from(n).unwrap_or(0)),
                borrowed: borrowed > 0,
                already_holds: held > 0,
            })?;
            let id = Uuid::now_v7();
            sqlx::query(INSERT).bind(id).bind(item_id).bind(user_id).bind(now).bind(pickup).execute(&mut *tx).await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict { .. } => StoreError::Circulation(Refusal::HoldExists),
                    other => other,
                })?;
            circulation_event!(tx, CirculationEvent {
                item_id, event_type: "hold_placed", actor_id: actor, at: now, details: &json!({"hold_id": id, "pickup_branch_id": pickup}),
                loan_id: None, hold_id: Some(id), patron_id: Some(user_id),
            });
            let ready = fill_waiting_holds!(tx, &library, item_id, None, None, now, r.pickup_days, actor);
            let hold: Hold = sqlx::query_as(SELECT).bind(id).fetch_one(&mut *tx).await?;
            let events = append_audit_trail!(tx, audit, &hold);
            tx.commit().await?;
            crate::audit::log(&events);
            if !ready.is_empty() {
                self.wake_outbox();
            }
            Ok(hold)
        })
    }

    /// A hold by id.
    pub async fn find_hold(&self, id: Uuid) -> Result<Option<Hold>, StoreError> {
        const SELECT: &str = concat!(hold_select!(), "WHERE h.id = $1");
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await?),
        )
    }

    /// Cancels an open hold. The positions behind a waiting hold move up; the
    /// copy of a ready hold goes to the next in line, or back to the shelf.
    /// Returns the holds that became ready. `audit`'s entries are committed
    /// with the cancellation.
    pub async fn cancel_hold(
        &self,
        id: Uuid,
        actor: Option<Uuid>,
        now: OffsetDateTime,
        pickup_days: u32,
        audit: impl AuditTrail<Vec<Uuid>>,
    ) -> Result<Vec<Uuid>, StoreError> {
        const CANCEL: &str = "UPDATE holds SET status = 'cancelled', closed_at = $2 \
             WHERE id = $1 AND status IN ('waiting', 'ready') RETURNING item_id, user_id, copy_id, pickup_branch_id";
        const EXISTS: &str = "SELECT COUNT(*) FROM holds WHERE id = $1";
        let library = self.library_time.clone();
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let cancelled: Option<(Uuid, Option<Uuid>, Option<Uuid>, Uuid)> =
                sqlx::query_as(CANCEL).bind(id).bind(now).fetch_optional(&mut *tx).await?;
            let Some((item_id, patron, copy_id, pickup)) = cancelled else {
                let exists: i64 = sqlx::query_scalar(EXISTS).bind(id).fetch_one(&mut *tx).await?;
                return Err(if exists == 0 { StoreError::NotFound } else { Refusal::HoldClosed.into() });
            };
            circulation_event!(tx, CirculationEvent {
                item_id, event_type: "hold_cancelled", actor_id: actor, at: now, details: &json!({"hold_id": id}),
                loan_id: None, hold_id: Some(id), patron_id: patron,
            });
            let mut ready = Vec::new();
            // A ready hold's copy is on the pickup branch's hold shelf: it goes to
            // the next in line, or home. (A copy still in transit to a cancelled
            // waiting hold is dealt with when it arrives.)
            if let Some(copy_id) = copy_id {
                let released = sqlx::query(
                    "UPDATE copies SET status = 'available', updated_at = $2 WHERE id = $1 AND status = 'on_hold_shelf' \
                     AND NOT EXISTS (SELECT 1 FROM holds WHERE copy_id = $1 AND status = 'ready')",
                )
                .bind(copy_id).bind(now).execute(&mut *tx).await?.rows_affected();
                if released == 1 {
                    ready = fill_waiting_holds!(tx, &library, item_id, Some(copy_id), Some(pickup), now, pickup_days, actor);
                    send_home_if_away!(tx, item_id, copy_id, pickup, now, actor);
                }
            }
            let events = append_audit_trail!(tx, audit, &ready);
            tx.commit().await?;
            crate::audit::log(&events);
            if !ready.is_empty() {
                self.wake_outbox();
            }
            Ok(ready)
        })
    }

    /// Moves a waiting hold's pickup to `branch` (the holder or a librarian;
    /// the caller checked who may). Only a waiting hold moves: a ready one's
    /// copy is already on a hold shelf, a closed one is history
    /// ([`Refusal::HoldNotWaiting`]). The rule matrix at the new branch must
    /// allow holds for the patron's category and the item's type, as when
    /// placing one. A branch that does not exist (or was deleted meanwhile)
    /// is refused by the foreign key. `audit`'s entries (given the hold
    /// before the change) are committed with the change; returns the hold
    /// after it.
    pub async fn change_hold_pickup(
        &self,
        id: Uuid,
        branch: Uuid,
        actor: Option<Uuid>,
        now: OffsetDateTime,
        audit: impl AuditTrail<Hold>,
    ) -> Result<Hold, StoreError> {
        const SELECT: &str = concat!(hold_select!(), "WHERE h.id = $1");
        const KEY: &str =
            "SELECT i.item_type, u.category FROM items i, users u WHERE i.id = $1 AND u.id = $2";
        const MOVE: &str =
            "UPDATE holds SET pickup_branch_id = $2 WHERE id = $1 AND status = 'waiting'";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let before: Hold = sqlx::query_as(SELECT).bind(id).fetch_optional(&mut *tx).await?
                .ok_or(StoreError::NotFound)?;
            if before.status != HoldStatus::Waiting {
                return Err(Refusal::HoldNotWaiting.into());
            }
            if let Some(patron) = before.user_id {
                let found: Option<(String, String)> =
                    sqlx::query_as(KEY).bind(before.item_id).bind(patron).fetch_optional(&mut *tx).await?;
                if let Some((item_type, category)) = found {
                    let key = carrel_core::rules::RuleKey {
                        branch_id: Some(branch),
                        patron_category: Some(category.as_str()),
                        item_type: Some(item_type.as_str()),
                    };
                    let (rule, _) = super::rules::resolve_rule!(tx, &key);
                    if !rule.holds_allowed {
                        return Err(Refusal::HoldsNotAllowed.into());
                    }
                }
            }
            // Guarded: a hold that became ready (or closed) since the read stays put.
            let moved = sqlx::query(MOVE).bind(id).bind(branch).execute(&mut *tx).await?.rows_affected();
            if moved != 1 {
                return Err(Refusal::HoldNotWaiting.into());
            }
            circulation_event!(tx, CirculationEvent {
                item_id: before.item_id, event_type: "hold_pickup_changed", actor_id: actor, at: now,
                details: &json!({"hold_id": id, "from": before.pickup_branch_id, "to": branch}),
                loan_id: None, hold_id: Some(id), patron_id: before.user_id,
            });
            let events = append_audit_trail!(tx, audit, &before);
            let after: Hold = sqlx::query_as(SELECT).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(after)
        })
    }

    /// Holds, newest first.
    pub async fn list_holds(&self, query: &HoldQuery) -> Result<Vec<Hold>, StoreError> {
        const LIST: &str = concat!(
            hold_select!(),
            "WHERE ($1 IS NULL OR h.user_id = $1) AND ($2 IS NULL OR h.item_id = $2) \
               AND (CASE WHEN $3 IS NULL THEN h.status IN ('waiting', 'ready') ELSE h.status = $3 END) \
               AND ($4 IS NULL OR h.created_at < $4 OR (h.created_at = $4 AND h.id < $5)) \
             ORDER BY h.created_at DESC, h.id DESC LIMIT $6"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(query.user_id)
            .bind(query.item_id)
            .bind(query.status.map(HoldStatus::as_str))
            .bind(query.after.map(|(at, _)| at))
            .bind(query.after.map(|(_, id)| id))
            .bind(i64::from(query.limit) + 1)
            .fetch_all(pool)
            .await?))
    }

    /// Every hold of a user (for the data export), oldest first.
    pub async fn user_holds(&self, user_id: Uuid) -> Result<Vec<Hold>, StoreError> {
        const LIST: &str = concat!(
            hold_select!(),
            "WHERE h.user_id = $1 ORDER BY h.created_at, h.id"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).bind(user_id).fetch_all(pool).await?))
    }
}
