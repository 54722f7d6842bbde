//! Login lockout: a small state machine that stops online password guessing.
//!
//! After `threshold` consecutive failed logins the account is locked for
//! `duration`; while locked, logins are refused without looking at the password,
//! so a guesser learns nothing even by hitting the right one. (The idea follows
//! kanidm's "softlock".)
//!
//! # States and transitions
//!
//! A [`LockoutState`] is either *open* (`locked_until` is `None`, or lies in the
//! past: an expired lock counts as a fresh start with zero failures) or *locked*
//! (`locked_until` lies in the future).
//!
//! | State read | Call | Result |
//! |---|---|---|
//! | locked | [`LockoutPolicy::begin_attempt`] | [`AttemptDecision::Refused`]; write nothing, do not verify |
//! | open, `n` failures | [`LockoutPolicy::begin_attempt`] | [`AttemptDecision::Proceed`] reserving `n + 1` failures, locked if `n + 1 >= threshold` |
//! | reserved, password right | [`LockoutPolicy::after_success`] | zero failures, no lock |
//! | reserved, password wrong | (nothing) | the reserved state stays: it already counts the failure |
//! | any | [`LockoutPolicy::unlocked`] (staff unlock, completed reset) | zero failures, no lock |
//!
//! # Why the failure is reserved before verifying
//!
//! The functions are pure; the store applies each result with compare-and-swap
//! (`UPDATE … WHERE` the state read still holds) and, if the row changed in the
//! meantime, re-reads and calls [`LockoutPolicy::begin_attempt`] again. Because
//! each attempt is counted *before* the (slow) password hash is checked, `k`
//! parallel guesses need `k` successful swaps, so no more than `threshold`
//! passwords are ever verified between locks, however many requests race.

use time::{Duration, OffsetDateTime};

/// How many consecutive failures lock an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failed logins that lock the account. `0` disables lockout:
    /// failures are still counted but never lock.
    pub threshold: u32,
    /// How long a lock lasts. Zero or negative means a lock expires at once.
    pub duration: Duration,
}

/// The lockout columns of an account. The default is the clean state: no
/// failures, not locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutState {
    /// Failed logins since the last success, unlock or expired lock (including
    /// any attempt currently being verified).
    pub failed_attempts: u32,
    /// While in the future, logins are refused. In the past it means nothing
    /// (the lock expired), and the next attempt starts from zero.
    pub locked_until: Option<OffsetDateTime>,
}

/// What to do with a login attempt, decided before the password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptDecision {
    /// Locked: refuse without checking the password.
    Refused {
        /// When the lock ends (for a `Retry-After` or a message).
        locked_until: OffsetDateTime,
    },
    /// Write `reserved` (CAS against the state read) BEFORE verifying the
    /// password. The attempt is counted up front so parallel guesses can never
    /// exceed the threshold. If the password then proves wrong and
    /// `locks_on_failure` is true, this attempt is the one that locked the
    /// account (audit it and email the owner).
    Proceed {
        /// The state to write before verifying.
        reserved: LockoutState,
        /// Whether `reserved` is locked, i.e. a wrong password now locks the account.
        locks_on_failure: bool,
    },
}

impl LockoutPolicy {
    /// Whether logins are refused at `now` (`locked_until > now`).
    pub fn is_locked(&self, state: &LockoutState, now: OffsetDateTime) -> bool {
        state.locked_until.is_some_and(|until| until > now)
    }

    /// Decides a login attempt from the state read at `now`; see the module docs
    /// for how the store must apply it.
    pub fn begin_attempt(&self, state: &LockoutState, now: OffsetDateTime) -> AttemptDecision {
        if let Some(locked_until) = state.locked_until.filter(|until| *until > now) {
            return AttemptDecision::Refused { locked_until };
        }
        // A lock that has expired wipes the count it was set for.
        let previous = if state.locked_until.is_some() {
            0
        } else {
            state.failed_attempts
        };
        let failed_attempts = previous.saturating_add(1);
        let locks_on_failure = self.threshold > 0 && failed_attempts >= self.threshold;
        AttemptDecision::Proceed {
            reserved: LockoutState {
                failed_attempts,
                locked_until: locks_on_failure.then(|| now.saturating_add(self.duration)),
            },
            locks_on_failure,
        }
    }

