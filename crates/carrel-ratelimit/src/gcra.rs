//! The GCRA arithmetic, shared by the in-process store and (in Lua) by the Redis store.
//!
//! Everything is whole milliseconds in `i64` with saturating operations. Inputs are clamped
//! so that every intermediate value stays below 2^53: the Redis script computes with Lua
//! numbers (doubles), and the two stores must give identical answers.

use std::time::Duration;

use crate::{Decision, Quota};

/// Longest period honoured (2^40 ms, about 34.8 years); longer periods are clamped.
pub(crate) const MAX_PERIOD_MS: i64 = 1 << 40;
/// Latest instant honoured (2^50 ms after the epoch); `now` is clamped to `0..=MAX_NOW_MS`.
pub(crate) const MAX_NOW_MS: i64 = 1 << 50;

/// How a quota is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// `count == 0`: every request is refused.
    Never { period_ms: i64 },
    /// `period == 0` (and `count > 0`): every request is allowed, nothing is stored.
    Unlimited,
    /// The ordinary case.
    Gcra(Params),
}

/// GCRA parameters in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    /// Emission interval T = ceil(period / count), at least 1 ms.
    pub(crate) t_ms: i64,
    /// Burst tolerance = count × T, so a full burst of `count` is allowed at once. Equal to the
    /// period when the period is a multiple of `count` ms, otherwise at most `count - 1` ms
    /// longer (the rate is never higher than `count` per period).
    pub(crate) tol_ms: i64,
}

impl Plan {
    pub(crate) fn for_quota(quota: Quota) -> Self {
        let period_ms = ceil_millis(quota.period);
        if quota.count == 0 {
            return Self::Never { period_ms };
        }
        if period_ms == 0 {
            return Self::Unlimited;
        }
        let count = i64::from(quota.count);
        // Round T up so that count × T >= period.
        let t_ms = (period_ms.saturating_add(count - 1) / count).max(1);
        Self::Gcra(Params {
            t_ms,
            tol_ms: t_ms.saturating_mul(count),
        })
    }
}

/// A duration in whole milliseconds, rounded up, clamped to [`MAX_PERIOD_MS`].
pub(crate) fn ceil_millis(d: Duration) -> i64 {
    let ms = d.as_millis();
    let ms = if !d.subsec_nanos().is_multiple_of(1_000_000) {
        ms.saturating_add(1)
    } else {
        ms
    };
    i64::try_from(ms).map_or(MAX_PERIOD_MS, |ms| ms.min(MAX_PERIOD_MS))
}

pub(crate) fn clamp_now(now_millis: i64) -> i64 {
    now_millis.clamp(0, MAX_NOW_MS)
}

/// The raw answer of a store, before it becomes a [`Decision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) allowed: bool,
    pub(crate) remaining: i64,
    pub(crate) reset_after_ms: i64,
    pub(crate) retry_after_ms: i64,
}

impl Outcome {
    pub(crate) fn into_decision(self, limit: u32) -> Decision {
        let remaining = u32::try_from(self.remaining.max(0)).unwrap_or(u32::MAX);
        Decision {
            allowed: self.allowed,
            limit,
            remaining: remaining.min(limit),
            reset_after: millis(self.reset_after_ms),
            retry_after: (!self.allowed).then(|| millis(self.retry_after_ms)),
        }
    }
}

