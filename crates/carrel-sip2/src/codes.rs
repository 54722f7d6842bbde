//! Enumerated SIP2 values: coded fixed fields, the language field, patron status
//! flags and the patron information summary.

/// A coded value with a fixed width (see `code_enum!`).
pub(crate) trait Coded: Sized {
    const WIDTH: usize;
    fn code(&self) -> &str;
    fn from_code(code: &str) -> Self;
}

/// Defines an enum of fixed-width codes with an `Other` fallback that keeps unknown
/// codes verbatim.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, width $width:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this crate does not name, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Width of the code in characters.
            pub const WIDTH: usize = $width;
            /// Every named variant, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire code.
            pub fn code(&self) -> &str {
                match self {
                    $( $name::$variant => $code, )*
                    $name::Other(code) => code,
                }
            }

            /// Reads a wire code; unknown codes become `Other`.
            pub fn from_code(code: &str) -> Self {
                match code {
                    $( $code => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl $crate::codes::Coded for $name {
            const WIDTH: usize = $width;
            fn code(&self) -> &str {
                $name::code(self)
            }
            fn from_code(code: &str) -> Self {
                $name::from_code(code)
            }
        }
    };
}

code_enum! {
    /// SC status code in the SC status message (99).
    ScStatusCode, width 1 {
        /// The SC is working.
        Ok = "0",
        /// The printer is out of paper.
        PrinterOutOfPaper = "1",
        /// The SC is about to shut down.
        ShuttingDown = "2",
    }
}

code_enum! {
    /// Fee type (fixed field in 18 and 37, `BT` in 12 and 30).
    FeeType, width 2 {
        /// Other or unknown.
        OtherUnknown = "01",
        /// Administrative.
        Administrative = "02",
        /// Damage.
        Damage = "03",
        /// Overdue.
        Overdue = "04",
        /// Processing.
        Processing = "05",
        /// Rental.
        Rental = "06",
        /// Replacement.
        Replacement = "07",
        /// Computer access charge.
        ComputerAccessCharge = "08",
        /// Hold fee.
        HoldFee = "09",
    }
}

code_enum! {
    /// Payment type in fee paid (37).
    PaymentType, width 2 {
        /// Cash.
        Cash = "00",
        /// VISA.
        Visa = "01",
        /// Credit card.
        CreditCard = "02",
    }
}

code_enum! {
    /// Circulation status in item information response (18).
    CirculationStatus, width 2 {
        /// Other.
        OtherStatus = "01",
        /// On order.
        OnOrder = "02",
        /// Available.
        Available = "03",
        /// Charged (on loan).
        Charged = "04",
        /// Charged; not to be recalled until the earliest recall date.
        ChargedNotRecallable = "05",
        /// In process.
        InProcess = "06",
        /// Recalled.
        Recalled = "07",
        /// Waiting on the hold shelf.
        WaitingOnHoldShelf = "08",
        /// Waiting to be re-shelved.
        WaitingToBeReshelved = "09",
        /// In transit between library locations.
        InTransit = "10",
        /// Claimed returned.
        ClaimedReturned = "11",
        /// Lost.
        Lost = "12",
        /// Missing.
        Missing = "13",
    }
}

code_enum! {
    /// Security marker in item information response (18).
    SecurityMarker, width 2 {
        /// Other.
        OtherMarker = "00",
        /// None.
        NoMarker = "01",
        /// 3M Tattle-Tape.
        TattleTape = "02",
        /// 3M Whisper Tape.
        WhisperTape = "03",
    }
}

code_enum! {
    /// Media type (`CK`).
    MediaType, width 3 {
        /// Other.
        OtherMedia = "000",
        /// Book.
        Book = "001",
        /// Magazine.
        Magazine = "002",
        /// Bound journal.
        BoundJournal = "003",
        /// Audio tape.
        AudioTape = "004",
        /// Video tape.
        VideoTape = "005",
        /// CD or CD-ROM.
        CdRom = "006",
        /// Diskette.
        Diskette = "007",
        /// Book with diskette.
        BookWithDiskette = "008",
        /// Book with CD.
        BookWithCd = "009",
        /// Book with audio tape.
        BookWithAudioTape = "010",
    }
}

code_enum! {
    /// Checkin alert type (`CV`, a 3M extension used by Koha and Evergreen).
    AlertType, width 2 {
        /// Unknown.
        Unknown = "00",
        /// The copy fills a hold at this branch.
        HoldHere = "01",
        /// The copy must travel to another branch for a hold.
        HoldElsewhere = "02",
        /// The copy goes to another library (interlibrary loan).
        InterLibraryLoan = "03",
        /// The copy must travel to its home branch.
        SendHome = "04",
        /// Other.
        OtherAlert = "99",
    }
}

code_enum! {
    /// The SIP2 language field (three digits).
    Language, width 3 {
        /// Unknown (`000`).
        Unknown = "000",
        /// English.
        English = "001",
        /// French.
        French = "002",
        /// German.
        German = "003",
        /// Italian.
        Italian = "004",
        /// Dutch.
        Dutch = "005",
        /// Swedish.
        Swedish = "006",
        /// Finnish.
        Finnish = "007",
        /// Spanish.
        Spanish = "008",
        /// Danish.
        Danish = "009",
        /// Portuguese.
        Portuguese = "010",
        /// Canadian French.
        CanadianFrench = "011",
        /// Norwegian.
        Norwegian = "012",
        /// Hebrew.
        Hebrew = "013",
        /// Japanese.
        Japanese = "014",
        /// Russian.
        Russian = "015",
        /// Arabic.
        Arabic = "016",
        /// Polish.
        Polish = "017",
        /// Greek.
        Greek = "018",
        /// Chinese.
        Chinese = "019",
        /// Korean.
        Korean = "020",
        /// North American Spanish.
        NorthAmericanSpanish = "021",
        /// Tamil.
        Tamil = "022",
        /// Malay.
        Malay = "023",
        /// United Kingdom English.
        UnitedKingdom = "024",
        /// Icelandic.
        Icelandic = "025",
        /// Belgian.
        Belgian = "026",
        /// Taiwanese.
        Taiwanese = "027",
    }
}

impl Language {
    /// The BCP 47 tag a backend can use to pick the language of its screen messages
    /// and print lines; `None` for unknown codes. "Belgian" is read as Dutch (Flemish),
    /// "Taiwanese" as traditional Chinese.
    pub fn bcp47(&self) -> Option<&'static str> {
        Some(match self {
            Language::Unknown | Language::Other(_) => return None,
            Language::English => "en",
            Language::French => "fr",
            Language::German => "de",
            Language::Italian => "it",
            Language::Dutch => "nl",
            Language::Swedish => "sv",
            Language::Finnish => "fi",
            Language::Spanish => "es",
            Language::Danish => "da",
            Language::Portuguese => "pt",
            Language::CanadianFrench => "fr-CA",
            Language::Norwegian => "no",
            Language::Hebrew => "he",
            Language::Japanese => "ja",
            Language::Russian => "ru",
            Language::Arabic => "ar",
            Language::Polish => "pl",
            Language::Greek => "el",
            Language::Chinese => "zh",
            Language::Korean => "ko",
            Language::NorthAmericanSpanish => "es-US",
            Language::Tamil => "ta",
            Language::Malay => "ms",
            Language::UnitedKingdom => "en-GB",
            Language::Icelandic => "is",
            Language::Belgian => "nl-BE",
            Language::Taiwanese => "zh-TW",
        })
    }

    /// The primary language subtag (`fr` for Canadian French), for backends that
    /// only carry catalogs per language.
    pub fn primary_language(&self) -> Option<&'static str> {
        self.bcp47()
            .map(|tag| tag.split_once('-').map_or(tag, |(primary, _)| primary))
    }
}

