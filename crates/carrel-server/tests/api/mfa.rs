//! TOTP: enrol, confirm, login, verify, disable, with real codes; replay
//! refusal; single-use recovery codes; mfa_token expiry and attempt limit;
//! enforced enrolment; staff reset.

use carrel_core::roles::Role;
use carrel_store::Backend;
use reqwest::Method;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder};

use crate::helpers::{PASSWORD, Spawn, TestApp, assert_error, backend_tests};

backend_tests!(enrol_login_replay_recovery_and_disable, staff_can_reset_mfa);

pub(crate) fn code(secret_b32: &str, app: &TestApp, offset_steps: i64) -> String {
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret_b32).unwrap();
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant();
    let now = app.clock.now_precise().unix_timestamp() + offset_steps * 30;
    totp.generate(u64::try_from(now).unwrap()).to_string()
}

pub(crate) async fn enrol(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let setup: Value = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/setup", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    assert!(setup["otpauth_uri"].as_str().unwrap().contains(&secret));
    let svg = setup["qr_svg"].as_str().unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("<path d=\"M")
            && !svg.contains("<script")
            && !svg.contains("href"),
        "a self-contained SVG"
    );
    let response = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/confirm", token)
        .json(&json!({"code": code(&secret, app, 0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let codes: Vec<String> = response.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

pub(crate) async fn mfa_login(app: &TestApp, username: &str) -> String {
    let body: Value = app.login(username, PASSWORD).await.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none());
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    body["mfa_token"].as_str().unwrap().to_owned()
}

pub(crate) async fn verify(app: &TestApp, mfa_token: &str, body: Value) -> reqwest::Response {
    let mut body = body;
    body["mfa_token"] = json!(mfa_token);
    app.client
        .post(app.url("/api/v1/auth/mfa/verify"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn enrol_login_replay_recovery_and_disable(app: TestApp) {
    app.create_user("careful", Role::Patron).await;
    let token = app.access_token("careful").await;
    let setup: Value = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/setup", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wrong = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/confirm", &token)
        .json(&json!({"code": "000000"}))
        .send()
        .await
        .unwrap();
    assert_error(wrong, 401, "INVALID_CREDENTIALS").await;
    let secret = setup["secret"].as_str().unwrap();
    // The secret is sealed at rest.
    let stored = app
        .state
        .store
        .totp_enrolment(
            app.state
                .store
                .find_user_by_login("careful")
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap()
        .unwrap();
    let raw = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret).unwrap();
    assert!(
        !stored
            .secret_sealed
            .windows(raw.len())
            .any(|w| w == raw.as_slice()),
        "the secret is encrypted at rest"
    );

    let confirm_code = code(secret, &app, 0);
    let response = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/confirm", &token)
        .json(&json!({"code": confirm_code}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let codes: Vec<String> = response.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let me: Value = app
        .authed(Method::GET, "/api/v1/users/me", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["mfa_enabled"], true);
    assert_error(
        app.authed(Method::POST, "/api/v1/auth/mfa/totp/setup", &token)
            .send()
            .await
            .unwrap(),
        409,
        "CONFLICT",
    )
    .await;

    // The code that confirmed enrolment counts as used.
    let challenge = mfa_login(&app, "careful").await;
    assert_error(
        verify(&app, &challenge, json!({"code": confirm_code})).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    app.clock.advance(time::Duration::seconds(30));
    let fresh = code(secret, &app, 0);
    let response = verify(&app, &challenge, json!({"code": fresh})).await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.unwrap()["access_token"].is_string());
    // Used challenge, and the same code on a new challenge: both refused.
    assert_error(
        verify(&app, &challenge, json!({"code": fresh})).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let second = mfa_login(&app, "careful").await;
    assert_error(
        verify(&app, &second, json!({"code": fresh})).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;

    // Recovery codes are single use.
    let response = verify(
        &app,
        &second,
        json!({"recovery_code": codes[0].to_uppercase()}),
    )
    .await;
    assert_eq!(
        response.status(),
        200,
        "recovery codes are case- and hyphen-insensitive"
    );
    let third = mfa_login(&app, "careful").await;
    assert_error(
        verify(&app, &third, json!({"recovery_code": codes[0]})).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_error(
        verify(
            &app,
            &third,
            json!({"code": "123456", "recovery_code": codes[1]}),
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;

    // Disable needs the password and a current code.
    app.clock.advance(time::Duration::seconds(30));
    let disable = |password: &str, c: String| {
        app.authed(Method::POST, "/api/v1/auth/mfa/totp/disable", &token)
            .json(&json!({"password": password, "code": c}))
            .send()
    };
    assert_error(
        disable(PASSWORD, "000000".into()).await.unwrap(),
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_error(
        disable("Not-The-Password-1", code(secret, &app, 0))
            .await
            .unwrap(),
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(
        disable(PASSWORD, code(secret, &app, 0))
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(
        app.tokens("careful", PASSWORD).await["access_token"].is_string(),
        "no second step any more"
    );

    for event in [
        "auth.mfa_enabled",
        "auth.mfa_disabled",
        "auth.mfa_failed",
        "auth.recovery_code_used",
    ] {
        assert!(!app.audit_events(event).await.is_empty(), "{event} audited");
    }
    let all = app
        .state
        .store
        .list_audit_events(&carrel_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let text = format!(
        "{:?}",
        all.iter()
            .map(|e| e.details.0.to_string())
            .collect::<Vec<_>>()
    );
    assert!(
        !text.contains(&fresh) && !text.contains(&codes[0]) && !text.contains(secret),
        "no code or secret in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_token_expires_and_allows_five_attempts() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![("CARREL_LOCKOUT_THRESHOLD", "50".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.create_user("twofa", Role::Patron).await;
    let token = app.access_token("twofa").await;
    let (secret, _) = enrol(&app, &token).await;
    app.clock.advance(time::Duration::seconds(30));
    let challenge = mfa_login(&app, "twofa").await;
    for _ in 0..5 {
        assert_error(
            verify(&app, &challenge, json!({"code": "000000"})).await,
            401,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    let right = code(&secret, &app, 0);
    assert_error(
        verify(&app, &challenge, json!({"code": right})).await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    let expiring = mfa_login(&app, "twofa").await;
    app.clock
        .advance(time::Duration::minutes(5) + time::Duration::seconds(1));
    assert_error(
        verify(&app, &expiring, json!({"code": code(&secret, &app, 0)})).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_error(
        verify(
            &app,
            "forged-token",
            json!({"code": code(&secret, &app, 0)}),
        )
        .await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_roles_can_only_enrol_until_they_have() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![("CARREL_MFA_REQUIRED_ROLES", "librarian,admin".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.create_user("desk", Role::Librarian).await;
    app.create_user("reader", Role::Patron).await;
    let patron = app.access_token("reader").await;
    assert_eq!(
        app.authed(Method::PATCH, "/api/v1/users/me", &patron)
            .json(&json!({"full_name": "R"}))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "patrons are not affected"
    );

    let staff = app.access_token("desk").await;
    let body = assert_error(
        app.authed(Method::GET, "/api/v1/users", &staff)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(body["details"]["mfa_enrolment_required"], true);
    assert_eq!(
        app.authed(Method::GET, "/api/v1/users/me", &staff)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    enrol(&app, &staff).await;
    let after = app
        .authed(Method::GET, "/api/v1/users", &staff)
        .send()
        .await
        .unwrap();
    let status = after.status();
    assert_eq!(
        status,
        200,
        "the same session is complete once enrolled: {}",
        after.text().await.unwrap()
    );
}

async fn staff_can_reset_mfa(app: TestApp) {
    let user = app.create_user("lostphone", Role::Patron).await;
    app.create_user("chief", Role::Admin).await;
    let token = app.access_token("lostphone").await;
    enrol(&app, &token).await;
    let admin = app.access_token("chief").await;
    assert_eq!(
        app.authed(
            Method::POST,
            &format!("/api/v1/users/{}/mfa/reset", user.id),
            &admin
        )
        .send()
        .await
        .unwrap()
        .status(),
        204
    );
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &token)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(app.tokens("lostphone", PASSWORD).await["access_token"].is_string());
    let resets = app.audit_events("auth.mfa_disabled").await;
    assert_eq!(resets[0].details.0["by_staff"], true);
}
