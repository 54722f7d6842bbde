//! MARC 21 import and export: the mapping through the API, bad records, matching
//! and idempotence, the export round trip, import jobs (progress, report, limit,
//! restart) and their permissions.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use carrel_core::roles::Role;
use carrel_marc::{Field, Iso2709Reader, Record, Subfield, Tag};
use carrel_server::catalog::marc::import::Settings;
use carrel_server::catalog::marc::{Format, MatchMode};
use carrel_server::cli::catalog::{ExportFormat, export, import_files};
use carrel_store::ImportCounts;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error, backend_tests, backend_tests_with};

backend_tests!(
    import_maps_every_field_and_copy,
    marc8_diacritics_arrive_exactly,
    bad_records_are_reported_and_skipped_and_reruns_change_nothing,
    matching_updates_and_skips,
    export_round_trips_with_control_number_matching,
    an_api_import_runs_to_done_with_its_report,
    an_interrupted_job_is_resumed_or_failed_after_a_restart,
    imported_records_are_found_by_search_and_counted_by_facets,
    a_large_batch_keeps_every_value_and_copy,
    holdings_go_to_the_branch_their_952_a_names,
    exports_write_each_copys_current_branch_and_round_trip,
);
backend_tests_with!(vec![("CARREL_IMPORT_MAX_BYTES", "2048".into())] => uploads_over_the_import_limit_are_413);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../carrel-marc/tests/fixtures")
        .join(name)
}

fn read_records(path: &Path) -> Vec<Record> {
    Iso2709Reader::new(std::fs::File::open(path).unwrap())
        .filter_map(Result::ok)
        .collect()
}

