//! Splitting a byte stream into SIP2 messages (a `tokio_util` codec).
//!
//! A message ends with CR; an LF after the CR (and any empty line) is skipped. A
//! message longer than the configured maximum yields [`Frame::Oversized`] once, and
//! the rest of it is discarded up to its CR without being buffered, so memory stays
//! bounded by the maximum plus one read.

use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The default maximum message size in bytes (CR excluded).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// One unit read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message without its CR.
    Message(BytesMut),
    /// A message longer than the maximum (its bytes are dropped).
    Oversized,
}

/// SIP2 framing codec: decodes [`Frame`]s, encodes already-encoded messages
/// (such as [`encode_response`](crate::encode_response) output) verbatim.
#[derive(Debug, Clone)]
pub struct Sip2Framer {
    max_message_bytes: usize,
    /// Inside an oversized message: drop bytes until its CR.
    discarding: bool,
    /// Bytes at the front of the buffer already searched for a CR.
    scanned: usize,
}

impl Default for Sip2Framer {
    fn default() -> Self {
        Sip2Framer::new(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

impl Sip2Framer {
    /// A framer accepting messages of at most `max_message_bytes` bytes (CR excluded).
    pub fn new(max_message_bytes: usize) -> Self {
        Sip2Framer {
            max_message_bytes,
            discarding: false,
            scanned: 0,
        }
    }

    /// The configured maximum.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }
}

impl Decoder for Sip2Framer {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        if self.discarding {
            match buf.iter().position(|&b| b == b'\r') {
                Some(i) => {
                    buf.advance(i + 1);
                    self.discarding = false;
                }
                None => {
                    buf.clear();
                    return Ok(None);
                }
            }
        }
        if self.scanned == 0 {
            // Between messages: skip the LF after a CR, and empty lines.
            let skip = buf
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            buf.advance(skip);
        }
        let start = self.scanned.min(buf.len());
        match buf[start..].iter().position(|&b| b == b'\r') {
            Some(offset) => {
                let end = start + offset;
                self.scanned = 0;
                if end > self.max_message_bytes {
                    buf.advance(end + 1);
                    return Ok(Some(Frame::Oversized));
                }
                let mut message = buf.split_to(end + 1);
                message.truncate(end);
                Ok(Some(Frame::Message(message)))
            }
            None if buf.len() > self.max_message_bytes => {
                buf.clear();
                self.scanned = 0;
                self.discarding = true;
                Ok(Some(Frame::Oversized))
            }
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }

    /// At the end of the stream an unterminated message is dropped, not an error.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        let frame = self.decode(buf)?;
        if frame.is_none() {
            buf.clear();
            self.scanned = 0;
        }
        Ok(frame)
    }
}

impl Encoder<Vec<u8>> for Sip2Framer {
    type Error = io::Error;

    fn encode(&mut self, item: Vec<u8>, dst: &mut BytesMut) -> Result<(), io::Error> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Encoder<&[u8]> for Sip2Framer {
    type Error = io::Error;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), io::Error> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Sip2Framer, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = framer.decode(buf).unwrap() {
            out.push(f);
        }
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(BytesMut::from(s))
    }

    #[test]
    fn splits_on_cr_and_skips_lf() {
        let mut f = Sip2Framer::default();
        let mut buf = BytesMut::from("9900302.00\r\n9300CNa|COb|\r\r\n97");
        assert_eq!(
            frames(&mut f, &mut buf),
            vec![msg("9900302.00"), msg("9300CNa|COb|")]
        );
        assert_eq!(&buf[..], b"97");
        buf.extend_from_slice(b"\r");
        assert_eq!(frames(&mut f, &mut buf), vec![msg("97")]);
    }

    #[test]
    fn byte_by_byte() {
        let mut f = Sip2Framer::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in b"\n9900302.00\r\n97\r" {
            buf.extend_from_slice(&[b]);
            got.extend(frames(&mut f, &mut buf));
        }
        assert_eq!(got, vec![msg("9900302.00"), msg("97")]);
    }

    #[test]
    fn oversized_is_reported_once_and_discarded_without_buffering() {
        let mut f = Sip2Framer::new(10);
        let mut buf = BytesMut::from("0123456789");
        assert_eq!(frames(&mut f, &mut buf), vec![]);
        buf.extend_from_slice(b"A");
        assert_eq!(frames(&mut f, &mut buf), vec![Frame::Oversized]);
        assert!(buf.is_empty());
        for _ in 0..1000 {
            buf.extend_from_slice(&[b'x'; 100]);
            assert_eq!(frames(&mut f, &mut buf), vec![]);
            assert!(buf.is_empty(), "discarded bytes are not kept");
        }
        buf.extend_from_slice(b"tail\r\n97\r");
        assert_eq!(frames(&mut f, &mut buf), vec![msg("97")]);
        // Exactly the maximum is fine; a whole oversized message in one read too.
        let mut buf = BytesMut::from("0123456789\r01234567890\r97\r");
        assert_eq!(
            frames(&mut f, &mut buf),
            vec![msg("0123456789"), Frame::Oversized, msg("97")]
        );
    }

    #[test]
    fn eof_drops_partial_message() {
        let mut f = Sip2Framer::default();
        let mut buf = BytesMut::from("97\r99003");
        assert_eq!(f.decode_eof(&mut buf).unwrap(), Some(msg("97")));
        assert_eq!(f.decode_eof(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }
}
