//! Circulation arithmetic: loan policies, due dates, renewals, overdue fines and
//! the fine block.
//!
//! Everything here is a pure function of its arguments; the circulation service
//! reads the clock and the stored loan, calls these, and writes the results.
//!
//! # Whole days, local to the branch
//!
//! Loans are due on a *day*, not at an instant. [`due_date`] — the one due-date
//! rule every caller uses — picks the due day in the lending branch's local
//! calendar (moved past closed days) and the due instant 23:59:59 local time of
//! that day. Lateness is counted in the branch's local calendar days after the
//! due day ([`lateness`]): returning any time on the due day is on time,
//! returning any time the next local day is one day late, and days the branch
//! was closed are skipped unless configured otherwise. With the defaults (UTC,
//! open every day) this is [`due_at`] and [`days_late`]: 23:59:59 UTC and UTC
//! calendar days, the same on every server.
//!
//! # Fines
//!
//! An overdue fine is created on return ([`overdue_fine`]):
//! `(days late − grace days) × daily rate`, capped at the policy's maximum per
//! loan, always using the [`LoanPolicy`] recorded on the loan at checkout (so a
//! later policy change does not alter fines on existing loans). The grace days
//! are a threshold and are subtracted: with one grace day, one day late owes
//! nothing and two days late owes one day's rate.

use time::{Date, Duration, OffsetDateTime};

pub use crate::calendar::BranchDays;
use crate::calendar::utc_date;

/// The largest amount of money (in cents) a policy may name: 100,000.00.
const MAX_POLICY_CENTS: i64 = 10_000_000;

/// The loan rules of one item type, as recorded on each loan at checkout.
///
/// Amounts are integer cents. Build one with [`LoanPolicy::default_for`] or from
/// configuration, and check it with [`LoanPolicy::validate`] before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoanPolicy {
    /// Length of a loan (and of each renewal) in days, `1..=365`.
    pub loan_days: u32,
    /// How many times a loan may be renewed, `0..=50`.
    pub max_renewals: u32,
    /// Fine per chargeable day late, in cents, `0..=10_000_000`. `0` means no
    /// overdue fines.
    pub daily_fine_cents: i64,
    /// The most one loan can be fined for lateness, in cents,
    /// `0..=10_000_000`. The cap always applies: `0` means no overdue fine is
    /// ever owed (it is not "uncapped"; use a large cap for that).
    pub max_fine_cents: i64,
    /// Days late that are forgiven before fines start, `0..=365`. They are
    /// subtracted from the days late, not merely a threshold.
    pub grace_days: u32,
    /// What a lost or damaged-beyond-repair copy costs the patron, in cents,
    /// `0..=10_000_000`.
    pub replacement_cost_cents: i64,
}

