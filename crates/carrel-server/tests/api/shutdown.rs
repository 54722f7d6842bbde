//! Graceful shutdown: in-flight requests finish, new connections are refused.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use carrel_store::Backend;
use tokio::sync::Notify;

use crate::helpers::{Spawn, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_and_refuses_new_ones() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (e, r) = (entered.clone(), release.clone());
    let routes = Router::new().route(
        "/probe/wait",
        get(move || {
            let (e, r) = (e.clone(), r.clone());
            async move {
                e.notify_one();
                r.notified().await;
                "finished"
            }
        }),
    );
    let mut app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            extra_routes: Some(routes),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let in_flight = tokio::spawn(app.client.get(app.url("/probe/wait")).send());
    entered.notified().await;
    let server = app.begin_shutdown();

    // The listener closes: a fresh client cannot connect any more.
    let fresh = reqwest::Client::new();
    let mut refused = false;
    for _ in 0..50 {
        if fresh.get(app.url("/health")).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "new connections are refused after shutdown begins");
    assert!(
        !server.is_finished(),
        "the server waits for the in-flight request"
    );

    release.notify_one();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops after draining")
        .unwrap()
        .unwrap();
}
