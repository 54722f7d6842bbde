//! Loans: checkout, return, renewal and loss.

use carrel_core::circulation::{self, LoanPolicy};
use carrel_core::decide::{
    self, CheckoutFacts, CheckoutLimits, CheckoutPlan, CopyAvailability, RenewalFacts, ReturnFacts,
    ReturnRoute,
};
use carrel_core::rules::{Rule, RuleKey, Specificity};
use carrel_core::statuses::{CopyStatus, LoanStatus};
use serde_json::json;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::fines::{Fine, fine_select};
use super::holds::{Hold, fill_waiting_holds, hold_select, send_home_if_away, start_transit};
use super::rules::resolve_rule;
use super::{CirculationEvent, Refusal, circulation_event};
use crate::audit::append_audit_trail;
use crate::branches::{BranchClock, branch_days_of, load_branch_days};
use crate::stored::Stored;
use crate::{AuditTrail, Backend, Store, StoreError};

macro_rules! loan_columns {
    () => {
        "id, copy_id, item_id, user_id, status, checked_out_at, due_at, returned_at, renewals, \
         loan_days, max_renewals, daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents, \
         branch_id, due_date"
    };
}

/// What a patron owes in open fines (BIGINT on both backends).
pub(crate) const BALANCE: &str = "SELECT CAST(COALESCE(SUM(amount_cents - paid_cents - waived_cents), 0) AS BIGINT) \
     FROM fines WHERE user_id = $1 AND status = 'open'";

/// A stored loan, with the policy recorded at checkout.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Loan {
    pub id: Uuid,
    pub copy_id: Uuid,
    pub item_id: Uuid,
    /// None once the loan has been anonymised.
    pub user_id: Option<Uuid>,
    /// As stored; see [`Loan::status_at`].
    #[sqlx(try_from = "Stored<LoanStatus>")]
    pub status: LoanStatus,
    pub checked_out_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
    pub returned_at: Option<OffsetDateTime>,
    pub renewals: i32,
    pub loan_days: i32,
    pub max_renewals: i32,
    pub daily_fine_cents: i64,
    pub max_fine_cents: i64,
    pub grace_days: i32,
    pub replacement_cost_cents: i64,
    /// The lending branch (where the desk was).
    pub branch_id: Uuid,
    /// The local due day; None on rows written without one (read as the UTC
    /// date of `due_at`, see [`Loan::due_day`]).
    pub due_date: Option<Date>,
}

impl Loan {
    /// The local due day of the lending branch.
    pub fn due_day(&self) -> Date {
        self.due_date
            .unwrap_or_else(|| self.due_at.to_offset(time::UtcOffset::UTC).date())
    }

    /// The policy in force when the loan was checked out.
    pub fn policy(&self) -> LoanPolicy {
        super::policies::stored_policy(
            [self.loan_days, self.max_renewals, self.grace_days],
            [
                self.daily_fine_cents,
                self.max_fine_cents,
                self.replacement_cost_cents,
            ],
        )
    }

    /// The status at `now`: an active loan past its due instant is `overdue`
    /// even before the background job has marked it.
    pub fn status_at(&self, now: OffsetDateTime) -> LoanStatus {
        if self.status == LoanStatus::Active && now > self.due_at {
            LoanStatus::Overdue
        } else {
            self.status
        }
    }

    /// Whether the loan is out (active or overdue).
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
}

/// A checkout request, with the global limits from configuration.
#[derive(Debug, Clone)]
pub struct Checkout<'a> {
    pub copy_barcode: &'a str,
    pub user_id: Uuid,
    /// The desk's branch (the lending branch): it selects the branch rows of
    /// the rule matrix and the calendar of the due day. None means the copy's home.
    pub branch_id: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub now: OffsetDateTime,
    /// The global loan limit, for patron categories without their own.
    pub max_active_loans: u32,
    pub block_threshold_cents: i64,
}

/// What a checkout would do, without doing it (see [`Store::simulate_checkout`]).
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The rule that would be frozen on the loan.
    pub rule: Rule,
    pub matched: Specificity,
    pub due_at: OffsetDateTime,
    /// The local due day at the lending branch.
    pub due_date: Date,
    /// The branch that would lend: the desk's, else the copy's home.
    pub lending_branch_id: Uuid,
    /// Every refusal checkout would meet, in checkout's order (it gives the first).
    pub refusals: Vec<Refusal>,
}

