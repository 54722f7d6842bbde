//! Any bytes as MARC-8: the strict and lossy decoders never panic, and agree whenever the
//! strict one accepts.
#![no_main]

use carrel_marc::marc8::{decode_marc8, decode_marc8_lossy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lossy = decode_marc8_lossy(data);
    if let Ok(strict) = decode_marc8(data) {
        assert_eq!(strict, lossy);
    }
});
