//! Validation and normalisation of account fields (email, username, full name).
//!
//! Each validator returns the cleaned value or a short reason meant to follow the
//! field name ("email is not a valid email address"); the HTTP layer turns it
//! into a 422 naming the field. The `*_key` functions give the case-insensitive
//! form that uniqueness is enforced on, so `Alice` and `alice` cannot both exist.

/// Longest email accepted, in characters (the SMTP path limit).
pub const EMAIL_MAX_LEN: usize = 254;
/// Longest email local part (before the `@`), in characters.
pub const EMAIL_LOCAL_MAX_LEN: usize = 64;
/// Shortest username, in characters.
pub const USERNAME_MIN_LEN: usize = 3;
/// Longest username, in characters.
pub const USERNAME_MAX_LEN: usize = 32;
/// Longest full name, in characters.
pub const FULL_NAME_MAX_LEN: usize = 200;

const INVALID_EMAIL: &str = "is not a valid email address";
const DNS_LABEL_MAX_LEN: usize = 63;

/// Checks and normalises an email address: trims it and lower-cases the domain
/// (domains are case-insensitive; the local part is kept as typed because the
/// receiving server may treat its case as significant).
///
/// Deliberately narrower than RFC 5321: the local part is a dot-atom (no quoted
/// strings, no leading, trailing or doubled dots; ASCII `atext` or non-ASCII
/// letters and digits), so it can never carry the characters that split or
/// extend a mail header (`,` `;` `<` `>` `"` whitespace, control characters). The
/// domain is plain ASCII DNS labels with at least one dot and a non-numeric last
/// label (no IP addresses, no unencoded IDNs: use the `xn--` form).
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim();
    if email.is_empty() {
        return Err("is required");
    }
    if email.chars().count() > EMAIL_MAX_LEN {
        return Err("must be at most 254 characters");
    }
    let (local, domain) = email.split_once('@').ok_or(INVALID_EMAIL)?;
    if domain.contains('@') || !valid_local_part(local) || !valid_domain(domain) {
        return Err(INVALID_EMAIL);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// The case-insensitive uniqueness key of a normalised email: the whole address
/// lower-cased. Two accounts whose emails differ only in case would otherwise
/// both receive the other's password-reset mail at most providers.
pub fn email_key(email: &str) -> String {
    email.to_lowercase()
}

/// Checks a username: trimmed, 3–32 characters from `[A-Za-z0-9_.-]`.
///
/// ASCII only, so look-alike letters from other scripts cannot impersonate
/// another account, and the name is safe in URLs, logs and mail headers.
/// Returns the trimmed username with its case kept.
pub fn validate_username(raw: &str) -> Result<String, &'static str> {
    let username = raw.trim();
    if username.is_empty() {
        return Err("is required");
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("may only contain letters, digits, '_', '.' and '-'");
    }
    // ASCII only from here, so bytes are characters.
    if !(USERNAME_MIN_LEN..=USERNAME_MAX_LEN).contains(&username.len()) {
        return Err("must be between 3 and 32 characters");
    }
    Ok(username.to_owned())
}

/// The case-insensitive uniqueness key of a validated username.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// Checks an optional display name: trimmed, blank means none, at most 200
/// characters, any script, but no control characters.
///
/// Bidirectional-override and line/paragraph-separator characters count as
/// control characters too: they are invisible, and can reorder or break the
/// text around the name wherever it is displayed or logged.
pub fn normalize_full_name(raw: &str) -> Result<Option<String>, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > FULL_NAME_MAX_LEN {
        return Err("must be at most 200 characters");
    }
    if name.chars().any(is_control_like) {
        return Err("must not contain control characters");
    }
    Ok(Some(name.to_owned()))
}

fn valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.chars().count() <= EMAIL_LOCAL_MAX_LEN
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| is_ascii_atext(c) || (!c.is_ascii() && c.is_alphanumeric()))
        })
}

