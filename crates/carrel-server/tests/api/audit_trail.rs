//! Each state-changing use case commits its audit entries in its own
//! transaction: the entry is there, exactly as before, once the action
//! answered; and when the entry cannot be stored, the action is rolled back.

use carrel_core::roles::Role;
use carrel_store::AuditEvent;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error, backend_tests, try_sql};
use crate::mfa::{code, enrol, mfa_login, verify};

backend_tests!(
    mfa_enable_and_disable_commit_their_entries,
    a_password_change_commits_its_entry,
    logout_all_commits_its_entry_with_the_count,
    registration_and_email_verification_commit_their_entries,
    the_mfa_sign_in_commits_its_session_with_its_entry,
    refresh_reuse_commits_the_revocation_with_its_entry,
    a_refused_entry_rolls_the_password_change_back,
    a_refused_entry_rolls_logout_all_back,
);

/// The only entry of `event_type`.
async fn only(app: &TestApp, event_type: &str) -> AuditEvent {
    let mut events = app.audit_events(event_type).await;
    assert_eq!(events.len(), 1, "one {event_type}: {events:?}");
    let event = events.remove(0);
    assert!(event.request_id.is_some(), "{event:?}");
    event
}

/// Makes the database refuse every audit entry of `event_type` from now on.
async fn refuse_entries(app: &TestApp, event_type: &'static str) {
    let (sqlite, postgres): (&'static str, &'static str) = match event_type {
        "auth.password_changed" => (
            "CREATE TRIGGER refuse_entry BEFORE INSERT ON audit_events \
             WHEN NEW.event_type = 'auth.password_changed' BEGIN SELECT RAISE(ABORT, 'refused'); END",
            "ALTER TABLE audit_events ADD CONSTRAINT refuse_entry \
             CHECK (event_type <> 'auth.password_changed')",
        ),
        "auth.logout" => (
            "CREATE TRIGGER refuse_entry BEFORE INSERT ON audit_events \
             WHEN NEW.event_type = 'auth.logout' BEGIN SELECT RAISE(ABORT, 'refused'); END",
            "ALTER TABLE audit_events ADD CONSTRAINT refuse_entry \
             CHECK (event_type <> 'auth.logout')",
        ),
        other => panic!("no refusal for {other}"),
    };
    try_sql(app, sqlite, postgres)
        .await
        .expect("refusal set up");
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.authed(Method::GET, "/api/v1/users/me", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn mfa_enable_and_disable_commit_their_entries(app: TestApp) {
    let user = app.create_user("careful", Role::Patron).await;
    let token = app.access_token("careful").await;
    let (secret, _) = enrol(&app, &token).await;
    let enabled = only(&app, "auth.mfa_enabled").await;
    assert_eq!(
        (enabled.actor_id, enabled.subject_id),
        (Some(user.id), Some(user.id))
    );
    assert_eq!(enabled.details.0, json!({}));
    let stored = app.state.store.find_user(user.id).await.unwrap().unwrap();
    assert!(stored.mfa_enabled);

    app.clock.advance(time::Duration::seconds(60));
    let disabled = app
        .authed(Method::POST, "/api/v1/auth/mfa/totp/disable", &token)
        .json(&json!({"password": PASSWORD, "code": code(&secret, &app, 0)}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 204);
    let entry = only(&app, "auth.mfa_disabled").await;
    assert_eq!(
        (entry.actor_id, entry.subject_id),
        (Some(user.id), Some(user.id))
    );
    assert_eq!(entry.details.0, json!({}));
    let stored = app.state.store.find_user(user.id).await.unwrap().unwrap();
    assert!(!stored.mfa_enabled);
}

async fn a_password_change_commits_its_entry(app: TestApp) {
    let user = app.create_user("changer", Role::Patron).await;
    let token = app.access_token("changer").await;
    let response = app
        .authed(Method::POST, "/api/v1/auth/password/change", &token)
        .json(&json!({"current_password": PASSWORD, "new_password": "Brand-New-Secret-88"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let entry = only(&app, "auth.password_changed").await;
    assert_eq!(
        (entry.actor_id, entry.subject_id),
        (Some(user.id), Some(user.id))
    );
    assert_eq!(entry.details.0, json!({}));
    assert_eq!(
        app.login("changer", "Brand-New-Secret-88").await.status(),
        200
    );
}

async fn logout_all_commits_its_entry_with_the_count(app: TestApp) {
    let user = app.create_user("leaver", Role::Patron).await;
    let first = app.access_token("leaver").await;
    let second = app.access_token("leaver").await;
    let response = app
        .authed(Method::POST, "/api/v1/auth/logout-all", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let entry = only(&app, "auth.logout").await;
    assert_eq!(
        (entry.actor_id, entry.subject_id),
        (Some(user.id), Some(user.id))
    );
    assert_eq!(entry.details.0, json!({"all": true, "sessions": 2}));
    assert_eq!(me_status(&app, &first).await, 401);
    assert_eq!(me_status(&app, &second).await, 401);
}

async fn registration_and_email_verification_commit_their_entries(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "new@example.org", "username": "newcomer", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let user = app
        .state
        .store
        .find_user_by_login("newcomer")
        .await
        .unwrap()
        .unwrap();
    let registered = only(&app, "user.registered").await;
    assert_eq!(
        (registered.actor_id, registered.subject_id),
        (Some(user.id), Some(user.id))
    );
    assert_eq!(registered.details.0, json!({"username": "newcomer"}));
    assert!(app.audit_events("user.email_verified").await.is_empty());

    let token = app
        .mailed_token("new@example.org", "Confirm your email")
        .await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let verified = only(&app, "user.email_verified").await;
    assert_eq!(
        (verified.actor_id, verified.subject_id),
        (Some(user.id), Some(user.id))
    );
    assert_eq!(verified.details.0, json!({}));
    let stored = app.state.store.find_user(user.id).await.unwrap().unwrap();
    assert!(stored.email_verified);
    // A spent token verifies nothing and records nothing more.
    let again = app
        .client
        .post(app.url("/api/v1/auth/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_error(again, 400, "VALIDATION_ERROR").await;
    assert_eq!(app.audit_events("user.email_verified").await.len(), 1);
}

async fn the_mfa_sign_in_commits_its_session_with_its_entry(app: TestApp) {
    let user = app.create_user("twofactor", Role::Patron).await;
    let token = app.access_token("twofactor").await;
    let (secret, _) = enrol(&app, &token).await;
    let before = app.audit_events("auth.login_succeeded").await.len();
    app.clock.advance(time::Duration::seconds(60));
    let challenge = mfa_login(&app, "twofactor").await;
    let challenged = only(&app, "auth.mfa_challenged").await;
    assert_eq!(
        (challenged.actor_id, challenged.subject_id),
        (None, Some(user.id))
    );
    assert_eq!(challenged.details.0, json!({"identifier": "twofactor"}));

    let response = verify(&app, &challenge, json!({"code": code(&secret, &app, 0)})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(me_status(&app, access).await, 200);
    let succeeded = app.audit_events("auth.login_succeeded").await;
    assert_eq!(succeeded.len(), before + 1);
    let entry = &succeeded[0];
    assert_eq!(
        (entry.actor_id, entry.subject_id),
        (Some(user.id), Some(user.id))
    );
    let sessions: Value = app
        .authed(Method::GET, "/api/v1/auth/sessions", access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let current = sessions["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap_or_else(|| panic!("the current session is listed: {sessions}"));
    assert_eq!(
        entry.details.0,
        json!({"session_id": current["id"], "mfa": true})
    );
    // The spent challenge opens nothing more and records nothing more.
    let replay = verify(&app, &challenge, json!({"code": code(&secret, &app, 1)})).await;
    assert_error(replay, 401, "UNAUTHORIZED").await;
    assert_eq!(
        app.audit_events("auth.login_succeeded").await.len(),
        before + 1
    );
}

async fn refresh_reuse_commits_the_revocation_with_its_entry(app: TestApp) {
    let user = app.create_user("reuser", Role::Patron).await;
    let tokens = app.tokens("reuser", PASSWORD).await;
    let refresh = |token: String| {
        app.client
            .post(app.url("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": token}))
            .send()
    };
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rotated: Value = refresh(first.clone()).await.unwrap().json().await.unwrap();
    let access = rotated["access_token"].as_str().unwrap();
    assert!(
        app.audit_events("auth.refresh_reuse_detected")
            .await
            .is_empty()
    );
    // Well past the grace window, the spent token comes back.
    app.clock.advance(time::Duration::minutes(5));
    assert_error(refresh(first).await.unwrap(), 401, "UNAUTHORIZED").await;
    let entry = only(&app, "auth.refresh_reuse_detected").await;
    assert_eq!((entry.actor_id, entry.subject_id), (None, Some(user.id)));
    assert_eq!(entry.details.0, json!({"session_id": tokens["session_id"]}));
    assert_eq!(me_status(&app, access).await, 401, "the session is revoked");
}

async fn a_refused_entry_rolls_the_password_change_back(app: TestApp) {
    let user = app.create_user("unlucky", Role::Patron).await;
    let token = app.access_token("unlucky").await;
    let other = app.access_token("unlucky").await;
    refuse_entries(&app, "auth.password_changed").await;
    let response = app
        .authed(Method::POST, "/api/v1/auth/password/change", &token)
        .json(&json!({"current_password": PASSWORD, "new_password": "Brand-New-Secret-88"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_server_error(), "{}", response.status());
    // Nothing of the change stands: the old password, the other session.
    assert!(app.audit_events("auth.password_changed").await.is_empty());
    assert_eq!(me_status(&app, &other).await, 200);
    assert_eq!(app.login("unlucky", PASSWORD).await.status(), 200);
    assert_eq!(
        app.login("unlucky", "Brand-New-Secret-88").await.status(),
        401
    );
    let stored = app.state.store.find_user(user.id).await.unwrap().unwrap();
    assert!(stored.deleted_at.is_none());
}

async fn a_refused_entry_rolls_logout_all_back(app: TestApp) {
    app.create_user("stayer", Role::Patron).await;
    let first = app.access_token("stayer").await;
    let second = app.access_token("stayer").await;
    refuse_entries(&app, "auth.logout").await;
    let response = app
        .authed(Method::POST, "/api/v1/auth/logout-all", &first)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_server_error(), "{}", response.status());
    assert!(app.audit_events("auth.logout").await.is_empty());
    assert_eq!(me_status(&app, &first).await, 200);
    assert_eq!(me_status(&app, &second).await, 200);
}
