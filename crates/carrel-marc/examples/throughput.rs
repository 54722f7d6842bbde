//! Reads a MARC file (ISO 2709, or MARCXML when the name ends in `.xml`), maps
//! every record and prints records/s. Build it optimised:
//! `cargo run --release -p carrel-marc --example throughput -- FILE [--write-xml]`
//! (`--write-xml` also serialises each record as MARCXML, as an export would;
//! `--read-only` parses without mapping).

use std::fs::File;
use std::time::Instant;

use carrel_marc::mapping::{Limits, map_record};
use carrel_marc::{Iso2709Reader, MarcXmlReader, MarcXmlWriter, ReadError, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: throughput FILE [--write-xml|--read-only]")?;
    let flag = args.next();
    let write_xml = flag.as_deref() == Some("--write-xml");
    let read_only = flag.as_deref() == Some("--read-only");
    let limits = Limits {
        title: 500,
        subtitle: 500,
        author: 200,
        max_authors: 20,
        publisher: 200,
        subject: 100,
        max_subjects: 20,
        description: 5_000,
        call_number: 100,
    };
    let file = File::open(&path)?;
    let records: Box<dyn Iterator<Item = Result<Record, ReadError>>> = if path.ends_with(".xml") {
        Box::new(MarcXmlReader::new(file))
    } else {
        Box::new(Iso2709Reader::new(file))
    };
    let mut sink = MarcXmlWriter::new(std::io::sink());
    let (mut ok, mut bad, mut unmapped, mut notes) = (0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    for result in records {
        match result {
            Ok(record) => {
                if read_only {
                    ok += 1;
                    continue;
                }
                match map_record(&record, &limits) {
                    Ok(m) => {
                        ok += 1;
                        notes += m.notes.len() as u64;
                    }
                    Err(_) => unmapped += 1,
                }
                if write_xml {
                    sink.write(&record)?;
                }
            }
            Err(e) => {
                bad += 1;
                if bad <= 5 {
                    eprintln!("{e}");
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = ok + bad + unmapped;
    println!(
        "{total} records in {secs:.2} s: {:.0} records/s (mapped {ok}, no title {unmapped}, unreadable {bad}, notes {notes})",
        total as f64 / secs
    );
    Ok(())
}
