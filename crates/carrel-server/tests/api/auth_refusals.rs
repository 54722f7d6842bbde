//! Refusals and edge paths of sign-in: how credentials are presented, CSRF and
//! allowed origins, refresh without a usable token, session revocation, the
//! throttled last-use record, MFA steps out of order, sealed TOTP secrets that
//! do not open, MFA in cookie mode, who may reset someone's MFA, MFA on a
//! locked account, concurrent answers to one challenge, re-sent verification
//! mail, and a reset token spent twice at once.

use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder};

use crate::helpers::{
    PASSWORD, TestApp, assert_error, backend_tests, backend_tests_with, exec_sql,
};

backend_tests!(
    credentials_are_read_only_from_a_bearer_header_or_the_access_cookie,
    refresh_without_a_usable_token_is_refused,
    only_own_live_sessions_can_be_revoked,
    last_use_is_recorded_at_most_once_a_minute,
    mfa_steps_out_of_order_are_conflicts,
    a_sealed_secret_moved_to_another_account_does_not_open,
    mfa_login_in_cookie_mode_sets_the_session_cookies,
    staff_mfa_reset_follows_who_may_manage_whom,
    a_locked_account_cannot_pass_the_second_step,
    one_challenge_yields_one_session_under_concurrent_answers,
    resend_verification_mails_only_unverified_live_accounts,
    a_reset_token_spent_concurrently_works_once,
);

backend_tests_with!(vec![("CARREL_CORS_ORIGINS", "https://app.example".into())] =>
    csrf_endpoint_and_configured_origins,
);

