//! List pages without words (`GET /items` without `q`), which the database
//! renders as JSON: every item exactly as the typed views show it (the item
//! page, and a search with a word, which builds its page from typed rows), the
//! same order and the same cursors, for every sort.

use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, backend_tests, exec_sql};

backend_tests!(list_pages_render_every_item_as_the_typed_views_do);

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Value {
    let response = app
        .authed(method, path, token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status.is_success(), "{path}: {status}");
    response.json().await.unwrap_or(Value::Null)
}

async fn page(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/items?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{query}"
    );
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{query}: {e}: {text}"))
}

/// Every page of a walk with `limit`, followed by cursor.
async fn walk(app: &TestApp, query: &str, limit: u32) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("{query}&limit={limit}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let p = page(app, &q).await;
        assert!(p["data"].as_array().unwrap().len() <= limit as usize);
        cursor = p["next_cursor"].as_str().map(str::to_owned);
        pages.push(p);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 50, "{query}: no end");
    }
}

async fn list_pages_render_every_item_as_the_typed_views_do(app: TestApp) {
    app.create_user("lister", Role::Admin).await;
    let token = app.access_token("lister").await;
    let north = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/branches",
        json!({"code": "NORTH", "name": "North branch"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every item holds the word "zebra", so `q=zebra` lists them all through the
    // typed search path.
    let bodies = [
        json!({"title": "Zebra \"quoted\" \\ back\tslash", "item_type": "book", "authors": ["O'Brien, \"Flann\"", "Ünïcødé 作者 🦓"],
               "subjects": ["Line\nbreak", "separators \u{2028} \u{2029} x"], "publication_year": 1939, "language": "en",
               "publisher": "Longman & Co", "subtitle": "zebra <b>tag</b> </script>", "isbn": "0-306-40615-2",
               "description": "A zebra novel."}),
        json!({"title": "alpha zebra", "item_type": "dvd"}),
        json!({"title": "Alpha zebra", "item_type": "book", "publication_year": 2001, "description": "same title key, another id"}),
        json!({"title": "Émile zebra", "item_type": "magazine", "publication_year": 2001}),
        json!({"title": "zebra 10", "item_type": "other", "subjects": [], "authors": []}),
        json!({"title": "zebra 9", "item_type": "ebook", "publication_year": -500}),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        let item = send(&app, &token, Method::POST, "/api/v1/items", body.clone()).await;
        ids.push(item["id"].as_str().unwrap().to_owned());
    }
    // Covers: the stored name's part before the first dot is the version.
    exec_sql(
        &app,
        "UPDATE items SET cover_name = 'v1a2b3.jpg' WHERE title = 'alpha zebra'",
    )
    .await;
    exec_sql(
        &app,
        "UPDATE items SET cover_name = 'noext' WHERE title = 'zebra 10'",
    )
    .await;
    // Copies in two branches, in every state that counts differently.
    let copies = [
        (0, "C-1", None, None),
        (0, "C-2", Some(&north), None),
        (0, "C-3", Some(&north), Some("lost")),
        (0, "C-4", None, Some("withdrawn")),
        (0, "C-5", Some(&north), Some("deleted")),
        (1, "C-6", Some(&north), Some("damaged")),
        (2, "C-7", None, Some("withdrawn")),
        (3, "C-8", None, None),
        (3, "C-9", None, None),
    ];
    for (item, barcode, branch, state) in copies {
        let mut body = json!({"barcode": barcode});
        if let Some(branch) = branch {
            body["branch_id"] = json!(branch);
        }
        let copy = send(
            &app,
            &token,
            Method::POST,
            &format!("/api/v1/items/{}/copies", ids[item]),
            body,
        )
        .await;
        let copy_path = format!("/api/v1/copies/{}", copy["id"].as_str().unwrap());
        match state {
            Some("deleted") => {
                send(&app, &token, Method::DELETE, &copy_path, json!({})).await;
            }
            Some(status) => {
                send(
                    &app,
                    &token,
                    Method::PATCH,
                    &copy_path,
                    json!({"status": status}),
                )
                .await;
            }
            None => {}
        }
    }
    // A deleted item is never listed.
    let gone = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/items",
        json!({"title": "zebra gone", "item_type": "book"}),
    )
    .await;
    send(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/v1/items/{}", gone["id"].as_str().unwrap()),
        json!({}),
    )
    .await;

    let mut shown = std::collections::HashMap::new();
    for id in &ids {
        let item: Value = app
            .get(&format!("/api/v1/items/{id}"))
            .await
            .json()
            .await
            .unwrap();
        shown.insert(id.clone(), item);
    }
    let first = &shown[&ids[0]];
    assert_eq!(first["copies_total"], 3);
    assert_eq!(first["copies_available"], 2);
    assert_eq!(first["availability"].as_array().unwrap().len(), 2);

    for sort in [
        "title",
        "-title",
        "publication_year",
        "-publication_year",
        "created_at",
        "-created_at",
    ] {
        for limit in [1, 2, 5, 100] {
            let listed = walk(&app, &format!("sort={sort}"), limit).await;
            let searched = walk(&app, &format!("q=zebra&sort={sort}"), limit).await;
            // Same pages, same cursors, same items, byte for byte as JSON values.
            assert_eq!(listed, searched, "sort={sort} limit={limit}");
            let items: Vec<&Value> = listed
                .iter()
                .flat_map(|p| p["data"].as_array().unwrap())
                .collect();
            assert_eq!(items.len(), ids.len(), "sort={sort} limit={limit}");
            for item in items {
                assert_eq!(item, &shown[item["id"].as_str().unwrap()], "sort={sort}");
            }
        }
    }
    // Filters narrow the rendered page as they narrow a search.
    for filter in [
        "item_type=book",
        "author=brien",
        "subject=line%0Abreak",
        "year_from=2000&year_to=2001",
        "available=true",
        &format!("branch_id={north}"),
        &format!("branch_id={north}&available=true"),
    ] {
        let listed = walk(&app, filter, 2).await;
        let searched = walk(&app, &format!("q=zebra&sort=title&{filter}"), 2).await;
        assert_eq!(listed, searched, "{filter}");
    }
    // The facets ride along.
    let with_facets = page(&app, "facets=true&limit=2").await;
    assert_eq!(with_facets["facets"]["total"], 6);
    assert_eq!(with_facets["data"].as_array().unwrap().len(), 2);
    let empty = page(&app, "item_type=audiobook").await;
    assert_eq!(empty, json!({"data": [], "next_cursor": null}));
}
