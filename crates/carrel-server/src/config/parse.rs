//! Parsers for the value syntaxes configuration uses: durations (`90s`, `15m`,
//! `12h`, `30d`), booleans, rates (`5/min`), CIDR lists.

use std::time::Duration;

/// The longest duration any setting takes: 100 years. Longer ones are refused while
/// parsing, because every duration ends up added to a timestamp (token expiry, lockout,
/// retention) and one past year 9999 would panic there.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

/// Parses `500ms`, `90s`, `15m`, `12h` or `30d` (a whole number and a unit), at most
/// [`MAX_DURATION`].
pub fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{value}` needs a unit: ms, s, m, h or d (e.g. 15m)"))?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a duration like 90s, 15m, 12h or 30d"))?;
    let too_long = || format!("`{value}` is too long (at most 36500d)");
    let seconds = match unit {
        "ms" => {
            return Some(Duration::from_millis(number))
                .filter(|d| *d <= MAX_DURATION)
                .ok_or_else(too_long);
        }
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{value}` has an unknown unit `{unit}` (use ms, s, m, h or d)"
            ));
        }
    };
    number
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(too_long)
}

/// Parses `true/false`, `1/0`, `yes/no`, `on/off`.
pub fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("`{other}` is not a boolean (true or false)")),
    }
}

