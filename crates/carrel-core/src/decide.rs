//! The circulation decisions: checkout, renewal, return, hold placement,
//! payment and waiver, each a pure function of the facts the store loads in
//! its transaction.
//!
//! The store reads the facts (with the row locks that settle races between
//! desks), calls the `decide_*` function, and applies the plan it returns, or
//! refuses with its [`Refusal`]. Every rule of the desk is here, once, and
//! unit-tested without a database; the store keeps only the compare-and-set
//! updates and constraints that make a plan safe against a concurrent one.

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::circulation::{self, BranchDays, Due, FineCalculation, LoanPolicy, is_blocked};
use crate::statuses::FineStatus;

/// A circulation rule refused the request. Each maps to one error code of the
/// contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not on the shelf, or on the hold shelf for someone else.
    #[error("the copy is not available")]
    CopyUnavailable,
    /// The patron has the most open loans their category allows.
    #[error("the patron has reached the loan limit")]
    LoanLimitReached,
    /// The rule in force allows no more open loans of this item type.
    #[error("the patron has reached the loan limit for this item type")]
    LoanTypeLimitReached,
    /// The patron owes at least the block threshold.
    #[error("the patron owes at least the block threshold")]
    PatronBlocked,
    /// The account is deactivated.
    #[error("the patron's account is deactivated")]
    PatronInactive,
    /// The loan has been renewed as often as its policy allows.
    #[error("the loan has reached its renewal limit")]
    RenewalLimitReached,
    /// Another patron waits for the item.
    #[error("other patrons are waiting for this item")]
    HoldPending,
    /// The patron already holds the item.
    #[error("the patron already has an open hold on this item")]
    HoldExists,
    /// The patron already has the most waiting and ready holds allowed.
    #[error("the patron has reached the hold limit")]
    HoldLimitReached,
    /// The rule in force does not allow holds for this patron and item.
    #[error("holds are not allowed for this patron and item type")]
    HoldsNotAllowed,
    /// A hold on an item the patron has out.
    #[error("the patron already has this item on loan")]
    AlreadyBorrowed,
    /// Return or renewal of a copy or loan that is not out.
    #[error("the copy is not on loan")]
    NotOnLoan,
    /// Cancelling a hold that is already fulfilled, cancelled or expired.
    #[error("the hold is no longer open")]
    HoldClosed,
    /// Changing the pickup branch of a hold that is no longer waiting (its
    /// copy is on a hold shelf already, or the hold is closed).
    #[error("the hold is no longer waiting: its pickup branch cannot change")]
    HoldNotWaiting,
    /// Paying or waiving a fine that is already settled.
    #[error("the fine is already settled")]
    FineSettled,
    /// More than the balance of the fine (or nothing at all).
    #[error("the amount exceeds the balance")]
    ExceedsBalance,
    /// Staff paying or waiving a fine of their own.
    #[error("staff may not pay or waive their own fines")]
    OwnFine,
    /// Receiving a copy that is not in transit to that branch.
    #[error("the copy is not in transit to this branch")]
    NotInTransit,
    /// The idempotency key was used with another request.
    #[error("the idempotency key was used with another request")]
    IdempotencyKeyReused,
}

// ---- checkout ----

/// Where the copy to check out is, as far as this patron is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyAvailability {
    /// On the shelf.
    OnShelf,
    /// On the hold shelf for this patron's ready hold.
    HeldForPatron,
    /// On loan, on the hold shelf for someone else, lost, damaged, withdrawn…
    Unavailable,
}

/// What a checkout decides on, as loaded in the checkout's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutFacts {
    /// The patron's account is active.
    pub patron_active: bool,
    /// What the patron owes in open fines.
    pub balance_cents: i64,
    /// The patron's open loans.
    pub open_loans: u64,
    /// The patron's open loans of the copy's item type.
    pub open_loans_of_type: u64,
    /// The copy's state for this patron.
    pub copy: CopyAvailability,
    /// The patron waits in the item's queue (a `waiting` hold).
    pub queues_for_item: bool,
}

/// The limits in force for one checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckoutLimits {
    /// Open fines of at least this much block (0 disables the block).
    pub block_threshold_cents: i64,
    /// The patron category's loan limit, else the global one.
    pub max_active_loans: u32,
    /// The rule's per-type limit, if any.
    pub max_loans_of_type: Option<u32>,
}

/// What a checkout does to the copy and the patron's holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutPlan {
    /// Take the copy from the shelf. `fulfil_waiting_hold`: the patron was
    /// queueing for the item, so their waiting hold is fulfilled with it.
    FromShelf {
        /// Fulfil the patron's waiting hold on the item.
        fulfil_waiting_hold: bool,
    },
    /// Take the copy from the hold shelf, fulfilling the patron's ready hold
    /// on it.
    FromHoldShelf,
}

