//! Catalog helpers below the use cases: the field rules of items and copies
//! (`fields`), search terms (`search`) and MARC import and export (`marc`).
//! Catalog writes are use cases in `app::catalog` (items and copies) and
//! `app::covers`; storage is in `carrel-store`; HTTP in `http::routes::catalog`.

pub mod fields;
pub mod marc;
pub mod search;

use carrel_store::StoreError;

/// What can go wrong in a catalog operation.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Field name → reason (422).
    #[error("invalid fields")]
    InvalidFields(Vec<(String, String)>),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The cover bytes are not an allowed image (415).
    #[error("unsupported image")]
    UnsupportedImage,
    /// The cover is too large in bytes or pixels (413).
    #[error("image too large")]
    ImageTooLarge,
    /// The cover store has no space left (507).
    #[error("cover storage full")]
    StorageFull,
    /// A resource the request needs is not available now (503).
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl CatalogError {
    /// Maps a cover store error: a full file system is 507, anything else 500.
    pub fn from_storage(error: carrel_media::StorageError) -> Self {
        if error.is_storage_full() {
            CatalogError::StorageFull
        } else {
            CatalogError::Internal(error.to_string())
        }
    }
}
