//! The file outbox: one RFC 5322 `.eml` file per message, written atomically, and a small
//! reader for tests and development tools.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Extension of finished outbox files; partial files end in `.eml.tmp`.
const EML: &str = "eml";

/// Writes `bytes` as `<dir>/<unix-millis>-<uuid>.eml`: first to `<name>.tmp` in the same
/// directory (flushed to disk), then renamed, so readers never see half a file.
/// The millisecond prefix is taken from the UUID v7 itself, and UUID v7s are monotonic
/// within a process, so file names sort chronologically.
pub(crate) fn write_eml(dir: &Path, id: Uuid, bytes: &[u8]) -> io::Result<PathBuf> {
    let millis = id
        .get_timestamp()
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            secs * 1000 + u64::from(nanos) / 1_000_000
        })
        .unwrap_or_default();
    let name = format!("{millis:013}-{id}.{EML}");
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));

    std::fs::create_dir_all(dir)?;
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// One message read back from an outbox directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The `To` header (RFC 2047 encoded-words decoded), e.g. `reader@example.org`.
    pub to: String,
    /// The `Subject` header, unfolded and RFC 2047-decoded.
    pub subject: String,
    /// The body, transfer-decoded (quoted-printable/base64 if used), CRLF normalised to LF.
    pub body: String,
    pub path: PathBuf,
}

/// Reads every `.eml` file in `dir`, sorted by file name (that is, chronologically).
/// Temporary `.tmp` files and other entries are ignored. A missing directory is an error
/// (`NotFound`); a file that is not valid UTF-8 after decoding is `InvalidData`.
pub fn read_outbox(dir: &Path) -> io::Result<Vec<OutboxMessage>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == EML) && entry.file_type()?.is_file() {
            paths.push(path);
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    paths
        .into_iter()
        .map(|path| {
            let raw = std::fs::read(&path)?;
            parse_eml(&raw, path)
        })
        .collect()
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

pub(crate) fn parse_eml(raw: &[u8], path: PathBuf) -> io::Result<OutboxMessage> {
    let (head, body) = split_head_body(raw);
    let head = std::str::from_utf8(head).map_err(|_| invalid("header block is not UTF-8"))?;

    let mut to = None;
    let mut subject = None;
    let mut encoding = String::new();
    for (name, value) in unfold_headers(head) {
        if name.eq_ignore_ascii_case("to") {
            to = Some(decode_encoded_words(&value));
        } else if name.eq_ignore_ascii_case("subject") {
            subject = Some(decode_encoded_words(&value));
        } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
            encoding = value.trim().to_ascii_lowercase();
        }
    }

    let body = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => decode_base64(body).ok_or_else(|| invalid("bad base64 body"))?,
        _ => body.to_vec(),
    };
    let body = String::from_utf8(body).map_err(|_| invalid("body is not UTF-8"))?;
    Ok(OutboxMessage {
        to: to.ok_or_else(|| invalid("missing To header"))?,
        subject: subject.unwrap_or_default(),
        body: body.replace("\r\n", "\n"),
        path,
    })
}

/// Splits at the first empty line (CRLF CRLF, or LF LF for hand-written files).
fn split_head_body(raw: &[u8]) -> (&[u8], &[u8]) {
    let crlf = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(c), Some(l)) => {
            let (i, n) = if c.0 <= l.0 { c } else { l };
            (&raw[..i], &raw[i + n..])
        }
        (Some((i, n)), None) | (None, Some((i, n))) => (&raw[..i], &raw[i + n..]),
        (None, None) => (raw, &[]),
    }
}

/// Header fields as (name, unfolded value); continuation lines start with SP or HTAB.
fn unfold_headers(head: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_owned(), value.trim_start().to_owned()));
        }
    }
    for (_, value) in &mut fields {
        let trimmed = value.trim_end().len();
        value.truncate(trimmed);
    }
    fields
}

