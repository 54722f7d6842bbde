//! Catalog maintenance: items and their copies. Each use case checks its typed
//! input with the field rules of [`crate::catalog::fields`] (trimmed, bounded
//! text, ISBN checksums, year bounds, item type codes, barcodes, settable copy
//! statuses) plus what needs the database (a defined item type, an existing
//! branch), then makes the change in one store transaction that also writes
//! the item's history (`item_events`). Catalog changes have no audit entries:
//! the item history is their trail. The JSON API's `/items` and `/copies`
//! handlers and `carrel demo` call these; the MARC importer shares the field
//! rules and writes in batches of its own (`catalog::marc::import`).

use carrel_store::{Copy, ItemFields, ItemRow, StoreError};
use uuid::Uuid;

use super::Actor;
use crate::catalog::CatalogError;
use crate::catalog::fields::{self, ItemInput};
use crate::state::AppState;

const DUPLICATE_ISBN: &str = "an item with this ISBN already exists";
const DUPLICATE_BARCODE: &str = "a copy with this barcode already exists";
const CONFLICT: &str = "conflicts with an existing resource";
const COPIES_ON_LOAN: &str = "copies of this item are on loan";
const COPY_IN_CIRCULATION: &str = "the copy is in circulation; return it or cancel its hold first";
/// Added to the other bad fields when `item_type` is well formed but not defined.
const UNKNOWN_ITEM_TYPE: &str = "must be a defined item type (see /api/v1/item-types)";

/// Why a catalog change was refused (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum CatalogRefusal {
    /// Field name → reason, every bad field named.
    #[error("invalid fields")]
    InvalidFields(Vec<(String, String)>),
    /// No such live item or copy (a deleted one, for a restore: no such
    /// deleted item).
    #[error("not found")]
    NotFound,
    /// The `branch_id` given names no branch.
    #[error("no such branch")]
    UnknownBranch,
    #[error("{DUPLICATE_ISBN}")]
    DuplicateIsbn,
    #[error("{DUPLICATE_BARCODE}")]
    DuplicateBarcode,
    /// Another uniqueness rule.
    #[error("{CONFLICT}")]
    Conflict,
    /// Deleting an item while copies of it are on loan.
    #[error("{COPIES_ON_LOAN}")]
    CopiesOnLoan,
    /// Deleting a copy, or changing its status, while it is on loan, on the
    /// hold shelf or in transit.
    #[error("{COPY_IN_CIRCULATION}")]
    CopyInCirculation,
    /// Another rule the store checked in the transaction, with its reason.
    #[error("{0}")]
    Refused(&'static str),
    /// A storage failure.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CatalogRefusal {
    /// Unique ISBNs and barcodes, the store's rules, and a missing row.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { constraint } if constraint.contains("isbn") => {
                CatalogRefusal::DuplicateIsbn
            }
            StoreError::Conflict { constraint } if constraint.contains("barcode") => {
                CatalogRefusal::DuplicateBarcode
            }
            StoreError::Conflict { .. } => CatalogRefusal::Conflict,
            StoreError::Refused(COPIES_ON_LOAN) => CatalogRefusal::CopiesOnLoan,
            StoreError::Refused(COPY_IN_CIRCULATION) => CatalogRefusal::CopyInCirculation,
            StoreError::Refused(reason) => CatalogRefusal::Refused(reason),
            StoreError::NotFound => CatalogRefusal::NotFound,
            other => CatalogRefusal::Store(other),
        }
    }
}

impl From<fields::InvalidFields> for CatalogRefusal {
    fn from(bad: fields::InvalidFields) -> Self {
        CatalogRefusal::InvalidFields(bad.0)
    }
}

/// The catalog's error as the API maps it (covers share it).
impl From<CatalogRefusal> for CatalogError {
    fn from(refusal: CatalogRefusal) -> Self {
        match refusal {
            CatalogRefusal::InvalidFields(bad) => CatalogError::InvalidFields(bad),
            CatalogRefusal::NotFound | CatalogRefusal::UnknownBranch => CatalogError::NotFound,
            CatalogRefusal::DuplicateIsbn => CatalogError::Conflict(DUPLICATE_ISBN),
            CatalogRefusal::DuplicateBarcode => CatalogError::Conflict(DUPLICATE_BARCODE),
            CatalogRefusal::Conflict => CatalogError::Conflict(CONFLICT),
            CatalogRefusal::CopiesOnLoan => CatalogError::Conflict(COPIES_ON_LOAN),
            CatalogRefusal::CopyInCirculation => CatalogError::Conflict(COPY_IN_CIRCULATION),
            CatalogRefusal::Refused(reason) => CatalogError::Conflict(reason),
            CatalogRefusal::Store(error) => CatalogError::Store(error),
        }
    }
}