/// The 14 patron status flags (24, 64); `true` is written `Y`, `false` a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PatronStatusFlags {
    /// Charge privileges denied.
    pub charge_privileges_denied: bool,
    /// Renewal privileges denied.
    pub renewal_privileges_denied: bool,
    /// Recall privileges denied.
    pub recall_privileges_denied: bool,
    /// Hold privileges denied.
    pub hold_privileges_denied: bool,
    /// Card reported lost.
    pub card_reported_lost: bool,
    /// Too many items charged.
    pub too_many_items_charged: bool,
    /// Too many items overdue.
    pub too_many_items_overdue: bool,
    /// Too many renewals.
    pub too_many_renewals: bool,
    /// Too many claims of items returned.
    pub too_many_claims_of_items_returned: bool,
    /// Too many items lost.
    pub too_many_items_lost: bool,
    /// Excessive outstanding fines.
    pub excessive_outstanding_fines: bool,
    /// Excessive outstanding fees.
    pub excessive_outstanding_fees: bool,
    /// Recall overdue.
    pub recall_overdue: bool,
    /// Too many items billed.
    pub too_many_items_billed: bool,
}

impl PatronStatusFlags {
    /// Width of the field in characters.
    pub const WIDTH: usize = 14;

    /// The flags in wire order.
    pub fn to_array(self) -> [bool; 14] {
        [
            self.charge_privileges_denied,
            self.renewal_privileges_denied,
            self.recall_privileges_denied,
            self.hold_privileges_denied,
            self.card_reported_lost,
            self.too_many_items_charged,
            self.too_many_items_overdue,
            self.too_many_renewals,
            self.too_many_claims_of_items_returned,
            self.too_many_items_lost,
            self.excessive_outstanding_fines,
            self.excessive_outstanding_fees,
            self.recall_overdue,
            self.too_many_items_billed,
        ]
    }

