//! Findings of the outside security review (issue 12), each pinned by a test:
//! lockout that half a sign-in cannot reset, parallel right-password logins,
//! login outcomes that do not leak (metrics, per-identifier limits), the one
//! believed client-IP header and IPv6 /64 keys, strict session-list queries,
//! and reset links that die with a password change.

use std::net::Ipv4Addr;

use carrel_core::roles::Role;
use carrel_store::Backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, Spawn, TestApp, assert_error, backend_tests, backend_tests_with, stable_error_body,
};
use crate::mfa::{enrol, mfa_login, verify};

backend_tests!(
    wrong_codes_after_right_passwords_lock_the_account,
    disabling_mfa_with_the_right_password_still_counts_wrong_codes,
    every_wrong_secret_counts_and_only_a_sign_in_resets,
    parallel_right_password_logins_all_succeed,
    parallel_wrong_passwords_lock_after_exactly_the_threshold,
    session_list_accepts_only_limit_and_cursor,
    a_reset_link_dies_with_a_password_change,
    an_older_link_dies_with_a_reset,
    failed_checks_are_padded_to_the_legacy_hashes_stored,
);

backend_tests_with!(
    vec![
        ("CARREL_RATE_LIMITS_ENABLED", "true".into()),
        ("CARREL_TRUSTED_PROXIES", "127.0.0.1/32".into()),
    ] => unknown_and_known_names_share_the_same_login_limit,
);

const WRONG: &str = "Wrong-Password-1!";

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn failed_logins(app: &TestApp, username: &str) -> i32 {
    app.state
        .store
        .find_user_by_login(username)
        .await
        .unwrap()
        .unwrap()
        .failed_logins
}

