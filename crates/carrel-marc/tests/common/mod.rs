//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use carrel_marc::{Field, Record};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

/// The text form of `tools/pymarc_dump.py`.
pub fn dump(record: &Record) -> String {
    let mut lines = vec![format!("=LDR  {}", record.leader)];
    for field in &record.fields {
        match field {
            Field::Control { tag, value } => lines.push(format!("={tag}  {value}")),
            Field::Data {
                tag,
                indicators,
                subfields,
            } => {
                let subs: String = subfields
                    .iter()
                    .map(|s| format!("${}{}", s.code, s.value))
                    .collect();
                lines.push(format!("={tag}  {}{}{subs}", indicators[0], indicators[1]));
            }
        }
    }
    lines.join("\n")
}
