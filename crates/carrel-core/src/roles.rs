//! Account roles and how they nest.
//!
//! Roles are ordered: every role holds the rights of the roles below it, so an
//! authorisation check is a single comparison ([`Role::includes`]) rather than a
//! list of allowed roles that has to be kept in sync by hand.

use std::fmt;
use std::str::FromStr;

use crate::statuses::UnknownValue;

/// What an account may do. The derived order (`Patron < Librarian < Admin`) is
/// the privilege order; do not reorder the variants.
///
/// Serialised (JSON, database text) as the lowercase name: `"patron"`,
/// `"librarian"`, `"admin"`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A library member: borrows, reserves, manages their own account.
    Patron,
    /// Staff: manages the catalogue, loans and patrons.
    Librarian,
    /// Full control, including staff accounts and configuration.
    Admin,
}

impl Role {
    /// Every role, lowest privilege first.
    pub const ALL: [Role; 3] = [Role::Patron, Role::Librarian, Role::Admin];

    /// The stable lowercase name, identical to the serde and [`FromStr`] form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patron => "patron",
            Role::Librarian => "librarian",
            Role::Admin => "admin",
        }
    }

    /// Whether this role holds the rights of `other`: each role includes the
    /// rights of the ones below it, so `Admin.includes(Librarian)` is true and
    /// `Patron.includes(Librarian)` is false.
    pub fn includes(self, other: Role) -> bool {
        self >= other
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not exactly one of the lowercase role names.
///
/// It deliberately does not carry the rejected input, so it can be shown or
/// logged without echoing untrusted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown role (expected one of: patron, librarian, admin)")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts only the exact lowercase names: no trimming, no case folding, so a
    /// role stored or sent in any other form is an error rather than a guess.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(UnknownRole)
    }
}

impl TryFrom<String> for Role {
    type Error = UnknownValue;

    /// Decodes a stored role (exactly as [`FromStr`]); anything else is an
    /// [`UnknownValue`] naming the set, so a store reports it like any other
    /// stored word it cannot read.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|UnknownRole| UnknownValue("role"))
    }
}

impl From<Role> for String {
    fn from(role: Role) -> String {
        role.as_str().to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn order_is_privilege_order() {
        assert!(Role::Patron < Role::Librarian);
        assert!(Role::Librarian < Role::Admin);
        let mut sorted = Role::ALL;
        sorted.sort();
        assert_eq!(sorted, Role::ALL);
    }

    #[test]
    fn includes_is_reflexive_and_downward() {
        for a in Role::ALL {
            for b in Role::ALL {
                assert_eq!(a.includes(b), a >= b, "{a} includes {b}");
            }
        }
        assert!(Role::Admin.includes(Role::Patron));
        assert!(Role::Admin.includes(Role::Librarian));
        assert!(Role::Librarian.includes(Role::Patron));
        assert!(Role::Patron.includes(Role::Patron));
        assert!(!Role::Patron.includes(Role::Librarian));
        assert!(!Role::Librarian.includes(Role::Admin));
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
        }
        assert_eq!(Role::Patron.as_str(), "patron");
        assert_eq!(Role::Librarian.as_str(), "librarian");
        assert_eq!(Role::Admin.as_str(), "admin");
    }

    #[test]
    fn parsing_is_exact() {
        for bad in [
            "", "Admin", "ADMIN", " admin", "admin ", "admin\n", "root", "ädmin", "admin\0",
        ] {
            assert_eq!(bad.parse::<Role>(), Err(UnknownRole), "{bad:?}");
        }
        let err: Box<dyn std::error::Error> = Box::new(UnknownRole);
        assert!(err.to_string().contains("unknown role"));
    }

    #[test]
    fn stored_text_round_trips_and_unknown_text_is_refused() {
        for role in Role::ALL {
            assert_eq!(Role::try_from(String::from(role)), Ok(role));
        }
        for bad in ["", "Patron", "superuser", " patron"] {
            assert_eq!(
                Role::try_from(bad.to_owned()),
                Err(UnknownValue("role")),
                "{bad:?}"
            );
        }
        assert_eq!(UnknownValue("role").to_string(), "not a known role");
    }

    #[test]
    fn serde_uses_lowercase_names() {
        // serde_json is not a dependency of this crate; serde's own value
        // deserializer is enough to check the derived names.
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error as DeError, StrDeserializer};

        for role in Role::ALL {
            let de: StrDeserializer<'_, DeError> = role.as_str().into_deserializer();
            let parsed: Role = serde::Deserialize::deserialize(de).unwrap();
            assert_eq!(parsed, role);
        }
        let de: StrDeserializer<'_, DeError> = "Admin".into_deserializer();
        assert!(<Role as serde::Deserialize>::deserialize(de).is_err());
    }
}