/// A PATCH of an item: `None` leaves a field as it is; `Some(None)` clears an
/// optional one.
#[derive(Debug, Clone, Default)]
pub struct ItemChanges {
    pub title: Option<String>,
    pub subtitle: Option<Option<String>>,
    pub authors: Option<Vec<String>>,
    pub isbn: Option<Option<String>>,
    pub item_type: Option<String>,
    pub publisher: Option<Option<String>>,
    pub publication_year: Option<Option<i32>>,
    pub language: Option<Option<String>>,
    pub subjects: Option<Vec<String>>,
    pub description: Option<Option<String>>,
}

impl ItemChanges {
    /// Sets the given fields on `input`; the names of those it set (for the
    /// history).
    fn apply(self, input: &mut ItemInput) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! merge {
            ($field:ident, $value:expr) => {
                if let Some(v) = $value {
                    input.$field = v;
                    changed.push(stringify!($field));
                }
            };
        }
        merge!(title, self.title.map(Some));
        merge!(subtitle, self.subtitle);
        merge!(authors, self.authors.map(Some));
        merge!(isbn, self.isbn);
        merge!(item_type, self.item_type.map(Some));
        merge!(publisher, self.publisher);
        merge!(publication_year, self.publication_year);
        merge!(language, self.language);
        merge!(subjects, self.subjects.map(Some));
        merge!(description, self.description);
        changed
    }
}

/// A new copy of an item.
#[derive(Debug, Clone, Default)]
pub struct NewCopyInput {
    pub barcode: String,
    pub location: Option<String>,
    pub call_number: Option<String>,
    /// The home branch; `None`: MAIN.
    pub branch_id: Option<Uuid>,
}

/// A PATCH of a copy: `None` leaves a field as it is; `Some(None)` clears
/// `location` or `call_number`.
#[derive(Debug, Clone, Default)]
pub struct CopyChangesInput {
    pub barcode: Option<String>,
    pub location: Option<Option<String>>,
    pub call_number: Option<Option<String>>,
    /// `available`, `lost`, `damaged` or `withdrawn` (circulation sets the others).
    pub status: Option<String>,
    /// A new home branch.
    pub branch_id: Option<Uuid>,
}

/// Adds an item to the catalog (history: `created`). `actor` is `None` only
/// for the server's own loaders (`carrel demo`), recorded without an actor.
#[tracing::instrument(skip_all, fields(actor = ?actor.map(|a| a.id), channel = ?actor.map(|a| a.channel)))]
pub async fn create_item(
    state: &AppState,
    actor: Option<&Actor>,
    input: ItemInput,
) -> Result<ItemRow, CatalogRefusal> {
    let fields = validated_item(state, input).await?;
    Ok(state
        .store
        .create_item(&fields, actor.map(|a| a.id), state.clock.now())
        .await?)
}

/// Changes the given fields of a live item (history: `updated`, naming them).
/// The merged item is checked whole, as a new one would be.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, item_id = %item_id))]
pub async fn update_item(
    state: &AppState,
    actor: &Actor,
    item_id: Uuid,
    changes: ItemChanges,
) -> Result<ItemRow, CatalogRefusal> {
    let current = state
        .store
        .find_item(item_id, false)
        .await
        .map_err(CatalogRefusal::Store)?
        .ok_or(CatalogRefusal::NotFound)?;
    let mut input = fields::input_from(&current);
    let changed = changes.apply(&mut input);
    let fields = validated_item(state, input).await?;
    Ok(state
        .store
        .update_item(
            item_id,
            &fields,
            &changed,
            Some(actor.id),
            state.clock.now(),
        )
        .await?)
}

/// Removes an item (soft delete; history: `deleted`), refused with
/// [`CatalogRefusal::CopiesOnLoan`] while any of its copies is on loan.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, item_id = %item_id))]
pub async fn delete_item(
    state: &AppState,
    actor: &Actor,
    item_id: Uuid,
) -> Result<(), CatalogRefusal> {
    Ok(state
        .store
        .soft_delete_item(item_id, Some(actor.id), state.clock.now())
        .await?)
}

