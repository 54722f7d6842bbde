//! The closed sets of words the store keeps as text: the statuses of loans,
//! holds, fines and copies, why a fine is owed and how it was paid, where an
//! import job and an outgoing message stand, and which message a row is.
//!
//! Each is an enum with `as_str` (the stored and serialised form) and
//! [`FromStr`] accepting exactly that form: a value read back that is not one
//! of them is an [`UnknownValue`] error, never a guess.

use std::fmt;
use std::str::FromStr;

/// A stored word that is not one of its set's values. Names the set, not the
/// rejected text (which may be anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a known {0}")]
pub struct UnknownValue(pub &'static str);

/// Defines a text-stored enum: the variants with their stored words, `ALL`,
/// `as_str`, `Display`, `FromStr` and `TryFrom<String>` (for decoding rows).
macro_rules! stored_words {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and serialised) word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            /// Exactly the stored word: no trimming, no case folding.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownValue($what)),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_owned()
            }
        }
    };
}

stored_words!(
    /// Where a loan stands, as stored. An `active` loan past its due instant
    /// reads as overdue before the background job marks it.
    LoanStatus, "loan status", {
        /// Out, not yet due (or not yet marked overdue).
        Active => "active",
        /// Out and past due.
        Overdue => "overdue",
        /// Back.
        Returned => "returned",
        /// Declared lost; the replacement cost was charged.
        Lost => "lost",
    }
);

impl LoanStatus {
    /// Whether the loan is out (active or overdue).
    pub fn is_open(self) -> bool {
        matches!(self, LoanStatus::Active | LoanStatus::Overdue)
    }
}

stored_words!(
    /// Where a hold stands.
    HoldStatus, "hold status", {
        /// In the item's queue.
        Waiting => "waiting",
        /// A copy waits on the pickup branch's hold shelf.
        Ready => "ready",
        /// Collected (checked out).
        Fulfilled => "fulfilled",
        /// Cancelled by the patron or staff.
        Cancelled => "cancelled",
        /// Not collected within the pickup window.
        Expired => "expired",
    }
);

impl HoldStatus {
    /// Whether the hold is open (waiting or ready).
    pub fn is_open(self) -> bool {
        matches!(self, HoldStatus::Waiting | HoldStatus::Ready)
    }
}

stored_words!(
    /// Whether a fine is still owed.
    FineStatus, "fine status", {
        /// Something is still owed.
        Open => "open",
        /// Settled by payments alone.
        Paid => "paid",
        /// Settled with at least part waived.
        Waived => "waived",
    }
);

stored_words!(
    /// Why a fine is owed.
    FineReason, "fine reason", {
        /// Returned (or renewed) late.
        Overdue => "overdue",
        /// Declared lost: the replacement cost.
        Lost => "lost",
        /// Charged by staff for damage.
        Damage => "damage",
        /// Charged by staff for anything else.
        Manual => "manual",
    }
);

stored_words!(
    /// How a payment was made.
    PaymentMethod, "payment method", {
        /// Taken at the desk (staff and terminals only).
        Cash => "cash",
        /// Taken by the desk's card reader (staff and terminals only).
        Card => "card",
        /// Charged through the configured payment provider.
        Online => "online",
    }
);

stored_words!(
    /// Where a copy is.
    CopyStatus, "copy status", {
        /// On the shelf.
        Available => "available",
        /// Out on a loan.
        OnLoan => "on_loan",
        /// On a hold shelf for a ready hold.
        OnHoldShelf => "on_hold_shelf",
        /// Travelling between branches.
        InTransit => "in_transit",
        /// Declared lost.
        Lost => "lost",
        /// Damaged, out of circulation.
        Damaged => "damaged",
        /// Withdrawn from the collection.
        Withdrawn => "withdrawn",
    }
);

impl CopyStatus {
    /// Whether circulation holds the copy (on loan, on a hold shelf or in
    /// transit): its status is circulation's to change, not the catalog's.
    pub fn in_circulation(self) -> bool {
        matches!(
            self,
            CopyStatus::OnLoan | CopyStatus::OnHoldShelf | CopyStatus::InTransit
        )
    }
}

stored_words!(
    /// Where a MARC import job stands.
    ImportStatus, "import status", {
        /// Uploaded, waiting for a worker.
        Queued => "queued",
        /// Being imported (a worker holds its lease).
        Running => "running",
        /// Every record handled.
        Done => "done",
        /// Stopped by an error (the job's `error` says which).
        Failed => "failed",
    }
);

stored_words!(
    /// Where an outgoing message stands in the outbox.
    OutboxState, "outbox state", {
        /// Waiting to be sent (or to be retried).
        Pending => "pending",
        /// Delivered.
        Sent => "sent",
        /// Given up on (dead-lettered); an admin may requeue it.
        Dead => "dead",
    }
);

