//! Local days: the library's time zones and the branches' opening calendars.
//!
//! Every whole-day rule (due dates, days late, hold pickup windows, notices,
//! retention) counts *local calendar days of the branch concerned*. This module
//! is the pure arithmetic behind that: a [`Zone`] turns instants into local
//! dates and back, an [`OpeningCalendar`] says which local dates a branch is
//! open, and [`BranchDays`] pairs the two. Nothing here reads a clock or a
//! database.
//!
//! Zones come from the IANA database compiled into the binary (jiff's bundled
//! tzdb), never from the host's zoneinfo, so every machine gives the same
//! answers. The `time` crate is used everywhere else in Carrel; conversions to
//! and from jiff happen only inside this module.

use std::collections::BTreeSet;
use std::fmt;

use time::macros::time;
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset, Weekday};

/// The local time of day at which loans fall due.
pub const END_OF_DAY: Time = time!(23:59:59);

/// How far ahead [`OpeningCalendar::next_open_day`] looks before giving up on
/// a calendar that is (nearly) never open.
const SEARCH_DAYS: i64 = 3 * 366;

/// The most opening intervals one weekday may have.
pub const MAX_INTERVALS_PER_DAY: usize = 8;

/// The most closed dates one calendar may list.
pub const MAX_CLOSED_DATES: usize = 2000;

/// The names of the weekdays in calendars, Monday first.
pub const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// An IANA time-zone name that the bundled database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?} (expected an IANA name such as Europe/Paris)")]
pub struct UnknownZone(pub String);

/// A time zone of the IANA database, by name.
#[derive(Clone)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
    name: String,
    utc: bool,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Zone").field(&self.name).finish()
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Zone {
    /// Coordinated Universal Time, the default library zone.
    pub fn utc() -> Zone {
        Zone {
            tz: jiff::tz::TimeZone::UTC,
            name: "UTC".to_owned(),
            utc: true,
        }
    }

    /// The zone called `name` in the bundled IANA database (e.g.
    /// `America/New_York`). The lookup ignores ASCII case; [`Zone::name`] is
    /// then the database's own spelling.
    pub fn named(name: &str) -> Result<Zone, UnknownZone> {
        let unknown = || UnknownZone(name.to_owned());
        if name.is_empty() || name.len() > 64 || name.trim() != name {
            return Err(unknown());
        }
        if name.eq_ignore_ascii_case("UTC") {
            return Ok(Zone::utc());
        }
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| unknown())?;
        let canonical = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Zone {
            tz,
            name: canonical,
            utc: false,
        })
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local calendar date of an instant. At the very ends of the
    /// representable range it falls back to the UTC date rather than failing.
    pub fn local_date(&self, instant: OffsetDateTime) -> Date {
        if self.utc {
            return utc_date(instant);
        }
        match jiff::Timestamp::from_second(instant.unix_timestamp()) {
            Ok(ts) => {
                let local = self.tz.to_datetime(ts).date();
                from_jiff_date(local).unwrap_or_else(|| utc_date(instant))
            }
            Err(_) => utc_date(instant),
        }
    }

    /// The instant (in UTC, whole seconds) at which the local clock shows
    /// `at` on `day`. A time skipped by a DST change moves forward past the
    /// gap; a time that happens twice is taken the second time when `later`,
    /// else the first. Out of range, it falls back to UTC.
    pub fn instant_at(&self, day: Date, at: Time, later: bool) -> OffsetDateTime {
        let as_utc = || day.with_time(at).assume_utc();
        if self.utc {
            return as_utc();
        }
        let Some(civil) = to_jiff_date(day) else {
            return as_utc();
        };
        let civil = civil.at(
            i8::try_from(at.hour()).unwrap_or(0),
            i8::try_from(at.minute()).unwrap_or(0),
            i8::try_from(at.second()).unwrap_or(0),
            0,
        );
        let ambiguous = self.tz.to_ambiguous_timestamp(civil);
        let resolved = if later {
            ambiguous.later()
        } else {
            ambiguous.compatible()
        };
        resolved
            .ok()
            .and_then(|ts| OffsetDateTime::from_unix_timestamp(ts.as_second()).ok())
            .unwrap_or_else(as_utc)
    }

    /// 23:59:59 local time of `day`, in UTC: the moment a loan due that day
    /// falls due. Should 23:59:59 happen twice (a DST change at midnight),
    /// the later one.
    pub fn end_of_day(&self, day: Date) -> OffsetDateTime {
        self.instant_at(day, END_OF_DAY, true)
    }

    /// The local wall-clock time of an instant (whole seconds).
    pub fn local_time(&self, instant: OffsetDateTime) -> Time {
        if self.utc {
            return instant.to_offset(UtcOffset::UTC).time();
        }
        match jiff::Timestamp::from_second(instant.unix_timestamp()) {
            Ok(ts) => {
                let dt = self.tz.to_datetime(ts);
                Time::from_hms(
                    u8::try_from(dt.hour()).unwrap_or(0),
                    u8::try_from(dt.minute()).unwrap_or(0),
                    u8::try_from(dt.second()).unwrap_or(0),
                )
                .unwrap_or(Time::MIDNIGHT)
            }
            Err(_) => instant.to_offset(UtcOffset::UTC).time(),
        }
    }
}

