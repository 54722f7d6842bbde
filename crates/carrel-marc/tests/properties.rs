//! Property tests: the readers and the MARC-8 decoder never panic and finish
//! quickly on arbitrary bytes; valid records survive encode → decode in both formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use carrel_marc::iso2709::write_record;
use carrel_marc::marc8::{decode_marc8, decode_marc8_lossy};
use carrel_marc::marcxml::to_marcxml_document;
use carrel_marc::{Field, Iso2709Reader, Leader, MarcXmlReader, Record, Subfield, Tag};
use proptest::prelude::*;

const CASES: u32 = 512;
const LIMIT: Duration = Duration::from_millis(500);

/// Bytes that look like MARC often enough to get past the first checks.
fn marcish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        Just(b"00100nam a2200049 i 4500".to_vec()),
        Just(b"245001200000".to_vec()),
        Just(vec![0x1E]),
        Just(vec![0x1F, b'a']),
        Just(vec![0x1D]),
        Just(b"\x1b$1!56".to_vec()),
        Just(b"\x1b(N".to_vec()),
        prop::collection::vec(b'0'..=b'9', 0..12),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn xmlish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        Just(b"<collection xmlns=\"http://www.loc.gov/MARC21/slim\">".to_vec()),
        Just(b"<record>".to_vec()),
        Just(b"</record>".to_vec()),
        Just(b"<leader>00000nam a2200000 i 4500</leader>".to_vec()),
        Just(b"<controlfield tag=\"001\">".to_vec()),
        Just(b"</controlfield>".to_vec()),
        Just(b"<datafield tag=\"245\" ind1=\"1\" ind2=\"0\">".to_vec()),
        Just(b"</datafield>".to_vec()),
        Just(b"<subfield code=\"a\">".to_vec()),
        Just(b"</subfield>".to_vec()),
        Just(b"&amp;&#233;&bogus;".to_vec()),
        "[ -~]{0,12}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn text() -> impl Strategy<Value = String> {
    // Anything the formats can carry: no MARC delimiters, no characters XML 1.0
    // forbids, no lone CR issues (CR is escaped by the writer).
    "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,40}"
}

fn tag_strategy(control: bool) -> impl Strategy<Value = Tag> {
    if control {
        (1u8..=9)
            .prop_map(|d| Tag::new(&format!("00{d}")).unwrap())
            .boxed()
    } else {
        "[0-9A-Za-z]{3}"
            .prop_filter("not a control tag", |t| !t.starts_with("00"))
            .prop_map(|t| Tag::new(&t).unwrap())
            .boxed()
    }
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        (tag_strategy(true), text()).prop_map(|(tag, value)| Field::Control { tag, value }),
        (
            tag_strategy(false),
            "[ -~]",
            "[ -~]",
            prop::collection::vec(("[!-~]", text()), 0..6),
        )
            .prop_map(|(tag, i1, i2, subs)| Field::Data {
                tag,
                indicators: [i1.chars().next().unwrap(), i2.chars().next().unwrap()],
                subfields: subs
                    .into_iter()
                    .map(|(c, v)| Subfield::new(c.chars().next().unwrap(), v))
                    .collect(),
            }),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    ("[ -~]{24}", prop::collection::vec(field(), 0..20)).prop_map(|(leader, fields)| {
        let mut leader = Leader::from_bytes(leader.as_bytes()).unwrap();
        leader.set(9, b'a');
        Record { leader, fields }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn iso2709_reader_never_panics(bytes in marcish_bytes()) {
        let start = Instant::now();
        let mut n = 0usize;
        for result in Iso2709Reader::new(&bytes[..]) {
            let _ = result;
            n += 1;
            prop_assert!(n <= bytes.len() + 1, "more results than bytes");
        }
        prop_assert!(start.elapsed() < LIMIT);
    }

    #[test]
    fn marcxml_reader_never_panics(bytes in xmlish_bytes()) {
        let start = Instant::now();
        let mut n = 0usize;
        for result in MarcXmlReader::new(&bytes[..]) {
            let _ = result;
            n += 1;
            prop_assert!(n <= bytes.len() + 1, "more results than bytes");
        }
        prop_assert!(start.elapsed() < LIMIT);
    }

    #[test]
    fn marc8_decoder_never_panics(bytes in marcish_bytes()) {
        let start = Instant::now();
        let lossy = decode_marc8_lossy(&bytes);
        if let Ok(strict) = decode_marc8(&bytes) {
            prop_assert_eq!(strict, lossy);
        }
        prop_assert!(start.elapsed() < LIMIT);
    }

    #[test]
    fn iso2709_round_trip(record in record()) {
        let mut bytes = Vec::new();
        write_record(&record, &mut bytes).unwrap();
        let back = Iso2709Reader::new(&bytes[..]).next().unwrap().unwrap();
        prop_assert_eq!(&back.fields, &record.fields);
        prop_assert_eq!(&back.leader.as_bytes()[5..10], &record.leader.as_bytes()[5..10]);
    }

    #[test]
    fn marcxml_round_trip(record in record()) {
        let xml = to_marcxml_document(&record).unwrap();
        let back = MarcXmlReader::new(xml.as_bytes()).next().unwrap().unwrap();
        prop_assert_eq!(back, record);
    }
}
