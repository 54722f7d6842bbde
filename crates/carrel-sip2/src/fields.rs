//! Field-level reading and writing shared by every message type.
//!
//! Fixed fields are positional and have a fixed width in characters; variable fields
//! are `XXvalue|` with a two-character identifier. Each Rust field type knows how to
//! read and write itself through [`FixedCodec`] (fixed) or [`VarField`] (variable).

use std::borrow::Cow;
use std::fmt;

use crate::codes::{Coded, PatronStatusFlags, Summary};
use crate::datetime::{DATE_TIME_WIDTH, SipDateTime};

/// Longest variable field value written, in UTF-8 bytes (SIP2 allows 255 characters;
/// counting UTF-8 bytes keeps every encoding within that).
pub const MAX_FIELD_BYTES: usize = 255;

/// A variable field this crate does not model, kept in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownField {
    /// The two-character identifier.
    pub id: String,
    /// The value, without the `|` terminator.
    pub value: String,
}

/// A password or PIN (`CO`, `AC`, `AD`). Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Password(String);

impl Password {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (an empty PIN never verifies).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(\"***\")")
    }
}

/// Replaces characters that would break framing (`|`, CR, LF) with spaces.
fn sanitize(text: &str) -> Cow<'_, str> {
    if text.contains(['|', '\r', '\n']) {
        Cow::Owned(text.replace(['|', '\r', '\n'], " "))
    } else {
        Cow::Borrowed(text)
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary.
fn truncate_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

// ---------------------------------------------------------------- fixed fields

/// How a Rust type is written into, and read from, a fixed field.
pub(crate) trait FixedCodec<T> {
    const WIDTH: usize;
    fn write(value: &T, out: &mut String);
    /// `text` has exactly `WIDTH` characters.
    fn read(text: &str) -> Result<T, String>;
}

/// `Y`/`N`; reading accepts `Y` or `y` as yes and anything else as no.
pub(crate) struct YesNo;
impl FixedCodec<bool> for YesNo {
    const WIDTH: usize = 1;
    fn write(value: &bool, out: &mut String) {
        out.push(if *value { 'Y' } else { 'N' });
    }
    fn read(text: &str) -> Result<bool, String> {
        Ok(matches!(text, "Y" | "y"))
    }
}

/// `1`/`0` (the `ok` fields).
pub(crate) struct OneZero;
impl FixedCodec<bool> for OneZero {
    const WIDTH: usize = 1;
    fn write(value: &bool, out: &mut String) {
        out.push(if *value { '1' } else { '0' });
    }
    fn read(text: &str) -> Result<bool, String> {
        match text {
            "1" => Ok(true),
            "0" => Ok(false),
            other => Err(format!("expected 0 or 1, got {other:?}")),
        }
    }
}

/// `Y`/`N`/`U` (unknown as `None`).
pub(crate) struct YesNoUnknown;
impl FixedCodec<Option<bool>> for YesNoUnknown {
    const WIDTH: usize = 1;
    fn write(value: &Option<bool>, out: &mut String) {
        out.push(match value {
            Some(true) => 'Y',
            Some(false) => 'N',
            None => 'U',
        });
    }
    fn read(text: &str) -> Result<Option<bool>, String> {
        Ok(match text {
            "Y" | "y" => Some(true),
            "N" | "n" => Some(false),
            _ => None,
        })
    }
}

/// A required timestamp.
pub(crate) struct Stamp;
impl FixedCodec<SipDateTime> for Stamp {
    const WIDTH: usize = DATE_TIME_WIDTH;
    fn write(value: &SipDateTime, out: &mut String) {
        value.write(out);
    }
    fn read(text: &str) -> Result<SipDateTime, String> {
        SipDateTime::parse(text).map_err(|e| e.to_string())
    }
}

/// A timestamp that may be 18 spaces (`None`).
pub(crate) struct OptStamp;
impl FixedCodec<Option<SipDateTime>> for OptStamp {
    const WIDTH: usize = DATE_TIME_WIDTH;
    fn write(value: &Option<SipDateTime>, out: &mut String) {
        match value {
            Some(v) => v.write(out),
            None => out.push_str(&" ".repeat(DATE_TIME_WIDTH)),
        }
    }
    fn read(text: &str) -> Result<Option<SipDateTime>, String> {
        if text.trim().is_empty() {
            Ok(None)
        } else {
            Stamp::read(text).map(Some)
        }
    }
}

/// A zero-padded number of `W` digits; larger values are written as all nines.
/// Reading accepts surrounding spaces, and all spaces as 0.
pub(crate) struct Digits<const W: usize>;
impl<const W: usize> FixedCodec<u32> for Digits<W> {
    const WIDTH: usize = W;
    fn write(value: &u32, out: &mut String) {
        let max = 10u64.pow(W as u32) - 1;
        let v = u64::from(*value).min(max);
        out.push_str(&format!("{v:0W$}"));
    }
    fn read(text: &str) -> Result<u32, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(0);
        }
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("expected {W} digits, got {text:?}"));
        }
        t.parse::<u32>().map_err(|e| e.to_string())
    }
}