/// Lockout: a right password is half a sign-in when a code must follow.
async fn wrong_codes_after_right_passwords_lock_the_account(app: TestApp) {
    app.create_user("twofactor", Role::Patron).await;
    let token = app.access_token("twofactor").await;
    enrol(&app, &token).await;
    for round in 1..=5 {
        let mfa_token = mfa_login(&app, "twofactor").await;
        assert_error(
            verify(&app, &mfa_token, json!({"code": "000000"})).await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
        assert_eq!(
            failed_logins(&app, "twofactor").await,
            round,
            "round {round}"
        );
    }
    // Locked: even the right password is refused now.
    assert_error(
        app.login("twofactor", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(app.audit_events("auth.locked").await.len(), 1);
}

async fn disabling_mfa_with_the_right_password_still_counts_wrong_codes(app: TestApp) {
    app.create_user("disabler", Role::Patron).await;
    let token = app.access_token("disabler").await;
    enrol(&app, &token).await;
    for _ in 0..5 {
        let response = app
            .authed(Method::POST, "/api/v1/auth/mfa/totp/disable", &token)
            .json(&json!({"password": PASSWORD, "code": "000000"}))
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "INVALID_CREDENTIALS").await;
    }
    assert_error(
        app.login("disabler", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let response = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/disable", &token)
        .json(&json!({"password": PASSWORD, "code": "000000"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "INVALID_CREDENTIALS").await;
}

/// Wrong current passwords (change, delete) and wrong confirm codes count; a
/// right re-entered password does not clear the count, a completed sign-in does.
async fn every_wrong_secret_counts_and_only_a_sign_in_resets(app: TestApp) {
    app.create_user("counted", Role::Patron).await;
    let token = app.access_token("counted").await;
    let change = |current: &'static str| {
        app.authed(Method::POST, "/api/v1/auth/password/change", &token)
            .json(&json!({"current_password": current, "new_password": "Fresh-Meadow-Tundra-77"}))
            .send()
    };
    assert_error(change(WRONG).await.unwrap(), 401, "INVALID_CREDENTIALS").await;
    let delete = app
        .authed(Method::DELETE, "/api/v1/users/me", &token)
        .json(&json!({"password": WRONG}))
        .send()
        .await
        .unwrap();
    assert_error(delete, 401, "INVALID_CREDENTIALS").await;
    app.authed(Method::POST, "/api/v1/auth/mfa/totp/setup", &token)
        .send()
        .await
        .unwrap();
    let confirm = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/confirm", &token)
        .json(&json!({"code": "000000"}))
        .send()
        .await
        .unwrap();
    assert_error(confirm, 401, "INVALID_CREDENTIALS").await;
    assert_eq!(failed_logins(&app, "counted").await, 3);
    // A right password re-entered for a sensitive action is not a sign-in.
    let weak = app
        .authed(Method::POST, "/api/v1/auth/password/change", &token)
        .json(&json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 422);
    assert_eq!(failed_logins(&app, "counted").await, 3);
    assert_eq!(app.login("counted", PASSWORD).await.status(), 200);
    assert_eq!(failed_logins(&app, "counted").await, 0);
}

async fn parallel_right_password_logins_all_succeed(app: TestApp) {
    let user = app.create_user("popular", Role::Patron).await;
    let attempts: Vec<_> = (0..32)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/login");
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({"username": "popular", "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                (status, body)
            })
        })
        .collect();
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(failed_logins(&app, "popular").await, 0);
    assert!(app.audit_events("auth.locked").await.is_empty());
    let sessions = app
        .state
        .store
        .list_sessions(user.id, app.clock.now())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 32);
}

async fn parallel_wrong_passwords_lock_after_exactly_the_threshold(app: TestApp) {
    let user = app.create_user("guessed", Role::Patron).await;
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/login");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"username": "guessed", "password": format!("Guess-{i}-xyz!")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), 401);
    }
    let failures = app.audit_events("auth.login_failed").await;
    let checked = failures
        .iter()
        .filter(|e| e.details.0["reason"] == "wrong_password")
        .count();
    let refused = failures
        .iter()
        .filter(|e| e.details.0["reason"] == "locked")
        .count();
    assert_eq!(checked, 5, "exactly the threshold of guesses was checked");
    assert_eq!(refused, 15, "the rest waited and found the account locked");
    let locks = app.audit_events("auth.locked").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].subject_id, Some(user.id));
    assert_eq!(failed_logins(&app, "guessed").await, 5);
    assert_error(
        app.login("guessed", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}

async fn session_list_accepts_only_limit_and_cursor(app: TestApp) {
    app.create_user("sessions", Role::Patron).await;
    let mut token = String::new();
    for _ in 0..3 {
        token = app.access_token("sessions").await;
        // Distinct creation times, so the order is certain.
        app.clock.advance(time::Duration::seconds(1));
    }
    for query in [
        "?foo=1",
        "?limit=2&status=all",
        "?user_id=x",
        "?limit=0",
        "?limit=101",
        "?cursor=nope",
    ] {
        let response = app
            .authed(
                Method::GET,
                &format!("/api/v1/auth/sessions{query}"),
                &token,
            )
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "VALIDATION_ERROR").await;
    }
    let first: Value = app
        .authed(Method::GET, "/api/v1/auth/sessions?limit=2", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["data"][0]["current"], true, "newest first");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second: Value = app
        .authed(
            Method::GET,
            &format!("/api/v1/auth/sessions?limit=2&cursor={cursor}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["data"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["next_cursor"], Value::Null);
    let all: Value = app
        .authed(Method::GET, "/api/v1/auth/sessions", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
}

async fn a_reset_link_dies_with_a_password_change(app: TestApp) {
    let user = app.create_user("changer", Role::Patron).await;
    post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": user.email}),
    )
    .await;
    let link = app.mailed_token(&user.email, "Reset your password").await;
    let token = app.access_token("changer").await;
    let changed = app
        .authed(Method::POST, "/api/v1/auth/password/change", &token)
        .json(&json!({"current_password": PASSWORD, "new_password": "Fresh-Meadow-Tundra-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let reset = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": link, "new_password": "Other-Glacier-Pepper-31"}),
    )
    .await;
    assert_error(reset, 400, "VALIDATION_ERROR").await;
    assert_eq!(
        app.login("changer", "Fresh-Meadow-Tundra-77")
            .await
            .status(),
        200
    );
}

async fn an_older_link_dies_with_a_reset(app: TestApp) {
    let staff = app.create_user("desk", Role::Librarian).await;
    let staff_token = app.access_token(&staff.username).await;
    let created = app
        .authed(Method::POST, "/api/v1/users", &staff_token)
        .json(&json!({"email": "invited@example.org", "username": "invited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let invitation = app
        .mailed_token("invited@example.org", "You have been invited")
        .await;
    post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": "invited@example.org"}),
    )
    .await;
    let reset_link = app
        .mailed_token("invited@example.org", "Reset your password")
        .await;
    let accepted = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": invitation, "new_password": "Fresh-Meadow-Tundra-77"}),
    )
    .await;
    assert_eq!(accepted.status(), 204);
    let late = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": reset_link, "new_password": "Other-Glacier-Pepper-31"}),
    )
    .await;
    assert_error(late, 400, "VALIDATION_ERROR").await;
    assert_eq!(
        app.login("invited", "Fresh-Meadow-Tundra-77")
            .await
            .status(),
        200
    );
}

/// A unique private client address per call (believed from 127.0.0.1, a trusted proxy).
fn client_ip() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8).to_string()
}