/// Every refusal a checkout on `facts` under `limits` meets, in the order
/// real checkout checks them (the rule simulation lists them all; an empty
/// list means the checkout goes ahead).
pub fn checkout_refusals(facts: &CheckoutFacts, limits: &CheckoutLimits) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    if !facts.patron_active {
        refusals.push(Refusal::PatronInactive);
    }
    if is_blocked(facts.balance_cents, limits.block_threshold_cents) {
        refusals.push(Refusal::PatronBlocked);
    }
    if facts.open_loans >= u64::from(limits.max_active_loans) {
        refusals.push(Refusal::LoanLimitReached);
    }
    if limits
        .max_loans_of_type
        .is_some_and(|max| facts.open_loans_of_type >= u64::from(max))
    {
        refusals.push(Refusal::LoanTypeLimitReached);
    }
    if facts.copy == CopyAvailability::Unavailable {
        refusals.push(Refusal::CopyUnavailable);
    }
    refusals
}

/// **The** checkout decision: the first of [`checkout_refusals`], else where
/// the copy comes from and which hold the loan fulfils.
pub fn decide_checkout(
    facts: &CheckoutFacts,
    limits: &CheckoutLimits,
) -> Result<CheckoutPlan, Refusal> {
    if let Some(&refusal) = checkout_refusals(facts, limits).first() {
        return Err(refusal);
    }
    match facts.copy {
        CopyAvailability::OnShelf => Ok(CheckoutPlan::FromShelf {
            fulfil_waiting_hold: facts.queues_for_item,
        }),
        CopyAvailability::HeldForPatron => Ok(CheckoutPlan::FromHoldShelf),
        CopyAvailability::Unavailable => Err(Refusal::CopyUnavailable),
    }
}

// ---- renewal ----

/// What a renewal decides on: the locked loan, the item's queue, the patron's
/// balance and the lending branch's days.
#[derive(Debug, Clone)]
pub struct RenewalFacts {
    /// The loan is out (active or overdue) and still names its patron.
    pub loan_open: bool,
    /// Renewals so far.
    pub renewals: u32,
    /// The policy recorded on the loan at checkout.
    pub policy: LoanPolicy,
    /// The loan's current local due day.
    pub due_day: Date,
    /// Waiting holds on the item.
    pub holds_waiting: u64,
    /// What the patron owes in open fines.
    pub balance_cents: i64,
    /// Open fines of at least this much block (0 disables the block).
    pub block_threshold_cents: i64,
    /// The moment of the renewal.
    pub now: OffsetDateTime,
    /// The lending branch's local days (its zone and calendar).
    pub lending: BranchDays,
    /// Whether days the branch was closed count as late.
    pub count_closed_days: bool,
}

/// What a renewal writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPlan {
    /// The new due day and instant.
    pub due: Due,
    /// Renewals after this one.
    pub renewals: u32,
    /// The lateness so far of an overdue loan, charged now (the new due day
    /// counts from today, so it would otherwise be forgiven).
    pub fine: Option<FineCalculation>,
}

/// The renewal decision. Refused, in this order: the loan is not out
/// (`NotOnLoan`), its policy's renewals are used up, another patron waits
/// for the item, the patron is blocked.
pub fn decide_renewal(facts: &RenewalFacts) -> Result<RenewalPlan, Refusal> {
    if !facts.loan_open {
        return Err(Refusal::NotOnLoan);
    }
    if facts.renewals >= facts.policy.max_renewals {
        return Err(Refusal::RenewalLimitReached);
    }
    if facts.holds_waiting > 0 {
        return Err(Refusal::HoldPending);
    }
    if is_blocked(facts.balance_cents, facts.block_threshold_cents) {
        return Err(Refusal::PatronBlocked);
    }
    // The one due-date rule, in the lending branch's local days.
    let due = circulation::due_date(
        &facts.lending,
        facts.policy.loan_days,
        facts.now,
        Some(facts.due_day),
    );
    let fine = circulation::overdue_fine_for(
        &facts.policy,
        &facts.lending,
        facts.due_day,
        facts.now,
        facts.count_closed_days,
    );
    Ok(RenewalPlan {
        due,
        renewals: facts.renewals.saturating_add(1),
        fine,
    })
}

// ---- return ----

/// What a return decides on, read once its loan is closed.
#[derive(Debug, Clone)]
pub struct ReturnFacts {
    /// The loan still names its patron (an anonymised loan is fined nobody).
    pub patron_known: bool,
    /// The policy recorded on the loan at checkout.
    pub policy: LoanPolicy,
    /// The loan's local due day.
    pub due_day: Date,
    /// The moment of the return.
    pub now: OffsetDateTime,
    /// The lending branch's local days, with its calendar in force now.
    pub lending: BranchDays,
    /// Whether days the branch was closed count as late.
    pub count_closed_days: bool,
    /// The copy was on loan and is back on the shelf at the desk.
    pub copy_shelved: bool,
    /// Patrons wait for the item.
    pub holds_waiting: bool,
    /// The copy's home branch.
    pub home_branch: Uuid,
    /// The desk's branch; `None`: the copy's home.
    pub desk: Option<Uuid>,
}

