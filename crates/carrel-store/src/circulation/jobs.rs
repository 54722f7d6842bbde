//! The storage side of the background jobs: a lease so one instance runs them
//! at a time, hold expiry, overdue marking, notices (each claimed once) and
//! anonymisation of old loans.

use carrel_core::calendar::{is_due_soon, retention_cutoff};
use carrel_core::statuses::MessageKind;
use serde_json::json;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use super::holds::{fill_waiting_holds, send_home_if_away};
use super::{CirculationEvent, circulation_event};
use crate::outbox::enqueue_messages;
use crate::{NewOutboxMessage, OutboxPriority, Store, StoreError};

/// How many rows one job step handles; the next run picks up the rest.
const BATCH: i64 = 500;

/// The kinds of notice mailed to patrons, each sent once per loan or hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    HoldReady,
    DueSoon,
    Overdue,
}

impl NoticeKind {
    /// The notice's name, as `notices_sent` stores it.
    pub fn as_str(self) -> &'static str {
        self.message_kind().as_str()
    }

    /// The message that carries the notice (same name).
    pub fn message_kind(self) -> MessageKind {
        match self {
            NoticeKind::HoldReady => MessageKind::HoldReady,
            NoticeKind::DueSoon => MessageKind::DueSoon,
            NoticeKind::Overdue => MessageKind::Overdue,
        }
    }
}

/// A notice to mail: the patron's address, the item's title and the moment it
/// is about (the due date, or the end of the pickup window).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notice {
    pub subject_id: Uuid,
    pub email: String,
    pub title: String,
    pub at: OffsetDateTime,
}

/// A loan that may be due soon, with what the local-day test needs.
#[derive(sqlx::FromRow)]
struct DueSoonCandidate {
    #[sqlx(flatten)]
    notice: Notice,
    due_date: Date,
    branch_timezone: Option<String>,
}

