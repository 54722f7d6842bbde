//! Money amounts (`BV`, `CC`) as SIP2 writes them: decimal text such as `12.50`.

/// Reads an amount into minor units (cents): `12`, `12.5`, `12.50` → 1250. Rejects
/// signs, more than two decimals, other characters and values beyond `i64`.
pub fn parse_amount(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    if fraction.len() > 2 || whole.len() > 16 {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let cents: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(cents)
}

/// Writes minor units as an amount with two decimals: 1250 → `12.50`, -5 → `-0.05`.
pub fn format_amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_amounts() {
        assert_eq!(parse_amount("12.50"), Some(1250));
        assert_eq!(parse_amount("12.5"), Some(1250));
        assert_eq!(parse_amount("12"), Some(1200));
        assert_eq!(parse_amount(" 0.05 "), Some(5));
        assert_eq!(parse_amount(".5"), Some(50));
        for bad in [
            "",
            ".",
            "-1.00",
            "1.005",
            "1,00",
            "abc",
            "1.2.3",
            "99999999999999999",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_amounts() {
        assert_eq!(format_amount(1250), "12.50");
        assert_eq!(format_amount(5), "0.05");
        assert_eq!(format_amount(-5), "-0.05");
        assert_eq!(format_amount(i64::MIN), "-92233720368547758.08");
    }
}