/// Where a returned copy goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnRoute {
    /// Nobody queues: it stays on the shelf here, its home.
    Stays,
    /// Nobody queues and here is not its home: in transit home.
    GoesHome(Uuid),
    /// It serves the queue: when `fill_holds`, the waiting holds are filled
    /// first come first served (each copy placed by [`decide_hold_fill`]);
    /// then a copy left on the shelf away from home goes home.
    ServesQueue {
        /// Fill the waiting holds.
        fill_holds: bool,
    },
}

/// What a return does besides closing the loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnPlan {
    /// The overdue fine to charge (from the loan's recorded policy).
    pub fine: Option<FineCalculation>,
    /// The branch the copy was returned at.
    pub here: Uuid,
    /// Where the copy goes.
    pub route: ReturnRoute,
}

/// The return decision: the overdue fine (late days in the lending branch's
/// local days, closed days skipped unless counted) and the copy's route.
pub fn decide_return(facts: &ReturnFacts) -> ReturnPlan {
    let fine = if facts.patron_known {
        circulation::overdue_fine_for(
            &facts.policy,
            &facts.lending,
            facts.due_day,
            facts.now,
            facts.count_closed_days,
        )
    } else {
        None
    };
    let here = facts.desk.unwrap_or(facts.home_branch);
    let route = if facts.copy_shelved && !facts.holds_waiting {
        if here == facts.home_branch {
            ReturnRoute::Stays
        } else {
            ReturnRoute::GoesHome(facts.home_branch)
        }
    } else {
        ReturnRoute::ServesQueue {
            fill_holds: facts.holds_waiting,
        }
    };
    ReturnPlan { fine, here, route }
}

/// What filling one waiting hold with one available copy decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldFillFacts {
    /// The copy offered.
    pub copy: Uuid,
    /// Its home branch (where an available copy is, unless it is `prefer`).
    pub copy_home: Uuid,
    /// The copy just returned or released, if any …
    pub prefer: Option<Uuid>,
    /// … and where it physically is (`None`: its home).
    pub prefer_at: Option<Uuid>,
    /// The hold's pickup branch.
    pub pickup: Uuid,
}

/// Where a copy given to a waiting hold goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldFill {
    /// It is at the pickup branch: onto its hold shelf; the hold is ready.
    HoldShelf,
    /// It is elsewhere: in transit from `from` to the pickup branch; the hold
    /// keeps waiting with the copy assigned (ready on arrival).
    Transit {
        /// Where the copy is.
        from: Uuid,
        /// The pickup branch.
        to: Uuid,
    },
}

/// Where a copy given to a waiting hold goes.
pub fn decide_hold_fill(facts: &HoldFillFacts) -> HoldFill {
    let here = if Some(facts.copy) == facts.prefer {
        facts.prefer_at.unwrap_or(facts.copy_home)
    } else {
        facts.copy_home
    };
    if here == facts.pickup {
        HoldFill::HoldShelf
    } else {
        HoldFill::Transit {
            from: here,
            to: facts.pickup,
        }
    }
}

// ---- hold placement ----

/// What placing a hold decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldFacts {
    /// The patron's account is active.
    pub patron_active: bool,
    /// What the patron owes in open fines.
    pub balance_cents: i64,
    /// Open fines of at least this much block (0 disables the block).
    pub block_threshold_cents: i64,
    /// The rule in force (at the pickup branch) allows holds.
    pub holds_allowed: bool,
    /// The patron's waiting and ready holds.
    pub open_holds: u64,
    /// The patron category's hold limit, else the global one.
    pub max_holds: u64,
    /// The patron has the item out.
    pub borrowed: bool,
    /// The patron already has an open hold on the item.
    pub already_holds: bool,
}

/// The hold placement decision. Refused, in this order: deactivated account,
/// blocked patron, holds not allowed by the rule, hold limit reached (at the
/// limit, not above it), item already borrowed, item already held. (The
/// database's unique index settles the last one between concurrent requests.)
pub fn decide_hold_placement(facts: &HoldFacts) -> Result<(), Refusal> {
    if !facts.patron_active {
        return Err(Refusal::PatronInactive);
    }
    if is_blocked(facts.balance_cents, facts.block_threshold_cents) {
        return Err(Refusal::PatronBlocked);
    }
    if !facts.holds_allowed {
        return Err(Refusal::HoldsNotAllowed);
    }
    if facts.open_holds >= facts.max_holds {
        return Err(Refusal::HoldLimitReached);
    }
    if facts.borrowed {
        return Err(Refusal::AlreadyBorrowed);
    }
    if facts.already_holds {
        return Err(Refusal::HoldExists);
    }
    Ok(())
}

// ---- payments and waivers ----

/// A fine, as far as paying or waiving it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FineFacts {
    /// Whose fine it is.
    pub owner: Uuid,
    /// Open, paid or waived.
    pub status: FineStatus,
    /// What is still owed, in cents.
    pub balance_cents: i64,
}

