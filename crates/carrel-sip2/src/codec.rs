//! Whole messages on the wire: character encoding, error detection (`AY`/`AZ`) and
//! the CR terminator around a typed [`Request`] or [`Response`].

use crate::checksum::{checksum_hex, verify_lenient};
use crate::encoding::Encoding;
use crate::messages::{Request, Response};

/// The error detection a message carried (or should carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ErrorDetection {
    /// The `AY` sequence number (one digit), if present.
    pub sequence: Option<u8>,
    /// Whether an `AZ` checksum was present.
    pub checksum: bool,
}

impl ErrorDetection {
    /// No error detection.
    pub const NONE: ErrorDetection = ErrorDetection {
        sequence: None,
        checksum: false,
    };

    /// Whether the message used error detection at all.
    pub fn is_enabled(&self) -> bool {
        self.sequence.is_some() || self.checksum
    }

    /// Reads the trailer of a frame without verifying it (used to decide whether a
    /// `96` answer to an unreadable frame should carry a checksum).
    pub fn sniff(frame: &[u8]) -> ErrorDetection {
        split_trailer(strip_terminator(frame)).1
    }
}

/// Why a frame is not a usable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The `AZ` checksum does not match (or is not four hex digits).
    #[error("checksum mismatch")]
    BadChecksum,
    /// Fewer than two characters, or an identifier that is not two digits.
    #[error("not a SIP2 message")]
    NotAMessage,
    /// A well-formed identifier this side does not handle (e.g. 01 block patron).
    #[error("unsupported SIP2 message {code}")]
    Unsupported {
        /// The two-digit identifier.
        code: String,
    },
    /// A known message whose fields cannot be read.
    #[error("malformed SIP2 message {code}: {field}: {reason}")]
    Malformed {
        /// The two-digit identifier.
        code: String,
        /// The field that could not be read.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl DecodeError {
    /// The message identifier, when the frame had a readable one.
    pub fn code(&self) -> Option<&str> {
        match self {
            DecodeError::Unsupported { code } | DecodeError::Malformed { code, .. } => Some(code),
            DecodeError::BadChecksum | DecodeError::NotAMessage => None,
        }
    }
}

/// A decoded message with the error detection it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<M> {
    /// The message.
    pub message: M,
    /// Its `AY`/`AZ` trailer.
    pub error_detection: ErrorDetection,
}

/// Removes a trailing CR (and an LF after it), if present.
fn strip_terminator(frame: &[u8]) -> &[u8] {
    let frame = frame.strip_suffix(b"\n").unwrap_or(frame);
    frame.strip_suffix(b"\r").unwrap_or(frame)
}

/// Splits `…AYnAZxxxx` into the message and its trailer. A checksum is `AZ` and
/// four characters other than `|` at the very end (non-hex ones make a bad
/// checksum), or `AZ` and one to three hex digits (a checksum written without
/// leading zeros) after `AYn` or `|`. A `|` ends a field, so `…AZabc|` is a field
/// value, not a checksum. A sequence number without a
/// checksum is only recognised after a `|`, so a last field lacking its `|` is not
/// misread. Returns the message, the trailer and where the checksum digits start.
fn split_trailer(frame: &[u8]) -> (&[u8], ErrorDetection, Option<usize>) {
    let n = frame.len();
    let ends_with_sequence = |b: &[u8]| {
        b.len() >= 3 && &b[b.len() - 3..b.len() - 1] == b"AY" && b[b.len() - 1].is_ascii_digit()
    };
    let mut body = frame;
    let mut detection = ErrorDetection::NONE;
    let mut checksum_at = None;
    for digits in (1..=4).rev() {
        if n < digits + 2 || &frame[n - digits - 2..n - digits] != b"AZ" {
            continue;
        }
        let before = &frame[..n - digits - 2];
        let short_ok = frame[n - digits..].iter().all(u8::is_ascii_hexdigit)
            && (before.ends_with(b"|") || ends_with_sequence(before));
        let four_ok = digits == 4 && !frame[n - 4..].contains(&b'|');
        if four_ok || short_ok {
            detection.checksum = true;
            checksum_at = Some(n - digits);
            body = before;
            break;
        }
    }
    let m = body.len();
    if ends_with_sequence(body) {
        let anchored = detection.checksum || (m >= 4 && body[m - 4] == b'|');
        if anchored {
            detection.sequence = Some(body[m - 1] - b'0');
            body = &body[..m - 3];
        }
    }
    (body, detection, checksum_at)
}