impl LoanPolicy {
    /// Validates ranges (loan_days 1..=365, max_renewals 0..=50, cents
    /// 0..=10_000_000, grace_days 0..=365, max_fine >= 0); returns the names of
    /// bad fields with reasons.
    ///
    /// Every bad field is reported (in declaration order), not just the first,
    /// so a form can mark them all at once. The field names are the serialized
    /// names of the fields.
    pub fn validate(&self) -> Result<(), Vec<(&'static str, &'static str)>> {
        let mut errors = Vec::new();
        if !(1..=365).contains(&self.loan_days) {
            errors.push(("loan_days", "must be between 1 and 365"));
        }
        if self.max_renewals > 50 {
            errors.push(("max_renewals", "must be at most 50"));
        }
        for (field, cents) in [
            ("daily_fine_cents", self.daily_fine_cents),
            ("max_fine_cents", self.max_fine_cents),
        ] {
            if let Some(reason) = cents_problem(cents) {
                errors.push((field, reason));
            }
        }
        if self.grace_days > 365 {
            errors.push(("grace_days", "must be at most 365"));
        }
        if let Some(reason) = cents_problem(self.replacement_cost_cents) {
            errors.push(("replacement_cost_cents", reason));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Sensible defaults per item type (the catalog's `item_type` values,
    /// lower case, exactly as stored); `None` for any other string.
    ///
    /// | item type | loan days | renewals | daily fine | fine cap | grace | replacement |
    /// |---|---|---|---|---|---|---|
    /// | `book` | 21 | 3 | 25¢ | 10.00 | 1 | 25.00 |
    /// | `ebook` | 14 | 2 | 0 | 0 | 0 | 0 |
    /// | `audiobook` | 14 | 2 | 25¢ | 10.00 | 1 | 30.00 |
    /// | `dvd` | 7 | 1 | 1.00 | 15.00 | 0 | 25.00 |
    /// | `magazine` | 7 | 0 | 10¢ | 3.00 | 1 | 5.00 |
    /// | `other` | 14 | 1 | 25¢ | 10.00 | 1 | 20.00 |
    ///
    /// Why: three weeks with a few renewals is the common public-library book
    /// loan; high-demand, short-loan media (DVDs, magazines) get a week and few
    /// or no renewals, and DVDs no grace day. Ebook loans expire by themselves
    /// on the lending platform and cannot be lost, so they carry no fine and no
    /// replacement cost. Every cap stays below the replacement cost, so a late
    /// item never costs more in fines than replacing it. A library that has gone
    /// fine-free sets `daily_fine_cents` to 0 in its own policies.
    pub fn default_for(item_type: &str) -> Option<LoanPolicy> {
        let (
            loan_days,
            max_renewals,
            daily_fine_cents,
            max_fine_cents,
            grace_days,
            replacement_cost_cents,
        ) = match item_type {
            "book" => (21, 3, 25, 1_000, 1, 2_500),
            "ebook" => (14, 2, 0, 0, 0, 0),
            "audiobook" => (14, 2, 25, 1_000, 1, 3_000),
            "dvd" => (7, 1, 100, 1_500, 0, 2_500),
            "magazine" => (7, 0, 10, 300, 1, 500),
            "other" => (14, 1, 25, 1_000, 1, 2_000),
            _ => return None,
        };
        Some(LoanPolicy {
            loan_days,
            max_renewals,
            daily_fine_cents,
            max_fine_cents,
            grace_days,
            replacement_cost_cents,
        })
    }
}

/// Why an amount of cents is out of the policy range, if it is.
fn cents_problem(cents: i64) -> Option<&'static str> {
    if cents < 0 {
        Some("must not be negative")
    } else if cents > MAX_POLICY_CENTS {
        Some("must be at most 10000000 cents")
    } else {
        None
    }
}

/// A due day and its due instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The local calendar day the loan is due (an open day of the branch).
    pub due_date: Date,
    /// 23:59:59 local time of `due_date`, in UTC.
    pub due_at: OffsetDateTime,
}

/// **The** due-date rule. Checkout, renewal and anything that predicts a due
/// date (a rules simulator) call this one function, so they cannot disagree.
///
/// - `branch`: the local days of the lending branch (its zone and calendar).
/// - `now`: the moment of the checkout or renewal.
/// - `renewing_from`: `None` for a checkout; for a renewal, the loan's current
///   due day.
///
/// The due day is `loan_days` local calendar days after the base day — the
/// local date of `now` for a checkout; for a renewal the later of today and the
/// current due day (renewing early never costs the patron the days they still
/// had; renewing while overdue counts from today) — moved forward to the next
/// day the branch is open. The due instant is 23:59:59 local time of that day,
/// written in UTC; a DST change never moves the due day. Saturates at the last
/// representable day instead of panicking.
pub fn due_date(
    branch: &BranchDays,
    loan_days: u32,
    now: OffsetDateTime,
    renewing_from: Option<Date>,
) -> Due {
    let today = branch.zone.local_date(now);
    let base = match renewing_from {
        Some(current) => current.max(today),
        None => today,
    };
    let due_date = branch
        .calendar
        .next_open_day(base.saturating_add(Duration::days(i64::from(loan_days))));
    Due {
        due_date,
        due_at: branch.zone.end_of_day(due_date),
    }
}

/// The due instant for a loan checked out at `checked_out_at` under
/// `loan_days` in a UTC library open every day: 23:59:59 UTC of (the UTC date
/// of checkout + loan_days). The same as [`due_date`] with
/// [`BranchDays::utc_always_open`].
///
/// The result always carries the UTC offset. Beyond the last representable
/// date it saturates instead of panicking.
pub fn due_at(checked_out_at: OffsetDateTime, loan_days: u32) -> OffsetDateTime {
    due_date(
        &BranchDays::utc_always_open(),
        loan_days,
        checked_out_at,
        None,
    )
    .due_at
}

/// The new due instant of a renewal at `now` in a UTC library open every day:
/// 23:59:59 UTC of (the later of today's UTC date and the current due day) +
/// `loan_days`. The same as [`due_date`] with [`BranchDays::utc_always_open`].
///
/// - Renewed on time (on or before the due day), the loan is extended from the
///   current due day, the usual library rule: renewing early never costs the
///   patron the days they still had.
/// - Renewed while overdue, it is extended from today. Counting from the past
///   due day would hand back a loan with fewer than `loan_days` left, or one
///   that is still (or already again) overdue, for something the library has
///   just agreed the patron may keep.
///
/// Whether an overdue loan may be renewed at all, and whether the lateness so
/// far is charged at renewal, is the service's decision: once renewed, a later
/// [`overdue_fine`] counts only from the new due date.
pub fn renewed_due_at(
    current_due_at: OffsetDateTime,
    now: OffsetDateTime,
    loan_days: u32,
) -> OffsetDateTime {
    due_date(
        &BranchDays::utc_always_open(),
        loan_days,
        now,
        Some(utc_date(current_due_at)),
    )
    .due_at
}

/// Whole UTC calendar days after the due day up to the day of `returned_at` (0
/// when returned on or before the due day).
///
/// Only the UTC dates matter: returned at any time on the due day is 0, at any
/// time the next day 1. Saturates at `u32::MAX` (unreachable within the
/// representable dates).
pub fn days_late(due_at: OffsetDateTime, returned_at: OffsetDateTime) -> u32 {
    let days = (utc_date(returned_at) - utc_date(due_at)).whole_days();
    if days <= 0 {
        0
    } else {
        u32::try_from(days).unwrap_or(u32::MAX)
    }
}

/// Lateness in local days of the lending branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lateness {
    /// Days after the due day up to the day of return that count as late.
    pub days_late: u32,
    /// Closed days in that span that were not counted.
    pub closed_days_skipped: u32,
}

/// Local calendar days of `branch` after `due_date` up to the local day of
/// `returned_at`, without the days the branch is closed unless
/// `count_closed_days`. `branch` is the calendar in force at the return, so a
/// closure declared after checkout is not charged. Returned on or before the
/// due day: zero.
pub fn lateness(
    branch: &BranchDays,
    due_date: Date,
    returned_at: OffsetDateTime,
    count_closed_days: bool,
) -> Lateness {
    let returned_on = branch.zone.local_date(returned_at);
    let span = (returned_on - due_date).whole_days();
    if span <= 0 {
        return Lateness::default();
    }
    let span = u32::try_from(span).unwrap_or(u32::MAX);
    let closed = if count_closed_days {
        0
    } else {
        branch
            .calendar
            .closed_days_between(due_date, returned_on)
            .min(span)
    };
    Lateness {
        days_late: span - closed,
        closed_days_skipped: closed,
    }
}

