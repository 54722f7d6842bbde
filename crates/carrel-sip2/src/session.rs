//! One SIP2 connection's state machine, independent of the transport.
//!
//! Before a successful login only 93 (login) and 99 (SC status) are accepted; any
//! other message closes the connection without an answer. After login every message
//! is dispatched to the [`Sip2Backend`]. Answers:
//! - a bad checksum → 96 (before login too: the message may have been a login);
//! - an unknown, unsupported or malformed message after login (or a malformed 93/99
//!   before it) → 96;
//! - an oversized message → 96 after login, close before;
//! - 97 → the last response again, byte for byte (96 answers are never replayed).
//!
//! A 93 always replaces the connection's login: a failed one logs it out.

use std::ops::Range;

use crate::backend::{Context, PatronInformationOutcome, Sip2Backend};
use crate::codec::{DecodeError, ErrorDetection, decode_request, encode_response};
use crate::codes::{Language, Summary};
use crate::datetime::SipDateTime;
use crate::encoding::Encoding;
use crate::framer::Frame;
use crate::messages::{
    AcsStatusResponse, CheckinResponse, CheckoutResponse, EndSessionResponse, FeePaidResponse,
    ItemInformationResponse, ItemLimit, LoginRequest, LoginResponse, PatronInformationRequest,
    PatronInformationResponse, PatronStatusResponse, RenewAllResponse, RenewResponse, Request,
    RequestScResend, Response,
};

/// The supported messages (`BX`) Carrel announces in 98, in the order of SIP2 2.00:
/// patron status, checkout, checkin, block patron (no), SC/ACS status, resend, login,
/// patron information, end patron session, fee paid, item information, item status
/// update (no), patron enable (no), hold (no), renew, renew all.
pub const SUPPORTED_MESSAGES: &str = "YYYNYYYYYYYNNNYY";

/// The protocol version Carrel speaks.
pub const PROTOCOL_VERSION: &str = "2.00";

/// What the transport should do after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionAction {
    /// Write these bytes (a complete encoded message, CR included).
    Reply(Vec<u8>),
    /// Close the connection without answering.
    Close,
}

/// One connection's SIP2 state.
pub struct Session<B: Sip2Backend> {
    backend: B,
    encoding: Encoding,
    terminal: Option<B::Terminal>,
    language: Language,
    last_response: Option<Vec<u8>>,
}

impl<B: Sip2Backend> std::fmt::Debug for Session<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("encoding", &self.encoding)
            .field("logged_in", &self.is_logged_in())
            .field("language", &self.language)
            .finish_non_exhaustive()
    }
}