stored_words!(
    /// Which message an outbox row is: the template it is rendered with.
    MessageKind, "message kind", {
        /// "Confirm your email address".
        VerifyEmail => "verify_email",
        /// "Reset your password" (security).
        PasswordReset => "password_reset",
        /// "You have been invited" (security).
        Invitation => "invitation",
        /// "Your account was locked" (security).
        AccountLocked => "account_locked",
        /// "Someone tried to register with your email".
        RegistrationAttempt => "registration_attempt",
        /// "The username you asked for is taken".
        UsernameTaken => "username_taken",
        /// A hold is ready for pickup.
        HoldReady => "hold_ready",
        /// A loan is due soon.
        DueSoon => "due_soon",
        /// A loan is overdue.
        Overdue => "overdue",
    }
);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = UnknownValue>,
    {
        for value in all {
            let word = value.to_string();
            assert_eq!(word.parse::<T>(), Ok(*value), "{word}");
            for bad in [word.to_uppercase(), format!(" {word}"), format!("{word} ")] {
                assert!(bad.parse::<T>().is_err(), "{bad:?}");
            }
        }
        assert!("".parse::<T>().is_err());
    }

    #[test]
    fn every_word_round_trips_exactly() {
        round_trips(LoanStatus::ALL);
        round_trips(HoldStatus::ALL);
        round_trips(FineStatus::ALL);
        round_trips(FineReason::ALL);
        round_trips(PaymentMethod::ALL);
        round_trips(CopyStatus::ALL);
        round_trips(ImportStatus::ALL);
        round_trips(OutboxState::ALL);
        round_trips(MessageKind::ALL);
    }

    /// Every variant of `all` survives the trip through its stored text (and
    /// `String`), the words are the ones given, and other text is refused
    /// with the set's name.
    fn stores_exactly<T>(all: &[T], words: &[&str], what: &'static str)
    where
        T: Copy
            + PartialEq
            + fmt::Debug
            + fmt::Display
            + FromStr<Err = UnknownValue>
            + TryFrom<String, Error = UnknownValue>
            + Into<String>,
    {
        let stored: Vec<String> = all.iter().map(|v| (*v).into()).collect();
        assert_eq!(stored, words);
        for (value, word) in all.iter().zip(words) {
            assert_eq!(T::try_from((*word).to_owned()), Ok(*value));
        }
        for bad in ["", "unknown", "Pending", "DONE", "hold-ready"] {
            assert_eq!(
                T::try_from(bad.to_owned()),
                Err(UnknownValue(what)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn import_statuses() {
        stores_exactly(
            ImportStatus::ALL,
            &["queued", "running", "done", "failed"],
            "import status",
        );
    }

    #[test]
    fn outbox_states() {
        stores_exactly(
            OutboxState::ALL,
            &["pending", "sent", "dead"],
            "outbox state",
        );
    }

    #[test]
    fn message_kinds() {
        stores_exactly(
            MessageKind::ALL,
            &[
                "verify_email",
                "password_reset",
                "invitation",
                "account_locked",
                "registration_attempt",
                "username_taken",
                "hold_ready",
                "due_soon",
                "overdue",
            ],
            "message kind",
        );
    }

    #[test]
    fn the_stored_words() {
        assert_eq!(CopyStatus::OnHoldShelf.as_str(), "on_hold_shelf");
        assert_eq!(CopyStatus::InTransit.as_str(), "in_transit");
        assert_eq!(LoanStatus::Overdue.as_str(), "overdue");
        assert_eq!(PaymentMethod::Online.as_str(), "online");
        assert_eq!(String::from(CopyStatus::OnLoan), "on_loan");
    }

    #[test]
    fn an_unknown_word_names_its_set() {
        assert_eq!(
            "borrowed".parse::<LoanStatus>(),
            Err(UnknownValue("loan status"))
        );
        assert_eq!(
            String::from("cheque").try_into(),
            Err::<PaymentMethod, _>(UnknownValue("payment method"))
        );
        assert_eq!(
            UnknownValue("fine status").to_string(),
            "not a known fine status"
        );
    }

    #[test]
    fn copies_in_circulation() {
        let held: Vec<_> = CopyStatus::ALL
            .iter()
            .filter(|s| s.in_circulation())
            .collect();
        assert_eq!(
            held,
            [
                &CopyStatus::OnLoan,
                &CopyStatus::OnHoldShelf,
                &CopyStatus::InTransit
            ]
        );
    }

    #[test]
    fn open_loans_and_holds() {
        let open: Vec<_> = LoanStatus::ALL.iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [&LoanStatus::Active, &LoanStatus::Overdue]);
        let open: Vec<_> = HoldStatus::ALL.iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [&HoldStatus::Waiting, &HoldStatus::Ready]);
    }
}