/// Brings back a removed item (history: `restored`); `NotFound` unless it is
/// a deleted item.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, item_id = %item_id))]
pub async fn restore_item(
    state: &AppState,
    actor: &Actor,
    item_id: Uuid,
) -> Result<ItemRow, CatalogRefusal> {
    Ok(state
        .store
        .restore_item(item_id, Some(actor.id), state.clock.now())
        .await?)
}

/// Adds a copy to a live item (history: `copy_added`); a taken barcode is
/// [`CatalogRefusal::DuplicateBarcode`]. `actor` is `None` only for the
/// server's own loaders (`carrel demo`).
#[tracing::instrument(skip_all, fields(actor = ?actor.map(|a| a.id), channel = ?actor.map(|a| a.channel), item_id = %item_id, branch = ?input.branch_id))]
pub async fn add_copy(
    state: &AppState,
    actor: Option<&Actor>,
    item_id: Uuid,
    input: NewCopyInput,
) -> Result<Copy, CatalogRefusal> {
    let mut copy = fields::validate_new_copy(&input.barcode, input.location, input.call_number)?;
    if let Some(branch) = input.branch_id {
        require_branch(state, branch).await?;
        copy.branch_id = Some(branch);
    }
    Ok(state
        .store
        .add_copy(item_id, &copy, actor.map(|a| a.id), state.clock.now())
        .await?)
}

/// Changes a copy (history: `copy_updated`, with its status before and
/// after). A copy in circulation keeps its status
/// ([`CatalogRefusal::CopyInCirculation`]). The input is checked before the
/// copy is looked for.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, copy_id = %copy_id, status = ?input.status, branch = ?input.branch_id))]
pub async fn update_copy(
    state: &AppState,
    actor: &Actor,
    copy_id: Uuid,
    input: CopyChangesInput,
) -> Result<Copy, CatalogRefusal> {
    let mut changes = fields::validate_copy_changes(
        input.barcode,
        input.location,
        input.call_number,
        input.status,
    )
    .map_err(|bad| CatalogRefusal::InvalidFields(bad.0))?;
    if let Some(branch) = input.branch_id {
        require_branch(state, branch).await?;
        changes.branch_id = Some(branch);
    }
    Ok(state
        .store
        .update_copy(copy_id, &changes, Some(actor.id), state.clock.now())
        .await?)
}

/// Removes a copy (soft delete, marked withdrawn; history: `copy_deleted`),
/// refused with [`CatalogRefusal::CopyInCirculation`] while it is on loan, on
/// the hold shelf or in transit.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, copy_id = %copy_id))]
pub async fn delete_copy(
    state: &AppState,
    actor: &Actor,
    copy_id: Uuid,
) -> Result<(), CatalogRefusal> {
    Ok(state
        .store
        .delete_copy(copy_id, Some(actor.id), state.clock.now())
        .await?)
}

async fn require_branch(state: &AppState, branch: Uuid) -> Result<(), CatalogRefusal> {
    match state.store.find_branch(branch).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(CatalogRefusal::UnknownBranch),
        Err(error) => Err(CatalogRefusal::Store(error)),
    }
}

/// Checks an item's fields, its type included: one the library defines (else
/// `item_type` is named with every other bad field).
async fn validated_item(state: &AppState, input: ItemInput) -> Result<ItemFields, CatalogRefusal> {
    let unknown_type = match input.item_type.as_deref().map(str::trim) {
        Some(t) if carrel_core::rules::is_valid_code(t) => !state
            .store
            .item_type_exists(t)
            .await
            .map_err(CatalogRefusal::Store)?,
        _ => false,
    };
    let max_year = state.clock.now().year() + 1;
    let mut bad = match fields::validate_item(input, max_year) {
        Ok(fields) if !unknown_type => return Ok(fields),
        Ok(_) => Vec::new(),
        Err(fields::InvalidFields(bad)) => bad,
    };
    if unknown_type {
        bad.push(("item_type".to_owned(), UNKNOWN_ITEM_TYPE.to_owned()));
    }
    Err(CatalogRefusal::InvalidFields(bad))
}