/// What a payment decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentFacts {
    /// The fine paid towards.
    pub fine: FineFacts,
    /// Who pays (records the payment).
    pub payer: Uuid,
    /// The payer is staff (or a terminal), paying towards someone's fine.
    pub staff: bool,
    /// The amount, in cents.
    pub amount_cents: i64,
}

/// What a payment records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentPlan {
    /// The amount paid, in cents.
    pub amount_cents: i64,
    /// What the fine still owes afterwards; 0 settles it.
    pub balance_after_cents: i64,
}

/// The payment decision. Refused, in this order: staff paying their own fine
/// (`OwnFine`), a settled fine (`FineSettled`; its balance is 0, so the store
/// reports it as over the balance), an amount that is not positive or over
/// the balance (`ExceedsBalance`). Paying exactly the balance settles it.
/// Whether the payer may see the fine at all is the caller's check.
pub fn decide_payment(facts: &PaymentFacts) -> Result<PaymentPlan, Refusal> {
    if facts.staff && facts.fine.owner == facts.payer {
        return Err(Refusal::OwnFine);
    }
    let amount = settle(&facts.fine, facts.amount_cents)?;
    Ok(PaymentPlan {
        amount_cents: amount,
        balance_after_cents: facts.fine.balance_cents - amount,
    })
}

/// What a waiver decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaiverFacts {
    /// The fine waived.
    pub fine: FineFacts,
    /// The member of staff waiving it.
    pub actor: Uuid,
    /// The amount in cents; `None` waives the whole balance.
    pub amount_cents: Option<i64>,
}

/// What a waiver records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaiverPlan {
    /// The amount waived, in cents.
    pub amount_cents: i64,
    /// What the fine still owes afterwards; 0 settles it.
    pub balance_after_cents: i64,
}

/// The waiver decision. Refused, in this order: the actor's own fine, a
/// settled fine, an amount that is not positive or over the balance.
pub fn decide_waiver(facts: &WaiverFacts) -> Result<WaiverPlan, Refusal> {
    if facts.fine.owner == facts.actor {
        return Err(Refusal::OwnFine);
    }
    let amount = settle(
        &facts.fine,
        facts.amount_cents.unwrap_or(facts.fine.balance_cents),
    )?;
    Ok(WaiverPlan {
        amount_cents: amount,
        balance_after_cents: facts.fine.balance_cents - amount,
    })
}

