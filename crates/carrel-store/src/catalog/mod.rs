//! The catalog: items, copies, the item history, and search.

mod copies;
mod items;
mod search;

pub use copies::{Copy, CopyChanges, NewCopy};
pub use items::{ItemEvent, ItemFields, ItemRow};
pub use search::{ItemHit, ItemSearch, ItemSort, MAX_TERMS, SortKey};

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// Appends to an item's history inside the caller's transaction.
/// Binds: id, item id, event type, actor, at, details.
pub(crate) const INSERT_EVENT: &str = "INSERT INTO item_events (id, item_id, event_type, actor_id, at, details) VALUES ($1, $2, $3, $4, $5, $6)";

/// An entry of an item's history to append.
#[derive(Debug, Clone)]
pub(crate) struct EventRecord<'a> {
    pub item_id: Uuid,
    pub event_type: &'static str,
    pub actor_id: Option<Uuid>,
    pub at: OffsetDateTime,
    pub details: &'a Value,
}

macro_rules! append_event {
    ($tx:expr, $event:expr) => {{
        let e = $event;
        sqlx::query($crate::catalog::INSERT_EVENT)
            .bind(uuid::Uuid::now_v7())
            .bind(e.item_id)
            .bind(e.event_type)
            .bind(e.actor_id)
            .bind(e.at)
            .bind(sqlx::types::Json(e.details))
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use append_event;
