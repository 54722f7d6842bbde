//! The one clock every time-dependent rule reads.
//!
//! Due dates, fines, expiries, lockout, rate-limit windows and background jobs all
//! call [`Clock::now`]; nothing calls `OffsetDateTime::now_utc()` directly. Tests
//! (and the test-mode HTTP endpoint) move the clock forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime, UtcOffset};

/// Wall-clock time plus an offset that only ever moves forward.
///
/// In production the offset stays zero. The clock is shared behind an `Arc`, so
/// advancing it is seen at once by every component holding it.
#[derive(Debug, Default)]
pub struct Clock {
    offset_nanos: AtomicI64,
}

impl Clock {
    /// A clock that reads real time.
    pub fn system() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The current time in UTC, truncated to whole seconds.
    ///
    /// Whole seconds keep stored timestamps identical on both backends (SQLite keeps
    /// them as fixed-width RFC 3339 text, which then sorts chronologically) and match
    /// the precision of JWT claims.
    pub fn now(&self) -> OffsetDateTime {
        truncate_to_seconds(self.now_precise())
    }

    /// The current time in UTC with full precision, for rules that need sub-second
    /// resolution and are never stored (rate-limit windows, latency measurements).
    pub fn now_precise(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::nanoseconds(self.offset_nanos.load(Ordering::Relaxed))
    }

    /// Moves the clock forward. Negative amounts are ignored: time never runs backwards.
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.whole_nanoseconds()).unwrap_or(i64::MAX);
        if nanos > 0 {
            let _ =
                self.offset_nanos
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                        Some(current.saturating_add(nanos))
                    });
        }
    }
}

/// Normalises a timestamp for storage and comparison: UTC, whole seconds.
pub fn truncate_to_seconds(at: OffsetDateTime) -> OffsetDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    utc.replace_nanosecond(0).unwrap_or(utc)
}

/// RFC 3339 text of a timestamp, as every front door and notice shows it.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_whole_seconds_in_utc() {
        let clock = Clock::default();
        let now = clock.now();
        assert_eq!(now.nanosecond(), 0);
        assert_eq!(now.offset(), UtcOffset::UTC);
    }

    #[test]
    fn advance_moves_time_forward_and_never_back() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::days(30));
        let after = clock.now();
        assert!(after - before >= Duration::days(30));
        assert!(after - before < Duration::days(30) + Duration::seconds(5));
        clock.advance(Duration::days(-100));
        assert!(clock.now() >= after);
    }

    #[test]
    fn truncation_normalises_offsets() {
        let at = time::macros::datetime!(2026-01-01 12:00:00.75 +02:00);
        assert_eq!(
            truncate_to_seconds(at),
            time::macros::datetime!(2026-01-01 10:00:00 UTC)
        );
    }
}
