//! Prints records in the text form of `tools/pymarc_dump.py`, to compare with pymarc:
//! `cargo run -p carrel-marc --example marc_dump -- FILE.mrc|FILE.xml`.

use std::fs::File;

use carrel_marc::{Field, Iso2709Reader, MarcXmlReader, ReadError, Record};

fn dump(record: &Record) -> String {
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: marc_dump FILE")?;
    let file = File::open(&path)?;
    let records: Box<dyn Iterator<Item = Result<Record, ReadError>>> = if path.ends_with(".xml") {
        Box::new(MarcXmlReader::new(file))
    } else {
        Box::new(Iso2709Reader::new(file))
    };
    let blocks: Vec<String> = records
        .map(|r| match r {
            Ok(record) => dump(&record),
            Err(e) => {
                eprintln!("{e}");
                "=ERROR".to_owned()
            }
        })
        .collect();
    println!("{}", blocks.join("\n\n"));
    Ok(())
}
