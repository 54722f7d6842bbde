//! The append-only audit log.

use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreError};

/// An event to append. Callers must never put a secret (password, token, code)
/// in `details`.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// Dotted name such as `auth.login_failed`.
    pub event_type: &'static str,
    /// Who did it (null for anonymous callers and failed logins).
    pub actor_id: Option<Uuid>,
    /// The account or resource it concerns.
    pub subject_id: Option<Uuid>,
    /// Client IP as the server determined it.
    pub ip_address: Option<String>,
    /// The caller's `User-Agent`, truncated.
    pub user_agent: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// When it happened, from the clock.
    pub at: OffsetDateTime,
    /// Event-specific, non-secret context.
    pub details: Value,
}

/// A stored audit event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: Uuid,
    pub event_type: String,
    pub actor_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub at: OffsetDateTime,
    pub details: Json<Value>,
}

/// Filters for listing audit events; every field is a bound parameter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Keyset cursor: events strictly older than `(at, id)`.
    pub before: Option<(OffsetDateTime, Uuid)>,
    pub limit: u32,
}

/// Builds the audit events of a use case from its outcome. The store appends
/// them inside the use case's own transaction, so an action and its audit
/// entries are committed together or not at all (and cost no second write).
pub trait AuditTrail<T>: FnOnce(&T) -> Vec<NewAuditEvent> + Send {}
impl<T, F: FnOnce(&T) -> Vec<NewAuditEvent> + Send> AuditTrail<T> for F {}

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
     (id, event_type, actor_id, subject_id, ip_address, user_agent, request_id, at, details) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Inserts one [`NewAuditEvent`] on `$executor`; evaluates to
/// `Result<Uuid, sqlx::Error>` (the new event's id).
macro_rules! insert_audit_event {
    ($executor:expr, $event:expr) => {{
        let event: &$crate::NewAuditEvent = $event;
        let id = uuid::Uuid::now_v7();
        sqlx::query($crate::audit::INSERT_AUDIT)
            .bind(id)
            .bind(event.event_type)
            .bind(event.actor_id)
            .bind(event.subject_id)
            .bind(event.ip_address.as_deref())
            .bind(event.user_agent.as_deref())
            .bind(event.request_id.as_deref())
            .bind(carrel_core::clock::truncate_to_seconds(event.at))
            .bind(sqlx::types::Json(&event.details))
            .execute($executor)
            .await
            .map(|_| id)
    }};
}
pub(crate) use insert_audit_event;

/// Appends the events `$trail` builds from `$outcome` inside the transaction
/// `$tx`; evaluates to the events, to be [`log`]ged once the commit succeeded.
macro_rules! append_audit_trail {
    ($tx:expr, $trail:expr, $outcome:expr) => {{
        let events: Vec<$crate::NewAuditEvent> = ($trail)($outcome);
        for event in &events {
            $crate::audit::insert_audit_event!(&mut *$tx, event)?;
        }
        events
    }};
}
pub(crate) use append_audit_trail;

/// Emits stored events as structured log lines (target `audit`).
pub fn log(events: &[NewAuditEvent]) {
    for event in events {
        tracing::info!(
            target: "audit",
            event_type = event.event_type,
            actor_id = ?event.actor_id,
            subject_id = ?event.subject_id,
            ip = event.ip_address.as_deref().unwrap_or(""),
            request_id = event.request_id.as_deref().unwrap_or(""),
            details = %event.details,
            "audit event"
        );
    }
}

impl Store {
    /// Appends one event on its own (for actions that are not a store
    /// transaction), logs it, and returns its id.
    pub async fn record_audit_event(&self, event: &NewAuditEvent) -> Result<Uuid, StoreError> {
        let id = crate::on_writer!(self, writer => {
            let mut conn = writer.turn().await?;
            insert_audit_event!(&mut *conn, event)?
        });
        log(std::slice::from_ref(event));
        Ok(id)
    }

    /// Lists events newest first, `limit + 1` rows so the caller can tell whether
    /// another page exists.
    pub async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        // Optional filters are expressed as `($n IS NULL OR column = $n)` so the SQL
        // text is fixed and every value is bound.
        const LIST: &str = "SELECT id, event_type, actor_id, subject_id, ip_address, user_agent, request_id, at, details \
             FROM audit_events \
             WHERE ($1 IS NULL OR actor_id = $1) \
               AND ($2 IS NULL OR subject_id = $2) \
               AND ($3 IS NULL OR event_type = $3) \
               AND ($4 IS NULL OR at >= $4) \
               AND ($5 IS NULL OR at <= $5) \
               AND ($6 IS NULL OR at < $6 OR (at = $6 AND id < $7)) \
             ORDER BY at DESC, id DESC \
             LIMIT $8";
        let trunc = |t: Option<OffsetDateTime>| t.map(carrel_core::clock::truncate_to_seconds);
        let rows = crate::on_pool!(self, pool => sqlx::query_as::<_, AuditEvent>(LIST)
            .bind(query.actor_id)
            .bind(query.subject_id)
            .bind(query.event_type.as_deref())
            .bind(trunc(query.since))
            .bind(trunc(query.until))
            .bind(trunc(query.before.map(|(at, _)| at)))
            .bind(query.before.map(|(_, id)| id))
            .bind(i64::from(query.limit) + 1)
            .fetch_all(pool)
            .await?);
        Ok(rows)
    }
}
