//! Registration, verification, login, lockout, password change/forgot/reset.

use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error, backend_tests, stable_error_body};

backend_tests!(
    register_verify_and_login,
    registration_does_not_reveal_taken_addresses,
    every_login_failure_looks_the_same,
    lockout_locks_and_each_way_back_works,
    parallel_wrong_passwords_never_exceed_the_threshold,
    password_policy_is_enforced_with_violations,
    change_password_requires_the_current_one_and_revokes_other_sessions,
    forgot_and_reset_password,
    legacy_bcrypt_hashes_are_upgraded_on_login,
    login_accepts_email_and_oauth2_form,
);

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn register_verify_and_login(app: TestApp) {
    let response = post(&app, "/api/v1/auth/register", json!({"email": "Ada@Example.org", "username": "ada", "password": PASSWORD, "full_name": "Ada L"})).await;
    assert_eq!(response.status(), 202);

    // Not verified yet: the right password gets EMAIL_NOT_VERIFIED, a wrong one the generic 401.
    assert_error(app.login("ada", PASSWORD).await, 403, "EMAIL_NOT_VERIFIED").await;
    assert_error(
        app.login("ada", "Wrong-Password-123").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;

    let token = app
        .mailed_token("Ada@example.org", "Confirm your email")
        .await;
    assert!(token.len() >= 43, "≥ 256-bit token");
    assert_eq!(
        post(&app, "/api/v1/auth/verify-email", json!({"token": token}))
            .await
            .status(),
        200
    );
    // Single use.
    assert_error(
        post(&app, "/api/v1/auth/verify-email", json!({"token": token})).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        post(
            &app,
            "/api/v1/auth/verify-email",
            json!({"token": "forged"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;

    let tokens = app.tokens("ada", PASSWORD).await;
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);
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
    assert_eq!(me["username"], "ada");
    assert_eq!(me["email"], "Ada@example.org");
    assert_eq!(me["role"], "patron");
    assert_eq!(me["email_verified"], true);
    for secret_field in ["password_hash", "password", "failed_logins"] {
        assert!(me.get(secret_field).is_none(), "{secret_field} leaked");
    }
    assert_eq!(app.audit_events("user.registered").await.len(), 1);
    assert_eq!(app.audit_events("auth.login_succeeded").await.len(), 1);
}

async fn registration_does_not_reveal_taken_addresses(app: TestApp) {
    let owner = app.create_user("owner", Role::Patron).await;
    let register = |email: &str, username: &str| {
        post(
            &app,
            "/api/v1/auth/register",
            json!({"email": email, "username": username, "password": PASSWORD}),
        )
    };
    let fresh = register("new@example.org", "newcomer").await;
    let (fresh_status, fresh_body) = (fresh.status(), fresh.text().await.unwrap());
    let taken_email = register(&owner.email.to_uppercase(), "someoneelse").await;
    let taken_username = register("third@example.org", "OWNER").await;
    for response in [taken_email, taken_username] {
        assert_eq!(response.status(), fresh_status);
        assert_eq!(
            response.text().await.unwrap(),
            fresh_body,
            "byte-identical bodies"
        );
    }
    let outbox = app.outbox().await;
    assert!(outbox.iter().any(|m| m.to.contains(&owner.email) && m.subject.contains("Someone tried to register")));
    assert!(
        outbox
            .iter()
            .any(|m| m.to.contains("third@example.org") && m.body.contains("already taken"))
    );
    // Only one account was created.
    assert_error(
        app.login("someoneelse", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}

async fn every_login_failure_looks_the_same(app: TestApp) {
    let _alive = app.create_user("alive", Role::Patron).await;
    let deleted = app.create_user("gone", Role::Patron).await;
    app.state
        .store
        .soft_delete_user(deleted.id, None, app.clock.now(), |_: &()| Vec::new())
        .await
        .unwrap();
    let inactive = app.create_user("paused", Role::Patron).await;
    app.state
        .store
        .update_user(
            inactive.id,
            &carrel_store::UserChanges {
                is_active: Some(false),
                ..Default::default()
            },
            app.clock.now(),
            |_: &carrel_store::User| Vec::new(),
        )
        .await
        .unwrap();

    let reference = stable_error_body(app.login("nobody-here", PASSWORD).await).await;
    assert_eq!(reference.0, 401);
    for (user, password) in [
        ("alive", "Wrong-Password-1!"),
        ("gone", PASSWORD),
        ("paused", PASSWORD),
        ("ALIVE@example.org", "nope"),
    ] {
        assert_eq!(
            stable_error_body(app.login(user, password).await).await,
            reference,
            "{user}"
        );
    }
    let failures = app.audit_events("auth.login_failed").await;
    assert!(
        failures
            .iter()
            .any(|e| e.subject_id.is_none() && e.details.0["reason"] == "unknown_user")
    );
    assert!(
        failures
            .iter()
            .any(|e| e.subject_id == Some(deleted.id) && e.details.0["reason"] == "deleted")
    );
    for event in &failures {
        assert!(event.actor_id.is_none());
        assert!(
            !event.details.0.to_string().contains(PASSWORD),
            "no password in audit details"
        );
    }
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
    assert_error(
        app.login(username, PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}

async fn lockout_locks_and_each_way_back_works(app: TestApp) {
    let user = app.create_user("locky", Role::Patron).await;
    let admin = app.create_user("boss", Role::Admin).await;
    lock(&app, "locky").await;
    assert_eq!(app.audit_events("auth.locked").await.len(), 1);
    assert!(
        app.outbox()
            .await
            .iter()
            .any(|m| m.to.contains(&user.email) && m.subject.contains("locked"))
    );
    let admin_token = app.access_token(&admin.username).await;
    let view: Value = app
        .authed(
            Method::GET,
            &format!("/api/v1/users/{}", user.id),
            &admin_token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(view["locked_until"].is_string());

    // 1. The lock expires (15 minutes by default).
    app.clock.advance(time::Duration::minutes(14));
    assert_error(
        app.login("locky", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    app.clock.advance(time::Duration::minutes(2));
    assert_eq!(app.login("locky", PASSWORD).await.status(), 200);

    // 2. Staff unlock.
    lock(&app, "locky").await;
    let admin_token = app.access_token(&admin.username).await;
    let response = app
        .authed(
            Method::POST,
            &format!("/api/v1/users/{}/unlock", user.id),
            &admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.login("locky", PASSWORD).await.status(), 200);

    // 3. A completed password reset.
    lock(&app, "locky").await;
    post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": user.email}),
    )
    .await;
    let token = app.mailed_token(&user.email, "Reset your password").await;
    let response = post(
        &app,
        "/api/v1/auth/password/reset",
        json!({"token": token, "new_password": "Fresh-Meadow-Tundra-77"}),
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.login("locky", "Fresh-Meadow-Tundra-77").await.status(),
        200
    );
}

async fn parallel_wrong_passwords_never_exceed_the_threshold(app: TestApp) {
    app.create_user("target", Role::Patron).await;
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let client = app.client.clone();
            let url = app.url("/api/v1/auth/login");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"username": "target", "password": format!("Guess-{i}-xyz!")}))
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
    let guesses = app
        .audit_events("auth.login_failed")
        .await
        .into_iter()
        .filter(|e| e.details.0["reason"] == "wrong_password")
        .count();
    assert!(
        guesses <= 5,
        "{guesses} passwords were verified; the threshold is 5"
    );
    assert_eq!(guesses, 5, "the threshold is reached");
    assert_error(
        app.login("target", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
}

async fn password_policy_is_enforced_with_violations(app: TestApp) {
    let response = post(
        &app,
        "/api/v1/auth/register",
        json!({"email": "p@example.org", "username": "pat", "password": "Password1!"}),
    )
    .await;
    let body = assert_error(response, 422, "PASSWORD_POLICY").await;
    let codes: Vec<&str> = body["details"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["too_weak"]);

    let response = post(
        &app,
        "/api/v1/auth/register",
        json!({"email": "p@example.org", "username": "pat", "password": "short"}),
    )
    .await;
    let body = assert_error(response, 422, "PASSWORD_POLICY").await;
    let codes: Vec<&str> = body["details"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"too_short")
            && codes.contains(&"missing_uppercase")
            && codes.contains(&"missing_digit"),
        "{codes:?}"
    );

    let response = post(&app, "/api/v1/auth/register", json!({"email": "p@example.org", "username": "patterson", "password": "Patterson-Was-Here-99"})).await;
    let body = assert_error(response, 422, "PASSWORD_POLICY").await;
    assert!(
        body["details"]["violations"]
            .to_string()
            .contains("contains_personal_info")
    );

    let response = post(
        &app,
        "/api/v1/auth/register",
        json!({"email": "not-an-email", "username": "a b", "password": PASSWORD}),
    )
    .await;
    let body = assert_error(response, 422, "VALIDATION_ERROR").await;
    assert!(
        body["details"]["fields"]["email"].is_string()
            && body["details"]["fields"]["username"].is_string(),
        "{body}"
    );
}

async fn change_password_requires_the_current_one_and_revokes_other_sessions(app: TestApp) {
    app.create_user("changer", Role::Patron).await;
    let here = app.access_token("changer").await;
    let elsewhere = app.access_token("changer").await;
    let change = |current: &str, new: &str| {
        app.authed(Method::POST, "/api/v1/auth/password/change", &here)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    assert_error(
        change("Not-The-Current-1!", "Brand-New-Secret-88")
            .await
            .unwrap(),
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let body = assert_error(
        change(PASSWORD, PASSWORD).await.unwrap(),
        422,
        "PASSWORD_POLICY",
    )
    .await;
    assert!(
        body["details"]["violations"]
            .to_string()
            .contains("recently_used"),
        "{body}"
    );

    assert_eq!(
        change(PASSWORD, "Brand-New-Secret-88")
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        app.authed(Method::GET, "/api/v1/users/me", &here)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "this session survives"
    );
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &elsewhere)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_error(
        app.login("changer", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(
        app.login("changer", "Brand-New-Secret-88").await.status(),
        200
    );
    // The history keeps the old password out for 5 changes.
    let body = assert_error(
        change("Brand-New-Secret-88", PASSWORD).await.unwrap(),
        422,
        "PASSWORD_POLICY",
    )
    .await;
    assert!(
        body["details"]["violations"]
            .to_string()
            .contains("recently_used")
    );
    assert_eq!(app.audit_events("auth.password_changed").await.len(), 1);
}

async fn forgot_and_reset_password(app: TestApp) {
    let user = app.create_user("forgetful", Role::Patron).await;
    let session = app.access_token("forgetful").await;
    let unknown = post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": "nobody@example.org"}),
    )
    .await;
    let (unknown_status, unknown_body) = (unknown.status(), unknown.text().await.unwrap());
    let known = post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": user.email}),
    )
    .await;
    assert_eq!(
        (known.status(), known.text().await.unwrap()),
        (unknown_status, unknown_body)
    );
    assert_eq!(unknown_status, 202);

    let token = app.mailed_token(&user.email, "Reset your password").await;
    let reset = |token: String, password: &'static str| {
        post(
            &app,
            "/api/v1/auth/password/reset",
            json!({"token": token, "new_password": password}),
        )
    };
    assert_error(reset(token.clone(), "weak").await, 422, "PASSWORD_POLICY").await;
    assert_eq!(
        reset(token.clone(), "Granite-Orchard-Sky-31")
            .await
            .status(),
        204
    );
    assert_error(
        reset(token, "Granite-Orchard-Sky-32").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &session)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        app.login("forgetful", "Granite-Orchard-Sky-31")
            .await
            .status(),
        200
    );

    // Links expire after 30 minutes, and only the newest one works.
    post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": user.email}),
    )
    .await;
    let older = app.mailed_token(&user.email, "Reset your password").await;
    post(
        &app,
        "/api/v1/auth/password/forgot",
        json!({"email": user.email}),
    )
    .await;
    let newer = app.mailed_token(&user.email, "Reset your password").await;
    assert_error(
        reset(older, "Another-Strong-Pass-55").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    app.clock.advance(time::Duration::minutes(31));
    assert_error(
        reset(newer, "Another-Strong-Pass-55").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(app.audit_events("auth.password_reset").await.len(), 1);
    assert_eq!(
        app.audit_events("auth.password_reset_requested")
            .await
            .len(),
        4
    );
}

async fn legacy_bcrypt_hashes_are_upgraded_on_login(app: TestApp) {
    let legacy = bcrypt::hash("Imported-From-Python-1!", 4).unwrap();
    let now = app.clock.now();
    app.state
        .store
        .create_user(&carrel_store::NewUser {
            id: uuid::Uuid::now_v7(),
            email: "old@example.org".into(),
            email_key: "old@example.org".into(),
            username: "oldtimer".into(),
            username_key: "oldtimer".into(),
            full_name: None,
            role: carrel_core::roles::Role::Patron,
            password_hash: Some(legacy.clone()),
            email_verified: true,
            card_number: None,
            category: None,
            now,
        })
        .await
        .unwrap();
    assert_error(
        app.login("oldtimer", "wrong").await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(
        app.login("oldtimer", "Imported-From-Python-1!")
            .await
            .status(),
        200
    );
    let stored = app
        .state
        .store
        .find_user_by_login("oldtimer")
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "upgraded: {stored}");
    assert_eq!(
        app.login("oldtimer", "Imported-From-Python-1!")
            .await
            .status(),
        200,
        "still the same password"
    );
}

async fn login_accepts_email_and_oauth2_form(app: TestApp) {
    let user = app.create_user("formuser", Role::Patron).await;
    assert_eq!(
        app.login(&user.email.to_uppercase(), PASSWORD)
            .await
            .status(),
        200
    );
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .form(&[
            ("username", "formuser"),
            ("password", PASSWORD),
            ("grant_type", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    let body = assert_error(
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": "formuser", "password": PASSWORD, "role": "admin"}))
            .send()
            .await
            .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(body["details"]["fields"]["role"].is_string());
}