/// A completed checkout.
#[derive(Debug, Clone)]
pub struct CheckoutOutcome {
    pub loan: Loan,
    /// The patron's hold this checkout fulfilled, if any.
    pub fulfilled_hold: Option<Uuid>,
}

/// A loan closed by a return, whether anyone queues for its item, the copy's
/// home branch and the lending branch's clock: all a return without a queue
/// needs, read by the statement that closes the loan.
#[derive(sqlx::FromRow)]
struct ClosedLoan {
    #[sqlx(flatten)]
    loan: Loan,
    holds_waiting: bool,
    home_branch_id: Uuid,
    lending_timezone: Option<String>,
    lending_calendar_set_at: Option<OffsetDateTime>,
}

/// A completed return.
#[derive(Debug, Clone)]
pub struct ReturnOutcome {
    pub loan: Loan,
    /// The overdue fine created by this return.
    pub fine: Option<Fine>,
    /// The hold the returned copy now fills: `ready` (the copy is on this
    /// branch's hold shelf) or still `waiting` while the copy travels to its
    /// pickup branch.
    pub hold: Option<Hold>,
    /// Where the copy must now be taken (it is `in_transit`): the pickup
    /// branch of the hold it fills, or its home. None: it stays here.
    pub transit_to_branch_id: Option<Uuid>,
    /// The branch the copy was returned at.
    pub branch_id: Uuid,
}

/// Filters of a loan listing.
#[derive(Debug, Clone)]
pub struct LoanQuery {
    pub user_id: Option<Uuid>,
    /// One status, or None for the open ones.
    pub status: Option<LoanStatus>,
    /// Keyset position (checked_out_at, id) of the last row of the previous page.
    pub after: Option<(OffsetDateTime, Uuid)>,
    pub limit: u32,
    /// Decides which active loans are overdue.
    pub now: OffsetDateTime,
}

/// Everything a checkout decides on, in one round trip: the copy and its item
/// type, the lending branch's clock (`$3`, the desk's branch, else the copy's
/// home), and the patron with their category's loan limit, their open loans
/// (all, and of this item type), their open-fine balance, whether the copy is
/// on the hold shelf for them and whether they queue for this item. No row
/// means an unknown (or deleted) copy or patron. On PostgreSQL checkout locks
/// rows first (see [`CHECKOUT_LOCK_PG`]).
macro_rules! checkout_lookup {
    () => {
        "SELECT c.id AS copy_id, c.item_id, c.status AS copy_status, c.branch_id AS home_branch_id, i.item_type, \
         u.is_active AS patron_active, u.category AS patron_category, pc.max_active_loans AS category_max_loans, \
         (SELECT COUNT(*) FROM loans l WHERE l.user_id = u.id AND l.status IN ('active', 'overdue')) AS open_loans, \
         (SELECT COUNT(*) FROM loans l JOIN items li ON li.id = l.item_id \
            WHERE l.user_id = u.id AND l.status IN ('active', 'overdue') AND li.item_type = i.item_type) AS open_loans_of_type, \
         (SELECT CAST(COALESCE(SUM(f.amount_cents - f.paid_cents - f.waived_cents), 0) AS BIGINT) \
            FROM fines f WHERE f.user_id = u.id AND f.status = 'open') AS balance_cents, \
         EXISTS (SELECT 1 FROM holds h WHERE h.copy_id = c.id AND h.user_id = u.id AND h.status = 'ready') \
           AS held_for_patron, \
         EXISTS (SELECT 1 FROM holds h WHERE h.item_id = c.item_id AND h.user_id = u.id AND h.status = 'waiting') \
           AS queues_for_item, \
         lb.timezone AS lending_timezone, lb.calendar_set_at AS lending_calendar_set_at \
         FROM copies c JOIN items i ON i.id = c.item_id \
         CROSS JOIN users u JOIN patron_categories pc ON pc.code = u.category \
         LEFT JOIN branches lb ON lb.id = COALESCE($3, c.branch_id) \
         WHERE c.barcode = $1 AND c.deleted_at IS NULL AND i.deleted_at IS NULL \
           AND u.id = $2 AND u.deleted_at IS NULL"
    };
}

