//! The catalog service: validation of items and copies, search terms, and the
//! rules around them. Storage is in `carrel-store`; HTTP in `http::routes::catalog`.

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

    /// Maps store errors on writes: unique ISBN/barcode and refused rules are 409.
    pub fn from_write(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { constraint } if constraint.contains("isbn") => {
                CatalogError::Conflict("an item with this ISBN already exists")
            }
            StoreError::Conflict { constraint } if constraint.contains("barcode") => {
                CatalogError::Conflict("a copy with this barcode already exists")
            }
            StoreError::Conflict { .. } => {
                CatalogError::Conflict("conflicts with an existing resource")
            }
            StoreError::Refused(reason) => CatalogError::Conflict(reason),
            StoreError::NotFound => CatalogError::NotFound,
            other => CatalogError::Store(other),
        }
    }
}
