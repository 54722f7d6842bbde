//! Access tokens, refresh rotation, logout, sessions, cookie mode and CSRF.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error, backend_tests, exec_sql};

backend_tests!(
    forged_expired_and_foreign_tokens_are_refused,
    refresh_rotates_and_reuse_kills_the_session,
    concurrent_refreshes_with_one_token_never_both_succeed,
    logout_and_session_management,
    cookie_mode_with_csrf,
    jwks_publishes_the_signing_key,
    account_state_is_read_on_every_request,
    a_device_name_is_trimmed_capped_and_listed,
);

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.authed(Method::GET, "/api/v1/users/me", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn forged_expired_and_foreign_tokens_are_refused(app: TestApp) {
    let user = app.create_user("tokens", Role::Patron).await;
    let token = app.access_token("tokens").await;
    assert_eq!(me_status(&app, &token).await, 200);
    let parts: Vec<&str> = token.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], user.id.to_string());
    assert_eq!(claims["role"], "patron");
    for claim in ["sid", "iat", "exp", "iss", "aud"] {
        assert!(claims.get(claim).is_some(), "{claim}");
    }

    // alg=none with our claims.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    // Claims escalated to admin, signature kept.
    let mut admin = claims.clone();
    admin["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&admin), parts[2]);
    // A validly signed token from a key the server does not know.
    let foreign_keys =
        carrel_crypto::JwtKeys::generate(&app.state.config.token_issuer(), "carrel-api");
    let mut foreign_claims: carrel_crypto::AccessClaims =
        serde_json::from_value(claims.clone()).unwrap();
    let foreign = foreign_keys.sign(&foreign_claims).unwrap();
    // Signed by us but for another audience.
    foreign_claims.aud = "someone-else".into();
    let wrong_audience = app.state.jwt.sign(&foreign_claims).unwrap();
    for (_case, bad) in [
        ("none", none),
        ("tampered", tampered),
        ("foreign", foreign),
        ("audience", wrong_audience),
        ("garbage", "a.b.c".into()),
    ] {
        let response = app
            .authed(Method::GET, "/api/v1/users/me", &bad)
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "UNAUTHORIZED").await;
    }
    let response = app
        .client
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "UNAUTHORIZED").await;

    // Expiry: 15 minutes (the exact no-leeway boundary is tested in carrel-crypto;
    // real seconds pass during this test, so step clearly to either side of it).
    app.clock.advance(time::Duration::seconds(880));
    assert_eq!(me_status(&app, &token).await, 200);
    app.clock.advance(time::Duration::seconds(20));
    assert_eq!(me_status(&app, &token).await, 401);
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn refresh_rotates_and_reuse_kills_the_session(app: TestApp) {
    let user = app.create_user("rotator", Role::Patron).await;
    let first = app.tokens("rotator", PASSWORD).await;
    let old_refresh = first["refresh_token"].as_str().unwrap();
    let response = refresh(&app, old_refresh).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["session_id"], first["session_id"]);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(me_status(&app, access).await, 200);

    // The old token comes back: the whole session dies, including the new tokens.
    assert_error(refresh(&app, old_refresh).await, 401, "UNAUTHORIZED").await;
    assert_eq!(me_status(&app, access).await, 401);
    assert_error(
        refresh(&app, second["refresh_token"].as_str().unwrap()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let reuse = app.audit_events("auth.refresh_reuse_detected").await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0].subject_id, Some(user.id));
    assert_error(refresh(&app, "never-issued").await, 401, "UNAUTHORIZED").await;

    // Refresh tokens expire after 30 days without use.
    let third = app.tokens("rotator", PASSWORD).await;
    app.clock.advance(time::Duration::days(31));
    assert_error(
        refresh(&app, third["refresh_token"].as_str().unwrap()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

async fn concurrent_refreshes_with_one_token_never_both_succeed(app: TestApp) {
    app.create_user("racer", Role::Patron).await;
    let tokens = app.tokens("racer", PASSWORD).await;
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, token) = (
                app.client.clone(),
                app.url("/api/v1/auth/refresh"),
                token.clone(),
            );
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401));
}

