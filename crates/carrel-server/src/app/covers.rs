//! Cover images of catalog items: storing an uploaded image (sniffed,
//! decoded with limits on the blocking pool, re-encoded under a server-chosen
//! name, with a thumbnail), removing it, and finding it to serve.

use carrel_media::{CoverError, CoverLimits, CoverStore};
use carrel_store::ItemRow;
use uuid::Uuid;

use super::Actor;
use super::catalog::CatalogRefusal;
use crate::catalog::CatalogError;
use crate::state::AppState;

/// The item, or `NotFound` (checked before an upload is read).
pub async fn item(state: &AppState, item_id: Uuid) -> Result<ItemRow, CatalogError> {
    state
        .store
        .find_item(item_id, false)
        .await?
        .ok_or(CatalogError::NotFound)
}

/// Stores `bytes` (at most `CARREL_UPLOAD_MAX_BYTES`) as the item's cover,
/// replacing (and deleting) any previous one; the item as it is now.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, item_id = %item_id, bytes = bytes.len()))]
pub async fn upload(
    state: &AppState,
    actor: &Actor,
    item_id: Uuid,
    bytes: Vec<u8>,
) -> Result<ItemRow, CatalogError> {
    let limits = CoverLimits {
        max_bytes: state.config.upload_max_bytes,
        ..CoverLimits::default()
    };
    let _slot = state
        .image_slots
        .acquire()
        .await
        .map_err(|_| CatalogError::Unavailable("image processing is unavailable"))?;
    let processed =
        tokio::task::spawn_blocking(move || carrel_media::process_cover(&bytes, &limits))
            .await
            .map_err(|e| CatalogError::Internal(format!("cover processing failed: {e}")))?
            .map_err(|e| match e {
                CoverError::TooLarge => CatalogError::ImageTooLarge,
                CoverError::Unsupported | CoverError::Corrupt => CatalogError::UnsupportedImage,
            })?;
    let format = processed.format;
    let full = state
        .covers
        .put(processed.full, format)
        .await
        .map_err(CatalogError::from_storage)?;
    let thumb = match state.covers.put(processed.thumb, format).await {
        Ok(thumb) => thumb,
        Err(error) => {
            // Best effort: no orphan full-size image when the thumbnail fails.
            let _ = state.covers.delete(&full).await;
            return Err(CatalogError::from_storage(error));
        }
    };
    let previous = state
        .store
        .set_item_cover(
            item_id,
            Some((&full, &thumb, format.content_type())),
            Some(actor.id),
            state.clock.now(),
        )
        .await
        .map_err(|e| CatalogError::from(CatalogRefusal::from(e)))?;
    remove_files(&state.covers, previous).await;
    item(state, item_id).await
}

/// Removes the item's cover; `NotFound` when it has none.
#[tracing::instrument(skip_all, fields(actor = %actor.id, channel = ?actor.channel, item_id = %item_id))]
pub async fn remove(state: &AppState, actor: &Actor, item_id: Uuid) -> Result<(), CatalogError> {
    let previous = state
        .store
        .set_item_cover(item_id, None, Some(actor.id), state.clock.now())
        .await
        .map_err(|e| CatalogError::from(CatalogRefusal::from(e)))?;
    if previous.0.is_none() {
        return Err(CatalogError::NotFound);
    }
    remove_files(&state.covers, previous).await;
    Ok(())
}

/// A stored cover image to serve.
#[derive(Debug)]
pub struct StoredCover {
    /// The stored name: random per upload, so a strong validator.
    pub name: String,
    pub content_type: &'static str,
}

impl StoredCover {
    /// The entity tag: the random part of the name.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.name.split('.').next().unwrap_or(&self.name))
    }
}

/// The item's cover (or its thumbnail); `NotFound` when there is none.
pub async fn find(
    state: &AppState,
    item_id: Uuid,
    thumb: bool,
) -> Result<StoredCover, CatalogError> {
    let row = item(state, item_id).await?;
    let name = if thumb {
        row.cover_thumb_name
    } else {
        row.cover_name
    }
    .ok_or(CatalogError::NotFound)?;
    let content_type = CoverStore::format_of(&name)
        .map(|f| f.content_type())
        .ok_or(CatalogError::NotFound)?;
    Ok(StoredCover { name, content_type })
}

/// The bytes of a stored cover.
pub async fn read(state: &AppState, cover: &StoredCover) -> Result<bytes::Bytes, CatalogError> {
    state
        .covers
        .get(&cover.name)
        .await
        .map_err(|e| CatalogError::Internal(e.to_string()))?
        .ok_or(CatalogError::NotFound)
}

async fn remove_files(store: &CoverStore, (full, thumb): (Option<String>, Option<String>)) {
    for name in [full, thumb].into_iter().flatten() {
        if let Err(error) = store.delete(&name).await {
            tracing::warn!(%error, "could not delete a replaced cover file");
        }
    }
}
