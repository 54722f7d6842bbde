//! Rate limits: every named limit trips at its count and resets after its
//! period (moved by the clock), headers, X-Forwarded-For trust, per-account
//! login budget, and a Redis store shared by two servers that survives Redis
//! going away.

use std::net::Ipv4Addr;

use carrel_core::roles::Role;
use carrel_store::Backend;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{CuttableProxy, PASSWORD, Spawn, TestApp, assert_error};

const REDIS_VAR: &str = "CARREL_TEST_REDIS_URL";

async fn limited_app(extra: Vec<(&'static str, String)>) -> TestApp {
    let mut env = vec![
        ("CARREL_RATE_LIMITS_ENABLED", "true".to_owned()),
        ("CARREL_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
    ];
    env.extend(extra);
    TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A unique client address per test (believed because 127.0.0.1 is a trusted proxy).
fn client_ip() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8).to_string()
}

/// Sends `request` until the first 429; returns how many were let through.
async fn allowed_before_429(
    mut send: impl AsyncFnMut() -> reqwest::Response,
    max: usize,
) -> (usize, reqwest::Response) {
    for i in 0..max {
        let response = send().await;
        if response.status() == 429 {
            return (i, response);
        }
    }
    panic!("no 429 after {max} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_named_limit_trips_at_its_count_and_resets_after_its_period() {
    let app = limited_app(Vec::new()).await;
    app.create_user("limited", Role::Patron).await;
    let ip = client_ip();
    let post = |path: &str, body: serde_json::Value| {
        app.client
            .post(app.url(path))
            .header("x-forwarded-for", ip.clone())
            .json(&body)
            .send()
    };

    // login 5/min per IP (unknown accounts, so only the IP budget applies).
    let (n, refused) = allowed_before_429(
        async || {
            post(
                "/api/v1/auth/login",
                json!({"username": "ghost", "password": "x"}),
            )
            .await
            .unwrap()
        },
        10,
    )
    .await;
    assert_eq!(n, 5);
    assert!(
        refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    assert_eq!(refused.headers()["ratelimit-limit"], "5");
    assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    app.clock.advance(time::Duration::seconds(60));
    assert_eq!(
        post(
            "/api/v1/auth/login",
            json!({"username": "ghost", "password": "x"})
        )
        .await
        .unwrap()
        .status(),
        401,
        "reset after a minute"
    );

    // register 10/hour.
    let mut i = 0;
    let (n, _) = allowed_before_429(async || { i += 1; post("/api/v1/auth/register", json!({"email": format!("r{i}@example.org"), "username": format!("reg{i}"), "password": PASSWORD})).await.unwrap() }, 20).await;
    assert_eq!(n, 10);
    // GCRA refills one slot every period/count (6 minutes here); a full burst after a whole period.
    app.clock.advance(time::Duration::minutes(5));
    assert_eq!(
        post(
            "/api/v1/auth/register",
            json!({"email": "late@example.org", "username": "late1", "password": PASSWORD})
        )
        .await
        .unwrap()
        .status(),
        429
    );
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(
        post(
            "/api/v1/auth/register",
            json!({"email": "later@example.org", "username": "later1", "password": PASSWORD})
        )
        .await
        .unwrap()
        .status(),
        202
    );
    app.clock.advance(time::Duration::minutes(60));
    let mut j = 0;
    let (n, _) = allowed_before_429(async || { j += 1; post("/api/v1/auth/register", json!({"email": format!("again{j}@example.org"), "username": format!("again{j}"), "password": PASSWORD})).await.unwrap() }, 20).await;
    assert_eq!(n, 10, "the whole budget is back after the period");

    // password forgot 3/hour.
    let (n, _) = allowed_before_429(
        async || {
            post(
                "/api/v1/auth/password/forgot",
                json!({"email": "x@example.org"}),
            )
            .await
            .unwrap()
        },
        10,
    )
    .await;
    assert_eq!(n, 3);
    // refresh 30/min.
    let (n, _) = allowed_before_429(
        async || {
            post("/api/v1/auth/refresh", json!({"refresh_token": "nope"}))
                .await
                .unwrap()
        },
        40,
    )
    .await;
    assert_eq!(n, 30);

    // profile update 5/min and account deletion 3/hour, per user (not per IP).
    let token = app.tokens("limited", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (n, _) = allowed_before_429(
        async || {
            app.authed(Method::PATCH, "/api/v1/users/me", &token)
                .json(&json!({"full_name": "X"}))
                .send()
                .await
                .unwrap()
        },
        10,
    )
    .await;
    assert_eq!(n, 5);
    let (n, _) = allowed_before_429(
        async || {
            app.authed(Method::DELETE, "/api/v1/users/me", &token)
                .json(&json!({"password": "Wrong-Password-1"}))
                .send()
                .await
                .unwrap()
        },
        10,
    )
    .await;
    assert_eq!(n, 3);
    let limits: Vec<String> = app
        .state
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("rate_limit_rejections_total"))
        .map(str::to_owned)
        .collect();
    for name in [
        "login",
        "register",
        "password_forgot",
        "refresh",
        "profile_update",
        "account_deletion",
    ] {
        assert!(
            limits
                .iter()
                .any(|l| l.contains(&format!("limit=\"{name}\""))),
            "{name} rejections are counted: {limits:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catch_all_covers_every_route_with_headers() {
    let app = limited_app(vec![("CARREL_RATE_LIMIT_GLOBAL", "20/min".into())]).await;
    let ip = client_ip();
    let first = app
        .client
        .get(app.url("/api/v1/items"))
        .header("x-forwarded-for", ip.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(first.headers()["ratelimit-limit"], "20");
    assert_eq!(first.headers()["ratelimit-remaining"], "19");
    assert!(
        first.headers()["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            <= 60
    );
    let paths = ["/health", "/nowhere", "/api/v1/items", "/docs/", "/metrics"];
    let mut k = 0;
    let (n, refused) = allowed_before_429(
        async || {
            k += 1;
            app.client
                .get(app.url(paths[k % paths.len()]))
                .header("x-forwarded-for", ip.clone())
                .send()
                .await
                .unwrap()
        },
        40,
    )
    .await;
    assert_eq!(n, 19);
    assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    app.clock.advance(time::Duration::seconds(3));
    assert_eq!(
        app.client
            .get(app.url("/health"))
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "one slot refills every 3 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // No trusted proxies: a client rotating fake X-Forwarded-For values still has one budget.
    let untrusted = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![
                ("CARREL_RATE_LIMITS_ENABLED", "true".into()),
                ("CARREL_RATE_LIMIT_GLOBAL", "10/min".into()),
            ],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (n, _) = allowed_before_429(
        async || {
            untrusted
                .client
                .get(untrusted.url("/health"))
                .header("x-forwarded-for", client_ip())
                .send()
                .await
                .unwrap()
        },
        20,
    )
    .await;
    assert_eq!(n, 10, "spoofed headers change nothing");

    // 127.0.0.1 trusted: each forwarded client has its own budget, and a
    // client-supplied left part of the chain is ignored.
    let trusted = limited_app(vec![("CARREL_RATE_LIMIT_GLOBAL", "10/min".into())]).await;
    let real = client_ip();
    let (n, _) = allowed_before_429(
        async || {
            trusted
                .client
                .get(trusted.url("/health"))
                .header("x-forwarded-for", format!("{}, {real}", client_ip()))
                .send()
                .await
                .unwrap()
        },
        20,
    )
    .await;
    assert_eq!(n, 10);
    let other = trusted
        .client
        .get(trusted.url("/health"))
        .header("x-forwarded-for", client_ip())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "another client is not affected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_be_hammered_from_many_addresses() {
    let app = limited_app(vec![("CARREL_LOCKOUT_THRESHOLD", "100".into())]).await;
    let victim = app.create_user("victim", Role::Patron).await;
    let (n, refused) = allowed_before_429(
        async || {
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("x-forwarded-for", client_ip())
                .json(&json!({"username": "victim", "password": "Guess-123-abc"}))
                .send()
                .await
                .unwrap()
        },
        10,
    )
    .await;
    assert_eq!(
        n, 5,
        "5 per minute per target account, whatever the address"
    );
    assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    let events = app.audit_events("auth.login_rate_limited").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].subject_id, Some(victim.id));
    app.clock.advance(time::Duration::seconds(60));
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", client_ip())
        .json(&json!({"username": "victim", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the owner gets in once the window has passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_can_be_switched_off() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![("CARREL_RATE_LIMIT_GLOBAL", "2/min".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for _ in 0..5 {
        let response = app.get("/health").await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("ratelimit-limit").is_none());
    }
}

fn redis_url() -> Option<String> {
    let url = std::env::var(REDIS_VAR).ok();
    if url.is_none() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: {REDIS_VAR} is not set: the Redis rate-limit tests are SKIPPED"
        );
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_redis_share_one_budget() {
    let Some(url) = redis_url() else { return };
    let a = limited_app(vec![
        ("CARREL_REDIS_URL", url.clone()),
        ("CARREL_RATE_LIMIT_GLOBAL", "6/min".into()),
    ])
    .await;
    let b = limited_app(vec![
        ("CARREL_REDIS_URL", url),
        ("CARREL_RATE_LIMIT_GLOBAL", "6/min".into()),
    ])
    .await;
    let ip = client_ip();
    for _ in 0..4 {
        assert_eq!(
            a.client
                .get(a.url("/health"))
                .header("x-forwarded-for", ip.clone())
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(a.state.limits.backend(), "redis");
    for _ in 0..2 {
        assert_eq!(
            b.client
                .get(b.url("/health"))
                .header("x-forwarded-for", ip.clone())
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_error(
        b.client
            .get(b.url("/health"))
            .header("x-forwarded-for", ip.clone())
            .send()
            .await
            .unwrap(),
        429,
        "RATE_LIMIT_EXCEEDED",
    )
    .await;
    assert_error(
        a.client
            .get(a.url("/health"))
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap(),
        429,
        "RATE_LIMIT_EXCEEDED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_never_produces_500s() {
    let Some(url) = redis_url() else { return };
    let parsed = url::Url::parse(&url).unwrap();
    let proxy = CuttableProxy::start(format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(6379)
    ))
    .await;
    let app = limited_app(vec![
        (
            "CARREL_REDIS_URL",
            format!("redis://127.0.0.1:{}", proxy.addr.port()),
        ),
        ("CARREL_RATE_LIMIT_GLOBAL", "50/min".into()),
    ])
    .await;
    let ip = client_ip();
    let get = || {
        app.client
            .get(app.url("/health"))
            .header("x-forwarded-for", ip.clone())
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(app.state.limits.backend(), "redis");
    proxy.cut();
    for _ in 0..5 {
        let response = get().await.unwrap();
        assert_eq!(response.status(), 200, "falls back to the in-process store");
        assert!(response.headers().get("ratelimit-limit").is_some());
    }
    assert_eq!(app.state.limits.backend(), "memory");
    proxy.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.state.limits.backend() != "redis" && std::time::Instant::now() < deadline {
        assert_eq!(get().await.unwrap().status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.state.limits.backend(),
        "redis",
        "recovers when Redis returns"
    );
}
