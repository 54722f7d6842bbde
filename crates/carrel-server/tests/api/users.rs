//! `/users`: profiles, mass assignment, soft delete and restore, staff
//! boundaries, invitations, listing, export and the audit log.

use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error, backend_tests};

backend_tests!(
    profile_updates_refuse_mass_assignment,
    deleted_accounts_cannot_log_in_until_restored,
    staff_boundaries,
    invitations_set_a_password,
    staff_listing_filters_and_pages,
    export_contains_everything_but_secrets,
    audit_log_is_admin_only_and_filterable,
);

async fn profile_updates_refuse_mass_assignment(app: TestApp) {
    app.create_user("mallory", Role::Patron).await;
    app.create_user("taken", Role::Patron).await;
    let token = app.access_token("mallory").await;
    let patch = |body: Value| {
        app.authed(Method::PATCH, "/api/v1/users/me", &token)
            .json(&body)
            .send()
    };
    for field in [
        json!({"role": "admin"}),
        json!({"is_active": false}),
        json!({"email_verified": true}),
        json!({"id": uuid::Uuid::nil()}),
        json!({"password_hash": "x"}),
    ] {
        let body = assert_error(patch(field.clone()).await.unwrap(), 422, "VALIDATION_ERROR").await;
        let name = field.as_object().unwrap().keys().next().unwrap().clone();
        assert!(body["details"]["fields"][&name].is_string(), "{body}");
    }
    let me: Value = app
        .authed(Method::GET, "/api/v1/users/me", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "patron");

    let updated: Value =
        patch(json!({"full_name": "  Mallory M  ", "username": "mal", "keep_loan_history": true}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(updated["full_name"], "Mallory M");
    assert_eq!(updated["username"], "mal");
    assert_eq!(updated["keep_loan_history"], true);
    assert_error(
        patch(json!({"username": "TAKEN"})).await.unwrap(),
        409,
        "CONFLICT",
    )
    .await;
    assert_error(
        patch(json!({"username": "x"})).await.unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let cleared: Value = patch(json!({"full_name": null}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(cleared["full_name"].is_null());
}

async fn deleted_accounts_cannot_log_in_until_restored(app: TestApp) {
    let user = app.create_user("leaver", Role::Patron).await;
    app.create_user("desk", Role::Librarian).await;
    let token = app.access_token("leaver").await;
    let delete = |password: &str| {
        app.authed(Method::DELETE, "/api/v1/users/me", &token)
            .json(&json!({"password": password}))
            .send()
    };
    assert_error(
        delete("Not-My-Password-1").await.unwrap(),
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(delete(PASSWORD).await.unwrap().status(), 204);
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &token)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_error(
        app.login("leaver", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;

    let staff = app.access_token("desk").await;
    let view: Value = app
        .authed(Method::GET, &format!("/api/v1/users/{}", user.id), &staff)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(view["deleted_at"].is_string());
    let stored = app.state.store.find_user(user.id).await.unwrap().unwrap();
    assert_eq!(stored.deleted_by, Some(user.id));
    let response = app
        .authed(
            Method::POST,
            &format!("/api/v1/users/{}/restore", user.id),
            &staff,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.unwrap()["deleted_at"].is_null());
    assert_eq!(app.login("leaver", PASSWORD).await.status(), 200);
    assert_eq!(app.audit_events("user.deleted").await.len(), 1);
    assert_eq!(app.audit_events("user.restored").await.len(), 1);
}

async fn staff_boundaries(app: TestApp) {
    let patron = app.create_user("reader", Role::Patron).await;
    let other_librarian = app.create_user("colleague", Role::Librarian).await;
    let admin = app.create_user("chief", Role::Admin).await;
    app.create_user("desk", Role::Librarian).await;
    let librarian = app.access_token("desk").await;
    let patron_token = app.access_token("reader").await;
    let admin_token = app.access_token("chief").await;

    // Patrons cannot reach staff endpoints.
    assert_error(
        app.authed(Method::GET, "/api/v1/users", &patron_token)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.authed(
            Method::GET,
            &format!("/api/v1/users/{}", admin.id),
            &patron_token,
        )
        .send()
        .await
        .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.authed(Method::GET, "/api/v1/audit-events", &patron_token)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;

    // Librarians create patrons only.
    let create = |token: &str, role: &str, name: &str| {
        app.authed(Method::POST, "/api/v1/users", token)
            .json(&json!({"email": format!("{name}@example.org"), "username": name, "role": role, "password": PASSWORD}))
            .send()
    };
    assert_eq!(
        create(&librarian, "patron", "newpatron")
            .await
            .unwrap()
            .status(),
        201
    );
    assert_error(
        create(&librarian, "librarian", "newlib").await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        create(&librarian, "admin", "newadmin").await.unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        create(&librarian, "patron", "newpatron").await.unwrap(),
        409,
        "CONFLICT",
    )
    .await;

    // Librarians manage patrons, not staff, and never roles.
    let patch = |token: &str, id: uuid::Uuid, body: Value| {
        app.authed(Method::PATCH, &format!("/api/v1/users/{id}"), token)
            .json(&body)
            .send()
    };
    assert_eq!(
        patch(&librarian, patron.id, json!({"full_name": "Renamed"}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_error(
        patch(&librarian, admin.id, json!({"full_name": "Pwned"}))
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        patch(&librarian, other_librarian.id, json!({"is_active": false}))
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        patch(&librarian, patron.id, json!({"role": "librarian"}))
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.authed(
            Method::DELETE,
            &format!("/api/v1/users/{}", admin.id),
            &librarian,
        )
        .send()
        .await
        .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.authed(
            Method::GET,
            &format!("/api/v1/users/{}", uuid::Uuid::now_v7()),
            &librarian,
        )
        .send()
        .await
        .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        app.authed(Method::GET, "/api/v1/users/not-a-uuid", &librarian)
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;

    // Admins change roles; the change ends the target's sessions at once.
    let response = patch(&admin_token, patron.id, json!({"role": "librarian"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["role"], "librarian");
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &patron_token)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    let changes = app.audit_events("user.role_changed").await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].actor_id, Some(admin.id));
    assert_eq!(changes[0].details.0["to"], "librarian");

    // Deactivation also ends sessions.
    let colleague_token = app.access_token("colleague").await;
    assert_eq!(
        patch(
            &admin_token,
            other_librarian.id,
            json!({"is_active": false})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_error(
        app.authed(Method::GET, "/api/v1/users/me", &colleague_token)
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
}

async fn invitations_set_a_password(app: TestApp) {
    app.create_user("desk", Role::Librarian).await;
    let staff = app.access_token("desk").await;
    let response = app
        .authed(Method::POST, "/api/v1/users", &staff)
        .json(&json!({"email": "invitee@example.org", "username": "invitee"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_error(
        app.login("invitee", PASSWORD).await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    let token = app.mailed_token("invitee@example.org", "invited").await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/password/reset"))
        .json(&json!({"token": token, "new_password": "Welcome-Aboard-Pier-12"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let tokens = app.tokens("invitee", "Welcome-Aboard-Pier-12").await;
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
    assert_eq!(me["email_verified"], true);
}

async fn staff_listing_filters_and_pages(app: TestApp) {
    for i in 0..5 {
        app.create_user(&format!("member{i}"), Role::Patron).await;
    }
    app.create_user("desk", Role::Librarian).await;
    app.create_user("zed", Role::Admin).await;
    let staff = app.access_token("desk").await;
    let list = |query: &str| {
        app.authed(Method::GET, &format!("/api/v1/users{query}"), &staff)
            .send()
    };

    let page: Value = list("?role=patron&limit=2")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let mut seen: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page: Value = list(&format!("?role=patron&limit=2&cursor={c}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    seen.sort();
    assert_eq!(
        seen,
        ["member0", "member1", "member2", "member3", "member4"]
    );

    let found: Value = list("?q=MEMBER3").await.unwrap().json().await.unwrap();
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    let none: Value = list("?q=%25").await.unwrap().json().await.unwrap();
    assert_eq!(
        none["data"].as_array().unwrap().len(),
        0,
        "LIKE wildcards are literal"
    );
    let injection: Value = list("?q=%27%20OR%201%3D1%20--")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(injection["data"].as_array().unwrap().len(), 0);

    for _ in 0..5 {
        app.login("member0", "Wrong-Password-1!").await;
    }
    let locked: Value = list("?status=locked").await.unwrap().json().await.unwrap();
    assert_eq!(locked["data"].as_array().unwrap().len(), 1);
    assert_eq!(locked["data"][0]["username"], "member0");

    for bad in [
        "?status=weird",
        "?role=root",
        "?limit=0",
        "?limit=101",
        "?sort=username",
        "?cursor=garbage",
        "?limit=abc",
    ] {
        assert_error(list(bad).await.unwrap(), 400, "VALIDATION_ERROR").await;
    }
}

async fn export_contains_everything_but_secrets(app: TestApp) {
    app.create_user("exporter", Role::Patron).await;
    let token = app.access_token("exporter").await;
    app.login("exporter", "Wrong-Password-1!").await;
    let response = app
        .authed(Method::GET, "/api/v1/users/me/export", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["profile"]["username"], "exporter");
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    let events: Vec<&str> = export["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"auth.login_succeeded") && events.contains(&"auth.login_failed"),
        "{events:?}"
    );
    for field in ["loans", "holds", "fines", "payments"] {
        assert!(export[field].is_array());
    }
    for secret in [
        "$argon2",
        "password_hash",
        "refresh_token",
        PASSWORD,
        "token_hash",
    ] {
        assert!(!text.contains(secret), "{secret} in the export");
    }
}

async fn audit_log_is_admin_only_and_filterable(app: TestApp) {
    let admin = app.create_user("auditor", Role::Admin).await;
    app.create_user("desk", Role::Librarian).await;
    app.login("desk", "Wrong-Password-1!").await;
    let token = app.access_token("auditor").await;
    let librarian = app.access_token("desk").await;
    assert_error(
        app.authed(Method::GET, "/api/v1/audit-events", &librarian)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;

    let response = app
        .authed(
            Method::GET,
            "/api/v1/audit-events?event_type=auth.login_failed",
            &token,
        )
        .send()
        .await
        .unwrap();
    let page: Value = response.json().await.unwrap();
    let events = page["data"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert!(event["actor_id"].is_null());
    assert_eq!(event["details"]["identifier"], "desk");
    for field in [
        "id",
        "subject_id",
        "ip_address",
        "user_agent",
        "request_id",
        "at",
    ] {
        assert!(!event[field].is_null(), "{field}");
    }
    let mine: Value = app
        .authed(
            Method::GET,
            &format!("/api/v1/audit-events?actor_id={}", admin.id),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_id"] == admin.id.to_string())
    );
    assert_error(
        app.authed(Method::GET, "/api/v1/audit-events?since=yesterday", &token)
            .send()
            .await
            .unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        app.authed(
            Method::GET,
            "/api/v1/audit-events?actor_id=1%27%20OR%201=1",
            &token,
        )
        .send()
        .await
        .unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;

    let all: Value = app
        .authed(Method::GET, "/api/v1/audit-events?limit=100", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !all.to_string().contains(PASSWORD),
        "no password in the audit log"
    );
}