/// PostgreSQL: the rows a checkout locks before it reads its facts, in a
/// statement of its own: READ COMMITTED gives each statement a fresh snapshot,
/// but a statement that waits for a row lock keeps the snapshot it started
/// with, so counts read by the locking statement itself would miss the loans
/// that the lock holder committed meanwhile (four loans on a limit of three,
/// seen in the conformance suite). The patron row, so checkouts by one patron
/// count each other; a key share of the item row, so a concurrent soft delete
/// of the item either waits for this checkout (and then finds the copy on
/// loan) or makes this checkout find the item gone. Binds: barcode, patron.
/// (SQLite serialises writers already.)
const CHECKOUT_LOCK_PG: &str = "SELECT 1 FROM users u CROSS JOIN copies c JOIN items i ON i.id = c.item_id \
     WHERE u.id = $2 AND c.barcode = $1 FOR UPDATE OF u FOR KEY SHARE OF i";

/// The columns [`checkout_lookup`] reads.
#[derive(sqlx::FromRow)]
struct CheckoutLookup {
    copy_id: Uuid,
    item_id: Uuid,
    #[sqlx(try_from = "Stored<CopyStatus>")]
    copy_status: CopyStatus,
    home_branch_id: Uuid,
    item_type: String,
    patron_active: bool,
    patron_category: String,
    category_max_loans: Option<i32>,
    open_loans: i64,
    open_loans_of_type: i64,
    balance_cents: i64,
    held_for_patron: bool,
    queues_for_item: bool,
    lending_timezone: Option<String>,
    lending_calendar_set_at: Option<OffsetDateTime>,
}

impl CheckoutLookup {
    fn lending_clock(&self) -> BranchClock {
        BranchClock {
            timezone: self.lending_timezone.clone(),
            calendar_set_at: self.lending_calendar_set_at,
        }
    }
}

/// The facts of a checkout: what was loaded, the rule in force and the
/// facts and limits [`decide::decide_checkout`] decides on.
struct CheckoutLoaded {
    found: CheckoutLookup,
    /// The desk's branch, else the copy's home.
    lending_branch: Uuid,
    rule: Rule,
    matched: Specificity,
    facts: CheckoutFacts,
    limits: CheckoutLimits,
}

/// Loads the facts of checking `$request` (a [`Checkout`]) out with `$lookup`
/// (locking or not) and resolves the rule in force, inside the caller's
/// transaction; evaluates to a [`CheckoutLoaded`]. Real checkout and the
/// simulation both load here and decide in `carrel_core::decide`, so they
/// cannot disagree.
macro_rules! load_checkout {
    ($tx:expr, $lookup:expr, $request:expr) => {{
        let r: &Checkout<'_> = $request;
        let found: CheckoutLookup = sqlx::query_as($lookup)
            .bind(r.copy_barcode)
            .bind(r.user_id)
            .bind(r.branch_id)
            .fetch_optional(&mut *$tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let lending_branch = r.branch_id.unwrap_or(found.home_branch_id);
        let key = RuleKey {
            branch_id: Some(lending_branch),
            patron_category: Some(found.patron_category.as_str()),
            item_type: Some(found.item_type.as_str()),
        };
        let (rule, matched) = resolve_rule!($tx, &key);
        let facts = CheckoutFacts {
            patron_active: found.patron_active,
            balance_cents: found.balance_cents,
            open_loans: u64::try_from(found.open_loans).unwrap_or(0),
            open_loans_of_type: u64::try_from(found.open_loans_of_type).unwrap_or(0),
            copy: match found.copy_status {
                CopyStatus::Available => CopyAvailability::OnShelf,
                CopyStatus::OnHoldShelf if found.held_for_patron => CopyAvailability::HeldForPatron,
                _ => CopyAvailability::Unavailable,
            },
            queues_for_item: found.queues_for_item,
        };
        let limits = CheckoutLimits {
            block_threshold_cents: r.block_threshold_cents,
            max_active_loans: found
                .category_max_loans
                .map_or(r.max_active_loans, |n| u32::try_from(n).unwrap_or(0)),
            max_loans_of_type: rule.max_loans_of_type,
        };
        CheckoutLoaded {
            found,
            lending_branch,
            rule,
            matched,
            facts,
            limits,
        }
    }};
}

/// The loan row, locked for a renewal or a loss on PostgreSQL.
fn loan_lock_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => concat!("SELECT ", loan_columns!(), " FROM loans WHERE id = $1"),
        Backend::Postgres => concat!(
            "SELECT ",
            loan_columns!(),
            " FROM loans WHERE id = $1 FOR UPDATE"
        ),
    }
}

