//! The catalog: items, copies, the item history, and search.

mod copies;
mod imports;
mod items;
mod search;
mod write;

pub use copies::{BranchAvailability, Copy, CopyChanges, NewCopy};
pub use imports::{
    ExportEntry, ImportBatch, ImportCounts, ImportErrorRow, ImportIssue, ImportLookup,
    ImportProgress, ImportRow, ImportWrite, ImportedItem, NewImport, StoredRecord,
};
pub use items::{ItemEvent, ItemFields, ItemRow};
pub use search::listing::ItemPage;
pub use search::{
    FACET_VALUES, FacetCounts, ItemFacets, ItemHit, ItemSearch, ItemSort, MAX_COMPLETIONS,
    MAX_TERMS, SortKey,
};

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// An entry of an item's history to append.
#[derive(Debug, Clone)]
pub(crate) struct EventRecord<'a> {
    pub item_id: Uuid,
    pub event_type: &'static str,
    pub actor_id: Option<Uuid>,
    pub at: OffsetDateTime,
    pub details: &'a Value,
}

/// Appends a catalog entry (no loan, hold or patron) to an item's history
/// inside the caller's transaction.
macro_rules! append_event {
    ($tx:expr, $event:expr) => {{
        let e: $crate::catalog::EventRecord<'_> = $event;
        $crate::catalog::circulation_event!(
            $tx,
            $crate::catalog::CirculationEvent {
                item_id: e.item_id,
                event_type: e.event_type,
                actor_id: e.actor_id,
                at: e.at,
                details: e.details,
                loan_id: None,
                hold_id: None,
                patron_id: None,
            }
        );
    }};
}
pub(crate) use append_event;

/// Appends a circulation entry to an item's history inside the caller's
/// transaction. The patron goes into its own column, so anonymisation can
/// remove it; `details` never names the patron.
macro_rules! circulation_event {
    ($tx:expr, $event:expr) => {{
        let e: $crate::catalog::CirculationEvent<'_> = $event;
        sqlx::query(
            "INSERT INTO item_events (id, item_id, event_type, actor_id, at, details, loan_id, hold_id, patron_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(e.item_id)
        .bind(e.event_type)
        .bind(e.actor_id)
        .bind(e.at)
        .bind(sqlx::types::Json(e.details))
        .bind(e.loan_id)
        .bind(e.hold_id)
        .bind(e.patron_id)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use circulation_event;

/// One circulation entry of an item's history.
#[derive(Debug)]
pub(crate) struct CirculationEvent<'a> {
    pub item_id: Uuid,
    pub event_type: &'static str,
    pub actor_id: Option<Uuid>,
    pub at: OffsetDateTime,
    pub details: &'a serde_json::Value,
    pub loan_id: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    pub patron_id: Option<Uuid>,
}
