//! Any bytes as a SIP2 message, in every encoding: decoding never panics, and what
//! decodes encodes again into a message that decodes.
#![no_main]

use carrel_sip2::{
    Encoding, ErrorDetection, decode_request, decode_response, encode_request, encode_response,
};
use libfuzzer_sys::fuzz_target;

const ENCODINGS: [Encoding; 3] = [Encoding::Utf8, Encoding::Cp850, Encoding::Latin1];

fuzz_target!(|frame: &[u8]| {
    let _ = ErrorDetection::sniff(frame);
    for encoding in ENCODINGS {
        if let Ok(decoded) = decode_request(frame, encoding) {
            let again = encode_request(&decoded.message, encoding, decoded.error_detection);
            decode_request(&again, encoding).expect("a re-encoded request decodes");
        }
        if let Ok(decoded) = decode_response(frame, encoding) {
            let again = encode_response(&decoded.message, encoding, decoded.error_detection);
            decode_response(&again, encoding).expect("a re-encoded response decodes");
        }
    }
});
