//! The mapping of INTEROP.md, field by field, on pymarc's fixtures. The source
//! values were printed with pymarc 5.4.0 (see the comments) and the expected
//! Carrel values derived from them by the contract's rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use carrel_marc::mapping::{CatalogRecord, Holding, Limits, MappingNote, map_record};
use carrel_marc::{Field, Iso2709Reader, Leader, MapError, MarcXmlReader, Record, Subfield, Tag};
use common::read_fixture;

fn iso(name: &str) -> Vec<Record> {
    Iso2709Reader::new(&read_fixture(name)[..])
        .map(Result::unwrap)
        .collect()
}

fn map(record: &Record) -> CatalogRecord {
    map_record(record, &Limits::UNLIMITED).unwrap().record
}

#[test]
fn one_dat() {
    // 001 'fol05731351 ', 003 IMchF, 008 .../35-37 eng, 020 $a '0471383147 (paper/cd-rom : alk. paper)',
    // 100 $a 'Martinsson, Tobias,', 245 $a 'ActivePerl with ASP and ADO /' $c ...,
    // 260 $b 'John Wiley & Sons,' $c '2000.', 650 'Perl (Computer program language)',
    // 630 'Active server pages.', 630 'ActiveX.'; leader/06-07 'am'.
    let m = map(&iso("one.dat")[0]);
    assert_eq!(
        m,
        CatalogRecord {
            title: "ActivePerl with ASP and ADO".into(),
            subtitle: None,
            authors: vec!["Martinsson, Tobias".into()],
            isbn: Some("9780471383147".into()),
            item_type: "book".into(),
            publisher: Some("John Wiley & Sons".into()),
            publication_year: Some(2000),
            language: Some("eng".into()),
            subjects: vec![
                "Perl (Computer program language)".into(),
                "Active server pages".into(),
                "ActiveX".into()
            ],
            description: None,
            control_number: Some("fol05731351".into()),
            control_number_identifier: Some("IMchF".into()),
            holdings: vec![],
        }
    );
}

#[test]
fn marc8_dat() {
    // MARC-8 record. 100 'Tournier, Paul.', 245 'Escape from loneliness /', 260 $b 'Westminster Press,'
    // $c 'c1962.', 650s Loneliness. / Self. / Social psychology. / Loneliness. (ind2 2) / Social Isolation.
    let m = map(&iso("marc8.dat")[0]);
    assert_eq!(m.title, "Escape from loneliness");
    assert_eq!(m.authors, vec!["Tournier, Paul"]);
    assert_eq!(m.publisher.as_deref(), Some("Westminster Press"));
    assert_eq!(m.publication_year, Some(1962));
    assert_eq!(m.language.as_deref(), Some("eng"));
    assert_eq!(
        m.subjects,
        vec![
            "Loneliness",
            "Self",
            "Social psychology",
            "Social Isolation"
        ]
    );
    assert_eq!(m.control_number.as_deref(), Some("2"));
    assert_eq!(m.control_number_identifier, None);
    assert_eq!(m.isbn, None);
}

#[test]
fn subtitle_subdivisions_and_the_first_valid_isbn() {
    // diacritic.dat: 245 $a 'Amateur media :' $b 'social, cultural and legal perspectives /';
    // 020 '9780415782654 (hardback)', '9780203112021 (ebook)'; 650 'Social media' $x 'Law and legislation.'.
    let m = map(&iso("diacritic.dat")[0]);
    assert_eq!(m.title, "Amateur media");
    assert_eq!(
        m.subtitle.as_deref(),
        Some("social, cultural and legal perspectives")
    );
    assert_eq!(m.isbn.as_deref(), Some("9780415782654"));
    assert_eq!(m.publisher.as_deref(), Some("Routledge"));
    assert_eq!(
        m.subjects,
        vec![
            "Social media -- Law and legislation",
            "User-generated content",
            "Internet -- Law and legislation"
        ]
    );
    assert_eq!(m.authors[0], "Hunter, Dan");
    // multi_isbn.dat: three 020s, the first '0914378287 (v. 1)'.
    let m = map(&iso("multi_isbn.dat")[0]);
    assert_eq!(m.isbn.as_deref(), Some("9780914378280"));
    assert_eq!(m.title, "The town scold");
    // test.dat #4: 'Brown, Martin C.' keeps the period of its initial; 'Perl :' / 'the complete reference /'.
    let m = map(&iso("test.dat")[3]);
    assert_eq!(m.authors, vec!["Brown, Martin C."]);
    assert_eq!(
        (m.title.as_str(), m.subtitle.as_deref()),
        ("Perl", Some("the complete reference"))
    );
    assert_eq!(m.publisher.as_deref(), Some("Osborne/McGraw-Hill"));
    assert_eq!(m.publication_year, Some(1999));
}

