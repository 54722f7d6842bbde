//! SIP2 timestamps: `YYYYMMDDZZZZHHMMSS`.
//!
//! `ZZZZ` is four spaces for the terminal's local time and `   Z` for UTC; other
//! values are kept as they came.

use std::fmt;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Width of a SIP2 timestamp in characters.
pub const DATE_TIME_WIDTH: usize = 18;

const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year][month][day]");
const TIME_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[hour][minute][second]");

/// The four-character zone part of a SIP2 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Zone {
    /// Four spaces: local time.
    Local,
    /// `   Z`: UTC.
    Utc,
    /// Anything else, kept verbatim (four characters).
    Other(String),
}

/// A SIP2 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipDateTime {
    /// Date and time of day, in the zone below.
    pub date_time: PrimitiveDateTime,
    /// The zone the time is expressed in.
    pub zone: Zone,
}

/// A timestamp that is not `YYYYMMDDZZZZHHMMSS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SIP2 timestamp {0:?}")]
pub struct InvalidDateTime(pub String);

impl SipDateTime {
    /// A timestamp in local time.
    pub fn local(date_time: PrimitiveDateTime) -> Self {
        SipDateTime {
            date_time,
            zone: Zone::Local,
        }
    }

    /// A timestamp in UTC.
    pub fn utc(date_time: PrimitiveDateTime) -> Self {
        SipDateTime {
            date_time,
            zone: Zone::Utc,
        }
    }

    /// Writes an instant: UTC instants as `   Z`, any other offset as local time
    /// in that offset (so pass the library's offset to get local times).
    pub fn from_offset(at: OffsetDateTime) -> Self {
        let date_time = PrimitiveDateTime::new(at.date(), at.time().truncate_to_second());
        if at.offset().is_utc() {
            SipDateTime::utc(date_time)
        } else {
            SipDateTime::local(date_time)
        }
    }

    /// The instant this timestamp denotes, reading local (and unrecognised) zones in
    /// `local_offset`.
    pub fn to_offset(&self, local_offset: UtcOffset) -> OffsetDateTime {
        match self.zone {
            Zone::Utc => self.date_time.assume_utc(),
            Zone::Local | Zone::Other(_) => self.date_time.assume_offset(local_offset),
        }
    }

    /// Parses exactly 18 characters.
    pub fn parse(text: &str) -> Result<Self, InvalidDateTime> {
        let invalid = || InvalidDateTime(text.to_owned());
        if text.chars().count() != DATE_TIME_WIDTH || !text.is_char_boundary(8) {
            return Err(invalid());
        }
        let (date_part, rest) = text.split_at(8);
        // The zone may in principle hold non-ASCII characters; split on characters.
        let zone: String = rest.chars().take(4).collect();
        let time_part: String = rest.chars().skip(4).collect();
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !is_digits(date_part) || !is_digits(&time_part) {
            return Err(invalid());
        }
        let date = Date::parse(date_part, DATE_FORMAT).map_err(|_| invalid())?;
        let time = Time::parse(&time_part, TIME_FORMAT).map_err(|_| invalid())?;
        let zone = match zone.as_str() {
            "    " => Zone::Local,
            "   Z" => Zone::Utc,
            _ => Zone::Other(zone),
        };
        Ok(SipDateTime {
            date_time: PrimitiveDateTime::new(date, time),
            zone,
        })
    }

    /// Appends the 18-character form to `out`.
    pub(crate) fn write(&self, out: &mut String) {
        let year = self.date_time.year().clamp(0, 9999);
        let month = u8::from(self.date_time.month());
        let day = self.date_time.day();
        let zone = match &self.zone {
            Zone::Local => "    ".to_owned(),
            Zone::Utc => "   Z".to_owned(),
            Zone::Other(z) => format!("{:>4.4}", z),
        };
        let (h, m, s) = (
            self.date_time.hour(),
            self.date_time.minute(),
            self.date_time.second(),
        );
        out.push_str(&format!(
            "{year:04}{month:02}{day:02}{zone}{h:02}{m:02}{s:02}"
        ));
    }
}

impl fmt::Display for SipDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(DATE_TIME_WIDTH);
        self.write(&mut out);
        f.write_str(&out)
    }
}

impl From<OffsetDateTime> for SipDateTime {
    fn from(at: OffsetDateTime) -> Self {
        SipDateTime::from_offset(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_local_and_utc() {
        let local = SipDateTime::from_offset(datetime!(2024-03-05 14:07:09 +01:00));
        assert_eq!(local.to_string(), "20240305    140709");
        let utc = SipDateTime::from_offset(datetime!(2024-03-05 13:07:09.75 UTC));
        assert_eq!(utc.to_string(), "20240305   Z130709");
    }

    #[test]
    fn parses_zones() {
        let t = SipDateTime::parse("20240305   Z130709").unwrap();
        assert_eq!(t.zone, Zone::Utc);
        assert_eq!(
            t.to_offset(UtcOffset::UTC),
            datetime!(2024-03-05 13:07:09 UTC)
        );
        let t = SipDateTime::parse("20240305    130709").unwrap();
        assert_eq!(t.zone, Zone::Local);
        let off = UtcOffset::from_hms(2, 0, 0).unwrap();
        assert_eq!(t.to_offset(off), datetime!(2024-03-05 13:07:09 +02:00));
        let t = SipDateTime::parse("20240305 EST130709").unwrap();
        assert_eq!(t.zone, Zone::Other(" EST".into()));
        assert_eq!(t.to_string(), "20240305 EST130709");
    }

    #[test]
    fn rejects_bad_timestamps() {
        for bad in [
            "",
            "20240305    13070",
            "20241305    130709",
            "20240230    130709",
            "20240305    250000",
            "2024030a    130709",
            "+2024030    130709",
            "20240305    13070\u{e9}",
            "2024030\u{e9}    130709",
        ] {
            assert!(SipDateTime::parse(bad).is_err(), "{bad:?}");
        }
    }
}