impl<B: Sip2Backend> Session<B> {
    /// A connection that has not logged in yet.
    pub fn new(backend: B, encoding: Encoding) -> Self {
        Session {
            backend,
            encoding,
            terminal: None,
            language: Language::Unknown,
            last_response: None,
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The connection's encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The logged-in terminal, if any.
    pub fn terminal(&self) -> Option<&B::Terminal> {
        self.terminal.as_ref()
    }

    /// Whether a login succeeded (and was not replaced by a failed one).
    pub fn is_logged_in(&self) -> bool {
        self.terminal.is_some()
    }

    /// Handles one unit from [`Sip2Framer`](crate::Sip2Framer).
    pub async fn handle(&mut self, frame: Frame) -> SessionAction {
        match frame {
            Frame::Message(bytes) => self.handle_message(&bytes).await,
            Frame::Oversized if self.is_logged_in() => self.resend_request(ErrorDetection::NONE),
            Frame::Oversized => SessionAction::Close,
        }
    }

    /// Handles one message (with or without its CR).
    pub async fn handle_message(&mut self, frame: &[u8]) -> SessionAction {
        let decoded = match decode_request(frame, self.encoding) {
            Ok(decoded) => decoded,
            Err(error) => return self.refuse(frame, &error),
        };
        let detection = decoded.error_detection;
        let response = match decoded.message {
            Request::Login(request) => self.login(&request).await,
            Request::ScStatus(request) => {
                let outcome = self
                    .backend
                    .sc_status(self.terminal.as_ref(), &request)
                    .await;
                Response::AcsStatus(AcsStatusResponse {
                    online_status: outcome.online,
                    checkin_ok: outcome.checkin_ok,
                    checkout_ok: outcome.checkout_ok,
                    acs_renewal_policy: outcome.renewal_policy,
                    status_update_ok: false,
                    offline_ok: outcome.offline_ok,
                    timeout_period: outcome.timeout_period,
                    retries_allowed: outcome.retries_allowed,
                    date_time_sync: self.now(),
                    protocol_version: PROTOCOL_VERSION.to_owned(),
                    institution_id: outcome.institution_id,
                    library_name: outcome.library_name,
                    supported_messages: SUPPORTED_MESSAGES.to_owned(),
                    terminal_location: outcome.terminal_location,
                    screen_message: outcome.screen_message,
                    print_line: outcome.print_line,
                    extra: Vec::new(),
                })
            }
            _ if !self.is_logged_in() => return SessionAction::Close,
            Request::RequestAcsResend(_) => {
                return match &self.last_response {
                    Some(bytes) => SessionAction::Reply(bytes.clone()),
                    None => self.resend_request(detection),
                };
            }
            request => match self.dispatch(request).await {
                Some(response) => response,
                None => return SessionAction::Close,
            },
        };
        let bytes = encode_response(&response, self.encoding, detection);
        self.last_response = Some(bytes.clone());
        SessionAction::Reply(bytes)
    }

    fn now(&self) -> SipDateTime {
        SipDateTime::from_offset(self.backend.now())
    }

    fn refuse(&self, frame: &[u8], error: &DecodeError) -> SessionAction {
        let detection = ErrorDetection::sniff(frame);
        let may_answer = match error {
            DecodeError::BadChecksum => true,
            DecodeError::Malformed { code, .. } => {
                self.is_logged_in() || code == LoginRequest::CODE || code == "99"
            }
            DecodeError::NotAMessage | DecodeError::Unsupported { .. } => self.is_logged_in(),
        };
        if may_answer {
            self.resend_request(detection)
        } else {
            SessionAction::Close
        }
    }

    /// A 96 (never remembered as the last response).
    fn resend_request(&self, detection: ErrorDetection) -> SessionAction {
        let response = Response::RequestScResend(RequestScResend { extra: Vec::new() });
        let detection = ErrorDetection {
            sequence: None,
            checksum: detection.is_enabled(),
        };
        SessionAction::Reply(encode_response(&response, self.encoding, detection))
    }

    async fn login(&mut self, request: &LoginRequest) -> Response {
        self.terminal = self.backend.login(request).await;
        self.language = Language::Unknown;
        Response::Login(LoginResponse {
            ok: self.terminal.is_some(),
            extra: Vec::new(),
        })
    }

    /// Requests that need a login. `None` only if called without one.
    async fn dispatch(&mut self, request: Request) -> Option<Response> {
        let now = self.now();
        if let Request::PatronStatus(r) = &request {
            self.language = r.language.clone();
        }
        if let Request::PatronInformation(r) = &request {
            self.language = r.language.clone();
        }
        let terminal = self.terminal.as_ref()?;
        let context = Context {
            terminal,
            language: &self.language,
        };
        let backend = &self.backend;
        let response = match request {
            Request::PatronStatus(r) => {
                let o = backend.patron_status(context, &r).await;
                Response::PatronStatus(PatronStatusResponse {
                    patron_status: o.flags,
                    language: r.language,
                    transaction_date: now,
                    institution_id: r.institution_id,
                    patron_identifier: r.patron_identifier,
                    personal_name: o.personal_name,
                    valid_patron: o.valid_patron,
                    valid_patron_password: o.valid_patron_password,
                    currency_type: o.currency_type,
                    fee_amount: o.fee_amount,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            Request::PatronInformation(r) => {
                let o = backend.patron_information(context, &r).await;
                Response::PatronInformation(patron_information_response(r, o, now))
            }
            Request::Checkout(r) => {
                let o = backend.checkout(context, &r).await;
                Response::Checkout(CheckoutResponse {
                    ok: o.ok,
                    renewal_ok: o.renewal_ok,
                    magnetic_media: o.magnetic_media,
                    desensitize: o.desensitize,
                    transaction_date: now,
                    institution_id: r.institution_id,
                    patron_identifier: r.patron_identifier,
                    item_identifier: r.item_identifier,
                    title_identifier: o.title_identifier,
                    due_date: o.due_date,
                    fee_type: o.fee_type,
                    security_inhibit: o.security_inhibit,
                    currency_type: o.currency_type,
                    fee_amount: o.fee_amount,
                    media_type: o.media_type,
                    item_properties: o.item_properties,
                    transaction_id: o.transaction_id,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            Request::Renew(r) => {
                let o = backend.renew(context, &r).await;
                Response::Renew(RenewResponse {
                    ok: o.ok,
                    renewal_ok: o.renewal_ok,
                    magnetic_media: o.magnetic_media,
                    desensitize: o.desensitize,
                    transaction_date: now,
                    institution_id: r.institution_id,
                    patron_identifier: r.patron_identifier,
                    item_identifier: r.item_identifier.unwrap_or_default(),
                    title_identifier: o.title_identifier,
                    due_date: o.due_date,
                    fee_type: o.fee_type,
                    security_inhibit: o.security_inhibit,
                    currency_type: o.currency_type,
                    fee_amount: o.fee_amount,
                    media_type: o.media_type,
                    item_properties: o.item_properties,
                    transaction_id: o.transaction_id,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            Request::Checkin(r) => {
                let o = backend.checkin(context, &r).await;
                Response::Checkin(CheckinResponse {
                    ok: o.ok,
                    resensitize: o.resensitize,
                    magnetic_media: o.magnetic_media,
                    alert: o.alert_type.is_some(),
                    transaction_date: now,
                    institution_id: r.institution_id,
                    item_identifier: r.item_identifier,
                    permanent_location: o.permanent_location,
                    title_identifier: o.title_identifier,
                    sort_bin: o.sort_bin,
                    patron_identifier: o.patron_identifier,
                    media_type: o.media_type,
                    item_properties: o.item_properties,
                    call_number: o.call_number,
                    destination_location: o.destination_location,
                    alert_type: o.alert_type,
                    hold_patron_id: o.hold_patron_id,
                    hold_patron_name: o.hold_patron_name,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            Request::ItemInformation(r) => {
                let o = backend.item_information(context, &r).await;
                Response::ItemInformation(ItemInformationResponse {
                    circulation_status: o.circulation_status,
                    security_marker: o.security_marker,
                    fee_type: o.fee_type,
                    transaction_date: now,
                    hold_queue_length: o.hold_queue_length,
                    due_date: o.due_date,
                    recall_date: o.recall_date,
                    hold_pickup_date: o.hold_pickup_date,
                    item_identifier: r.item_identifier,
                    title_identifier: o.title_identifier,
                    owner: o.owner,
                    currency_type: o.currency_type,
                    fee_amount: o.fee_amount,
                    media_type: o.media_type,
                    permanent_location: o.permanent_location,
                    current_location: o.current_location,
                    item_properties: o.item_properties,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            Request::RenewAll(r) => {
                let o = backend.renew_all(context, &r).await;
                Response::RenewAll(RenewAllResponse {
                    ok: o.ok,
                    renewed_count: count(o.renewed_items.len()),
                    unrenewed_count: count(o.unrenewed_items.len()),
                    transaction_date: now,
                    institution_id: r.institution_id,
                    renewed_items: o.renewed_items,
                    unrenewed_items: o.unrenewed_items,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            Request::EndPatronSession(r) => {
                let o = backend.end_patron_session(context, &r).await;
                self.language = Language::Unknown;
                Response::EndSession(EndSessionResponse {
                    end_session: o.end_session,
                    transaction_date: now,
                    institution_id: r.institution_id,
                    patron_identifier: r.patron_identifier,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            Request::FeePaid(r) => {
                let o = backend.fee_paid(context, &r).await;
                Response::FeePaid(FeePaidResponse {
                    payment_accepted: o.payment_accepted,
                    transaction_date: now,
                    institution_id: r.institution_id,
                    patron_identifier: r.patron_identifier,
                    transaction_id: o.transaction_id,
                    screen_message: o.screen_message,
                    print_line: o.print_line,
                    extra: Vec::new(),
                })
            }
            // Handled by the caller.
            Request::Login(_) | Request::ScStatus(_) | Request::RequestAcsResend(_) => return None,
        };
        Some(response)
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The 0-based range of a list of `total` items that `BP`/`BQ` (1-based, inclusive)
/// select: `BP` defaults to 1 and `BQ` to the end of the list.
pub fn item_window(start: Option<u32>, end: Option<u32>, total: usize) -> Range<usize> {
    let first = start.unwrap_or(1).max(1) as usize - 1;
    let last = end.map_or(total, |e| (e as usize).min(total));
    if first >= last { 0..0 } else { first..last }
}

fn patron_information_response(
    r: PatronInformationRequest,
    o: PatronInformationOutcome,
    now: SipDateTime,
) -> PatronInformationResponse {
    let window = item_window(r.start_item, r.end_item, o.items.len());
    let mut items = o.items;
    items.truncate(window.end);
    items.drain(..window.start);
    let list = |wanted: Summary, items: &mut Vec<String>| {
        if r.summary == wanted {
            std::mem::take(items)
        } else {
            Vec::new()
        }
    };
    let p = o.patron;
    PatronInformationResponse {
        patron_status: p.flags,
        language: r.language.clone(),
        transaction_date: now,
        hold_items_count: o.counts.hold_items,
        overdue_items_count: o.counts.overdue_items,
        charged_items_count: o.counts.charged_items,
        fine_items_count: o.counts.fine_items,
        recall_items_count: o.counts.recall_items,
        unavailable_holds_count: o.counts.unavailable_holds,
        institution_id: r.institution_id.clone(),
        patron_identifier: r.patron_identifier.clone(),
        personal_name: p.personal_name,
        hold_items_limit: o.hold_items_limit.map(ItemLimit),
        overdue_items_limit: o.overdue_items_limit.map(ItemLimit),
        charged_items_limit: o.charged_items_limit.map(ItemLimit),
        valid_patron: p.valid_patron,
        valid_patron_password: p.valid_patron_password,
        currency_type: p.currency_type,
        fee_amount: p.fee_amount,
        fee_limit: o.fee_limit,
        hold_items: list(Summary::HoldItems, &mut items),
        overdue_items: list(Summary::OverdueItems, &mut items),
        charged_items: list(Summary::ChargedItems, &mut items),
        fine_items: list(Summary::FineItems, &mut items),
        recall_items: list(Summary::RecallItems, &mut items),
        unavailable_hold_items: list(Summary::UnavailableHolds, &mut items),
        home_address: o.home_address,
        email_address: o.email_address,
        home_phone_number: o.home_phone_number,
        screen_message: p.screen_message,
        print_line: p.print_line,
        extra: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(item_window(None, None, 5), 0..5);
        assert_eq!(item_window(Some(2), Some(3), 5), 1..3);
        assert_eq!(item_window(Some(0), Some(1), 5), 0..1);
        assert_eq!(item_window(Some(4), Some(99), 5), 3..5);
        assert_eq!(item_window(Some(6), None, 5), 0..0);
        assert_eq!(item_window(Some(3), Some(2), 5), 0..0);
        assert_eq!(item_window(Some(u32::MAX), Some(u32::MAX), 5), 0..0);
    }
}
