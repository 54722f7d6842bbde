//! SIP2 (3M Standard Interchange Protocol 2.00) for Carrel: the message codec,
//! framing, character encodings and a transport-agnostic session state machine.
//!
//! The crate knows nothing about Carrel's store or server. A server wires it up as:
//! read [`Frame`]s from the socket with [`Sip2Framer`] (a `tokio_util` codec), feed
//! them to a per-connection [`Session`] and write back what it returns; the session
//! calls the server's [`Sip2Backend`] implementation for every transaction.
//!
//! ```text
//! bytes ─Sip2Framer→ Frame ─Session::handle→ decode_request → Sip2Backend → encode_response ─→ bytes
//! ```

mod amount;
mod backend;
pub mod checksum;
mod codec;
mod codes;
mod datetime;
mod encoding;
mod fields;
mod framer;
mod messages;
mod session;

pub use amount::{format_amount, parse_amount};
pub use backend::{
    AcsStatusOutcome, CheckinOutcome, Context, EndSessionOutcome, FeePaidOutcome, ItemCounts,
    ItemInformationOutcome, LoanOutcome, PatronInformationOutcome, PatronStatusOutcome,
    RenewAllOutcome, Sip2Backend,
};
pub use codec::{
    DecodeError, Decoded, ErrorDetection, decode_request, decode_response, encode_request,
    encode_response,
};
pub use codes::{
    AlertType, CirculationStatus, FeeType, Language, MediaType, PatronStatusFlags, PaymentType,
    ScStatusCode, SecurityMarker, Summary,
};
pub use datetime::{DATE_TIME_WIDTH, InvalidDateTime, SipDateTime, Zone};
pub use encoding::{Encoding, UnknownEncoding};
pub use fields::{MAX_FIELD_BYTES, Password, UnknownField};
pub use framer::{DEFAULT_MAX_MESSAGE_BYTES, Frame, Sip2Framer};
pub use messages::{
    AcsStatusResponse, CheckinRequest, CheckinResponse, CheckoutRequest, CheckoutResponse,
    EndPatronSessionRequest, EndSessionResponse, FeePaidRequest, FeePaidResponse,
    ItemInformationRequest, ItemInformationResponse, ItemLimit, LoginRequest, LoginResponse,
    PatronInformationRequest, PatronInformationResponse, PatronStatusRequest, PatronStatusResponse,
    RenewAllRequest, RenewAllResponse, RenewRequest, RenewResponse, Request, RequestAcsResend,
    RequestScResend, Response, ScStatusRequest,
};
pub use session::{PROTOCOL_VERSION, SUPPORTED_MESSAGES, Session, SessionAction, item_window};
