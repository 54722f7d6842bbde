//! The durable outbox: outgoing emails and notices as rows, written in the
//! transaction that causes them and delivered by a sender that claims them
//! with a lease (so exactly one instance sends each), retries with backoff and
//! gives up into a dead-letter state an admin can see and requeue.
//!
//! A row holds the template's name (`kind`) and its parameters (`payload`), not
//! the rendered text: the server renders at send time. For account mail the
//! payload carries a single-use link, so it is treated like the token: never
//! listed, set to NULL as soon as the message is sent, and deleted with the row
//! after the retention period.

use carrel_core::statuses::{MessageKind, OutboxState};
use serde_json::Value;
use sqlx::types::Json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::audit::{AuditTrail, append_audit_trail};
use crate::stored::Stored;
use crate::{Backend, Store, StoreError};

/// Longest `last_error` kept (characters).
const MAX_ERROR_CHARS: usize = 500;

/// Which messages go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutboxPriority {
    /// Account security: password resets, invitations, lockout notices.
    Security,
    /// Everything else (verification mail, circulation notices).
    Normal,
}

impl OutboxPriority {
    pub(crate) fn as_i32(self) -> i32 {
        match self {
            OutboxPriority::Security => 0,
            OutboxPriority::Normal => 1,
        }
    }
}

/// A message to enqueue. `payload` holds the template's parameters and may
/// contain a single-use link: never log it.
#[derive(Clone)]
pub struct NewOutboxMessage {
    /// The template, e.g. `hold_ready` or `password_reset`.
    pub kind: MessageKind,
    pub recipient: String,
    pub priority: OutboxPriority,
    pub payload: Value,
}

impl std::fmt::Debug for NewOutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOutboxMessage")
            .field("kind", &self.kind)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

/// A stored message's template. The column has no CHECK constraint (a newer
/// version may enqueue a kind this one does not know), so a word that is not
/// a [`MessageKind`] is kept as it is: the sender dead-letters such a message
/// instead of failing every claim on it, and an admin still sees it listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredKind {
    /// A template this version renders.
    Known(MessageKind),
    /// Any other word, as stored.
    Unknown(String),
}

impl StoredKind {
    /// The stored word.
    pub fn as_str(&self) -> &str {
        match self {
            StoredKind::Known(kind) => kind.as_str(),
            StoredKind::Unknown(word) => word,
        }
    }
}

impl From<String> for StoredKind {
    fn from(word: String) -> Self {
        match word.parse() {
            Ok(kind) => StoredKind::Known(kind),
            Err(_) => StoredKind::Unknown(word),
        }
    }
}

/// A message claimed for delivery, with what the sender needs to render it.
#[derive(Clone, sqlx::FromRow)]
pub struct ClaimedMessage {
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: StoredKind,
    pub recipient: String,
    pub priority: i32,
    /// The template's parameters (None only if a row was damaged).
    pub payload: Option<Json<Value>>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for ClaimedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedMessage")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A message as an admin sees it: never the payload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEntry {
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: StoredKind,
    pub recipient: String,
    pub priority: i32,
    /// A CHECK constraint holds it to the three states.
    #[sqlx(try_from = "Stored<OutboxState>")]
    pub state: OutboxState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

/// Filters of the admin listing (newest first).
#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    /// None for all.
    pub state: Option<OutboxState>,
    /// Keyset cursor: rows strictly older than `(created_at, id)`.
    pub before: Option<(OffsetDateTime, Uuid)>,
    pub limit: u32,
}

/// How many messages are in each state (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sent: i64,
    pub dead: i64,
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Tried again at the given instant.
    Retry(OffsetDateTime),
    /// Given up: dead-lettered.
    Dead,
    /// The lease had run out and another instance owns the row now.
    LeaseLost,
}

pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO outbox_messages \
     (id, kind, recipient, priority, payload, state, attempts, next_attempt_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6)";

/// Inserts the [`NewOutboxMessage`]s of `$messages` (an iterator of references)
/// on the transaction `$tx`, due at `$now`. Evaluates to how many it inserted;
/// the caller calls [`Store::wake_outbox`] after the commit when that is > 0.
macro_rules! enqueue_messages {
    ($tx:expr, $messages:expr, $now:expr) => {{
        let now: time::OffsetDateTime = carrel_core::clock::truncate_to_seconds($now);
        let mut inserted = 0usize;
        for message in $messages {
            let message: &$crate::NewOutboxMessage = message;
            sqlx::query($crate::outbox::INSERT_MESSAGE)
                .bind(uuid::Uuid::now_v7())
                .bind(message.kind.as_str())
                .bind(message.recipient.as_str())
                .bind(message.priority.as_i32())
                .bind(sqlx::types::Json(&message.payload))
                .bind(now)
                .execute(&mut *$tx)
                .await?;
            inserted += 1;
        }
        inserted
    }};
}
pub(crate) use enqueue_messages;

