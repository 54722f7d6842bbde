//! Any bytes arriving in any chunks: the framer's buffer stays bounded and frames never
//! exceed the maximum or contain a CR.
#![no_main]

use bytes::BytesMut;
use carrel_sip2::{Frame, Sip2Framer};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const MAX: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut framer = Sip2Framer::new(MAX);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(frame) = framer.decode(&mut buf).expect("the framer never fails") {
            if let Frame::Message(message) = frame {
                assert!(message.len() <= MAX);
                assert!(!message.contains(&b'\r'));
            }
        }
        assert!(buf.len() <= MAX);
    }
});
