//! ISBN validation: ISBN-10 or ISBN-13, hyphens and spaces allowed, checksum
//! verified, always returned as ISBN-13 (the form stored and compared).

/// Why an ISBN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IsbnError {
    /// Not 10 or 13 digits (an ISBN-10 may end in `X`).
    #[error("must be an ISBN-10 or ISBN-13")]
    Format,
    /// The check digit does not match.
    #[error("has an invalid check digit")]
    Checksum,
}

/// Normalises `raw` to a bare 13-digit ISBN.
pub fn normalize_isbn(raw: &str) -> Result<String, IsbnError> {
    let compact: Vec<char> = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    match compact.len() {
        10 => isbn10_to_13(&compact),
        13 => {
            if !compact.iter().all(char::is_ascii_digit)
                || !(compact.starts_with(&['9', '7', '8']) || compact.starts_with(&['9', '7', '9']))
            {
                return Err(IsbnError::Format);
            }
            let digits: Vec<u32> = compact.iter().filter_map(|c| c.to_digit(10)).collect();
            if isbn13_check(&digits[..12]) != digits[12] {
                return Err(IsbnError::Checksum);
            }
            Ok(compact.into_iter().collect())
        }
        _ => Err(IsbnError::Format),
    }
}

fn isbn10_to_13(chars: &[char]) -> Result<String, IsbnError> {
    let mut values = Vec::with_capacity(10);
    for (i, c) in chars.iter().enumerate() {
        match c {
            '0'..='9' => values.push(c.to_digit(10).unwrap_or(0)),
            'X' | 'x' if i == 9 => values.push(10),
            _ => return Err(IsbnError::Format),
        }
    }
    let sum: u32 = values
        .iter()
        .enumerate()
        .map(|(i, v)| (10 - i as u32) * v)
        .sum();
    if !sum.is_multiple_of(11) {
        return Err(IsbnError::Checksum);
    }
    let mut digits: Vec<u32> = vec![9, 7, 8];
    digits.extend_from_slice(&values[..9]);
    let check = isbn13_check(&digits);
    digits.push(check);
    Ok(digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect())
}

fn isbn13_check(first12: &[u32]) -> u32 {
    let sum: u32 = first12
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn isbn13_with_and_without_hyphens() {
        assert_eq!(
            normalize_isbn("978-0-306-40615-7").unwrap(),
            "9780306406157"
        );
        assert_eq!(normalize_isbn("9780306406157").unwrap(), "9780306406157");
        assert_eq!(
            normalize_isbn("979-10-90636-07-1").unwrap(),
            "9791090636071"
        );
    }

    #[test]
    fn isbn10_becomes_isbn13() {
        assert_eq!(normalize_isbn("0-306-40615-2").unwrap(), "9780306406157");
        assert_eq!(normalize_isbn("0 8044 2957 X").unwrap(), "9780804429573");
        assert_eq!(normalize_isbn("080442957x").unwrap(), "9780804429573");
    }

    #[test]
    fn bad_isbns() {
        assert_eq!(
            normalize_isbn("978-0-306-40615-8"),
            Err(IsbnError::Checksum)
        );
        assert_eq!(normalize_isbn("0-306-40615-3"), Err(IsbnError::Checksum));
        for bad in [
            "",
            "12345",
            "97803064061571",
            "X306406152",
            "abcdefghij",
            "1234567890123",
            "9780306406157' OR 1=1",
        ] {
            assert!(normalize_isbn(bad).is_err(), "{bad}");
        }
    }
}