/// The observable answers to 7 wrong logins for `names` (taken in turn), sent
/// from two client addresses in turn.
async fn login_answers(app: &TestApp, names: [&str; 2]) -> Vec<(u16, String, String)> {
    let ips = [client_ip(), client_ip()];
    let mut answers = Vec::new();
    for i in 0..7 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ips[i % 2].clone())
            .json(&json!({"username": names[i % 2], "password": WRONG}))
            .send()
            .await
            .unwrap();
        let remaining = response
            .headers()
            .get("ratelimit-remaining")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let (status, body) = stable_error_body(response).await;
        // Seconds to wait depend on when the request came, not on who was named.
        let mut body: Value = serde_json::from_str(&body).unwrap();
        if let Some(details) = body["details"].as_object_mut() {
            details.remove("retry_after_seconds");
        }
        answers.push((status, remaining, body.to_string()));
    }
    answers
}

async fn unknown_and_known_names_share_the_same_login_limit(app: TestApp) {
    app.create_user("victim", Role::Patron).await;
    let known = login_answers(&app, ["victim", " VICTIM "]).await;
    let unknown = login_answers(&app, ["nobody-at-all", "Nobody-At-All "]).await;
    assert_eq!(known, unknown);
    let statuses: Vec<u16> = known.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    let remaining: Vec<&str> = known.iter().map(|a| a.1.as_str()).collect();
    assert_eq!(remaining, ["4", "3", "2", "1", "0", "0", "0"]);
}