/// The UTC calendar date of an instant, whatever its offset; clamped to
/// [`Date::MIN`] or [`Date::MAX`] at the ends of the representable range.
pub(crate) fn utc_date(instant: OffsetDateTime) -> Date {
    match instant.checked_to_offset(UtcOffset::UTC) {
        Some(utc) => utc.date(),
        // A positive offset moves the UTC time earlier, so it can only underflow.
        None if instant.offset().is_positive() => Date::MIN,
        None => Date::MAX,
    }
}

fn from_jiff_date(d: jiff::civil::Date) -> Option<Date> {
    let month = Month::try_from(u8::try_from(d.month()).ok()?).ok()?;
    Date::from_calendar_date(i32::from(d.year()), month, u8::try_from(d.day()).ok()?).ok()
}

fn to_jiff_date(d: Date) -> Option<jiff::civil::Date> {
    let year = i16::try_from(d.year()).ok()?;
    jiff::civil::Date::new(
        year,
        i8::try_from(u8::from(d.month())).ok()?,
        i8::try_from(d.day()).ok()?,
    )
    .ok()
}

/// One opening interval of a weekday, local time, `opens < closes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningHours {
    /// When the branch opens.
    pub opens: Time,
    /// When it closes (after `opens`, the same day).
    pub closes: Time,
}

/// Which local dates a branch is open.
///
/// A calendar that was never set is open every day. Once set, a weekday with
/// no opening intervals is closed, and so is every listed closed date.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpeningCalendar {
    weekly: Option<[Vec<OpeningHours>; 7]>,
    closed_dates: BTreeSet<Date>,
}

