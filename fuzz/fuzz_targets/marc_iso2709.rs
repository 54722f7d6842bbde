//! Any bytes as ISO 2709: reading never panics and ends; every record read maps, and
//! writes out as ISO 2709 that reads back with the same fields.
#![no_main]

use carrel_marc::iso2709::write_record;
use carrel_marc::{Iso2709Reader, Limits, map_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut results = 0usize;
    for result in Iso2709Reader::new(data) {
        results += 1;
        assert!(results <= data.len() + 1, "more results than bytes");
        let Ok(record) = result else { continue };
        let _ = map_record(&record, &Limits::UNLIMITED);
        let mut out = Vec::new();
        if write_record(&record, &mut out).is_ok() {
            let back = Iso2709Reader::new(&out[..])
                .next()
                .expect("one record")
                .expect("a written record reads back");
            assert_eq!(back.fields, record.fields);
        }
    }
});