/// The columns of [`OutboxEntry`] (never the payload), for `concat!`.
macro_rules! entry_columns {
    () => {
        "id, kind, recipient, priority, state, attempts, last_error, next_attempt_at, created_at, updated_at, sent_at"
    };
}

const SELECT_ENTRY: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM outbox_messages WHERE id = $1"
);

fn truncate_error(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

impl Store {
    /// Tells this process's sender that messages were committed (it drains at
    /// once instead of at its next poll).
    pub fn wake_outbox(&self) {
        self.outbox_signal.notify_one();
    }

    /// The signal [`wake_outbox`](Self::wake_outbox) raises, for the sender.
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        std::sync::Arc::clone(&self.outbox_signal)
    }

    /// Enqueues messages in a transaction of their own (for mail whose cause
    /// writes nothing else to the database).
    pub async fn enqueue_outbox(
        &self,
        messages: &[NewOutboxMessage],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let inserted = crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let n = enqueue_messages!(tx, messages, now);
            tx.commit().await?;
            n
        });
        if inserted > 0 {
            self.wake_outbox();
        }
        Ok(())
    }

    /// Claims up to `limit` due messages for `holder` until `now + lease`:
    /// pending, due, and not leased by a live lease. Security mail first, then
    /// oldest first. Each claim counts as an attempt (so a message that crashes
    /// its sender still ends up dead-lettered). On PostgreSQL concurrent
    /// claimers skip each other's rows (`FOR UPDATE SKIP LOCKED`); SQLite runs
    /// one writer at a time.
    pub async fn claim_outbox(
        &self,
        holder: Uuid,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        const CLAIM_SQLITE: &str = "UPDATE outbox_messages \
             SET lease_holder = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM outbox_messages WHERE state = 'pending' AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until < $3) ORDER BY priority, next_attempt_at, id LIMIT $4) \
               AND state = 'pending' AND (lease_until IS NULL OR lease_until < $3) \
             RETURNING id, kind, recipient, priority, payload, attempts, created_at";
        // A materialised CTE: `id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`
        // may be run more than once by the planner and claim more than n rows.
        const CLAIM_POSTGRES: &str = "WITH due AS MATERIALIZED (SELECT id FROM outbox_messages \
                 WHERE state = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
                 ORDER BY priority, next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox_messages m \
             SET lease_holder = $1, lease_until = $2, attempts = m.attempts + 1, updated_at = $3 \
             FROM due WHERE m.id = due.id \
             RETURNING m.id, m.kind, m.recipient, m.priority, m.payload, m.attempts, m.created_at";
        let sql = match self.backend() {
            Backend::Sqlite => CLAIM_SQLITE,
            Backend::Postgres => CLAIM_POSTGRES,
        };
        let now = carrel_core::clock::truncate_to_seconds(now);
        let mut claimed: Vec<ClaimedMessage> = crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let rows = sqlx::query_as(sql)
                .bind(holder)
                .bind(now + lease)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            rows
        });
        // RETURNING promises no order.
        claimed.sort_by_key(|m| (m.priority, m.created_at, m.id));
        Ok(claimed)
    }

    /// Records a delivered message: `sent`, its payload (the link) erased.
    /// Returns false when `holder`'s lease was lost to another instance.
    pub async fn outbox_sent(
        &self,
        id: Uuid,
        holder: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const SENT: &str = "UPDATE outbox_messages SET state = 'sent', payload = NULL, sent_at = $3, \
             updated_at = $3, lease_holder = NULL, lease_until = NULL, last_error = NULL \
             WHERE id = $1 AND lease_holder = $2 AND state = 'pending'";
        let now = carrel_core::clock::truncate_to_seconds(now);
        let updated = crate::on_writer!(self, writer => {
            let mut conn = writer.turn().await?;
            sqlx::query(SENT).bind(id).bind(holder).bind(now).execute(&mut *conn).await?.rows_affected()
        });
        Ok(updated == 1)
    }

    /// Records a failed attempt: retried at `retry_at`, or dead-lettered when
    /// `retry_at` is None (attempts used up, or a permanent failure).
    pub async fn outbox_failed(
        &self,
        id: Uuid,
        holder: Uuid,
        now: OffsetDateTime,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<FailureOutcome, StoreError> {
        const RETRY: &str = "UPDATE outbox_messages SET next_attempt_at = $3, last_error = $4, updated_at = $5, \
             lease_holder = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_holder = $2 AND state = 'pending'";
        const DEAD: &str = "UPDATE outbox_messages SET state = 'dead', last_error = $3, updated_at = $4, \
             lease_holder = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_holder = $2 AND state = 'pending'";
        let now = carrel_core::clock::truncate_to_seconds(now);
        let error = truncate_error(error);
        let updated = crate::on_writer!(self, writer => {
            let mut conn = writer.turn().await?;
            match retry_at {
                Some(at) => sqlx::query(RETRY).bind(id).bind(holder)
                    .bind(carrel_core::clock::truncate_to_seconds(at)).bind(&error).bind(now)
                    .execute(&mut *conn).await?.rows_affected(),
                None => sqlx::query(DEAD).bind(id).bind(holder).bind(&error).bind(now)
                    .execute(&mut *conn).await?.rows_affected(),
            }
        });
        Ok(match (updated, retry_at) {
            (0, _) => FailureOutcome::LeaseLost,
            (_, Some(at)) => FailureOutcome::Retry(at),
            (_, None) => FailureOutcome::Dead,
        })
    }

    /// Pending messages that are due at `now` and that nobody else is sending
    /// (no live lease, or one held by `holder`): what a flush waits for.
    pub async fn outbox_due(&self, holder: Uuid, now: OffsetDateTime) -> Result<i64, StoreError> {
        const DUE: &str = "SELECT COUNT(*) FROM outbox_messages WHERE state = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1 OR lease_holder = $2)";
        let now = carrel_core::clock::truncate_to_seconds(now);
        Ok(
            crate::on_pool!(self, pool => sqlx::query_scalar(DUE).bind(now).bind(holder).fetch_one(pool).await?),
        )
    }

    /// Messages per state.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        const COUNTS: &str = "SELECT state, COUNT(*) FROM outbox_messages GROUP BY state";
        let rows: Vec<(String, i64)> =
            crate::on_pool!(self, pool => sqlx::query_as(COUNTS).fetch_all(pool).await?);
        let mut counts = OutboxCounts::default();
        for (state, n) in rows {
            match OutboxState::try_from(state)? {
                OutboxState::Pending => counts.pending = n,
                OutboxState::Sent => counts.sent = n,
                OutboxState::Dead => counts.dead = n,
            }
        }
        Ok(counts)
    }

    /// Messages, newest first; `limit + 1` rows so the caller can tell whether
    /// another page exists. Never the payload.
    pub async fn list_outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>, StoreError> {
        const LIST: &str = concat!(
            "SELECT ",
            entry_columns!(),
            " FROM outbox_messages WHERE ($1 IS NULL OR state = $1) \
               AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(query.state.map(OutboxState::as_str))
            .bind(query.before.map(|(at, _)| carrel_core::clock::truncate_to_seconds(at)))
            .bind(query.before.map(|(_, id)| id))
            .bind(i64::from(query.limit) + 1)
            .fetch_all(pool)
            .await?))
    }

    /// One message (never its payload).
    pub async fn find_outbox_message(&self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT_ENTRY).bind(id).fetch_optional(pool).await?),
        )
    }

    /// Requeues a dead message: pending, due now, attempts back to zero, with
    /// the audit entries `trail` builds, in one transaction. `NotFound` for an
    /// unknown id; [`StoreError::Refused`] when the message is not dead.
    pub async fn retry_outbox_message(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        trail: impl AuditTrail<OutboxEntry>,
    ) -> Result<OutboxEntry, StoreError> {
        const REQUEUE: &str = "UPDATE outbox_messages SET state = 'pending', attempts = 0, next_attempt_at = $2, \
             updated_at = $2 WHERE id = $1 AND state = 'dead'";
        let now = carrel_core::clock::truncate_to_seconds(now);
        let (entry, events) = crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let requeued = sqlx::query(REQUEUE).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
            let entry: Option<OutboxEntry> = sqlx::query_as(SELECT_ENTRY).bind(id).fetch_optional(&mut *tx).await?;
            let entry = entry.ok_or(StoreError::NotFound)?;
            if requeued == 0 {
                return Err(StoreError::Refused("only a dead message can be retried"));
            }
            let events = append_audit_trail!(tx, trail, &entry);
            tx.commit().await?;
            (entry, events)
        });
        crate::audit::log(&events);
        self.wake_outbox();
        Ok(entry)
    }

    /// Deletes sent and dead messages last updated before `before` (their
    /// payloads with them); returns how many.
    pub async fn purge_outbox(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        const PURGE: &str =
            "DELETE FROM outbox_messages WHERE state IN ('sent', 'dead') AND updated_at < $1";
        let before = carrel_core::clock::truncate_to_seconds(before);
        Ok(crate::on_writer!(self, writer => {
            let mut conn = writer.turn().await?;
            sqlx::query(PURGE).bind(before).execute(&mut *conn).await?.rows_affected()
        }))
    }
}