/// The due day of a loan lent by `$branch` (whose row `$clock` the checkout
/// lookup read) at `$now` under `$policy`, in that branch's local days and
/// calendar (a `circulation::Due`): the one due-date computation of checkout
/// and of its simulation.
macro_rules! loan_due {
    ($tx:expr, $library:expr, $branch:expr, $clock:expr, $now:expr, $policy:expr) => {{
        let library: &crate::LibraryTime = $library;
        let now: OffsetDateTime = $now;
        let policy: &LoanPolicy = $policy;
        let days = branch_days_of!($tx, $branch, $clock, library, library.zone.local_date(now));
        circulation::due_date(&days, policy.loan_days, now, None)
    }};
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Inserts the overdue fine of `$calc` (a `FineCalculation`) for a loan inside
/// the caller's transaction; evaluates to the stored [`Fine`].
macro_rules! insert_overdue_fine {
    ($tx:expr, $patron:expr, $loan_id:expr, $calc:expr, $actor:expr, $now:expr) => {{
        let calc = $calc;
        let created: Fine = sqlx::query_as(super::fines::INSERT_OVERDUE)
            .bind(Uuid::now_v7())
            .bind($patron)
            .bind($loan_id)
            .bind(calc.amount_cents)
            .bind(to_i32(calc.days_late))
            .bind(to_i32(calc.grace_days))
            .bind(calc.daily_fine_cents)
            .bind(calc.max_fine_cents)
            .bind(calc.capped)
            .bind($actor)
            .bind($now)
            .bind(to_i32(calc.closed_days_skipped))
            .fetch_one(&mut *$tx)
            .await?;
        created
    }};
}

impl Store {
    /// Checks a copy out to a patron.
    ///
    /// Refusals: unknown barcode or patron ([`StoreError::NotFound`]); the
    /// patron owes at least the block threshold, is at the loan limit, or is
    /// deactivated; the copy is not on the shelf, or is on the hold shelf for
    /// someone else. Checking out a held copy fulfils the holder's hold.
    pub async fn checkout(
        &self,
        request: &Checkout<'_>,
        audit: impl AuditTrail<CheckoutOutcome>,
    ) -> Result<CheckoutOutcome, StoreError> {
        const TAKE_FROM_SHELF: &str = "UPDATE copies SET status = 'on_loan', updated_at = $2 WHERE id = $1 AND status = 'available'";
        const TAKE_FROM_HOLD_SHELF: &str = "UPDATE copies SET status = 'on_loan', updated_at = $2 WHERE id = $1 AND status = 'on_hold_shelf'";
        const FULFIL_READY: &str = "UPDATE holds SET status = 'fulfilled', closed_at = $3 \
             WHERE copy_id = $1 AND status = 'ready' AND user_id = $2 RETURNING id";
        // A patron who borrows an item they were queueing for no longer waits for it.
        const FULFIL_WAITING: &str = "UPDATE holds SET status = 'fulfilled', closed_at = $3, copy_id = $4 \
             WHERE item_id = $1 AND user_id = $2 AND status = 'waiting' RETURNING id";
        const INSERT: &str = concat!(
            "INSERT INTO loans (id, copy_id, item_id, user_id, status, checked_out_at, due_at, renewals, \
             loan_days, max_renewals, daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents, branch_id, due_date) \
             VALUES ($1, $2, $3, $4, 'active', $5, $6, 0, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING ",
            loan_columns!()
        );
        const LOOKUP: &str = checkout_lookup!();
        let lock = self.backend() == Backend::Postgres;
        let library = self.library_time.clone();
        let r = request;
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if lock {
                sqlx::query(CHECKOUT_LOCK_PG).bind(r.copy_barcode).bind(r.user_id).execute(&mut *tx).await?;
            }
            let CheckoutLoaded { found, rule, facts, limits, lending_branch, .. } = load_checkout!(tx, LOOKUP, r);
            let plan = decide::decide_checkout(&facts, &limits)?;
            let (copy_id, item_id) = (found.copy_id, found.item_id);
            let policy = rule.policy;
            // The compare-and-set claims settle races with other desks.
            let fulfilled_hold: Option<Uuid> = match plan {
                CheckoutPlan::FromShelf { fulfil_waiting_hold } => {
                    if sqlx::query(TAKE_FROM_SHELF).bind(copy_id).bind(r.now).execute(&mut *tx).await?.rows_affected() == 0 {
                        return Err(Refusal::CopyUnavailable.into());
                    }
                    if fulfil_waiting_hold {
                        sqlx::query_scalar(FULFIL_WAITING).bind(item_id).bind(r.user_id).bind(r.now).bind(copy_id)
                            .fetch_optional(&mut *tx).await?
                    } else {
                        None
                    }
                }
                CheckoutPlan::FromHoldShelf => {
                    // Only the holder's ready hold on this very copy releases it.
                    let hold: Option<Uuid> = sqlx::query_scalar(FULFIL_READY).bind(copy_id).bind(r.user_id).bind(r.now)
                        .fetch_optional(&mut *tx).await?;
                    if hold.is_none()
                        || sqlx::query(TAKE_FROM_HOLD_SHELF).bind(copy_id).bind(r.now).execute(&mut *tx).await?.rows_affected() == 0
                    {
                        return Err(Refusal::CopyUnavailable.into());
                    }
                    hold
                }
            };
            // The one due-date rule, in the lending branch's local days.
            let due = loan_due!(tx, &library, lending_branch, found.lending_clock(), r.now, &policy);
            let due_at = due.due_at;
            let loan: Loan = sqlx::query_as(INSERT)
                .bind(Uuid::now_v7())
                .bind(copy_id)
                .bind(item_id)
                .bind(r.user_id)
                .bind(r.now)
                .bind(due_at)
                .bind(to_i32(policy.loan_days))
                .bind(to_i32(policy.max_renewals))
                .bind(policy.daily_fine_cents)
                .bind(policy.max_fine_cents)
                .bind(to_i32(policy.grace_days))
                .bind(policy.replacement_cost_cents)
                .bind(lending_branch)
                .bind(due.due_date)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match StoreError::from(e) {
                    // The partial unique index: another desk won this copy.
                    StoreError::Conflict { .. } => StoreError::Circulation(Refusal::CopyUnavailable),
                    other => other,
                })?;
            let details = json!({"loan_id": loan.id, "copy_id": copy_id, "barcode": r.copy_barcode, "due_at": due_at.unix_timestamp(), "due_date": carrel_core::calendar::format_date(due.due_date), "branch_id": lending_branch, "hold_id": fulfilled_hold});
            circulation_event!(tx, CirculationEvent {
                item_id, event_type: "checked_out", actor_id: r.actor, at: r.now, details: &details,
                loan_id: Some(loan.id), hold_id: fulfilled_hold, patron_id: Some(r.user_id),
            });
            let outcome = CheckoutOutcome { loan, fulfilled_hold };
            let events = append_audit_trail!(tx, audit, &outcome);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(outcome)
        })
    }

    /// What checking `request` out would do, changing nothing: the rule in
    /// force, the due instant (from `request.now`) and every refusal real
    /// checkout would meet. The decision is [`Store::checkout`]'s own; only
    /// the compare-and-set that settles races between desks is not run.
    /// Unknown barcode or patron: [`StoreError::NotFound`].
    pub async fn simulate_checkout(
        &self,
        request: &Checkout<'_>,
    ) -> Result<Simulation, StoreError> {
        const LOOKUP: &str = checkout_lookup!();
        let library = self.library_time.clone();
        crate::on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let CheckoutLoaded { found, rule, matched, facts, limits, lending_branch } = load_checkout!(tx, LOOKUP, request);
            let refusals = decide::checkout_refusals(&facts, &limits);
            let due = loan_due!(tx, &library, lending_branch, found.lending_clock(), request.now, &rule.policy);
            tx.rollback().await?;
            Ok(Simulation {
                due_at: due.due_at,
                due_date: due.due_date,
                lending_branch_id: lending_branch,
                rule,
                matched,
                refusals,
            })
        })
    }

    /// Returns the copy with `barcode` at the desk of branch `desk` (None: the
    /// copy's home): closes its open loan, creates the overdue fine from the
    /// loan's recorded policy (late days counted in the lending branch's local
    /// days, against its calendar in force now), and hands the copy to the first
    /// waiting hold — on this branch's hold shelf, or in transit to the hold's
    /// pickup branch — or puts it back on the shelf, in transit home when this
    /// is not its home.
    pub async fn return_copy(
        &self,
        barcode: &str,
        desk: Option<Uuid>,
        actor: Option<Uuid>,
        now: OffsetDateTime,
        pickup_days: u32,
        audit: impl AuditTrail<ReturnOutcome>,
    ) -> Result<ReturnOutcome, StoreError> {
        const COPY: &str = "SELECT COUNT(*) FROM copies WHERE barcode = $1";
        // Closes the open loan of the copy and tells whether anyone queues for the item.
        const CLOSE: &str = concat!(
            "UPDATE loans SET status = 'returned', returned_at = $2 \
             WHERE copy_id = (SELECT id FROM copies WHERE barcode = $1) AND status IN ('active', 'overdue') RETURNING ",
            loan_columns!(),
            ", EXISTS (SELECT 1 FROM holds h WHERE h.item_id = loans.item_id AND h.status = 'waiting') AS holds_waiting, \
             (SELECT c.branch_id FROM copies c WHERE c.id = loans.copy_id) AS home_branch_id, \
             (SELECT b.timezone FROM branches b WHERE b.id = loans.branch_id) AS lending_timezone, \
             (SELECT b.calendar_set_at FROM branches b WHERE b.id = loans.branch_id) AS lending_calendar_set_at"
        );
        const SHELVE: &str = "UPDATE copies SET status = 'available', updated_at = $2 WHERE id = $1 AND status = 'on_loan'";
        const FILLED: &str = concat!(
            hold_select!(),
            "WHERE h.copy_id = $1 AND h.status IN ('waiting', 'ready')"
        );
        const DESTINATION: &str = "SELECT transit_to_branch_id FROM copies WHERE id = $1";
        let library = self.library_time.clone();
        let lock = self.backend() == Backend::Postgres;
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            if lock {
                // Before the queue is read (see the statement's docs).
                sqlx::query(super::holds::LOCK_QUEUE_BY_BARCODE_PG).bind(barcode).execute(&mut *tx).await?;
            }
            let closed: Option<ClosedLoan> = sqlx::query_as(CLOSE).bind(barcode).bind(now).fetch_optional(&mut *tx).await?;
            let Some(ClosedLoan { loan, holds_waiting, home_branch_id: home, lending_timezone, lending_calendar_set_at }) = closed else {
                let copies: i64 = sqlx::query_scalar(COPY).bind(barcode).fetch_one(&mut *tx).await?;
                return Err(if copies == 0 { StoreError::NotFound } else { Refusal::NotOnLoan.into() });
            };
            let (copy_id, item_id) = (loan.copy_id, loan.item_id);
            let clock = BranchClock { timezone: lending_timezone, calendar_set_at: lending_calendar_set_at };
            let lending = branch_days_of!(tx, loan.branch_id, clock, &library, loan.due_day());
            let shelved = sqlx::query(SHELVE).bind(copy_id).bind(now).execute(&mut *tx).await?.rows_affected() == 1;
            let plan = decide::decide_return(&ReturnFacts {
                patron_known: loan.user_id.is_some(),
                policy: loan.policy(),
                due_day: loan.due_day(),
                now,
                lending,
                count_closed_days: library.count_closed_days,
                copy_shelved: shelved,
                holds_waiting,
                home_branch: home,
                desk,
            });
            let mut fine = None;
            if let (Some(patron), Some(calc)) = (loan.user_id, plan.fine) {
                fine = Some(insert_overdue_fine!(tx, patron, loan.id, calc, actor, now));
            }
            let here = plan.here;
            let details = json!({"loan_id": loan.id, "copy_id": copy_id, "barcode": barcode, "branch_id": here, "fine_id": fine.as_ref().map(|f: &Fine| f.id)});
            circulation_event!(tx, CirculationEvent {
                item_id, event_type: "returned", actor_id: actor, at: now, details: &details,
                loan_id: Some(loan.id), hold_id: None, patron_id: loan.user_id,
            });
            let (ready, hold, transit_to_branch_id) = match plan.route {
                ReturnRoute::Stays => (Vec::new(), None, None),
                ReturnRoute::GoesHome(home) => {
                    let sent = start_transit!(tx, item_id, copy_id, here, home, None, now, actor);
                    (Vec::new(), None, sent.then_some(home))
                }
                ReturnRoute::ServesQueue { fill_holds } => {
                    let ready = if fill_holds {
                        fill_waiting_holds!(tx, &library, item_id, Some(copy_id), Some(here), now, pickup_days, actor)
                    } else {
                        Vec::new()
                    };
                    send_home_if_away!(tx, item_id, copy_id, here, now, actor);
                    let hold: Option<Hold> = sqlx::query_as(FILLED).bind(copy_id).fetch_optional(&mut *tx).await?;
                    let destination: Option<Uuid> = sqlx::query_scalar(DESTINATION).bind(copy_id).fetch_one(&mut *tx).await?;
                    (ready, hold, destination)
                }
            };
            let mailed = !ready.is_empty();
            let outcome = ReturnOutcome { loan, fine, hold, transit_to_branch_id, branch_id: here };
            let events = append_audit_trail!(tx, audit, &outcome);
            tx.commit().await?;
            crate::audit::log(&events);
            if mailed {
                self.wake_outbox();
            }
            Ok(outcome)
        })
    }

    /// Renews an open loan. `borrower`, when given, must be the loan's patron
    /// (otherwise [`StoreError::NotFound`]: no existence leak).
    ///
    /// Refused: the renewal limit of the loan's policy is reached, another
    /// patron waits for the item, or the patron is blocked. Renewing an
    /// overdue loan charges the lateness so far (the new due date counts from
    /// today, so it would otherwise be forgiven); that fine is returned.
    /// `audit`'s entries are committed with the renewal.
    pub async fn renew_loan(
        &self,
        id: Uuid,
        borrower: Option<Uuid>,
        actor: Option<Uuid>,
        now: OffsetDateTime,
        block_threshold_cents: i64,
        audit: impl AuditTrail<(Loan, Option<Fine>)>,
    ) -> Result<(Loan, Option<Fine>), StoreError> {
        const WAITING: &str =
            "SELECT COUNT(*) FROM holds WHERE item_id = $1 AND status = 'waiting'";
        const RENEW: &str = concat!(
            "UPDATE loans SET due_at = $2, due_date = $4, renewals = renewals + 1, status = 'active' \
             WHERE id = $1 AND renewals = $3 AND status IN ('active', 'overdue') RETURNING ",
            loan_columns!()
        );
        let lock_loan = loan_lock_sql(self.backend());
        let library = self.library_time.clone();
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let loan: Loan = sqlx::query_as(lock_loan).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            if borrower.is_some() && loan.user_id != borrower {
                return Err(StoreError::NotFound);
            }
            // The facts: the queue, the balance and the lending branch's local days.
            let waiting: i64 = sqlx::query_scalar(WAITING).bind(loan.item_id).fetch_one(&mut *tx).await?;
            let balance: i64 = match loan.user_id {
                Some(patron) => sqlx::query_scalar(BALANCE).bind(patron).fetch_one(&mut *tx).await?,
                None => 0,
            };
            let lending = load_branch_days!(tx, loan.branch_id, &library, loan.due_day().min(library.zone.local_date(now)));
            let plan = decide::decide_renewal(&RenewalFacts {
                loan_open: loan.user_id.is_some() && loan.is_open(),
                renewals: u32::try_from(loan.renewals).unwrap_or(u32::MAX),
                policy: loan.policy(),
                due_day: loan.due_day(),
                holds_waiting: u64::try_from(waiting).unwrap_or(0),
                balance_cents: balance,
                block_threshold_cents,
                now,
                lending,
                count_closed_days: library.count_closed_days,
            })?;
            let Some(patron) = loan.user_id else {
                return Err(Refusal::NotOnLoan.into());
            };
            let due = plan.due;
            let due_at = due.due_at;
            let renewed: Loan = sqlx::query_as(RENEW).bind(id).bind(due_at).bind(loan.renewals).bind(due.due_date)
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::Circulation(Refusal::NotOnLoan))?;
            let mut fine = None;
            if let Some(calc) = plan.fine {
                fine = Some(insert_overdue_fine!(tx, patron, id, calc, actor, now));
            }
            let details = json!({"loan_id": id, "copy_id": loan.copy_id, "renewals": renewed.renewals, "due_at": due_at.unix_timestamp(), "fine_id": fine.as_ref().map(|f: &Fine| f.id)});
            circulation_event!(tx, CirculationEvent {
                item_id: loan.item_id, event_type: "renewed", actor_id: actor, at: now, details: &details,
                loan_id: Some(id), hold_id: None, patron_id: Some(patron),
            });
            let outcome = (renewed, fine);
            let events = append_audit_trail!(tx, audit, &outcome);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(outcome)
        })
    }

    /// Declares an open loan's copy lost: the loan and the copy become `lost`
    /// and the replacement cost recorded on the loan becomes a fine. `audit`'s
    /// entries are committed with the change.
    pub async fn mark_lost(
        &self,
        id: Uuid,
        actor: Option<Uuid>,
        now: OffsetDateTime,
        audit: impl AuditTrail<(Loan, Option<Fine>)>,
    ) -> Result<(Loan, Option<Fine>), StoreError> {
        const LOSE: &str = concat!(
            "UPDATE loans SET status = 'lost' WHERE id = $1 AND status IN ('active', 'overdue') RETURNING ",
            loan_columns!()
        );
        const COPY_LOST: &str = "UPDATE copies SET status = 'lost', updated_at = $2 WHERE id = $1";
        const INSERT_FINE: &str = concat!(
            "INSERT INTO fines (id, user_id, loan_id, reason, amount_cents, paid_cents, waived_cents, status, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 'lost', $4, 0, 0, 'open', $5, $6, $6) RETURNING ",
            fine_select!()
        );
        let lock_loan = loan_lock_sql(self.backend());
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let before: Loan = sqlx::query_as(lock_loan).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let loan: Loan = sqlx::query_as(LOSE).bind(id).fetch_optional(&mut *tx).await?
                .ok_or(StoreError::Circulation(Refusal::NotOnLoan))?;
            sqlx::query(COPY_LOST).bind(before.copy_id).bind(now).execute(&mut *tx).await?;
            let mut fine = None;
            if let Some(patron) = loan.user_id.filter(|_| loan.replacement_cost_cents > 0) {
                let created: Fine = sqlx::query_as(INSERT_FINE).bind(Uuid::now_v7()).bind(patron).bind(id)
                    .bind(loan.replacement_cost_cents).bind(actor).bind(now).fetch_one(&mut *tx).await?;
                fine = Some(created);
            }
            let details = json!({"loan_id": id, "copy_id": loan.copy_id, "fine_id": fine.as_ref().map(|f: &Fine| f.id)});
            circulation_event!(tx, CirculationEvent {
                item_id: loan.item_id, event_type: "lost", actor_id: actor, at: now, details: &details,
                loan_id: Some(id), hold_id: None, patron_id: loan.user_id,
            });
            let outcome = (loan, fine);
            let events = append_audit_trail!(tx, audit, &outcome);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(outcome)
        })
    }

    /// A loan by id.
    pub async fn find_loan(&self, id: Uuid) -> Result<Option<Loan>, StoreError> {
        const SELECT: &str = concat!("SELECT ", loan_columns!(), " FROM loans WHERE id = $1");
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await?),
        )
    }

    /// Loans, newest first. `overdue` includes active loans already past due.
    pub async fn list_loans(&self, query: &LoanQuery) -> Result<Vec<Loan>, StoreError> {
        const LIST: &str = concat!(
            "SELECT ",
            loan_columns!(),
            " FROM loans WHERE ($1 IS NULL OR user_id = $1) \
               AND (CASE $2 \
                      WHEN 'active' THEN status = 'active' AND due_at >= $3 \
                      WHEN 'overdue' THEN status = 'overdue' OR (status = 'active' AND due_at < $3) \
                      WHEN 'returned' THEN status = 'returned' \
                      WHEN 'lost' THEN status = 'lost' \
                      ELSE status IN ('active', 'overdue') END) \
               AND ($4 IS NULL OR checked_out_at < $4 OR (checked_out_at = $4 AND id < $5)) \
             ORDER BY checked_out_at DESC, id DESC LIMIT $6"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST)
            .bind(query.user_id)
            .bind(query.status.map_or("open", LoanStatus::as_str))
            .bind(query.now)
            .bind(query.after.map(|(at, _)| at))
            .bind(query.after.map(|(_, id)| id))
            .bind(i64::from(query.limit) + 1)
            .fetch_all(pool)
            .await?))
    }

    /// Every loan still linked to a user (for the data export), oldest first.
    pub async fn user_loans(&self, user_id: Uuid) -> Result<Vec<Loan>, StoreError> {
        const LIST: &str = concat!(
            "SELECT ",
            loan_columns!(),
            " FROM loans WHERE user_id = $1 ORDER BY checked_out_at, id"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(LIST).bind(user_id).fetch_all(pool).await?))
    }

    /// What a user owes in open fines, in cents.
    pub async fn balance(&self, user_id: Uuid) -> Result<i64, StoreError> {
        Ok(
            crate::on_pool!(self, pool => sqlx::query_scalar(BALANCE).bind(user_id).fetch_one(pool).await?),
        )
    }
}