impl Store {
    /// Takes (or renews) the named lease for `ttl` if nobody else holds a live
    /// one. Only the holder runs the jobs; a crashed holder's lease runs out.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: Uuid,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        const TAKE: &str = "UPDATE job_leases SET holder = $2, expires_at = $3 \
             WHERE name = $1 AND (holder IS NULL OR holder = $2 OR expires_at < $4)";
        let taken = crate::on_writer!(self, writer => sqlx::query(TAKE)
            .bind(name).bind(holder).bind(now + ttl).bind(now)
            .execute(&mut *writer.turn().await?).await?.rows_affected());
        Ok(taken == 1)
    }

    /// Expires ready holds whose pickup window has passed; each copy goes to
    /// the next in line or back to the shelf. Returns the holds made ready.
    pub async fn expire_holds(
        &self,
        now: OffsetDateTime,
        pickup_days: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        const DUE: &str = "SELECT id FROM holds WHERE status = 'ready' AND expires_at < $1 ORDER BY expires_at LIMIT $2";
        const EXPIRE: &str = "UPDATE holds SET status = 'expired', closed_at = $2 WHERE id = $1 AND status = 'ready' \
             RETURNING item_id, user_id, copy_id, pickup_branch_id";
        const RELEASE: &str = "UPDATE copies SET status = 'available', updated_at = $2 WHERE id = $1 AND status = 'on_hold_shelf'";
        let mut ready = Vec::new();
        let library = self.library_time.clone();
        crate::on_pool!(self, pool, writer => {
            let due: Vec<Uuid> = sqlx::query_scalar(DUE).bind(now).bind(BATCH).fetch_all(pool).await?;
            for hold_id in due {
                let mut tx = writer.begin_write().await?;
                let expired: Option<(Uuid, Option<Uuid>, Option<Uuid>, Uuid)> =
                    sqlx::query_as(EXPIRE).bind(hold_id).bind(now).fetch_optional(&mut *tx).await?;
                if let Some((item_id, patron, copy_id, pickup)) = expired {
                    circulation_event!(tx, CirculationEvent {
                        item_id, event_type: "hold_expired", actor_id: None, at: now, details: &json!({"hold_id": hold_id, "copy_id": copy_id}),
                        loan_id: None, hold_id: Some(hold_id), patron_id: patron,
                    });
                    if let Some(copy_id) = copy_id {
                        sqlx::query(RELEASE).bind(copy_id).bind(now).execute(&mut *tx).await?;
                    }
                    ready.extend(fill_waiting_holds!(tx, &library, item_id, copy_id, Some(pickup), now, pickup_days, None));
                    if let Some(copy_id) = copy_id {
                        send_home_if_away!(tx, item_id, copy_id, pickup, now, None);
                    }
                }
                tx.commit().await?;
            }
        });
        if !ready.is_empty() {
            self.wake_outbox();
        }
        Ok(ready)
    }

    /// Gives copies that are on the shelf while patrons wait for their item
    /// (a copy added, or repaired and made available again) to those patrons.
    pub async fn fill_available_copies(
        &self,
        now: OffsetDateTime,
        pickup_days: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        const ITEMS: &str = "SELECT DISTINCT h.item_id FROM holds h \
             JOIN copies c ON c.item_id = h.item_id AND c.status = 'available' AND c.deleted_at IS NULL \
             WHERE h.status = 'waiting' AND h.copy_id IS NULL LIMIT $1";
        let mut ready = Vec::new();
        let library = self.library_time.clone();
        crate::on_pool!(self, pool, writer => {
            let items: Vec<Uuid> = sqlx::query_scalar(ITEMS).bind(BATCH).fetch_all(pool).await?;
            for item_id in items {
                let mut tx = writer.begin_write().await?;
                ready.extend(fill_waiting_holds!(tx, &library, item_id, None, None, now, pickup_days, None));
                tx.commit().await?;
            }
        });
        if !ready.is_empty() {
            self.wake_outbox();
        }
        Ok(ready)
    }

    /// Forgets idempotency keys used before `before`; returns how many. A retry
    /// after that is a new payment.
    pub async fn purge_idempotency_keys(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        const PURGE: &str = "DELETE FROM idempotency_keys WHERE created_at < $1";
        Ok(
            crate::on_writer!(self, writer => sqlx::query(PURGE).bind(before).execute(&mut *writer.turn().await?).await?.rows_affected()),
        )
    }

    /// Marks active loans past their due instant as overdue; returns how many.
    pub async fn mark_overdue(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        const MARK: &str =
            "UPDATE loans SET status = 'overdue' WHERE status = 'active' AND due_at < $1";
        Ok(
            crate::on_writer!(self, writer => sqlx::query(MARK).bind(now).execute(&mut *writer.turn().await?).await?.rows_affected()),
        )
    }

    /// Claims the due-soon or overdue notices not yet sent: each is recorded
    /// in `notices_sent` and its mail enqueued in the outbox in one
    /// transaction, so two instances (or two runs) never send one twice and a
    /// crash never loses one. A loan is due soon once its due day is at most
    /// `due_soon_days` local days of its lending branch away. Returns the
    /// notices enqueued.
    pub async fn claim_loan_notices(
        &self,
        kind: NoticeKind,
        now: OffsetDateTime,
        due_soon_days: u32,
    ) -> Result<Vec<Notice>, StoreError> {
        // `$2` bounds the candidates generously (a due day N local days away
        // ends within N + 1 days plus an offset change); the local-day test is exact.
        const DUE_SOON: &str = "SELECT l.id AS subject_id, u.email, i.title, l.due_at AS at, l.due_date, \
             b.timezone AS branch_timezone FROM loans l \
             JOIN users u ON u.id = l.user_id JOIN items i ON i.id = l.item_id \
             LEFT JOIN branches b ON b.id = l.branch_id \
             WHERE l.status = 'active' AND l.due_at >= $1 AND l.due_at <= $2 AND u.deleted_at IS NULL \
               AND NOT EXISTS (SELECT 1 FROM notices_sent n WHERE n.kind = 'due_soon' AND n.subject_id = l.id) \
             ORDER BY l.due_at LIMIT $3";
        const OVERDUE: &str = "SELECT l.id AS subject_id, u.email, i.title, l.due_at AS at FROM loans l \
             JOIN users u ON u.id = l.user_id JOIN items i ON i.id = l.item_id \
             WHERE l.status IN ('active', 'overdue') AND l.due_at < $1 AND u.deleted_at IS NULL \
               AND NOT EXISTS (SELECT 1 FROM notices_sent n WHERE n.kind = 'overdue' AND n.subject_id = l.id) \
             ORDER BY l.due_at LIMIT $2";
        const CLAIM: &str = "INSERT INTO notices_sent (kind, subject_id, sent_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        if kind == NoticeKind::HoldReady {
            // Claimed in the transaction that made the hold ready.
            return Ok(Vec::new());
        }
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let candidates: Vec<Notice> = if kind == NoticeKind::DueSoon {
                let horizon = now + Duration::days(i64::from(due_soon_days) + 2);
                let rows: Vec<DueSoonCandidate> = sqlx::query_as(DUE_SOON).bind(now).bind(horizon).bind(BATCH).fetch_all(&mut *tx).await?;
                rows.into_iter()
                    .filter(|c| is_due_soon(&self.library_time.zone_of(c.branch_timezone.as_deref()), c.due_date, now, due_soon_days))
                    .map(|c| c.notice)
                    .collect()
            } else {
                sqlx::query_as(OVERDUE).bind(now).bind(BATCH).fetch_all(&mut *tx).await?
            };
            let mut claimed = Vec::with_capacity(candidates.len());
            for notice in candidates {
                let inserted = sqlx::query(CLAIM).bind(kind.as_str()).bind(notice.subject_id).bind(now)
                    .execute(&mut *tx).await?.rows_affected();
                if inserted == 1 {
                    let mail = NewOutboxMessage {
                        kind: kind.message_kind(),
                        recipient: notice.email.clone(),
                        priority: OutboxPriority::Normal,
                        payload: json!({"loan_id": notice.subject_id, "title": notice.title, "due_at": notice.at.unix_timestamp()}),
                    };
                    enqueue_messages!(tx, [&mail], now);
                    claimed.push(notice);
                }
            }
            tx.commit().await?;
            if !claimed.is_empty() {
                self.wake_outbox();
            }
            Ok(claimed)
        })
    }

    /// Removes the patron from loans returned more than `retention` ago (and
    /// from their entries in the item history), and from holds closed that
    /// long ago. A retention of whole days counts local days of the loan's
    /// lending branch (of the hold's pickup branch); see
    /// [`retention_cutoff`]. Kept: loans with an unpaid fine, and everything
    /// of patrons who opted in to keep their history. Statistics (item, copy,
    /// dates) stay. Returns the number of loans anonymised.
    pub async fn anonymise_history(
        &self,
        retention: Duration,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        const BRANCHES: &str = "SELECT id, timezone FROM branches";
        const ELIGIBLE_LOANS: &str = "SELECT l.id FROM loans l WHERE l.user_id IS NOT NULL AND l.status = 'returned' AND l.returned_at < $1 \
             AND l.branch_id = $3 \
             AND NOT EXISTS (SELECT 1 FROM fines f WHERE f.loan_id = l.id AND f.status = 'open') \
             AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = l.user_id AND u.keep_loan_history) LIMIT $2";
        const LOAN_EVENTS: &str = "UPDATE item_events SET actor_id = CASE WHEN actor_id = patron_id THEN NULL ELSE actor_id END, \
             patron_id = NULL WHERE loan_id = $1";
        // A settled fine keeps its amounts but no longer says which item it was for.
        const FINES: &str =
            "UPDATE fines SET loan_id = NULL WHERE loan_id = $1 AND status <> 'open'";
        const LOAN: &str = "UPDATE loans SET user_id = NULL, anonymised_at = $2 WHERE id = $1";
        const ELIGIBLE_HOLDS: &str = "SELECT h.id FROM holds h WHERE h.user_id IS NOT NULL \
             AND h.status IN ('fulfilled', 'cancelled', 'expired') AND h.closed_at < $1 AND h.pickup_branch_id = $3 \
             AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = h.user_id AND u.keep_loan_history) LIMIT $2";
        const HOLD_EVENTS: &str = "UPDATE item_events SET actor_id = CASE WHEN actor_id = patron_id THEN NULL ELSE actor_id END, \
             patron_id = NULL WHERE hold_id = $1";
        const HOLD: &str = "UPDATE holds SET user_id = NULL WHERE id = $1";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            // Each branch's own cutoff (a handful of branches: one query each).
            let branches: Vec<(Uuid, Option<String>)> = sqlx::query_as(BRANCHES).fetch_all(&mut *tx).await?;
            let mut anonymised = 0u64;
            for (branch, timezone) in branches {
                let cutoff = retention_cutoff(&self.library_time.zone_of(timezone.as_deref()), now, retention);
                let loans: Vec<Uuid> = sqlx::query_scalar(ELIGIBLE_LOANS).bind(cutoff).bind(BATCH).bind(branch).fetch_all(&mut *tx).await?;
                for id in &loans {
                    sqlx::query(LOAN_EVENTS).bind(id).execute(&mut *tx).await?;
                    sqlx::query(FINES).bind(id).execute(&mut *tx).await?;
                    sqlx::query(LOAN).bind(id).bind(now).execute(&mut *tx).await?;
                }
                let holds: Vec<Uuid> = sqlx::query_scalar(ELIGIBLE_HOLDS).bind(cutoff).bind(BATCH).bind(branch).fetch_all(&mut *tx).await?;
                for id in &holds {
                    sqlx::query(HOLD_EVENTS).bind(id).execute(&mut *tx).await?;
                    sqlx::query(HOLD).bind(id).execute(&mut *tx).await?;
                }
                anonymised += loans.len() as u64;
            }
            tx.commit().await?;
            Ok(anonymised)
        })
    }
}
