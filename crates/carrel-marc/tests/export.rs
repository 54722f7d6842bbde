//! Export: Carrel's fields and copies written over the stored record; what
//! nobody changed stays as imported, and importing the export gives the same fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use carrel_marc::mapping::{CatalogRecord, Holding, Limits, map_record};
use carrel_marc::{Iso2709Reader, MarcXmlReader, Record, export_record};
use common::read_fixture;

fn all_fixture_records() -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for name in [
        "one.dat",
        "test.dat",
        "marc.dat",
        "marc8.dat",
        "diacritic.dat",
        "multi_isbn.dat",
        "regression45.dat",
    ] {
        out.extend(Iso2709Reader::new(&read_fixture(name)[..]).map(Result::unwrap));
    }
    out.extend(MarcXmlReader::new(&read_fixture("batch.xml")[..]).map(Result::unwrap));
    out
}

fn map(record: &Record, limits: &Limits) -> CatalogRecord {
    map_record(record, limits).unwrap().record
}

#[test]
fn an_unchanged_item_exports_its_stored_record_unchanged() {
    let limits = Limits {
        subtitle: 20,
        ..Limits::UNLIMITED
    };
    for record in all_fixture_records() {
        let current = map(&record, &limits);
        let exported = export_record(Some(&record), &current, &limits);
        if record.control_value("008").is_some() {
            assert_eq!(exported.leader, record.leader);
            // Only 952 may differ (the copies); none of these records has one.
            assert_eq!(
                exported.fields,
                record.fields,
                "{:?}",
                record.control_value("001")
            );
        }
        // Whatever happened, importing the export gives the same fields back.
        assert_eq!(
            map(&exported, &limits),
            current,
            "{:?}",
            record.control_value("001")
        );
    }
}

#[test]
fn edited_fields_and_copies_are_written_and_read_back() {
    let limits = Limits::UNLIMITED;
    for record in all_fixture_records() {
        let mut current = map(&record, &limits);
        current.title = format!("{} (revised)", current.title);
        current.subtitle = Some("a new subtitle".into());
        current.authors.push("Added, Author".into());
        if current.authors.len() > 2 {
            current.authors.remove(0);
        }
        current.isbn = Some("9780306406157".into());
        current.item_type = "audiobook".into();
        current.publisher = Some("New Publisher".into());
        current.publication_year = Some(2021);
        current.language = Some("fre".into());
        current.subjects = vec![
            "Cats -- Behavior".into(),
            current.subjects.first().cloned().unwrap_or("Dogs".into()),
        ];
        current.subjects.dedup();
        current.description = Some("Now described.".into());
        current.holdings = vec![
            Holding {
                barcode: Some("B1".into()),
                call_number: Some("823 ABC".into()),
                branch_code: Some("MAIN".into()),
            },
            Holding {
                barcode: Some("B2".into()),
                call_number: None,
                branch_code: None,
            },
        ];
        let exported = export_record(Some(&record), &current, &limits);
        let back = map(&exported, &limits);
        assert_eq!(back, current, "{:?}", record.control_value("001"));
        // Fields Carrel does not model are still there (e.g. 300, 504).
        for tag in ["300", "504", "082", "050"] {
            assert_eq!(
                exported.fields_tagged(tag).count(),
                record.fields_tagged(tag).count(),
                "{tag} in {:?}",
                record.control_value("001")
            );
        }
        // And it survives both writers.
        let mut iso = Vec::new();
        carrel_marc::iso2709::write_record(&exported, &mut iso).unwrap();
        let reread = Iso2709Reader::new(&iso[..]).next().unwrap().unwrap();
        assert_eq!(map(&reread, &limits), current);
        let xml = carrel_marc::marcxml::to_marcxml_document(&exported).unwrap();
        let reread = MarcXmlReader::new(xml.as_bytes()).next().unwrap().unwrap();
        assert_eq!(map(&reread, &limits), current);
    }
}

#[test]
fn cleared_fields_stay_cleared_on_reimport() {
    let limits = Limits::UNLIMITED;
    for record in all_fixture_records() {
        let mut current = map(&record, &limits);
        current.subtitle = None;
        current.isbn = None;
        current.publisher = None;
        current.publication_year = None;
        current.language = None;
        current.description = None;
        current.subjects.clear();
        current.authors.clear();
        let exported = export_record(Some(&record), &current, &limits);
        assert_eq!(
            map(&exported, &limits),
            current,
            "{:?}",
            record.control_value("001")
        );
    }
}

#[test]
fn an_item_without_a_stored_record_gets_a_new_one() {
    let current = CatalogRecord {
        title: "Le petit prince".into(),
        subtitle: Some("avec des aquarelles de l'auteur".into()),
        authors: vec!["Saint-Exupéry, Antoine de".into(), "Other, A. B.".into()],
        isbn: Some("9780306406157".into()),
        item_type: "book".into(),
        publisher: Some("Gallimard".into()),
        publication_year: Some(1946),
        language: Some("fre".into()),
        subjects: vec!["Princes -- Fiction".into()],
        description: Some("Un conte.".into()),
        control_number: Some("carrel-0001".into()),
        control_number_identifier: Some("Carrel".into()),
        holdings: vec![Holding {
            barcode: Some("B1".into()),
            call_number: None,
            branch_code: Some("MAIN".into()),
        }],
    };
    let exported = export_record(None, &current, &Limits::UNLIMITED);
    assert_eq!(map(&exported, &Limits::UNLIMITED), current);
    let tags: Vec<String> = exported
        .fields
        .iter()
        .map(|f| f.tag().to_string())
        .collect();
    let mut sorted = tags.clone();
    sorted.sort();
    assert_eq!(tags, sorted, "fields are in tag order");
    assert_eq!(
        exported
            .field("245")
            .unwrap()
            .subfields()
            .iter()
            .map(|s| s.value.as_str())
            .collect::<Vec<_>>(),
        vec!["Le petit prince :", "avec des aquarelles de l'auteur"]
    );
    assert_eq!(exported.leader.as_str()[5..10].to_owned(), "nam a");
}