/// A field of a calendar that failed validation, with the reason.
pub type CalendarProblem = (String, &'static str);

impl OpeningCalendar {
    /// The calendar of a branch that never set one: open every day.
    pub fn always_open() -> Self {
        Self::default()
    }

    /// A calendar from weekly hours (Monday first) and closed dates.
    pub fn new(
        weekly: [Vec<OpeningHours>; 7],
        closed_dates: impl IntoIterator<Item = Date>,
    ) -> Self {
        OpeningCalendar {
            weekly: Some(weekly),
            closed_dates: closed_dates.into_iter().collect(),
        }
    }

    /// Parses and validates a calendar as the API writes it: per weekday
    /// (Monday first) a list of `["HH:MM", "HH:MM"]` intervals, and closed
    /// dates as `YYYY-MM-DD`. Every problem is reported, named like the JSON
    /// field (`weekly.mon[0]`, `closed_dates[3]`).
    pub fn parse(
        weekly: &[Vec<[String; 2]>; 7],
        closed_dates: &[String],
    ) -> Result<Self, Vec<CalendarProblem>> {
        let mut problems = Vec::new();
        let mut days: [Vec<OpeningHours>; 7] = Default::default();
        for (index, intervals) in weekly.iter().enumerate() {
            let day = WEEKDAY_NAMES[index];
            if intervals.len() > MAX_INTERVALS_PER_DAY {
                problems.push((format!("weekly.{day}"), "at most 8 intervals a day"));
                continue;
            }
            for (n, [opens, closes]) in intervals.iter().enumerate() {
                match (parse_clock(opens), parse_clock(closes)) {
                    (Some(opens), Some(closes)) if opens < closes => {
                        days[index].push(OpeningHours { opens, closes })
                    }
                    (Some(_), Some(_)) => problems.push((
                        format!("weekly.{day}[{n}]"),
                        "the opening time must be before the closing time",
                    )),
                    _ => problems.push((
                        format!("weekly.{day}[{n}]"),
                        "times must be HH:MM (00:00 to 23:59)",
                    )),
                }
            }
            days[index].sort_by_key(|h| h.opens);
            if days[index].windows(2).any(|w| w[1].opens < w[0].closes) {
                problems.push((format!("weekly.{day}"), "intervals must not overlap"));
            }
        }
        if closed_dates.len() > MAX_CLOSED_DATES {
            problems.push(("closed_dates".to_owned(), "at most 2000 dates"));
        }
        let mut closed = BTreeSet::new();
        for (n, text) in closed_dates.iter().enumerate().take(MAX_CLOSED_DATES) {
            match parse_date(text) {
                Some(date) => {
                    closed.insert(date);
                }
                None => problems.push((format!("closed_dates[{n}]"), "must be a date YYYY-MM-DD")),
            }
        }
        if problems.is_empty() {
            Ok(Self::new(days, closed))
        } else {
            Err(problems)
        }
    }

    /// Whether the calendar was ever set (an unset one is open every day).
    pub fn is_set(&self) -> bool {
        self.weekly.is_some()
    }

    /// The opening intervals of each weekday (Monday first); every day
    /// `00:00`–`23:59` for a calendar never set.
    pub fn weekly(&self) -> [Vec<OpeningHours>; 7] {
        match &self.weekly {
            Some(days) => days.clone(),
            None => std::array::from_fn(|_| {
                vec![OpeningHours {
                    opens: Time::MIDNIGHT,
                    closes: time!(23:59),
                }]
            }),
        }
    }

    /// The closed dates, in order.
    pub fn closed_dates(&self) -> impl Iterator<Item = Date> + '_ {
        self.closed_dates.iter().copied()
    }

    fn weekday_open(&self, weekday: Weekday) -> bool {
        match &self.weekly {
            None => true,
            Some(days) => !days[usize::from(weekday.number_days_from_monday())].is_empty(),
        }
    }

    /// Whether the branch is open on the local date `day`.
    pub fn is_open(&self, day: Date) -> bool {
        self.weekday_open(day.weekday()) && !self.closed_dates.contains(&day)
    }

    /// `day` itself when open, else the first open day after it. A calendar
    /// with no open day in the next three years leaves `day` as it is (a
    /// due date is never pushed into the unknown).
    pub fn next_open_day(&self, day: Date) -> Date {
        let mut candidate = day;
        for _ in 0..SEARCH_DAYS {
            if self.is_open(candidate) {
                return candidate;
            }
            match candidate.next_day() {
                Some(next) => candidate = next,
                None => return day,
            }
        }
        day
    }

    /// The `n`-th open day after `day` (`day` itself not counted; `n = 0`
    /// gives `day`). Without enough open days in sight it counts calendar
    /// days instead.
    pub fn nth_open_day_after(&self, day: Date, n: u32) -> Date {
        let mut found = 0;
        let mut candidate = day;
        let limit = i64::from(n) + SEARCH_DAYS;
        for _ in 0..limit {
            if found == n {
                return candidate;
            }
            match candidate.next_day() {
                Some(next) => candidate = next,
                None => return candidate,
            }
            if self.is_open(candidate) {
                found += 1;
            }
        }
        if found == n {
            candidate
        } else {
            day.saturating_add(Duration::days(i64::from(n)))
        }
    }

    /// How many days `d` with `after < d <= through` are closed (0 when
    /// `through <= after`). Arithmetic over whole weeks, so any span is cheap.
    pub fn closed_days_between(&self, after: Date, through: Date) -> u32 {
        let span = (through - after).whole_days();
        if span <= 0 {
            return 0;
        }
        let mut closed: i64 = 0;
        if self.weekly.is_some() {
            let closed_weekdays = (0..7u8)
                .filter(|n| !self.weekday_open(weekday_from_monday(*n)))
                .count() as i64;
            closed += (span / 7) * closed_weekdays;
            let mut day = after;
            for _ in 0..(span % 7) {
                day = day.saturating_add(Duration::days(1));
                if !self.weekday_open(day.weekday()) {
                    closed += 1;
                }
            }
        }
        // Closed dates on weekdays that are open anyway (the others are counted).
        if let Some(first) = after.next_day() {
            closed += self
                .closed_dates
                .range(first..=through)
                .filter(|d| self.weekday_open(d.weekday()))
                .count() as i64;
        }
        u32::try_from(closed).unwrap_or(u32::MAX)
    }
}

