//! Parsers for the value syntaxes configuration uses: durations (`90s`, `15m`,
//! `12h`, `30d`), booleans, rates (`5/min`), CIDR lists.

use std::time::Duration;

/// Parses `500ms`, `90s`, `15m`, `12h` or `30d` (a whole number and a unit).
pub fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{value}` needs a unit: ms, s, m, h or d (e.g. 15m)"))?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a duration like 90s, 15m, 12h or 30d"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
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
        .ok_or_else(|| format!("`{value}` is too long"))
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
