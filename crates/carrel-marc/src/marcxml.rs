//! MARCXML (`http://www.loc.gov/MARC21/slim`): a streaming reader for a
//! `<collection>` of records or a bare `<record>`, and a writer.
//!
//! Elements are accepted in the MARC namespace or in no namespace (many
//! exports leave it out); elements of other namespaces are ignored. A record
//! whose content is wrong (no leader, a bad tag, a missing subfield code) is an
//! error for that record only. XML that is not well-formed ends the stream with
//! one fatal error, as nothing after it can be trusted.

use std::io::{BufRead, BufReader, Read, Write};

use quick_xml::NsReader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use crate::error::{ReadError, ReadErrorKind, WriteError};
use crate::record::{Field, Leader, Record, Subfield, Tag};

/// The MARCXML namespace.
pub const MARCXML_NS: &str = "http://www.loc.gov/MARC21/slim";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    None,
    Leader,
    Control,
    Subfield,
}

#[derive(Debug, Default)]
struct Builder {
    leader: Option<Leader>,
    fields: Vec<Field>,
    /// The data field being read: tag, indicators, subfields.
    datafield: Option<(Tag, [char; 2], Vec<Subfield>)>,
    control_tag: Option<Tag>,
    subfield_code: Option<char>,
    error: Option<ReadErrorKind>,
}

impl Builder {
    fn fail(&mut self, reason: String) {
        if self.error.is_none() {
            self.error = Some(ReadErrorKind::Field {
                tag: self
                    .datafield
                    .as_ref()
                    .map(|d| d.0.to_string())
                    .or(self.control_tag.map(|t| t.to_string()))
                    .unwrap_or_else(|| "record".into()),
                reason,
            });
        }
    }

    fn control_number(&self) -> Option<String> {
        self.fields
            .iter()
            .find(|f| f.tag().as_str() == "001")
            .and_then(Field::control_value)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Streams records from a MARCXML document.
#[derive(Debug)]
pub struct MarcXmlReader<R: BufRead> {
    xml: NsReader<R>,
    buf: Vec<u8>,
    text: String,
    index: u64,
    done: bool,
}

impl<R: Read> MarcXmlReader<BufReader<R>> {
    /// A reader over any `Read` (buffered internally).
    pub fn new(input: R) -> Self {
        Self::from_buf_read(BufReader::with_capacity(64 * 1024, input))
    }
}

impl<R: BufRead> MarcXmlReader<R> {
    /// A reader over a `BufRead`.
    pub fn from_buf_read(input: R) -> Self {
        let mut xml = NsReader::from_reader(input);
        let config = xml.config_mut();
        config.trim_text(false);
        config.check_end_names = true;
        config.expand_empty_elements = false;
        MarcXmlReader {
            xml,
            buf: Vec::with_capacity(4096),
            text: String::new(),
            index: 0,
            done: false,
        }
    }

    /// Bytes consumed so far (for progress reports).
    pub fn bytes_read(&self) -> u64 {
        self.xml.buffer_position()
    }

    fn fatal(&mut self, reason: String, control_number: Option<String>) -> ReadError {
        self.done = true;
        ReadError {
            index: self.index.max(1),
            offset: self.xml.buffer_position(),
            control_number,
            kind: ReadErrorKind::Xml(reason),
        }
    }
}

fn is_marc(ns: &ResolveResult<'_>) -> bool {
    match ns {
        ResolveResult::Unbound => true,
        ResolveResult::Bound(Namespace(uri)) => *uri == MARCXML_NS.as_bytes(),
        ResolveResult::Unknown(_) => false,
    }
}

fn attribute(element: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        // Attributes of MARCXML elements are unprefixed.
        if attr.key.as_ref() == name {
            return attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| Some(v.into_owned()))
                .map_err(|e| e.to_string());
        }
    }
    Ok(None)
}

