//! Password rules checked when a password is set or changed.
//!
//! [`PasswordPolicy::check`] returns every rule a password breaks, not just the
//! first, so a form can show them all at once. Reuse of recent passwords needs
//! the stored hashes, so the caller checks that and adds
//! [`PasswordViolation::RecentlyUsed`] itself.

use std::fmt;

/// The highest score zxcvbn gives.
const MAX_STRENGTH: u8 = 4;

/// Shortest username or email local part treated as personal information; shorter
/// ones ("al", "jo") occur by chance in too many good passwords.
const MIN_PERSONAL_LEN: usize = 3;

/// Which passwords are accepted.
///
/// Deserialisable so it can come from configuration; missing fields take the
/// [`Default`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Minimum length in Unicode scalar values (`char`s), not bytes.
    pub min_length: usize,
    /// Maximum length in `char`s. Also bounds the cost of the strength estimate:
    /// longer passwords are refused without running it.
    pub max_length: usize,
    /// Require a character for which `char::is_uppercase` holds.
    pub require_uppercase: bool,
    /// Require a character for which `char::is_lowercase` holds.
    pub require_lowercase: bool,
    /// Require an ASCII digit or any other Unicode numeric character.
    pub require_digit: bool,
    /// Require a character that is neither alphanumeric nor whitespace.
    pub require_symbol: bool,
    /// Refuse passwords containing the username, the email's local part or the
    /// whole email (case-insensitively).
    pub forbid_personal_info: bool,
    /// zxcvbn score 0..=4; 0 disables. Values above 4 act as 4.
    pub min_strength: u8,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_symbol: true,
            forbid_personal_info: true,
            min_strength: 3,
        }
    }
}

/// One rule a password breaks. Variants are in the order [`PasswordPolicy::check`]
/// reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordViolation {
    /// Fewer than `min` characters.
    TooShort {
        /// The policy's minimum length.
        min: usize,
    },
    /// More than `max` characters.
    TooLong {
        /// The policy's maximum length.
        max: usize,
    },
    /// No uppercase letter.
    MissingUppercase,
    /// No lowercase letter.
    MissingLowercase,
    /// No digit.
    MissingDigit,
    /// No symbol (a character neither alphanumeric nor whitespace).
    MissingSymbol,
    /// Contains the username or the email address (or its local part).
    ContainsPersonalInfo,
    /// zxcvbn scored the password below the policy's minimum.
    TooWeak {
        /// zxcvbn's score, 0..=4.
        score: u8,
        /// The minimum score required.
        min: u8,
    },
    /// Matches one of the last `history` passwords. Never produced by
    /// [`PasswordPolicy::check`]: only the caller has the stored hashes.
    RecentlyUsed {
        /// How many previous passwords are remembered.
        history: u32,
    },
}

impl PasswordViolation {
    /// Stable machine-readable code for API error bodies; clients switch on this,
    /// so never change an existing one.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::TooLong { .. } => "too_long",
            Self::MissingUppercase => "missing_uppercase",
            Self::MissingLowercase => "missing_lowercase",
            Self::MissingDigit => "missing_digit",
            Self::MissingSymbol => "missing_symbol",
            Self::ContainsPersonalInfo => "contains_personal_info",
            Self::TooWeak { .. } => "too_weak",
            Self::RecentlyUsed { .. } => "recently_used",
        }
    }

    /// Human-readable reason, phrased to follow the field name
    /// ("password must be at least 8 characters").
    pub fn message(&self) -> String {
        match self {
            Self::TooShort { min } => format!("must be at least {min} characters"),
            Self::TooLong { max } => format!("must be at most {max} characters"),
            Self::MissingUppercase => "must contain an uppercase letter".to_owned(),
            Self::MissingLowercase => "must contain a lowercase letter".to_owned(),
            Self::MissingDigit => "must contain a digit".to_owned(),
            Self::MissingSymbol => "must contain a symbol".to_owned(),
            Self::ContainsPersonalInfo => {
                "must not contain your username or email address".to_owned()
            }
            Self::TooWeak { score, min } => format!(
                "is too easy to guess (strength {score} of {MAX_STRENGTH}, at least {min} required)"
            ),
            Self::RecentlyUsed { history: 1 } => {
                "must not be the same as your previous password".to_owned()
            }
            Self::RecentlyUsed { history } => {
                format!("must not be one of your last {history} passwords")
            }
        }
    }
}

