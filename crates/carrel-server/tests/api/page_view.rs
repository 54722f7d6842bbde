//! Rendered list pages (`GET /items` without `q`) kept in the in-process view:
//! served from memory while nothing changed, and never stale: a write on this
//! instance is seen by the next request, a write on another instance (or behind
//! Carrel's back) within a second, and while the notification channel is down
//! every page comes from the database.

use std::time::{Duration, Instant};

use carrel_core::roles::Role;
use carrel_store::Backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Spawn, TestApp, backend_tests, exec_sql};

backend_tests!(
    pages_are_served_from_the_view_and_every_write_here_is_seen_at_once,
    another_instance_sees_catalog_changes_within_a_second,
    a_cut_channel_serves_every_page_from_the_database,
);

const PAGE: &str = "/api/v1/items?limit=20";

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

async fn page(app: &TestApp) -> Value {
    let response = app.get(PAGE).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `copies_available` of the item titled `title` on the first page.
fn available(page: &Value, title: &str) -> Option<i64> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["title"] == title)
        .map(|item| item["copies_available"].as_i64().unwrap())
}

fn page_hits(app: &TestApp) -> u64 {
    app.state.store.session_view_status().page_hits
}

/// Waits until the instance's view is in use (PostgreSQL: its listener has
/// subscribed and heard its own heartbeat).
async fn view_in_use(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.state.store.session_view_status().trusted {
        assert!(Instant::now() < deadline, "the view never came into use");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The page is answered from the view: a second request is a hit. The
/// notification channel is database-wide on PostgreSQL, so a catalog write by a
/// test running beside this one may empty the view between two requests; a few
/// attempts within a second absorb that, a view that never answers still fails.
async fn assert_served_from_the_view(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let first = page(app).await;
        let before = page_hits(app);
        let second = page(app).await;
        if page_hits(app) > before {
            assert_eq!(first, second, "a hit returns the page as rendered");
            return second;
        }
        assert!(
            Instant::now() < deadline,
            "the page was not answered from the view"
        );
    }
}

/// An admin token, a book with two copies (`<prefix>-1`, `<prefix>-2`) and a patron.
async fn seed(app: &TestApp, prefix: &str) -> (String, String, String) {
    app.create_user(&format!("{prefix}-admin"), Role::Admin)
        .await;
    let token = app.access_token(&format!("{prefix}-admin")).await;
    let item = send(
        app,
        &token,
        Method::POST,
        "/api/v1/items",
        json!({"title": format!("{prefix} book"), "item_type": "book"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 1..=2 {
        send(
            app,
            &token,
            Method::POST,
            &format!("/api/v1/items/{item}/copies"),
            json!({"barcode": format!("{prefix}-{n}")}),
        )
        .await;
    }
    let patron = app
        .create_user(&format!("{prefix}-reader"), Role::Patron)
        .await;
    (token, item, patron.id.to_string())
}

async fn pages_are_served_from_the_view_and_every_write_here_is_seen_at_once(app: TestApp) {
    let (token, item, patron) = seed(&app, "local").await;
    view_in_use(&app).await;
    let title = "local book";
    assert_eq!(
        available(&assert_served_from_the_view(&app).await, title),
        Some(2)
    );

    // A checkout: the very next page shows one copy fewer.
    send(
        &app,
        &token,
        Method::POST,
        "/api/v1/loans",
        json!({"copy_barcode": "local-1", "user_id": patron}),
    )
    .await;
    assert_eq!(available(&page(&app).await, title), Some(1));
    assert_eq!(
        available(&assert_served_from_the_view(&app).await, title),
        Some(1)
    );

    // A return.
    send(
        &app,
        &token,
        Method::POST,
        "/api/v1/loans/return",
        json!({"copy_barcode": "local-1"}),
    )
    .await;
    assert_eq!(available(&page(&app).await, title), Some(2));

    // An edit of the item, then its removal.
    assert_served_from_the_view(&app).await;
    send(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/items/{item}"),
        json!({"title": "local book, renamed"}),
    )
    .await;
    let renamed = page(&app).await;
    assert_eq!(available(&renamed, title), None);
    assert_eq!(available(&renamed, "local book, renamed"), Some(2));
    // A change behind Carrel's back (another process, an operator's SQL) is
    // seen too: on SQLite by the WAL-index header at once, on PostgreSQL by
    // its notification (`exec_sql` waits for the channel to catch up).
    assert_served_from_the_view(&app).await;
    exec_sql(
        &app,
        "UPDATE items SET title = 'behind the back' WHERE title = 'local book, renamed'",
    )
    .await;
    assert_eq!(available(&page(&app).await, "behind the back"), Some(2));

    assert_served_from_the_view(&app).await;
    let status = app
        .authed(Method::DELETE, &format!("/api/v1/items/{item}"), &token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(available(&page(&app).await, "behind the back"), None);
}

/// A second server over the same database (another instance).
async fn second_instance(app: &TestApp) -> TestApp {
    let spawn = Spawn {
        env: vec![(
            "CARREL_DATA_DIR",
            app.state.config.data_dir.display().to_string(),
        )],
        database_url: Some(app.db.url().to_owned()),
        ..Default::default()
    };
    TestApp::spawn_with(app.state.store.backend(), spawn)
        .await
        .expect("second instance")
}

/// Polls `app`'s page until `title` shows `copies` available; fails after a second.
async fn shows_within_a_second(app: &TestApp, title: &str, copies: i64) -> Duration {
    let since = Instant::now();
    loop {
        if available(&page(app).await, title) == Some(copies) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "another instance still shows a stale page after a second"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn another_instance_sees_catalog_changes_within_a_second(a: TestApp) {
    let (token, _item, patron) = seed(&a, "shared").await;
    let b = second_instance(&a).await;
    view_in_use(&b).await;
    let title = "shared book";
    assert_eq!(
        available(&assert_served_from_the_view(&b).await, title),
        Some(2)
    );

    send(
        &a,
        &token,
        Method::POST,
        "/api/v1/loans",
        json!({"copy_barcode": "shared-2", "user_id": patron}),
    )
    .await;
    let took = shows_within_a_second(&b, title, 1).await;
    assert_eq!(
        available(&assert_served_from_the_view(&b).await, title),
        Some(1)
    );
    send(
        &a,
        &token,
        Method::POST,
        "/api/v1/loans/return",
        json!({"copy_barcode": "shared-2"}),
    )
    .await;
    let back = shows_within_a_second(&b, title, 2).await;
    eprintln!("catalog change reached the other instance after {took:?} and {back:?}");
}

/// With B's channel cut and held down, B renders every page in the database:
/// a change made on A is on B's next page, and the view answers nothing.
async fn a_cut_channel_serves_every_page_from_the_database(a: TestApp) {
    if a.state.store.backend() != Backend::Postgres {
        return; // SQLite has no channel: one instance, an exact view.
    }
    let (token, _item, patron) = seed(&a, "cut").await;
    let b = second_instance(&a).await;
    view_in_use(&b).await;
    let title = "cut book";
    assert_eq!(
        available(&assert_served_from_the_view(&b).await, title),
        Some(2)
    );

    b.state.store.hold_revocation_channel(true);
    let pid = b
        .state
        .store
        .session_view_status()
        .listener_pid
        .expect("B's listener is subscribed");
    let admin = sqlx::PgPool::connect(a.db.url()).await.expect("connect");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(i32::try_from(pid).unwrap())
        .fetch_one(&admin)
        .await
        .expect("terminate the listener");
    assert!(killed);
    admin.close().await;
    let since = Instant::now();
    while b.state.store.session_view_status().trusted {
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "B still trusts a dead channel"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let hits = page_hits(&b);
    send(
        &a,
        &token,
        Method::POST,
        "/api/v1/loans",
        json!({"copy_barcode": "cut-1", "user_id": patron}),
    )
    .await;
    // The notification is lost, yet B's very next page is right.
    assert_eq!(available(&page(&b).await, title), Some(1));
    assert_eq!(available(&page(&b).await, title), Some(1));
    assert_eq!(
        page_hits(&b),
        hits,
        "the view answered while the channel was down"
    );

    // Back: B resubscribes, starts over, and answers from its view again.
    b.state.store.hold_revocation_channel(false);
    view_in_use(&b).await;
    assert_eq!(
        available(&assert_served_from_the_view(&b).await, title),
        Some(1)
    );
}
