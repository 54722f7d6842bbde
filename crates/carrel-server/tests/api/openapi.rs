//! The served OpenAPI document against the server's real answers: every
//! status the fuzzer (scripts/fuzz-api.sh) saw undocumented is produced here
//! and must be listed, with the error schema, for its operation.

use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, backend_tests};

backend_tests!(
    every_ref_in_the_served_document_resolves,
    real_error_statuses_are_documented,
);

async fn document(app: &TestApp) -> Value {
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn collect_refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

async fn every_ref_in_the_served_document_resolves(app: TestApp) {
    let doc = document(&app).await;
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    let dangling: Vec<_> = refs
        .iter()
        .filter(|r| {
            r.strip_prefix('#')
                .and_then(|pointer| doc.pointer(pointer))
                .is_none()
        })
        .collect();
    assert!(dangling.is_empty(), "dangling $refs: {dangling:?}");
    // The query enums that used to dangle are listed with their values.
    for (name, value) in [
        ("SortParam", "-publication_year"),
        ("CoverSize", "thumb"),
        ("StatusParam", "locked"),
        ("LoanStatusParam", "overdue"),
        ("HoldStatusParam", "ready"),
        ("FineStatusParam", "waived"),
    ] {
        let values = doc["components"]["schemas"][name]["enum"].clone();
        assert!(
            values.as_array().is_some_and(|v| v.contains(&json!(value))),
            "{name}: {values}"
        );
    }
}

/// Asserts the response has `status` and that the document lists that status,
/// with the error body, for the operation.
async fn assert_documented(
    doc: &Value,
    method: &str,
    path: &str,
    response: reqwest::Response,
    status: u16,
) {
    assert_eq!(response.status(), status, "{method} {path}");
    let body: Value = response.json().await.unwrap();
    assert!(body["error_code"].is_string(), "{body}");
    let documented = &doc["paths"][path][method]["responses"][status.to_string()];
    assert_eq!(
        documented["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody",
        "{method} {path} answers {status} but the document does not say so: {documented}"
    );
    assert!(documented["description"].is_string());
}

async fn real_error_statuses_are_documented(app: TestApp) {
    let doc = document(&app).await;
    app.create_user("libby", Role::Librarian).await;
    let patron = app.create_user("pat", Role::Patron).await;
    let other = app.create_user("otto", Role::Patron).await;
    let staff = app.access_token("libby").await;
    let pat = app.access_token("pat").await;

    let item: Value = app
        .authed(Method::POST, "/api/v1/items", &staff)
        .json(&json!({"title": "Documented Behaviour"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item_id = item["id"].as_str().unwrap();

    // A patron asking for staff-only reads: 403.
    let events = format!("/api/v1/items/{item_id}/events");
    let response = app.authed(Method::GET, &events, &pat).send().await.unwrap();
    assert_documented(&doc, "get", "/api/v1/items/{id}/events", response, 403).await;
    let user = format!("/api/v1/users/{}", other.id);
    let response = app.authed(Method::GET, &user, &pat).send().await.unwrap();
    assert_documented(&doc, "get", "/api/v1/users/{id}", response, 403).await;

    // Deleting an account that owes a fine, restoring one that is not deleted,
    // taking another account's email: 409.
    let fine = app
        .authed(Method::POST, "/api/v1/fines", &staff)
        .json(&json!({"user_id": patron.id, "amount_cents": 100, "reason": "manual"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 201);
    let owing = format!("/api/v1/users/{}", patron.id);
    let response = app
        .authed(Method::DELETE, &owing, &staff)
        .send()
        .await
        .unwrap();
    assert_documented(&doc, "delete", "/api/v1/users/{id}", response, 409).await;
    let response = app
        .authed(Method::POST, &format!("{user}/restore"), &staff)
        .send()
        .await
        .unwrap();
    assert_documented(&doc, "post", "/api/v1/users/{id}/restore", response, 409).await;
    let response = app
        .authed(Method::PATCH, &user, &staff)
        .json(&json!({"email": patron.email}))
        .send()
        .await
        .unwrap();
    assert_documented(&doc, "patch", "/api/v1/users/{id}", response, 409).await;

    // A cover upload without the `file` field (422) or without a multipart body (400).
    let cover = format!("/api/v1/items/{item_id}/cover");
    let response = app
        .authed(Method::PUT, &cover, &staff)
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_documented(&doc, "put", "/api/v1/items/{id}/cover", response, 422).await;
    let response = app
        .authed(Method::PUT, &cover, &staff)
        .send()
        .await
        .unwrap();
    assert_documented(&doc, "put", "/api/v1/items/{id}/cover", response, 400).await;

    // The shared layers: no token (401), a body of the wrong type (415), an
    // unknown query parameter (400).
    let response = app.get("/api/v1/users/me").await;
    assert_documented(&doc, "get", "/api/v1/users/me", response, 401).await;
    let response = app
        .authed(Method::POST, "/api/v1/items", &staff)
        .header("content-type", "text/plain")
        .body("title")
        .send()
        .await
        .unwrap();
    assert_documented(&doc, "post", "/api/v1/items", response, 415).await;
    let response = app.get("/api/v1/items?colour=red").await;
    assert_documented(&doc, "get", "/api/v1/items", response, 400).await;
}
