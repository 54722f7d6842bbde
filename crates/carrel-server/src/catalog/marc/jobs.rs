//! Import jobs in the server: each runs in the background with the same engine
//! as the command line, holding a lease that every committed batch extends.
//!
//! A job left `queued` or `running` by a stopped instance is picked up again
//! once its lease has run out (at start-up, then every `CARREL_JOBS_INTERVAL`):
//! it resumes after the last committed batch (`processed`), or fails with a
//! reason when its file is gone. Only the instance holding the lease runs it.

use std::path::PathBuf;

use carrel_core::statuses::UnknownValue;
use carrel_store::{ImportRow, StoreError};
use serde_json::json;
use uuid::Uuid;

use super::import::{self, ImportError, Job, Quiet, Settings};
use super::{Format, MatchMode};
use crate::state::AppState;

/// How long a job's lease lasts without a committed batch.
pub const LEASE_TTL: time::Duration = time::Duration::minutes(2);

/// Where uploaded files wait for their job.
pub fn upload_dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("imports")
}

/// Starts running job `id` in the background (does nothing when another
/// instance, or another task of this one, holds it).
pub fn spawn(state: AppState, id: Uuid) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { run(&state, id).await })
}

/// Runs job `id` to its end if this instance can take its lease.
pub async fn run(state: &AppState, id: Uuid) {
    let holder = state.instance_id;
    let claimed = state
        .store
        .claim_import(id, holder, state.clock.now(), LEASE_TTL)
        .await;
    let row = match claimed {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(error) => {
            tracing::error!(%error, import_id = %id, "cannot claim an import job");
            return;
        }
    };
    let outcome = execute(state, &row, holder).await;
    let now = state.clock.now();
    let failure = match &outcome {
        Ok(()) => None,
        Err(ImportError::LeaseLost) => {
            tracing::warn!(import_id = %id, "another instance took over this import");
            return;
        }
        Err(error) => Some(error.to_string()),
    };
    // The job's end and its `catalog.import_finished` entry (with the final
    // counts) commit together.
    let finished = |done: &ImportRow| {
        vec![event(
            state,
            done,
            "catalog.import_finished",
            json!({
                "status": done.status,
                "error": done.error,
                "processed": done.processed,
                "created": done.created,
                "updated": done.updated,
                "skipped": done.skipped,
                "failed": done.failed,
            }),
        )]
    };
    match state
        .store
        .finish_import_audited(id, Some(holder), failure.as_deref(), now, finished)
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            // The lease runs out and another attempt finishes the job.
            tracing::error!(%error, import_id = %id, "cannot record the end of an import");
            return;
        }
    }
    if let Err(error) = tokio::fs::remove_file(&row.file_path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%error, import_id = %id, "cannot remove an import's file");
    }
}

async fn execute(state: &AppState, row: &ImportRow, holder: Uuid) -> Result<(), ImportError> {
    // The columns' CHECK constraints allow only known words; anything else is
    // a broken row, failed as such rather than guessed at.
    let unknown = |what| ImportError::Store(StoreError::InvalidStored(UnknownValue(what)));
    let format = Format::parse(&row.format).ok_or_else(|| unknown("import format"))?;
    let match_mode =
        MatchMode::parse(&row.match_mode).ok_or_else(|| unknown("import match mode"))?;
    let path = PathBuf::from(&row.file_path);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImportError::Read(
                "the uploaded file is gone (the data directory was cleaned or moved); upload it again"
                    .to_owned(),
            ));
        }
        Err(e) => return Err(ImportError::Read(e.to_string())),
    };
    if row.total.is_none() {
        let counted = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || import::count_records(&path, format)).await
        };
        if let Ok(Ok(total)) = counted {
            state
                .store
                .set_import_total(
                    row.id,
                    holder,
                    i64::try_from(total).unwrap_or(i64::MAX),
                    state.clock.now(),
                )
                .await?;
        }
    }
    let settings = Settings {
        actor: row.created_by,
        job: Some(Job {
            import_id: row.id,
            holder,
            lease_ttl: LEASE_TTL,
        }),
        resume: row.counts(),
        ..Settings::new(format, match_mode)
    };
    if row.processed > 0 {
        tracing::info!(import_id = %row.id, after = row.processed, "resuming an interrupted import");
    }
    import::run(
        &state.store,
        &state.clock,
        Box::new(file),
        &settings,
        &mut Quiet,
    )
    .await?;
    Ok(())
}

/// An event about job `row`, by whoever started it.
fn event(
    state: &AppState,
    row: &ImportRow,
    event_type: &'static str,
    details: serde_json::Value,
) -> carrel_store::NewAuditEvent {
    carrel_store::NewAuditEvent {
        event_type,
        actor_id: row.created_by,
        subject_id: Some(row.id),
        ip_address: None,
        user_agent: None,
        request_id: None,
        at: state.clock.now(),
        details,
    }
}

/// Picks up every job whose lease is free or has run out, and waits for them.
pub async fn resume_orphans(state: &AppState) -> Result<usize, carrel_store::StoreError> {
    let ids = state.store.orphaned_imports(state.clock.now()).await?;
    let count = ids.len();
    for id in ids {
        run(state, id).await;
    }
    Ok(count)
}

/// Looks for interrupted jobs at start-up and every `CARREL_JOBS_INTERVAL`.
pub fn spawn_watcher(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(state.config.jobs_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match resume_orphans(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "picked up interrupted imports"),
                Err(error) => tracing::error!(%error, "cannot look for interrupted imports"),
            }
        }
    })
}
