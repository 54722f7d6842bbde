//! Patron cards and PINs: the shapes the desk, the kiosk and SIP2 accept.

/// The longest card number (characters).
pub const MAX_CARD_NUMBER: usize = 32;

/// A card number as stored: 1–32 of `[A-Za-z0-9-]`, trimmed and upper-cased (a
/// scanner and a keyboard give the same card).
pub fn normalize_card_number(raw: &str) -> Result<String, &'static str> {
    let card = raw.trim();
    if card.is_empty() || card.len() > MAX_CARD_NUMBER {
        return Err("must be 1 to 32 characters");
    }
    if !card.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err("may contain only letters, digits and -");
    }
    Ok(card.to_ascii_uppercase())
}

/// A generated card number: `prefix` followed by 10 digits taken from `random`.
/// The prefix (at most 20 characters, checked by configuration) keeps it within 32.
pub fn generated_card_number(prefix: &str, random: u128) -> String {
    format!("{prefix}{:010}", random % 10_000_000_000)
}

/// A PIN: 4–12 ASCII digits.
pub fn validate_pin(pin: &str) -> Result<(), &'static str> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("must be 4 to 12 digits")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers() {
        assert_eq!(normalize_card_number(" ab-12 ").unwrap(), "AB-12");
        assert_eq!(normalize_card_number(&"9".repeat(32)).unwrap().len(), 32);
        for bad in ["", "   ", "a b", "é1", "12_3", &"9".repeat(33)] {
            assert!(normalize_card_number(bad).is_err(), "{bad:?}");
        }
        let generated = generated_card_number("LIB-", u128::MAX);
        assert_eq!(generated.len(), 14);
        assert!(normalize_card_number(&generated).is_ok());
        assert_eq!(generated_card_number("C", 42), "C0000000042");
    }

    #[test]
    fn pins() {
        assert!(validate_pin("1234").is_ok());
        assert!(validate_pin("123456789012").is_ok());
        for bad in ["", "123", "1234567890123", "12a4", "１２３４", " 1234"] {
            assert!(validate_pin(bad).is_err(), "{bad:?}");
        }
    }
}