fn write_records(path: &Path, records: &[Record]) {
    let mut w = carrel_marc::Iso2709Writer::new(std::fs::File::create(path).unwrap());
    for r in records {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
}

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn holding(barcode: &str, call_number: &str, branch: &str) -> Field {
    Field::data(
        tag("952"),
        ' ',
        ' ',
        vec![
            Subfield::new('a', branch),
            Subfield::new('o', call_number),
            Subfield::new('p', barcode),
        ],
    )
}

async fn import(
    app: &TestApp,
    files: &[PathBuf],
    mode: MatchMode,
    report: Option<&Path>,
) -> ImportCounts {
    import_files(
        &app.state.store,
        &app.clock,
        files,
        &Settings::new(Format::Auto, mode),
        report,
    )
    .await
    .expect("import runs")
}

fn counts(c: &ImportCounts) -> [i64; 4] {
    [c.created, c.updated, c.skipped, c.failed]
}

async fn item_by_isbn(app: &TestApp, isbn: &str) -> Value {
    let page: Value = app
        .get(&format!("/api/v1/items?isbn={isbn}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    page["data"][0].clone()
}

async fn all_items(app: &TestApp) -> Vec<Value> {
    let page: Value = app
        .get("/api/v1/items?limit=100")
        .await
        .json()
        .await
        .unwrap();
    page["data"].as_array().unwrap().clone()
}

/// The first record of test.dat with two 952 copies (plus one without a
/// barcode) and a 600-character 245 $b.
fn activeperl() -> Record {
    let mut record = read_records(&fixture("test.dat")).remove(0);
    let long = "word ".repeat(120);
    for field in &mut record.fields {
        if let Field::Data { tag, subfields, .. } = field
            && tag.as_str() == "245"
        {
            subfields.insert(1, Subfield::new('b', long.trim_end()));
        }
    }
    record
        .fields
        .push(holding("AP-0002", "QA76.73.P22 M33 2000 c.2", "MAIN"));
    record
        .fields
        .push(holding("AP-0001", "QA76.73.P22 M33 2000", "MAIN"));
    record.fields.push(Field::data(
        tag("952"),
        ' ',
        ' ',
        vec![Subfield::new('o', "no barcode")],
    ));
    record
}

async fn import_maps_every_field_and_copy(app: TestApp) {
    let file = app.db.dir().join("activeperl.mrc");
    write_records(&file, &[activeperl()]);
    let report = app.db.dir().join("report.jsonl");
    let c = import(&app, &[file], MatchMode::Isbn, Some(&report)).await;
    assert_eq!(counts(&c), [1, 0, 0, 0]);

    let item = item_by_isbn(&app, "0471383147").await;
    assert_eq!(item["title"], "ActivePerl with ASP and ADO");
    let subtitle = item["subtitle"].as_str().unwrap();
    assert!(
        subtitle.chars().count() <= 500 && subtitle.starts_with("word word"),
        "{subtitle}"
    );
    assert!(
        subtitle.ends_with("word"),
        "cut at a word boundary: {subtitle:?}"
    );
    assert_eq!(item["authors"], serde_json::json!(["Martinsson, Tobias"]));
    assert_eq!(item["isbn"], "9780471383147");
    assert_eq!(item["item_type"], "book");
    assert_eq!(item["publisher"], "John Wiley & Sons");
    assert_eq!(item["publication_year"], 2000);
    assert_eq!(item["language"], "eng");
    assert_eq!(
        item["subjects"],
        serde_json::json!([
            "Perl (Computer program language)",
            "Active server pages",
            "ActiveX"
        ])
    );
    assert_eq!(item["description"], Value::Null);
    assert_eq!(item["copies_total"], 2);

    let id = item["id"].as_str().unwrap();
    let copies: Value = app
        .get(&format!("/api/v1/items/{id}/copies"))
        .await
        .json()
        .await
        .unwrap();
    let copies: Vec<(String, String, String)> = copies["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["barcode"].as_str().unwrap().to_owned(),
                c["call_number"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        copies,
        [
            (
                "AP-0001".into(),
                "QA76.73.P22 M33 2000".into(),
                "available".into()
            ),
            (
                "AP-0002".into(),
                "QA76.73.P22 M33 2000 c.2".into(),
                "available".into()
            ),
        ]
    );

    // The item history has the creation and each copy, like the JSON API writes.
    let librarian = app.create_user("cataloguer", Role::Librarian).await;
    let token = app.access_token(&librarian.username).await;
    let events: Value = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/items/{id}/events"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "copy_added", "copy_added"]);

    // The report notes the cut and the holding without a barcode, with 001.
    let lines: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["index"] == 1 && l["control_number"] == "fol05731351")
    );
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .contains("subtitle cut to 500"),
        "{lines:?}"
    );
    assert!(
        lines[1]["reason"]
            .as_str()
            .unwrap()
            .contains("without a barcode"),
        "{lines:?}"
    );

    // The stored record keeps the whole subtitle.
    let xml = app
        .get(&format!("/api/v1/items/{id}/marc"))
        .await
        .text()
        .await
        .unwrap();
    assert!(xml.contains(&"word ".repeat(119)), "whole 245 $b exported");
}

async fn marc8_diacritics_arrive_exactly(app: TestApp) {
    let c = import(&app, &[fixture("regression45.dat")], MatchMode::Isbn, None).await;
    assert_eq!(counts(&c), [12, 0, 0, 0]);
    let page: Value = app
        .get("/api/v1/items?q=Pokrov&limit=100")
        .await
        .json()
        .await
        .unwrap();
    let item = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"].as_str().unwrap().starts_with("Pokrov"))
        .expect("the first record")
        .clone();
    // MARC-8 combining marks (before their letter) arrive as precomposed UTF-8.
    assert_eq!(
        item["title"],
        "Pokrov, podarenny\u{12d} Dimitr\u{12b}em Ivanovichem Godunovym. [Ipat\u{2b9}evsk\u{12b}\u{12d} monastyr\u{2b9}, Kostroma]"
    );
    assert_eq!(
        item["authors"],
        serde_json::json!(["Prokudin-Gorski\u{12d}, Serge\u{12d} Mikha\u{12d}lovich"])
    );
    assert_eq!(item["publication_year"], 1910);
    assert_eq!(item["language"], "rus");
    assert_eq!(item["item_type"], "other");
    assert!(
        item["description"]
            .as_str()
            .unwrap()
            .contains("(1863\u{2013}1944)"),
        "{item}"
    );
}

fn carrel(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carrel"))
        .args(args)
        .current_dir(app.db.dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CARREL_ENV", "test")
        .env("CARREL_DATABASE_URL", app.db.url())
        .env("CARREL_DATA_DIR", app.db.dir().join("data"))
        .env("CARREL_LOG_FORMAT", "json")
        .output()
        .expect("run carrel")
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .last()
        .unwrap_or("")
        .to_owned()
}

async fn bad_records_are_reported_and_skipped_and_reruns_change_nothing(app: TestApp) {
    let file = fixture("bad_records.mrc");
    let report = app.db.dir().join("errors.jsonl");
    let output = carrel(
        &app,
        &[
            "catalog",
            "import",
            file.to_str().unwrap(),
            "--errors",
            report.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let summary = last_line(&output.stdout);
    // The second good record is the same as the first (no ISBN, no 001): found by its bytes.
    assert!(
        summary.starts_with("imported 1, updated 0, skipped 1, failed "),
        "{summary}"
    );
    let failed: usize = summary.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(failed >= 5, "{summary}");
    let lines: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), failed, "{lines:?}");
    let indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]) && !indexes.contains(&1),
        "{indexes:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l["reason"].as_str().unwrap().is_empty())
    );
    assert_eq!(all_items(&app).await.len(), 1);

    // Running it again changes nothing: the good records match themselves.
    let output = carrel(&app, &["catalog", "import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        last_line(&output.stdout),
        format!("imported 0, updated 0, skipped 2, failed {failed}")
    );
    assert_eq!(all_items(&app).await.len(), 1);

    // A clean file exits 0; --dry-run writes nothing.
    let output = carrel(
        &app,
        &[
            "catalog",
            "import",
            "--dry-run",
            fixture("test.dat").to_str().unwrap(),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        last_line(&output.stdout),
        "imported 10, updated 0, skipped 0, failed 0"
    );
    assert_eq!(all_items(&app).await.len(), 1);
}

async fn matching_updates_and_skips(app: TestApp) {
    let test_dat = fixture("test.dat");
    assert_eq!(
        counts(&import(&app, std::slice::from_ref(&test_dat), MatchMode::Isbn, None).await),
        [10, 0, 0, 0]
    );
    // Idempotent, with every mode that matches.
    assert_eq!(
        counts(&import(&app, std::slice::from_ref(&test_dat), MatchMode::Isbn, None).await),
        [0, 0, 10, 0]
    );
    assert_eq!(
        counts(
            &import(
                &app,
                std::slice::from_ref(&test_dat),
                MatchMode::ControlNumber,
                None
            )
            .await
        ),
        [0, 0, 10, 0]
    );
    // `none` creates, but never a second item with a taken ISBN.
    let without_isbn = all_items(&app)
        .await
        .iter()
        .filter(|i| i["isbn"].is_null())
        .count() as i64;
    assert!(without_isbn > 0);
    let c = import(&app, std::slice::from_ref(&test_dat), MatchMode::None, None).await;
    assert_eq!(counts(&c), [without_isbn, 0, 10 - without_isbn, 0]);

    // A changed record updates its item (title and a new copy) in place.
    let mut record = read_records(&test_dat).remove(0);
    for field in &mut record.fields {
        if let Field::Data { tag, subfields, .. } = field
            && tag.as_str() == "245"
        {
            subfields[0].value = "ActivePerl, second edition /".into();
        }
    }
    record.fields.push(holding("AP-9", "QA76", "MAIN"));
    let file = app.db.dir().join("changed.mrc");
    write_records(&file, &[record]);
    assert_eq!(
        counts(&import(&app, std::slice::from_ref(&file), MatchMode::Isbn, None).await),
        [0, 1, 0, 0]
    );
    let item = item_by_isbn(&app, "0471383147").await;
    assert_eq!(item["title"], "ActivePerl, second edition");
    assert_eq!(item["copies_total"], 1);
    assert_eq!(
        counts(&import(&app, &[file], MatchMode::Isbn, None).await),
        [0, 0, 1, 0]
    );
}

async fn export_round_trips_with_control_number_matching(app: TestApp) {
    let librarian = app.create_user("roundtrip", Role::Librarian).await;
    let token = app.access_token(&librarian.username).await;
    let file = app.db.dir().join("activeperl.mrc");
    write_records(&file, &[activeperl()]);
    import(
        &app,
        &[file, fixture("test.dat"), fixture("regression45.dat")],
        MatchMode::Isbn,
        None,
    )
    .await;
    // An item made through the JSON API, with a copy, and an edited imported item.
    let created: Value = app
        .authed(reqwest::Method::POST, "/api/v1/items", &token)
        .json(&serde_json::json!({"title": "Made by hand", "authors": ["Doe, Jane"], "isbn": "978-0-306-40615-7", "publication_year": 1999, "language": "eng", "subjects": ["Testing"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hand_id = created["id"].as_str().unwrap().to_owned();
    let response = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/items/{hand_id}/copies"),
            &token,
        )
        .json(&serde_json::json!({"barcode": "HAND-1", "call_number": "X 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let perl = item_by_isbn(&app, "1565926994").await;
    let response = app
        .authed(
            reqwest::Method::PATCH,
            &format!("/api/v1/items/{}", perl["id"].as_str().unwrap()),
            &token,
        )
        .json(&serde_json::json!({"description": "Edited in Carrel", "publication_year": 2001}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // One item through the API, both formats.
    let xml = app
        .client
        .get(app.url(&format!("/api/v1/items/{hand_id}/marc")))
        .send()
        .await
        .unwrap();
    assert_eq!(xml.headers()["content-type"], "application/marcxml+xml");
    let xml = xml.text().await.unwrap();
    assert!(
        xml.contains(&format!(
            "<controlfield tag=\"001\">{hand_id}</controlfield>"
        )),
        "{xml}"
    );
    assert!(
        xml.contains("HAND-1") && xml.contains("Made by hand"),
        "{xml}"
    );
    let iso = app
        .client
        .get(app.url(&format!("/api/v1/items/{hand_id}/marc")))
        .header("accept", "application/marc")
        .send()
        .await
        .unwrap();
    assert_eq!(iso.headers()["content-type"], "application/marc");
    let bytes = iso.bytes().await.unwrap();
    let parsed: Vec<Record> = Iso2709Reader::new(&bytes[..])
        .filter_map(Result::ok)
        .collect();
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].control_value("001"), Some(hand_id.as_str()));
    assert_eq!(
        app.get("/api/v1/items/00000000-0000-0000-0000-000000000000/marc")
            .await
            .status(),
        404
    );

    let before = all_items(&app).await;
    for format in [ExportFormat::Marcxml, ExportFormat::Marc] {
        let out = app.db.dir().join("export.out");
        assert_eq!(
            export(&app.state.store, format, Some(&out)).await.unwrap(),
            0
        );
        let c = import(&app, &[out], MatchMode::ControlNumber, None).await;
        assert_eq!(counts(&c), [0, 0, before.len() as i64, 0], "{format:?}");
    }
    let after = all_items(&app).await;
    let strip = |items: &[Value]| -> Vec<Value> {
        items
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.as_object_mut().unwrap().remove("updated_at");
                i
            })
            .collect()
    };
    assert_eq!(strip(&before), strip(&after));
    assert_eq!(
        item_by_isbn(&app, "1565926994").await["description"],
        "Edited in Carrel"
    );
}

async fn wait_until_finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..300 {
        let job: Value = app
            .authed(
                reqwest::Method::GET,
                &format!("/api/v1/imports/{id}"),
                token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["status"] == "done" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("import {id} did not finish");
}

fn upload(bytes: Vec<u8>, name: &str, mode: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("match", mode.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
}

async fn an_api_import_runs_to_done_with_its_report(app: TestApp) {
    let librarian = app.create_user("importer", Role::Librarian).await;
    let token = app.access_token(&librarian.username).await;
    let patron = app.create_user("reader", Role::Patron).await;
    let patron_token = app.access_token(&patron.username).await;
    let bytes = std::fs::read(fixture("bad_records.mrc")).unwrap();

    let refused = app
        .authed(reqwest::Method::POST, "/api/v1/imports", &patron_token)
        .multipart(upload(bytes.clone(), "bad_records.mrc", "isbn"))
        .send()
        .await
        .unwrap();
    assert_error(refused, 403, "FORBIDDEN").await;
    let anonymous = app
        .client
        .post(app.url("/api/v1/imports"))
        .multipart(upload(bytes.clone(), "bad_records.mrc", "isbn"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad_mode = app
        .authed(reqwest::Method::POST, "/api/v1/imports", &token)
        .multipart(upload(bytes.clone(), "bad_records.mrc", "title"))
        .send()
        .await
        .unwrap();
    assert_error(bad_mode, 422, "VALIDATION_ERROR").await;

    let response = app
        .authed(reqwest::Method::POST, "/api/v1/imports", &token)
        .multipart(upload(bytes, "bad_records.mrc", "isbn"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    for key in [
        "id",
        "status",
        "total",
        "processed",
        "created",
        "updated",
        "failed",
    ] {
        assert!(job.get(key).is_some(), "{key} in {job}");
    }
    let id = job["id"].as_str().unwrap().to_owned();
    let done = wait_until_finished(&app, &token, &id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["created"], 1);
    assert_eq!(done["skipped"], 1);
    assert_eq!(done["match"], "isbn");
    assert_eq!(done["file_name"], "bad_records.mrc");
    let failed = done["failed"].as_i64().unwrap();
    assert!(failed >= 5);
    assert_eq!(done["processed"], done["total"]);
    assert_eq!(done["processed"].as_i64().unwrap(), 2 + failed);
    assert_eq!(all_items(&app).await.len(), 1);

    // The report, paginated.
    let first: Value = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/imports/{id}/errors?limit=2"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let mut entries = first["data"].as_array().unwrap().clone();
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page: Value = app
            .authed(
                reqwest::Method::GET,
                &format!("/api/v1/imports/{id}/errors?limit=2&cursor={c}"),
                &token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        entries.extend(page["data"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(entries.len() as i64, failed);
    assert!(
        entries
            .iter()
            .all(|e| e["index"].as_i64().unwrap() > 1 && e["reason"].is_string())
    );
    let patron_view = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/imports/{id}"),
            &patron_token,
        )
        .send()
        .await
        .unwrap();
    assert_error(patron_view, 403, "FORBIDDEN").await;

    // Audited, and the uploaded file is gone once the job is done.
    let started = app.audit_events("catalog.import_started").await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].actor_id, Some(librarian.id));
    let finished = app.audit_events("catalog.import_finished").await;
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].details.0["created"], 1);
    let uploads = std::fs::read_dir(app.state.config.data_dir.join("imports"))
        .unwrap()
        .count();
    assert_eq!(uploads, 0);
}

async fn uploads_over_the_import_limit_are_413(app: TestApp) {
    let librarian = app.create_user("bigfile", Role::Librarian).await;
    let token = app.access_token(&librarian.username).await;
    let bytes = std::fs::read(fixture("test.dat")).unwrap();
    assert!(bytes.len() > 2048);
    let response = app
        .authed(reqwest::Method::POST, "/api/v1/imports", &token)
        .multipart(upload(bytes, "test.dat", "isbn"))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "PAYLOAD_TOO_LARGE").await;
    // Streamed without a declared length: cut off while reading, nothing kept.
    let stream = futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024])));
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(stream)).file_name("big.mrc");
    let response = app
        .authed(reqwest::Method::POST, "/api/v1/imports", &token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "PAYLOAD_TOO_LARGE").await;
    let dir = app.state.config.data_dir.join("imports");
    assert_eq!(std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0), 0);
    let small = std::fs::read(fixture("one.dat")).unwrap();
    assert!(small.len() <= 2048);
    let response = app
        .authed(reqwest::Method::POST, "/api/v1/imports", &token)
        .multipart(upload(small, "one.dat", "isbn"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(wait_until_finished(&app, &token, &id).await["created"], 1);
}

async fn an_interrupted_job_is_resumed_or_failed_after_a_restart(app: TestApp) {
    let librarian = app.create_user("restart", Role::Librarian).await;
    let token = app.access_token(&librarian.username).await;
    let store = &app.state.store;
    let dir = app.state.config.data_dir.join("imports");
    std::fs::create_dir_all(&dir).unwrap();
    let dead_instance = uuid::Uuid::new_v4();

    // A job that committed its first 4 records (of test.dat) before its
    // instance died: the items exist, `processed` says 4.
    let first_four = app.db.dir().join("first4.mrc");
    write_records(&first_four, &read_records(&fixture("test.dat"))[..4]);
    import(&app, &[first_four], MatchMode::Isbn, None).await;
    let resumable = uuid::Uuid::now_v7();
    let path = dir.join("resumable.upload");
    std::fs::copy(fixture("test.dat"), &path).unwrap();
    let new = |id, path: &Path| carrel_store::NewImport {
        id,
        format: "auto".into(),
        match_mode: "isbn".into(),
        file_name: Some("test.dat".into()),
        file_path: path.display().to_string(),
        file_bytes: 1,
        created_by: Some(librarian.id),
    };
    store
        .create_import(&new(resumable, &path), app.clock.now())
        .await
        .unwrap();
    store
        .claim_import(
            resumable,
            dead_instance,
            app.clock.now(),
            time::Duration::minutes(2),
        )
        .await
        .unwrap()
        .expect("claimed by the instance that dies");
    store
        .write_import_batch(&carrel_store::ImportBatch {
            writes: &[],
            issues: &[],
            progress: Some(carrel_store::ImportProgress {
                import_id: resumable,
                holder: dead_instance,
                counts: ImportCounts {
                    processed: 4,
                    created: 4,
                    ..Default::default()
                },
                lease_until: app.clock.now() + time::Duration::minutes(2),
            }),
            import_id: Some(resumable),
            actor: None,
            now: app.clock.now(),
        })
        .await
        .unwrap();
    // A queued job whose file was lost with the old instance's disk.
    let orphan = uuid::Uuid::now_v7();
    store
        .create_import(&new(orphan, &dir.join("gone.upload")), app.clock.now())
        .await
        .unwrap();

    // While the dead instance's lease is live, nobody else runs its job.
    assert_eq!(
        carrel_server::catalog::marc::jobs::resume_orphans(&app.state)
            .await
            .unwrap(),
        1,
        "only the queued job is free"
    );
    let job: Value = app
        .authed(
            reqwest::Method::GET,
            &format!("/api/v1/imports/{resumable}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "running");
    assert_eq!(job["processed"], 4);

    // After the lease runs out, start-up picks it up and carries on after record 4.
    app.clock.advance(time::Duration::minutes(3));
    carrel_server::catalog::marc::jobs::resume_orphans(&app.state)
        .await
        .unwrap();
    let job = wait_until_finished(&app, &token, &resumable.to_string()).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["processed"], 10);
    assert_eq!(job["total"], 10);
    assert_eq!(
        job["created"], 10,
        "4 before the restart, 6 after: none done twice"
    );
    assert_eq!(job["skipped"], 0);
    assert_eq!(all_items(&app).await.len(), 10);

    let failed = wait_until_finished(&app, &token, &orphan.to_string()).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("upload it again"),
        "{failed}"
    );
    assert!(failed["finished_at"].is_string());
}

async fn search_page(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/items{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn page_titles(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

/// The import path keeps the search index (SQLite FTS5, PostgreSQL's keys and
/// completions) in step with the items it writes.
async fn imported_records_are_found_by_search_and_counted_by_facets(app: TestApp) {
    let c = import(&app, &[fixture("test.dat")], MatchMode::Isbn, None).await;
    assert_eq!(counts(&c), [10, 0, 0, 0]);
    // All ten have the subject "Perl (Computer program language)"; three hold
    // both words in the title too, and ActivePerl has neither word there.
    let page = search_page(&app, "?q=programming%20perl&limit=100").await;
    let found = page_titles(&page);
    assert_eq!(found.len(), 10, "{found:?}");
    let mut top: Vec<String> = found[..3].to_vec();
    top.sort();
    assert_eq!(
        top,
        [
            "CGI programming with Perl",
            "Programming Perl",
            "Programming the Perl DBI"
        ]
    );
    assert_eq!(found[9], "ActivePerl with ASP and ADO");
    assert_eq!(
        page_titles(&search_page(&app, "?q=perl%20administration").await),
        ["Perl for system administration"]
    );
    // Completion of the last word typed finds imported words.
    assert_eq!(
        page_titles(&search_page(&app, "?q=activep&prefix=true").await),
        ["ActivePerl with ASP and ADO"]
    );
    assert_eq!(
        search_page(&app, "?q=perl%20progr&prefix=true&limit=100").await["data"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let facets = &search_page(&app, "?q=perl&facets=true").await["facets"];
    assert_eq!(facets["total"], 10);
    assert_eq!(
        facets["item_type"],
        serde_json::json!([{"value": "book", "count": 10}])
    );
    assert_eq!(
        facets["subject"][0],
        serde_json::json!({"value": "Perl (Computer program language)", "count": 10})
    );
    // A re-import that updates the records keeps them findable.
    let again = import(&app, &[fixture("test.dat")], MatchMode::Isbn, None).await;
    assert_eq!(again.created, 0);
    assert_eq!(
        search_page(&app, "?q=perl&limit=100").await["data"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
}

/// Enough records and holdings in one batch for PostgreSQL's streamed (`COPY`)
/// inserts, with values holding the characters its text format escapes: every
/// field and copy arrives exactly, and a re-run changes nothing.
async fn a_large_batch_keeps_every_value_and_copy(app: TestApp) {
    let mut records = read_records(&fixture("test.dat"));
    assert_eq!(records.len(), 10);
    for (n, record) in records.iter_mut().enumerate() {
        for field in &mut record.fields {
            if let Field::Data { tag, subfields, .. } = field
                && tag.as_str() == "245"
            {
                subfields.insert(1, Subfield::new('b', format!("back\\slash {n}")));
            }
        }
        record.fields.push(holding(
            &format!("BIG-{n}-A"),
            &format!("QA {n}\\1"),
            "MAIN",
        ));
        record.fields.push(holding(
            &format!("BIG-{n}-B"),
            &format!("QA {n} c.2"),
            "MAIN",
        ));
    }
    let file = app.db.dir().join("large.mrc");
    write_records(&file, &records);
    let c = import(&app, std::slice::from_ref(&file), MatchMode::Isbn, None).await;
    assert_eq!(counts(&c), [10, 0, 0, 0]);
    let items = all_items(&app).await;
    assert_eq!(items.len(), 10);
    let librarian = app.create_user("bigbatch", Role::Librarian).await;
    let token = app.access_token(&librarian.username).await;
    let mut barcodes = Vec::new();
    for item in &items {
        let subtitle = item["subtitle"].as_str().unwrap();
        assert!(subtitle.starts_with("back\\slash "), "{subtitle:?}");
        assert_eq!(item["copies_total"], 2);
        let id = item["id"].as_str().unwrap();
        let copies: Value = app
            .get(&format!("/api/v1/items/{id}/copies"))
            .await
            .json()
            .await
            .unwrap();
        for copy in copies["data"].as_array().unwrap() {
            let barcode = copy["barcode"].as_str().unwrap().to_owned();
            let n = barcode.split('-').nth(1).unwrap().to_owned();
            let expected = if barcode.ends_with('A') {
                format!("QA {n}\\1")
            } else {
                format!("QA {n} c.2")
            };
            assert_eq!(copy["call_number"], expected.as_str());
            assert_eq!(copy["status"], "available");
            barcodes.push(barcode);
        }
        let history: Value = app
            .authed(
                reqwest::Method::GET,
                &format!("/api/v1/items/{id}/events"),
                &token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kinds: Vec<&str> = history["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["created", "copy_added", "copy_added"], "{history}");
    }
    assert_eq!(barcodes.len(), 20);
    // The stored records came back byte for byte: a re-run skips every record.
    let c = import(&app, std::slice::from_ref(&file), MatchMode::Isbn, None).await;
    assert_eq!(counts(&c), [0, 0, 10, 0]);
}

/// Creates a branch as an admin; returns its id.
async fn create_branch(app: &TestApp, admin_token: &str, code: &str) -> String {
    let response = app
        .authed(reqwest::Method::POST, "/api/v1/branches", admin_token)
        .json(&serde_json::json!({"code": code, "name": format!("{code} branch")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let branch: Value = response.json().await.unwrap();
    branch["id"].as_str().unwrap().to_owned()
}

/// `(barcode, branch id)` of an item's copies, by barcode.
async fn copy_branches(app: &TestApp, item_id: &str) -> Vec<(String, String)> {
    let copies: Value = app
        .get(&format!("/api/v1/items/{item_id}/copies"))
        .await
        .json()
        .await
        .unwrap();
    copies["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["barcode"].as_str().unwrap().to_owned(),
                c["branch_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A record of test.dat without its holdings, with these 952s.
fn with_holdings(index: usize, holdings: Vec<Field>) -> Record {
    let mut record = read_records(&fixture("test.dat")).remove(index);
    record
        .fields
        .retain(|f| !matches!(f.tag().as_str(), "952" | "852"));
    record.fields.extend(holdings);
    record
}

fn holding_without_branch(barcode: &str) -> Field {
    Field::data(tag("952"), ' ', ' ', vec![Subfield::new('p', barcode)])
}

const MAIN: &str = "00000000-0000-7000-8000-000000000001";

async fn holdings_go_to_the_branch_their_952_a_names(app: TestApp) {
    let admin = app.create_user("branches-admin", Role::Admin).await;
    let admin_token = app.access_token(&admin.username).await;
    let east = create_branch(&app, &admin_token, "EAST").await;
    let file = app.db.dir().join("branches.mrc");
    write_records(
        &file,
        &[
            with_holdings(
                0,
                vec![
                    holding("BR-1", "A 1", "EAST"),
                    holding("BR-2", "A 2", "MAIN"),
                    holding_without_branch("BR-3"),
                ],
            ),
            // Codes are case-sensitive: `east` is not EAST. The whole record
            // fails, its EAST copy included (whole records, never half).
            with_holdings(
                1,
                vec![
                    holding("BR-4", "B 1", "east"),
                    holding("BR-5", "B 2", "EAST"),
                ],
            ),
        ],
    );
    let report = app.db.dir().join("report.jsonl");
    let c = import(
        &app,
        std::slice::from_ref(&file),
        MatchMode::Isbn,
        Some(&report),
    )
    .await;
    assert_eq!(counts(&c), [1, 0, 0, 1]);
    let first = item_by_isbn(&app, "0471383147").await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(
        copy_branches(&app, &first_id).await,
        [
            ("BR-1".to_owned(), east.clone()),
            ("BR-2".to_owned(), MAIN.to_owned()),
            ("BR-3".to_owned(), MAIN.to_owned()),
        ]
    );
    assert_eq!(
        all_items(&app).await.len(),
        1,
        "the failed record made nothing"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["index"], 2);
    let reason = lines[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("952 $a") && reason.contains("\"east\"") && reason.contains("BR-4"),
        "{reason}"
    );
    assert!(
        !reason.contains("BR-5"),
        "only the unknown code is named: {reason}"
    );

    // A dry run tells the same before anything is written.
    let mut settings = Settings::new(Format::Auto, MatchMode::Isbn);
    settings.dry_run = true;
    let dry = import_files(
        &app.state.store,
        &app.clock,
        std::slice::from_ref(&file),
        &settings,
        None,
    )
    .await
    .unwrap();
    assert_eq!(counts(&dry), [0, 0, 1, 1]);

    // Once the branch exists, a re-run brings in exactly the failed record.
    let lower = create_branch(&app, &admin_token, "east").await;
    let c = import(&app, &[file], MatchMode::Isbn, None).await;
    assert_eq!(counts(&c), [1, 0, 1, 0]);
    let items = all_items(&app).await;
    assert_eq!(items.len(), 2);
    let second = items.iter().find(|i| i["id"] != first["id"]).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        copy_branches(&app, &second).await,
        [("BR-4".to_owned(), lower), ("BR-5".to_owned(), east)]
    );
}

/// `(barcode, 952 $a)` of a record's holdings.
fn record_holdings(record: &Record) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = record
        .fields_tagged("952")
        .map(|f| {
            (
                f.first('p').unwrap_or_default().to_owned(),
                f.first('a').unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn exports_write_each_copys_current_branch_and_round_trip(app: TestApp) {
    let admin = app.create_user("export-admin", Role::Admin).await;
    let admin_token = app.access_token(&admin.username).await;
    create_branch(&app, &admin_token, "EAST").await;
    let west = create_branch(&app, &admin_token, "WEST").await;
    let file = app.db.dir().join("moved.mrc");
    write_records(
        &file,
        &[with_holdings(
            0,
            vec![
                holding("MV-1", "A 1", "EAST"),
                holding_without_branch("MV-2"),
            ],
        )],
    );
    let c = import(&app, std::slice::from_ref(&file), MatchMode::Isbn, None).await;
    assert_eq!(counts(&c), [1, 0, 0, 0]);
    let item = item_by_isbn(&app, "0471383147").await;
    let id = item["id"].as_str().unwrap().to_owned();

    // A librarian moves MV-1's home to WEST.
    let librarian = app.create_user("mover", Role::Librarian).await;
    let token = app.access_token(&librarian.username).await;
    let copies: Value = app
        .get(&format!("/api/v1/items/{id}/copies"))
        .await
        .json()
        .await
        .unwrap();
    let moved = copies["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["barcode"] == "MV-1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .authed(
            reqwest::Method::PATCH,
            &format!("/api/v1/copies/{moved}"),
            &token,
        )
        .json(&serde_json::json!({"branch_id": west}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The export names each copy's branch now, not the one the record had.
    let bytes = app
        .client
        .get(app.url(&format!("/api/v1/items/{id}/marc")))
        .header("accept", "application/marc")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let exported: Vec<Record> = Iso2709Reader::new(&bytes[..])
        .filter_map(Result::ok)
        .collect();
    let expected = vec![
        ("MV-1".to_owned(), "WEST".to_owned()),
        ("MV-2".to_owned(), "MAIN".to_owned()),
    ];
    assert_eq!(record_holdings(&exported[0]), expected);
    let before = copy_branches(&app, &id).await;
    assert_eq!(
        before,
        [
            ("MV-1".to_owned(), west.clone()),
            ("MV-2".to_owned(), MAIN.to_owned())
        ]
    );

    // The whole-catalog export says the same, and importing it again (or the
    // original file, which still says EAST) changes nothing: copies are only
    // ever added, never moved by an import.
    for format in [ExportFormat::Marc, ExportFormat::Marcxml] {
        let out = app.db.dir().join("export.out");
        assert_eq!(
            export(&app.state.store, format, Some(&out)).await.unwrap(),
            0
        );
        if matches!(format, ExportFormat::Marc) {
            assert_eq!(record_holdings(&read_records(&out)[0]), expected);
        }
        let c = import(&app, &[out], MatchMode::ControlNumber, None).await;
        assert_eq!(counts(&c), [0, 0, 1, 0], "{format:?}");
    }
    let c = import(&app, &[file], MatchMode::ControlNumber, None).await;
    assert_eq!(counts(&c), [0, 0, 1, 0]);
    assert_eq!(copy_branches(&app, &id).await, before);
}
