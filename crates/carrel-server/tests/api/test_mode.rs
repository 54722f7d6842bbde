//! The test clock exists only in test mode, for admins; bootstrap admin.

use carrel_core::roles::Role;
use carrel_store::Backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Spawn, TestApp, assert_error, backend_tests};

backend_tests!(test_clock_moves_every_rule_and_is_admin_only);

async fn test_clock_moves_every_rule_and_is_admin_only(app: TestApp) {
    app.create_user("timekeeper", Role::Admin).await;
    app.create_user("reader", Role::Patron).await;
    let admin = app.access_token("timekeeper").await;
    let patron = app.access_token("reader").await;
    let advance = |token: &str, seconds: i64| {
        app.authed(Method::POST, "/api/v1/test/clock", token)
            .json(&json!({"advance_seconds": seconds}))
            .send()
    };
    assert_error(advance(&patron, 60).await.unwrap(), 403, "FORBIDDEN").await;
    assert_error(advance(&admin, -5).await.unwrap(), 422, "VALIDATION_ERROR").await;

    let before = app.clock.now();
    let response = advance(&admin, 600).await.unwrap();
    assert_eq!(response.status(), 200);
    let now: Value = response.json().await.unwrap();
    let now = time::OffsetDateTime::parse(
        now["now"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(now - before >= time::Duration::seconds(600));
    // Token expiry follows the server clock: 15 minutes after login the patron token is dead.
    advance(&admin, 300).await.unwrap();
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &patron)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["paths"]["/api/v1/test/clock"].is_object());
}

#[tokio::test]
async fn test_clock_is_absent_outside_test_mode() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![("CARREL_ENV", "development".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.create_user("timekeeper", Role::Admin).await;
    let admin = app.access_token("timekeeper").await;
    let response = app
        .authed(Method::POST, "/api/v1/test/clock", &admin)
        .json(&json!({"advance_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "RESOURCE_NOT_FOUND").await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(doc["paths"].get("/api/v1/test/clock").is_none());
}

#[tokio::test]
async fn bootstrap_admin_from_configuration() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![
                ("CARREL_BOOTSTRAP_ADMIN_EMAIL", "root@example.org".into()),
                (
                    "CARREL_BOOTSTRAP_ADMIN_PASSWORD",
                    "Bootstrap-Lighthouse-88".into(),
                ),
            ],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    carrel_server::startup::ensure_admin(&app.state)
        .await
        .unwrap();
    carrel_server::startup::ensure_admin(&app.state)
        .await
        .unwrap();
    let tokens = app
        .tokens("root@example.org", "Bootstrap-Lighthouse-88")
        .await;
    let me: Value = app
        .authed(
            Method::GET,
            "/api/v1/users/me",
            tokens["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
    let admins: Value = app
        .authed(
            Method::GET,
            "/api/v1/users?role=admin",
            tokens["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admins["data"].as_array().unwrap().len(), 1, "created once");
}
