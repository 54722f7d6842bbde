//! ISO 2709: broken records are reported and skipped, good ones around them are
//! read, and read → write → read gives the same records (byte for byte for UTF-8 input).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use carrel_marc::iso2709::write_record;
use carrel_marc::{
    Field, Iso2709Reader, Iso2709Writer, Leader, ReadErrorKind, ReaderOptions, Record, Subfield,
    Tag,
};
use common::read_fixture;

fn read_all(bytes: &[u8]) -> Vec<Result<Record, carrel_marc::ReadError>> {
    Iso2709Reader::new(bytes).collect()
}

fn sample() -> Record {
    let mut r = Record::new(Leader::new_book());
    r.fields
        .push(Field::control(Tag::new("001").unwrap(), "ocm123"));
    r.fields.push(Field::data(
        Tag::new("245").unwrap(),
        '1',
        '0',
        vec![Subfield::new('a', "Ærø :"), Subfield::new('b', "a guide /")],
    ));
    r
}

fn encoded(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    write_record(record, &mut out).unwrap();
    out
}

#[test]
fn pymarc_bad_records_are_reported_with_their_reason_and_skipped() {
    let results = read_all(&read_fixture("bad_records.mrc"));
    let kinds: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{}:{:?}", e.index, std::mem::discriminant(&e.kind)),
        })
        .collect();
    assert_eq!(results.len(), 9, "{kinds:?}");
    assert!(results[0].is_ok());
    let err = |i: usize| results[i].as_ref().unwrap_err();
    assert!(
        matches!(err(1).kind, ReadErrorKind::BaseAddress(_)),
        "{}",
        err(1)
    );
    assert!(
        matches!(err(2).kind, ReadErrorKind::BaseAddress(_)),
        "{}",
        err(2)
    );
    assert!(
        matches!(err(3).kind, ReadErrorKind::Directory(_)),
        "{}",
        err(3)
    );
    assert!(
        matches!(err(4).kind, ReadErrorKind::Directory(_)),
        "{}",
        err(4)
    );
    assert!(
        matches!(err(5).kind, ReadErrorKind::Leader(_)),
        "{}",
        err(5)
    );
    // A record with no fields at all is structurally valid (pymarc refuses it; mapping will, for want of a title).
    assert!(results[6].as_ref().unwrap().fields.is_empty());
    assert_eq!(
        results[7]
            .as_ref()
            .unwrap()
            .field("245")
            .unwrap()
            .first('a'),
        Some("The pragmatic programmer : ")
    );
    assert!(
        matches!(err(8).kind, ReadErrorKind::Truncated(100)),
        "{}",
        err(8)
    );
    assert_eq!(err(8).index, 9);
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().err().is_none_or(|e| !e.is_fatal()))
    );
}

#[test]
fn a_wrong_record_length_is_reported_and_the_next_record_read() {
    let good = encoded(&sample());
    let mut bad = good.clone();
    bad[0..5].copy_from_slice(b"00999");
    let input = [good.clone(), bad, good.clone()].concat();
    let results = read_all(&input);
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok());
    let e = results[1].as_ref().unwrap_err();
    assert!(
        matches!(e.kind, ReadErrorKind::RecordLength { declared: 999, actual } if actual == good.len())
    );
    assert_eq!(e.index, 2);
    assert_eq!(e.offset, good.len() as u64);
    assert_eq!(e.control_number.as_deref(), Some("ocm123"));
}

#[test]
fn a_truncated_record_in_the_middle_swallows_only_itself() {
    // A record cut short (its terminator lost) runs into the next one: both are
    // one bad chunk, reported once; reading resumes after the next terminator.
    let good = encoded(&sample());
    let cut = &good[..good.len() - 10];
    let input = [good.clone(), cut.to_vec(), good.clone(), good.clone()].concat();
    let results = read_all(&input);
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1].as_ref().unwrap_err().kind,
        ReadErrorKind::RecordLength { .. }
    ));
    assert!(results[2].is_ok());
}

#[test]
fn a_directory_entry_pointing_outside_the_data_is_reported() {
    let good = encoded(&sample());
    let mut bad = good.clone();
    // Second directory entry (245): start 00099.
    bad[24 + 12 + 7..24 + 12 + 12].copy_from_slice(b"00099");
    let results = read_all(&[bad, good].concat());
    assert!(matches!(
        results[0].as_ref().unwrap_err().kind,
        ReadErrorKind::Directory(_)
    ));
    assert!(results[1].is_ok());
}

#[test]
fn a_field_without_its_terminator_is_reported() {
    let good = encoded(&sample());
    let mut bad = good.clone();
    // Make 001's length one byte short: it no longer ends at a field terminator.
    bad[24 + 3..24 + 7].copy_from_slice(b"0006");
    let results = read_all(&bad);
    let e = results[0].as_ref().unwrap_err();
    assert!(
        matches!(&e.kind, ReadErrorKind::Field { tag, .. } if tag == "001"),
        "{e}"
    );
}

#[test]
fn garbage_longer_than_a_record_is_skipped_without_buffering_it() {
    let good = encoded(&sample());
    let mut input = vec![b'x'; 250_000];
    input.push(0x1D);
    input.extend_from_slice(&good);
    let results = read_all(&input);
    assert_eq!(results.len(), 2);
    assert!(matches!(
        results[0].as_ref().unwrap_err().kind,
        ReadErrorKind::TooLong
    ));
    assert_eq!(results[1].as_ref().unwrap(), &{
        let mut r = sample();
        r.leader = Iso2709Reader::new(&good[..])
            .next()
            .unwrap()
            .unwrap()
            .leader;
        r
    });
}