    /// Flags from wire order.
    pub fn from_array(f: [bool; 14]) -> Self {
        PatronStatusFlags {
            charge_privileges_denied: f[0],
            renewal_privileges_denied: f[1],
            recall_privileges_denied: f[2],
            hold_privileges_denied: f[3],
            card_reported_lost: f[4],
            too_many_items_charged: f[5],
            too_many_items_overdue: f[6],
            too_many_renewals: f[7],
            too_many_claims_of_items_returned: f[8],
            too_many_items_lost: f[9],
            excessive_outstanding_fines: f[10],
            excessive_outstanding_fees: f[11],
            recall_overdue: f[12],
            too_many_items_billed: f[13],
        }
    }
}

/// Which item list a patron information request (63) asks for. The 10-character
/// summary field has at most one `Y`; the first one wins if a client sends several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Summary {
    /// No list.
    #[default]
    None,
    /// Hold items (`AS`).
    HoldItems,
    /// Overdue items (`AT`).
    OverdueItems,
    /// Charged items (`AU`).
    ChargedItems,
    /// Fine items (`AV`).
    FineItems,
    /// Recall items (`BU`).
    RecallItems,
    /// Unavailable holds (`CD`).
    UnavailableHolds,
}

impl Summary {
    /// Width of the field in characters.
    pub const WIDTH: usize = 10;

    /// Position of the `Y` (0-based), if any.
    pub fn position(self) -> Option<usize> {
        match self {
            Summary::None => None,
            Summary::HoldItems => Some(0),
            Summary::OverdueItems => Some(1),
            Summary::ChargedItems => Some(2),
            Summary::FineItems => Some(3),
            Summary::RecallItems => Some(4),
            Summary::UnavailableHolds => Some(5),
        }
    }

    /// The summary whose `Y` is at `position`; positions 6–9 are unused in 2.00.
    pub fn from_position(position: usize) -> Self {
        match position {
            0 => Summary::HoldItems,
            1 => Summary::OverdueItems,
            2 => Summary::ChargedItems,
            3 => Summary::FineItems,
            4 => Summary::RecallItems,
            5 => Summary::UnavailableHolds,
            _ => Summary::None,
        }
    }
}
