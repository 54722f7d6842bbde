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

/// "Due in 2 days" notices go out this long before the due instant.
const DUE_SOON_WINDOW: Duration = Duration::days(2);

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
            .claim_loan_notices(kind, now, DUE_SOON_WINDOW)
            .await?;
        *count = claimed.len();
    }

    let retention =
        Duration::try_from(state.config.loan_history_retention).unwrap_or(Duration::MAX);
    let cutoff = retention_cutoff(&state.config.timezone, now, retention);
    report.loans_anonymised = state.store.anonymise_history(cutoff, now).await?;
    state
        .store
        .purge_idempotency_keys(now - IDEMPOTENCY_KEY_LIFETIME)
        .await?;
    Ok(Some(report))
}

/// Loans returned before this instant have been kept long enough. A retention
/// of whole days counts local calendar days of the library's zone: a loan
/// returned on day R is anonymised when local day R + retention + 1 begins
/// (every day of the period is a whole day). Other retentions count exactly.
fn retention_cutoff(
    zone: &carrel_core::calendar::Zone,
    now: time::OffsetDateTime,
    retention: Duration,
) -> time::OffsetDateTime {
    let Some(cutoff) = now.checked_sub(retention) else {
        return time::OffsetDateTime::UNIX_EPOCH;
    };
    if retention.whole_seconds() % 86_400 != 0 {
        return cutoff;
    }
    zone.instant_at(zone.local_date(cutoff), time::Time::MIDNIGHT, false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use carrel_core::calendar::Zone;
    use time::macros::datetime;

    #[test]
    fn retention_in_days_counts_whole_local_days() {
        let ny = Zone::named("America/New_York").unwrap();
        // 30 days before 2027-04-12 02:00 UTC is 2027-03-13 02:00 UTC, the evening of
        // 12 March in New York: loans returned before that local day began are old enough.
        let cutoff = retention_cutoff(&ny, datetime!(2027-04-12 02:00 UTC), Duration::days(30));
        assert_eq!(cutoff, datetime!(2027-03-12 05:00 UTC));
        let utc = retention_cutoff(
            &Zone::utc(),
            datetime!(2027-04-12 02:00 UTC),
            Duration::days(30),
        );
        assert_eq!(utc, datetime!(2027-03-13 00:00 UTC));
        // Not whole days: exact.
        let exact = retention_cutoff(
            &Zone::utc(),
            datetime!(2027-04-12 02:00 UTC),
            Duration::hours(36),
        );
        assert_eq!(exact, datetime!(2027-04-10 14:00 UTC));
    }
}