impl<R: BufRead> Iterator for MarcXmlReader<R> {
    type Item = Result<Record, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut record: Option<Builder> = None;
        let mut capture = Capture::None;
        loop {
            self.buf.clear();
            let result = self
                .xml
                .read_resolved_event_into(&mut self.buf)
                .map(|(ns, event)| (is_marc(&ns), event));
            let (marc, event) = match result {
                Ok(pair) => pair,
                Err(e) => {
                    let cn = record.as_ref().and_then(Builder::control_number);
                    return Some(Err(self.fatal(e.to_string(), cn)));
                }
            };
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(event, Event::Empty(_));
                    if !marc {
                        continue;
                    }
                    let local = e.local_name();
                    match (local.as_ref(), record.as_mut()) {
                        (b"collection", None) => {}
                        (b"record", None) => {
                            self.index += 1;
                            if empty {
                                return Some(Err(ReadError {
                                    index: self.index,
                                    offset: self.xml.buffer_position(),
                                    control_number: None,
                                    kind: ReadErrorKind::Leader("empty <record/>".into()),
                                }));
                            }
                            record = Some(Builder::default());
                        }
                        (b"leader", Some(_)) => {
                            self.text.clear();
                            capture = Capture::Leader;
                        }
                        (b"controlfield", Some(b)) => {
                            self.text.clear();
                            capture = Capture::Control;
                            match attribute(e, b"tag") {
                                Ok(Some(t)) => match Tag::new(&t) {
                                    Ok(tag) => b.control_tag = Some(tag),
                                    Err(err) => b.fail(err.to_string()),
                                },
                                Ok(None) => b.fail("controlfield without a tag".into()),
                                Err(err) => b.fail(err),
                            }
                            if empty {
                                finish_control(b, "");
                                capture = Capture::None;
                            }
                        }
                        (b"datafield", Some(b)) => {
                            let tag = match attribute(e, b"tag") {
                                Ok(Some(t)) => Tag::new(&t).map_err(|e| e.to_string()),
                                Ok(None) => Err("datafield without a tag".into()),
                                Err(err) => Err(err),
                            };
                            let mut indicators = [' ', ' '];
                            for (i, name) in [b"ind1", b"ind2"].iter().enumerate() {
                                match attribute(e, *name) {
                                    Ok(None) => {}
                                    Ok(Some(v)) => {
                                        let mut chars = v.chars();
                                        match (chars.next(), chars.next()) {
                                            (None, _) => {}
                                            (Some(c), None) if (' '..='~').contains(&c) => {
                                                indicators[i] = c;
                                            }
                                            _ => b.fail(format!("invalid indicator {v:?}")),
                                        }
                                    }
                                    Err(err) => b.fail(err),
                                }
                            }
                            match tag {
                                Ok(tag) => {
                                    if empty {
                                        b.fields.push(Field::Data {
                                            tag,
                                            indicators,
                                            subfields: Vec::new(),
                                        });
                                    } else {
                                        b.datafield = Some((tag, indicators, Vec::new()));
                                    }
                                }
                                Err(err) => b.fail(err),
                            }
                        }
                        (b"subfield", Some(b)) => {
                            self.text.clear();
                            capture = Capture::Subfield;
                            b.subfield_code = None;
                            match attribute(e, b"code") {
                                Ok(Some(code)) => {
                                    let mut chars = code.chars();
                                    match (chars.next(), chars.next()) {
                                        (Some(c), None) if ('!'..='~').contains(&c) => {
                                            b.subfield_code = Some(c);
                                        }
                                        _ => b.fail(format!("invalid subfield code {code:?}")),
                                    }
                                }
                                Ok(None) => b.fail("subfield without a code".into()),
                                Err(err) => b.fail(err),
                            }
                            if empty {
                                finish_subfield(b, String::new());
                                capture = Capture::None;
                            }
                        }
                        _ => {}
                    }
                }
                Event::Text(ref t) if capture != Capture::None => match t.xml10_content() {
                    Ok(s) => self.text.push_str(&s),
                    Err(e) => {
                        if let Some(b) = record.as_mut() {
                            b.fail(e.to_string());
                        }
                    }
                },
                Event::CData(ref t) if capture != Capture::None => match t.decode() {
                    Ok(s) => self.text.push_str(&s),
                    Err(e) => {
                        if let Some(b) = record.as_mut() {
                            b.fail(e.to_string());
                        }
                    }
                },
                Event::GeneralRef(ref r) if capture != Capture::None => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        Ok(None) => r
                            .decode()
                            .ok()
                            .and_then(|name| resolve_predefined_entity(&name))
                            .map(str::to_owned),
                        Err(_) => None,
                    };
                    match resolved {
                        Some(s) => self.text.push_str(&s),
                        None => {
                            if let Some(b) = record.as_mut() {
                                b.fail(format!("unknown entity &{};", String::from_utf8_lossy(r)));
                            }
                        }
                    }
                }
                Event::End(ref e) => {
                    if !marc {
                        continue;
                    }
                    let Some(b) = record.as_mut() else {
                        continue;
                    };
                    match e.local_name().as_ref() {
                        b"leader" if capture == Capture::Leader => {
                            match Leader::from_bytes(self.text.as_bytes()) {
                                Ok(mut leader) => {
                                    // MARCXML is always Unicode.
                                    leader.set(9, b'a');
                                    b.leader = Some(leader);
                                }
                                Err(err) => {
                                    if b.error.is_none() {
                                        b.error = Some(ReadErrorKind::Leader(err.to_string()));
                                    }
                                }
                            }
                            capture = Capture::None;
                        }
                        b"controlfield" if capture == Capture::Control => {
                            let text = std::mem::take(&mut self.text);
                            finish_control(b, &text);
                            capture = Capture::None;
                        }
                        b"subfield" if capture == Capture::Subfield => {
                            let text = std::mem::take(&mut self.text);
                            finish_subfield(b, text);
                            capture = Capture::None;
                        }
                        b"datafield" => {
                            if let Some((tag, indicators, subfields)) = b.datafield.take() {
                                b.fields.push(Field::Data {
                                    tag,
                                    indicators,
                                    subfields,
                                });
                            }
                        }
                        b"record" => {
                            let Some(b) = record.take() else { continue };
                            let control_number = b.control_number();
                            let result = match (b.error, b.leader) {
                                (Some(kind), _) => Err(kind),
                                (None, None) => {
                                    Err(ReadErrorKind::Leader("the record has no leader".into()))
                                }
                                (None, Some(leader)) => Ok(Record {
                                    leader,
                                    fields: b.fields,
                                }),
                            };
                            return Some(result.map_err(|kind| ReadError {
                                index: self.index,
                                offset: self.xml.buffer_position(),
                                control_number,
                                kind,
                            }));
                        }
                        _ => {}
                    }
                }
                Event::Eof => {
                    self.done = true;
                    return record.map(|b| {
                        Err(ReadError {
                            index: self.index.max(1),
                            offset: self.xml.buffer_position(),
                            control_number: b.control_number(),
                            kind: ReadErrorKind::Xml("the document ends inside a record".into()),
                        })
                    });
                }
                _ => {}
            }
        }
    }
}

