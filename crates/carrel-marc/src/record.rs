//! The in-memory MARC record: a leader and an ordered list of fields, all text
//! already decoded to UTF-8 (whatever the source encoding was).

use std::fmt;

/// The 24-character record leader (ASCII).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Leader([u8; 24]);

/// Why a leader, tag, indicator or subfield code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A leader must be 24 printable ASCII characters.
    #[error("leader must be 24 printable ASCII characters, got {0:?}")]
    Leader(String),
    /// A tag must be three printable ASCII characters.
    #[error("tag must be three printable ASCII characters, got {0:?}")]
    Tag(String),
}

impl Leader {
    /// A leader for a new UTF-8 book record: `00000nam a2200000 i 4500`
    /// (lengths are filled in when written).
    pub fn new_book() -> Self {
        Leader(*b"00000nam a2200000 i 4500")
    }

    /// Builds a leader from its 24 bytes; they must be printable ASCII.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let array: [u8; 24] = bytes
            .try_into()
            .map_err(|_| RecordError::Leader(String::from_utf8_lossy(bytes).into_owned()))?;
        if !array.iter().all(|b| (0x20..0x7F).contains(b)) {
            return Err(RecordError::Leader(
                String::from_utf8_lossy(bytes).into_owned(),
            ));
        }
        Ok(Leader(array))
    }

    /// The 24 bytes.
    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }

    /// The leader as text.
    pub fn as_str(&self) -> &str {
        // Invariant: printable ASCII (checked in from_bytes, kept by set).
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The byte at `position` (0-based, as in the MARC 21 documentation: leader/06 is `get(6)`).
    pub fn get(&self, position: usize) -> u8 {
        self.0.get(position).copied().unwrap_or(b' ')
    }

    /// Sets the byte at `position`; non-printable bytes and positions past 23 are ignored.
    pub fn set(&mut self, position: usize, value: u8) {
        if (0x20..0x7F).contains(&value)
            && let Some(slot) = self.0.get_mut(position)
        {
            *slot = value;
        }
    }

    /// leader/06, the type of record (`a` language material, `g` projected medium…).
    pub fn type_of_record(&self) -> u8 {
        self.0[6]
    }

    /// leader/07, the bibliographic level (`m` monograph, `s` serial…).
    pub fn bibliographic_level(&self) -> u8 {
        self.0[7]
    }

    /// leader/09: `a` means UTF-8 (Unicode), blank means MARC-8.
    pub fn is_unicode(&self) -> bool {
        self.0[9] == b'a'
    }
}

impl fmt::Debug for Leader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Leader({:?})", self.as_str())
    }
}

impl fmt::Display for Leader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A three-character field tag (`245`; MARC allows letters too, as in `FMT`).
/// Any printable ASCII is accepted, so that records with a damaged tag (`0 2`)
/// are still read and written back unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag([u8; 3]);

impl Tag {
    /// Parses a tag: exactly three printable ASCII characters.
    pub fn new(tag: &str) -> Result<Self, RecordError> {
        Self::from_bytes(tag.as_bytes())
    }

    /// A tag from three bytes known to be printable ASCII (for literals).
    pub(crate) const fn literal(bytes: [u8; 3]) -> Self {
        Tag(bytes)
    }

    /// Parses a tag from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        match <[u8; 3]>::try_from(bytes) {
            Ok(array) if array.iter().all(|b| (0x20..0x7F).contains(b)) => Ok(Tag(array)),
            _ => Err(RecordError::Tag(
                String::from_utf8_lossy(bytes).into_owned(),
            )),
        }
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The three bytes.
    pub fn as_bytes(&self) -> &[u8; 3] {
        &self.0
    }

    /// Control fields are `001`–`009` (and `000`): data without indicators or subfields.
    pub fn is_control(&self) -> bool {
        self.0[0] == b'0' && self.0[1] == b'0' && self.0[2].is_ascii_digit()
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.as_str())
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One subfield: a code (`a`) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subfield {
    /// The subfield code, a printable ASCII character.
    pub code: char,
    /// The value, UTF-8.
    pub value: String,
}

impl Subfield {
    /// A subfield.
    pub fn new(code: char, value: impl Into<String>) -> Self {
        Subfield {
            code,
            value: value.into(),
        }
    }
}

/// A variable field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A control field (`001`–`009`): plain data.
    Control {
        /// The tag.
        tag: Tag,
        /// The data.
        value: String,
    },
    /// A data field: two indicators and subfields.
    Data {
        /// The tag.
        tag: Tag,
        /// First and second indicator (printable ASCII; blank is `' '`).
        indicators: [char; 2],
        /// The subfields, in order.
        subfields: Vec<Subfield>,
    },
}

impl Field {
    /// A control field.
    pub fn control(tag: Tag, value: impl Into<String>) -> Self {
        Field::Control {
            tag,
            value: value.into(),
        }
    }

    /// A data field.
    pub fn data(tag: Tag, ind1: char, ind2: char, subfields: Vec<Subfield>) -> Self {
        Field::Data {
            tag,
            indicators: [ind1, ind2],
            subfields,
        }
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        match self {
            Field::Control { tag, .. } | Field::Data { tag, .. } => *tag,
        }
    }

    /// The subfields (none for a control field).
    pub fn subfields(&self) -> &[Subfield] {
        match self {
            Field::Control { .. } => &[],
            Field::Data { subfields, .. } => subfields,
        }
    }

    /// The indicators (blank for a control field).
    pub fn indicators(&self) -> [char; 2] {
        match self {
            Field::Control { .. } => [' ', ' '],
            Field::Data { indicators, .. } => *indicators,
        }
    }

    /// The value of a control field.
    pub fn control_value(&self) -> Option<&str> {
        match self {
            Field::Control { value, .. } => Some(value),
            Field::Data { .. } => None,
        }
    }

    /// The values of every subfield with `code`, in order.
    pub fn values(&self, code: char) -> impl Iterator<Item = &str> {
        self.subfields()
            .iter()
            .filter(move |s| s.code == code)
            .map(|s| s.value.as_str())
    }

    /// The first value of subfield `code`.
    pub fn first(&self, code: char) -> Option<&str> {
        self.values(code).next()
    }
}

/// A MARC record: leader and fields in their stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The leader. Its length positions (00-04, 12-16) are what the source said;
    /// writers recompute them.
    pub leader: Leader,
    /// The fields, in order.
    pub fields: Vec<Field>,
}

impl Record {
    /// An empty record with `leader`.
    pub fn new(leader: Leader) -> Self {
        Record {
            leader,
            fields: Vec::new(),
        }
    }

    /// Every field tagged `tag` (such as `"650"`), in order.
    pub fn fields_tagged<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.tag().as_str() == tag)
    }

    /// The first field tagged `tag`.
    pub fn field(&self, tag: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.tag().as_str() == tag)
    }

    /// The value of the first control field tagged `tag` (`"001"`).
    pub fn control_value(&self, tag: &str) -> Option<&str> {
        self.fields
            .iter()
            .filter(|f| f.tag().as_str() == tag)
            .find_map(Field::control_value)
    }

    /// Inserts `field` after the last field whose tag sorts before or equal to its own,
    /// which keeps tag order in a record that already has it.
    pub fn insert_in_order(&mut self, field: Field) {
        let tag = field.tag();
        let at = self
            .fields
            .iter()
            .rposition(|f| f.tag() <= tag)
            .map_or(0, |i| i + 1);
        self.fields.insert(at, field);
    }
}