/// Free text of exactly `W` characters: written padded with spaces (or cut), read
/// verbatim.
pub(crate) struct Text<const W: usize>;
impl<const W: usize> FixedCodec<String> for Text<W> {
    const WIDTH: usize = W;
    fn write(value: &String, out: &mut String) {
        let clean = sanitize(value);
        out.push_str(&format!("{:<W$.W$}", clean));
    }
    fn read(text: &str) -> Result<String, String> {
        Ok(text.to_owned())
    }
}

/// A coded value of its type's width.
pub(crate) struct Code;
impl<T: Coded> FixedCodec<T> for Code {
    const WIDTH: usize = T::WIDTH;
    fn write(value: &T, out: &mut String) {
        let w = T::WIDTH;
        out.push_str(&format!("{:<w$.w$}", sanitize(value.code())));
    }
    fn read(text: &str) -> Result<T, String> {
        Ok(T::from_code(text))
    }
}

/// The 14 patron status flags.
pub(crate) struct Flags;
impl FixedCodec<PatronStatusFlags> for Flags {
    const WIDTH: usize = PatronStatusFlags::WIDTH;
    fn write(value: &PatronStatusFlags, out: &mut String) {
        out.extend(value.to_array().iter().map(|&f| if f { 'Y' } else { ' ' }));
    }
    fn read(text: &str) -> Result<PatronStatusFlags, String> {
        let mut flags = [false; 14];
        for (flag, c) in flags.iter_mut().zip(text.chars()) {
            *flag = c == 'Y' || c == 'y';
        }
        Ok(PatronStatusFlags::from_array(flags))
    }
}

/// The 10-character summary of a patron information request.
pub(crate) struct SummaryField;
impl FixedCodec<Summary> for SummaryField {
    const WIDTH: usize = Summary::WIDTH;
    fn write(value: &Summary, out: &mut String) {
        for i in 0..Summary::WIDTH {
            out.push(if value.position() == Some(i) {
                'Y'
            } else {
                ' '
            });
        }
    }
    fn read(text: &str) -> Result<Summary, String> {
        Ok(text
            .chars()
            .position(|c| c == 'Y' || c == 'y')
            .map_or(Summary::None, Summary::from_position))
    }
}

/// Reads fixed fields left to right.
pub(crate) struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { rest: text }
    }

    pub(crate) fn fixed<T, C: FixedCodec<T>>(
        &mut self,
        name: &'static str,
    ) -> Result<T, FieldError> {
        let end = self
            .rest
            .char_indices()
            .nth(C::WIDTH)
            .map_or(self.rest.len(), |(i, _)| i);
        let piece = &self.rest[..end];
        if piece.chars().count() < C::WIDTH {
            return Err(FieldError {
                field: name,
                reason: format!("truncated: expected {} characters", C::WIDTH),
            });
        }
        self.rest = &self.rest[end..];
        C::read(piece).map_err(|reason| FieldError {
            field: name,
            reason,
        })
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.rest
    }
}

/// A field that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: &'static str,
    pub(crate) reason: String,
}

// ---------------------------------------------------------------- variable fields

/// A scalar type that fits in a variable field.
pub(crate) trait FieldValue: Sized {
    /// Whether an empty value reads as an absent field (true for every typed value;
    /// text keeps the difference between empty and absent, e.g. an empty PIN).
    const BLANK_IS_ABSENT: bool = true;
    fn to_text(&self) -> Cow<'_, str>;
    fn from_text(text: &str) -> Result<Self, String>;
}

impl FieldValue for String {
    const BLANK_IS_ABSENT: bool = false;
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl FieldValue for Password {
    const BLANK_IS_ABSENT: bool = false;
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.0)
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(Password(text.to_owned()))
    }
}

/// `Y`/`N`; reading accepts `Y` or `y` as yes and anything else as no.
impl FieldValue for bool {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(if *self { "Y" } else { "N" })
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(matches!(text.trim(), "Y" | "y"))
    }
}

impl FieldValue for u32 {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("expected a number, got {text:?}"));
        }
        t.parse()
            .map_err(|_| format!("number out of range: {text:?}"))
    }
}

impl FieldValue for SipDateTime {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        SipDateTime::parse(text).map_err(|e| e.to_string())
    }
}

impl<T: Coded> FieldValue for T {
    fn to_text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.code())
    }
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(T::from_code(text))
    }
}