fn weekday_from_monday(n: u8) -> Weekday {
    let mut day = Weekday::Monday;
    for _ in 0..n {
        day = day.next();
    }
    day
}

/// `HH:MM`, 00:00 to 23:59.
pub fn parse_clock(text: &str) -> Option<Time> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let hour: u8 = text.get(0..2)?.parse().ok()?;
    let minute: u8 = text.get(3..5)?.parse().ok()?;
    if !text[0..2].bytes().all(|b| b.is_ascii_digit())
        || !text[3..5].bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Time::from_hms(hour, minute, 0).ok()
}

/// `HH:MM` of a time.
pub fn format_clock(at: Time) -> String {
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// A `YYYY-MM-DD` date (years 1000 to 9999).
pub fn parse_date(text: &str) -> Option<Date> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    if year < 1000 {
        return None;
    }
    Date::from_calendar_date(year, month, day).ok()
}

/// `YYYY-MM-DD` of a date.
pub fn format_date(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The local days of one branch: its time zone (its own, or the library's)
/// and its opening calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchDays {
    /// The zone whose calendar days count.
    pub zone: Zone,
    /// The days it is open.
    pub calendar: OpeningCalendar,
}

impl BranchDays {
    /// UTC, open every day: the rules of a library that configured nothing.
    pub fn utc_always_open() -> Self {
        BranchDays {
            zone: Zone::utc(),
            calendar: OpeningCalendar::always_open(),
        }
    }
}

/// Loans returned before this instant have been kept long enough. A retention
/// of whole days counts local calendar days of `zone`: a loan returned on day
/// R is anonymised when local day R + retention + 1 begins (every day of the
/// period is a whole day). Other retentions count exactly.
pub fn retention_cutoff(zone: &Zone, now: OffsetDateTime, retention: Duration) -> OffsetDateTime {
    let Some(cutoff) = now.checked_sub(retention) else {
        return OffsetDateTime::UNIX_EPOCH;
    };
    if retention.whole_seconds() % 86_400 != 0 {
        return cutoff;
    }
    zone.instant_at(zone.local_date(cutoff), Time::MIDNIGHT, false)
}

/// Whether a loan due on local day `due` of a branch in `zone` is "due soon"
/// at `now`: its due day is at most `days` local days away (0: due today).
pub fn is_due_soon(zone: &Zone, due: Date, now: OffsetDateTime, days: u32) -> bool {
    let today = zone.local_date(now);
    due >= today && (due - today).whole_days() <= i64::from(days)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

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

    #[test]
    fn due_soon_counts_local_days_of_the_branch() {
        let sydney = Zone::named("Australia/Sydney").unwrap();
        // 2027-03-09 20:00 UTC is already 10 March in Sydney (UTC+11).
        let now = datetime!(2027-03-09 20:00 UTC);
        assert!(is_due_soon(&sydney, date!(2027 - 03 - 10), now, 2), "today");
        assert!(
            is_due_soon(&sydney, date!(2027 - 03 - 12), now, 2),
            "in two days"
        );
        assert!(
            !is_due_soon(&sydney, date!(2027 - 03 - 13), now, 2),
            "in three"
        );
        assert!(
            !is_due_soon(&sydney, date!(2027 - 03 - 09), now, 2),
            "yesterday: overdue"
        );
        // The same instant in UTC is still the 9th: the 12th is three days away.
        assert!(!is_due_soon(&Zone::utc(), date!(2027 - 03 - 12), now, 2));
    }

    fn weekdays_only() -> OpeningCalendar {
        let open = vec![OpeningHours {
            opens: time!(09:00),
            closes: time!(17:00),
        }];
        OpeningCalendar::new(
            [
                open.clone(),
                open.clone(),
                open.clone(),
                open.clone(),
                open,
                vec![],
                vec![],
            ],
            [date!(2026 - 12 - 25)],
        )
    }

    #[test]
    fn zone_names_are_checked_against_the_bundled_database() {
        assert_eq!(
            Zone::named("America/New_York").unwrap().name(),
            "America/New_York"
        );
        assert_eq!(Zone::named("utc").unwrap(), Zone::utc());
        for bad in ["", "Mars/Olympus_Mons", " Europe/Paris", "../etc/passwd"] {
            assert!(Zone::named(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_dates_follow_the_zone() {
        let ny = Zone::named("America/New_York").unwrap();
        let sydney = Zone::named("Australia/Sydney").unwrap();
        let at = datetime!(2026-03-01 02:00 UTC);
        assert_eq!(ny.local_date(at), date!(2026 - 02 - 28));
        assert_eq!(sydney.local_date(at), date!(2026 - 03 - 01));
        assert_eq!(Zone::utc().local_date(at), date!(2026 - 03 - 01));
    }

    #[test]
    fn end_of_day_is_local_23_59_59_across_dst() {
        let ny = Zone::named("America/New_York").unwrap();
        // Winter (EST, -5) and summer (EDT, -4), either side of 8 March 2026.
        assert_eq!(
            ny.end_of_day(date!(2026 - 03 - 07)),
            datetime!(2026-03-08 04:59:59 UTC)
        );
        assert_eq!(
            ny.end_of_day(date!(2026 - 03 - 08)),
            datetime!(2026-03-09 03:59:59 UTC)
        );
        assert_eq!(
            ny.end_of_day(date!(2026 - 11 - 01)),
            datetime!(2026-11-02 04:59:59 UTC)
        );
        let sydney = Zone::named("Australia/Sydney").unwrap();
        // Sydney leaves daylight time (+11 → +10) on 5 April 2026 and enters it on 4 October.
        assert_eq!(
            sydney.end_of_day(date!(2026 - 04 - 04)),
            datetime!(2026-04-04 12:59:59 UTC)
        );
        assert_eq!(
            sydney.end_of_day(date!(2026 - 04 - 05)),
            datetime!(2026-04-05 13:59:59 UTC)
        );
        assert_eq!(
            sydney.end_of_day(date!(2026 - 10 - 04)),
            datetime!(2026-10-04 12:59:59 UTC)
        );
        for day in [
            date!(2026 - 03 - 08),
            date!(2026 - 04 - 05),
            date!(2026 - 10 - 04),
        ] {
            for zone in [&ny, &sydney] {
                let end = zone.end_of_day(day);
                assert_eq!(zone.local_date(end), day);
                assert_eq!(zone.local_time(end), END_OF_DAY);
                assert_ne!(zone.local_date(end + Duration::seconds(1)), day);
            }
        }
    }

    #[test]
    fn times_in_a_dst_gap_move_past_it() {
        let ny = Zone::named("America/New_York").unwrap();
        // 02:30 does not exist on 8 March 2026 in New York.
        let at = ny.instant_at(date!(2026 - 03 - 08), time!(02:30), false);
        assert_eq!(at, datetime!(2026-03-08 07:30 UTC));
    }

    #[test]
    fn a_calendar_never_set_is_always_open() {
        let always = OpeningCalendar::always_open();
        assert!(!always.is_set());
        assert!(always.is_open(date!(2026 - 12 - 25)));
        assert_eq!(
            always.next_open_day(date!(2026 - 12 - 25)),
            date!(2026 - 12 - 25)
        );
        assert_eq!(
            always.closed_days_between(date!(2026 - 01 - 01), date!(2027 - 01 - 01)),
            0
        );
        assert_eq!(
            always.nth_open_day_after(date!(2026 - 01 - 01), 7),
            date!(2026 - 01 - 08)
        );
    }

    #[test]
    fn closed_days_move_to_the_next_open_day() {
        let cal = weekdays_only();
        // Friday 25 December 2026 is a closed date, then a weekend.
        assert!(!cal.is_open(date!(2026 - 12 - 25)));
        assert_eq!(
            cal.next_open_day(date!(2026 - 12 - 25)),
            date!(2026 - 12 - 28)
        );
        assert_eq!(
            cal.next_open_day(date!(2026 - 12 - 24)),
            date!(2026 - 12 - 24)
        );
        // Thursday 24th + 2 open days: Monday 28th, Tuesday 29th.
        assert_eq!(
            cal.nth_open_day_after(date!(2026 - 12 - 24), 2),
            date!(2026 - 12 - 29)
        );
    }

    #[test]
    fn closed_days_between_counts_weekends_and_dates_once() {
        let cal = weekdays_only();
        // Thu 24 Dec (exclusive) .. Tue 29 Dec: Fri 25 (closed date), Sat, Sun.
        assert_eq!(
            cal.closed_days_between(date!(2026 - 12 - 24), date!(2026 - 12 - 29)),
            3
        );
        // A whole year: 104 weekend days (2027 has 52 full weeks + Fri 31 Dec) and no closed date.
        assert_eq!(
            cal.closed_days_between(date!(2026 - 12 - 31), date!(2027 - 12 - 31)),
            104
        );
        // Brute force agrees over many spans.
        let start = date!(2026 - 12 - 01);
        for len in 0..60 {
            let end = start + Duration::days(len);
            let mut brute = 0;
            let mut d = start;
            while d < end {
                d = d.next_day().unwrap();
                if !cal.is_open(d) {
                    brute += 1;
                }
            }
            assert_eq!(cal.closed_days_between(start, end), brute, "{len}");
        }
    }

    #[test]
    fn a_calendar_never_open_does_not_loop() {
        let cal = OpeningCalendar::new(Default::default(), []);
        assert_eq!(
            cal.next_open_day(date!(2026 - 01 - 01)),
            date!(2026 - 01 - 01)
        );
        assert_eq!(
            cal.nth_open_day_after(date!(2026 - 01 - 01), 3),
            date!(2026 - 01 - 04)
        );
    }

    #[test]
    fn calendars_are_validated_field_by_field() {
        let mut weekly: [Vec<[String; 2]>; 7] = Default::default();
        weekly[0] = vec![
            ["09:00".into(), "12:00".into()],
            ["13:00".into(), "17:00".into()],
        ];
        let ok = OpeningCalendar::parse(&weekly, &["2026-12-25".into()]).unwrap();
        assert!(ok.is_open(date!(2026 - 12 - 21)));
        assert!(!ok.is_open(date!(2026 - 12 - 22)));
        weekly[1] = vec![["17:00".into(), "09:00".into()]];
        weekly[2] = vec![["9:00".into(), "25:00".into()]];
        weekly[3] = vec![
            ["09:00".into(), "12:00".into()],
            ["11:00".into(), "13:00".into()],
        ];
        let problems =
            OpeningCalendar::parse(&weekly, &["2026-02-30".into(), "soon".into()]).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "weekly.tue[0]",
                "weekly.wed[0]",
                "weekly.thu",
                "closed_dates[0]",
                "closed_dates[1]"
            ]
        );
    }

    #[test]
    fn clock_and_date_formats_round_trip() {
        assert_eq!(parse_clock("09:05"), Some(time!(09:05)));
        assert_eq!(format_clock(time!(09:05)), "09:05");
        for bad in ["9:05", "24:00", "09:60", "+9:05", "09-05", "0a:00"] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2028-02-29"), Some(date!(2028 - 02 - 29)));
        assert_eq!(format_date(date!(2028 - 02 - 29)), "2028-02-29");
        for bad in ["2026-2-01", "2026-13-01", "0999-01-01", "2026-01-01T00"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