fn totp_code(secret_b32: &str, app: &TestApp) -> String {
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret_b32).unwrap();
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant();
    let now = app.clock.now_precise().unix_timestamp();
    totp.generate(u64::try_from(now).unwrap()).to_string()
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.authed(Method::POST, path, token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn setup_secret(app: &TestApp, token: &str) -> String {
    let response = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/setup", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sets up and confirms TOTP; returns the secret.
async fn enrol(app: &TestApp, token: &str) -> String {
    let secret = setup_secret(app, token).await;
    let code = totp_code(&secret, app);
    let response = post(
        app,
        "/api/v1/auth/mfa/totp/confirm",
        token,
        json!({"code": code}),
    )
    .await;
    assert_eq!(response.status(), 200);
    // The confirming code's step is spent; later codes come from the next step.
    app.clock.advance(time::Duration::seconds(30));
    secret
}

/// The `mfa_token` of a password login that needs a second step.
async fn mfa_challenge(app: &TestApp, username: &str, use_cookies: bool) -> String {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD, "use_cookies": use_cookies}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn mfa_verify(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/mfa/verify"))
        .json(&json!({"mfa_token": mfa_token, "code": code}))
        .send()
        .await
        .unwrap()
}

/// `name=value; ...` of the cookies a response sets (expired ones left out).
fn cookie_jar(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().unwrap().split(';').next().map(str::to_owned))
        .filter(|kv| !kv.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

fn cookie_value(jar: &str, name: &str) -> Option<String> {
    jar.split("; ")
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

async fn cookie_login(app: &TestApp, username: &str) -> (String, String) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD, "use_cookies": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jar = cookie_jar(&response);
    let csrf = response.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (jar, csrf)
}

async fn credentials_are_read_only_from_a_bearer_header_or_the_access_cookie(app: TestApp) {
    app.create_user("presenter", Role::Patron).await;
    let token = app.access_token("presenter").await;
    let me = |authorization: String| {
        app.client
            .get(app.url("/api/v1/users/me"))
            .header("authorization", authorization)
            .send()
    };
    // The scheme is case-insensitive and the token is trimmed.
    assert_eq!(me(format!("bearer {token}")).await.unwrap().status(), 200);
    assert_eq!(
        me(format!("BEARER   {token} ")).await.unwrap().status(),
        200
    );
    for refused in [
        format!("Basic {token}"),
        format!("Token {token}"),
        format!("Bearer{token}"),
        "Bearer".to_owned(),
        "Bearer not-a-jwt".to_owned(),
    ] {
        let response = me(refused.clone()).await.unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer",
            "{refused}"
        );
        assert_error(response, 401, "UNAUTHORIZED").await;
    }
    // A header that is not visible ASCII is refused, not an error.
    let response = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "UNAUTHORIZED").await;

    // An Authorization header wins over the access cookie: a valid cookie does
    // not rescue a request whose header is not a bearer token.
    let (jar, _) = cookie_login(&app, "presenter").await;
    let with_cookie = |authorization: Option<&str>| {
        let request = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("cookie", jar.clone());
        match authorization {
            Some(value) => request.header("authorization", value.to_owned()),
            None => request,
        }
        .send()
    };
    assert_eq!(with_cookie(None).await.unwrap().status(), 200);
    assert_error(
        with_cookie(Some("Basic cHJlc2VudGVyOnB3")).await.unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    // The access cookie of a logged-out session is dead.
    let bearer = app.access_token("presenter").await;
    assert_eq!(
        app.authed(Method::POST, "/api/v1/auth/logout-all", &bearer)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_error(with_cookie(None).await.unwrap(), 401, "UNAUTHORIZED").await;
}

async fn csrf_endpoint_and_configured_origins(app: TestApp) {
    app.create_user("origin", Role::Patron).await;
    // Without a session: a fresh random token each time, also set as the readable cookie.
    let mut anonymous = Vec::new();
    for _ in 0..2 {
        let response = app.get("/api/v1/auth/csrf").await;
        assert_eq!(response.status(), 200);
        let jar = cookie_jar(&response);
        let body: Value = response.json().await.unwrap();
        let token = body["csrf_token"].as_str().unwrap().to_owned();
        assert_eq!(token.len(), 43, "{token}");
        assert_eq!(cookie_value(&jar, "carrel_csrf").as_deref(), Some(&*token));
        anonymous.push(token);
    }
    assert_ne!(anonymous[0], anonymous[1]);

    // With a cookie session: the session's own token, the one login returned.
    let (jar, csrf) = cookie_login(&app, "origin").await;
    let response = app
        .client
        .get(app.url("/api/v1/auth/csrf"))
        .header("cookie", jar.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["csrf_token"], csrf);
    // An anonymous token is not valid for the session.
    let response = app
        .client
        .patch(app.url("/api/v1/users/me"))
        .header(
            "cookie",
            jar.replace(
                &format!("carrel_csrf={csrf}"),
                &format!("carrel_csrf={}", anonymous[0]),
            ),
        )
        .header("x-csrf-token", &anonymous[0])
        .json(&json!({"full_name": "Forged"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "CSRF_FAILED").await;

    let patch = |origin: Option<&'static str>, jar: String, token: &str| {
        let request = app
            .client
            .patch(app.url("/api/v1/users/me"))
            .header("cookie", jar)
            .header("x-csrf-token", token.to_owned())
            .json(&json!({"full_name": "Cross Origin"}));
        match origin {
            Some(origin) => request.header("origin", origin),
            None => request,
        }
        .send()
    };
    // A configured CORS origin may send cookie-authenticated writes; others may not.
    assert_eq!(
        patch(Some("https://app.example"), jar.clone(), &csrf)
            .await
            .unwrap()
            .status(),
        200
    );
    for origin in ["https://other.example", "https://app.example.evil", "null"] {
        assert_error(
            patch(Some(origin), jar.clone(), &csrf).await.unwrap(),
            403,
            "CSRF_FAILED",
        )
        .await;
    }
    // The header must equal the cookie: a right header without the cookie fails.
    let without_csrf_cookie = jar
        .split("; ")
        .filter(|kv| !kv.starts_with("carrel_csrf="))
        .collect::<Vec<_>>()
        .join("; ");
    assert_error(
        patch(None, without_csrf_cookie, &csrf).await.unwrap(),
        403,
        "CSRF_FAILED",
    )
    .await;
}

async fn refresh_without_a_usable_token_is_refused(app: TestApp) {
    app.create_user("refresher", Role::Patron).await;
    let refresh = |body: &'static str, cookie: Option<String>| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/refresh"))
            .header("content-type", "application/json")
            .body(body);
        match cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        }
        .send()
    };
    // Neither a body token nor a cookie.
    for body in ["", "  \n", "{}", r#"{"refresh_token": null}"#] {
        assert_error(refresh(body, None).await.unwrap(), 401, "UNAUTHORIZED").await;
    }
    // An empty or unknown refresh cookie.
    for cookie in ["carrel_refresh=", "carrel_refresh=not-a-token"] {
        assert_error(
            refresh("", Some(cookie.to_owned())).await.unwrap(),
            401,
            "UNAUTHORIZED",
        )
        .await;
    }
    // Bodies that are not the documented shape.
    assert_error(refresh("{", None).await.unwrap(), 400, "VALIDATION_ERROR").await;
    let body = assert_error(
        refresh(r#"{"refresh_token": 42}"#, None).await.unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(
        body["details"]["fields"]["refresh_token"].is_string(),
        "{body}"
    );
    assert_error(
        refresh(r#"{"refresh_token": "x", "extra": 1}"#, None)
            .await
            .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        refresh(r#"{"refresh_token": "unknown"}"#, None)
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;

    // The refresh token of a logged-out session (never exchanged) is refused,
    // and refusing it does not count as reuse.
    let tokens = app.tokens("refresher", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        app.authed(Method::POST, "/api/v1/auth/logout", access)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "UNAUTHORIZED").await;
    assert!(
        app.audit_events("auth.refresh_reuse_detected")
            .await
            .is_empty()
    );

    // A cookie-mode refresh of an expired session is refused even with the right CSRF token.
    let (jar, csrf) = cookie_login(&app, "refresher").await;
    app.clock.advance(
        carrel_server::config::to_time(app.state.config.refresh_token_ttl)
            + time::Duration::seconds(1),
    );
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", jar)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "UNAUTHORIZED").await;
}

async fn only_own_live_sessions_can_be_revoked(app: TestApp) {
    app.create_user("owner", Role::Patron).await;
    app.create_user("intruder", Role::Patron).await;
    let owner = app.tokens("owner", PASSWORD).await;
    let owner_access = owner["access_token"].as_str().unwrap();
    let owner_session = owner["session_id"].as_str().unwrap();
    let intruder = app.access_token("intruder").await;
    let revoke = |token: &str, id: &str| {
        app.authed(
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{id}"),
            token,
        )
        .send()
    };
    for id in [
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
        owner_session,
    ] {
        assert_error(
            revoke(&intruder, id).await.unwrap(),
            404,
            "RESOURCE_NOT_FOUND",
        )
        .await;
    }
    // The owner's session survived the attempts.
    assert_eq!(
        app.authed(Method::GET, "/api/v1/users/me", owner_access)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(app.audit_events("auth.session_revoked").await.is_empty());

    // Revoking a second session of one's own works once; again is 404.
    let second = app.tokens("owner", PASSWORD).await;
    let second_id = second["session_id"].as_str().unwrap();
    assert_eq!(revoke(owner_access, second_id).await.unwrap().status(), 204);
    assert_error(
        revoke(owner_access, second_id).await.unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        app.authed(
            Method::GET,
            "/api/v1/users/me",
            second["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(app.audit_events("auth.session_revoked").await.len(), 1);
}

async fn last_use_is_recorded_at_most_once_a_minute(app: TestApp) {
    app.create_user("regular", Role::Patron).await;
    let tokens = app.tokens("regular", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let session: uuid::Uuid = tokens["session_id"].as_str().unwrap().parse().unwrap();
    let last_used = || async {
        app.state
            .store
            .session_auth(session)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    let opened = last_used().await;
    let me = || async {
        assert_eq!(
            app.authed(Method::GET, "/api/v1/users/me", &access)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    };
    app.clock.advance(time::Duration::seconds(30));
    me().await;
    assert_eq!(last_used().await, opened, "no write within the minute");
    app.clock.advance(time::Duration::seconds(31));
    me().await;
    let touched = last_used().await;
    assert!(touched > opened, "recorded after a minute");
    let listed: Value = app
        .authed(Method::GET, "/api/v1/auth/sessions", &access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed_at = time::OffsetDateTime::parse(
        listed["data"][0]["last_used_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(listed_at.unix_timestamp(), touched.unix_timestamp());
    assert_eq!(listed["data"][0]["current"], true);
}

async fn mfa_steps_out_of_order_are_conflicts(app: TestApp) {
    app.create_user("eager", Role::Patron).await;
    let token = app.access_token("eager").await;
    // Confirming before setting up.
    assert_error(
        post(
            &app,
            "/api/v1/auth/mfa/totp/confirm",
            &token,
            json!({"code": "123456"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    // Disabling what is not enabled (with the right password).
    assert_error(
        post(
            &app,
            "/api/v1/auth/mfa/totp/disable",
            &token,
            json!({"password": PASSWORD, "code": "123456"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    // A second setup replaces the pending secret: codes of the first no longer confirm.
    let first = setup_secret(&app, &token).await;
    let second = setup_secret(&app, &token).await;
    assert_ne!(first, second);
    let stale = totp_code(&first, &app);
    if stale != totp_code(&second, &app) {
        assert_error(
            post(
                &app,
                "/api/v1/auth/mfa/totp/confirm",
                &token,
                json!({"code": stale}),
            )
            .await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    let response = post(
        &app,
        "/api/v1/auth/mfa/totp/confirm",
        &token,
        json!({"code": totp_code(&second, &app)}),
    )
    .await;
    assert_eq!(response.status(), 200);
    // Confirming again once enabled: nothing is pending.
    assert_error(
        post(
            &app,
            "/api/v1/auth/mfa/totp/confirm",
            &token,
            json!({"code": totp_code(&second, &app)}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    // A login challenge needs exactly one of code and recovery_code.
    let challenge = mfa_challenge(&app, "eager", false).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/mfa/verify"))
        .json(&json!({"mfa_token": challenge}))
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "VALIDATION_ERROR").await;
}

async fn a_sealed_secret_moved_to_another_account_does_not_open(app: TestApp) {
    app.create_user("alice", Role::Patron).await;
    app.create_user("bob", Role::Patron).await;
    let alice_secret = enrol(&app, &app.access_token("alice").await).await;
    let bob_secret = enrol(&app, &app.access_token("bob").await).await;
    // Someone with write access to the database copies Alice's sealed secret
    // over Bob's. The seal is bound to the account, so it opens for neither code.
    exec_sql(
        &app,
        "UPDATE user_mfa SET secret_sealed = (SELECT m.secret_sealed FROM user_mfa m \
         JOIN users u ON u.id = m.user_id WHERE u.username = 'alice') \
         WHERE user_id = (SELECT id FROM users WHERE username = 'bob')",
    )
    .await;
    for secret in [&alice_secret, &bob_secret] {
        let challenge = mfa_challenge(&app, "bob", false).await;
        let response = mfa_verify(&app, &challenge, &totp_code(secret, &app)).await;
        let body = assert_error(response, 500, "INTERNAL_ERROR").await;
        assert!(
            !body.to_string().contains("CARREL_SECRETS_KEY_FILE"),
            "internals stay in the log: {body}"
        );
    }
    // The stored enrolment's Debug output shows no secret material.
    let bob = app
        .state
        .store
        .find_user_by_login("bob")
        .await
        .unwrap()
        .unwrap();
    let enrolment = app
        .state
        .store
        .totp_enrolment(bob.id)
        .await
        .unwrap()
        .unwrap();
    let shown = format!("{enrolment:?}");
    assert!(
        !shown.contains("secret") && shown.contains("confirmed_at"),
        "{shown}"
    );
    // Alice is unaffected.
    let challenge = mfa_challenge(&app, "alice", false).await;
    assert_eq!(
        mfa_verify(&app, &challenge, &totp_code(&alice_secret, &app))
            .await
            .status(),
        200
    );
}

async fn mfa_login_in_cookie_mode_sets_the_session_cookies(app: TestApp) {
    app.create_user("cookiemfa", Role::Patron).await;
    let secret = enrol(&app, &app.access_token("cookiemfa").await).await;
    let challenge = mfa_challenge(&app, "cookiemfa", true).await;
    let response = mfa_verify(&app, &challenge, &totp_code(&secret, &app)).await;
    assert_eq!(response.status(), 200);
    let jar = cookie_jar(&response);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("access_token").is_none(), "{body}");
    let csrf = body["csrf_token"].as_str().unwrap();
    assert_eq!(cookie_value(&jar, "carrel_csrf").as_deref(), Some(csrf));
    assert!(cookie_value(&jar, "carrel_access").is_some());
    assert!(cookie_value(&jar, "carrel_refresh").is_some());
    let me = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("cookie", jar)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["username"], "cookiemfa");
}

async fn staff_mfa_reset_follows_who_may_manage_whom(app: TestApp) {
    let admin = app.create_user("topdog", Role::Admin).await;
    let patron = app.create_user("phoneless", Role::Patron).await;
    app.create_user("deskhand", Role::Librarian).await;
    let admin_token = app.access_token("topdog").await;
    enrol(&app, &admin_token).await;
    let patron_token = app.access_token("phoneless").await;
    enrol(&app, &patron_token).await;
    let librarian = app.access_token("deskhand").await;
    let reset = |token: &str, id: String| {
        app.authed(
            Method::POST,
            &format!("/api/v1/users/{id}/mfa/reset"),
            token,
        )
        .send()
    };
    // A librarian may not reset an admin's MFA; the admin keeps it and stays signed in.
    assert_error(
        reset(&librarian, admin.id.to_string()).await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert!(
        app.state
            .store
            .find_user(admin.id)
            .await
            .unwrap()
            .unwrap()
            .mfa_enabled
    );
    assert_eq!(
        app.authed(Method::GET, "/api/v1/users/me", &admin_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Patrons may not reset anyone's; unknown accounts are 404.
    assert_error(
        reset(&patron_token, admin.id.to_string()).await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        reset(&librarian, uuid::Uuid::now_v7().to_string())
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    // A librarian may reset a patron's.
    assert_eq!(
        reset(&librarian, patron.id.to_string())
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(
        !app.state
            .store
            .find_user(patron.id)
            .await
            .unwrap()
            .unwrap()
            .mfa_enabled
    );
}

async fn lock(app: &TestApp, username: &str) {
    for _ in 0..5 {
        assert_error(
            app.login(username, "Wrong-Password-1!").await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
}

async fn a_locked_account_cannot_pass_the_second_step(app: TestApp) {
    // A challenge obtained before the lock, answered with the right code after it.
    app.create_user("guarded", Role::Patron).await;
    let secret = enrol(&app, &app.access_token("guarded").await).await;
    let challenge = mfa_challenge(&app, "guarded", false).await;
    lock(&app, "guarded").await;
    assert_error(
        mfa_verify(&app, &challenge, &totp_code(&secret, &app)).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    // Confirming an enrolment is refused the same way while locked.
    app.create_user("pending", Role::Patron).await;
    let token = app.access_token("pending").await;
    let pending = setup_secret(&app, &token).await;
    lock(&app, "pending").await;
    assert_error(
        post(
            &app,
            "/api/v1/auth/mfa/totp/confirm",
            &token,
            json!({"code": totp_code(&pending, &app)}),
        )
        .await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let user = app
        .state
        .store
        .find_user_by_login("pending")
        .await
        .unwrap()
        .unwrap();
    assert!(!user.mfa_enabled, "nothing was enabled");
}

async fn one_challenge_yields_one_session_under_concurrent_answers(app: TestApp) {
    app.create_user("twins", Role::Patron).await;
    let token = app.access_token("twins").await;
    let secret = setup_secret(&app, &token).await;
    let code = totp_code(&secret, &app);
    // Two confirmations with the same code at once: one enables MFA.
    let confirm = || {
        post(
            &app,
            "/api/v1/auth/mfa/totp/confirm",
            &token,
            json!({"code": code}),
        )
    };
    let (a, b) = tokio::join!(confirm(), confirm());
    let (winner, loser) = if a.status() == 200 { (a, b) } else { (b, a) };
    assert_eq!(winner.status(), 200, "one confirmation wins");
    // The loser either lost the step (401) or found nothing pending any more (409).
    assert!(
        [401, 409].contains(&loser.status().as_u16()),
        "{}",
        loser.status()
    );
    let codes: Vec<String> = winner.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    app.clock.advance(time::Duration::seconds(30));

    // A TOTP code and a recovery code for the same challenge at once: one session.
    let user = app
        .state
        .store
        .find_user_by_login("twins")
        .await
        .unwrap()
        .unwrap();
    let sessions_before = app
        .state
        .store
        .list_sessions(user.id, app.clock.now())
        .await
        .unwrap()
        .len();
    let challenge = mfa_challenge(&app, "twins", false).await;
    let fresh = totp_code(&secret, &app);
    let by_code = mfa_verify(&app, &challenge, &fresh);
    let by_recovery = app
        .client
        .post(app.url("/api/v1/auth/mfa/verify"))
        .json(&json!({"mfa_token": challenge, "recovery_code": codes[0]}))
        .send();
    let (a, b) = tokio::join!(by_code, by_recovery);
    let b = b.unwrap();
    let ok = [a.status(), b.status()]
        .iter()
        .filter(|s| s.as_u16() == 200)
        .count();
    assert_eq!(ok, 1, "{} and {}", a.status(), b.status());
    let loser = if a.status() == 200 { b } else { a };
    assert_error(loser, 401, "UNAUTHORIZED").await;
    assert_eq!(
        app.state
            .store
            .list_sessions(user.id, app.clock.now())
            .await
            .unwrap()
            .len(),
        sessions_before + 1
    );
}

async fn resend_verification_mails_only_unverified_live_accounts(app: TestApp) {
    let resend = |email: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/resend-verification"))
            .json(&json!({"email": email}))
            .send()
    };
    let register = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "late@example.org", "username": "late", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 202);
    let first = app
        .mailed_token("late@example.org", "Confirm your email")
        .await;
    // Same answer for an unverified, a verified and an unknown address.
    app.create_user("settled", Role::Patron).await;
    for email in [
        "  LATE@example.org ",
        "settled@example.org",
        "nobody@example.org",
    ] {
        let response = resend(email).await.unwrap();
        assert_eq!(response.status(), 202);
        assert!(response.json::<Value>().await.unwrap()["message"].is_string());
    }
    let mails = app.outbox().await;
    let count = |to: &str| mails.iter().filter(|m| m.to.contains(to)).count();
    assert_eq!(count("late@example.org"), 2, "a second verification mail");
    assert_eq!(count("settled@example.org"), 0);
    assert_eq!(count("nobody@example.org"), 0);
    // The new token verifies, once.
    let second = app
        .mailed_token("late@example.org", "Confirm your email")
        .await;
    assert_ne!(first, second);
    let verify = |token: String| {
        app.client
            .post(app.url("/api/v1/auth/verify-email"))
            .json(&json!({"token": token}))
            .send()
    };
    assert_eq!(verify(second.clone()).await.unwrap().status(), 200);
    assert_error(verify(second).await.unwrap(), 400, "VALIDATION_ERROR").await;
    // Once verified, no more mail.
    assert_eq!(resend("late@example.org").await.unwrap().status(), 202);
    assert_eq!(
        app.outbox()
            .await
            .iter()
            .filter(|m| m.to.contains("late@example.org"))
            .count(),
        2
    );
}

async fn a_reset_token_spent_concurrently_works_once(app: TestApp) {
    app.create_user("forgetful", Role::Patron).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/password/forgot"))
        .json(&json!({"email": "forgetful@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let token = app
        .mailed_token("forgetful@example.org", "Reset your password")
        .await;
    let reset = |password: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/password/reset"))
            .json(&json!({"token": token, "new_password": password}))
            .send()
    };
    let (a, b) = tokio::join!(
        reset("Second-Harbor-Lantern-77"),
        reset("Third-Quiet-Meadow-88")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 400], "the token is spent once");
    let winner = if a.status() == 204 {
        "Second-Harbor-Lantern-77"
    } else {
        "Third-Quiet-Meadow-88"
    };
    let loser = if a.status() == 204 { b } else { a };
    assert_error(loser, 400, "VALIDATION_ERROR").await;
    assert_eq!(app.login("forgetful", winner).await.status(), 200);
    assert_eq!(app.audit_events("auth.password_reset").await.len(), 1);
}
