//! Keeping the password hasher's failure floor in step with the stored hashes.
//! The hasher itself is [`crate::passwords`] (below the application state,
//! which holds one); this part reads the store through the state.

use std::time::Duration;

use crate::passwords::hash_kind;
use crate::state::AppState;

/// How often the server looks for legacy hash kinds in the database.
const CALIBRATION_INTERVAL: Duration = Duration::from_secs(300);

/// Keeps the failure floor in step with the legacy hash kinds in the database:
/// calibrates at once and then every five minutes (imports made meanwhile,
/// kinds gone once their accounts have logged in and been upgraded).
pub fn spawn_calibration(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = calibrate_from_store(&state).await {
                tracing::warn!(%error, "could not measure the legacy password hashes");
            }
            tokio::time::sleep(CALIBRATION_INTERVAL).await;
        }
    })
}

/// One calibration pass: one sample per legacy kind stored, each measured.
pub async fn calibrate_from_store(state: &AppState) -> anyhow::Result<()> {
    let current = state.hasher.current_kind();
    let samples = state.store.legacy_hash_samples(&current, hash_kind).await?;
    state.hasher.calibrate(samples).await?;
    Ok(())
}
