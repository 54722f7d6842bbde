//! Typed SIP2 2.00 messages.
//!
//! Each struct lists its fixed fields (positional, in wire order) and then its variable
//! fields (written in the order below; read in any order). Required text fields are
//! `String`s (absent reads as empty, and they are always written); optional fields are
//! `Option`s; repeatable fields (`AF`, `AG`, `AS`…) are `Vec`s in wire order. Variable
//! fields a struct does not model land in `extra`, in arrival order, and are written
//! back after the modelled ones.

use crate::codes::{
    AlertType, CirculationStatus, FeeType, Language, MediaType, PatronStatusFlags, PaymentType,
    ScStatusCode, SecurityMarker, Summary,
};
use crate::datetime::SipDateTime;
use crate::fields::{
    Code, Cursor, Digits, FieldError, FieldValue, FixedCodec, Flags, OneZero, OptStamp, Password,
    Stamp, SummaryField, Text, UnknownField, VarField, VarFields, YesNo, YesNoUnknown, write_var,
};

/// A four-digit limit written zero-padded in a variable field (`BZ`, `CA`, `CB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ItemLimit(pub u32);

impl FieldValue for ItemLimit {
    fn to_text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(format!("{:04}", self.0.min(9999)))
    }
    fn from_text(text: &str) -> Result<Self, String> {
        u32::from_text(text).map(ItemLimit)
    }
}

/// Writes an `Option` field that the specification requires even when there is
/// nothing to say (`AH` in 12 and 30): `None` is written as an empty field.
fn write_always<T: FieldValue>(value: &Option<T>, id: &str, out: &mut String) {
    match value {
        Some(v) => write_var(out, id, &v.to_text()),
        None => write_var(out, id, ""),
    }
}

macro_rules! write_field {
    ($value:expr, $id:expr, $out:expr) => {
        VarField::write($value, $id, $out)
    };
    ($value:expr, $id:expr, $out:expr, always) => {
        write_always($value, $id, $out)
    };
}