async fn limited_app(extra: Vec<(&'static str, String)>) -> TestApp {
    let mut env = vec![
        ("CARREL_RATE_LIMITS_ENABLED", "true".to_owned()),
        ("CARREL_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
        ("CARREL_RATE_LIMIT_GLOBAL", "10/min".to_owned()),
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

/// Requests until the first 429 (at most 20); how many got through.
async fn allowed(app: &TestApp, headers: impl Fn() -> Vec<(&'static str, String)>) -> usize {
    for i in 0..20 {
        let mut request = app.client.get(app.url("/health"));
        for (name, value) in headers() {
            request = request.header(name, value);
        }
        if request.send().await.unwrap().status() == 429 {
            return i;
        }
    }
    20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_choose_its_address_with_another_forwarding_header() {
    let app = limited_app(Vec::new()).await;
    let real = client_ip();
    // The proxy sets X-Forwarded-For; the client adds headers of its choosing.
    let n = allowed(&app, || {
        vec![
            ("x-forwarded-for", real.clone()),
            ("forwarded", format!("for={}", client_ip())),
            ("x-real-ip", client_ip()),
        ]
    })
    .await;
    assert_eq!(n, 10, "one budget for the one real client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_header_is_believed() {
    for (header, believed) in [("forwarded", "forwarded"), ("x-real-ip", "x-real-ip")] {
        let app = limited_app(vec![("CARREL_CLIENT_IP_HEADER", header.to_owned())]).await;
        let real = client_ip();
        let n = allowed(&app, || {
            let believed_value = if believed == "forwarded" {
                format!("for=\"{real}:4711\"")
            } else {
                real.clone()
            };
            vec![(believed, believed_value), ("x-forwarded-for", client_ip())]
        })
        .await;
        assert_eq!(n, 10, "{header}: X-Forwarded-For is ignored");
        let other = app
            .client
            .get(app.url("/health"))
            .header(
                believed,
                if believed == "forwarded" {
                    format!("for={}", client_ip())
                } else {
                    client_ip()
                },
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            other.status(),
            200,
            "{header}: another client is not affected"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_are_limited_by_their_64() {
    let app = limited_app(Vec::new()).await;
    let prefix = uuid::Uuid::new_v4().as_u128() & !((1u128 << 64) - 1);
    let n = allowed(&app, || {
        let host = uuid::Uuid::new_v4().as_u128() & ((1u128 << 64) - 1);
        vec![(
            "x-forwarded-for",
            std::net::Ipv6Addr::from(prefix | host).to_string(),
        )]
    })
    .await;
    assert_eq!(n, 10, "every address of one /64 shares a budget");
    let neighbour = std::net::Ipv6Addr::from(prefix.wrapping_add(1u128 << 64) | 1);
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-forwarded-for", neighbour.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the next /64 is another client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_metrics_never_say_why_a_login_failed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.create_user("metered", Role::Patron).await;
    app.login("no-such-name", WRONG).await;
    for _ in 0..5 {
        app.login("metered", WRONG).await;
    }
    app.login("metered", PASSWORD).await; // locked
    let text = app.get("/metrics").await.text().await.unwrap();
    let logins: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("auth_logins_total"))
        .collect();
    assert!(
        logins.iter().any(|l| l.contains("outcome=\"failure\"")),
        "{logins:?}"
    );
    for line in logins {
        assert!(
            line.contains("outcome=\"failure\"") || line.contains("outcome=\"success\""),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_move_to_their_own_listener() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![("CARREL_METRICS_BIND", "127.0.0.1:0".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_error(app.get("/metrics").await, 404, "RESOURCE_NOT_FOUND").await;
    let (address, task) =
        carrel_server::startup::spawn_metrics_listener(&app.state, std::future::pending())
            .await
            .unwrap()
            .expect("a metrics listener");
    let metrics = app
        .client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let other = app
        .client
        .get(format!("http://{address}/api/v1/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );
    task.abort();
}

/// The server finds the legacy hash kinds in the database and pads failed
/// checks to them; once those accounts are upgraded, nothing is padded.
async fn failed_checks_are_padded_to_the_legacy_hashes_stored(app: TestApp) {
    use carrel_server::auth::passwords::calibrate_from_store;
    app.create_user("native", Role::Patron).await;
    calibrate_from_store(&app.state).await.unwrap();
    assert_eq!(app.state.hasher.failure_floor(), std::time::Duration::ZERO);
    for (name, hash) in [
        ("legacy_b", bcrypt::hash(PASSWORD, 6).unwrap()),
        ("legacy_c", bcrypt::hash(PASSWORD, 5).unwrap()),
    ] {
        app.state
            .store
            .create_user(&carrel_store::NewUser {
                id: uuid::Uuid::now_v7(),
                email: format!("{name}@example.org"),
                email_key: format!("{name}@example.org"),
                username: name.into(),
                username_key: name.into(),
                full_name: None,
                role: carrel_core::roles::Role::Patron,
                password_hash: Some(hash),
                email_verified: true,
                card_number: None,
                category: None,
                now: app.clock.now(),
            })
            .await
            .unwrap();
    }
    calibrate_from_store(&app.state).await.unwrap();
    let floor = app.state.hasher.failure_floor();
    assert!(floor > std::time::Duration::ZERO);
    let start = std::time::Instant::now();
    assert_error(
        app.login("nobody-at-all", WRONG).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert!(
        start.elapsed() >= floor,
        "an unknown name fails no faster than the floor"
    );
    // Logging in upgrades both accounts; the next calibration forgets bcrypt.
    for name in ["legacy_b", "legacy_c"] {
        assert_eq!(app.login(name, PASSWORD).await.status(), 200);
    }
    calibrate_from_store(&app.state).await.unwrap();
    assert_eq!(app.state.hasher.failure_floor(), std::time::Duration::ZERO);

    // The server's background task (`carrel serve` starts it) calibrates at
    // once, then every five minutes: a legacy hash imported now is found.
    app.state
        .store
        .create_user(&carrel_store::NewUser {
            id: uuid::Uuid::now_v7(),
            email: "legacy_d@example.org".into(),
            email_key: "legacy_d@example.org".into(),
            username: "legacy_d".into(),
            username_key: "legacy_d".into(),
            full_name: None,
            role: carrel_core::roles::Role::Patron,
            password_hash: Some(bcrypt::hash(PASSWORD, 5).unwrap()),
            email_verified: true,
            card_number: None,
            category: None,
            now: app.clock.now(),
        })
        .await
        .unwrap();
    let task = carrel_server::auth::passwords::spawn_calibration(app.state.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.state.hasher.failure_floor() == std::time::Duration::ZERO {
        assert!(
            std::time::Instant::now() < deadline,
            "the background calibration never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
}
