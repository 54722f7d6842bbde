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
        $crate::circulation::circulation_event!(
            $tx,
            $crate::circulation::CirculationEvent {
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
