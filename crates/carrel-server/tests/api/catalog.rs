//! The catalog: CRUD and validation, copies, search, filters, sorts,
//! pagination, injection-shaped input, anonymous read / staff write.

use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, backend_tests, exec_sql};

backend_tests!(
    items_crud_validation_and_history,
    copies_and_counts,
    anonymous_read_staff_write,
    relevance_puts_title_matches_first,
    every_filter_and_sort,
    pagination_visits_every_item_exactly_once_while_items_are_added,
    injection_shaped_input_never_errors_or_leaks,
    single_term_relevance_ranks_every_field_group_combination,
    single_term_pages_cross_classes_exactly_once_while_items_are_added,
    multi_word_relevance_ranks_every_combination_best_first,
    multi_word_pages_are_exact_while_items_are_added,
    multi_word_relevance_follows_edits_of_the_searched_fields,
    facets_count_every_matching_item,
    prefix_completes_the_last_word_typed,
    copy_patch_checks_the_body_before_the_id,
);

async fn staff(app: &TestApp) -> String {
    app.create_user("cataloguer", Role::Librarian).await;
    app.access_token("cataloguer").await
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app
        .authed(Method::POST, "/api/v1/items", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{body}");
    response.json().await.unwrap()
}

async fn search(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/items{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn titles(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn items_crud_validation_and_history(app: TestApp) {
    let token = staff(&app).await;
    let item = create(&app, &token, json!({
        "title": "  Moby-Dick  ", "subtitle": "or, The Whale", "authors": ["Herman Melville"], "isbn": "0-306-40615-2",
        "item_type": "book", "publisher": "Harper & Brothers", "publication_year": 1851, "language": "EN",
        "subjects": ["Fiction", "Sea stories", "fiction"], "description": "A whaling voyage."
    })).await;
    assert_eq!(item["title"], "Moby-Dick");
    assert_eq!(item["isbn"], "9780306406157");
    assert_eq!(item["language"], "en");
    assert_eq!(item["subjects"], json!(["Fiction", "Sea stories"]));
    assert_eq!(item["copies_total"], 0);
    assert!(item["cover_url"].is_null());
    let id = item["id"].as_str().unwrap().to_owned();

    let fetched: Value = app
        .get(&format!("/api/v1/items/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, item);

    let bad = app.authed(Method::POST, "/api/v1/items", &token)
        .json(&json!({"title": "", "isbn": "978-0-306-40615-8", "item_type": "scroll", "publication_year": 99999}))
        .send().await.unwrap();
    let body = assert_error(bad, 422, "VALIDATION_ERROR").await;
    for field in ["title", "isbn", "item_type", "publication_year"] {
        assert!(
            body["details"]["fields"][field].is_string(),
            "{field}: {body}"
        );
    }
    // Same ISBN in another form is a duplicate.
    let dup = app
        .authed(Method::POST, "/api/v1/items", &token)
        .json(&json!({"title": "Copy", "isbn": "978-0306406157"}))
        .send()
        .await
        .unwrap();
    assert_error(dup, 409, "CONFLICT").await;
    let mass = app
        .authed(Method::POST, "/api/v1/items", &token)
        .json(&json!({"title": "X", "copies_total": 99}))
        .send()
        .await
        .unwrap();
    assert_error(mass, 422, "VALIDATION_ERROR").await;

    let patched: Value = app
        .authed(Method::PATCH, &format!("/api/v1/items/{id}"), &token)
        .json(&json!({"subtitle": null, "publication_year": 1852}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(patched["subtitle"].is_null());
    assert_eq!(patched["publication_year"], 1852);
    assert_eq!(patched["title"], "Moby-Dick");

    assert_eq!(
        app.authed(Method::DELETE, &format!("/api/v1/items/{id}"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_error(
        app.get(&format!("/api/v1/items/{id}")).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert!(
        titles(&search(&app, "?q=whale").await).is_empty(),
        "deleted items are not found"
    );
    assert_eq!(
        app.authed(Method::POST, &format!("/api/v1/items/{id}/restore"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(titles(&search(&app, "?q=whale").await), ["Moby-Dick"]);

    let events: Value = app
        .authed(Method::GET, &format!("/api/v1/items/{id}/events"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["created", "updated", "deleted", "restored"]);
    assert!(
        events["data"][1]["details"]["fields"]
            .to_string()
            .contains("publication_year")
    );
    assert_error(
        app.get(&format!("/api/v1/items/{}", uuid::Uuid::now_v7()))
            .await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get("/api/v1/items/not-a-uuid").await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}

async fn copies_and_counts(app: TestApp) {
    let token = staff(&app).await;
    let item = create(
        &app,
        &token,
        json!({"title": "Dracula", "authors": ["Bram Stoker"]}),
    )
    .await;
    let other = create(&app, &token, json!({"title": "Carmilla"})).await;
    let id = item["id"].as_str().unwrap();
    let add = |item: &str, barcode: &str| {
        app.authed(
            Method::POST,
            &format!("/api/v1/items/{item}/copies"),
            &token,
        )
        .json(&json!({"barcode": barcode, "location": "Stacks"}))
        .send()
    };
    let first: Value = add(id, "BC-1").await.unwrap().json().await.unwrap();
    assert_eq!(first["status"], "available");
    assert_eq!(add(id, "BC-2").await.unwrap().status(), 201);
    assert_error(
        add(other["id"].as_str().unwrap(), "BC-1").await.unwrap(),
        409,
        "CONFLICT",
    )
    .await;
    assert_error(add(id, "has space").await.unwrap(), 422, "VALIDATION_ERROR").await;
    assert_error(
        add(&uuid::Uuid::now_v7().to_string(), "BC-9")
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;

    let view: Value = app
        .get(&format!("/api/v1/items/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            view["copies_total"].as_i64(),
            view["copies_available"].as_i64()
        ),
        (Some(2), Some(2))
    );
    let copy_id = first["id"].as_str().unwrap();
    let patch = |body: Value| {
        app.authed(Method::PATCH, &format!("/api/v1/copies/{copy_id}"), &token)
            .json(&body)
            .send()
    };
    assert_eq!(
        patch(json!({"status": "damaged"})).await.unwrap().status(),
        200
    );
    assert_error(
        patch(json!({"status": "on_loan"})).await.unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let view: Value = app
        .get(&format!("/api/v1/items/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            view["copies_total"].as_i64(),
            view["copies_available"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let listed = search(&app, "?q=dracula").await;
    assert_eq!(listed["data"][0]["copies_available"], 1);
    assert_eq!(titles(&search(&app, "?available=true").await), ["Dracula"]);

    let copies: Value = app
        .get(&format!("/api/v1/items/{id}/copies"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(copies["data"].as_array().unwrap().len(), 2);

    // Circulation states lock the copy and the item.
    exec_sql(
        &app,
        "UPDATE copies SET status = 'on_loan' WHERE barcode = 'BC-2'",
    )
    .await;
    let on_loan = copies["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["barcode"] == "BC-2")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        app.authed(Method::DELETE, &format!("/api/v1/copies/{on_loan}"), &token)
            .send()
            .await
            .unwrap(),
        409,
        "CONFLICT",
    )
    .await;
    assert_error(
        app.authed(Method::DELETE, &format!("/api/v1/items/{id}"), &token)
            .send()
            .await
            .unwrap(),
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(
        app.authed(Method::DELETE, &format!("/api/v1/copies/{copy_id}"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let copies: Value = app
        .get(&format!("/api/v1/items/{id}/copies"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(copies["data"].as_array().unwrap().len(), 1);
    let events: Value = app
        .authed(Method::GET, &format!("/api/v1/items/{id}/events"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "created",
            "copy_added",
            "copy_added",
            "copy_updated",
            "copy_deleted"
        ]
    );
}

async fn anonymous_read_staff_write(app: TestApp) {
    let token = staff(&app).await;
    app.create_user("reader", Role::Patron).await;
    let patron = app.access_token("reader").await;
    let item = create(&app, &token, json!({"title": "Emma"})).await;
    let id = item["id"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/items").await.status(), 200);
    assert_eq!(
        app.get(&format!("/api/v1/items/{id}/copies"))
            .await
            .status(),
        200
    );
    let anonymous = app
        .client
        .post(app.url("/api/v1/items"))
        .json(&json!({"title": "X"}))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "UNAUTHORIZED").await;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/items".to_owned(),
            json!({"title": "X"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/items/{id}"),
            json!({"title": "X"}),
        ),
        (Method::DELETE, format!("/api/v1/items/{id}"), json!(null)),
        (
            Method::POST,
            format!("/api/v1/items/{id}/copies"),
            json!({"barcode": "P-1"}),
        ),
        (
            Method::GET,
            format!("/api/v1/items/{id}/events"),
            json!(null),
        ),
    ] {
        let mut request = app.authed(method, &path, &patron);
        if !body.is_null() {
            request = request.json(&body);
        }
        assert_error(request.send().await.unwrap(), 403, "FORBIDDEN").await;
    }
}

async fn relevance_puts_title_matches_first(app: TestApp) {
    let token = staff(&app).await;
    create(
        &app,
        &token,
        json!({"title": "Sea Journals", "description": "Notes on whaling and the northern seas."}),
    )
    .await;
    create(
        &app,
        &token,
        json!({"title": "Whaling in the Arctic", "description": "A history."}),
    )
    .await;
    create(
        &app,
        &token,
        json!({"title": "Unrelated", "description": "Gardening."}),
    )
    .await;
    create(
        &app,
        &token,
        json!({"title": "The Whaling Captain's Whaling Log", "subjects": ["whaling"]}),
    )
    .await;
    let page = search(&app, "?q=Whaling").await;
    let found = titles(&page);
    assert_eq!(found.len(), 3);
    assert_eq!(
        found.last().unwrap(),
        "Sea Journals",
        "a description match ranks below title matches: {found:?}"
    );
    assert_eq!(
        found[0], "The Whaling Captain's Whaling Log",
        "title and subject beat title alone: {found:?}"
    );
    // Both engines stem: "journal" finds "Journals".
    assert_eq!(titles(&search(&app, "?q=journal").await), ["Sea Journals"]);
    assert!(
        titles(&search(&app, "?q=the").await).is_empty(),
        "stop words alone match nothing"
    );
    // PostgreSQL's whole stop list is dropped on both backends: no item says
    // "about", yet the search is the one for "whaling" alone (SQLite's index keeps
    // every word, so it would otherwise find nothing).
    assert_eq!(titles(&search(&app, "?q=About%20whaling").await), found);
    assert!(titles(&search(&app, "?q=what%20about").await).is_empty());
}

async fn every_filter_and_sort(app: TestApp) {
    let token = staff(&app).await;
    let books = [
        json!({"title": "Alpha", "authors": ["Jane Austen"], "item_type": "book", "publication_year": 1811, "subjects": ["Romance"], "isbn": "978-0-306-40615-7"}),
        json!({"title": "Bravo", "authors": ["Charles Dickens", "Wilkie Collins"], "item_type": "ebook", "publication_year": 1859, "subjects": ["Sea stories"]}),
        json!({"title": "charlie", "authors": ["Mary Shelley"], "item_type": "audiobook", "publication_year": 1818, "subjects": ["Sea"]}),
        json!({"title": "Delta", "item_type": "dvd", "subjects": ["Film"]}),
    ];
    let mut ids = Vec::new();
    for book in books {
        ids.push(
            create(&app, &token, book).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.authed(
        Method::POST,
        &format!("/api/v1/items/{}/copies", ids[2]),
        &token,
    )
    .json(&json!({"barcode": "AV-1"}))
    .send()
    .await
    .unwrap();

    assert_eq!(titles(&search(&app, "?author=DICKENS").await), ["Bravo"]);
    assert_eq!(titles(&search(&app, "?author=coll").await), ["Bravo"]);
    assert_eq!(
        titles(&search(&app, "?item_type=audiobook").await),
        ["charlie"]
    );
    assert_eq!(
        titles(&search(&app, "?subject=sea").await),
        ["charlie"],
        "subject is equality, not substring"
    );
    assert_eq!(
        titles(&search(&app, "?subject=SEA%20STORIES").await),
        ["Bravo"]
    );
    assert_eq!(
        titles(&search(&app, "?isbn=0-306-40615-2").await),
        ["Alpha"]
    );
    assert_eq!(
        titles(&search(&app, "?year_from=1811&year_to=1818").await),
        ["Alpha", "charlie"],
        "inclusive bounds"
    );
    assert_eq!(titles(&search(&app, "?year_from=1850").await), ["Bravo"]);
    assert_eq!(titles(&search(&app, "?available=true").await), ["charlie"]);
    assert_eq!(titles(&search(&app, "?available=false").await).len(), 4);

    assert_eq!(
        titles(&search(&app, "?sort=title").await),
        ["Alpha", "Bravo", "charlie", "Delta"],
        "case-insensitive"
    );
    assert_eq!(
        titles(&search(&app, "?sort=-title").await),
        ["Delta", "charlie", "Bravo", "Alpha"]
    );
    assert_eq!(
        titles(&search(&app, "?sort=publication_year").await),
        ["Delta", "Alpha", "charlie", "Bravo"],
        "unknown year first"
    );
    assert_eq!(
        titles(&search(&app, "?sort=-publication_year").await),
        ["Bravo", "charlie", "Alpha", "Delta"]
    );
    assert_eq!(
        titles(&search(&app, "?sort=created_at").await),
        ["Alpha", "Bravo", "charlie", "Delta"]
    );
    assert_eq!(
        titles(&search(&app, "?sort=-created_at").await),
        ["Delta", "charlie", "Bravo", "Alpha"]
    );
    assert_eq!(
        titles(&search(&app, "?q=bravo&sort=-title").await),
        ["Bravo"]
    );

    for bad in [
        "?sort=price",
        "?sort=relevance",
        "?item_type=scroll",
        "?year_from=x",
        "?available=maybe",
        "?isbn=123",
        "?year_from=1900&year_to=1800",
        "?limit=0",
        "?page=2",
        "?cursor=xyz",
    ] {
        assert_error(
            app.get(&format!("/api/v1/items{bad}")).await,
            400,
            "VALIDATION_ERROR",
        )
        .await;
    }
}

async fn pagination_visits_every_item_exactly_once_while_items_are_added(app: TestApp) {
    let token = staff(&app).await;
    let mut expected = Vec::new();
    for i in 0..23 {
        let title = format!("Volume {:02} of the archive", (i * 7) % 23);
        expected.push(
            create(
                &app,
                &token,
                json!({"title": title, "description": "archive"}),
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    expected.sort();
    for sort in [
        "title",
        "-title",
        "created_at",
        "-publication_year",
        "relevance",
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut round = 0;
        loop {
            let mut query = format!("?q=archive&sort={sort}&limit=4");
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={c}"));
            }
            let page = search(&app, &query).await;
            seen.extend(
                page["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_owned()),
            );
            // New matching items arrive between pages, sorting both before and after the cursor.
            create(&app, &token, json!({"title": format!("{} archive addition {sort} {round}", if round % 2 == 0 { "Aaa" } else { "Zzz" }), "description": "archive"})).await;
            round += 1;
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{sort}: an item was returned twice"
        );
        for id in &expected {
            assert!(seen.contains(id), "{sort}: item {id} was skipped");
        }
        expected = {
            // Items added in this walk are part of the next walk's expectations.
            let all = search(&app, "?q=archive&limit=100").await;
            let mut ids: Vec<String> = all["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        };
    }
    let other_sort_cursor = search(&app, "?q=archive&sort=title&limit=2").await["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        app.get(&format!(
            "/api/v1/items?q=archive&sort=-title&cursor={other_sort_cursor}"
        ))
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

async fn injection_shaped_input_never_errors_or_leaks(app: TestApp) {
    let token = staff(&app).await;
    create(&app, &token, json!({"title": "Secret Garden", "authors": ["Frances Hodgson Burnett"], "subjects": ["children"]})).await;
    create(&app, &token, json!({"title": "Public Park"})).await;
    let nasty = [
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "%",
        "_",
        "\\",
        "%' --",
        "*",
        "NEAR(secret garden)",
        "secret OR park",
        "title:secret",
        "'; DROP TABLE items; --",
        ")",
        "(",
        "^",
        "\u{0}",
        "ü' UNION SELECT * FROM users --",
        "|",
        "||",
        "$1",
        "::text",
    ];
    for value in nasty {
        for param in ["q", "author", "subject"] {
            let response = app
                .client
                .get(app.url("/api/v1/items"))
                .query(&[(param, value)])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(
                status == 200 || status == 400,
                "{param}={value:?} gave {status}"
            );
            if status == 200 {
                let page: Value = response.json().await.unwrap();
                let found = titles(&page);
                assert!(found.len() <= 1, "{param}={value:?} returned {found:?}");
            }
        }
        for param in [
            "item_type",
            "isbn",
            "year_from",
            "year_to",
            "available",
            "sort",
            "cursor",
            "limit",
        ] {
            let response = app
                .client
                .get(app.url("/api/v1/items"))
                .query(&[(param, value)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{param}={value:?}");
        }
    }
    // NUL reaches no database, whatever the endpoint.
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "a\u{0}b", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(login, 400, "VALIDATION_ERROR").await;
    // The table is intact.
    assert_eq!(
        titles(&search(&app, "?sort=title").await),
        ["Public Park", "Secret Garden"]
    );
}

/// An item whose field groups contain "lantern" exactly as `mask` says (bit 3
/// title, 2 subtitle/authors, 1 subjects, 0 description), with its score.
fn lantern_item(mask: u8, n: usize, item_type: &str) -> (Value, i64) {
    let has = |bit: u8| mask & bit != 0;
    let title = if has(8) {
        format!("Lanterns {n}")
    } else {
        format!("Volume {n}")
    };
    let mut item = json!({"title": title, "item_type": item_type, "subjects": ["Reference"]});
    if has(4) {
        // Alternately the subtitle and an author name: the same field group.
        if n.is_multiple_of(2) {
            item["subtitle"] = json!("by lantern light");
        } else {
            item["authors"] = json!(["Ada Lantern"]);
        }
    }
    if has(2) {
        item["subjects"] = json!(["Lantern making", "Reference"]);
    }
    if has(1) {
        item["description"] = json!("Notes about a lantern.");
    }
    let score = [(8, 10), (4, 4), (2, 2), (1, 1)]
        .iter()
        .filter(|(bit, _)| has(*bit))
        .map(|(_, w)| w)
        .sum();
    (item, score)
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn single_term_relevance_ranks_every_field_group_combination(app: TestApp) {
    let token = staff(&app).await;
    // Two items of every non-empty combination (one book, one ebook), created in
    // an order unrelated to their scores, plus items that do not match.
    let mut expected: Vec<(i64, String, String)> = Vec::new();
    for round in 0..2 {
        for mask in [5u8, 12, 1, 15, 8, 3, 10, 6, 13, 2, 9, 14, 4, 11, 7] {
            let item_type = if round == 0 { "book" } else { "ebook" };
            let (body, score) = lantern_item(mask, expected.len(), item_type);
            let id = create(&app, &token, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            expected.push((score, id, item_type.to_owned()));
        }
    }
    create(
        &app,
        &token,
        json!({"title": "Candles", "description": "No lamps here."}),
    )
    .await;
    let order = |rows: &[(i64, String, String)]| -> Vec<String> {
        let mut rows = rows.to_vec();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        rows.into_iter().map(|r| r.1).collect()
    };

    // One page: score high to low, ties by id; stemmed forms count.
    assert_eq!(
        ids(&search(&app, "?q=lantern&limit=100").await),
        order(&expected)
    );
    assert_eq!(
        ids(&search(&app, "?q=LANTERNS&limit=100").await),
        order(&expected)
    );

    // Small pages give the same sequence, across class boundaries.
    for limit in [1, 2, 3, 7] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("?q=lantern&limit={limit}");
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={c}"));
            }
            let page = search(&app, &query).await;
            seen.extend(ids(&page));
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, order(&expected), "limit {limit}");
    }

    // Filters combine with the text; a soft-deleted item is gone from every class.
    let ebooks: Vec<_> = expected
        .iter()
        .filter(|r| r.2 == "ebook")
        .cloned()
        .collect();
    assert_eq!(
        ids(&search(&app, "?q=lantern&item_type=ebook&limit=100").await),
        order(&ebooks)
    );
    let top = order(&expected)[0].clone();
    let deleted = app
        .authed(Method::DELETE, &format!("/api/v1/items/{top}"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let live: Vec<_> = expected.iter().filter(|r| r.1 != top).cloned().collect();
    assert_eq!(
        ids(&search(&app, "?q=lantern&limit=100").await),
        order(&live)
    );
    let subject = search(&app, "?q=lantern&subject=lantern%20making&limit=100").await;
    let with_subject: Vec<_> = live
        .iter()
        .filter(|r| {
            // The subjects group is in the score if 2 is left after the larger weights.
            let rest = r.0 % 10;
            rest % 4 >= 2
        })
        .cloned()
        .collect();
    assert_eq!(ids(&subject), order(&with_subject));

    // Several terms keep their own path: every term must match, scores add up.
    let both = titles(&search(&app, "?q=lantern%20notes&limit=100").await);
    assert_eq!(both.len(), live.iter().filter(|r| r.0 % 2 == 1).count());
    // A term that matches nothing, or a filter that excludes every match: an empty page.
    assert!(ids(&search(&app, "?q=zzyzx").await).is_empty());
    assert!(ids(&search(&app, "?q=lantern&item_type=dvd").await).is_empty());
}

async fn single_term_pages_cross_classes_exactly_once_while_items_are_added(app: TestApp) {
    let token = staff(&app).await;
    let masks = [1u8, 8, 9, 2, 12, 4, 1, 8, 15, 3, 11, 1];
    let mut before = Vec::new();
    for (n, mask) in masks.iter().enumerate() {
        let (body, _) = lantern_item(*mask, n, "book");
        before.push(
            create(&app, &token, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let mut query = "?q=lantern&limit=2".to_owned();
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let page = search(&app, &query).await;
        seen.extend(ids(&page));
        // New matches land in the best class, the worst, and the page's own.
        let mask = [15u8, 1, 8, 11][round % 4];
        let (body, _) = lantern_item(mask, 100 + round, "book");
        create(&app, &token, body).await;
        round += 1;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an item was returned twice: {seen:?}"
    );
    for id in &before {
        assert!(seen.contains(id), "item {id} was skipped");
    }
}

/// The class score of a field-group mask (bit 3 title 10, bit 2 subtitle or
/// authors 4, bit 1 subjects 2, bit 0 description 1).
fn mask_score(mask: u8) -> i64 {
    [(8, 10), (4, 4), (2, 2), (1, 1)]
        .iter()
        .filter(|(bit, _)| mask & bit != 0)
        .map(|(_, w)| w)
        .sum()
}

/// An item holding "lantern" in the field groups of `lantern` and "harbor" in
/// those of `harbor` (masks as in [`mask_score`]), with its two-word score.
fn two_word_item(lantern: u8, harbor: u8, n: usize) -> (Value, i64) {
    let words = |bit: u8, l: &str, h: &str| -> Vec<String> {
        let mut out = Vec::new();
        if lantern & bit != 0 {
            out.push(l.to_owned());
        }
        if harbor & bit != 0 {
            out.push(h.to_owned());
        }
        out
    };
    let mut title = format!("Volume {n}");
    for w in words(8, "Lantern", "Harbor") {
        title.push(' ');
        title.push_str(&w);
    }
    let mut item = json!({"title": title, "subjects": ["Reference"]});
    let middle = words(4, "lantern", "harbor");
    if !middle.is_empty() {
        // Alternately the subtitle and author names: the same field group.
        if n.is_multiple_of(2) {
            item["subtitle"] = json!(format!("by {}", middle.join(" and ")));
        } else {
            item["authors"] = json!(
                middle
                    .iter()
                    .map(|w| format!("Ada {w}"))
                    .collect::<Vec<_>>()
            );
        }
    }
    let mut subjects = vec!["Reference".to_owned()];
    subjects.extend(words(2, "Lantern making", "Harbor life"));
    item["subjects"] = json!(subjects);
    let notes = words(1, "lantern", "harbor");
    if !notes.is_empty() {
        item["description"] = json!(format!("Notes on a {}.", notes.join(" and a ")));
    }
    (item, mask_score(lantern) + mask_score(harbor))
}

/// Every page of `query` (which ends without a cursor) by cursor, as ids.
async fn walk(app: &TestApp, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.to_owned();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page = search(app, &q).await;
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return seen;
        }
    }
}

fn best_first(rows: &[(i64, String)]) -> Vec<String> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    rows.into_iter().map(|r| r.1).collect()
}

async fn multi_word_relevance_ranks_every_combination_best_first(app: TestApp) {
    let token = staff(&app).await;
    let mut expected: Vec<(i64, String)> = Vec::new();
    // A spread of the 225 combinations, the best one twice, created in an
    // order unrelated to their scores.
    let mut pairs: Vec<(u8, u8)> = (1..16u8)
        .flat_map(|a| (1..16u8).map(move |b| (a, b)))
        .filter(|(a, b)| (u32::from(*a) + 2 * u32::from(*b)) % 7 == 0)
        .collect();
    pairs.extend([(15, 15), (15, 15), (1, 1), (8, 8)]);
    pairs.sort_by_key(|(a, b)| (u32::from(*a) * 11 + u32::from(*b) * 5) % 13);
    for (n, (a, b)) in pairs.iter().enumerate() {
        let (body, score) = two_word_item(*a, *b, n);
        let id = create(&app, &token, body).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        expected.push((score, id));
    }
    // One of the words alone matches nothing.
    for (n, (a, b)) in [(15u8, 0u8), (0, 15), (8, 0)].iter().enumerate() {
        create(&app, &token, two_word_item(*a, *b, 500 + n).0).await;
    }
    let order = best_first(&expected);
    assert_eq!(
        ids(&search(&app, "?q=lantern%20harbor&limit=100").await),
        order
    );
    assert_eq!(
        ids(&search(&app, "?q=Harbors%20LANTERN&limit=100").await),
        order,
        "word order and forms do not matter"
    );
    // Small pages reach the same sequence through the top class, the tiers and
    // the full ranking.
    for limit in [1, 2, 3, 5, 8] {
        assert_eq!(
            walk(&app, &format!("?q=lantern%20harbor&limit={limit}")).await,
            order,
            "limit {limit}"
        );
    }
    // Both words in the title beat the words scattered over other fields.
    let both_in_title: Vec<String> = expected
        .iter()
        .filter(|(s, _)| *s >= 20)
        .map(|r| r.1.clone())
        .collect();
    let first = ids(&search(&app, "?q=lantern%20harbor&limit=3").await);
    assert!(
        first.iter().all(|id| both_in_title.contains(id)),
        "{first:?}"
    );

    // A word that occurs only in descriptions, and a filter.
    let mut only = Vec::new();
    for n in 0..5 {
        let body = json!({"title": format!("Lantern guide {n}"), "description": "with a zeppelin", "item_type": if n % 2 == 0 { "book" } else { "dvd" }});
        only.push((
            10 + 1,
            create(&app, &token, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    let body =
        json!({"title": "Volume", "description": "lantern and zeppelin", "item_type": "dvd"});
    only.push((
        2,
        create(&app, &token, body).await["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ));
    for limit in [1, 2, 100] {
        assert_eq!(
            walk(&app, &format!("?q=zeppelin%20lantern&limit={limit}")).await,
            best_first(&only),
            "limit {limit}"
        );
    }
    let dvds: Vec<(i64, String)> = only
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 2 == 1)
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(
        walk(&app, "?q=zeppelin%20lantern&item_type=dvd&limit=1").await,
        best_first(&dvds)
    );
    // Three words; a word nobody uses empties the result.
    assert!(ids(&search(&app, "?q=lantern%20harbor%20zyzzyva").await).is_empty());
    let three = walk(&app, "?q=lantern%20harbor%20volume&limit=4").await;
    assert_eq!(
        three, order,
        "every two-word item has Volume in its title (+10 each)"
    );
}

async fn multi_word_pages_are_exact_while_items_are_added(app: TestApp) {
    let token = staff(&app).await;
    let pairs = [
        (1u8, 1u8),
        (8, 8),
        (9, 3),
        (2, 12),
        (15, 15),
        (4, 1),
        (8, 1),
        (1, 8),
        (15, 1),
        (3, 3),
        (12, 12),
        (1, 2),
    ];
    let mut before = Vec::new();
    for (n, (a, b)) in pairs.iter().enumerate() {
        let (body, _) = two_word_item(*a, *b, n);
        before.push(
            create(&app, &token, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut round = 0;
    loop {
        let mut query = "?q=lantern%20harbor&limit=2".to_owned();
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let page = search(&app, &query).await;
        seen.extend(ids(&page));
        // New matches land in the best class, the worst, and in between.
        let (a, b) = [(15u8, 15u8), (1, 1), (8, 8), (9, 3)][round % 4];
        create(&app, &token, two_word_item(a, b, 100 + round).0).await;
        round += 1;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an item was returned twice: {seen:?}"
    );
    for id in &before {
        assert!(seen.contains(id), "item {id} was skipped");
    }
}

async fn facets_count_every_matching_item(app: TestApp) {
    let token = staff(&app).await;
    let rows = [
        (
            "Garden plans",
            "book",
            Some("eng"),
            Some(1995),
            vec!["Botany", "Gardens"],
        ),
        (
            "Garden tools",
            "book",
            Some("eng"),
            Some(1999),
            vec!["Gardens"],
        ),
        (
            "Garden history",
            "ebook",
            Some("fre"),
            Some(2001),
            vec!["Gardens", "History"],
        ),
        ("Roof garden", "dvd", None, None, vec![]),
        (
            "Gardens of Kyoto",
            "book",
            Some("jpn"),
            Some(1890),
            vec!["Botany"],
        ),
        (
            "A garden year",
            "magazine",
            Some("eng"),
            Some(2001),
            vec!["Seasons"],
        ),
        (
            "Garden birds",
            "book",
            Some("eng"),
            Some(2010),
            vec!["Birds", "Gardens"],
        ),
        ("Kitchen", "book", Some("eng"), Some(1995), vec!["Gardens"]),
        ("Desert", "ebook", Some("ara"), Some(1970), vec!["Botany"]),
    ];
    for (title, item_type, language, year, subjects) in &rows {
        create(
            &app,
            &token,
            json!({"title": title, "item_type": item_type, "language": language,
            "publication_year": year, "subjects": subjects}),
        )
        .await;
    }
    for query in [
        "?q=garden",
        "?q=garden&item_type=book",
        "?q=garden%20plans",
        "?q=gard&prefix=true",
        "?subject=gardens",
        "",
        "?q=garden&year_from=1990&sort=title",
    ] {
        let sep = if query.is_empty() { "?" } else { "&" };
        let first = search(&app, &format!("{query}{sep}facets=true&limit=2")).await;
        let facets = first["facets"].clone();
        assert!(facets.is_object(), "{query}: {first}");
        // Every matching item, by walking all pages.
        let mut items: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = format!("{query}{sep}facets=true&limit=2");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = search(&app, &q).await;
            assert_eq!(
                page["facets"], facets,
                "{query}: the facets of every page are the query's"
            );
            items.extend(page["data"].as_array().unwrap().iter().cloned());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert!(!items.is_empty(), "{query}");
        assert_eq!(facets["total"], json!(items.len()), "{query}");
        let count = |f: &dyn Fn(&Value) -> Vec<Value>| -> std::collections::BTreeMap<String, i64> {
            let mut out = std::collections::BTreeMap::new();
            for item in &items {
                for v in f(item) {
                    *out.entry(v.to_string()).or_insert(0) += 1;
                }
            }
            out
        };
        let listed = |name: &str| -> std::collections::BTreeMap<String, i64> {
            let values = facets[name].as_array().unwrap();
            let counts: Vec<i64> = values
                .iter()
                .map(|v| v["count"].as_i64().unwrap())
                .collect();
            assert!(
                counts.windows(2).all(|w| w[0] >= w[1]),
                "{query}: {name} most items first"
            );
            values
                .iter()
                .map(|v| (v["value"].to_string(), v["count"].as_i64().unwrap()))
                .collect()
        };
        assert_eq!(
            listed("item_type"),
            count(&|i| vec![i["item_type"].clone()]),
            "{query}"
        );
        assert_eq!(
            listed("language"),
            count(&|i| vec![i["language"].clone()]),
            "{query}"
        );
        assert_eq!(
            listed("decade"),
            count(&|i| vec![
                i["publication_year"]
                    .as_i64()
                    .map_or(Value::Null, |y| json!(y / 10 * 10))
            ]),
            "{query}"
        );
        assert_eq!(
            listed("subject"),
            count(&|i| i["subjects"].as_array().unwrap().clone()),
            "{query}"
        );
        let sum: i64 = listed("item_type").values().sum();
        assert_eq!(
            sum,
            items.len() as i64,
            "{query}: item type counts add up to the matches"
        );
    }
    let plain = search(&app, "?q=garden").await;
    assert!(plain.get("facets").is_none(), "facets only when asked for");
    let none = search(&app, "?q=zyzzyva&facets=true").await;
    assert_eq!(none["facets"]["total"], 0);
    assert_eq!(none["facets"]["item_type"], json!([]));
    let stop = search(&app, "?q=the&facets=true").await;
    assert_eq!(stop["facets"]["total"], 0);
    assert_error(
        app.get("/api/v1/items?facets=maybe").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

async fn prefix_completes_the_last_word_typed(app: TestApp) {
    let token = staff(&app).await;
    let rome = create(&app, &token, json!({"title": "History of Rome"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let historians = create(
        &app,
        &token,
        json!({"title": "Historians at Work", "subjects": ["Rome"]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let notes = create(
        &app,
        &token,
        json!({"title": "Field notes", "description": "Histories of small towns."}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create(&app, &token, json!({"title": "Prehistoric Art"})).await;
    create(&app, &token, json!({"title": "A Hiss"})).await;
    let mut found = ids(&search(&app, "?q=histor&prefix=true").await);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found.pop().unwrap(),
        notes,
        "a description match ranks last"
    );
    found.sort();
    let mut titles_first = vec![rome.clone(), historians.clone()];
    titles_first.sort();
    assert_eq!(found, titles_first);
    assert!(
        ids(&search(&app, "?q=histor").await).is_empty(),
        "whole words without prefix=true"
    );
    assert!(
        ids(&search(&app, "?q=histor%20&prefix=true").await).is_empty(),
        "a space ends the word"
    );
    assert_eq!(
        ids(&search(&app, "?q=history&prefix=true&limit=1").await).len(),
        1
    );
    assert_eq!(
        walk(&app, "?q=history&prefix=true&limit=1").await.len(),
        3,
        "the whole word is a prefix too"
    );
    let mut both = ids(&search(&app, "?q=rome%20histo&prefix=true").await);
    both.sort();
    assert_eq!(
        both, titles_first,
        "earlier words are whole words, the last one a prefix"
    );
    assert_eq!(
        ids(&search(&app, "?q=histor%20rome&prefix=true").await).len(),
        0,
        "only the last word is completed"
    );
    assert_eq!(
        titles(&search(&app, "?q=histo&prefix=true&sort=title").await),
        ["Field notes", "Historians at Work", "History of Rome"]
    );
    assert!(
        titles(&search(&app, "?q=h&prefix=true").await).is_empty(),
        "one character is not completed"
    );
    assert_error(
        app.get("/api/v1/items?q=histor&prefix=1").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

/// SQLite keeps a search table per field group by triggers (migration 0016):
/// an edit moves an item in a multi-word ranking (top class and tiers) as its
/// new text says, on both backends.
async fn multi_word_relevance_follows_edits_of_the_searched_fields(app: TestApp) {
    let token = staff(&app).await;
    let mut titled = Vec::new();
    for n in 0..12 {
        let body = json!({"title": format!("Lantern harbor {n}")});
        titled.push(
            create(&app, &token, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let body = json!({"title": "Plain", "description": "a lantern in the harbor"});
    let plain = create(&app, &token, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut order = titled.clone();
    order.push(plain.clone());
    for limit in [1, 3, 100] {
        assert_eq!(
            walk(&app, &format!("?q=lantern%20harbor&limit={limit}")).await,
            order,
            "limit {limit}"
        );
    }
    let patch = |id: String, body: Value| {
        let app = &app;
        let token = &token;
        async move {
            let response = app
                .authed(Method::PATCH, &format!("/api/v1/items/{id}"), token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    // Both words in its title and its subtitle now: the best score of all.
    patch(
        plain.clone(),
        json!({"title": "Lantern harbor atlas", "subtitle": "the harbor lantern"}),
    )
    .await;
    // Neither word in its title any more, one in its subjects and description.
    patch(
        titled[0].clone(),
        json!({"title": "Quay", "subjects": ["Lanterns"], "description": "harbor lantern"}),
    )
    .await;
    let mut order = vec![plain];
    order.extend(titled[1..].iter().cloned());
    order.push(titled[0].clone());
    for limit in [1, 3, 100] {
        assert_eq!(
            walk(&app, &format!("?q=lantern%20harbor&limit={limit}")).await,
            order,
            "limit {limit}"
        );
    }
}

/// `PATCH /copies/{id}` checks the body first: a malformed id with a bad body
/// is a 422 naming the field, with a good body (or an unknown branch) a 404
/// (as before the use case layer).
async fn copy_patch_checks_the_body_before_the_id(app: TestApp) {
    let token = staff(&app).await;
    let patch = |id: &str, body: Value| {
        app.authed(Method::PATCH, &format!("/api/v1/copies/{id}"), &token)
            .json(&body)
            .send()
    };
    for id in ["not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let bad = patch(id, json!({"status": "on_loan"})).await.unwrap();
        let body = assert_error(bad, 422, "VALIDATION_ERROR").await;
        assert!(body["details"]["fields"]["status"].is_string(), "{body}");
        let good = patch(id, json!({"status": "damaged"})).await.unwrap();
        assert_error(good, 404, "RESOURCE_NOT_FOUND").await;
        let branch = json!({"branch_id": "00000000-0000-0000-0000-0000000000aa"});
        assert_error(patch(id, branch).await.unwrap(), 404, "RESOURCE_NOT_FOUND").await;
    }
}