macro_rules! sip_message {
    (
        $(#[$meta:meta])*
        $name:ident = $code:literal {
            fixed { $( $(#[$fmeta:meta])* $fname:ident : $fty:ty as $fcodec:ty ),* $(,)? }
            fields { $( $(#[$vmeta:meta])* $vname:ident : $vty:ty = $vid:literal $($always:ident)? ),* $(,)? }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $fname: $fty, )*
            $( $(#[$vmeta])* #[doc = concat!("\n\nField `", $vid, "`.")] pub $vname: $vty, )*
            /// Variable fields not modelled above, in arrival order.
            pub extra: Vec<UnknownField>,
        }

        impl $name {
            /// The two-digit message identifier.
            pub const CODE: &'static str = $code;

            pub(crate) fn write_body(&self, out: &mut String) {
                out.push_str($code);
                $( <$fcodec as FixedCodec<$fty>>::write(&self.$fname, out); )*
                $( write_field!(&self.$vname, $vid, out $(, $always)?); )*
                for field in &self.extra {
                    write_var(out, &field.id, &field.value);
                }
            }

            /// Reads the message after its two-digit identifier.
            #[allow(unused_mut)]
            pub(crate) fn parse_body(text: &str) -> Result<Self, FieldError> {
                let mut cursor = Cursor::new(text);
                $( let $fname = cursor.fixed::<$fty, $fcodec>(stringify!($fname))?; )*
                let mut fields = VarFields::parse(cursor.rest())?;
                $( let $vname = <$vty as VarField>::take(&mut fields, $vid)?; )*
                Ok($name {
                    $( $fname, )*
                    $( $vname, )*
                    extra: fields.into_extra(),
                })
            }
        }
    };
}

// ------------------------------------------------------------------ requests

sip_message! {
    /// Login (93): the terminal's account.
    LoginRequest = "93" {
        fixed {
            /// UID algorithm (`0`: not encrypted).
            uid_algorithm: String as Text<1>,
            /// Password algorithm (`0`: not encrypted).
            pwd_algorithm: String as Text<1>,
        }
        fields {
            /// Login user id.
            login_user_id: String = "CN",
            /// Login password.
            login_password: Password = "CO",
            /// Location code.
            location_code: Option<String> = "CP",
        }
    }
}

sip_message! {
    /// SC status (99).
    ScStatusRequest = "99" {
        fixed {
            /// Status of the self-check.
            status_code: ScStatusCode as Code,
            /// Maximum print width (3 digits).
            max_print_width: u32 as Digits<3>,
            /// Protocol version (`2.00`).
            protocol_version: String as Text<4>,
        }
        fields {}
    }
}

sip_message! {
    /// Patron status request (23).
    PatronStatusRequest = "23" {
        fixed {
            /// Language of the terminal's user.
            language: Language as Code,
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Patron password (PIN).
            patron_password: Option<Password> = "AD",
        }
    }
}

sip_message! {
    /// Patron information (63).
    PatronInformationRequest = "63" {
        fixed {
            /// Language of the terminal's user.
            language: Language as Code,
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
            /// Which item list to return.
            summary: Summary as SummaryField,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Patron password (PIN).
            patron_password: Option<Password> = "AD",
            /// First item of the list to return (1-based).
            start_item: Option<u32> = "BP",
            /// Last item of the list to return (1-based, inclusive).
            end_item: Option<u32> = "BQ",
        }
    }
}

sip_message! {
    /// Checkout (11).
    CheckoutRequest = "11" {
        fixed {
            /// SC renewal policy.
            sc_renewal_policy: bool as YesNo,
            /// No block (the transaction already happened offline).
            no_block: bool as YesNo,
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
            /// Due date of an offline (no block) checkout.
            nb_due_date: Option<SipDateTime> as OptStamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Item identifier (barcode).
            item_identifier: String = "AB",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Item properties.
            item_properties: Option<String> = "CH",
            /// Patron password (PIN).
            patron_password: Option<Password> = "AD",
            /// Fee acknowledged.
            fee_acknowledged: Option<bool> = "BO",
            /// Cancel a previous checkout of this item.
            cancel: Option<bool> = "BI",
        }
    }
}

sip_message! {
    /// Checkin (09).
    CheckinRequest = "09" {
        fixed {
            /// No block (the transaction already happened offline).
            no_block: bool as YesNo,
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
            /// Return date.
            return_date: Option<SipDateTime> as OptStamp,
        }
        fields {
            /// Current location.
            current_location: String = "AP",
            /// Institution id.
            institution_id: String = "AO",
            /// Item identifier (barcode).
            item_identifier: String = "AB",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Item properties.
            item_properties: Option<String> = "CH",
            /// Cancel a previous checkin of this item.
            cancel: Option<bool> = "BI",
        }
    }
}

sip_message! {
    /// Item information (17).
    ItemInformationRequest = "17" {
        fixed {
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Item identifier (barcode).
            item_identifier: String = "AB",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
        }
    }
}

sip_message! {
    /// Renew (29).
    RenewRequest = "29" {
        fixed {
            /// Third party allowed.
            third_party_allowed: bool as YesNo,
            /// No block (the transaction already happened offline).
            no_block: bool as YesNo,
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
            /// Due date of an offline (no block) renewal.
            nb_due_date: Option<SipDateTime> as OptStamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Patron password (PIN).
            patron_password: Option<Password> = "AD",
            /// Item identifier (barcode).
            item_identifier: Option<String> = "AB",
            /// Title identifier.
            title_identifier: Option<String> = "AJ",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Item properties.
            item_properties: Option<String> = "CH",
            /// Fee acknowledged.
            fee_acknowledged: Option<bool> = "BO",
        }
    }
}

sip_message! {
    /// Renew all (65).
    RenewAllRequest = "65" {
        fixed {
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Patron password (PIN).
            patron_password: Option<Password> = "AD",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Fee acknowledged.
            fee_acknowledged: Option<bool> = "BO",
        }
    }
}

sip_message! {
    /// End patron session (35).
    EndPatronSessionRequest = "35" {
        fixed {
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Patron password (PIN).
            patron_password: Option<Password> = "AD",
        }
    }
}

sip_message! {
    /// Fee paid (37).
    FeePaidRequest = "37" {
        fixed {
            /// Transaction date (`None` when sent blank).
            transaction_date: Option<SipDateTime> as OptStamp,
            /// Fee type.
            fee_type: FeeType as Code,
            /// Payment type (`00` cash, `01` VISA, `02` credit card).
            payment_type: PaymentType as Code,
            /// ISO 4217 currency code.
            currency_type: String as Text<3>,
        }
        fields {
            /// Amount paid, as sent (e.g. `12.50`); see [`parse_amount`](crate::parse_amount).
            fee_amount: String = "BV",
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Terminal password.
            terminal_password: Option<Password> = "AC",
            /// Patron password (PIN).
            patron_password: Option<Password> = "AD",
            /// The fine being paid.
            fee_identifier: Option<String> = "CG",
            /// The payment's transaction id.
            transaction_id: Option<String> = "BK",
        }
    }
}

sip_message! {
    /// Request ACS resend (97): send the last response again.
    RequestAcsResend = "97" {
        fixed {}
        fields {}
    }
}

// ----------------------------------------------------------------- responses

sip_message! {
    /// Login response (94).
    LoginResponse = "94" {
        fixed {
            /// Whether the login succeeded.
            ok: bool as OneZero,
        }
        fields {}
    }
}

sip_message! {
    /// ACS status (98).
    AcsStatusResponse = "98" {
        fixed {
            /// On-line status.
            online_status: bool as YesNo,
            /// Checkin allowed.
            checkin_ok: bool as YesNo,
            /// Checkout allowed.
            checkout_ok: bool as YesNo,
            /// ACS renewal policy (renewals allowed).
            acs_renewal_policy: bool as YesNo,
            /// Item status updates allowed.
            status_update_ok: bool as YesNo,
            /// Offline operation allowed.
            offline_ok: bool as YesNo,
            /// Timeout period in tenths of a second (3 digits; `000` none).
            timeout_period: u32 as Digits<3>,
            /// Retries allowed (3 digits; `999` unknown).
            retries_allowed: u32 as Digits<3>,
            /// The ACS's clock.
            date_time_sync: SipDateTime as Stamp,
            /// Protocol version (`2.00`).
            protocol_version: String as Text<4>,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Library name.
            library_name: Option<String> = "AM",
            /// Supported messages (16 `Y`/`N`).
            supported_messages: String = "BX",
            /// Terminal location.
            terminal_location: Option<String> = "AN",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Patron status response (24).
    PatronStatusResponse = "24" {
        fixed {
            /// Patron status flags.
            patron_status: PatronStatusFlags as Flags,
            /// Language.
            language: Language as Code,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Personal name.
            personal_name: String = "AE",
            /// Whether the patron exists.
            valid_patron: Option<bool> = "BL",
            /// Whether the PIN was right.
            valid_patron_password: Option<bool> = "CQ",
            /// ISO 4217 currency code.
            currency_type: Option<String> = "BH",
            /// Amount owed.
            fee_amount: Option<String> = "BV",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Patron information response (64).
    PatronInformationResponse = "64" {
        fixed {
            /// Patron status flags.
            patron_status: PatronStatusFlags as Flags,
            /// Language.
            language: Language as Code,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
            /// Hold items count.
            hold_items_count: u32 as Digits<4>,
            /// Overdue items count.
            overdue_items_count: u32 as Digits<4>,
            /// Charged items count.
            charged_items_count: u32 as Digits<4>,
            /// Fine items count.
            fine_items_count: u32 as Digits<4>,
            /// Recall items count.
            recall_items_count: u32 as Digits<4>,
            /// Unavailable holds count.
            unavailable_holds_count: u32 as Digits<4>,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Personal name.
            personal_name: String = "AE",
            /// Hold items limit.
            hold_items_limit: Option<ItemLimit> = "BZ",
            /// Overdue items limit.
            overdue_items_limit: Option<ItemLimit> = "CA",
            /// Charged items limit.
            charged_items_limit: Option<ItemLimit> = "CB",
            /// Whether the patron exists.
            valid_patron: Option<bool> = "BL",
            /// Whether the PIN was right.
            valid_patron_password: Option<bool> = "CQ",
            /// ISO 4217 currency code.
            currency_type: Option<String> = "BH",
            /// Amount owed.
            fee_amount: Option<String> = "BV",
            /// Fee limit.
            fee_limit: Option<String> = "CC",
            /// Hold items.
            hold_items: Vec<String> = "AS",
            /// Overdue items.
            overdue_items: Vec<String> = "AT",
            /// Charged items.
            charged_items: Vec<String> = "AU",
            /// Fine items.
            fine_items: Vec<String> = "AV",
            /// Recall items.
            recall_items: Vec<String> = "BU",
            /// Unavailable hold items.
            unavailable_hold_items: Vec<String> = "CD",
            /// Home address.
            home_address: Option<String> = "BD",
            /// E-mail address.
            email_address: Option<String> = "BE",
            /// Home phone number.
            home_phone_number: Option<String> = "BF",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Checkout response (12).
    CheckoutResponse = "12" {
        fixed {
            /// Whether the checkout happened.
            ok: bool as OneZero,
            /// Renewal ok (the item was already on loan to this patron).
            renewal_ok: bool as YesNo,
            /// Magnetic media (`U` unknown as `None`).
            magnetic_media: Option<bool> as YesNoUnknown,
            /// Desensitize (`U` unknown as `None`).
            desensitize: Option<bool> as YesNoUnknown,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Item identifier (barcode).
            item_identifier: String = "AB",
            /// Title identifier.
            title_identifier: String = "AJ",
            /// Due date (written empty when `None`).
            due_date: Option<SipDateTime> = "AH" always,
            /// Fee type.
            fee_type: Option<FeeType> = "BT",
            /// Security inhibit.
            security_inhibit: Option<bool> = "CI",
            /// ISO 4217 currency code.
            currency_type: Option<String> = "BH",
            /// Fee amount.
            fee_amount: Option<String> = "BV",
            /// Media type.
            media_type: Option<MediaType> = "CK",
            /// Item properties.
            item_properties: Option<String> = "CH",
            /// Transaction id.
            transaction_id: Option<String> = "BK",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Checkin response (10).
    CheckinResponse = "10" {
        fixed {
            /// Whether the checkin happened.
            ok: bool as OneZero,
            /// Resensitize the item.
            resensitize: bool as YesNo,
            /// Magnetic media (`U` unknown as `None`).
            magnetic_media: Option<bool> as YesNoUnknown,
            /// Alert the operator (see `alert_type`).
            alert: bool as YesNo,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Item identifier (barcode).
            item_identifier: String = "AB",
            /// Permanent location.
            permanent_location: String = "AQ",
            /// Title identifier.
            title_identifier: Option<String> = "AJ",
            /// Sort bin.
            sort_bin: Option<String> = "CL",
            /// Patron identifier of the borrower.
            patron_identifier: Option<String> = "AA",
            /// Media type.
            media_type: Option<MediaType> = "CK",
            /// Item properties.
            item_properties: Option<String> = "CH",
            /// Call number (extension).
            call_number: Option<String> = "CS",
            /// Destination location (extension).
            destination_location: Option<String> = "CT",
            /// Alert type (extension).
            alert_type: Option<AlertType> = "CV",
            /// Patron identifier of the hold's patron (extension).
            hold_patron_id: Option<String> = "CY",
            /// Name of the hold's patron (extension).
            hold_patron_name: Option<String> = "DA",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Item information response (18).
    ItemInformationResponse = "18" {
        fixed {
            /// Circulation status.
            circulation_status: CirculationStatus as Code,
            /// Security marker.
            security_marker: SecurityMarker as Code,
            /// Fee type.
            fee_type: FeeType as Code,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Number of holds queued for the item.
            hold_queue_length: Option<u32> = "CF",
            /// Due date.
            due_date: Option<SipDateTime> = "AH",
            /// Recall date.
            recall_date: Option<SipDateTime> = "CJ",
            /// Hold pickup date.
            hold_pickup_date: Option<SipDateTime> = "CM",
            /// Item identifier (barcode).
            item_identifier: String = "AB",
            /// Title identifier.
            title_identifier: String = "AJ",
            /// Owner.
            owner: Option<String> = "BG",
            /// ISO 4217 currency code.
            currency_type: Option<String> = "BH",
            /// Fee amount.
            fee_amount: Option<String> = "BV",
            /// Media type.
            media_type: Option<MediaType> = "CK",
            /// Permanent location.
            permanent_location: Option<String> = "AQ",
            /// Current location.
            current_location: Option<String> = "AP",
            /// Item properties.
            item_properties: Option<String> = "CH",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Renew response (30).
    RenewResponse = "30" {
        fixed {
            /// Whether the renewal happened.
            ok: bool as OneZero,
            /// Renewal ok.
            renewal_ok: bool as YesNo,
            /// Magnetic media (`U` unknown as `None`).
            magnetic_media: Option<bool> as YesNoUnknown,
            /// Desensitize (`U` unknown as `None`).
            desensitize: Option<bool> as YesNoUnknown,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Item identifier (barcode).
            item_identifier: String = "AB",
            /// Title identifier.
            title_identifier: String = "AJ",
            /// Due date (written empty when `None`).
            due_date: Option<SipDateTime> = "AH" always,
            /// Fee type.
            fee_type: Option<FeeType> = "BT",
            /// Security inhibit.
            security_inhibit: Option<bool> = "CI",
            /// ISO 4217 currency code.
            currency_type: Option<String> = "BH",
            /// Fee amount.
            fee_amount: Option<String> = "BV",
            /// Media type.
            media_type: Option<MediaType> = "CK",
            /// Item properties.
            item_properties: Option<String> = "CH",
            /// Transaction id.
            transaction_id: Option<String> = "BK",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Renew all response (66).
    RenewAllResponse = "66" {
        fixed {
            /// Whether the request was processed.
            ok: bool as OneZero,
            /// Number of items renewed.
            renewed_count: u32 as Digits<4>,
            /// Number of items not renewed.
            unrenewed_count: u32 as Digits<4>,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Renewed items.
            renewed_items: Vec<String> = "BM",
            /// Items not renewed.
            unrenewed_items: Vec<String> = "BN",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// End session response (36).
    EndSessionResponse = "36" {
        fixed {
            /// Whether the patron session ended.
            end_session: bool as YesNo,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Fee paid response (38).
    FeePaidResponse = "38" {
        fixed {
            /// Whether the payment was accepted.
            payment_accepted: bool as YesNo,
            /// Transaction date.
            transaction_date: SipDateTime as Stamp,
        }
        fields {
            /// Institution id.
            institution_id: String = "AO",
            /// Patron identifier (card number).
            patron_identifier: String = "AA",
            /// Transaction id.
            transaction_id: Option<String> = "BK",
            /// Screen messages.
            screen_message: Vec<String> = "AF",
            /// Print lines.
            print_line: Vec<String> = "AG",
        }
    }
}

sip_message! {
    /// Request SC resend (96): the ACS could not read the last message.
    RequestScResend = "96" {
        fixed {}
        fields {}
    }
}

// ------------------------------------------------------------------- enums

macro_rules! message_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident($ty:ident) ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
        }

        impl $name {
            /// The two-digit message identifier.
            pub fn code(&self) -> &'static str {
                match self {
                    $( $name::$variant(_) => $ty::CODE, )*
                }
            }

            /// Whether this crate models message `code` in this direction.
            pub fn is_known_code(code: &str) -> bool {
                matches!(code, $( $ty::CODE )|*)
            }

            /// The message text (identifier, fixed and variable fields), without
            /// error detection or terminator.
            pub fn to_body(&self) -> String {
                let mut out = String::new();
                match self {
                    $( $name::$variant(m) => m.write_body(&mut out), )*
                }
                out
            }

            /// Reads message `code` from the text after the identifier; `None` when
            /// the code is not one of this enum's.
            pub(crate) fn parse_body(code: &str, text: &str) -> Option<Result<Self, FieldError>> {
                Some(match code {
                    $( $ty::CODE => $ty::parse_body(text).map($name::$variant), )*
                    _ => return None,
                })
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(m: $ty) -> Self {
                    $name::$variant(m)
                }
            }
        )*
    };
}

message_enum! {
    /// A message from the self-check (SC) to Carrel (the ACS).
    Request {
        /// 93
        Login(LoginRequest),
        /// 99
        ScStatus(ScStatusRequest),
        /// 23
        PatronStatus(PatronStatusRequest),
        /// 63
        PatronInformation(PatronInformationRequest),
        /// 11
        Checkout(CheckoutRequest),
        /// 09
        Checkin(CheckinRequest),
        /// 17
        ItemInformation(ItemInformationRequest),
        /// 29
        Renew(RenewRequest),
        /// 65
        RenewAll(RenewAllRequest),
        /// 35
        EndPatronSession(EndPatronSessionRequest),
        /// 37
        FeePaid(FeePaidRequest),
        /// 97
        RequestAcsResend(RequestAcsResend),
    }
}

message_enum! {
    /// A message from Carrel (the ACS) to the self-check (SC).
    Response {
        /// 94
        Login(LoginResponse),
        /// 98
        AcsStatus(AcsStatusResponse),
        /// 24
        PatronStatus(PatronStatusResponse),
        /// 64
        PatronInformation(PatronInformationResponse),
        /// 12
        Checkout(CheckoutResponse),
        /// 10
        Checkin(CheckinResponse),
        /// 18
        ItemInformation(ItemInformationResponse),
        /// 30
        Renew(RenewResponse),
        /// 66
        RenewAll(RenewAllResponse),
        /// 36
        EndSession(EndSessionResponse),
        /// 38
        FeePaid(FeePaidResponse),
        /// 96
        RequestScResend(RequestScResend),
    }
}
