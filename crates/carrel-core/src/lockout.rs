//! Login lockout: a small state machine that stops online password guessing.
//!
//! After `threshold` consecutive failures the account is locked for `duration`;
//! while locked, attempts are refused without looking at the secret, so a
//! guesser learns nothing even by hitting the right one. (The idea follows
//! kanidm's "softlock".) A failure is a wrong password or a wrong second-factor
//! code; the count goes back to zero only when a sign-in completes with every
//! factor, so a right password followed by a wrong code is still a streak.
//!
//! # States and transitions
//!
//! A [`LockoutState`] counts committed failures, the attempts *in flight*
//! (reserved, their secret being checked right now), and an optional lock. An
//! expired lock counts as a fresh start with zero failures.
//!
//! | State read | Call | Result |
//! |---|---|---|
//! | locked | [`LockoutPolicy::begin_attempt`] | [`AttemptDecision::Refused`]: check nothing |
//! | open, `failed + in_flight < threshold` | [`LockoutPolicy::begin_attempt`] | [`AttemptDecision::Proceed`]: reserve one attempt in flight, then check |
//! | open, `failed + in_flight >= threshold` | [`LockoutPolicy::begin_attempt`] | [`AttemptDecision::Wait`]: ask again once an attempt in flight has finished |
//! | reserved, secret wrong | [`LockoutPolicy::after_failure`] | one more failure; locked when it reaches the threshold |
//! | reserved, sign-in complete | [`LockoutPolicy::after_success`] | zero failures, no lock |
//! | reserved, right secret but the sign-in is not complete (a second factor follows, re-authentication) | (counter unchanged) | the reservation is released |
//! | any | [`LockoutPolicy::unlocked`] (staff unlock, completed reset) | zero failures, no lock |
//!
//! # Why attempts are reserved before checking, and why the rest wait
//!
//! The functions are pure; the store reads the state, decides and reserves in
//! one transaction that holds the account row. Because every attempt in flight
//! is counted *before* its (slow) hash is checked, `failed + in_flight` never
//! exceeds the threshold, so no more than `threshold` guesses are ever checked
//! between a completed sign-in (or unlock) and the lock, however many requests
//! race. Attempts in flight are not failures, though: an attempt that finds
//! the budget taken by attempts in flight waits for them instead of being
//! refused, so many parallel logins with the right password all succeed (the
//! first success clears the count and the waiters go on to check their own).

use time::{Duration, OffsetDateTime};

/// How many consecutive failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account. `0` disables lockout:
    /// failures are still counted but never lock, and nobody waits.
    pub threshold: u32,
    /// How long a lock lasts. Zero or negative means a lock expires at once.
    pub duration: Duration,
}

/// The lockout state of an account. The default is the clean state: no
/// failures, nothing in flight, not locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutState {
    /// Failures since the last completed sign-in, unlock or expired lock.
    pub failed_attempts: u32,
    /// Attempts reserved and not yet finished (their secret is being checked).
    pub in_flight: u32,
    /// While in the future, attempts are refused. In the past it means nothing
    /// (the lock expired), and the count starts again from zero.
    pub locked_until: Option<OffsetDateTime>,
}

/// What to do with an attempt, decided before the secret is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptDecision {
    /// Locked: refuse without checking the secret.
    Refused {
        /// When the lock ends.
        locked_until: OffsetDateTime,
    },
    /// Reserve one attempt in flight (in the same transaction as the read),
    /// then check the secret and report the result.
    Proceed,
    /// The budget is taken by attempts in flight: wait for one to finish and
    /// decide again. Never refused for this: attempts in flight are not failures.
    Wait,
}

impl LockoutPolicy {
    /// Whether attempts are refused at `now` (`locked_until > now`).
    pub fn is_locked(&self, state: &LockoutState, now: OffsetDateTime) -> bool {
        state.locked_until.is_some_and(|until| until > now)
    }

    /// Failures that still count at `now`: none once a lock has expired.
    fn live_failures(state: &LockoutState) -> u32 {
        if state.locked_until.is_some() {
            0
        } else {
            state.failed_attempts
        }
    }

    /// Decides an attempt from the state read at `now`; see the module docs.
    pub fn begin_attempt(&self, state: &LockoutState, now: OffsetDateTime) -> AttemptDecision {
        if let Some(locked_until) = state.locked_until.filter(|until| *until > now) {
            return AttemptDecision::Refused { locked_until };
        }
        let taken = Self::live_failures(state).saturating_add(state.in_flight);
        if self.threshold > 0 && taken >= self.threshold {
            AttemptDecision::Wait
        } else {
            AttemptDecision::Proceed
        }
    }

