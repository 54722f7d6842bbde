//! Background jobs in the server process: expire uncollected holds, hand
//! shelved copies to waiting patrons, mark overdue loans, mail due-soon and
//! overdue notices, and anonymise old loans.
//!
//! Several instances may run: a lease row lets one at a time do the work, and
//! every notice is claimed in the database, its mail enqueued in the durable
//! outbox in the same transaction (see [`crate::outbox`]). All times come
//! from the injectable clock, so tests (and the test-clock endpoint) move them.

use std::time::Duration as StdDuration;

use carrel_store::{NoticeKind, StoreError};
use time::Duration;
use uuid::Uuid;

use crate::state::AppState;

/// The lease row of the circulation jobs.
const LEASE: &str = "circulation";

/// How long a payment's `Idempotency-Key` is remembered.
const IDEMPOTENCY_KEY_LIFETIME: Duration = Duration::days(7);

/// A "due soon" notice goes out once the due day is at most this many local
/// days of the lending branch away.
const DUE_SOON_DAYS: u32 = 2;

/// What one run did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub holds_expired_or_filled: usize,
    pub loans_marked_overdue: u64,
    pub due_soon_notices: usize,
    pub overdue_notices: usize,
    pub loans_anonymised: u64,
}

/// Runs every job once, if this instance (`holder`) gets the lease. Returns
/// None when another instance holds it.
pub async fn run_once(state: &AppState, holder: Uuid) -> Result<Option<RunReport>, StoreError> {
    let now = state.clock.now();
    // A lease outlives a run comfortably, and a crashed holder's runs out soon.
    let ttl = Duration::try_from(state.config.jobs_interval)
        .unwrap_or(Duration::minutes(1))
        .max(Duration::minutes(1))
        * 2;
    if !state.store.acquire_lease(LEASE, holder, now, ttl).await? {
        return Ok(None);
    }
    let pickup_days = state.config.hold_pickup_days;
    let mut report = RunReport::default();

    // Holds made ready here have their mail enqueued in the outbox in the
    // same transaction; so do the loan notices claimed below.
    let mut ready = state.store.expire_holds(now, pickup_days).await?;
    ready.extend(state.store.fill_available_copies(now, pickup_days).await?);
    report.holds_expired_or_filled = ready.len();

    report.loans_marked_overdue = state.store.mark_overdue(now).await?;
    for (kind, count) in [
        (NoticeKind::DueSoon, &mut report.due_soon_notices),
        (NoticeKind::Overdue, &mut report.overdue_notices),
    ] {
        let claimed = state
            .store
            .claim_loan_notices(kind, now, DUE_SOON_DAYS)
            .await?;
        *count = claimed.len();
    }

    let retention =
        Duration::try_from(state.config.loan_history_retention).unwrap_or(Duration::MAX);
    report.loans_anonymised = state.store.anonymise_history(retention, now).await?;
    state
        .store
        .purge_idempotency_keys(now - IDEMPOTENCY_KEY_LIFETIME)
        .await?;
    Ok(Some(report))
}

/// Runs the jobs every `CARREL_JOBS_INTERVAL` until the process stops.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    let holder = state.instance_id;
    let interval: StdDuration = state.config.jobs_interval;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run_once(&state, holder).await {
                Ok(Some(report)) if report != RunReport::default() => {
                    tracing::info!(?report, "circulation jobs ran");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "circulation jobs failed; retrying next interval")
                }
            }
        }
    })
}
