//! The durable outbox's sender: every instance runs one. It claims due
//! messages with a lease (so exactly one instance sends each), renders and
//! delivers them through the configured transport (SMTP or the file outbox),
//! retries failures with exponential backoff and dead-letters a message after
//! `CARREL_OUTBOX_MAX_ATTEMPTS`. Messages are written by the use cases, in the
//! transaction of what causes them (see [`messages`] and the store).
//!
//! Times (leases, backoff) come from the injectable clock. A commit that
//! enqueues wakes this process's sender at once; it also polls every
//! `CARREL_OUTBOX_POLL_INTERVAL` for retries coming due and for messages other
//! instances enqueued.

pub mod messages;

use std::time::Duration as StdDuration;

use carrel_mail::MailError;
use carrel_store::{ClaimedMessage, FailureOutcome, StoreError};
use time::Duration;

use crate::config::OutboxConfig;
use crate::state::AppState;

/// Messages claimed per round.
const BATCH: u32 = 32;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub dead: usize,
}

/// The wait before attempt `attempts + 1`, after `attempts` failures:
/// `backoff × 2^(attempts − 1)`, at most `backoff_max`.
pub fn backoff(config: &OutboxConfig, attempts: i32) -> Duration {
    let base = config.backoff;
    let max = config.backoff_max;
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let wait = base.saturating_mul(1u32 << doublings).min(max);
    Duration::try_from(wait).unwrap_or(Duration::HOUR)
}

/// Claims and delivers one batch of due messages (security mail first).
pub async fn drain_once(state: &AppState) -> Result<DrainReport, StoreError> {
    let lease = Duration::try_from(state.config.outbox.lease).unwrap_or(Duration::minutes(2));
    let holder = state.instance_id;
    let claimed = state
        .store
        .claim_outbox(holder, state.clock.now(), lease, BATCH)
        .await?;
    let mut report = DrainReport {
        claimed: claimed.len(),
        ..DrainReport::default()
    };
    for message in &claimed {
        match deliver(state, message).await? {
            Delivery::Sent => report.sent += 1,
            Delivery::Retry => report.retried += 1,
            Delivery::Dead => report.dead += 1,
            Delivery::LeaseLost => {}
        }
    }
    if report.claimed > 0 {
        update_gauges(state).await;
    }
    Ok(report)
}

enum Delivery {
    Sent,
    Retry,
    Dead,
    LeaseLost,
}

async fn deliver(state: &AppState, message: &ClaimedMessage) -> Result<Delivery, StoreError> {
    let holder = state.instance_id;
    let kind = message.kind.as_str();
    let rendered = messages::render(
        &message.kind,
        &message.recipient,
        message.payload.as_ref().map(|p| &p.0),
    );
    let (error, permanent) = match rendered {
        Ok(email) => match state.mailer.send(&email).await {
            Ok(()) => {
                let now = state.clock.now();
                if state.store.outbox_sent(message.id, holder, now).await? {
                    metrics::counter!("outbox_messages_sent_total", "kind" => kind.to_owned())
                        .increment(1);
                    tracing::debug!(id = %message.id, kind, attempt = message.attempts, "outbox message sent");
                    return Ok(Delivery::Sent);
                }
                // Sent after our lease ran out: another instance may send it
                // again (at least once, never lost). Leases outlast sends by far.
                tracing::warn!(id = %message.id, kind, "outbox message sent after its lease ran out");
                return Ok(Delivery::LeaseLost);
            }
            // A recipient that cannot be parsed, or a broken from-address,
            // will not improve with time.
            Err(error @ (MailError::Address(_) | MailError::Config(_))) => {
                (error.to_string(), true)
            }
            Err(error) => (error.to_string(), false),
        },
        Err(error) => (error.to_string(), true),
    };
    metrics::counter!("outbox_delivery_failures_total", "kind" => kind.to_owned()).increment(1);
    let now = state.clock.now();
    let attempts_left =
        message.attempts < i32::try_from(state.config.outbox.max_attempts).unwrap_or(i32::MAX);
    let retry_at = (!permanent && attempts_left)
        .then(|| now + backoff(&state.config.outbox, message.attempts));
    let outcome = state
        .store
        .outbox_failed(message.id, holder, now, &error, retry_at)
        .await?;
    // The error text names the transport's complaint, never the body or link.
    Ok(match outcome {
        FailureOutcome::Retry(at) => {
            tracing::info!(id = %message.id, kind, attempt = message.attempts, retry_at = %carrel_core::clock::rfc3339(at), %error, "outbox delivery failed; will retry");
            Delivery::Retry
        }
        FailureOutcome::Dead => {
            metrics::counter!("outbox_messages_dead_total", "kind" => kind.to_owned()).increment(1);
            tracing::warn!(id = %message.id, kind, attempts = message.attempts, permanent, %error, "outbox delivery failed; message dead-lettered");
            Delivery::Dead
        }
        FailureOutcome::LeaseLost => Delivery::LeaseLost,
    })
}