    /// The committed state after a reserved attempt proved wrong at `now`
    /// (`in_flight` is left to the store, which releases the reservation), and
    /// whether this failure is the one that locked the account.
    pub fn after_failure(&self, state: &LockoutState, now: OffsetDateTime) -> (LockoutState, bool) {
        if self.is_locked(state, now) {
            // Locked meanwhile (a staff action or a clock jump): keep that lock.
            let next = LockoutState {
                failed_attempts: state.failed_attempts.saturating_add(1),
                ..*state
            };
            return (next, false);
        }
        let failed_attempts = Self::live_failures(state).saturating_add(1);
        let locks = self.threshold > 0 && failed_attempts >= self.threshold;
        let next = LockoutState {
            failed_attempts,
            in_flight: state.in_flight,
            locked_until: locks.then(|| now.saturating_add(self.duration)),
        };
        (next, locks)
    }

    /// The committed state after a sign-in completed with every factor.
    pub fn after_success(&self, state: &LockoutState) -> LockoutState {
        LockoutState {
            in_flight: state.in_flight,
            ..LockoutState::default()
        }
    }

    /// State after staff unlock or a completed password reset.
    pub fn unlocked(&self) -> LockoutState {
        LockoutState::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 09:00:00 UTC);

    fn policy(threshold: u32) -> LockoutPolicy {
        LockoutPolicy {
            threshold,
            duration: Duration::minutes(15),
        }
    }

