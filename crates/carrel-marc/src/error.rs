//! Errors of the readers and writers.

use std::fmt;

/// Why one record could not be read. Unless [`ReadError::is_fatal`], the reader
/// has skipped the record and the next call goes on with the following one.
#[derive(Debug, thiserror::Error)]
pub struct ReadError {
    /// 1-based position of the record in the input (broken records count).
    pub index: u64,
    /// Byte offset in the input where the record starts (ISO 2709), or the
    /// position of the reader when the problem was found (MARCXML).
    pub offset: u64,
    /// The record's 001, when it could be found.
    pub control_number: Option<String>,
    /// What is wrong.
    #[source]
    pub kind: ReadErrorKind,
}

impl ReadError {
    /// An I/O error or malformed XML: the reader stops after returning it.
    pub fn is_fatal(&self) -> bool {
        matches!(self.kind, ReadErrorKind::Io(_) | ReadErrorKind::Xml(_))
    }

    /// A one-line reason for an error report (without the index).
    pub fn reason(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.index)?;
        if let Some(cn) = &self.control_number {
            write!(f, " (001 {cn})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// The kinds of [`ReadError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// Reading the input failed (fatal).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The XML is not well-formed (fatal: the rest of the document cannot be trusted).
    #[error("malformed XML: {0}")]
    Xml(String),
    /// The leader is not 24 ASCII characters or its lengths are not numbers.
    #[error("invalid leader: {0}")]
    Leader(String),
    /// The record length in the leader disagrees with where the record terminator is.
    #[error(
        "record length {declared} in the leader, but the record terminator is at byte {actual}"
    )]
    RecordLength {
        /// Length in the leader.
        declared: usize,
        /// Length up to and including the first record terminator.
        actual: usize,
    },
    /// The input ends inside a record.
    #[error("truncated record: the input ends after {0} bytes without a record terminator")]
    Truncated(usize),
    /// No record terminator within the largest record ISO 2709 allows (99,999 bytes).
    #[error("no record terminator within 99999 bytes")]
    TooLong,
    /// The base address of data is wrong.
    #[error("invalid base address of data: {0}")]
    BaseAddress(String),
    /// A directory entry is malformed or points outside the data.
    #[error("invalid directory: {0}")]
    Directory(String),
    /// A field's structure is wrong (terminator, indicators, subfield delimiters).
    #[error("field {tag}: {reason}")]
    Field {
        /// The field's tag (as found).
        tag: String,
        /// What is wrong.
        reason: String,
    },
    /// The text is not valid in the record's encoding (strict decoding only).
    #[error("field {tag}: {reason}")]
    Encoding {
        /// The field's tag.
        tag: String,
        /// What is wrong.
        reason: String,
    },
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The record does not fit ISO 2709's lengths (99,999 bytes a record, 9,999 a field).
    #[error("{0}")]
    TooLong(String),
    /// An indicator, subfield code or value cannot be represented.
    #[error("field {tag}: {reason}")]
    Invalid {
        /// The field's tag.
        tag: String,
        /// What is wrong.
        reason: String,
    },
}