#[test]
fn marcxml_types_years_and_description() {
    let records: Vec<Record> = MarcXmlReader::new(&read_fixture("batch.xml")[..])
        .map(Result::unwrap)
        .collect();
    // Leader 'jm' (musical sound recording) → other; 260 $c '[1957?]'; 700 'Charles, Ray,' $d $4.
    let m = map(&records[0]);
    assert_eq!(m.item_type, "other");
    assert_eq!(m.publication_year, Some(1957));
    assert_eq!(m.authors, vec!["Charles, Ray"]);
    assert_eq!(
        m.subjects,
        vec!["Jazz -- 1951-1960", "Piano with jazz ensemble"]
    );
    assert_eq!(m.title, "The Great Ray Charles");
    // Leader 'mm' (computer file) → ebook; 260 $c '1994-'; 520 $a; 610 'United States.' three times → once.
    let m = map(&records[1]);
    assert_eq!(m.item_type, "ebook");
    assert_eq!(m.publication_year, Some(1994));
    assert!(
        m.description
            .as_deref()
            .unwrap()
            .starts_with("Features the White House. Highlights")
    );
    assert!(
        m.description
            .as_deref()
            .unwrap()
            .ends_with("Links to White House for Kids.")
    );
    assert_eq!(
        m.subjects,
        vec!["White House (Washington, D.C.)", "United States"]
    );
    assert_eq!(m.authors, vec!["White House Web Team"]);
}

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn synthetic() -> Record {
    let mut r = Record::new(Leader::from_bytes(b"00000cgm a2200000 i 4500").unwrap());
    let f = |t: &str, i1: char, i2: char, subs: &[(char, &str)]| {
        Field::data(
            tag(t),
            i1,
            i2,
            subs.iter().map(|(c, v)| Subfield::new(*c, *v)).collect(),
        )
    };
    r.fields = vec![
        Field::control(tag("001"), " 123 "),
        Field::control(tag("008"), "150101s2014    xxu---        v   vleng d"),
        f("020", ' ', ' ', &[('a', "not-an-isbn")]),
        f(
            "020",
            ' ',
            ' ',
            &[('a', "978-0-306-40615-7 :"), ('c', "$20")],
        ),
        f("041", '1', ' ', &[('a', "fre")]),
        f("100", '1', ' ', &[('a', "Doe, Jane,"), ('e', "director.")]),
        f(
            "245",
            '1',
            '0',
            &[
                ('a', "Star wars."),
                ('n', "Episode IV,"),
                ('p', "A new hope :"),
                ('b', "the film /"),
                ('c', "Lucas."),
            ],
        ),
        f("260", ' ', ' ', &[('b', "Old Press,"), ('c', "1977.")]),
        f("264", ' ', '4', &[('c', "©2010")]),
        f(
            "264",
            ' ',
            '1',
            &[('a', "Burbank :"), ('b', "Fox,"), ('c', "[2014]")],
        ),
        f("520", ' ', ' ', &[('a', "  A   long\ttime ago. ")]),
        f(
            "651",
            ' ',
            '0',
            &[
                ('a', "Tatooine (Imaginary place)"),
                ('v', "Drama."),
                ('z', "Mos Eisley."),
            ],
        ),
        f("700", '1', ' ', &[('a', "DOE, JANE.")]),
        f("700", '1', ' ', &[('a', "Roe, R. J.")]),
        f("710", '2', ' ', &[('a', "Lucasfilm, ltd.")]),
        f(
            "852",
            ' ',
            ' ',
            &[('h', "791.43"), ('i', "S79"), ('p', "B852")],
        ),
        f(
            "952",
            ' ',
            ' ',
            &[('a', "MAIN"), ('o', "DVD STA"), ('p', "31234000001")],
        ),
        f("952", ' ', ' ', &[('a', "EAST"), ('p', "31234000002")]),
    ];
    r
}

