//! What the session asks of the library system: the [`Sip2Backend`] trait and the
//! outcomes it returns.
//!
//! Outcomes hold what only the library system knows; the session adds what the
//! protocol dictates (the echoed institution, patron and item identifiers, the
//! language, the transaction date, counts, the `BP`/`BQ` window, error detection).

use std::future::Future;

use time::OffsetDateTime;

use crate::codes::{
    AlertType, CirculationStatus, FeeType, Language, MediaType, PatronStatusFlags, SecurityMarker,
};
use crate::datetime::SipDateTime;
use crate::messages::{
    CheckinRequest, CheckoutRequest, EndPatronSessionRequest, FeePaidRequest,
    ItemInformationRequest, LoginRequest, PatronInformationRequest, PatronStatusRequest,
    RenewAllRequest, RenewRequest, ScStatusRequest,
};

/// The logged-in terminal and the connection's patron-facing language.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a, T> {
    /// What [`Sip2Backend::login`] returned for this connection.
    pub terminal: &'a T,
    /// The language of the last patron status (23) or patron information (63)
    /// request since the last end patron session (35); use it for `AF`/`AG` texts
    /// (see [`Language::bcp47`]). [`Language::Unknown`] when none was given.
    pub language: &'a Language,
}

/// The library system behind a SIP2 connection. One value serves one connection, so
/// it may carry the peer's address (for login rate limits) alongside shared state.
///
/// Methods cannot fail: a refusal or an internal error is an outcome with `ok` false
/// (or its message's equivalent) and a screen message.
pub trait Sip2Backend: Send + Sync {
    /// What a successful login yields (e.g. the terminal account and its branch).
    type Terminal: Send + Sync;

    /// The current time (from the server's injectable clock). Responses carry it as
    /// their transaction date: a UTC instant is written with the `   Z` zone, any
    /// other offset as local time in that offset.
    fn now(&self) -> OffsetDateTime;

    /// Login (93): `Some` logs the connection in, `None` refuses (94 with ok 0).
    fn login(&self, request: &LoginRequest) -> impl Future<Output = Option<Self::Terminal>> + Send;

    /// SC status (99), allowed before login (then `terminal` is `None`).
    fn sc_status(
        &self,
        terminal: Option<&Self::Terminal>,
        request: &ScStatusRequest,
    ) -> impl Future<Output = AcsStatusOutcome> + Send;

    /// Patron status (23).
    fn patron_status(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &PatronStatusRequest,
    ) -> impl Future<Output = PatronStatusOutcome> + Send;

    /// Patron information (63). Return the whole list named by `request.summary`
    /// in [`PatronInformationOutcome::items`]; the session cuts the `BP`/`BQ` window.
    fn patron_information(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &PatronInformationRequest,
    ) -> impl Future<Output = PatronInformationOutcome> + Send;

    /// Checkout (11).
    fn checkout(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &CheckoutRequest,
    ) -> impl Future<Output = LoanOutcome> + Send;

    /// Checkin (09).
    fn checkin(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &CheckinRequest,
    ) -> impl Future<Output = CheckinOutcome> + Send;

    /// Item information (17).
    fn item_information(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &ItemInformationRequest,
    ) -> impl Future<Output = ItemInformationOutcome> + Send;

    /// Renew (29).
    fn renew(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &RenewRequest,
    ) -> impl Future<Output = LoanOutcome> + Send;

    /// Renew all (65).
    fn renew_all(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &RenewAllRequest,
    ) -> impl Future<Output = RenewAllOutcome> + Send;

    /// End patron session (35).
    fn end_patron_session(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &EndPatronSessionRequest,
    ) -> impl Future<Output = EndSessionOutcome> + Send;

    /// Fee paid (37).
    fn fee_paid(
        &self,
        context: Context<'_, Self::Terminal>,
        request: &FeePaidRequest,
    ) -> impl Future<Output = FeePaidOutcome> + Send;
}

/// The ACS status (98) apart from its clock, protocol version and supported messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcsStatusOutcome {
    /// On-line status.
    pub online: bool,
    /// Checkin allowed.
    pub checkin_ok: bool,
    /// Checkout allowed.
    pub checkout_ok: bool,
    /// Renewals allowed.
    pub renewal_policy: bool,
    /// Offline operation allowed.
    pub offline_ok: bool,
    /// Timeout period in tenths of a second (`0`: none).
    pub timeout_period: u32,
    /// Retries allowed (`999`: unknown).
    pub retries_allowed: u32,
    /// Institution id.
    pub institution_id: String,
    /// Library name.
    pub library_name: Option<String>,
    /// Terminal location.
    pub terminal_location: Option<String>,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}

/// A patron's standing (24, and the common part of 64).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatronStatusOutcome {
    /// Patron status flags.
    pub flags: PatronStatusFlags,
    /// Personal name (empty when unknown).
    pub personal_name: String,
    /// Whether the patron exists (`BL`).
    pub valid_patron: Option<bool>,
    /// Whether the PIN was right (`CQ`); an empty or wrong PIN is `Some(false)`.
    pub valid_patron_password: Option<bool>,
    /// ISO 4217 currency code.
    pub currency_type: Option<String>,
    /// Amount owed (see [`format_amount`](crate::format_amount)).
    pub fee_amount: Option<String>,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}

/// Counts in a patron information response (64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemCounts {
    /// Holds ready or pending.
    pub hold_items: u32,
    /// Overdue loans.
    pub overdue_items: u32,
    /// Loans.
    pub charged_items: u32,
    /// Fines.
    pub fine_items: u32,
    /// Recalls.
    pub recall_items: u32,
    /// Holds not yet available.
    pub unavailable_holds: u32,
}

