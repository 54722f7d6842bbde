//! The circulation rule matrix a library writes.
//!
//! # The matrix
//!
//! Each [`Rule`] row is keyed by branch × patron category × item type, where
//! `None` means "any". For one checkout (a branch, the patron's category and
//! the item's type) the most specific matching row wins ([`resolve`]), in the
//! order of [`Specificity`]:
//!
//! branch+category+type, branch+category, branch+type, branch, category+type,
//! category, type, default.
//!
//! A branch always counts for more than a category, and a category for more
//! than a type: a row naming the branch beats every row that does not. The
//! default row (all `None`) matches everything, so a valid matrix
//! ([`validate_matrix`]) always resolves.
//!
//! The checkout decision that applies the rule in force is
//! [`crate::decide::decide_checkout`].

use uuid::Uuid;

use crate::circulation::LoanPolicy;

/// The largest per-patron limit a rule or a category may name.
pub const MAX_LIMIT: u32 = 10_000;

/// Whether `code` is a well-formed item type or patron category code: 1–32 of
/// `a-z`, `0-9`, `_` and `-`.
pub fn is_valid_code(code: &str) -> bool {
    (1..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// What [`is_valid_code`] requires, for error messages.
pub const CODE_RULE: &str = "must be 1-32 of a-z, 0-9, _ and -";

/// How specific a matching row is; earlier variants win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Specificity {
    /// Branch, category and type all named.
    BranchCategoryType,
    /// Branch and category named.
    BranchCategory,
    /// Branch and type named.
    BranchType,
    /// Only the branch named.
    Branch,
    /// Category and type named.
    CategoryType,
    /// Only the category named.
    Category,
    /// Only the type named.
    Type,
    /// Nothing named: the default row.
    Default,
}

impl Specificity {
    /// Every level, most specific first.
    pub const ALL: [Specificity; 8] = [
        Specificity::BranchCategoryType,
        Specificity::BranchCategory,
        Specificity::BranchType,
        Specificity::Branch,
        Specificity::CategoryType,
        Specificity::Category,
        Specificity::Type,
        Specificity::Default,
    ];

    /// The level of a row that names (or not) a branch, a category and a type.
    pub fn of(branch: bool, category: bool, item_type: bool) -> Specificity {
        match (branch, category, item_type) {
            (true, true, true) => Specificity::BranchCategoryType,
            (true, true, false) => Specificity::BranchCategory,
            (true, false, true) => Specificity::BranchType,
            (true, false, false) => Specificity::Branch,
            (false, true, true) => Specificity::CategoryType,
            (false, true, false) => Specificity::Category,
            (false, false, true) => Specificity::Type,
            (false, false, false) => Specificity::Default,
        }
    }

    /// The name used in the API's `matched` field, e.g. `category+type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Specificity::BranchCategoryType => "branch+category+type",
            Specificity::BranchCategory => "branch+category",
            Specificity::BranchType => "branch+type",
            Specificity::Branch => "branch",
            Specificity::CategoryType => "category+type",
            Specificity::Category => "category",
            Specificity::Type => "type",
            Specificity::Default => "default",
        }
    }
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The lending branch, or `None` for any.
    pub branch_id: Option<Uuid>,
    /// The patron category code, or `None` for any.
    pub patron_category: Option<String>,
    /// The item type code, or `None` for any.
    pub item_type: Option<String>,
    /// Loan length, renewals, fines and replacement cost (frozen on the loan).
    pub policy: LoanPolicy,
    /// At most this many open loans of the checkout's item type per patron;
    /// `None`: no per-type limit.
    pub max_loans_of_type: Option<u32>,
    /// Whether holds may be placed.
    pub holds_allowed: bool,
}

impl Rule {
    /// How specific this row is.
    pub fn specificity(&self) -> Specificity {
        Specificity::of(
            self.branch_id.is_some(),
            self.patron_category.is_some(),
            self.item_type.is_some(),
        )
    }

    /// Whether this row applies to `key`: every column it names equals the
    /// key's value (a named column never matches an unknown key value).
    pub fn matches(&self, key: &RuleKey<'_>) -> bool {
        fn column<T: PartialEq + ?Sized>(row: Option<&T>, key: Option<&T>) -> bool {
            match row {
                None => true,
                Some(value) => key == Some(value),
            }
        }
        column(self.branch_id.as_ref(), key.branch_id.as_ref())
            && column(self.patron_category.as_deref(), key.patron_category)
            && column(self.item_type.as_deref(), key.item_type)
    }

    /// Whether two rows have the same key (branch, category, type).
    pub fn same_key(&self, other: &Rule) -> bool {
        self.branch_id == other.branch_id
            && self.patron_category == other.patron_category
            && self.item_type == other.item_type
    }
}