#[test]
fn every_rule_on_one_synthetic_record() {
    let m = map(&synthetic());
    assert_eq!(m.title, "Star wars. Episode IV, A new hope");
    assert_eq!(m.subtitle.as_deref(), Some("the film"));
    // 100 first, then 7XX in order; "DOE, JANE." is a duplicate; "R. J." keeps its initial's period.
    assert_eq!(m.authors, vec!["Doe, Jane", "Roe, R. J.", "Lucasfilm, ltd"]);
    assert_eq!(m.isbn.as_deref(), Some("9780306406157"));
    assert_eq!(m.item_type, "dvd");
    // 264 with 2nd indicator 1 wins over 260 and over 264 _4 (copyright date).
    assert_eq!(m.publisher.as_deref(), Some("Fox"));
    assert_eq!(m.publication_year, Some(2014));
    // 008/35-37 wins over 041.
    assert_eq!(m.language.as_deref(), Some("eng"));
    // $v is not one of $x $y $z.
    assert_eq!(m.subjects, vec!["Tatooine (Imaginary place) -- Mos Eisley"]);
    assert_eq!(m.description.as_deref(), Some("A long time ago."));
    assert_eq!(m.control_number.as_deref(), Some("123"));
    // 952 present: 852 is not used.
    assert_eq!(
        m.holdings,
        vec![
            Holding {
                barcode: Some("31234000001".into()),
                call_number: Some("DVD STA".into()),
                branch_code: Some("MAIN".into())
            },
            Holding {
                barcode: Some("31234000002".into()),
                call_number: None,
                branch_code: Some("EAST".into())
            },
        ]
    );
}

#[test]
fn fallbacks_260_008_041_and_852() {
    let mut r = synthetic();
    r.fields
        .retain(|f| !matches!(f.tag().as_str(), "264" | "952"));
    // No usable 008 language or date: 041 and 260.
    r.fields[1] = Field::control(tag("008"), "150101suuuu    xxu---        v   v|||d");
    let m = map(&r);
    assert_eq!(m.publisher.as_deref(), Some("Old Press"));
    assert_eq!(m.publication_year, Some(1977));
    assert_eq!(m.language.as_deref(), Some("fre"));
    assert_eq!(
        m.holdings,
        vec![Holding {
            barcode: Some("B852".into()),
            call_number: Some("791.43 S79".into()),
            branch_code: None
        }]
    );
    // No 260 $c either: 008/07-10.
    r.fields.retain(|f| f.tag().as_str() != "260");
    r.fields[1] = Field::control(tag("008"), "150101s1984    xxu---        v   vlengd");
    assert_eq!(map(&r).publication_year, Some(1984));
}

#[test]
fn long_texts_are_cut_at_a_word_with_a_note_and_lists_capped() {
    let mut r = synthetic();
    let long_b = format!("{}end", "word ".repeat(120)); // 603 characters
    if let Field::Data { subfields, .. } = &mut r.fields[6] {
        subfields[3].value = long_b.clone();
    }
    let limits = Limits {
        subtitle: 500,
        max_authors: 2,
        ..Limits::UNLIMITED
    };
    let mapped = map_record(&r, &limits).unwrap();
    let subtitle = mapped.record.subtitle.unwrap();
    assert!(subtitle.chars().count() <= 500);
    assert!(subtitle.ends_with("word"));
    assert_eq!(mapped.record.authors.len(), 2);
    assert_eq!(
        mapped.notes,
        vec![
            MappingNote::Truncated {
                field: "subtitle",
                original_chars: 603,
                limit: 500
            },
            MappingNote::EntriesDropped {
                field: "authors",
                kept: 2,
                dropped: 1
            },
        ]
    );
    assert_eq!(
        mapped.notes[0].to_string(),
        "subtitle cut to 500 characters (was 603); the stored record keeps it whole"
    );
    // The record itself is untouched.
    assert_eq!(r.field("245").unwrap().first('b'), Some(long_b.as_str()));
}

#[test]
fn no_valid_isbn_is_noted() {
    let mut r = synthetic();
    r.fields.remove(3);
    let mapped = map_record(&r, &Limits::UNLIMITED).unwrap();
    assert_eq!(mapped.record.isbn, None);
    assert_eq!(
        mapped.notes,
        vec![MappingNote::NoValidIsbn {
            first: "not-an-isbn".into()
        }]
    );
}

#[test]
fn no_title_is_an_error_and_marc8_non_sort_markers_are_dropped() {
    let mut r = synthetic();
    r.fields.retain(|f| f.tag().as_str() != "245");
    assert_eq!(
        map_record(&r, &Limits::UNLIMITED).unwrap_err(),
        MapError::MissingTitle
    );
    let mut r = synthetic();
    if let Field::Data { subfields, .. } = &mut r.fields[6] {
        subfields[0].value = "\u{98}The \u{9c}end.".into();
    }
    assert!(map(&r).title.starts_with("The end. Episode IV"));
}
