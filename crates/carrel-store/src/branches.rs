//! Branches, their opening calendars, and the local days circulation counts in.

use std::sync::Arc;

use carrel_core::calendar::{
    BranchDays, OpeningCalendar, OpeningHours, Zone, format_clock, parse_clock,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::audit::append_audit_trail;
use crate::{AuditTrail, Store, StoreError};

/// The id of the branch `MAIN` that migration 0013 creates; everything that
/// existed before branches belongs to it.
pub const MAIN_BRANCH_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);

/// The library-wide time settings every whole-day rule needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryTime {
    /// `CARREL_TIMEZONE`: the zone of branches without their own.
    pub zone: Zone,
    /// `CARREL_FINES_COUNT_CLOSED_DAYS`: whether closed days count as late.
    pub count_closed_days: bool,
}

impl LibraryTime {
    /// The zone of a branch with the stored `timezone` (None: the library's).
    pub fn zone_of(&self, timezone: Option<&str>) -> Zone {
        // A stored zone was checked when written; should the database ever lose
        // it, the library's zone is the safe reading.
        timezone
            .and_then(|name| Zone::named(name).ok())
            .unwrap_or_else(|| self.zone.clone())
    }
}

impl Default for LibraryTime {
    fn default() -> Self {
        LibraryTime {
            zone: Zone::utc(),
            count_closed_days: false,
        }
    }
}

/// A stored branch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Branch {
    pub id: Uuid,
    /// 1–16 of `[A-Za-z0-9_-]`, unique (case-sensitively).
    pub code: String,
    pub name: String,
    /// The branch's own IANA zone; None means the library's.
    pub timezone: Option<String>,
    pub address: Option<String>,
    /// When the calendar was last set; None: never (open every day).
    pub calendar_set_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A branch to create (already validated by the caller).
#[derive(Debug, Clone)]
pub struct NewBranch {
    pub code: String,
    pub name: String,
    pub timezone: Option<String>,
    pub address: Option<String>,
}

/// Changes to a branch; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct BranchChanges {
    pub code: Option<String>,
    pub name: Option<String>,
    pub timezone: Option<Option<String>>,
    pub address: Option<Option<String>>,
}

macro_rules! branch_columns {
    () => {
        "id, code, name, timezone, address, calendar_set_at, created_at, updated_at"
    };
}

/// Reads the local days of branch `$branch` (zone and calendar) inside the
/// caller's transaction; an unknown branch is the library's zone, open every
/// day. Closed dates from `$from` on are loaded (earlier ones cannot matter).
macro_rules! load_branch_days {
    ($tx:expr, $branch:expr, $library:expr, $from:expr) => {{
        let branch_id: uuid::Uuid = $branch;
        let row: Option<$crate::branches::BranchClock> =
            sqlx::query_as("SELECT timezone, calendar_set_at FROM branches WHERE id = $1")
                .bind(branch_id)
                .fetch_optional(&mut *$tx)
                .await?;
        $crate::branches::branch_days_of!($tx, branch_id, row.unwrap_or_default(), $library, $from)
    }};
}
pub(crate) use load_branch_days;

/// [`load_branch_days!`] for a branch whose row (`$clock`, a [`BranchClock`])
/// an earlier query of the transaction already read: the opening hours and
/// closed dates are read only when the branch has a calendar, so a branch
/// without one costs no round trip.
macro_rules! branch_days_of {
    ($tx:expr, $branch:expr, $clock:expr, $library:expr, $from:expr) => {{
        let branch_id: uuid::Uuid = $branch;
        let clock: $crate::branches::BranchClock = $clock;
        let from: time::Date = $from;
        let set = clock.calendar_set_at.is_some();
        let hours: Vec<(i32, String, String)> = if set {
            sqlx::query_as("SELECT weekday, opens, closes FROM branch_opening_hours WHERE branch_id = $1")
                .bind(branch_id)
                .fetch_all(&mut *$tx)
                .await?
        } else {
            Vec::new()
        };
        let closed: Vec<time::Date> = if set {
            sqlx::query_scalar("SELECT closed_on FROM branch_closed_dates WHERE branch_id = $1 AND closed_on >= $2")
                .bind(branch_id)
                .bind(from)
                .fetch_all(&mut *$tx)
                .await?
        } else {
            Vec::new()
        };
        $crate::branches::branch_days($library, clock.timezone.as_deref(), set, &hours, closed)
    }};
}
pub(crate) use branch_days_of;

