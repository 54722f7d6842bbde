//! The HTTP platform: error shapes, request ids, headers, limits, metrics, docs.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use carrel_server::http::extract::Json;
use carrel_server::state::AppState;
use carrel_store::Backend;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::{Spawn, TestApp, assert_error, backend_tests};

backend_tests!(
    health_is_ok,
    security_headers_on_every_response,
    request_id_is_echoed_replaced_or_generated,
    unknown_route_is_404_in_contract_shape,
    wrong_method_is_405_with_allow,
    metrics_count_requests_by_route,
    openapi_document_lists_the_operations_endpoints,
    docs_ui_is_served_locally,
);

async fn health_is_ok(app: TestApp) {
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

fn assert_security_headers(response: &reqwest::Response) {
    let h = response.headers();
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        get("x-content-type-options"),
        "nosniff",
        "{}",
        response.url()
    );
    assert_eq!(get("x-frame-options"), "DENY");
    assert_eq!(get("referrer-policy"), "no-referrer");
    let csp = get("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(h.get("x-request-id").is_some());
}

async fn security_headers_on_every_response(app: TestApp) {
    for path in [
        "/health",
        "/readiness",
        "/metrics",
        "/nowhere",
        "/api/v1/openapi.json",
        "/docs/",
    ] {
        let response = app.get(path).await;
        assert_security_headers(&response);
        if path != "/docs/" {
            assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        }
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none(),
            "HSTS only in production"
        );
    }
    let response = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_security_headers(&response);
}

async fn request_id_is_echoed_replaced_or_generated(app: TestApp) {
    let send = |id: Option<&str>| {
        let mut request = app.client.get(app.url("/nowhere"));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };
    let response = send(Some("trace-42.a_b")).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42.a_b");
    let body = assert_error(response, 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(body["request_id"], "trace-42.a_b");

    let long = "x".repeat(129);
    for bad in ["has space", "quote\"", long.as_str(), "ümlaut"] {
        let response = send(Some(bad)).await.unwrap();
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(echoed, bad);
        assert!((1..=128).contains(&echoed.len()));
        let body = assert_error(response, 404, "RESOURCE_NOT_FOUND").await;
        assert_eq!(body["request_id"], echoed.as_str());
    }

    let a = send(None).await.unwrap().headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let b = send(None).await.unwrap().headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(a, b, "generated ids are unique");
}

async fn unknown_route_is_404_in_contract_shape(app: TestApp) {
    for path in [
        "/nowhere",
        "/api/v1/nothing/here",
        "/api/v2/health",
        "/health/extra",
    ] {
        assert_error(app.get(path).await, 404, "RESOURCE_NOT_FOUND").await;
    }
}

async fn wrong_method_is_405_with_allow(app: TestApp) {
    let response = app.client.post(app.url("/health")).send().await.unwrap();
    let allow = response
        .headers()
        .get("allow")
        .expect("Allow header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("GET"), "{allow}");
    assert_error(response, 405, "METHOD_NOT_ALLOWED").await;
}

async fn metrics_count_requests_by_route(app: TestApp) {
    app.get("/health").await;
    app.get("/nowhere/secret-token-in-path").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let counter = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("route=\"/health\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no request counter for /health in:\n{text}"));
    let count: f64 = counter.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0);
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "latency histogram"
    );
    assert!(text.contains("http_requests_in_flight"), "in-flight gauge");
    assert!(text.contains("db_pool_connections{"), "pool gauges");
    assert!(
        text.contains("route=\"unmatched\""),
        "unmatched paths share one label"
    );
    assert!(
        !text.contains("secret-token-in-path"),
        "raw paths never become labels"
    );
}

async fn openapi_document_lists_the_operations_endpoints(app: TestApp) {
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("valid JSON");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1"
    );
    assert_eq!(doc["info"]["title"], "Carrel");
    for path in ["/health", "/readiness", "/metrics"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing from the document"
        );
    }
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // The harness runs in test mode, where (and only where) the test clock is documented.
    assert!(doc["paths"]["/api/v1/test/clock"]["post"].is_object());
}

async fn docs_ui_is_served_locally(app: TestApp) {
    let response = app.get("/docs/").await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("http"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(!html.contains("https://"), "no CDN assets in the page");
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.get(asset).await;
        assert_eq!(response.status(), 200, "{asset}");
    }
    let init = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        init.contains("/api/v1/openapi.json"),
        "the UI loads our document"
    );
}