/// Sets the `outbox_messages{state}` gauges from the database.
pub async fn update_gauges(state: &AppState) {
    match state.store.outbox_counts().await {
        Ok(counts) => {
            for (label, n) in [
                ("pending", counts.pending),
                ("sent", counts.sent),
                ("dead", counts.dead),
            ] {
                // Counts stay far below 2^53: exact as f64.
                metrics::gauge!("outbox_messages", "state" => label).set(n as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot count outbox messages"),
    }
}

/// Drains until nothing due is left that this instance could send, or
/// `timeout` passes; returns whether it got there. Rows another live instance
/// has leased are theirs to finish. For tests, tools and graceful shutdown.
pub async fn flush(state: &AppState, timeout: StdDuration) -> bool {
    let work = async {
        loop {
            match drain_once(state).await {
                Ok(report) if report.claimed > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "outbox flush: drain failed"),
            }
            match state
                .store
                .outbox_due(state.instance_id, state.clock.now())
                .await
            {
                Ok(0) => return,
                // The background sender holds some: let it finish them.
                Ok(_) => tokio::time::sleep(StdDuration::from_millis(10)).await,
                Err(error) => {
                    tracing::warn!(%error, "outbox flush: cannot count due messages");
                    tokio::time::sleep(StdDuration::from_millis(50)).await;
                }
            }
        }
    };
    tokio::time::timeout(timeout, work).await.is_ok()
}

/// Deletes sent and dead messages whose last change is older than
/// `CARREL_OUTBOX_RETENTION` (their payloads with them); returns how many.
pub async fn purge(state: &AppState) -> Result<u64, StoreError> {
    let retention = Duration::try_from(state.config.outbox.retention).unwrap_or(Duration::MAX);
    let cutoff = state
        .clock
        .now()
        .checked_sub(retention)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    state.store.purge_outbox(cutoff).await
}

/// Runs the sender until the process stops: drains whenever a commit wakes it
/// and every poll interval; once an hour (of the clock) also deletes sent and
/// dead messages past `CARREL_OUTBOX_RETENTION`.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let signal = state.store.outbox_signal();
        let mut last_purge: Option<time::OffsetDateTime> = None;
        update_gauges(&state).await;
        loop {
            let mut failed = false;
            loop {
                match drain_once(&state).await {
                    Ok(report) if report.claimed > 0 => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "outbox sender: drain failed; retrying next poll");
                        failed = true;
                        break;
                    }
                }
            }
            let now = state.clock.now();
            if !failed && last_purge.is_none_or(|at| now - at >= Duration::HOUR) {
                last_purge = Some(now);
                match purge(&state).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(deleted = n, "outbox: old sent and dead messages deleted")
                    }
                    Err(error) => tracing::warn!(%error, "outbox: purge failed"),
                }
            }
            // Woken by a commit in this process, or polls (retries coming due,
            // messages enqueued by other instances).
            let _ =
                tokio::time::timeout(state.config.outbox.poll_interval, signal.notified()).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let config = OutboxConfig {
            max_attempts: 8,
            backoff: StdDuration::from_secs(30),
            backoff_max: StdDuration::from_secs(3600),
            lease: StdDuration::from_secs(120),
            poll_interval: StdDuration::from_secs(5),
            retention: StdDuration::from_secs(86_400),
        };
        let waits: Vec<i64> = (1..=9)
            .map(|n| backoff(&config, n).whole_seconds())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(&config, 0).whole_seconds(), 30);
        assert_eq!(backoff(&config, i32::MAX).whole_seconds(), 3600);
    }
}
