//! Readiness follows the database: reachable and fully migrated, or 503.

use std::time::{Duration, Instant};

use carrel_store::Backend;
use carrel_store::testing::TestDatabase;

use crate::helpers::{CuttableProxy, Spawn, TestApp, assert_error, backend_tests, exec_sql};

backend_tests!(readiness_requires_current_migrations);

async fn readiness_requires_current_migrations(app: TestApp) {
    let response = app.get("/readiness").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], app.state.store.backend().name());

    exec_sql(
        &app,
        "UPDATE _sqlx_migrations SET success = FALSE WHERE version = 1",
    )
    .await;
    let body = assert_error(app.get("/readiness").await, 503, "SERVICE_UNAVAILABLE").await;
    assert_eq!(body["details"]["migrations"], "pending");
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "liveness does not depend on the database"
    );

    exec_sql(
        &app,
        "UPDATE _sqlx_migrations SET success = TRUE WHERE version = 1",
    )
    .await;
    assert_eq!(app.get("/readiness").await.status(), 200);
}

/// Polls `/readiness` until it answers `status` (bounded).
async fn wait_for_readiness(app: &TestApp, status: u16) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.get("/readiness").await;
        if response.status().as_u16() == status || Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_503_while_postgres_is_unreachable_and_recovers() {
    // Learn the real server address from the test database URL, then put a proxy in front.
    let Some(probe) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let mut url = url::Url::parse(probe.url()).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = CuttableProxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let app = TestApp::spawn_with(
        Backend::Postgres,
        Spawn {
            database_url: Some(url.to_string()),
            // A cut database is noticed within a second.
            env: vec![("CARREL_DATABASE_ACQUIRE_TIMEOUT", "1s".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // The app's database is the probe's schema, reached only through the proxy.
    assert_eq!(wait_for_readiness(&app, 200).await.status(), 200);

    proxy.cut();
    let started = Instant::now();
    let response = wait_for_readiness(&app, 503).await;
    assert_error(response, 503, "SERVICE_UNAVAILABLE").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503 promptly, no hang"
    );

    proxy.restore();
    assert_eq!(
        wait_for_readiness(&app, 200).await.status(),
        200,
        "recovers once the database is back"
    );
    drop(probe);
}