/// What a rule is looked up for: the lending branch, the patron's category and
/// the item's type (`None`: unknown or not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleKey<'a> {
    /// The branch lending (the desk's); `None` until branches exist.
    pub branch_id: Option<Uuid>,
    /// The patron's category code.
    pub patron_category: Option<&'a str>,
    /// The item's type code.
    pub item_type: Option<&'a str>,
}

/// The rule in force for `key`: the most specific matching row of `rules`,
/// with its level. `None` only when no row matches, which a matrix holding
/// the default row never allows.
///
/// `rules` may be the whole matrix or any subset holding every row that can
/// match `key` (the store loads only those). When several rows share the
/// winning level (impossible in a valid matrix, whose keys are unique), the
/// first one wins.
pub fn resolve<'r>(rules: &'r [Rule], key: &RuleKey<'_>) -> Option<(&'r Rule, Specificity)> {
    let mut best: Option<(&'r Rule, Specificity)> = None;
    for rule in rules.iter().filter(|r| r.matches(key)) {
        let level = rule.specificity();
        if best.is_none_or(|(_, current)| level < current) {
            best = Some((rule, level));
        }
    }
    best
}

/// Checks a whole matrix: every row's values, unique keys and the default row.
///
/// Errors name fields as `data[i].field` (the request's shape), `data[i]` for
/// a duplicate key and `data` for a missing default row. Whether the codes
/// exist is the caller's check (it needs the database).
pub fn validate_matrix(rules: &[Rule]) -> Result<(), Vec<(String, String)>> {
    let mut errors = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if let Err(problems) = rule.policy.validate() {
            for (field, reason) in problems {
                errors.push((format!("data[{i}].{field}"), reason.to_owned()));
            }
        }
        if rule.max_loans_of_type.is_some_and(|n| n > MAX_LIMIT) {
            errors.push((
                format!("data[{i}].max_loans_of_type"),
                format!("must be at most {MAX_LIMIT}"),
            ));
        }
        if let Some(first) = rules[..i].iter().position(|other| other.same_key(rule)) {
            errors.push((
                format!("data[{i}]"),
                format!("has the same branch_id, patron_category and item_type as data[{first}]"),
            ));
        }
    }
    if !rules
        .iter()
        .any(|r| r.specificity() == Specificity::Default)
    {
        errors.push((
            "data".to_owned(),
            "must contain the default row (branch_id, patron_category and item_type all null)"
                .to_owned(),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const BRANCH: Uuid = Uuid::from_u128(1);
    const OTHER_BRANCH: Uuid = Uuid::from_u128(2);

    fn row(
        branch: Option<Uuid>,
        category: Option<&str>,
        item_type: Option<&str>,
        days: u32,
    ) -> Rule {
        Rule {
            branch_id: branch,
            patron_category: category.map(str::to_owned),
            item_type: item_type.map(str::to_owned),
            policy: LoanPolicy {
                loan_days: days,
                ..LoanPolicy::default_for("book").unwrap()
            },
            max_loans_of_type: None,
            holds_allowed: true,
        }
    }

    /// One row per level, each with its own loan length (1..=8, most specific first).
    fn full_matrix() -> Vec<Rule> {
        vec![
            row(None, None, None, 8),
            row(None, None, Some("dvd"), 7),
            row(None, Some("child"), None, 6),
            row(None, Some("child"), Some("dvd"), 5),
            row(Some(BRANCH), None, None, 4),
            row(Some(BRANCH), None, Some("dvd"), 3),
            row(Some(BRANCH), Some("child"), None, 2),
            row(Some(BRANCH), Some("child"), Some("dvd"), 1),
        ]
    }

    fn key<'a>(
        branch: Option<Uuid>,
        category: Option<&'a str>,
        item_type: Option<&'a str>,
    ) -> RuleKey<'a> {
        RuleKey {
            branch_id: branch,
            patron_category: category,
            item_type,
        }
    }

    fn resolved(rules: &[Rule], k: RuleKey<'_>) -> (u32, &'static str) {
        let (rule, level) = resolve(rules, &k).expect("a rule");
        assert_eq!(rule.specificity(), level);
        (rule.policy.loan_days, level.as_str())
    }

    #[test]
    fn every_level_wins_over_the_less_specific_ones() {
        let mut rules = full_matrix();
        let k = key(Some(BRANCH), Some("child"), Some("dvd"));
        // Remove the most specific row one at a time: the next level wins each time.
        for (expected_days, level) in (1..=8).zip(Specificity::ALL) {
            assert_eq!(resolved(&rules, k), (expected_days, level.as_str()));
            rules.retain(|r| r.specificity() != level);
        }
        assert_eq!(resolve(&rules, &k), None);
    }

    #[test]
    fn the_order_does_not_depend_on_the_rows_order() {
        let mut rules = full_matrix();
        rules.reverse();
        assert_eq!(
            resolved(&rules, key(Some(BRANCH), Some("child"), Some("dvd"))),
            (1, "branch+category+type")
        );
        rules.rotate_left(3);
        assert_eq!(
            resolved(&rules, key(None, Some("child"), Some("book"))),
            (6, "category")
        );
    }

    #[test]
    fn each_key_finds_its_level() {
        let rules = full_matrix();
        let cases = [
            (
                key(Some(BRANCH), Some("child"), Some("dvd")),
                1,
                "branch+category+type",
            ),
            (
                key(Some(BRANCH), Some("child"), Some("book")),
                2,
                "branch+category",
            ),
            (
                key(Some(BRANCH), Some("adult"), Some("dvd")),
                3,
                "branch+type",
            ),
            (key(Some(BRANCH), Some("adult"), Some("book")), 4, "branch"),
            (
                key(Some(OTHER_BRANCH), Some("child"), Some("dvd")),
                5,
                "category+type",
            ),
            (key(None, Some("child"), Some("dvd")), 5, "category+type"),
            (key(None, Some("child"), Some("book")), 6, "category"),
            (key(None, Some("adult"), Some("dvd")), 7, "type"),
            (key(None, Some("adult"), Some("book")), 8, "default"),
            (key(None, None, None), 8, "default"),
            (key(Some(OTHER_BRANCH), None, Some("dvd")), 7, "type"),
        ];
        for (k, days, level) in cases {
            assert_eq!(resolved(&rules, k), (days, level), "{k:?}");
        }
    }

    #[test]
    fn a_branch_outranks_a_category_and_a_category_a_type() {
        let rules = vec![
            row(None, None, None, 9),
            row(Some(BRANCH), None, None, 1),
            row(None, Some("child"), Some("dvd"), 2),
        ];
        assert_eq!(
            resolved(&rules, key(Some(BRANCH), Some("child"), Some("dvd"))),
            (1, "branch")
        );
        let rules = vec![
            row(None, None, None, 9),
            row(None, Some("child"), None, 1),
            row(None, None, Some("dvd"), 2),
        ];
        assert_eq!(
            resolved(&rules, key(None, Some("child"), Some("dvd"))),
            (1, "category")
        );
    }

    #[test]
    fn a_named_column_never_matches_a_missing_key_value() {
        let rules = vec![row(None, Some("child"), None, 1), row(None, None, None, 2)];
        assert_eq!(
            resolved(&rules, key(None, None, Some("dvd"))),
            (2, "default")
        );
    }

    #[test]
    fn specificity_of_covers_every_combination_in_order() {
        let mut seen = Vec::new();
        for b in [true, false] {
            for c in [true, false] {
                for t in [true, false] {
                    seen.push(Specificity::of(b, c, t));
                }
            }
        }
        assert_eq!(seen, Specificity::ALL);
    }

    #[test]
    fn codes_are_short_lower_case_words() {
        for ok in [
            "book",
            "board-game",
            "seed_packet",
            "a",
            "x1",
            &"a".repeat(32),
        ] {
            assert!(is_valid_code(ok), "{ok}");
        }
        for bad in ["", "Book", "board game", "é", "a/b", &"a".repeat(33)] {
            assert!(!is_valid_code(bad), "{bad}");
        }
    }

    #[test]
    fn validate_accepts_a_full_matrix() {
        assert_eq!(validate_matrix(&full_matrix()), Ok(()));
    }

    #[test]
    fn validate_requires_the_default_row() {
        let mut rules = full_matrix();
        rules.retain(|r| r.specificity() != Specificity::Default);
        let errors = validate_matrix(&rules).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "data");
        assert_eq!(validate_matrix(&[]).unwrap_err()[0].0, "data");
    }

    #[test]
    fn validate_refuses_duplicate_keys() {
        let mut rules = full_matrix();
        rules.push(row(None, Some("child"), Some("dvd"), 30));
        let errors = validate_matrix(&rules).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "data[8]");
        assert!(errors[0].1.contains("data[3]"), "{}", errors[0].1);
    }

    #[test]
    fn validate_names_every_bad_value() {
        let mut rules = full_matrix();
        rules[2].policy.loan_days = 0;
        rules[2].policy.daily_fine_cents = -1;
        rules[5].max_loans_of_type = Some(MAX_LIMIT + 1);
        let fields: Vec<String> = validate_matrix(&rules)
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "data[2].loan_days",
                "data[2].daily_fine_cents",
                "data[5].max_loans_of_type"
            ]
        );
    }
}