/// RFC 5322 `atext`: the characters allowed unquoted in a local part.
fn is_ascii_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn valid_domain(domain: &str) -> bool {
    let mut labels = domain.split('.');
    let last = domain.rsplit('.').next().unwrap_or_default();
    domain.contains('.')
        && labels.all(|label| {
            !label.is_empty()
                && label.len() <= DNS_LABEL_MAX_LEN
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && !last.chars().all(|c| c.is_ascii_digit())
}

fn is_control_like(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn email_valid_and_normalised() {
        assert_eq!(
            normalize_email("  Alice.Smith@Example.COM \n").unwrap(),
            "Alice.Smith@example.com"
        );
        for ok in [
            "a@b.co",
            "user+tag@example.com",
            "o'brien@example.ie",
            "first.last@sub.domain-name.example",
            "x_y-z@123.example",
            "!#$%&'*+-/=?^_`{|}~@example.com",
            "jörg@example.de",
            "用户@example.cn",
            "a@xn--bcher-kva.example",
        ] {
            assert_eq!(normalize_email(ok).unwrap(), ok, "{ok:?}");
        }
    }

    #[test]
    fn email_invalid_shapes() {
        for bad in [
            "plainaddress",
            "@example.com",
            "alice@",
            "alice@@example.com",
            "alice@bob@example.com",
            "alice@localhost",
            "alice@example.com.",
            "alice@.example.com",
            "alice@example..com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@exa_mple.com",
            "alice@exämple.com",
            "alice@[127.0.0.1]",
            "alice@127.0.0.1",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "\"alice\"@example.com",
            "alice smith@example.com",
            "alice@exa mple.com",
            "alice\t@example.com",
            "alice\u{0}@example.com",
            "ali\u{202E}ce@example.com",
            "a\u{200B}b@example.com",
            "<alice>@example.com",
            "a,b@example.com",
            "a;b@example.com",
            "a(b)@example.com",
            "a\\b@example.com",
        ] {
            assert_eq!(normalize_email(bad), Err(INVALID_EMAIL), "{bad:?}");
        }
    }

    #[test]
    fn email_injection_shapes() {
        for bad in [
            "' OR 1=1 --",
            "' OR 1=1 --@example.com",
            "admin'--@example.com@evil.com",
            "alice@example.com\r\nBcc: victim@example.com",
            "alice@example.com\nX-Injected: 1",
            "alice@example.com,victim@example.org",
            "<script>alert(1)</script>@example.com",
            "alice@example.com%0aBcc:x@y.z",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn email_required() {
        assert_eq!(normalize_email(""), Err("is required"));
        assert_eq!(normalize_email(" \t\n "), Err("is required"));
    }

    #[test]
    fn email_length_limits() {
        // 64-char local part + "@" + 189-char domain = 254.
        let local = "a".repeat(64);
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        let at_limit = format!("{local}@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert_eq!(normalize_email(&at_limit).unwrap(), at_limit);

        let over = format!("{local}@e{domain}");
        assert_eq!(over.len(), 255);
        assert_eq!(
            normalize_email(&over),
            Err("must be at most 254 characters")
        );
        // Surrounding whitespace does not count.
        assert!(normalize_email(&format!("  {at_limit}  ")).is_ok());

        assert_eq!(
            normalize_email(&format!("{}@example.com", "a".repeat(65))),
            Err(INVALID_EMAIL)
        );
        // Labels are at most 63 characters.
        assert_eq!(
            normalize_email(&format!("a@{}.com", "b".repeat(64))),
            Err(INVALID_EMAIL)
        );
        // Length is counted in characters, not bytes.
        let wide_local = "ä".repeat(64);
        assert!(normalize_email(&format!("{wide_local}@example.com")).is_ok());
    }

    #[test]
    fn email_key_is_full_lowercase() {
        assert_eq!(
            email_key("Alice.Smith@example.com"),
            "alice.smith@example.com"
        );
        assert_eq!(email_key("JÖRG@example.de"), "jörg@example.de");
        assert_eq!(
            email_key(&normalize_email("ALICE@EXAMPLE.COM").unwrap()),
            email_key(&normalize_email("alice@example.com").unwrap())
        );
    }

    #[test]
    fn username_valid() {
        for ok in [
            "abc",
            "Alice",
            "a.b-c_d",
            "user_123",
            "___",
            &"x".repeat(32),
        ] {
            assert_eq!(validate_username(ok).unwrap(), ok);
        }
        assert_eq!(validate_username("  Alice \t").unwrap(), "Alice");
    }

    #[test]
    fn username_length() {
        let msg = Err("must be between 3 and 32 characters");
        assert_eq!(validate_username("ab"), msg);
        assert_eq!(validate_username("  ab  "), msg);
        assert_eq!(validate_username(&"x".repeat(33)), msg);
        assert_eq!(validate_username(""), Err("is required"));
        assert_eq!(validate_username("   "), Err("is required"));
    }

    #[test]
    fn username_charset() {
        let msg = Err("may only contain letters, digits, '_', '.' and '-'");
        for bad in [
            "ädmin",
            "a b",
            "admin\nroot",
            "admin\0",
            "' OR 1=1 --",
            "admin'--",
            "<script>",
            "alice@example.com",
            "../../etc",
            "a/b",
            "аdmin", // Cyrillic 'а'
            "admin\u{200B}",
            "ａｄｍｉｎ", // fullwidth
            "a%20b",
        ] {
            assert_eq!(validate_username(bad), msg, "{bad:?}");
        }
        // A trailing newline is whitespace, trimmed like any other.
        assert_eq!(validate_username("admin\n").unwrap(), "admin");
    }

    #[test]
    fn username_key_is_lowercase() {
        assert_eq!(username_key("Alice.Smith"), "alice.smith");
        assert_eq!(username_key("ADMIN"), username_key("admin"));
    }

    #[test]
    fn full_name() {
        assert_eq!(normalize_full_name(""), Ok(None));
        assert_eq!(normalize_full_name("   \t\n"), Ok(None));
        assert_eq!(
            normalize_full_name("  Ada Lovelace ").unwrap().as_deref(),
            Some("Ada Lovelace")
        );
        for ok in [
            "Zoë O'Brien-Smith",
            "山田 太郎",
            "Ægir Þórsson",
            "' OR 1=1 --",
            "<b>x</b>",
            "محمد\u{200C}رضا",
        ] {
            assert_eq!(normalize_full_name(ok).unwrap().as_deref(), Some(ok));
        }
        let max = "é".repeat(200);
        assert_eq!(normalize_full_name(&max).unwrap(), Some(max.clone()));
        assert_eq!(
            normalize_full_name(&format!("{max}é")),
            Err("must be at most 200 characters")
        );
    }

    #[test]
    fn full_name_control_characters() {
        let msg = Err("must not contain control characters");
        for bad in [
            "Ada\nLovelace",
            "Ada\r\nX-Header: 1",
            "Ada\tLovelace",
            "Ada\0",
            "Ada\u{7F}",
            "Ada\u{85}Lovelace",
            "Ada\u{1B}[31m",
            "Ada\u{202E}ecalevoL",
            "Ada\u{2066}x\u{2069}",
            "Ada\u{2028}Lovelace",
        ] {
            assert_eq!(normalize_full_name(bad), msg, "{bad:?}");
        }
    }
}