    /// State after a correct password: counters cleared.
    pub fn after_success(&self) -> LockoutState {
        LockoutState::default()
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

    /// The store's side: one row updated by compare-and-swap.
    struct Row(LockoutState);

    impl Row {
        fn cas(&mut self, old: LockoutState, new: LockoutState) -> bool {
            if self.0 == old {
                self.0 = new;
                true
            } else {
                false
            }
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Refused,
        Failed { locked: bool },
        Succeeded,
    }

    /// A whole login as the caller performs it.
    fn login(p: &LockoutPolicy, row: &mut Row, now: OffsetDateTime, right: bool) -> Outcome {
        let read = row.0;
        match p.begin_attempt(&read, now) {
            AttemptDecision::Refused { .. } => Outcome::Refused,
            AttemptDecision::Proceed {
                reserved,
                locks_on_failure,
            } => {
                assert!(row.cas(read, reserved));
                if right {
                    assert!(row.cas(reserved, p.after_success()));
                    Outcome::Succeeded
                } else {
                    Outcome::Failed {
                        locked: locks_on_failure,
                    }
                }
            }
        }
    }

    fn proceed(decision: AttemptDecision) -> (LockoutState, bool) {
        match decision {
            AttemptDecision::Proceed {
                reserved,
                locks_on_failure,
            } => (reserved, locks_on_failure),
            AttemptDecision::Refused { .. } => panic!("expected Proceed, got {decision:?}"),
        }
    }

    #[test]
    fn fresh_state_reserves_one_failure() {
        let p = policy(5);
        let (reserved, locks) = proceed(p.begin_attempt(&LockoutState::default(), T0));
        assert_eq!(
            reserved,
            LockoutState {
                failed_attempts: 1,
                locked_until: None
            }
        );
        assert!(!locks);
    }

    #[test]
    fn reaching_threshold_reserves_the_lock() {
        let p = policy(5);
        let state = LockoutState {
            failed_attempts: 4,
            locked_until: None,
        };
        let (reserved, locks) = proceed(p.begin_attempt(&state, T0));
        assert!(locks);
        assert_eq!(
            reserved,
            LockoutState {
                failed_attempts: 5,
                locked_until: Some(T0 + Duration::minutes(15)),
            }
        );
        assert!(p.is_locked(&reserved, T0));
    }

    #[test]
    fn five_failures_lock_and_sixth_is_refused_even_if_right() {
        let p = policy(5);
        let mut row = Row(LockoutState::default());
        for i in 1..=4 {
            assert_eq!(
                login(&p, &mut row, T0, false),
                Outcome::Failed { locked: false }
            );
            assert_eq!(row.0.failed_attempts, i);
            assert!(!p.is_locked(&row.0, T0));
        }
        assert_eq!(
            login(&p, &mut row, T0, false),
            Outcome::Failed { locked: true }
        );
        assert!(p.is_locked(&row.0, T0));
        let before = row.0;
        assert_eq!(
            p.begin_attempt(&row.0, T0 + Duration::minutes(14)),
            AttemptDecision::Refused {
                locked_until: T0 + Duration::minutes(15)
            }
        );
        assert_eq!(login(&p, &mut row, T0, true), Outcome::Refused);
        // Refusal writes nothing.
        assert_eq!(row.0, before);
    }

    #[test]
    fn lock_expiry_is_a_fresh_start() {
        let p = policy(3);
        let locked = LockoutState {
            failed_attempts: 3,
            locked_until: Some(T0),
        };
        // One second before: still locked.
        assert!(p.is_locked(&locked, T0 - Duration::seconds(1)));
        // At the instant it ends: open (locked_until <= now).
        assert!(!p.is_locked(&locked, T0));
        let (reserved, locks) = proceed(p.begin_attempt(&locked, T0));
        assert_eq!(
            reserved,
            LockoutState {
                failed_attempts: 1,
                locked_until: None
            }
        );
        assert!(!locks);
    }

    #[test]
    fn full_cycle_lock_expire_lock_again() {
        let p = policy(2);
        let mut row = Row(LockoutState::default());
        login(&p, &mut row, T0, false);
        assert_eq!(
            login(&p, &mut row, T0, false),
            Outcome::Failed { locked: true }
        );
        let later = T0 + Duration::minutes(15);
        assert_eq!(
            login(&p, &mut row, later, false),
            Outcome::Failed { locked: false }
        );
        assert_eq!(
            login(&p, &mut row, later, false),
            Outcome::Failed { locked: true }
        );
        assert_eq!(row.0.locked_until, Some(later + Duration::minutes(15)));
    }

    #[test]
    fn success_in_between_resets_the_count() {
        let p = policy(5);
        let mut row = Row(LockoutState::default());
        for _ in 0..4 {
            login(&p, &mut row, T0, false);
        }
        assert_eq!(login(&p, &mut row, T0, true), Outcome::Succeeded);
        assert_eq!(row.0, LockoutState::default());
        for _ in 0..4 {
            assert_eq!(
                login(&p, &mut row, T0, false),
                Outcome::Failed { locked: false }
            );
        }
        assert_eq!(
            login(&p, &mut row, T0, false),
            Outcome::Failed { locked: true }
        );
    }

    #[test]
    fn right_password_on_the_locking_attempt_clears_the_reserved_lock() {
        let p = policy(5);
        let mut row = Row(LockoutState {
            failed_attempts: 4,
            locked_until: None,
        });
        assert_eq!(login(&p, &mut row, T0, true), Outcome::Succeeded);
        assert!(!p.is_locked(&row.0, T0));
        assert_eq!(row.0, LockoutState::default());
    }

    #[test]
    fn threshold_one_locks_on_first_failure() {
        let p = policy(1);
        let (reserved, locks) = proceed(p.begin_attempt(&LockoutState::default(), T0));
        assert!(locks);
        assert_eq!(reserved.failed_attempts, 1);
        assert_eq!(reserved.locked_until, Some(T0 + Duration::minutes(15)));

        let mut row = Row(LockoutState::default());
        assert_eq!(login(&p, &mut row, T0, true), Outcome::Succeeded);
        assert_eq!(
            login(&p, &mut row, T0, false),
            Outcome::Failed { locked: true }
        );
        assert_eq!(login(&p, &mut row, T0, true), Outcome::Refused);
    }

    #[test]
    fn threshold_zero_never_locks() {
        let p = policy(0);
        let mut row = Row(LockoutState::default());
        for _ in 0..100 {
            assert_eq!(
                login(&p, &mut row, T0, false),
                Outcome::Failed { locked: false }
            );
        }
        assert_eq!(row.0.failed_attempts, 100);
        assert!(!p.is_locked(&row.0, T0));
    }

    #[test]
    fn parallel_attempts_cannot_exceed_the_threshold() {
        let p = policy(5);
        let mut row = Row(LockoutState {
            failed_attempts: 4,
            locked_until: None,
        });
        // Two requests read the same state...
        let read = row.0;
        let (first, first_locks) = proceed(p.begin_attempt(&read, T0));
        let (second, _) = proceed(p.begin_attempt(&read, T0));
        // ...only one swap wins.
        assert!(row.cas(read, first));
        assert!(first_locks);
        assert!(!row.cas(read, second));
        // The loser re-reads and is refused without verifying.
        assert!(matches!(
            p.begin_attempt(&row.0, T0),
            AttemptDecision::Refused { .. }
        ));
    }

    #[test]
    fn unlock_clears_an_active_lock() {
        let p = policy(3);
        let mut row = Row(LockoutState {
            failed_attempts: 3,
            locked_until: Some(T0 + Duration::hours(1)),
        });
        row.0 = p.unlocked();
        assert!(!p.is_locked(&row.0, T0));
        assert_eq!(
            login(&p, &mut row, T0, false),
            Outcome::Failed { locked: false }
        );
        assert_eq!(row.0.failed_attempts, 1);
    }

    #[test]
    fn after_success_and_unlocked_are_clean() {
        let p = policy(5);
        assert_eq!(p.after_success(), LockoutState::default());
        assert_eq!(p.unlocked(), LockoutState::default());
        assert_eq!(
            LockoutState::default(),
            LockoutState {
                failed_attempts: 0,
                locked_until: None
            }
        );
    }

    #[test]
    fn is_locked_without_lock() {
        let p = policy(5);
        let state = LockoutState {
            failed_attempts: 99,
            locked_until: None,
        };
        assert!(!p.is_locked(&state, T0));
    }

    #[test]
    fn zero_duration_lock_expires_immediately() {
        let p = LockoutPolicy {
            threshold: 1,
            duration: Duration::ZERO,
        };
        let (reserved, locks) = proceed(p.begin_attempt(&LockoutState::default(), T0));
        assert!(locks);
        assert_eq!(reserved.locked_until, Some(T0));
        assert!(!p.is_locked(&reserved, T0));
        let (again, _) = proceed(p.begin_attempt(&reserved, T0));
        assert_eq!(again.failed_attempts, 1);
    }

    #[test]
    fn arithmetic_saturates() {
        // The counter never wraps to zero.
        let p = policy(0);
        let state = LockoutState {
            failed_attempts: u32::MAX,
            locked_until: None,
        };
        let (reserved, _) = proceed(p.begin_attempt(&state, T0));
        assert_eq!(reserved.failed_attempts, u32::MAX);

        // A lock past the end of representable time saturates instead of panicking.
        let p = LockoutPolicy {
            threshold: 1,
            duration: Duration::MAX,
        };
        let (reserved, locks) = proceed(p.begin_attempt(&LockoutState::default(), T0));
        assert!(locks);
        assert!(p.is_locked(&reserved, T0));
    }
}