pub(crate) fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// One GCRA step. `stored` is the key's theoretical arrival time (TAT), if any; `now` must
/// already be clamped. Returns the outcome and the TAT to store, if the state changed (the
/// store may forget it once `now` reaches it).
///
/// The Lua script in `redis_store.rs` is a line-by-line transcription of this function.
pub(crate) fn step(stored: Option<i64>, now: i64, p: Params) -> (Outcome, Option<i64>) {
    let mut tat = now;
    let mut rebased = false;
    if let Some(stored) = stored {
        tat = tat.max(stored);
        // A TAT further ahead than the tolerance can only mean the caller's clock went back
        // (by more than the period). Treat the key as exhausted right now: refused for one
        // emission interval, then refilling as usual -- instead of refused for the whole jump.
        let limit = now.saturating_add(p.tol_ms);
        if tat > limit {
            tat = limit;
            rebased = true;
        }
    }
    let new_tat = tat.saturating_add(p.t_ms);
    let ahead = new_tat.saturating_sub(now);
    if ahead > p.tol_ms {
        let outcome = Outcome {
            allowed: false,
            remaining: 0,
            reset_after_ms: tat.saturating_sub(now),
            retry_after_ms: ahead.saturating_sub(p.tol_ms),
        };
        return (outcome, rebased.then_some(tat));
    }
    let outcome = Outcome {
        allowed: true,
        remaining: p.tol_ms.saturating_sub(ahead) / p.t_ms,
        reset_after_ms: ahead,
        retry_after_ms: 0,
    };
    (outcome, Some(new_tat))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn params(count: u32, period: Duration) -> Params {
        match Plan::for_quota(Quota { count, period }) {
            Plan::Gcra(p) => p,
            other => panic!("unexpected plan {other:?}"),
        }
    }

    #[test]
    fn emission_interval_rounds_up() {
        let p = params(5, Duration::from_secs(60));
        assert_eq!((p.t_ms, p.tol_ms), (12_000, 60_000));
        let p = params(3, Duration::from_secs(1));
        assert_eq!((p.t_ms, p.tol_ms), (334, 1_002));
        let p = params(1, Duration::from_micros(1));
        assert_eq!((p.t_ms, p.tol_ms), (1, 1));
        let p = params(10, Duration::from_millis(1));
        assert_eq!((p.t_ms, p.tol_ms), (1, 10));
        let p = params(u32::MAX, Duration::from_secs(u64::MAX));
        assert!(p.t_ms >= 1 && p.tol_ms >= MAX_PERIOD_MS);
    }

    #[test]
    fn degenerate_quotas() {
        assert_eq!(
            Plan::for_quota(Quota {
                count: 0,
                period: Duration::from_secs(2)
            }),
            Plan::Never { period_ms: 2_000 }
        );
        assert_eq!(
            Plan::for_quota(Quota {
                count: 3,
                period: Duration::ZERO
            }),
            Plan::Unlimited
        );
    }

    #[test]
    fn burst_then_refusal() {
        let p = params(5, Duration::from_secs(60));
        let mut tat = None;
        for want in [4, 3, 2, 1, 0] {
            let (o, new) = step(tat, 1_000, p);
            assert!(o.allowed);
            assert_eq!(o.remaining, want);
            tat = new;
        }
        let (o, new) = step(tat, 1_000, p);
        assert!(!o.allowed);
        assert_eq!(new, None);
        assert_eq!(o.retry_after_ms, 12_000);
        assert_eq!(o.reset_after_ms, 60_000);
    }

    #[test]
    fn clock_going_backwards_is_bounded() {
        let p = params(5, Duration::from_secs(60));
        let mut tat = None;
        for _ in 0..2 {
            tat = step(tat, 10_000_000, p).1;
        }
        // Back by less than the period: plain GCRA (less of the budget has been paid back).
        let (o, _) = step(tat, 10_000_000 - 20_000, p);
        assert!(o.allowed);
        assert_eq!(o.remaining, 0);
        // An hour back: exhausted now, refused for one emission interval, state rebased.
        let back = 10_000_000 - 3_600_000;
        let (o, rebased) = step(tat, back, p);
        assert!(!o.allowed);
        assert_eq!((o.retry_after_ms, o.reset_after_ms), (12_000, 60_000));
        assert_eq!(rebased, Some(back + 60_000));
        let (o, _) = step(rebased, back + 12_000, p);
        assert!(o.allowed);
    }

    #[test]
    fn extremes_saturate() {
        let p = params(u32::MAX, Duration::from_secs(u64::MAX));
        let (o, _) = step(Some(i64::MAX), MAX_NOW_MS, p);
        assert!(o.remaining >= 0 && o.reset_after_ms >= 0 && o.retry_after_ms >= 0);
        let (o, _) = step(Some(i64::MIN), 0, params(1, Duration::from_millis(1)));
        assert!(o.allowed);
    }
}