/// How an overdue fine was computed.
///
/// All fields but `amount_cents` are the `calculation` of an overdue fine in
/// `GET /fines/{id}`; `amount_cents` is the fine itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FineCalculation {
    /// Local days after the due day that count as late (before grace is
    /// subtracted; closed days left out unless configured otherwise).
    pub days_late: u32,
    /// Grace days of the loan's policy, subtracted from `days_late`.
    pub grace_days: u32,
    /// The policy's fine per chargeable day, in cents.
    pub daily_fine_cents: i64,
    /// The policy's cap per loan, in cents.
    pub max_fine_cents: i64,
    /// Whether the cap cut the fine: the uncapped amount
    /// `(days_late − grace_days) × daily_fine_cents` was strictly greater than
    /// `max_fine_cents`. Exactly reaching the cap is not capped.
    pub capped: bool,
    /// Closed days of the lending branch after the due day that were not
    /// counted as late.
    #[serde(default)]
    pub closed_days_skipped: u32,
    /// The fine owed, in cents: the smaller of the uncapped amount and the cap.
    /// Always positive.
    pub amount_cents: i64,
}

/// The overdue fine for a return in a UTC library open every day (None when
/// nothing is owed: on time, inside grace, or a zero rate). Saturating
/// arithmetic; never negative. See [`overdue_fine_for`].
pub fn overdue_fine(
    policy: &LoanPolicy,
    due_at: OffsetDateTime,
    returned_at: OffsetDateTime,
) -> Option<FineCalculation> {
    fine_for_lateness(
        policy,
        Lateness {
            days_late: days_late(due_at, returned_at),
            closed_days_skipped: 0,
        },
    )
}

/// The overdue fine for a return, counting [`lateness`] in the lending
/// branch's local days (None when nothing is owed).
///
/// `policy` must be the policy recorded on the loan at checkout. The product is
/// computed exactly in 128 bits, so it cannot overflow, and the amount is then
/// bounded by the cap, so it always fits. A cap of 0 also means nothing is
/// owed. Out-of-range policies (which [`LoanPolicy::validate`] rejects) are
/// still handled without a negative fine: a negative rate or cap owes nothing.
pub fn overdue_fine_for(
    policy: &LoanPolicy,
    branch: &BranchDays,
    due_date: Date,
    returned_at: OffsetDateTime,
    count_closed_days: bool,
) -> Option<FineCalculation> {
    fine_for_lateness(
        policy,
        lateness(branch, due_date, returned_at, count_closed_days),
    )
}

fn fine_for_lateness(policy: &LoanPolicy, late: Lateness) -> Option<FineCalculation> {
    let chargeable_days = late.days_late.saturating_sub(policy.grace_days);
    if chargeable_days == 0 || policy.daily_fine_cents <= 0 || policy.max_fine_cents <= 0 {
        return None;
    }
    let uncapped = i128::from(chargeable_days) * i128::from(policy.daily_fine_cents);
    let cap = i128::from(policy.max_fine_cents);
    let capped = uncapped > cap;
    // Both are positive and the smaller is at most the (i64) cap, so this fits.
    let amount_cents = i64::try_from(uncapped.min(cap)).unwrap_or(policy.max_fine_cents);
    Some(FineCalculation {
        days_late: late.days_late,
        grace_days: policy.grace_days,
        daily_fine_cents: policy.daily_fine_cents,
        max_fine_cents: policy.max_fine_cents,
        capped,
        closed_days_skipped: late.closed_days_skipped,
        amount_cents,
    })
}

/// When a hold made ready at `ready_at` stops waiting on the pickup branch's
/// shelf: the same local time of day, `pickup_days` *open* days of the pickup
/// branch after the day it became ready. In a UTC library open every day that
/// is exactly `ready_at + pickup_days` days.
pub fn pickup_expires_at(
    branch: &BranchDays,
    ready_at: OffsetDateTime,
    pickup_days: u32,
) -> OffsetDateTime {
    let ready_on = branch.zone.local_date(ready_at);
    let last_day = branch.calendar.nth_open_day_after(ready_on, pickup_days);
    branch
        .zone
        .instant_at(last_day, branch.zone.local_time(ready_at), true)
}