/// `amount` towards an open `fine`: positive and at most its balance.
fn settle(fine: &FineFacts, amount: i64) -> Result<i64, Refusal> {
    if fine.status != FineStatus::Open {
        return Err(Refusal::FineSettled);
    }
    if amount <= 0 || amount > fine.balance_cents {
        return Err(Refusal::ExceedsBalance);
    }
    Ok(amount)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::calendar::{OpeningCalendar, OpeningHours, Zone};
    use time::macros::{date, datetime, time};

    const HOME: Uuid = Uuid::from_u128(1);
    const DESK: Uuid = Uuid::from_u128(2);
    const PICKUP: Uuid = Uuid::from_u128(3);
    const COPY: Uuid = Uuid::from_u128(10);
    const OTHER_COPY: Uuid = Uuid::from_u128(11);
    const PATRON: Uuid = Uuid::from_u128(20);
    const STAFF: Uuid = Uuid::from_u128(21);

    fn book() -> LoanPolicy {
        LoanPolicy::default_for("book").unwrap()
    }

    // ---- checkout ----

    fn facts() -> CheckoutFacts {
        CheckoutFacts {
            patron_active: true,
            balance_cents: 0,
            open_loans: 0,
            open_loans_of_type: 0,
            copy: CopyAvailability::OnShelf,
            queues_for_item: false,
        }
    }

    fn limits() -> CheckoutLimits {
        CheckoutLimits {
            block_threshold_cents: 1_000,
            max_active_loans: 10,
            max_loans_of_type: None,
        }
    }

    #[test]
    fn a_clean_checkout_has_no_refusal() {
        assert_eq!(checkout_refusals(&facts(), &limits()), []);
        let held = CheckoutFacts {
            copy: CopyAvailability::HeldForPatron,
            ..facts()
        };
        assert_eq!(checkout_refusals(&held, &limits()), []);
    }

    #[test]
    fn every_refusal_in_checkout_order() {
        let all = CheckoutFacts {
            patron_active: false,
            balance_cents: 1_000,
            open_loans: 10,
            open_loans_of_type: 2,
            copy: CopyAvailability::Unavailable,
            queues_for_item: true,
        };
        let l = CheckoutLimits {
            max_loans_of_type: Some(2),
            ..limits()
        };
        assert_eq!(
            checkout_refusals(&all, &l),
            [
                Refusal::PatronInactive,
                Refusal::PatronBlocked,
                Refusal::LoanLimitReached,
                Refusal::LoanTypeLimitReached,
                Refusal::CopyUnavailable,
            ]
        );
        // Real checkout refuses with the first.
        assert_eq!(decide_checkout(&all, &l), Err(Refusal::PatronInactive));
    }

    #[test]
    fn each_checkout_refusal_alone() {
        let l = CheckoutLimits {
            max_loans_of_type: Some(2),
            ..limits()
        };
        let cases = [
            (
                CheckoutFacts {
                    patron_active: false,
                    ..facts()
                },
                Refusal::PatronInactive,
            ),
            (
                CheckoutFacts {
                    balance_cents: 1_000,
                    ..facts()
                },
                Refusal::PatronBlocked,
            ),
            (
                CheckoutFacts {
                    open_loans: 10,
                    ..facts()
                },
                Refusal::LoanLimitReached,
            ),
            (
                CheckoutFacts {
                    open_loans_of_type: 2,
                    ..facts()
                },
                Refusal::LoanTypeLimitReached,
            ),
            (
                CheckoutFacts {
                    copy: CopyAvailability::Unavailable,
                    ..facts()
                },
                Refusal::CopyUnavailable,
            ),
        ];
        for (f, refusal) in cases {
            assert_eq!(decide_checkout(&f, &l), Err(refusal), "{f:?}");
        }
    }

    #[test]
    fn the_block_starts_at_the_threshold_and_zero_disables_it() {
        let below = CheckoutFacts {
            balance_cents: 999,
            ..facts()
        };
        assert!(decide_checkout(&below, &limits()).is_ok());
        let at = CheckoutFacts {
            balance_cents: 1_000,
            ..facts()
        };
        assert_eq!(decide_checkout(&at, &limits()), Err(Refusal::PatronBlocked));
        let off = CheckoutLimits {
            block_threshold_cents: 0,
            ..limits()
        };
        assert!(decide_checkout(&at, &off).is_ok());
    }

    #[test]
    fn limits_refuse_at_the_limit_not_below() {
        let l = CheckoutLimits {
            max_active_loans: 3,
            max_loans_of_type: Some(2),
            ..limits()
        };
        let below = CheckoutFacts {
            open_loans: 2,
            open_loans_of_type: 1,
            ..facts()
        };
        assert_eq!(checkout_refusals(&below, &l), []);
        let at_type = CheckoutFacts {
            open_loans_of_type: 2,
            ..below
        };
        assert_eq!(
            checkout_refusals(&at_type, &l),
            [Refusal::LoanTypeLimitReached]
        );
        let at_total = CheckoutFacts {
            open_loans: 3,
            ..below
        };
        assert_eq!(
            checkout_refusals(&at_total, &l),
            [Refusal::LoanLimitReached]
        );
        // A zero limit refuses everyone.
        let none_of_type = CheckoutLimits {
            max_loans_of_type: Some(0),
            ..l
        };
        assert_eq!(
            checkout_refusals(&facts(), &none_of_type),
            [Refusal::LoanTypeLimitReached]
        );
        let no_loans = CheckoutLimits {
            max_active_loans: 0,
            ..limits()
        };
        assert_eq!(
            decide_checkout(&facts(), &no_loans),
            Err(Refusal::LoanLimitReached)
        );
    }

    #[test]
    fn checkout_plans_where_the_copy_comes_from() {
        assert_eq!(
            decide_checkout(&facts(), &limits()),
            Ok(CheckoutPlan::FromShelf {
                fulfil_waiting_hold: false
            })
        );
        let queueing = CheckoutFacts {
            queues_for_item: true,
            ..facts()
        };
        assert_eq!(
            decide_checkout(&queueing, &limits()),
            Ok(CheckoutPlan::FromShelf {
                fulfil_waiting_hold: true
            })
        );
        let held = CheckoutFacts {
            copy: CopyAvailability::HeldForPatron,
            queues_for_item: true,
            ..facts()
        };
        assert_eq!(
            decide_checkout(&held, &limits()),
            Ok(CheckoutPlan::FromHoldShelf)
        );
    }

    // ---- renewal ----

    fn renewal() -> RenewalFacts {
        RenewalFacts {
            loan_open: true,
            renewals: 0,
            policy: book(),
            due_day: date!(2026 - 03 - 22),
            holds_waiting: 0,
            balance_cents: 0,
            block_threshold_cents: 1_000,
            now: datetime!(2026-03-20 10:00 UTC),
            lending: BranchDays::utc_always_open(),
            count_closed_days: false,
        }
    }

    #[test]
    fn an_early_renewal_extends_from_the_due_day_without_a_fine() {
        let plan = decide_renewal(&renewal()).unwrap();
        assert_eq!(plan.due.due_date, date!(2026 - 04 - 12));
        assert_eq!(plan.due.due_at, datetime!(2026-04-12 23:59:59 UTC));
        assert_eq!(plan.renewals, 1);
        assert_eq!(plan.fine, None);
    }

    #[test]
    fn each_renewal_refusal_in_order() {
        let closed = RenewalFacts {
            loan_open: false,
            renewals: 3,
            holds_waiting: 1,
            balance_cents: 5_000,
            ..renewal()
        };
        assert_eq!(decide_renewal(&closed), Err(Refusal::NotOnLoan));
        let used_up = RenewalFacts {
            loan_open: true,
            ..closed.clone()
        };
        assert_eq!(decide_renewal(&used_up), Err(Refusal::RenewalLimitReached));
        let queued = RenewalFacts {
            renewals: 2,
            ..used_up.clone()
        };
        assert_eq!(decide_renewal(&queued), Err(Refusal::HoldPending));
        let blocked = RenewalFacts {
            holds_waiting: 0,
            ..queued
        };
        assert_eq!(decide_renewal(&blocked), Err(Refusal::PatronBlocked));
    }

    #[test]
    fn the_renewal_limit_is_reached_at_max_renewals() {
        let last = RenewalFacts {
            renewals: 2,
            ..renewal()
        };
        assert_eq!(decide_renewal(&last).unwrap().renewals, 3);
        let at = RenewalFacts {
            renewals: 3,
            ..renewal()
        };
        assert_eq!(decide_renewal(&at), Err(Refusal::RenewalLimitReached));
        let never = RenewalFacts {
            policy: LoanPolicy {
                max_renewals: 0,
                ..book()
            },
            ..renewal()
        };
        assert_eq!(decide_renewal(&never), Err(Refusal::RenewalLimitReached));
    }

    #[test]
    fn renewal_block_at_the_threshold_only() {
        let below = RenewalFacts {
            balance_cents: 999,
            ..renewal()
        };
        assert!(decide_renewal(&below).is_ok());
        let at = RenewalFacts {
            balance_cents: 1_000,
            ..renewal()
        };
        assert_eq!(decide_renewal(&at), Err(Refusal::PatronBlocked));
        let disabled = RenewalFacts {
            block_threshold_cents: 0,
            ..at
        };
        assert!(decide_renewal(&disabled).is_ok());
    }

    #[test]
    fn an_overdue_renewal_counts_from_today_and_charges_the_lateness() {
        // Due the 22nd, renewed on the 25th: 3 days late, 1 grace day → 2 × 25¢.
        let late = RenewalFacts {
            now: datetime!(2026-03-25 09:00 UTC),
            ..renewal()
        };
        let plan = decide_renewal(&late).unwrap();
        assert_eq!(plan.due.due_date, date!(2026 - 04 - 15));
        let fine = plan.fine.unwrap();
        assert_eq!((fine.days_late, fine.amount_cents), (3, 50));
        // Inside grace: one day late owes nothing.
        let grace = RenewalFacts {
            now: datetime!(2026-03-23 09:00 UTC),
            ..renewal()
        };
        assert_eq!(decide_renewal(&grace).unwrap().fine, None);
    }

    // ---- return ----

    fn returned() -> ReturnFacts {
        ReturnFacts {
            patron_known: true,
            policy: book(),
            due_day: date!(2026 - 03 - 22),
            now: datetime!(2026-03-22 18:00 UTC),
            lending: BranchDays::utc_always_open(),
            count_closed_days: false,
            copy_shelved: true,
            holds_waiting: false,
            home_branch: HOME,
            desk: None,
        }
    }

    #[test]
    fn an_on_time_return_at_home_stays_without_a_fine() {
        let plan = decide_return(&returned());
        assert_eq!(
            plan,
            ReturnPlan {
                fine: None,
                here: HOME,
                route: ReturnRoute::Stays
            }
        );
        let at_home_desk = ReturnFacts {
            desk: Some(HOME),
            ..returned()
        };
        assert_eq!(decide_return(&at_home_desk).route, ReturnRoute::Stays);
    }

    #[test]
    fn a_return_away_from_home_goes_home() {
        let away = ReturnFacts {
            desk: Some(DESK),
            ..returned()
        };
        let plan = decide_return(&away);
        assert_eq!(plan.here, DESK);
        assert_eq!(plan.route, ReturnRoute::GoesHome(HOME));
    }

    #[test]
    fn a_queue_is_served_first() {
        let queued = ReturnFacts {
            holds_waiting: true,
            desk: Some(DESK),
            ..returned()
        };
        assert_eq!(
            decide_return(&queued).route,
            ReturnRoute::ServesQueue { fill_holds: true }
        );
        // A copy that was not on loan is settled by its row, without a queue.
        let odd = ReturnFacts {
            copy_shelved: false,
            ..returned()
        };
        assert_eq!(
            decide_return(&odd).route,
            ReturnRoute::ServesQueue { fill_holds: false }
        );
    }

    #[test]
    fn return_fines_grace_cap_and_anonymised_loans() {
        // One day late is inside the one grace day.
        let one = ReturnFacts {
            now: datetime!(2026-03-23 10:00 UTC),
            ..returned()
        };
        assert_eq!(decide_return(&one).fine, None);
        // Two days late: one chargeable day.
        let two = ReturnFacts {
            now: datetime!(2026-03-24 10:00 UTC),
            ..returned()
        };
        let fine = decide_return(&two).fine.unwrap();
        assert_eq!(
            (fine.days_late, fine.amount_cents, fine.capped),
            (2, 25, false)
        );
        // 41 days late: 40 × 25¢ is exactly the 10.00 cap, not capped; 42 is capped.
        let at_cap = ReturnFacts {
            now: datetime!(2026-05-02 10:00 UTC),
            ..returned()
        };
        let fine = decide_return(&at_cap).fine.unwrap();
        assert_eq!(
            (fine.days_late, fine.amount_cents, fine.capped),
            (41, 1_000, false)
        );
        let over = ReturnFacts {
            now: datetime!(2026-05-03 10:00 UTC),
            ..returned()
        };
        let fine = decide_return(&over).fine.unwrap();
        assert_eq!((fine.amount_cents, fine.capped), (1_000, true));
        // Nobody to fine.
        let anonymised = ReturnFacts {
            patron_known: false,
            ..over
        };
        assert_eq!(decide_return(&anonymised).fine, None);
    }

    #[test]
    fn return_fines_skip_the_lending_branch_closed_days() {
        let open = vec![OpeningHours {
            opens: time!(09:00),
            closes: time!(17:00),
        }];
        let mut weekly: [Vec<OpeningHours>; 7] = Default::default();
        for day in weekly.iter_mut().take(5) {
            *day = open.clone();
        }
        let weekdays = BranchDays {
            zone: Zone::utc(),
            calendar: OpeningCalendar::new(weekly, []),
        };
        // Due Friday 20 March, back Tuesday 24th: Sat and Sun skipped, 2 days late.
        let facts = ReturnFacts {
            due_day: date!(2026 - 03 - 20),
            now: datetime!(2026-03-24 10:00 UTC),
            lending: weekdays,
            ..returned()
        };
        let fine = decide_return(&facts).fine.unwrap();
        assert_eq!((fine.days_late, fine.closed_days_skipped), (2, 2));
        let counted = ReturnFacts {
            count_closed_days: true,
            ..facts
        };
        assert_eq!(decide_return(&counted).fine.unwrap().days_late, 4);
    }

    #[test]
    fn a_hold_is_filled_on_the_hold_shelf_or_by_transit() {
        // A copy at its home, which is the pickup branch.
        let at_pickup = HoldFillFacts {
            copy: COPY,
            copy_home: PICKUP,
            prefer: None,
            prefer_at: None,
            pickup: PICKUP,
        };
        assert_eq!(decide_hold_fill(&at_pickup), HoldFill::HoldShelf);
        // Another branch's copy travels.
        let elsewhere = HoldFillFacts {
            copy_home: HOME,
            ..at_pickup
        };
        assert_eq!(
            decide_hold_fill(&elsewhere),
            HoldFill::Transit {
                from: HOME,
                to: PICKUP
            }
        );
        // The copy just returned is where it was returned, not at its home.
        let returned_at_pickup = HoldFillFacts {
            copy_home: HOME,
            prefer: Some(COPY),
            prefer_at: Some(PICKUP),
            ..at_pickup
        };
        assert_eq!(decide_hold_fill(&returned_at_pickup), HoldFill::HoldShelf);
        let returned_home = HoldFillFacts {
            prefer_at: None,
            ..returned_at_pickup
        };
        assert_eq!(
            decide_hold_fill(&returned_home),
            HoldFill::Transit {
                from: HOME,
                to: PICKUP
            }
        );
        // Preferring another copy says nothing about this one's place.
        let other = HoldFillFacts {
            prefer: Some(OTHER_COPY),
            ..returned_at_pickup
        };
        assert_eq!(
            decide_hold_fill(&other),
            HoldFill::Transit {
                from: HOME,
                to: PICKUP
            }
        );
    }

    // ---- hold placement ----

    fn hold() -> HoldFacts {
        HoldFacts {
            patron_active: true,
            balance_cents: 0,
            block_threshold_cents: 1_000,
            holds_allowed: true,
            open_holds: 0,
            max_holds: 20,
            borrowed: false,
            already_holds: false,
        }
    }

    #[test]
    fn a_clean_hold_is_placed() {
        assert_eq!(decide_hold_placement(&hold()), Ok(()));
    }

    #[test]
    fn each_hold_refusal_in_order() {
        let mut facts = HoldFacts {
            patron_active: false,
            balance_cents: 1_000,
            holds_allowed: false,
            open_holds: 20,
            borrowed: true,
            already_holds: true,
            ..hold()
        };
        assert_eq!(decide_hold_placement(&facts), Err(Refusal::PatronInactive));
        facts.patron_active = true;
        assert_eq!(decide_hold_placement(&facts), Err(Refusal::PatronBlocked));
        facts.balance_cents = 999;
        assert_eq!(decide_hold_placement(&facts), Err(Refusal::HoldsNotAllowed));
        facts.holds_allowed = true;
        assert_eq!(
            decide_hold_placement(&facts),
            Err(Refusal::HoldLimitReached)
        );
        facts.open_holds = 19;
        assert_eq!(decide_hold_placement(&facts), Err(Refusal::AlreadyBorrowed));
        facts.borrowed = false;
        assert_eq!(decide_hold_placement(&facts), Err(Refusal::HoldExists));
        facts.already_holds = false;
        assert_eq!(decide_hold_placement(&facts), Ok(()));
    }

    #[test]
    fn the_hold_limit_and_block_boundaries() {
        let zero_limit = HoldFacts {
            max_holds: 0,
            ..hold()
        };
        assert_eq!(
            decide_hold_placement(&zero_limit),
            Err(Refusal::HoldLimitReached)
        );
        let no_block = HoldFacts {
            balance_cents: 1_000_000,
            block_threshold_cents: 0,
            ..hold()
        };
        assert_eq!(decide_hold_placement(&no_block), Ok(()));
    }

    // ---- payments and waivers ----

    fn fine() -> FineFacts {
        FineFacts {
            owner: PATRON,
            status: FineStatus::Open,
            balance_cents: 500,
        }
    }

    fn payment(amount_cents: i64) -> PaymentFacts {
        PaymentFacts {
            fine: fine(),
            payer: STAFF,
            staff: true,
            amount_cents,
        }
    }

    #[test]
    fn payments_up_to_the_balance() {
        assert_eq!(
            decide_payment(&payment(200)),
            Ok(PaymentPlan {
                amount_cents: 200,
                balance_after_cents: 300
            })
        );
        // Exactly the balance settles the fine.
        assert_eq!(
            decide_payment(&payment(500)).unwrap().balance_after_cents,
            0
        );
        assert_eq!(decide_payment(&payment(501)), Err(Refusal::ExceedsBalance));
        assert_eq!(decide_payment(&payment(0)), Err(Refusal::ExceedsBalance));
        assert_eq!(decide_payment(&payment(-1)), Err(Refusal::ExceedsBalance));
    }

    #[test]
    fn a_patron_pays_their_own_fine_but_staff_never_do() {
        let own = PaymentFacts {
            payer: PATRON,
            staff: false,
            ..payment(100)
        };
        assert!(decide_payment(&own).is_ok());
        let staff_own = PaymentFacts { staff: true, ..own };
        assert_eq!(decide_payment(&staff_own), Err(Refusal::OwnFine));
    }

    #[test]
    fn a_settled_fine_takes_no_payment() {
        for status in [FineStatus::Paid, FineStatus::Waived] {
            let settled = PaymentFacts {
                fine: FineFacts {
                    status,
                    balance_cents: 0,
                    ..fine()
                },
                ..payment(1)
            };
            assert_eq!(decide_payment(&settled), Err(Refusal::FineSettled));
        }
        // Own fine is refused before settled.
        let own_settled = PaymentFacts {
            fine: FineFacts {
                owner: STAFF,
                status: FineStatus::Paid,
                ..fine()
            },
            ..payment(1)
        };
        assert_eq!(decide_payment(&own_settled), Err(Refusal::OwnFine));
    }

    fn waiver(amount_cents: Option<i64>) -> WaiverFacts {
        WaiverFacts {
            fine: fine(),
            actor: STAFF,
            amount_cents,
        }
    }

    #[test]
    fn waivers_of_part_or_all_of_the_balance() {
        assert_eq!(
            decide_waiver(&waiver(None)),
            Ok(WaiverPlan {
                amount_cents: 500,
                balance_after_cents: 0
            })
        );
        assert_eq!(
            decide_waiver(&waiver(Some(499)))
                .unwrap()
                .balance_after_cents,
            1
        );
        assert_eq!(decide_waiver(&waiver(Some(500))).unwrap().amount_cents, 500);
        assert_eq!(
            decide_waiver(&waiver(Some(501))),
            Err(Refusal::ExceedsBalance)
        );
        assert_eq!(
            decide_waiver(&waiver(Some(0))),
            Err(Refusal::ExceedsBalance)
        );
    }

    #[test]
    fn waiver_refusals_in_order() {
        let own = WaiverFacts {
            actor: PATRON,
            fine: FineFacts {
                status: FineStatus::Waived,
                ..fine()
            },
            ..waiver(Some(10_000))
        };
        assert_eq!(decide_waiver(&own), Err(Refusal::OwnFine));
        let settled = WaiverFacts {
            actor: STAFF,
            ..own
        };
        assert_eq!(decide_waiver(&settled), Err(Refusal::FineSettled));
        // A whole-balance waiver of a fine with nothing left is over the balance.
        let empty = WaiverFacts {
            fine: FineFacts {
                balance_cents: 0,
                ..fine()
            },
            ..waiver(None)
        };
        assert_eq!(decide_waiver(&empty), Err(Refusal::ExceedsBalance));
    }
}