// --- Behaviour that needs a route of its own, mounted behind the real stack ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Echo {
    name: String,
    count: u32,
}

fn probe_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/probe/echo",
            post(|Json(body): Json<Echo>| async move { axum::Json(json!({"name": body.name})) }),
        )
        .route("/probe/panic", get(explode))
        .route(
            "/probe/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
}

async fn explode() -> &'static str {
    panic!("secret internal detail /etc/passwd")
}

async fn spawn_with_probes(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(
        backend,
        Spawn {
            env: vec![
                ("CARREL_BODY_MAX_BYTES", "2048".into()),
                ("CARREL_REQUEST_TIMEOUT", "300ms".into()),
            ],
            extra_routes: Some(probe_routes()),
            ..Default::default()
        },
    )
    .await
}

macro_rules! probe_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = super::spawn_with_probes(carrel_store::Backend::Sqlite).await { super::$name(app).await }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = super::spawn_with_probes(carrel_store::Backend::Postgres).await { super::$name(app).await }
            }
        }
    )*};
}

probe_tests!(
    json_errors_follow_the_contract,
    oversized_body_is_413,
    panic_is_500_without_internals,
    slow_request_times_out_with_503,
);

async fn json_errors_follow_the_contract(app: TestApp) {
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/probe/echo"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let ok = post(r#"{"name":"a","count":1}"#, "application/json")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    assert_error(
        post(r#"{"name": "a", "#, "application/json").await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        post("not json at all", "application/json").await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;

    let body = assert_error(
        post(
            r#"{"name":"a","count":1,"role":"admin"}"#,
            "application/json",
        )
        .await
        .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(body["details"]["fields"]["role"].is_string(), "{body}");

    let body = assert_error(
        post(r#"{"name":"a","count":-1}"#, "application/json")
            .await
            .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(body["details"]["fields"]["count"].is_string(), "{body}");

    let body = assert_error(
        post(r#"{"count":1}"#, "application/json").await.unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(body["details"]["fields"]["name"].is_string(), "{body}");

    assert_error(
        post(r#"{"name":"a","count":1}"#, "text/plain")
            .await
            .unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
}

async fn oversized_body_is_413(app: TestApp) {
    let big = format!(r#"{{"name":"{}","count":1}}"#, "a".repeat(4096));
    let response = app
        .client
        .post(app.url("/probe/echo"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "PAYLOAD_TOO_LARGE").await;
}

async fn panic_is_500_without_internals(app: TestApp) {
    let response = app.get("/probe/panic").await;
    let body = assert_error(response, 500, "INTERNAL_ERROR").await;
    let text = body.to_string();
    assert!(
        !text.contains("passwd") && !text.contains("secret"),
        "{text}"
    );
    // The server is still healthy afterwards.
    assert_eq!(app.get("/health").await.status(), 200);
}

async fn slow_request_times_out_with_503(app: TestApp) {
    let started = std::time::Instant::now();
    assert_error(app.get("/probe/slow").await, 503, "SERVICE_UNAVAILABLE").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timed out at the configured 300ms, not at 5s"
    );
}

// --- CORS ---

#[tokio::test]
async fn cors_is_closed_by_default_and_open_to_configured_origins() {
    let closed = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let preflight = |app: &TestApp, origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/health"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let response = preflight(&closed, "https://evil.example").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let open = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![("CARREL_CORS_ORIGINS", "https://app.example".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let response = preflight(&open, "https://app.example").await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    let response = preflight(&open, "https://evil.example").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn production_adds_hsts() {
    // Production never generates keys: provide real ones.
    let keys = tempfile::tempdir().unwrap();
    let jwt = keys.path().join("jwt.pem");
    let secrets = keys.path().join("secrets.key");
    carrel_crypto::JwtKeys::load_or_generate(
        &jwt,
        true,
        &[],
        "https://library.example",
        "carrel-api",
    )
    .unwrap();
    carrel_crypto::SecretsKey::load_or_generate(&secrets, true).unwrap();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![
                ("CARREL_ENV", "production".into()),
                ("CARREL_JWT_PRIVATE_KEY_FILE", jwt.display().to_string()),
                ("CARREL_SECRETS_KEY_FILE", secrets.display().to_string()),
                ("CARREL_SMTP_URL", "smtp://mail.example:587".into()),
                ("CARREL_PUBLIC_URL", "https://library.example".into()),
            ],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let response = app.get("/health").await;
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
}