    /// The store's side: one account row, changed only under its lock.
    struct Row(LockoutState);

    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Refused,
        Waits,
        Failed { locked: bool },
        Succeeded,
    }

    impl Row {
        fn reserve(&mut self, p: &LockoutPolicy, now: OffsetDateTime) -> AttemptDecision {
            let decision = p.begin_attempt(&self.0, now);
            if decision == AttemptDecision::Proceed {
                self.0.in_flight += 1;
            }
            decision
        }

        fn fail(&mut self, p: &LockoutPolicy, now: OffsetDateTime) -> bool {
            self.0.in_flight -= 1;
            let (next, locked) = p.after_failure(&self.0, now);
            self.0 = next;
            locked
        }

        fn succeed(&mut self, p: &LockoutPolicy) {
            self.0.in_flight -= 1;
            self.0 = p.after_success(&self.0);
        }

        /// A whole attempt, alone.
        fn login(&mut self, p: &LockoutPolicy, now: OffsetDateTime, right: bool) -> Outcome {
            match self.reserve(p, now) {
                AttemptDecision::Refused { .. } => Outcome::Refused,
                AttemptDecision::Wait => Outcome::Waits,
                AttemptDecision::Proceed if right => {
                    self.succeed(p);
                    Outcome::Succeeded
                }
                AttemptDecision::Proceed => Outcome::Failed {
                    locked: self.fail(p, now),
                },
            }
        }
    }

    #[test]
    fn five_failures_lock_and_the_sixth_is_refused_even_if_right() {
        let p = policy(5);
        let mut row = Row(LockoutState::default());
        for i in 1..=4 {
            assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: false });
            assert_eq!(row.0.failed_attempts, i);
        }
        assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: true });
        assert_eq!(row.0.locked_until, Some(T0 + Duration::minutes(15)));
        let before = row.0;
        assert_eq!(
            row.login(&p, T0 + Duration::minutes(14), true),
            Outcome::Refused
        );
        assert_eq!(row.0, before, "a refusal writes nothing");
    }

    #[test]
    fn lock_expiry_is_a_fresh_start() {
        let p = policy(3);
        let mut row = Row(LockoutState {
            failed_attempts: 3,
            in_flight: 0,
            locked_until: Some(T0),
        });
        assert!(p.is_locked(&row.0, T0 - Duration::seconds(1)));
        assert!(!p.is_locked(&row.0, T0));
        assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: false });
        assert_eq!(row.0.failed_attempts, 1);
        assert_eq!(row.0.locked_until, None);
    }

    #[test]
    fn a_completed_sign_in_resets_the_count() {
        let p = policy(5);
        let mut row = Row(LockoutState::default());
        for _ in 0..4 {
            row.login(&p, T0, false);
        }
        assert_eq!(row.login(&p, T0, true), Outcome::Succeeded);
        assert_eq!(row.0, LockoutState::default());
        for _ in 0..4 {
            assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: false });
        }
        assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: true });
    }

    #[test]
    fn a_right_first_factor_alone_changes_nothing() {
        // Right password, wrong code, five times: the password steps release
        // their reservations without clearing anything, the codes count.
        let p = policy(5);
        let mut row = Row(LockoutState::default());
        for i in 1..=5 {
            assert_eq!(row.reserve(&p, T0), AttemptDecision::Proceed);
            row.0.in_flight -= 1; // password right, second factor pending
            assert_eq!(row.reserve(&p, T0), AttemptDecision::Proceed);
            assert_eq!(row.fail(&p, T0), i == 5);
        }
        assert!(p.is_locked(&row.0, T0));
    }

    #[test]
    fn attempts_beyond_the_budget_wait_and_never_exceed_it() {
        let p = policy(5);
        let mut row = Row(LockoutState::default());
        // Twenty parallel attempts: five reserve, fifteen wait.
        let decisions: Vec<_> = (0..20).map(|_| row.reserve(&p, T0)).collect();
        assert_eq!(
            decisions
                .iter()
                .filter(|d| **d == AttemptDecision::Proceed)
                .count(),
            5
        );
        assert!(decisions[5..].iter().all(|d| *d == AttemptDecision::Wait));
        // All five prove wrong: the last one locks, and the waiters are refused.
        let locks: Vec<bool> = (0..5).map(|_| row.fail(&p, T0)).collect();
        assert_eq!(locks, [false, false, false, false, true]);
        assert!(matches!(
            row.reserve(&p, T0),
            AttemptDecision::Refused { .. }
        ));
        assert_eq!(row.0.in_flight, 0);
    }

    #[test]
    fn a_success_among_attempts_in_flight_lets_the_waiters_through() {
        let p = policy(5);
        let mut row = Row(LockoutState {
            failed_attempts: 2,
            ..LockoutState::default()
        });
        for _ in 0..3 {
            assert_eq!(row.reserve(&p, T0), AttemptDecision::Proceed);
        }
        assert_eq!(row.reserve(&p, T0), AttemptDecision::Wait);
        row.succeed(&p);
        assert_eq!(row.0.failed_attempts, 0);
        assert_eq!(row.0.in_flight, 2, "the others are still being checked");
        for _ in 0..3 {
            assert_eq!(row.reserve(&p, T0), AttemptDecision::Proceed);
        }
        assert_eq!(row.reserve(&p, T0), AttemptDecision::Wait);
    }

    #[test]
    fn a_failure_after_the_lock_keeps_it_and_does_not_lock_again() {
        let p = policy(1);
        let mut row = Row(LockoutState::default());
        assert_eq!(row.reserve(&p, T0), AttemptDecision::Proceed);
        row.0.locked_until = Some(T0 + Duration::hours(1)); // locked meanwhile
        assert!(!row.fail(&p, T0));
        assert_eq!(row.0.locked_until, Some(T0 + Duration::hours(1)));
    }

    #[test]
    fn threshold_one_locks_on_first_failure() {
        let p = policy(1);
        let mut row = Row(LockoutState::default());
        assert_eq!(row.login(&p, T0, true), Outcome::Succeeded);
        assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: true });
        assert_eq!(row.login(&p, T0, true), Outcome::Refused);
    }

    #[test]
    fn threshold_zero_never_locks_nor_waits() {
        let p = policy(0);
        let mut row = Row(LockoutState::default());
        for _ in 0..100 {
            assert_eq!(row.reserve(&p, T0), AttemptDecision::Proceed);
        }
        for _ in 0..100 {
            assert!(!row.fail(&p, T0));
        }
        assert_eq!(row.0.failed_attempts, 100);
        assert!(!p.is_locked(&row.0, T0));
    }

    #[test]
    fn unlock_clears_an_active_lock() {
        let p = policy(3);
        let mut row = Row(LockoutState {
            failed_attempts: 3,
            in_flight: 0,
            locked_until: Some(T0 + Duration::hours(1)),
        });
        row.0 = p.unlocked();
        assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: false });
        assert_eq!(row.0.failed_attempts, 1);
    }

    #[test]
    fn zero_duration_lock_expires_immediately() {
        let p = LockoutPolicy {
            threshold: 1,
            duration: Duration::ZERO,
        };
        let mut row = Row(LockoutState::default());
        assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: true });
        assert_eq!(row.0.locked_until, Some(T0));
        assert!(!p.is_locked(&row.0, T0));
        assert_eq!(row.login(&p, T0, false), Outcome::Failed { locked: true });
    }

    #[test]
    fn arithmetic_saturates() {
        let p = policy(0);
        let state = LockoutState {
            failed_attempts: u32::MAX,
            in_flight: u32::MAX,
            locked_until: None,
        };
        assert_eq!(p.begin_attempt(&state, T0), AttemptDecision::Proceed);
        assert_eq!(p.after_failure(&state, T0).0.failed_attempts, u32::MAX);
        let p = LockoutPolicy {
            threshold: 1,
            duration: Duration::MAX,
        };
        let (locked, locks) = p.after_failure(&LockoutState::default(), T0);
        assert!(locks);
        assert!(p.is_locked(&locked, T0));
    }
}