/// What a branch row says about its clock: its own zone (None: the
/// library's) and whether its calendar was ever set. Unknown branch: default.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub(crate) struct BranchClock {
    pub timezone: Option<String>,
    pub calendar_set_at: Option<time::OffsetDateTime>,
}

/// Assembles a branch's local days from its stored parts.
pub(crate) fn branch_days(
    library: &LibraryTime,
    timezone: Option<&str>,
    calendar_set: bool,
    hours: &[(i32, String, String)],
    closed: Vec<Date>,
) -> BranchDays {
    let zone = library.zone_of(timezone);
    let calendar = if calendar_set {
        OpeningCalendar::new(weekly_from_rows(hours), closed)
    } else {
        OpeningCalendar::always_open()
    };
    BranchDays { zone, calendar }
}

fn weekly_from_rows(hours: &[(i32, String, String)]) -> [Vec<OpeningHours>; 7] {
    let mut weekly: [Vec<OpeningHours>; 7] = Default::default();
    for (weekday, opens, closes) in hours {
        if let (Some(day), Some(opens), Some(closes)) = (
            usize::try_from(*weekday)
                .ok()
                .and_then(|d| weekly.get_mut(d)),
            parse_clock(opens),
            parse_clock(closes),
        ) {
            day.push(OpeningHours { opens, closes });
        }
    }
    for day in &mut weekly {
        day.sort_by_key(|h| h.opens);
    }
    weekly
}

/// A branch's calendar as stored.
#[derive(Debug, Clone)]
pub struct StoredCalendar {
    pub branch: Branch,
    pub calendar: OpeningCalendar,
}

impl Store {
    /// The library-wide time settings (UTC and closed days not counted until
    /// [`Store::with_library_time`] says otherwise).
    pub fn library_time(&self) -> &LibraryTime {
        &self.library_time
    }

    /// This store with the library's time settings from configuration.
    pub fn with_library_time(mut self, library: LibraryTime) -> Self {
        self.library_time = Arc::new(library);
        self
    }