impl fmt::Display for PasswordViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl PasswordPolicy {
    /// Every rule `password` breaks, in [`PasswordViolation`] order; empty means
    /// acceptable (apart from password history, which the caller checks).
    ///
    /// `personal` holds the account's username and email address. Entries
    /// containing `@` are treated as emails, the others as usernames; empty ones
    /// are ignored. They also feed zxcvbn, which penalises passwords built from
    /// them.
    pub fn check(&self, password: &str, personal: &[&str]) -> Vec<PasswordViolation> {
        let mut violations = Vec::new();

        let length = password.chars().count();
        let too_long = length > self.max_length;
        if length < self.min_length {
            violations.push(PasswordViolation::TooShort {
                min: self.min_length,
            });
        }
        if too_long {
            violations.push(PasswordViolation::TooLong {
                max: self.max_length,
            });
        }
        if self.require_uppercase && !password.chars().any(char::is_uppercase) {
            violations.push(PasswordViolation::MissingUppercase);
        }
        if self.require_lowercase && !password.chars().any(char::is_lowercase) {
            violations.push(PasswordViolation::MissingLowercase);
        }
        if self.require_digit && !password.chars().any(is_digit) {
            violations.push(PasswordViolation::MissingDigit);
        }
        if self.require_symbol && !password.chars().any(is_symbol) {
            violations.push(PasswordViolation::MissingSymbol);
        }
        if self.forbid_personal_info && contains_personal_info(password, personal) {
            violations.push(PasswordViolation::ContainsPersonalInfo);
        }
        // zxcvbn is the expensive rule: never run it on input the length rule
        // already refuses, so an oversized password costs no more than a scan.
        let min = self.min_strength.min(MAX_STRENGTH);
        if min > 0 && !too_long {
            let score = u8::from(zxcvbn::zxcvbn(password, personal).score());
            if score < min {
                violations.push(PasswordViolation::TooWeak { score, min });
            }
        }
        violations
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || c.is_numeric()
}

fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

/// Whether the lowercased password contains a username (≥ 3 chars), an email's
/// local part (≥ 3 chars) or a whole email.
fn contains_personal_info(password: &str, personal: &[&str]) -> bool {
    let password = password.to_lowercase();
    personal.iter().any(|item| {
        let item = item.trim().to_lowercase();
        match item.rsplit_once('@') {
            Some((local, _domain)) => {
                password.contains(item.as_str())
                    || (local.chars().count() >= MIN_PERSONAL_LEN && password.contains(local))
            }
            None => item.chars().count() >= MIN_PERSONAL_LEN && password.contains(item.as_str()),
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    use PasswordViolation::*;

    /// A policy with every rule off, to switch rules on one at a time.
    fn none() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 0,
            max_length: usize::MAX,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_symbol: false,
            forbid_personal_info: false,
            min_strength: 0,
        }
    }

    const ME: &[&str] = &["alice", "alice.smith@example.com"];

    #[test]
    fn default_values() {
        let p = PasswordPolicy::default();
        assert_eq!(p.min_length, 8);
        assert_eq!(p.max_length, 128);
        assert!(p.require_uppercase && p.require_lowercase);
        assert!(p.require_digit && p.require_symbol);
        assert!(p.forbid_personal_info);
        assert_eq!(p.min_strength, 3);
    }

    #[test]
    fn default_refuses_password1_as_too_weak() {
        // It satisfies every character-class rule; only zxcvbn catches it.
        let v = PasswordPolicy::default().check("Password1!", ME);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            matches!(v[0], TooWeak { min: 3, score } if score < 3),
            "{v:?}"
        );
    }

    #[test]
    fn default_accepts_strong_passphrase() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check("correct-Horse-battery-9-staple", ME), vec![]);
        assert_eq!(policy.check("correct-Horse-battery-9-staple", &[]), vec![]);
    }

    #[test]
    fn everything_off_accepts_anything() {
        assert_eq!(none().check("", ME), vec![]);
        assert_eq!(none().check("alice", ME), vec![]);
    }

    #[test]
    fn too_short_counts_chars_not_bytes() {
        let p = PasswordPolicy {
            min_length: 8,
            ..none()
        };
        assert_eq!(p.check("1234567", &[]), vec![TooShort { min: 8 }]);
        assert_eq!(p.check("12345678", &[]), vec![]);
        // 7 chars, 14 bytes: still too short.
        assert_eq!(p.check("äääääää", &[]), vec![TooShort { min: 8 }]);
        assert_eq!(p.check("ääääääää", &[]), vec![]);
        assert_eq!(p.check("", &[]), vec![TooShort { min: 8 }]);
    }

    #[test]
    fn too_long_counts_chars_not_bytes() {
        let p = PasswordPolicy {
            max_length: 4,
            ..none()
        };
        assert_eq!(p.check("abcd", &[]), vec![]);
        assert_eq!(p.check("ääää", &[]), vec![]);
        assert_eq!(p.check("abcde", &[]), vec![TooLong { max: 4 }]);
    }

    #[test]
    fn too_long_skips_strength() {
        let p = PasswordPolicy {
            max_length: 10,
            min_strength: 4,
            ..none()
        };
        // Weak and too long: only TooLong is reported; zxcvbn never runs.
        assert_eq!(
            p.check("aaaaaaaaaaaaaaaaaaaa", &[]),
            vec![TooLong { max: 10 }]
        );
        // Weak but within the limit: strength applies.
        assert!(matches!(
            p.check("aaaaaaaaaa", &[])[..],
            [TooWeak { min: 4, .. }]
        ));
    }

    #[test]
    fn huge_password_is_refused_cheaply() {
        let huge = "a".repeat(1_000_000);
        let v = PasswordPolicy::default().check(&huge, ME);
        assert!(v.contains(&TooLong { max: 128 }));
        assert!(!v.iter().any(|v| matches!(v, TooWeak { .. })));
    }

    #[test]
    fn uppercase_rule() {
        let p = PasswordPolicy {
            require_uppercase: true,
            ..none()
        };
        assert_eq!(p.check("abc", &[]), vec![MissingUppercase]);
        assert_eq!(p.check("123!", &[]), vec![MissingUppercase]);
        assert_eq!(p.check("abC", &[]), vec![]);
        assert_eq!(p.check("ÄBC", &[]), vec![]);
        assert_eq!(p.check("äbc", &[]), vec![MissingUppercase]);
    }

    #[test]
    fn lowercase_rule() {
        let p = PasswordPolicy {
            require_lowercase: true,
            ..none()
        };
        assert_eq!(p.check("ABC", &[]), vec![MissingLowercase]);
        assert_eq!(p.check("ABc", &[]), vec![]);
        assert_eq!(p.check("ÄBß", &[]), vec![]);
    }

    #[test]
    fn digit_rule() {
        let p = PasswordPolicy {
            require_digit: true,
            ..none()
        };
        assert_eq!(p.check("abc!", &[]), vec![MissingDigit]);
        assert_eq!(p.check("abc9", &[]), vec![]);
        // Unicode numerics count: Arabic-Indic digit, Roman numeral, vulgar fraction.
        assert_eq!(p.check("abc\u{0663}", &[]), vec![]);
        assert_eq!(p.check("abc\u{2167}", &[]), vec![]);
        assert_eq!(p.check("abc½", &[]), vec![]);
    }

    #[test]
    fn symbol_rule() {
        let p = PasswordPolicy {
            require_symbol: true,
            ..none()
        };
        assert_eq!(p.check("abc123", &[]), vec![MissingSymbol]);
        // Whitespace is not a symbol.
        assert_eq!(p.check("abc 123", &[]), vec![MissingSymbol]);
        assert_eq!(p.check("abc\t123", &[]), vec![MissingSymbol]);
        assert_eq!(p.check("abc-123", &[]), vec![]);
        assert_eq!(p.check("abc€", &[]), vec![]);
        assert_eq!(p.check("abc😀", &[]), vec![]);
    }

    #[test]
    fn personal_info_rule() {
        let p = PasswordPolicy {
            forbid_personal_info: true,
            ..none()
        };
        // Username, case-insensitively.
        assert_eq!(p.check("xxALICExx", ME), vec![ContainsPersonalInfo]);
        // Email local part.
        assert_eq!(p.check("my-Alice.Smith-pw", ME), vec![ContainsPersonalInfo]);
        // Whole email.
        assert_eq!(
            p.check("ALICE.SMITH@EXAMPLE.COM1", ME),
            vec![ContainsPersonalInfo]
        );
        // The domain alone is not personal.
        assert_eq!(p.check("example.com-pw", ME), vec![]);
        assert_eq!(p.check("unrelated", ME), vec![]);
        assert_eq!(p.check("unrelated", &[]), vec![]);
    }

    #[test]
    fn personal_info_ignores_short_items() {
        let p = PasswordPolicy {
            forbid_personal_info: true,
            ..none()
        };
        let short = &["al", "jo@example.com", ""];
        assert_eq!(p.check("always-jolly", short), vec![]);
        // The whole email still counts even with a short local part.
        assert_eq!(
            p.check("xjo@example.comx", short),
            vec![ContainsPersonalInfo]
        );
        // Exactly three characters is long enough.
        assert_eq!(p.check("bobcat", &["bob"]), vec![ContainsPersonalInfo]);
        assert_eq!(
            p.check("bobcat", &["bob@example.com"]),
            vec![ContainsPersonalInfo]
        );
    }

    #[test]
    fn personal_info_is_unicode_case_insensitive() {
        let p = PasswordPolicy {
            forbid_personal_info: true,
            ..none()
        };
        assert_eq!(
            p.check("ÄDMIN-rules", &["ädmin"]),
            vec![ContainsPersonalInfo]
        );
    }

    #[test]
    fn strength_rule() {
        let p = PasswordPolicy {
            min_strength: 3,
            ..none()
        };
        assert!(matches!(
            p.check("password", &[])[..],
            [TooWeak { score: 0, min: 3 }]
        ));
        assert_eq!(p.check("correct-Horse-battery-9-staple", &[]), vec![]);
        // Empty password scores 0.
        assert_eq!(p.check("", &[]), vec![TooWeak { score: 0, min: 3 }]);
    }

    #[test]
    fn strength_uses_personal_inputs() {
        let p = PasswordPolicy {
            min_strength: 3,
            ..none()
        };
        let pw = "zebrafinch-Quartz";
        assert_eq!(p.check(pw, &[]), vec![]);
        assert!(
            matches!(p.check(pw, &["zebrafinch-quartz"])[..], [TooWeak { .. }]),
            "a password equal to a user input must be weak"
        );
    }

    #[test]
    fn strength_zero_disables_and_above_four_clamps() {
        let off = PasswordPolicy {
            min_strength: 0,
            ..none()
        };
        assert_eq!(off.check("password", &[]), vec![]);
        let high = PasswordPolicy {
            min_strength: 200,
            ..none()
        };
        assert_eq!(high.check("correct-Horse-battery-9-staple", &[]), vec![]);
        assert!(matches!(
            high.check("password", &[])[..],
            [TooWeak { min: 4, .. }]
        ));
    }

    #[test]
    fn violations_come_in_enum_order() {
        let p = PasswordPolicy {
            min_length: 20,
            ..PasswordPolicy::default()
        };
        // No upper, no digit, no symbol, contains the username, weak, short.
        assert_eq!(
            p.check("alice", ME),
            vec![
                TooShort { min: 20 },
                MissingUppercase,
                MissingDigit,
                MissingSymbol,
                ContainsPersonalInfo,
                TooWeak { score: 0, min: 3 },
            ]
        );
        let long = "ALICE".repeat(30);
        assert_eq!(
            PasswordPolicy::default().check(&long, ME),
            vec![
                TooLong { max: 128 },
                MissingLowercase,
                MissingDigit,
                MissingSymbol,
                ContainsPersonalInfo,
            ]
        );
    }

    #[test]
    fn codes_and_messages() {
        let all = [
            (
                TooShort { min: 8 },
                "too_short",
                "must be at least 8 characters",
            ),
            (
                TooLong { max: 128 },
                "too_long",
                "must be at most 128 characters",
            ),
            (
                MissingUppercase,
                "missing_uppercase",
                "must contain an uppercase letter",
            ),
            (
                MissingLowercase,
                "missing_lowercase",
                "must contain a lowercase letter",
            ),
            (MissingDigit, "missing_digit", "must contain a digit"),
            (MissingSymbol, "missing_symbol", "must contain a symbol"),
            (
                ContainsPersonalInfo,
                "contains_personal_info",
                "must not contain your username or email address",
            ),
            (
                TooWeak { score: 1, min: 3 },
                "too_weak",
                "is too easy to guess (strength 1 of 4, at least 3 required)",
            ),
            (
                RecentlyUsed { history: 5 },
                "recently_used",
                "must not be one of your last 5 passwords",
            ),
        ];
        for (violation, code, message) in all {
            assert_eq!(violation.code(), code);
            assert_eq!(violation.message(), message);
            assert_eq!(violation.to_string(), message);
        }
        assert_eq!(
            RecentlyUsed { history: 1 }.message(),
            "must not be the same as your previous password"
        );
    }

    #[test]
    fn check_never_reports_recently_used() {
        let v = PasswordPolicy::default().check("alice", ME);
        assert!(!v.iter().any(|v| matches!(v, RecentlyUsed { .. })));
    }
}
