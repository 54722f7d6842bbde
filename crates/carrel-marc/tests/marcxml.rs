//! MARCXML: collections and bare records, per-record errors, fatal XML errors,
//! and read → write → read round trips (also across ISO 2709).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use carrel_marc::marcxml::to_marcxml_document;
use carrel_marc::{
    Iso2709Reader, Iso2709Writer, MarcXmlReader, MarcXmlWriter, ReadErrorKind, Record,
};
use common::read_fixture;

fn read_xml(xml: &[u8]) -> Vec<Result<Record, carrel_marc::ReadError>> {
    MarcXmlReader::new(xml).collect()
}

fn write_xml(records: &[Record]) -> Vec<u8> {
    let mut writer = MarcXmlWriter::new(Vec::new());
    for r in records {
        writer.write(r).unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn collection_round_trips() {
    let first: Vec<Record> = read_xml(&read_fixture("batch.xml"))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(first.len(), 2);
    let second: Vec<Record> = read_xml(&write_xml(&first))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, second);
}

#[test]
fn iso2709_to_marcxml_and_back_keeps_every_record() {
    for name in [
        "test.dat",
        "marc.dat",
        "marc8.dat",
        "regression45.dat",
        "diacritic.dat",
    ] {
        let records: Vec<Record> = Iso2709Reader::new(&read_fixture(name)[..])
            .map(Result::unwrap)
            .collect();
        let back: Vec<Record> = read_xml(&write_xml(&records))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records, back, "{name}");
        let mut iso = Iso2709Writer::new(Vec::new());
        for r in &back {
            iso.write(r).unwrap();
        }
        let again: Vec<Record> = Iso2709Reader::new(&iso.finish().unwrap()[..])
            .map(Result::unwrap)
            .collect();
        assert_eq!(records.len(), again.len());
        for (a, b) in records.iter().zip(&again) {
            assert_eq!(a.fields, b.fields, "{name}");
        }
    }
}

#[test]
fn a_bare_record_document_reads_and_special_characters_survive() {
    let mut records: Vec<Record> = read_xml(&read_fixture("batch.xml"))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut record = records.remove(0);
    if let carrel_marc::Field::Data { subfields, .. } = &mut record.fields[6] {
        subfields[0].value = "A & B <c> \"d\" 'e'\r\n\tf ü 漢".into();
    }
    let doc = to_marcxml_document(&record).unwrap();
    assert!(doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<record xmlns=\"http://www.loc.gov/MARC21/slim\">"));
    let back: Vec<Record> = read_xml(doc.as_bytes())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(back, vec![record]);
}

#[test]
fn records_without_a_namespace_and_with_a_prefix_both_read() {
    let plain = br#"<collection><record><leader>00000nam a2200000 i 4500</leader>
        <controlfield tag="001">x1</controlfield>
        <datafield tag="245" ind1="1" ind2="0"><subfield code="a">T &amp; U&#233;</subfield></datafield>
        </record></collection>"#;
    let r = read_xml(plain).remove(0).unwrap();
    assert_eq!(r.field("245").unwrap().first('a'), Some("T & Ué"));
    // Elements of another namespace are not MARC.
    let other = br#"<x:record xmlns:x="urn:other"><x:leader>00000nam a2200000 i 4500</x:leader></x:record>"#;
    assert!(read_xml(other).is_empty());
}

#[test]
fn a_bad_record_is_reported_and_the_next_one_read() {
    let xml = br#"<?xml version="1.0"?>
<collection xmlns="http://www.loc.gov/MARC21/slim">
  <record><leader>short</leader><controlfield tag="001">a1</controlfield></record>
  <record><leader>00000nam a2200000 i 4500</leader><controlfield tag="001">a2</controlfield>
    <datafield tag="24" ind1="1" ind2="0"><subfield code="a">x</subfield></datafield></record>
  <record><leader>00000nam a2200000 i 4500</leader><controlfield tag="001">a3</controlfield>
    <datafield tag="245" ind1="1" ind2="0"><subfield>no code</subfield></datafield></record>
  <record><leader>00000nam a2200000 i 4500</leader><controlfield tag="001">a4</controlfield></record>
</collection>"#;
    let results = read_xml(xml);
    assert_eq!(results.len(), 4);
    let e1 = results[0].as_ref().unwrap_err();
    assert!(matches!(e1.kind, ReadErrorKind::Leader(_)));
    assert_eq!((e1.index, e1.control_number.as_deref()), (1, Some("a1")));
    assert_eq!(
        results[1].as_ref().unwrap_err().control_number.as_deref(),
        Some("a2")
    );
    assert_eq!(results[2].as_ref().unwrap_err().index, 3);
    assert!(!results[2].as_ref().unwrap_err().is_fatal());
    assert_eq!(
        results[3].as_ref().unwrap().control_value("001"),
        Some("a4")
    );
}

#[test]
fn pymarc_bad_tag_fixture_is_a_record_error() {
    let results = read_xml(&read_fixture("bad_tag.xml"));
    assert_eq!(results.len(), 1);
    assert!(matches!(
        results[0].as_ref().unwrap_err().kind,
        ReadErrorKind::Leader(_)
    ));
}

#[test]
fn malformed_xml_ends_the_stream_with_one_fatal_error() {
    let xml = br#"<collection xmlns="http://www.loc.gov/MARC21/slim">
  <record><leader>00000nam a2200000 i 4500</leader></record>
  <record><leader>00000nam a2200000 i 4500</leader><controlfield tag="001">z9</controlfield></oops>
  <record><leader>00000nam a2200000 i 4500</leader></record>
</collection>"#;
    let results = read_xml(xml);
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    let e = results[1].as_ref().unwrap_err();
    assert!(e.is_fatal());
    assert_eq!(e.control_number.as_deref(), Some("z9"));
    // A document that stops inside a record.
    let cut = br#"<collection xmlns="http://www.loc.gov/MARC21/slim"><record><leader>00000nam a2200000 i 4500</leader>"#;
    let results = read_xml(cut);
    assert_eq!(results.len(), 1);
    assert!(results[0].as_ref().unwrap_err().is_fatal());
}

#[test]
fn the_writer_refuses_characters_xml_cannot_carry() {
    let mut record = read_xml(&read_fixture("batch.xml")).remove(0).unwrap();
    record.fields.push(carrel_marc::Field::control(
        carrel_marc::Tag::new("009").unwrap(),
        "a\u{1b}b",
    ));
    assert!(to_marcxml_document(&record).is_err());
}