/// Verifies the trailer and decodes the text, returning it with its detection.
fn open_frame(frame: &[u8], encoding: Encoding) -> Result<(String, ErrorDetection), DecodeError> {
    let frame = strip_terminator(frame);
    let (body, detection, checksum_at) = split_trailer(frame);
    if let Some(at) = checksum_at {
        let prefix = &frame[..at];
        if !verify_lenient(prefix, &encoding.decode(prefix), &frame[at..]) {
            return Err(DecodeError::BadChecksum);
        }
    }
    let text = encoding.decode(body);
    let code_ok = text.len() >= 2 && text.as_bytes()[..2].iter().all(u8::is_ascii_digit);
    if !code_ok {
        return Err(DecodeError::NotAMessage);
    }
    Ok((text, detection))
}

fn decode_with<M>(
    frame: &[u8],
    encoding: Encoding,
    parse: impl FnOnce(&str, &str) -> Option<Result<M, crate::fields::FieldError>>,
) -> Result<Decoded<M>, DecodeError> {
    let (text, error_detection) = open_frame(frame, encoding)?;
    let (code, rest) = text.split_at(2);
    match parse(code, rest) {
        None => Err(DecodeError::Unsupported {
            code: code.to_owned(),
        }),
        Some(Err(e)) => Err(DecodeError::Malformed {
            code: code.to_owned(),
            field: e.field,
            reason: e.reason,
        }),
        Some(Ok(message)) => Ok(Decoded {
            message,
            error_detection,
        }),
    }
}

/// Decodes a message from the self-check. `frame` may or may not include its CR.
pub fn decode_request(frame: &[u8], encoding: Encoding) -> Result<Decoded<Request>, DecodeError> {
    decode_with(frame, encoding, Request::parse_body)
}

/// Decodes a message from the ACS (for clients and tests).
pub fn decode_response(frame: &[u8], encoding: Encoding) -> Result<Decoded<Response>, DecodeError> {
    decode_with(frame, encoding, Response::parse_body)
}

/// Encodes `body` and appends the error detection trailer and the CR. Resend
/// messages (96, 97) carry only a checksum; others `AY` (the given sequence number,
/// `0` if none) and `AZ` whenever error detection is enabled.
fn seal(body: &str, encoding: Encoding, detection: ErrorDetection) -> Vec<u8> {
    let mut out = encoding.encode(body);
    if detection.is_enabled() {
        let resend = body.starts_with("96") || body.starts_with("97");
        if !resend {
            out.extend_from_slice(b"AY");
            out.push(b'0' + detection.sequence.unwrap_or(0).min(9));
        }
        out.extend_from_slice(b"AZ");
        let hex = checksum_hex(&out);
        out.extend_from_slice(&hex);
    }
    out.push(b'\r');
    out
}

/// Encodes a response, CR included. Pass the request's [`ErrorDetection`] to answer
/// with the same sequence number and a checksum.
pub fn encode_response(
    response: &Response,
    encoding: Encoding,
    detection: ErrorDetection,
) -> Vec<u8> {
    seal(&response.to_body(), encoding, detection)
}

/// Encodes a request, CR included (for clients and tests).
pub fn encode_request(request: &Request, encoding: Encoding, detection: ErrorDetection) -> Vec<u8> {
    seal(&request.to_body(), encoding, detection)
}
