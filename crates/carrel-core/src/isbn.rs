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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Twelve digits behind a 978/979 prefix, completed with their check digit.
        fn isbn13() -> impl Strategy<Value = Vec<u32>> {
            (prop::bool::ANY, prop::collection::vec(0u32..10, 9)).prop_map(|(nine, rest)| {
                let mut digits = vec![9, 7, if nine { 9 } else { 8 }];
                digits.extend(rest);
                digits.push(isbn13_check(&digits));
                digits
            })
        }

        /// Nine digits and the mod-11 check (10 is written `X`).
        fn isbn10() -> impl Strategy<Value = Vec<u32>> {
            prop::collection::vec(0u32..10, 9).prop_map(|mut digits| {
                let sum: u32 = digits
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (10 - i as u32) * d)
                    .sum();
                digits.push((11 - sum % 11) % 11);
                digits
            })
        }

        fn symbol(d: u32, lower_x: bool) -> char {
            match d {
                10 if lower_x => 'x',
                10 => 'X',
                d => char::from_digit(d, 10).unwrap(),
            }
        }

        /// `symbols` with hyphens and spaces sprinkled before, between and after them.
        fn written(symbols: &[char], separators: &[(usize, &'static str)]) -> String {
            let mut out = String::new();
            for (i, c) in symbols.iter().enumerate() {
                for (_, sep) in separators.iter().filter(|(at, _)| *at == i) {
                    out.push_str(sep);
                }
                out.push(*c);
            }
            for (_, sep) in separators.iter().filter(|(at, _)| *at >= symbols.len()) {
                out.push_str(sep);
            }
            out
        }

        fn separators() -> impl Strategy<Value = Vec<(usize, &'static str)>> {
            prop::collection::vec(
                (
                    0usize..15,
                    prop::sample::select(vec!["-", " ", "--", " - "]),
                ),
                0..6,
            )
        }

        fn digits13(digits: &[u32]) -> String {
            digits.iter().map(|d| symbol(*d, false)).collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Any text is an ISBN-13 or a refusal, never a panic; what is accepted is
            /// 13 ASCII digits that normalise to themselves.
            #[test]
            fn any_text_is_refused_or_an_isbn13(raw in "\\PC{0,20}|[0-9Xx -]{0,20}") {
                if let Ok(isbn) = normalize_isbn(&raw) {
                    prop_assert_eq!(isbn.len(), 13);
                    prop_assert!(isbn.bytes().all(|b| b.is_ascii_digit()));
                    prop_assert_eq!(normalize_isbn(&isbn), Ok(isbn.clone()));
                }
            }

            /// Every valid ISBN-13, however hyphenated or spaced, normalises to its digits.
            #[test]
            fn valid_isbn13_normalises(digits in isbn13(), seps in separators()) {
                let symbols: Vec<char> = digits.iter().map(|d| symbol(*d, false)).collect();
                prop_assert_eq!(normalize_isbn(&written(&symbols, &seps)), Ok(digits13(&digits)));
            }

            /// Every valid ISBN-10 (check `X` in either case) normalises to the ISBN-13 of
            /// the same book: 978, its first nine digits, a new check digit.
            #[test]
            fn valid_isbn10_normalises_to_its_isbn13(digits in isbn10(), seps in separators(), lower_x in any::<bool>()) {
                let symbols: Vec<char> = digits.iter().map(|d| symbol(*d, lower_x)).collect();
                let mut expected = vec![9, 7, 8];
                expected.extend_from_slice(&digits[..9]);
                expected.push(isbn13_check(&expected));
                prop_assert_eq!(normalize_isbn(&written(&symbols, &seps)), Ok(digits13(&expected)));
            }

            /// Changing any one digit of a valid ISBN-13 is refused (past the prefix, as a
            /// checksum error).
            #[test]
            fn one_changed_digit_of_isbn13_is_refused(digits in isbn13(), at in 0usize..13, delta in 1u32..10) {
                let mut changed = digits.clone();
                changed[at] = (changed[at] + delta) % 10;
                let result = normalize_isbn(&digits13(&changed));
                prop_assert!(result.is_err());
                if at >= 3 {
                    prop_assert_eq!(result, Err(IsbnError::Checksum));
                }
            }

            /// Changing any one symbol of a valid ISBN-10 (including to or from `X`) is
            /// refused as a checksum error.
            #[test]
            fn one_changed_symbol_of_isbn10_is_refused(digits in isbn10(), at in 0usize..10, delta in 0u32..10) {
                // Digits take 10 values, the check symbol 11 (`X`); never the same one again.
                let values = if at == 9 { 11 } else { 10 };
                let mut changed = digits.clone();
                changed[at] = (changed[at] + 1 + delta % (values - 1)) % values;
                let text: String = changed.iter().map(|d| symbol(*d, false)).collect();
                prop_assert_eq!(normalize_isbn(&text), Err(IsbnError::Checksum));
            }
        }
    }
}