/// Whether a patron owing `balance_cents` is blocked at `threshold_cents`
/// ("owing at least the block threshold").
///
/// A threshold of 0 (or below) blocks nobody: it switches the block off, rather
/// than blocking every patron including those who owe nothing. A balance of 0
/// or below (a credit) is therefore never blocked either.
pub fn is_blocked(balance_cents: i64, threshold_cents: i64) -> bool {
    threshold_cents > 0 && balance_cents >= threshold_cents
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::calendar::{END_OF_DAY as DUE_TIME, OpeningCalendar, OpeningHours, Zone};
    use time::UtcOffset;
    use time::macros::{date, datetime, offset, time};

    /// 23:59:59 UTC of `day + days`, saturating at the last representable day.
    fn due_at_end_of(day: Date, days: u32) -> OffsetDateTime {
        day.saturating_add(Duration::days(i64::from(days)))
            .with_time(DUE_TIME)
            .assume_utc()
    }

    const ITEM_TYPES: [&str; 6] = ["book", "ebook", "audiobook", "dvd", "magazine", "other"];

    fn book() -> LoanPolicy {
        LoanPolicy::default_for("book").unwrap()
    }

    // ---- due_at ----

    #[test]
    fn due_at_checkout_at_midnight_utc() {
        let due = due_at(datetime!(2026-03-01 00:00:00 UTC), 21);
        assert_eq!(due, datetime!(2026-03-22 23:59:59 UTC));
    }

    #[test]
    fn due_at_checkout_at_last_second_of_day_utc() {
        let due = due_at(datetime!(2026-03-01 23:59:59 UTC), 21);
        assert_eq!(due, datetime!(2026-03-22 23:59:59 UTC));
        // Even the last nanosecond of the day is still that day.
        let due = due_at(datetime!(2026-03-01 23:59:59.999_999_999 UTC), 21);
        assert_eq!(due, datetime!(2026-03-22 23:59:59 UTC));
    }

    #[test]
    fn due_at_uses_utc_date_of_positive_offset_checkout() {
        // 01:30 at +02:00 on 1 March is 23:30 UTC on 28 February (2026: not a leap year).
        let due = due_at(datetime!(2026-03-01 01:30 +02:00), 21);
        assert_eq!(due, datetime!(2026-03-21 23:59:59 UTC));
    }

    #[test]
    fn due_at_uses_utc_date_of_negative_offset_checkout() {
        // 22:00 at -05:00 on 28 February is 03:00 UTC on 1 March.
        let due = due_at(datetime!(2026-02-28 22:00 -05:00), 7);
        assert_eq!(due, datetime!(2026-03-08 23:59:59 UTC));
    }

    #[test]
    fn due_at_is_exactly_23_59_59_utc() {
        let due = due_at(datetime!(2026-06-10 12:34:56.789 +05:30), 14);
        assert_eq!(due.offset(), UtcOffset::UTC);
        assert_eq!(due.time(), time!(23:59:59));
        assert_eq!(due.nanosecond(), 0);
        assert_eq!(due.date(), date!(2026 - 06 - 24));
    }

    #[test]
    fn due_at_lands_on_leap_day() {
        assert_eq!(
            due_at(datetime!(2028-02-08 10:00 UTC), 21),
            datetime!(2028-02-29 23:59:59 UTC)
        );
        assert_eq!(
            due_at(datetime!(2028-02-29 10:00 UTC), 1),
            datetime!(2028-03-01 23:59:59 UTC)
        );
        // A leap year's 366 days: 365 days after 1 January is 31 December.
        assert_eq!(
            due_at(datetime!(2028-01-01 00:00 UTC), 365),
            datetime!(2028-12-31 23:59:59 UTC)
        );
    }

    #[test]
    fn due_at_crosses_year_end() {
        assert_eq!(
            due_at(datetime!(2026-12-20 15:00 UTC), 21),
            datetime!(2027-01-10 23:59:59 UTC)
        );
        // New Year's Eve 23:30 at -01:00 is already 1 January in UTC.
        assert_eq!(
            due_at(datetime!(2026-12-31 23:30 -01:00), 7),
            datetime!(2027-01-08 23:59:59 UTC)
        );
    }

    #[test]
    fn due_at_with_zero_days_is_end_of_checkout_day() {
        assert_eq!(
            due_at(datetime!(2026-03-01 08:00 UTC), 0),
            datetime!(2026-03-01 23:59:59 UTC)
        );
    }

    #[test]
    fn due_at_saturates_at_the_end_of_time() {
        let last = Date::MAX.with_time(time!(12:00)).assume_utc();
        assert_eq!(
            due_at(last, u32::MAX),
            Date::MAX.with_time(DUE_TIME).assume_utc()
        );
    }

    #[test]
    fn utc_date_clamps_outside_the_representable_range() {
        let before_min = Date::MIN.midnight().assume_offset(offset!(+01:00));
        assert_eq!(utc_date(before_min), Date::MIN);
        let after_max = Date::MAX
            .with_time(time!(23:30))
            .assume_offset(offset!(-01:00));
        assert_eq!(utc_date(after_max), Date::MAX);
        // And nothing panics on the way.
        assert_eq!(due_at(before_min, 1), due_at_end_of(Date::MIN, 1));
        assert_eq!(days_late(after_max, before_min), 0);
    }

    // ---- days_late ----

    #[test]
    fn returned_on_due_day_last_second_is_not_late() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(days_late(due, due), 0);
        assert_eq!(days_late(due, datetime!(2026-03-22 23:59:59.999 UTC)), 0);
    }

    #[test]
    fn returned_one_second_after_due_is_one_day_late() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(days_late(due, datetime!(2026-03-23 00:00:00 UTC)), 1);
        assert_eq!(days_late(due, datetime!(2026-03-23 23:59:59 UTC)), 1);
    }

    #[test]
    fn returned_two_days_after_is_two_days_late() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(days_late(due, datetime!(2026-03-24 00:00:00 UTC)), 2);
        assert_eq!(days_late(due, datetime!(2026-03-24 18:00:00 UTC)), 2);
    }

    #[test]
    fn returned_early_is_not_late() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(days_late(due, datetime!(2026-03-01 09:00 UTC)), 0);
        assert_eq!(days_late(due, datetime!(2025-01-01 09:00 UTC)), 0);
    }

    #[test]
    fn days_late_counts_utc_dates_of_offset_returns() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        // 00:30 at +01:00 on the 23rd is 23:30 UTC on the 22nd: on time.
        assert_eq!(days_late(due, datetime!(2026-03-23 00:30 +01:00)), 0);
        // 20:00 at -05:00 on the 22nd is 01:00 UTC on the 23rd: one day late.
        assert_eq!(days_late(due, datetime!(2026-03-22 20:00 -05:00)), 1);
    }

    #[test]
    fn days_late_across_leap_day() {
        assert_eq!(
            days_late(
                datetime!(2028-02-28 23:59:59 UTC),
                datetime!(2028-03-01 10:00 UTC)
            ),
            2
        );
        assert_eq!(
            days_late(
                datetime!(2026-02-28 23:59:59 UTC),
                datetime!(2026-03-01 10:00 UTC)
            ),
            1
        );
        assert_eq!(
            days_late(
                datetime!(2028-02-29 23:59:59 UTC),
                datetime!(2028-03-01 00:00 UTC)
            ),
            1
        );
    }

    #[test]
    fn days_late_across_year_end() {
        assert_eq!(
            days_late(
                datetime!(2026-12-31 23:59:59 UTC),
                datetime!(2027-01-01 00:00 UTC)
            ),
            1
        );
        assert_eq!(
            days_late(
                datetime!(2026-12-30 23:59:59 UTC),
                datetime!(2027-01-02 12:00 UTC)
            ),
            3
        );
    }

    #[test]
    fn days_late_over_the_whole_range_fits() {
        let first = Date::MIN.midnight().assume_utc();
        let last = Date::MAX.with_time(DUE_TIME).assume_utc();
        let days = (Date::MAX - Date::MIN).whole_days();
        assert_eq!(i64::from(days_late(first, last)), days);
    }

    #[test]
    fn due_at_and_days_late_round_trip() {
        let checkout = datetime!(2026-03-01 01:30 +02:00);
        let due = due_at(checkout, 21);
        assert_eq!(days_late(due, checkout), 0);
        assert_eq!(days_late(due, due + Duration::days(5)), 5);
    }

    // ---- renewed_due_at ----

    #[test]
    fn renewal_on_time_extends_from_current_due_day() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(
            renewed_due_at(due, datetime!(2026-03-15 10:00 UTC), 21),
            datetime!(2026-04-12 23:59:59 UTC)
        );
    }

    #[test]
    fn renewal_on_the_due_day_extends_from_the_due_day() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(
            renewed_due_at(due, datetime!(2026-03-22 23:59:59 UTC), 21),
            datetime!(2026-04-12 23:59:59 UTC)
        );
    }

    #[test]
    fn renewal_of_overdue_loan_extends_from_today() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        // One second late is already the next day.
        assert_eq!(
            renewed_due_at(due, datetime!(2026-03-23 00:00:00 UTC), 21),
            datetime!(2026-04-13 23:59:59 UTC)
        );
        assert_eq!(
            renewed_due_at(due, datetime!(2026-03-30 09:00 UTC), 21),
            datetime!(2026-04-20 23:59:59 UTC)
        );
    }

    #[test]
    fn renewal_uses_utc_dates() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        // 00:30 at +01:00 on the 23rd is still the 22nd in UTC: on time.
        assert_eq!(
            renewed_due_at(due, datetime!(2026-03-23 00:30 +01:00), 7),
            datetime!(2026-03-29 23:59:59 UTC)
        );
        // A due instant stored at another offset still names its UTC day.
        assert_eq!(
            renewed_due_at(
                datetime!(2026-03-23 01:59:59 +02:00),
                datetime!(2026-03-01 00:00 UTC),
                7
            ),
            datetime!(2026-03-29 23:59:59 UTC)
        );
    }

    #[test]
    fn renewal_saturates_at_the_end_of_time() {
        let due = Date::MAX.with_time(DUE_TIME).assume_utc();
        assert_eq!(renewed_due_at(due, due, 365), due);
    }

    // ---- overdue_fine ----

    #[test]
    fn on_time_return_owes_nothing() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(overdue_fine(&book(), due, due), None);
        assert_eq!(
            overdue_fine(&book(), due, datetime!(2026-03-10 12:00 UTC)),
            None
        );
    }

    #[test]
    fn lateness_within_grace_owes_nothing() {
        let policy = LoanPolicy {
            grace_days: 3,
            ..book()
        };
        let due = datetime!(2026-03-22 23:59:59 UTC);
        for days in 1..=3 {
            assert_eq!(
                overdue_fine(&policy, due, due + Duration::days(days)),
                None,
                "{days} days late"
            );
        }
    }

    #[test]
    fn one_day_past_grace_owes_one_days_rate() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        // Book: grace 1 day, 25 cents a day; two days late is one chargeable day.
        let fine = overdue_fine(&book(), due, datetime!(2026-03-24 00:00 UTC)).unwrap();
        assert_eq!(
            fine,
            FineCalculation {
                days_late: 2,
                grace_days: 1,
                daily_fine_cents: 25,
                max_fine_cents: 1_000,
                capped: false,
                closed_days_skipped: 0,
                amount_cents: 25,
            }
        );
    }

    #[test]
    fn no_grace_fines_from_the_first_day() {
        let dvd = LoanPolicy::default_for("dvd").unwrap();
        let due = datetime!(2026-03-22 23:59:59 UTC);
        let fine = overdue_fine(&dvd, due, datetime!(2026-03-23 00:00 UTC)).unwrap();
        assert_eq!(fine.days_late, 1);
        assert_eq!(fine.amount_cents, 100);
    }

    #[test]
    fn reaching_the_cap_exactly_is_not_capped() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        // 41 days late − 1 grace = 40 days × 25 = 1000 = the cap.
        let fine = overdue_fine(&book(), due, due + Duration::days(41)).unwrap();
        assert_eq!(fine.days_late, 41);
        assert_eq!(fine.amount_cents, 1_000);
        assert!(!fine.capped);
    }

    #[test]
    fn exceeding_the_cap_is_capped() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        // 42 days late − 1 grace = 41 days × 25 = 1025 > 1000.
        let fine = overdue_fine(&book(), due, due + Duration::days(42)).unwrap();
        assert_eq!(fine.days_late, 42);
        assert_eq!(fine.amount_cents, 1_000);
        assert!(fine.capped);
        // One day below the cap.
        let fine = overdue_fine(&book(), due, due + Duration::days(40)).unwrap();
        assert_eq!(fine.amount_cents, 975);
        assert!(!fine.capped);
    }

    #[test]
    fn zero_daily_rate_owes_nothing() {
        let ebook = LoanPolicy::default_for("ebook").unwrap();
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(overdue_fine(&ebook, due, due + Duration::days(100)), None);
        let free = LoanPolicy {
            daily_fine_cents: 0,
            ..book()
        };
        assert_eq!(overdue_fine(&free, due, due + Duration::days(100)), None);
    }

    #[test]
    fn zero_cap_owes_nothing() {
        let policy = LoanPolicy {
            max_fine_cents: 0,
            ..book()
        };
        let due = datetime!(2026-03-22 23:59:59 UTC);
        assert_eq!(overdue_fine(&policy, due, due + Duration::days(10)), None);
    }

    #[test]
    fn invalid_negative_policy_never_gives_a_negative_fine() {
        let due = datetime!(2026-03-22 23:59:59 UTC);
        let returned = due + Duration::days(10);
        let negative_rate = LoanPolicy {
            daily_fine_cents: -25,
            ..book()
        };
        assert_eq!(overdue_fine(&negative_rate, due, returned), None);
        let negative_cap = LoanPolicy {
            max_fine_cents: -1_000,
            ..book()
        };
        assert_eq!(overdue_fine(&negative_cap, due, returned), None);
        let both = LoanPolicy {
            daily_fine_cents: i64::MIN,
            max_fine_cents: i64::MIN,
            ..book()
        };
        assert_eq!(overdue_fine(&both, due, returned), None);
    }

    #[test]
    fn huge_values_saturate_at_the_cap() {
        let policy = LoanPolicy {
            daily_fine_cents: i64::MAX,
            max_fine_cents: i64::MAX,
            grace_days: 0,
            ..book()
        };
        let first = Date::MIN.midnight().assume_utc();
        let last = Date::MAX.with_time(DUE_TIME).assume_utc();
        let fine = overdue_fine(&policy, first, last).unwrap();
        assert_eq!(fine.amount_cents, i64::MAX);
        assert!(fine.capped);
        // Exactly one day at i64::MAX equals the cap: not capped, no overflow.
        let fine = overdue_fine(&policy, first, first + Duration::days(1)).unwrap();
        assert_eq!(fine.amount_cents, i64::MAX);
        assert!(!fine.capped);
        // Largest valid policy over the longest possible lateness.
        let valid_max = LoanPolicy {
            daily_fine_cents: MAX_POLICY_CENTS,
            max_fine_cents: MAX_POLICY_CENTS,
            ..book()
        };
        let fine = overdue_fine(&valid_max, first, last).unwrap();
        assert_eq!(fine.amount_cents, MAX_POLICY_CENTS);
        assert!(fine.capped);
    }

    #[test]
    fn grace_larger_than_lateness_owes_nothing() {
        let policy = LoanPolicy {
            grace_days: u32::MAX,
            ..book()
        };
        let first = Date::MIN.midnight().assume_utc();
        let last = Date::MAX.with_time(DUE_TIME).assume_utc();
        assert_eq!(overdue_fine(&policy, first, last), None);
    }

    // ---- is_blocked ----

    #[test]
    fn blocked_from_the_threshold_up() {
        assert!(!is_blocked(999, 1_000));
        assert!(is_blocked(1_000, 1_000));
        assert!(is_blocked(1_001, 1_000));
        assert!(is_blocked(i64::MAX, 1_000));
    }

    #[test]
    fn zero_threshold_blocks_nobody() {
        assert!(!is_blocked(-1, 0));
        assert!(!is_blocked(0, 0));
        assert!(!is_blocked(1, 0));
        assert!(!is_blocked(i64::MAX, 0));
    }

    #[test]
    fn negative_threshold_blocks_nobody_and_credit_is_never_blocked() {
        assert!(!is_blocked(0, -1));
        assert!(!is_blocked(1_000, -500));
        assert!(!is_blocked(-5_000, 1));
        assert!(is_blocked(1, 1));
    }

    // ---- LoanPolicy ----

    #[test]
    fn defaults_exist_for_every_item_type_and_validate() {
        for item_type in ITEM_TYPES {
            let policy = LoanPolicy::default_for(item_type)
                .unwrap_or_else(|| panic!("no default for {item_type}"));
            assert_eq!(policy.validate(), Ok(()), "{item_type}");
            // A late item never costs more in fines than replacing it.
            assert!(
                policy.max_fine_cents <= policy.replacement_cost_cents,
                "{item_type}"
            );
        }
    }

    #[test]
    fn default_values() {
        assert_eq!(
            LoanPolicy::default_for("book"),
            Some(LoanPolicy {
                loan_days: 21,
                max_renewals: 3,
                daily_fine_cents: 25,
                max_fine_cents: 1_000,
                grace_days: 1,
                replacement_cost_cents: 2_500,
            })
        );
        assert_eq!(
            LoanPolicy::default_for("ebook"),
            Some(LoanPolicy {
                loan_days: 14,
                max_renewals: 2,
                daily_fine_cents: 0,
                max_fine_cents: 0,
                grace_days: 0,
                replacement_cost_cents: 0,
            })
        );
        let dvd = LoanPolicy::default_for("dvd").unwrap();
        assert_eq!((dvd.loan_days, dvd.max_renewals, dvd.grace_days), (7, 1, 0));
        let magazine = LoanPolicy::default_for("magazine").unwrap();
        assert_eq!(magazine.max_renewals, 0);
        let audiobook = LoanPolicy::default_for("audiobook").unwrap();
        assert_eq!(audiobook.replacement_cost_cents, 3_000);
        let other = LoanPolicy::default_for("other").unwrap();
        assert_eq!(other.replacement_cost_cents, 2_000);
    }

    #[test]
    fn unknown_item_types_have_no_default() {
        for item_type in ["", "Book", "BOOK", " book", "cd", "map"] {
            assert_eq!(LoanPolicy::default_for(item_type), None, "{item_type:?}");
        }
    }

    #[test]
    fn validate_accepts_the_range_ends() {
        let low = LoanPolicy {
            loan_days: 1,
            max_renewals: 0,
            daily_fine_cents: 0,
            max_fine_cents: 0,
            grace_days: 0,
            replacement_cost_cents: 0,
        };
        assert_eq!(low.validate(), Ok(()));
        let high = LoanPolicy {
            loan_days: 365,
            max_renewals: 50,
            daily_fine_cents: MAX_POLICY_CENTS,
            max_fine_cents: MAX_POLICY_CENTS,
            grace_days: 365,
            replacement_cost_cents: MAX_POLICY_CENTS,
        };
        assert_eq!(high.validate(), Ok(()));
    }

    fn bad_fields(policy: LoanPolicy) -> Vec<&'static str> {
        policy
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|(field, _)| field)
            .collect()
    }

    #[test]
    fn validate_rejects_bad_loan_days() {
        for loan_days in [0, 366, u32::MAX] {
            let policy = LoanPolicy {
                loan_days,
                ..book()
            };
            assert_eq!(
                policy.validate(),
                Err(vec![("loan_days", "must be between 1 and 365")])
            );
        }
    }

    #[test]
    fn validate_rejects_bad_max_renewals() {
        for max_renewals in [51, u32::MAX] {
            let policy = LoanPolicy {
                max_renewals,
                ..book()
            };
            assert_eq!(bad_fields(policy), ["max_renewals"]);
        }
    }

    #[test]
    fn validate_rejects_bad_daily_fine() {
        for daily_fine_cents in [-1, MAX_POLICY_CENTS + 1, i64::MIN, i64::MAX] {
            let policy = LoanPolicy {
                daily_fine_cents,
                ..book()
            };
            assert_eq!(bad_fields(policy), ["daily_fine_cents"]);
        }
        let negative = LoanPolicy {
            daily_fine_cents: -1,
            ..book()
        };
        assert_eq!(
            negative.validate(),
            Err(vec![("daily_fine_cents", "must not be negative")])
        );
        let large = LoanPolicy {
            daily_fine_cents: MAX_POLICY_CENTS + 1,
            ..book()
        };
        assert_eq!(
            large.validate(),
            Err(vec![("daily_fine_cents", "must be at most 10000000 cents")])
        );
    }

    #[test]
    fn validate_rejects_bad_max_fine() {
        for max_fine_cents in [-1, MAX_POLICY_CENTS + 1, i64::MIN, i64::MAX] {
            let policy = LoanPolicy {
                max_fine_cents,
                ..book()
            };
            assert_eq!(bad_fields(policy), ["max_fine_cents"]);
        }
    }

    #[test]
    fn validate_rejects_bad_grace_days() {
        for grace_days in [366, u32::MAX] {
            let policy = LoanPolicy {
                grace_days,
                ..book()
            };
            assert_eq!(
                policy.validate(),
                Err(vec![("grace_days", "must be at most 365")])
            );
        }
    }

    #[test]
    fn validate_rejects_bad_replacement_cost() {
        for replacement_cost_cents in [-1, MAX_POLICY_CENTS + 1, i64::MIN, i64::MAX] {
            let policy = LoanPolicy {
                replacement_cost_cents,
                ..book()
            };
            assert_eq!(bad_fields(policy), ["replacement_cost_cents"]);
        }
    }

    #[test]
    fn validate_reports_every_bad_field_in_order() {
        let policy = LoanPolicy {
            loan_days: 0,
            max_renewals: 51,
            daily_fine_cents: -1,
            max_fine_cents: -1,
            grace_days: 366,
            replacement_cost_cents: -1,
        };
        assert_eq!(
            bad_fields(policy),
            [
                "loan_days",
                "max_renewals",
                "daily_fine_cents",
                "max_fine_cents",
                "grace_days",
                "replacement_cost_cents",
            ]
        );
    }

    // ---- local days: zones, DST and calendars ----

    fn in_zone(name: &str) -> BranchDays {
        BranchDays {
            zone: Zone::named(name).unwrap(),
            calendar: OpeningCalendar::always_open(),
        }
    }

    fn weekdays_closed_on(dates: &[Date]) -> OpeningCalendar {
        let open = vec![OpeningHours {
            opens: time!(09:00),
            closes: time!(17:00),
        }];
        let mut weekly: [Vec<OpeningHours>; 7] = Default::default();
        for day in weekly.iter_mut().take(5) {
            *day = open.clone();
        }
        OpeningCalendar::new(weekly, dates.iter().copied())
    }

    #[test]
    fn the_utc_helpers_are_the_one_due_date_rule() {
        let now = datetime!(2026-03-01 18:00 -05:00);
        let utc = BranchDays::utc_always_open();
        assert_eq!(due_date(&utc, 21, now, None).due_at, due_at(now, 21));
        let current = due_at(now, 21);
        assert_eq!(
            due_date(&utc, 21, now, Some(utc_date(current))).due_at,
            renewed_due_at(current, now, 21)
        );
    }

    #[test]
    fn due_day_is_a_local_day_a_day_before_spring_forward() {
        // 7 March 2026, 20:00 in New York (01:00 UTC on the 8th); DST starts on the 8th.
        let ny = in_zone("America/New_York");
        let due = due_date(&ny, 1, datetime!(2026-03-08 01:00 UTC), None);
        assert_eq!(due.due_date, date!(2026 - 03 - 08));
        assert_eq!(due.due_at, datetime!(2026-03-09 03:59:59 UTC));
        // The UTC rule would have given the 9th.
        assert_eq!(
            due_at(datetime!(2026-03-08 01:00 UTC), 1).date(),
            date!(2026 - 03 - 09)
        );
        // Sydney falls back on 5 April 2026: a loan on the 4th at 10:00 local, due the 5th.
        let sydney = in_zone("Australia/Sydney");
        let due = due_date(&sydney, 1, datetime!(2026-04-03 23:00 UTC), None);
        assert_eq!(due.due_date, date!(2026 - 04 - 05));
        assert_eq!(due.due_at, datetime!(2026-04-05 13:59:59 UTC));
    }

    #[test]
    fn days_late_never_skip_or_double_count_across_dst() {
        for (zone, due_day) in [
            ("America/New_York", date!(2026 - 03 - 07)),
            ("America/New_York", date!(2026 - 10 - 31)),
            ("Australia/Sydney", date!(2026 - 04 - 04)),
            ("Australia/Sydney", date!(2026 - 10 - 03)),
        ] {
            let branch = in_zone(zone);
            let due = branch.zone.end_of_day(due_day);
            for late in 0..5u32 {
                // Any moment of the local day `late` days after the due day.
                let day = due_day + Duration::days(i64::from(late));
                for at in [time!(00:00), time!(02:30), time!(12:00), time!(23:59:59)] {
                    let returned = branch.zone.instant_at(day, at, false);
                    if returned <= due && late > 0 {
                        continue;
                    }
                    let counted = lateness(&branch, due_day, returned, false);
                    assert_eq!(counted.days_late, late, "{zone} {day} {at}");
                }
            }
        }
    }

    #[test]
    fn a_due_day_on_a_closed_day_moves_to_the_next_open_day() {
        let branch = BranchDays {
            zone: Zone::utc(),
            calendar: weekdays_closed_on(&[date!(2026 - 12 - 25)]),
        };
        // Checked out Friday 4 December + 21 days = Friday 25 December (closed), then a weekend.
        let due = due_date(&branch, 21, datetime!(2026-12-04 10:00 UTC), None);
        assert_eq!(due.due_date, date!(2026 - 12 - 28));
        assert_eq!(due.due_at, datetime!(2026-12-28 23:59:59 UTC));
        // A renewal also lands on an open day.
        let renewed = due_date(
            &branch,
            5,
            datetime!(2026-12-10 10:00 UTC),
            Some(date!(2026 - 12 - 21)),
        );
        assert_eq!(renewed.due_date, date!(2026 - 12 - 28));
    }

    #[test]
    fn closed_days_are_skipped_unless_counted() {
        let branch = BranchDays {
            zone: Zone::utc(),
            calendar: weekdays_closed_on(&[date!(2026 - 12 - 25)]),
        };
        // Due Thursday 24 December, returned Tuesday 29th: Fri 25 (holiday), Sat, Sun skipped.
        let returned = datetime!(2026-12-29 10:00 UTC);
        let late = lateness(&branch, date!(2026 - 12 - 24), returned, false);
        assert_eq!(
            late,
            Lateness {
                days_late: 2,
                closed_days_skipped: 3
            }
        );
        let counted = lateness(&branch, date!(2026 - 12 - 24), returned, true);
        assert_eq!(
            counted,
            Lateness {
                days_late: 5,
                closed_days_skipped: 0
            }
        );
        let fine =
            overdue_fine_for(&book(), &branch, date!(2026 - 12 - 24), returned, false).unwrap();
        assert_eq!(
            (fine.days_late, fine.closed_days_skipped, fine.amount_cents),
            (2, 3, 25)
        );
    }

    #[test]
    fn pickup_windows_count_open_days_of_the_pickup_branch() {
        let utc = BranchDays::utc_always_open();
        let ready = datetime!(2026-12-21 15:30 UTC);
        assert_eq!(pickup_expires_at(&utc, ready, 7), ready + Duration::days(7));
        let branch = BranchDays {
            zone: Zone::utc(),
            calendar: weekdays_closed_on(&[date!(2026 - 12 - 25)]),
        };
        // Monday 21st + 3 open days: Tue 22, Wed 23, Thu 24.
        assert_eq!(
            pickup_expires_at(&branch, ready, 3),
            datetime!(2026-12-24 15:30 UTC)
        );
        // + 4 open days skips the holiday and the weekend: Monday 28th.
        assert_eq!(
            pickup_expires_at(&branch, ready, 4),
            datetime!(2026-12-28 15:30 UTC)
        );
        // Across a DST change the local time of day is kept.
        let ny = in_zone("America/New_York");
        let ready = datetime!(2026-03-06 15:00 UTC); // 10:00 EST
        assert_eq!(
            pickup_expires_at(&ny, ready, 7),
            datetime!(2026-03-13 14:00 UTC)
        ); // 10:00 EDT
    }
}
