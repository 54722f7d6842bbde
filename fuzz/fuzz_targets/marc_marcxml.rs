//! Any bytes as MARCXML: reading never panics and ends; every record read maps, and
//! writes out as MARCXML that reads back as the same record.
#![no_main]

use carrel_marc::marcxml::to_marcxml_document;
use carrel_marc::{Limits, MarcXmlReader, map_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut results = 0usize;
    for result in MarcXmlReader::new(data) {
        results += 1;
        assert!(results <= data.len() + 1, "more results than bytes");
        let Ok(record) = result else { continue };
        let _ = map_record(&record, &Limits::UNLIMITED);
        if let Ok(xml) = to_marcxml_document(&record) {
            let back = MarcXmlReader::new(xml.as_bytes())
                .next()
                .expect("one record")
                .expect("a written record reads back");
            assert_eq!(back, record);
        }
    }
});