#[test]
fn line_breaks_between_records_are_ignored() {
    let good = encoded(&sample());
    let input = [good.clone(), b"\r\n".to_vec(), good.clone(), b"\n".to_vec()].concat();
    let results = read_all(&input);
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_ok));
}

#[test]
fn strict_encoding_refuses_invalid_utf8_and_lossy_replaces_it() {
    let mut record = sample();
    record.fields[1] = Field::data(
        Tag::new("245").unwrap(),
        '1',
        '0',
        vec![Subfield::new('a', "abc")],
    );
    let mut bytes = encoded(&record);
    let at = bytes.windows(3).position(|w| w == b"abc").unwrap();
    bytes[at + 1] = 0xFF;
    let lossy = Iso2709Reader::new(&bytes[..]).next().unwrap().unwrap();
    assert_eq!(lossy.field("245").unwrap().first('a'), Some("a\u{fffd}c"));
    let strict = Iso2709Reader::with_options(
        &bytes[..],
        ReaderOptions {
            strict_encoding: true,
        },
    )
    .next()
    .unwrap();
    assert!(matches!(
        strict.unwrap_err().kind,
        ReadErrorKind::Encoding { .. }
    ));
}

#[test]
fn utf8_fixtures_are_rewritten_byte_for_byte() {
    for name in [
        "one.dat",
        "diacritic.dat",
        "utf8_with_leader_flag.dat",
        "multi_isbn.dat",
        "alphatag.dat",
    ] {
        let input = read_fixture(name);
        let mut writer = Iso2709Writer::new(Vec::new());
        for record in Iso2709Reader::new(&input[..]) {
            writer.write(&record.unwrap()).unwrap();
        }
        let output = writer.finish().unwrap();
        assert!(output == input, "{name}: rewritten bytes differ");
    }
}

#[test]
fn every_fixture_round_trips_read_write_read() {
    for name in [
        "one.dat",
        "test.dat",
        "marc.dat",
        "marc8.dat",
        "diacritic.dat",
        "regression45.dat",
        "bad_indicator.dat",
        "multi_isbn.dat",
        "bad_marc8_escape.dat",
        "bad_eacc_encoding.dat",
    ] {
        let first: Vec<Record> = Iso2709Reader::new(&read_fixture(name)[..])
            .map(Result::unwrap)
            .collect();
        let mut writer = Iso2709Writer::new(Vec::new());
        for r in &first {
            writer.write(r).unwrap();
        }
        let bytes = writer.finish().unwrap();
        let second: Vec<Record> = Iso2709Reader::new(&bytes[..]).map(Result::unwrap).collect();
        assert_eq!(first.len(), second.len(), "{name}");
        for (a, b) in first.iter().zip(&second) {
            // MARC-8 input changes length once in UTF-8; everything else is equal.
            assert_eq!(a.fields, b.fields, "{name}");
            assert_eq!(
                a.leader.as_bytes()[5..12],
                b.leader.as_bytes()[5..12],
                "{name}"
            );
            assert_eq!(
                a.leader.as_bytes()[17..],
                b.leader.as_bytes()[17..],
                "{name}"
            );
        }
        // And a second write is identical to the first.
        let mut again = Iso2709Writer::new(Vec::new());
        for r in &second {
            again.write(r).unwrap();
        }
        assert!(again.finish().unwrap() == bytes, "{name}");
    }
}

#[test]
fn the_writer_refuses_what_iso2709_cannot_hold() {
    let mut record = sample();
    record.fields.push(Field::data(
        Tag::new("500").unwrap(),
        ' ',
        ' ',
        vec![Subfield::new('a', "x".repeat(10_000))],
    ));
    assert!(write_record(&record, &mut Vec::new()).is_err());
    let mut record = sample();
    record.fields.push(Field::data(
        Tag::new("500").unwrap(),
        ' ',
        ' ',
        vec![Subfield::new('a', "a\u{1e}b")],
    ));
    assert!(write_record(&record, &mut Vec::new()).is_err());
    let mut record = sample();
    record
        .fields
        .push(Field::data(Tag::new("500").unwrap(), 'é', ' ', vec![]));
    assert!(write_record(&record, &mut Vec::new()).is_err());
}

#[test]
fn the_writer_sets_exact_lengths() {
    let bytes = encoded(&sample());
    let leader = std::str::from_utf8(&bytes[..24]).unwrap();
    assert_eq!(leader[0..5].parse::<usize>().unwrap(), bytes.len());
    // 24 + two 12-byte entries + field terminator.
    assert_eq!(&leader[12..17], "00049");
    assert_eq!(&leader[9..10], "a");
    assert_eq!(&leader[20..24], "4500");
    assert_eq!(&bytes[24..36], b"001000700000");
    assert_eq!(*bytes.last().unwrap(), 0x1D);
}

#[test]
fn a_stray_delimiter_in_a_control_field_is_dropped() {
    // As in LC's BooksAll file: 001 "   00038361\x1F".
    let bytes = encoded(&sample());
    let at = bytes.windows(6).position(|w| w == b"ocm123").unwrap();
    let mut bad = bytes.clone();
    bad[at + 5] = 0x1F;
    let record = Iso2709Reader::new(&bad[..]).next().unwrap().unwrap();
    assert_eq!(record.control_value("001"), Some("ocm12"));
}
