//! Starting a catalog import: the uploaded file (already written under the
//! data dir by the front door) becomes an import job, audited and run in the
//! background (`catalog::marc::jobs`).

use carrel_store::{ImportRow, NewImport, StoreError};
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use crate::catalog::marc::{Format, MatchMode, jobs};
use crate::state::AppState;

/// A received import file and how to read it.
#[derive(Debug)]
pub struct ImportUpload {
    /// The job's id (the file is `<id>.upload` in [`jobs::upload_dir`]).
    pub id: Uuid,
    pub path: std::path::PathBuf,
    /// The name the client gave the file, if any.
    pub file_name: Option<String>,
    pub file_bytes: u64,
    pub format: Format,
    pub match_mode: MatchMode,
}

/// Records the import job, audits `catalog.import_started` and starts it.
pub async fn start(
    state: &AppState,
    actor: &Actor,
    upload: ImportUpload,
) -> Result<ImportRow, StoreError> {
    // The job and its `catalog.import_started` entry commit together.
    let started = |row: &ImportRow| {
        vec![actor.event(
            state,
            "catalog.import_started",
            Some(row.id),
            json!({"format": row.format, "match": row.match_mode, "file_name": row.file_name, "bytes": upload.file_bytes}),
        )]
    };
    let row = state
        .store
        .create_import_audited(
            &NewImport {
                id: upload.id,
                format: upload.format.as_str().to_owned(),
                match_mode: upload.match_mode.as_str().to_owned(),
                file_name: upload.file_name.clone(),
                file_path: upload.path.display().to_string(),
                file_bytes: i64::try_from(upload.file_bytes).unwrap_or(i64::MAX),
                created_by: Some(actor.id),
            },
            state.clock.now(),
            started,
        )
        .await?;
    jobs::spawn(state.clone(), upload.id);
    Ok(row)
}