    /// Branches, oldest first (MAIN first), after the keyset position
    /// `(created_at, id)` when given; one more than `limit` is fetched so the
    /// caller can tell whether a page follows.
    pub async fn list_branches(
        &self,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Branch>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            branch_columns!(),
            " FROM branches \
             WHERE ($1 IS NULL OR created_at > $1 OR (created_at = $1 AND id > $2)) ORDER BY created_at, id LIMIT $3"
        );
        Ok(crate::on_pool!(self, pool => sqlx::query_as(SQL)
            .bind(after.map(|(at, _)| at))
            .bind(after.map(|(_, id)| id))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?))
    }

    /// Every branch's `(id, code)`: what a MARC import maps 952 $a codes
    /// with and an export writes them from.
    pub async fn branch_codes(&self) -> Result<Vec<(Uuid, String)>, StoreError> {
        const SQL: &str = "SELECT id, code FROM branches ORDER BY code";
        Ok(crate::on_pool!(self, pool => sqlx::query_as(SQL).fetch_all(pool).await?))
    }

    /// A branch by id.
    pub async fn find_branch(&self, id: Uuid) -> Result<Option<Branch>, StoreError> {
        const SQL: &str = concat!("SELECT ", branch_columns!(), " FROM branches WHERE id = $1");
        Ok(crate::on_pool!(self, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?))
    }

    /// A branch by its code (codes are case-sensitive).
    pub async fn find_branch_by_code(&self, code: &str) -> Result<Option<Branch>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            branch_columns!(),
            " FROM branches WHERE code = $1"
        );
        Ok(
            crate::on_pool!(self, pool => sqlx::query_as(SQL).bind(code).fetch_optional(pool).await?),
        )
    }

    /// Creates a branch, with `audit`'s entries; a taken code is
    /// [`StoreError::Conflict`].
    pub async fn create_branch(
        &self,
        branch: &NewBranch,
        now: OffsetDateTime,
        audit: impl AuditTrail<Branch>,
    ) -> Result<Branch, StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO branches (id, code, name, timezone, address, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ",
            branch_columns!()
        );
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let created: Branch = sqlx::query_as(SQL)
                .bind(Uuid::now_v7())
                .bind(&branch.code)
                .bind(&branch.name)
                .bind(branch.timezone.as_deref())
                .bind(branch.address.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let events = append_audit_trail!(tx, audit, &created);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(created)
        })
    }

    /// Changes a branch, with `audit`'s entries; unknown id →
    /// [`StoreError::NotFound`], a taken code → [`StoreError::Conflict`].
    pub async fn update_branch(
        &self,
        id: Uuid,
        changes: &BranchChanges,
        now: OffsetDateTime,
        audit: impl AuditTrail<Branch>,
    ) -> Result<Branch, StoreError> {
        const SQL: &str = concat!(
            "UPDATE branches SET code = COALESCE($2, code), name = COALESCE($3, name), \
             timezone = CASE WHEN $4 THEN $5 ELSE timezone END, address = CASE WHEN $6 THEN $7 ELSE address END, \
             updated_at = $8 WHERE id = $1 RETURNING ",
            branch_columns!()
        );
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let updated: Branch = sqlx::query_as(SQL)
                .bind(id)
                .bind(changes.code.as_deref())
                .bind(changes.name.as_deref())
                .bind(changes.timezone.is_some())
                .bind(changes.timezone.clone().flatten())
                .bind(changes.address.is_some())
                .bind(changes.address.clone().flatten())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let events = append_audit_trail!(tx, audit, &updated);
            tx.commit().await?;
            crate::audit::log(&events);
            Ok(updated)
        })
    }

    /// A branch with its calendar (open every day when never set).
    pub async fn branch_calendar(&self, id: Uuid) -> Result<Option<StoredCalendar>, StoreError> {
        let Some(branch) = self.find_branch(id).await? else {
            return Ok(None);
        };
        const HOURS: &str =
            "SELECT weekday, opens, closes FROM branch_opening_hours WHERE branch_id = $1";
        const CLOSED: &str =
            "SELECT closed_on FROM branch_closed_dates WHERE branch_id = $1 ORDER BY closed_on";
        let (hours, closed): (Vec<(i32, String, String)>, Vec<Date>) = crate::on_pool!(self, pool => (
            sqlx::query_as(HOURS).bind(id).fetch_all(pool).await?,
            sqlx::query_scalar(CLOSED).bind(id).fetch_all(pool).await?,
        ));
        let calendar = if branch.calendar_set_at.is_some() {
            OpeningCalendar::new(weekly_from_rows(&hours), closed)
        } else {
            OpeningCalendar::always_open()
        };
        Ok(Some(StoredCalendar { branch, calendar }))
    }

    /// Replaces a branch's calendar in one transaction, with `audit`'s
    /// entries. Loans already made
    /// keep their due dates; lateness is counted against the calendar in force
    /// at return.
    pub async fn set_branch_calendar(
        &self,
        id: Uuid,
        calendar: &OpeningCalendar,
        now: OffsetDateTime,
        audit: impl AuditTrail<Uuid>,
    ) -> Result<StoredCalendar, StoreError> {
        const MARK: &str =
            "UPDATE branches SET calendar_set_at = $2, updated_at = $2 WHERE id = $1";
        const CLEAR_HOURS: &str = "DELETE FROM branch_opening_hours WHERE branch_id = $1";
        const CLEAR_CLOSED: &str = "DELETE FROM branch_closed_dates WHERE branch_id = $1";
        const HOURS: &str = "INSERT INTO branch_opening_hours (branch_id, weekday, opens, closes) VALUES ($1, $2, $3, $4)";
        const CLOSED: &str =
            "INSERT INTO branch_closed_dates (branch_id, closed_on) VALUES ($1, $2)";
        crate::on_writer!(self, writer => {
            let mut tx = writer.begin_write().await?;
            let marked = sqlx::query(MARK).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
            if marked == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CLEAR_HOURS).bind(id).execute(&mut *tx).await?;
            sqlx::query(CLEAR_CLOSED).bind(id).execute(&mut *tx).await?;
            for (weekday, intervals) in calendar.weekly().iter().enumerate() {
                for hours in intervals {
                    sqlx::query(HOURS).bind(id).bind(i32::try_from(weekday).unwrap_or(0))
                        .bind(format_clock(hours.opens)).bind(format_clock(hours.closes))
                        .execute(&mut *tx).await?;
                }
            }
            for day in calendar.closed_dates() {
                sqlx::query(CLOSED).bind(id).bind(day).execute(&mut *tx).await?;
            }
            let events = append_audit_trail!(tx, audit, &id);
            tx.commit().await?;
            crate::audit::log(&events);
        });
        self.branch_calendar(id).await?.ok_or(StoreError::NotFound)
    }

    /// The local days of a branch now (zone and calendar), for rules computed
    /// outside a circulation transaction (e.g. a simulator).
    pub async fn branch_days(&self, id: Uuid, from: Date) -> Result<BranchDays, StoreError> {
        let library = self.library_time.clone();
        crate::on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            Ok(load_branch_days!(conn, id, &library, from))
        })
    }
}