fn finish_control(b: &mut Builder, text: &str) {
    if let Some(tag) = b.control_tag.take() {
        b.fields.push(Field::Control {
            tag,
            value: text.to_owned(),
        });
    }
}

fn finish_subfield(b: &mut Builder, text: String) {
    let Some(code) = b.subfield_code.take() else {
        return;
    };
    match b.datafield.as_mut() {
        Some((_, _, subfields)) => subfields.push(Subfield { code, value: text }),
        None => b.fail("subfield outside a datafield".into()),
    }
}

/// Escapes text for XML 1.0; characters XML 1.0 cannot carry at all are refused.
fn push_escaped(out: &mut String, text: &str, tag: Tag) -> Result<(), WriteError> {
    if let Some(c) = text.chars().find(|c| {
        (*c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(WriteError::Invalid {
            tag: tag.to_string(),
            reason: format!("character U+{:04X} cannot be written in XML", u32::from(c)),
        });
    }
    let escaped = escape(text);
    if escaped.contains('\r') {
        // A raw CR would come back as LF (XML end-of-line handling).
        out.push_str(&escaped.replace('\r', "&#13;"));
    } else {
        out.push_str(&escaped);
    }
    Ok(())
}

/// Appends one `<record>` element (with `xmlns` when `with_namespace`).
pub fn write_record_xml(
    record: &Record,
    out: &mut String,
    with_namespace: bool,
) -> Result<(), WriteError> {
    if with_namespace {
        out.push_str("<record xmlns=\"");
        out.push_str(MARCXML_NS);
        out.push_str("\">\n");
    } else {
        out.push_str("  <record>\n");
    }
    out.push_str("    <leader>");
    // The leader is printable ASCII; escape it anyway (it may contain '&' or '<').
    out.push_str(&escape(record.leader.as_str()));
    out.push_str("</leader>\n");
    for field in &record.fields {
        let tag = field.tag();
        match field {
            Field::Control { value, .. } => {
                out.push_str("    <controlfield tag=\"");
                out.push_str(tag.as_str());
                out.push_str("\">");
                push_escaped(out, value, tag)?;
                out.push_str("</controlfield>\n");
            }
            Field::Data {
                indicators,
                subfields,
                ..
            } => {
                out.push_str("    <datafield tag=\"");
                out.push_str(tag.as_str());
                for (name, ind) in [("ind1", indicators[0]), ("ind2", indicators[1])] {
                    if !(' '..='~').contains(&ind) {
                        return Err(WriteError::Invalid {
                            tag: tag.to_string(),
                            reason: format!("indicator {ind:?} is not printable ASCII"),
                        });
                    }
                    out.push_str("\" ");
                    out.push_str(name);
                    out.push_str("=\"");
                    out.push_str(&escape(ind.to_string()));
                }
                out.push_str("\">\n");
                for sf in subfields {
                    if !('!'..='~').contains(&sf.code) {
                        return Err(WriteError::Invalid {
                            tag: tag.to_string(),
                            reason: format!("subfield code {:?} is not printable ASCII", sf.code),
                        });
                    }
                    out.push_str("      <subfield code=\"");
                    out.push_str(&escape(sf.code.to_string()));
                    out.push_str("\">");
                    push_escaped(out, &sf.value, tag)?;
                    out.push_str("</subfield>\n");
                }
                out.push_str("    </datafield>\n");
            }
        }
    }
    out.push_str(if with_namespace {
        "</record>\n"
    } else {
        "  </record>\n"
    });
    Ok(())
}

/// One record as a standalone MARCXML document (a bare `<record>`), as served
/// for a single item.
pub fn to_marcxml_document(record: &Record) -> Result<String, WriteError> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_record_xml(record, &mut out, true)?;
    Ok(out)
}

/// Writes a `<collection>` of records to any `Write`, one record at a time.
#[derive(Debug)]
pub struct MarcXmlWriter<W: Write> {
    output: W,
    buf: String,
    started: bool,
}

impl<W: Write> MarcXmlWriter<W> {
    /// A writer onto `output` (wrap files in a `BufWriter`). The XML declaration
    /// and `<collection>` are written with the first record (or by `finish`).
    pub fn new(output: W) -> Self {
        MarcXmlWriter {
            output,
            buf: String::with_capacity(4096),
            started: false,
        }
    }

    fn start(&mut self) -> Result<(), WriteError> {
        if !self.started {
            self.started = true;
            write!(
                self.output,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<collection xmlns=\"{MARCXML_NS}\">\n"
            )?;
        }
        Ok(())
    }

    /// Writes one record; a record that cannot be represented is refused whole.
    pub fn write(&mut self, record: &Record) -> Result<(), WriteError> {
        self.buf.clear();
        write_record_xml(record, &mut self.buf, false)?;
        self.start()?;
        self.output.write_all(self.buf.as_bytes())?;
        Ok(())
    }

    /// Closes the collection, flushes and returns the output.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.start()?;
        self.output.write_all(b"</collection>\n")?;
        self.output.flush()?;
        Ok(self.output)
    }
}