/// A rate limit: `count` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.period.as_secs();
        let unit = match secs {
            1 => "s",
            60 => "min",
            3_600 => "hour",
            86_400 => "day",
            _ => return write!(f, "{}/{}s", self.count, secs),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Parses `5/min`; periods `s`, `min`, `hour`, `day`.
pub fn rate(value: &str) -> Result<Rate, String> {
    let (count, period) = value
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("`{value}` is not a rate like 5/min"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("`{value}`: the count must be a whole number"))?;
    if count == 0 {
        return Err(format!("`{value}`: the count must be at least 1"));
    }
    let period = match period.trim() {
        "s" | "sec" | "second" => 1,
        "min" | "minute" => 60,
        "hour" | "h" => 3_600,
        "day" | "d" => 86_400,
        other => {
            return Err(format!(
                "`{value}`: unknown period `{other}` (use s, min, hour or day)"
            ));
        }
    };
    Ok(Rate {
        count,
        period: Duration::from_secs(period),
    })
}

/// Splits a comma-separated list, dropping empty entries.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A whole number within `range`.
pub fn number<T>(range: std::ops::RangeInclusive<T>) -> impl Fn(&str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    move |v| {
        let value = v
            .parse::<T>()
            .map_err(|_| format!("`{v}` is not a whole number"))?;
        if !range.contains(&value) {
            return Err(format!(
                "{value} is out of range ({}..={})",
                range.start(),
                range.end()
            ));
        }
        Ok(value)
    }
}

/// Any text, as it is.
pub fn text(value: &str) -> Result<String, String> {
    Ok(value.to_owned())
}

/// A path, as it is.
pub fn path(value: &str) -> Result<std::path::PathBuf, String> {
    Ok(std::path::PathBuf::from(value))
}

/// A comma-separated list of paths.
pub fn paths(value: &str) -> Result<Vec<std::path::PathBuf>, String> {
    Ok(list(value)
        .into_iter()
        .map(std::path::PathBuf::from)
        .collect())
}

/// A socket address; `example` shows the expected form in the message.
pub fn address(example: &'static str) -> impl Fn(&str) -> Result<std::net::SocketAddr, String> {
    move |v| {
        v.parse()
            .map_err(|_| format!("`{v}` is not an address like {example}"))
    }
}

/// A duration of at least `min` (`message` otherwise).
pub fn at_least(min: Duration, message: &'static str) -> impl Fn(&Duration) -> Result<(), String> {
    move |d| {
        if *d < min {
            Err(message.to_owned())
        } else {
            Ok(())
        }
    }
}

/// Renders a duration in the same syntax [`duration`] reads.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 && !d.is_zero() {
        format!("{}ms", d.as_millis())
    } else if secs != 0 && secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else if secs != 0 && secs.is_multiple_of(3_600) {
        format!("{}h", secs / 3_600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(duration("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "15", "m", "1.5h", "-1s", "10w", "99999999999999999999d"] {
            assert!(duration(bad).is_err(), "{bad} should be refused");
        }
    }

    /// Regression (found by `accepted_durations_fit_every_timestamp`): `100000000d`
    /// used to be accepted, and as CARREL_REFRESH_TOKEN_TTL or CARREL_LOCKOUT_DURATION
    /// made every login panic adding it to the current time.
    #[test]
    fn durations_past_a_century_are_refused() {
        for bad in [
            "100000000d",
            "36501d",
            "18446744073709551615s",
            "18446744073709551615ms",
        ] {
            assert!(duration(bad).unwrap_err().contains("too long"), "{bad}");
        }
        assert_eq!(duration("36500d"), Ok(MAX_DURATION));
        let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let _ = now + crate::config::to_time(MAX_DURATION);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const UNITS: [(&str, u64); 6] = [
            ("ms", 0),
            ("s", 1),
            ("m", 60),
            ("min", 60),
            ("h", 3_600),
            ("d", 86_400),
        ];

        fn any_value() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,24}",
                "[ ]?[0-9]{0,25}[ ]?(ms|s|m|min|h|d|w|/|sec|hour|day|true|off)?[ ]?",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any value is a duration or a message, never a panic; an accepted one
            /// is written back (`format_duration`) as text that reads the same.
            #[test]
            fn any_duration_text_is_refused_or_round_trips(raw in any_value()) {
                if let Ok(d) = duration(&raw) {
                    prop_assert!(d <= MAX_DURATION);
                    prop_assert_eq!(duration(&format_duration(d)), Ok(d));
                }
            }

            /// What is written is read back exactly, for every duration settings hold
            /// (whole milliseconds up to the maximum).
            #[test]
            fn format_then_parse_round_trip(ms in 0u64..=MAX_DURATION.as_millis() as u64) {
                let d = Duration::from_millis(ms);
                prop_assert_eq!(duration(&format_duration(d)), Ok(d));
            }

            /// `<n><unit>` is exactly n units when that fits, and a clean refusal when
            /// it does not, however many digits n has.
            #[test]
            fn numbers_of_any_size_are_exact_or_refused(
                n in prop_oneof![any::<u64>(), 0u64..100_000, 0u64..100_000_000_000],
                unit in 0..UNITS.len(),
                extra_digits in "[0-9]{0,3}",
            ) {
                let (name, seconds) = UNITS[unit];
                let text = format!("{n}{extra_digits}{name}");
                let expected = format!("{n}{extra_digits}").parse::<u64>().ok().and_then(|n| {
                    if seconds == 0 {
                        Some(Duration::from_millis(n))
                    } else {
                        n.checked_mul(seconds).map(Duration::from_secs)
                    }
                }).filter(|d| *d <= MAX_DURATION);
                match expected {
                    Some(d) => prop_assert_eq!(duration(&text), Ok(d)),
                    None => prop_assert!(duration(&text).is_err()),
                }
            }

            /// Every accepted duration can be added to any time a server runs at
            /// (what token expiry, lockout and retention do) without overflowing.
            #[test]
            fn accepted_durations_fit_every_timestamp(
                n in prop_oneof![any::<u64>(), 0u64..100_000_000],
                unit in 0..UNITS.len(),
                now in 0i64..=4_102_444_800, // 1970 to 2100
            ) {
                let (name, _) = UNITS[unit];
                if let Ok(d) = duration(&format!("{n}{name}")) {
                    let now = time::OffsetDateTime::from_unix_timestamp(now).unwrap();
                    prop_assert!(now.checked_add(crate::config::to_time(d)).is_some());
                    prop_assert!(now.checked_sub(crate::config::to_time(d)).is_some());
                    prop_assert!(std::time::Instant::now().checked_add(d).is_some());
                }
            }

            /// Any value is a rate or a message; an accepted rate is written back
            /// (`Display`) as text that reads the same; counts of any size are exact or
            /// refused, never wrapped.
            #[test]
            fn rates_are_refused_or_round_trip(
                raw in prop_oneof![any_value(), "[ ]?[0-9]{0,12}[ ]?/[ ]?(s|sec|second|min|minute|hour|h|day|d|week)[ ]?"],
                count in any::<u64>(),
                period in prop::sample::select(vec![("s", 1u64), ("sec", 1), ("min", 60), ("hour", 3_600), ("h", 3_600), ("day", 86_400), ("d", 86_400)]),
            ) {
                if let Ok(r) = rate(&raw) {
                    prop_assert!(r.count >= 1);
                    prop_assert_eq!(rate(&r.to_string()), Ok(r));
                }
                let parsed = rate(&format!("{count}/{}", period.0));
                match u32::try_from(count) {
                    Ok(c) if c >= 1 => {
                        let r = parsed.unwrap();
                        prop_assert_eq!((r.count, r.period), (c, Duration::from_secs(period.1)));
                        prop_assert_eq!(rate(&r.to_string()), Ok(r));
                    }
                    _ => prop_assert!(parsed.is_err()),
                }
            }

            /// Any value is a boolean or a message; what is written reads back.
            #[test]
            fn booleans_are_refused_or_round_trip(
                raw in any_value(),
                word in prop::sample::select(vec![("true", true), ("1", true), ("yes", true), ("on", true), ("false", false), ("0", false), ("no", false), ("off", false)]),
                upper in any::<bool>(),
            ) {
                if let Ok(b) = boolean(&raw) {
                    prop_assert_eq!(boolean(&b.to_string()), Ok(b));
                }
                let text = if upper { word.0.to_uppercase() } else { word.0.to_owned() };
                prop_assert_eq!(boolean(&format!(" {text} ")), Ok(word.1));
            }
        }
    }

    #[test]
    fn durations_round_trip() {
        for text in ["90s", "15m", "12h", "30d", "250ms", "0s"] {
            assert_eq!(format_duration(duration(text).unwrap()), text);
        }
    }

    #[test]
    fn rates() {
        assert_eq!(rate("5/min").unwrap().count, 5);
        assert_eq!(rate("3/hour").unwrap().period, Duration::from_secs(3_600));
        assert_eq!(rate("300/min").unwrap().to_string(), "300/min");
        for bad in ["5", "0/min", "x/min", "5/week"] {
            assert!(rate(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("off"), Ok(false));
        assert!(boolean("maybe").is_err());
    }
}