/// Decodes RFC 2047 encoded-words (`=?charset?B|Q?text?=`). Whitespace between two
/// adjacent encoded-words is dropped, and adjacent words of one charset are joined before
/// decoding (so a multi-byte character split across words survives); undecodable words
/// are kept verbatim.
pub(crate) fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_ws = "";
    // The current run of adjacent encoded-words: charset and raw bytes so far.
    let mut run: Option<(String, Vec<u8>, String)> = None;

    fn finish(out: &mut String, run: &mut Option<(String, Vec<u8>, String)>) {
        if let Some((charset, bytes, verbatim)) = run.take() {
            match decode_charset(&charset, bytes) {
                Some(s) => out.push_str(&s),
                None => out.push_str(&verbatim),
            }
        }
    }

    while !rest.is_empty() {
        let ws_len = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if ws_len > 0 {
            pending_ws = &rest[..ws_len];
            rest = &rest[ws_len..];
            continue;
        }
        let token_len = rest.find([' ', '\t']).unwrap_or(rest.len());
        let token = &rest[..token_len];
        rest = &rest[token_len..];
        match decode_word(token) {
            Some((charset, bytes)) => match &mut run {
                Some((run_charset, run_bytes, verbatim)) if *run_charset == charset => {
                    run_bytes.extend_from_slice(&bytes);
                    verbatim.push_str(pending_ws);
                    verbatim.push_str(token);
                }
                _ => {
                    let had_run = run.is_some();
                    finish(&mut out, &mut run);
                    if !had_run {
                        out.push_str(pending_ws);
                    }
                    run = Some((charset, bytes, token.to_owned()));
                }
            },
            None => {
                finish(&mut out, &mut run);
                out.push_str(pending_ws);
                out.push_str(token);
            }
        }
        pending_ws = "";
    }
    finish(&mut out, &mut run);
    out.push_str(pending_ws);
    out
}

/// One encoded-word as (lower-case charset, decoded bytes).
fn decode_word(token: &str) -> Option<(String, Vec<u8>)> {
    let inner = token.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let charset = parts.next()?;
    let encoding = parts.next()?;
    let text = parts.next()?;
    // RFC 2231 language suffix: charset*lang
    let charset = charset.split('*').next()?.to_ascii_lowercase();
    let bytes = match encoding {
        "B" | "b" => decode_base64(text.as_bytes())?,
        "Q" | "q" => {
            let mut out = Vec::with_capacity(text.len());
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        out.push(hex_byte(b.get(i + 1..i + 3)?)?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    Some((charset, bytes))
}

fn decode_charset(charset: &str, bytes: Vec<u8>) -> Option<String> {
    match charset {
        "utf-8" | "utf8" | "us-ascii" => String::from_utf8(bytes).ok(),
        "iso-8859-1" | "latin1" => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

fn hex_byte(two: &[u8]) -> Option<u8> {
    u8::from_str_radix(std::str::from_utf8(two).ok()?, 16).ok()
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` escapes and `=` soft line breaks; malformed
/// escapes are kept literally.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'=' {
            if body[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if body[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let Some(byte) = body.get(i + 1..i + 3).and_then(hex_byte) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// Standard base64, ignoring whitespace/line breaks; `None` on any other invalid input.
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in text {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            break;
        }
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(decode_encoded_words("plain subject"), "plain subject");
        assert_eq!(
            decode_encoded_words("=?utf-8?b?R3LDvMOfZQ==?= =?utf-8?q?_aus_K=C3=B6ln?="),
            "Grüße aus Köln"
        );
        assert_eq!(
            decode_encoded_words("Re: =?ISO-8859-1?Q?caf=E9?= now"),
            "Re: café now"
        );
        assert_eq!(
            decode_encoded_words("=?x-unknown?q?abc?="),
            "=?x-unknown?q?abc?="
        );
        // "ü" (C3 BC) split across two words.
        assert_eq!(
            decode_encoded_words(
                "=?utf-8?q?Gr=C3?=\r\n =?utf-8?q?=BC=C3=9Fe?="
                    .replace("\r\n", "")
                    .as_str()
            ),
            "Grüße"
        );
        assert_eq!(decode_encoded_words("a =?utf-8?q?b?= c"), "a b c");
    }

    #[test]
    fn quoted_printable_and_base64() {
        assert_eq!(
            decode_quoted_printable(b"a=3Db=\r\nc =E2=80=94 d=\n!"),
            "a=bc — d!".as_bytes()
        );
        assert_eq!(decode_quoted_printable(b"100% =zz"), b"100% =zz");
        assert_eq!(decode_base64(b"aGVs\r\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64(b"a$b"), None);
    }

    #[test]
    fn parses_folded_headers_and_lf_files() {
        let raw = b"To: a@example.org\nSubject: one\n two\nContent-Transfer-Encoding: 7bit\n\nline1\nline2\n";
        let m = parse_eml(raw, PathBuf::from("x.eml")).unwrap();
        assert_eq!(m.to, "a@example.org");
        assert_eq!(m.subject, "one two");
        assert_eq!(m.body, "line1\nline2\n");
        assert!(parse_eml(b"Subject: x\r\n\r\nbody", PathBuf::new()).is_err());
    }
}