/// Patron information (64).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatronInformationOutcome {
    /// The patron's standing.
    pub patron: PatronStatusOutcome,
    /// Counts.
    pub counts: ItemCounts,
    /// The whole list the request's summary names (empty for no summary); the
    /// session sends the `BP`..`BQ` window of it in the matching field.
    pub items: Vec<String>,
    /// Hold items limit.
    pub hold_items_limit: Option<u32>,
    /// Overdue items limit.
    pub overdue_items_limit: Option<u32>,
    /// Charged items limit.
    pub charged_items_limit: Option<u32>,
    /// Fee limit.
    pub fee_limit: Option<String>,
    /// Home address.
    pub home_address: Option<String>,
    /// E-mail address.
    pub email_address: Option<String>,
    /// Home phone number.
    pub home_phone_number: Option<String>,
}

/// A checkout (12) or renewal (30).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoanOutcome {
    /// Whether the loan was made or renewed.
    pub ok: bool,
    /// Renewal ok.
    pub renewal_ok: bool,
    /// Magnetic media (`None`: unknown).
    pub magnetic_media: Option<bool>,
    /// Desensitize (`None`: unknown).
    pub desensitize: Option<bool>,
    /// Title.
    pub title_identifier: String,
    /// Due date.
    pub due_date: Option<SipDateTime>,
    /// Fee type.
    pub fee_type: Option<FeeType>,
    /// Security inhibit.
    pub security_inhibit: Option<bool>,
    /// ISO 4217 currency code.
    pub currency_type: Option<String>,
    /// Fee amount.
    pub fee_amount: Option<String>,
    /// Media type.
    pub media_type: Option<MediaType>,
    /// Item properties.
    pub item_properties: Option<String>,
    /// Transaction id.
    pub transaction_id: Option<String>,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}

/// A checkin (10). The alert flag is set when `alert_type` is present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckinOutcome {
    /// Whether the checkin happened.
    pub ok: bool,
    /// Resensitize.
    pub resensitize: bool,
    /// Magnetic media (`None`: unknown).
    pub magnetic_media: Option<bool>,
    /// `CV`: `01` hold here, `02` hold at another branch, `04` send home.
    pub alert_type: Option<AlertType>,
    /// Permanent location.
    pub permanent_location: String,
    /// Title.
    pub title_identifier: Option<String>,
    /// Sort bin.
    pub sort_bin: Option<String>,
    /// The borrower's patron identifier.
    pub patron_identifier: Option<String>,
    /// Media type.
    pub media_type: Option<MediaType>,
    /// Item properties.
    pub item_properties: Option<String>,
    /// Call number.
    pub call_number: Option<String>,
    /// Where the copy must go (branch code).
    pub destination_location: Option<String>,
    /// The hold's patron identifier.
    pub hold_patron_id: Option<String>,
    /// The hold's patron name.
    pub hold_patron_name: Option<String>,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}

/// Item information (18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInformationOutcome {
    /// Circulation status.
    pub circulation_status: CirculationStatus,
    /// Security marker.
    pub security_marker: SecurityMarker,
    /// Fee type.
    pub fee_type: FeeType,
    /// Hold queue length.
    pub hold_queue_length: Option<u32>,
    /// Due date.
    pub due_date: Option<SipDateTime>,
    /// Recall date.
    pub recall_date: Option<SipDateTime>,
    /// Hold pickup date.
    pub hold_pickup_date: Option<SipDateTime>,
    /// Title (empty when the item is unknown).
    pub title_identifier: String,
    /// Owner.
    pub owner: Option<String>,
    /// ISO 4217 currency code.
    pub currency_type: Option<String>,
    /// Fee amount.
    pub fee_amount: Option<String>,
    /// Media type.
    pub media_type: Option<MediaType>,
    /// Permanent location.
    pub permanent_location: Option<String>,
    /// Current location.
    pub current_location: Option<String>,
    /// Item properties.
    pub item_properties: Option<String>,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}

impl Default for ItemInformationOutcome {
    /// An unknown item: status other, no marker, fee type other/unknown.
    fn default() -> Self {
        ItemInformationOutcome {
            circulation_status: CirculationStatus::OtherStatus,
            security_marker: SecurityMarker::OtherMarker,
            fee_type: FeeType::OtherUnknown,
            hold_queue_length: None,
            due_date: None,
            recall_date: None,
            hold_pickup_date: None,
            title_identifier: String::new(),
            owner: None,
            currency_type: None,
            fee_amount: None,
            media_type: None,
            permanent_location: None,
            current_location: None,
            item_properties: None,
            screen_message: Vec::new(),
            print_line: Vec::new(),
        }
    }
}

/// Renew all (66); the counts are the list lengths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenewAllOutcome {
    /// Whether the request was processed.
    pub ok: bool,
    /// Renewed items.
    pub renewed_items: Vec<String>,
    /// Items not renewed.
    pub unrenewed_items: Vec<String>,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}

/// End patron session (36).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndSessionOutcome {
    /// Whether the patron session ended.
    pub end_session: bool,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}

/// Fee paid (38).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeePaidOutcome {
    /// Whether the payment was accepted.
    pub payment_accepted: bool,
    /// Transaction id.
    pub transaction_id: Option<String>,
    /// Screen messages.
    pub screen_message: Vec<String>,
    /// Print lines.
    pub print_line: Vec<String>,
}