/// How a message struct member maps to variable fields: `String`/`Password` are
/// required (always written; absent reads as empty), `Option<T>` optional, `Vec<T>`
/// repeatable (in order).
pub(crate) trait VarField: Sized {
    fn write(&self, id: &str, out: &mut String);
    fn take(fields: &mut VarFields, id: &'static str) -> Result<Self, FieldError>;
}

pub(crate) fn write_var(out: &mut String, id: &str, value: &str) {
    out.push_str(id);
    out.push_str(truncate_bytes(&sanitize(value), MAX_FIELD_BYTES));
    out.push('|');
}

impl VarField for String {
    fn write(&self, id: &str, out: &mut String) {
        write_var(out, id, self);
    }
    fn take(fields: &mut VarFields, id: &'static str) -> Result<Self, FieldError> {
        Ok(fields.take_first(id).unwrap_or_default())
    }
}

impl VarField for Password {
    fn write(&self, id: &str, out: &mut String) {
        write_var(out, id, &self.0);
    }
    fn take(fields: &mut VarFields, id: &'static str) -> Result<Self, FieldError> {
        Ok(Password(fields.take_first(id).unwrap_or_default()))
    }
}

impl<T: FieldValue> VarField for Option<T> {
    fn write(&self, id: &str, out: &mut String) {
        if let Some(v) = self {
            write_var(out, id, &v.to_text());
        }
    }
    fn take(fields: &mut VarFields, id: &'static str) -> Result<Self, FieldError> {
        fields
            .take_first(id)
            .filter(|text| !(T::BLANK_IS_ABSENT && text.trim().is_empty()))
            .map(|text| T::from_text(&text))
            .transpose()
            .map_err(|reason| FieldError { field: id, reason })
    }
}

impl<T: FieldValue> VarField for Vec<T> {
    fn write(&self, id: &str, out: &mut String) {
        for v in self {
            write_var(out, id, &v.to_text());
        }
    }
    fn take(fields: &mut VarFields, id: &'static str) -> Result<Self, FieldError> {
        fields
            .take_all(id)
            .iter()
            .map(|text| T::from_text(text))
            .collect::<Result<_, _>>()
            .map_err(|reason| FieldError { field: id, reason })
    }
}

/// The variable fields of one message, in order; members are taken out by
/// identifier and what remains is kept as [`UnknownField`]s.
pub(crate) struct VarFields {
    items: Vec<Option<(String, String)>>,
}

impl VarFields {
    /// Splits `XXvalue|XXvalue|…`. Empty segments (`||`) are skipped and the last
    /// field may lack its `|`.
    pub(crate) fn parse(text: &str) -> Result<Self, FieldError> {
        let mut items = Vec::new();
        for segment in text.split('|') {
            if segment.is_empty() {
                continue;
            }
            let mut chars = segment.char_indices();
            let split = match (chars.next(), chars.next()) {
                (Some(_), Some((i, c))) => i + c.len_utf8(),
                _ => {
                    return Err(FieldError {
                        field: "variable fields",
                        reason: format!("field without a two-character identifier: {segment:?}"),
                    });
                }
            };
            let (id, value) = segment.split_at(split);
            items.push(Some((id.to_owned(), value.to_owned())));
        }
        Ok(VarFields { items })
    }

    fn take_first(&mut self, id: &str) -> Option<String> {
        self.items
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|(i, _)| i == id))
            .and_then(Option::take)
            .map(|(_, v)| v)
    }

    fn take_all(&mut self, id: &str) -> Vec<String> {
        self.items
            .iter_mut()
            .filter(|slot| slot.as_ref().is_some_and(|(i, _)| i == id))
            .filter_map(Option::take)
            .map(|(_, v)| v)
            .collect()
    }

    pub(crate) fn into_extra(self) -> Vec<UnknownField> {
        self.items
            .into_iter()
            .flatten()
            .map(|(id, value)| UnknownField { id, value })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_debug_hides_secret() {
        assert_eq!(format!("{:?}", Password::new("1234")), "Password(\"***\")");
    }

    #[test]
    fn values_are_sanitized_and_bounded() {
        let mut out = String::new();
        write_var(&mut out, "AF", "a|b\r\nc");
        assert_eq!(out, "AFa b  c|");
        let long = "é".repeat(200);
        let mut out = String::new();
        write_var(&mut out, "AF", &long);
        assert_eq!(out.len(), 2 + 254 + 1);
    }

    #[test]
    fn var_fields_keep_order_and_unknowns() {
        let mut f = VarFields::parse("AOx|AFone|ZZkeep|AFtwo||AAlast").unwrap();
        assert_eq!(f.take_first("AO").as_deref(), Some("x"));
        assert_eq!(f.take_all("AF"), vec!["one", "two"]);
        assert_eq!(f.take_first("AA").as_deref(), Some("last"));
        assert_eq!(
            f.into_extra(),
            vec![UnknownField {
                id: "ZZ".into(),
                value: "keep".into()
            }]
        );
        assert!(VarFields::parse("AOx|A").is_err());
    }
}