async fn logout_and_session_management(app: TestApp) {
    app.create_user("sessions", Role::Patron).await;
    app.create_user("other", Role::Patron).await;
    let a = app.tokens("sessions", PASSWORD).await;
    let b = app.tokens("sessions", PASSWORD).await;
    let c = app.tokens("sessions", PASSWORD).await;
    let token_a = a["access_token"].as_str().unwrap();
    let list: Value = app
        .authed(Method::GET, "/api/v1/auth/sessions", token_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert!(list["next_cursor"].is_null());
    assert_eq!(data.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(data.iter().all(|s| s.get("refresh_token").is_none()));

    // Revoke session b from a.
    let response = app
        .authed(
            Method::DELETE,
            &format!(
                "/api/v1/auth/sessions/{}",
                b["session_id"].as_str().unwrap()
            ),
            token_a,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        me_status(&app, b["access_token"].as_str().unwrap()).await,
        401
    );
    // Someone else's session is not found.
    let theirs = app.tokens("other", PASSWORD).await;
    let response = app
        .authed(
            Method::DELETE,
            &format!(
                "/api/v1/auth/sessions/{}",
                theirs["session_id"].as_str().unwrap()
            ),
            token_a,
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(
        me_status(&app, theirs["access_token"].as_str().unwrap()).await,
        200
    );

    // Logout kills the access token at once.
    assert_eq!(
        app.authed(Method::POST, "/api/v1/auth/logout", token_a)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(me_status(&app, token_a).await, 401);
    assert_eq!(
        me_status(&app, c["access_token"].as_str().unwrap()).await,
        200
    );
    // Logout-all kills the rest.
    assert_eq!(
        app.authed(
            Method::POST,
            "/api/v1/auth/logout-all",
            c["access_token"].as_str().unwrap()
        )
        .send()
        .await
        .unwrap()
        .status(),
        204
    );
    assert_eq!(
        me_status(&app, c["access_token"].as_str().unwrap()).await,
        401
    );
    assert_error(
        refresh(&app, c["refresh_token"].as_str().unwrap()).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

fn cookie_header(response: &reqwest::Response) -> (String, Vec<String>) {
    let set: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let jar = set
        .iter()
        .filter_map(|c| c.split(';').next())
        .filter(|kv| !kv.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ");
    (jar, set)
}

fn cookie_value(jar: &str, name: &str) -> String {
    jar.split("; ")
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

async fn cookie_mode_with_csrf(app: TestApp) {
    app.create_user("browser", Role::Patron).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "browser", "password": PASSWORD, "use_cookies": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (jar, set) = cookie_header(&response);
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("access_token").is_none() && body.get("refresh_token").is_none(),
        "no tokens in the body"
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let find = |name: &str| {
        set.iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let (access, refresh_cookie, csrf_cookie) = (
        find("carrel_access"),
        find("carrel_refresh"),
        find("carrel_csrf"),
    );
    for cookie in [&access, &refresh_cookie] {
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Strict")
                && cookie.contains("Secure"),
            "{cookie}"
        );
    }
    assert!(
        refresh_cookie.contains("Path=/api/v1/auth"),
        "{refresh_cookie}"
    );
    assert!(
        !csrf_cookie.contains("HttpOnly"),
        "the CSRF cookie is readable: {csrf_cookie}"
    );
    assert_eq!(cookie_value(&jar, "carrel_csrf"), csrf);

    let with_cookies = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("cookie", jar.clone())
    };
    assert_eq!(
        with_cookies(Method::GET, "/api/v1/users/me")
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "safe methods need no CSRF token"
    );

    // Unsafe requests: no token, a wrong token, a token of another session, a foreign origin.
    assert_error(
        with_cookies(Method::PATCH, "/api/v1/users/me")
            .json(&json!({"full_name": "X"}))
            .send()
            .await
            .unwrap(),
        403,
        "CSRF_FAILED",
    )
    .await;
    assert_error(
        with_cookies(Method::PATCH, "/api/v1/users/me")
            .header("x-csrf-token", "wrong")
            .json(&json!({"full_name": "X"}))
            .send()
            .await
            .unwrap(),
        403,
        "CSRF_FAILED",
    )
    .await;
    let other = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "browser", "password": PASSWORD, "use_cookies": true}))
        .send()
        .await
        .unwrap();
    let other_csrf = other.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged_jar = jar.replace(&csrf, &other_csrf);
    let response = app
        .client
        .patch(app.url("/api/v1/users/me"))
        .header("cookie", forged_jar)
        .header("x-csrf-token", &other_csrf)
        .json(&json!({"full_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "CSRF_FAILED").await;
    let response = with_cookies(Method::PATCH, "/api/v1/users/me")
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .json(&json!({"full_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "CSRF_FAILED").await;

    let response = with_cookies(Method::PATCH, "/api/v1/users/me")
        .header("x-csrf-token", &csrf)
        .header("origin", app.state.config.own_origin())
        .json(&json!({"full_name": "Cookie Person"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Bearer clients need no CSRF token.
    let token = app.access_token("browser").await;
    assert_eq!(
        app.authed(Method::PATCH, "/api/v1/users/me", &token)
            .json(&json!({"full_name": "Bearer"}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Cookie refresh needs the CSRF token too, then rotates the cookies.
    let refresh_without = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", jar.clone())
        .send()
        .await
        .unwrap();
    assert_error(refresh_without, 403, "CSRF_FAILED").await;
    let refreshed = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", jar.clone())
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let (new_jar, _) = cookie_header(&refreshed);
    assert_ne!(
        cookie_value(&new_jar, "carrel_refresh"),
        cookie_value(&jar, "carrel_refresh")
    );

    // Logout needs it as well, and clears the cookies.
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", new_jar.clone())
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "CSRF_FAILED").await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("cookie", new_jar.clone())
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("carrel_access=;"))
    );
    let response = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("cookie", new_jar)
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "UNAUTHORIZED").await;
}

async fn jwks_publishes_the_signing_key(app: TestApp) {
    app.create_user("jwks", Role::Patron).await;
    let token = app.access_token("jwks").await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is published");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert!(key.get("d").is_none(), "no private key material");
}

async fn me_json(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app
        .authed(Method::GET, "/api/v1/users/me", token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The account comes from the database with the session on every request, not
/// from the token or an earlier request: changes made behind the API's back
/// (no session revoked) take effect for a still-valid access token at once.
async fn account_state_is_read_on_every_request(app: TestApp) {
    app.create_user("stale", Role::Patron).await;
    let token = app.access_token("stale").await;
    let (status, body) = me_json(&app, &token).await;
    assert_eq!((status, &body["full_name"]), (200, &json!("stale Tester")));

    exec_sql(
        &app,
        "UPDATE users SET full_name = 'Renamed' WHERE username = 'stale'",
    )
    .await;
    assert_eq!(me_json(&app, &token).await.1["full_name"], "Renamed");

    // Deactivated without revoking its sessions: refused, and back once reactivated.
    exec_sql(
        &app,
        "UPDATE users SET is_active = FALSE WHERE username = 'stale'",
    )
    .await;
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &token)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    exec_sql(
        &app,
        "UPDATE users SET is_active = TRUE WHERE username = 'stale'",
    )
    .await;
    assert_eq!(me_status(&app, &token).await, 200);

    // The role is the database's, not the token's (which still says patron).
    let staff_only = || app.authed(Method::GET, "/api/v1/users", &token).send();
    assert_eq!(staff_only().await.unwrap().status(), 403);
    exec_sql(
        &app,
        "UPDATE users SET role = 'librarian' WHERE username = 'stale'",
    )
    .await;
    assert_eq!(me_json(&app, &token).await.1["role"], "librarian");
    assert_eq!(staff_only().await.unwrap().status(), 200);
}

/// `device_name` at login names the session in `GET /auth/sessions`: trimmed,
/// cut to 100 characters, and none when blank.
async fn a_device_name_is_trimmed_capped_and_listed(app: TestApp) {
    app.create_user("named", Role::Patron).await;
    let long = "x".repeat(150);
    let mut token = String::new();
    for name in ["  Front desk PC  ", long.as_str(), "   "] {
        let response = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "named", "password": PASSWORD, "device_name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        token = body["access_token"].as_str().unwrap().to_owned();
    }
    let listed: Value = app
        .authed(Method::GET, "/api/v1/auth/sessions", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["device_name"].clone())
        .collect();
    let mut expected = vec![json!("Front desk PC"), json!("x".repeat(100)), Value::Null];
    names.sort_by_key(|v| v.to_string());
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(names, expected, "{listed}");
}
