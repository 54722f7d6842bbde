//! MARC 21 for Carrel (see `INTEROP.md`, "MARC 21 import and export").
//!
//! - [`iso2709`]: streaming ISO 2709 reader (one bad record never stops a run) and writer.
//! - [`marcxml`]: streaming MARCXML reader (`<collection>` or a bare `<record>`) and writer.
//! - [`marc8`]: MARC-8 → UTF-8 with the Library of Congress code tables (leader/09 blank).
//! - [`mapping`]: a record → Carrel's item fields and copies, with field-length limits.
//! - [`export`]: Carrel's current fields and copies written over a stored record.
//!
//! Records are always held as UTF-8 ([`Record`]); both writers write UTF-8.

pub mod error;
pub mod export;
pub mod iso2709;
pub mod mapping;
pub mod marc8;
pub mod marcxml;
pub mod record;

pub use error::{ReadError, ReadErrorKind, WriteError};
pub use export::export_record;
pub use iso2709::{Iso2709Reader, Iso2709Writer, ReaderOptions};
pub use mapping::{CatalogRecord, Holding, Limits, MapError, Mapped, MappingNote, map_record};
pub use marcxml::{MarcXmlReader, MarcXmlWriter};
pub use record::{Field, Leader, Record, RecordError, Subfield, Tag};
