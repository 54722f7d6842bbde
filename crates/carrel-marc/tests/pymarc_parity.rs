//! Records read by carrel-marc equal what pymarc 5.4.0 reads from the same
//! fixtures (expected dumps made by tools/pymarc_dump.py), and MARC-8 decoding
//! equals pymarc's conversion of its 1,515-line MARC-8 test file (after NFC).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use carrel_marc::marc8::{decode_marc8, decode_marc8_lossy};
use carrel_marc::{Iso2709Reader, MarcXmlReader};
use common::{dump, fixture, read_fixture};
use unicode_normalization::UnicodeNormalization;

fn parity(name: &str) {
    let expected = std::fs::read_to_string(fixture(&format!("expected/{name}.txt"))).unwrap();
    let file = std::fs::File::open(fixture(name)).unwrap();
    let blocks: Vec<String> = if name.ends_with(".xml") {
        MarcXmlReader::new(file)
            .map(|r| dump(&r.unwrap()))
            .collect()
    } else {
        Iso2709Reader::new(file)
            .map(|r| dump(&r.unwrap()))
            .collect()
    };
    let actual = blocks.join("\n\n") + "\n";
    if actual != expected {
        for (n, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
            assert_eq!(a, e, "{name}: first difference at line {}", n + 1);
        }
        assert_eq!(
            actual.lines().count(),
            expected.lines().count(),
            "{name}: line count"
        );
    }
}

#[test]
fn utf8_and_ascii_iso2709_fixtures_match_pymarc() {
    for name in [
        "one.dat",
        "test.dat",
        "marc.dat",
        "multi_isbn.dat",
        "diacritic.dat",
        "utf8_with_leader_flag.dat",
        "alphatag.dat",
    ] {
        parity(name);
    }
}

#[test]
fn marc8_fixtures_match_pymarc() {
    // regression45.dat: 12 MARC-8 records (Cyrillic via escapes, stray bytes before the first delimiter).
    parity("marc8.dat");
    parity("regression45.dat");
}

#[test]
fn damaged_but_readable_records_match_pymarc() {
    // A tag "0 2" whose field lost its indicators: read with blank indicators.
    parity("bad_indicator.dat");
}

#[test]
fn marcxml_fixtures_match_pymarc() {
    parity("batch.xml");
    parity("utf8.xml");
}

#[test]
fn marc8_diacritics_are_moved_after_their_letter_and_composed() {
    let mut records = Iso2709Reader::new(std::fs::File::open(fixture("marc8.dat")).unwrap());
    let record = records.next().unwrap().unwrap();
    let title = record.field("240").unwrap().first('a').unwrap();
    // In the file: "De la solitude \xE1a la communaut\xE2e." (grave, acute before the letter).
    assert_eq!(title, "De la solitude \u{e0} la communaut\u{e9}.");
    assert!(
        record.leader.is_unicode(),
        "leader/09 becomes 'a' once decoded"
    );
}

#[test]
fn marc8_lines_match_pymarc_conversion() {
    let marc8 = read_fixture("test_marc8.txt");
    let utf8 = String::from_utf8(read_fixture("test_utf8.txt")).unwrap();
    let mut count = 0;
    for (line, expected) in marc8.split(|&b| b == b'\n').zip(utf8.split('\n')) {
        if line.is_empty() && expected.is_empty() {
            continue;
        }
        let expected: String = expected.nfc().collect();
        assert_eq!(
            decode_marc8(line).unwrap_or_else(|e| panic!(
                "line {}: {e}: {:?}",
                count + 1,
                String::from_utf8_lossy(line)
            )),
            expected,
            "line {}",
            count + 1
        );
        count += 1;
    }
    assert_eq!(count, 1515);
}

#[test]
fn bad_marc8_is_replaced_not_dropped() {
    // "Soci\x1bt\xe2e": an escape sequence MARC-8 does not define.
    assert_eq!(decode_marc8_lossy(b"Soci\x1bt\xe2e"), "Soci\u{fffd}t\u{e9}");
    assert!(decode_marc8(b"Soci\x1bt\xe2e").is_err());
    // The record still reads (lossy by default) and its 260 $b keeps everything readable.
    let mut records =
        Iso2709Reader::new(std::fs::File::open(fixture("bad_marc8_escape.dat")).unwrap());
    let record = records.next().unwrap().unwrap();
    assert_eq!(
        record.field("260").unwrap().first('b').unwrap(),
        "La Soci\u{e9}t\u{fffd},"
    );
}
