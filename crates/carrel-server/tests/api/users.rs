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
    export_drops_other_peoples_network_details,
    every_audit_filter_filters,
    staff_cannot_delete_demote_or_deactivate_themselves,
    a_corrupt_role_is_a_server_error_never_a_patron,
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

async fn export_drops_other_peoples_network_details(app: TestApp) {
    let patron = app.create_user("pat", Role::Patron).await;
    let librarian = app.create_user("desk", Role::Librarian).await;
    let token = app.access_token("pat").await;
    let staff = app.access_token("desk").await;
    // Staff act on the account from their own browser...
    let updated = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/users/{}", patron.id),
            &staff,
        )
        .header("user-agent", "StaffBrowser/9.9")
        .json(&json!({"full_name": "Pat Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    // ...and someone else fails to sign in as the patron.
    let failed = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", "Intruder/1.0")
        .json(&json!({"username": "pat", "password": "Wrong-Password-1!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);

    let text = app
        .authed(Method::GET, "/api/v1/users/me/export", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("StaffBrowser"), "a staff user agent leaked");
    assert!(
        !text.contains("Intruder"),
        "another person's user agent leaked"
    );
    let export: Value = serde_json::from_str(&text).unwrap();
    let events = export["audit_events"].as_array().unwrap();
    let by_staff: Vec<&Value> = events
        .iter()
        .filter(|e| e["actor_id"] == librarian.id.to_string())
        .collect();
    assert!(!by_staff.is_empty(), "the staff action is exported");
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "auth.login_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    for event in by_staff.iter().chain(&failed) {
        assert!(event["ip_address"].is_null(), "{event}");
        assert!(event["user_agent"].is_null(), "{event}");
        assert!(!event["request_id"].is_null(), "{event}");
    }
    // The patron's own events keep their own network details.
    let own = events
        .iter()
        .find(|e| {
            e["event_type"] == "auth.login_succeeded" && e["actor_id"] == patron.id.to_string()
        })
        .expect("own sign-in");
    assert_eq!(own["user_agent"], "carrel-tests/1.0");
    assert_eq!(own["ip_address"], "127.0.0.1");
    // The admin's audit log still has everything.
    let admin = app.create_user("auditor", Role::Admin).await;
    let audit: Value = app
        .authed(
            Method::GET,
            &format!("/api/v1/audit-events?actor_id={}", librarian.id),
            &app.access_token("auditor").await,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audit.to_string().contains("StaffBrowser"), "{audit}");
    let _ = admin;
}

async fn every_audit_filter_filters(app: TestApp) {
    use time::format_description::well_known::Rfc3339;
    let admin = app.create_user("auditor", Role::Admin).await;
    let first = app.create_user("first", Role::Patron).await;
    let second = app.create_user("second", Role::Patron).await;
    let t0 = app.clock.now();
    app.tokens("first", PASSWORD).await;
    app.login("second", "Wrong-Password-1!").await;
    app.clock.advance(time::Duration::hours(1));
    let t1 = app.clock.now();
    app.tokens("second", PASSWORD).await;
    app.clock.advance(time::Duration::hours(1));
    let token = app.access_token("auditor").await;
    let list = |query: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let response = app
                .authed(
                    Method::GET,
                    &format!("/api/v1/audit-events?limit=100{query}"),
                    &token,
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{query}");
            let page: Value = response.json().await.unwrap();
            page["data"].as_array().unwrap().clone()
        }
    };
    let all = list(String::new()).await;
    assert!(all.len() >= 4, "{all:?}");
    let stamp = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap();
    let at = |e: &Value| time::OffsetDateTime::parse(e["at"].as_str().unwrap(), &Rfc3339).unwrap();

    // event_type: exact.
    let failed = list("&event_type=auth.login_failed".into()).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["subject_id"], second.id.to_string());
    let succeeded = list("&event_type=auth.login_succeeded".into()).await;
    assert_eq!(succeeded.len(), 3, "first, second and the auditor");
    assert!(
        succeeded
            .iter()
            .all(|e| e["event_type"] == "auth.login_succeeded")
    );
    // actor_id.
    let by_first = list(format!("&actor_id={}", first.id)).await;
    assert!(!by_first.is_empty());
    assert!(
        by_first
            .iter()
            .all(|e| e["actor_id"] == first.id.to_string())
    );
    assert!(by_first.len() < all.len());
    // subject_id.
    let about_second = list(format!("&subject_id={}", second.id)).await;
    assert_eq!(about_second.len(), 2, "{about_second:?}");
    assert!(
        about_second
            .iter()
            .all(|e| e["subject_id"] == second.id.to_string())
    );
    // since and until, inclusive, alone and together.
    let since = list(format!("&since={}", stamp(t1))).await;
    assert!(!since.is_empty() && since.len() < all.len());
    assert!(since.iter().all(|e| at(e) >= t1));
    let until = list(format!("&until={}", stamp(t0 + time::Duration::minutes(1)))).await;
    assert!(!until.is_empty() && until.len() < all.len());
    assert!(
        until
            .iter()
            .all(|e| at(e) <= t0 + time::Duration::minutes(1))
    );
    assert_eq!(
        since.len() + until.len(),
        all.len(),
        "the two windows split the log"
    );
    let window = list(format!(
        "&since={}&until={}",
        stamp(t1),
        stamp(t1 + time::Duration::minutes(1))
    ))
    .await;
    assert!(!window.is_empty());
    assert!(
        window
            .iter()
            .all(|e| e["subject_id"] == second.id.to_string()),
        "{window:?}"
    );
    // Filters combine.
    let combined = list(format!(
        "&event_type=auth.login_succeeded&subject_id={}",
        second.id
    ))
    .await;
    assert_eq!(combined.len(), 1);

    // A value that is not a known event type is refused, never ignored.
    for bad in [
        "auth.nothing",
        "AUTH.LOGIN_FAILED",
        "auth.login",
        "auth.login_%25",
        "auth.login_failed%20",
        "",
    ] {
        let response = app
            .authed(
                Method::GET,
                &format!("/api/v1/audit-events?event_type={bad}"),
                &token,
            )
            .send()
            .await
            .unwrap();
        let body = assert_error(response, 400, "VALIDATION_ERROR").await;
        assert!(
            body["details"]["fields"]["event_type"].is_string(),
            "{bad}: {body}"
        );
    }
    let _ = admin;
}

async fn staff_cannot_delete_demote_or_deactivate_themselves(app: TestApp) {
    let admin = app.create_user("chief", Role::Admin).await;
    let token = app.access_token("chief").await;
    let me = format!("/api/v1/users/{}", admin.id);

    // Without the password (`DELETE /users/me`), a token alone never deletes its own account.
    assert_error(
        app.authed(Method::DELETE, &me, &token)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    for body in [json!({"role": "patron"}), json!({"is_active": false})] {
        assert_error(
            app.authed(Method::PATCH, &me, &token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            403,
            "FORBIDDEN",
        )
        .await;
    }
    // Harmless self-edits through the staff endpoint still work, and nothing changed.
    let response = app
        .authed(Method::PATCH, &me, &token)
        .json(&json!({"full_name": "Chief Librarian", "role": "admin", "is_active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["role"], "admin");
    assert_eq!(user["is_active"], true);
    assert_eq!(user["deleted_at"], Value::Null);
    assert_eq!(user["full_name"], "Chief Librarian");

    // Another admin may still do all three.
    app.create_user("deputy", Role::Admin).await;
    let deputy = app.access_token("deputy").await;
    let response = app
        .authed(Method::PATCH, &me, &deputy)
        .json(&json!({"is_active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .authed(Method::DELETE, &me, &deputy)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

/// Sets `username`'s role to a word that is not a role, past the CHECK
/// constraint (SQLite: ignored on this connection; PostgreSQL: dropped), as a
/// hand edit or an old bug could leave it.
async fn corrupt_role(app: &TestApp, username: &str) {
    use sqlx::Connection as _;
    const CORRUPT: &str = "UPDATE users SET role = 'superuser' WHERE username = $1";
    match app.state.store.backend() {
        carrel_store::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(app.db.url()).await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = ON")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(CORRUPT)
                .bind(username)
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        carrel_store::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(app.db.url()).await.unwrap();
            sqlx::query("ALTER TABLE users DROP CONSTRAINT users_role_check")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(CORRUPT)
                .bind(username)
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            assert!(
                app.state
                    .store
                    .revocations_caught_up(std::time::Duration::from_secs(2))
                    .await
            );
        }
    }
}

/// An account whose stored role is not a role is refused with a 500 (the row
/// is corrupt) on every way in: its live session and a new login. It is never
/// let in with a patron's rights.
async fn a_corrupt_role_is_a_server_error_never_a_patron(app: TestApp) {
    app.create_user("eve", Role::Librarian).await;
    app.create_user("ann", Role::Patron).await;
    let token = app.access_token("eve").await;
    let me = app.authed(Method::GET, "/api/v1/users/me", &token);
    assert_eq!(me.send().await.unwrap().status(), 200);
    corrupt_role(&app, "eve").await;

    let me = app.authed(Method::GET, "/api/v1/users/me", &token);
    assert_error(me.send().await.unwrap(), 500, "INTERNAL_ERROR").await;
    let patrons_only = app.authed(Method::GET, "/api/v1/users/me/loans", &token);
    assert_error(patrons_only.send().await.unwrap(), 500, "INTERNAL_ERROR").await;
    assert_error(app.login("eve", PASSWORD).await, 500, "INTERNAL_ERROR").await;
    // Other accounts are unaffected.
    let ann = app.access_token("ann").await;
    let me = app.authed(Method::GET, "/api/v1/users/me", &ann);
    assert_eq!(me.send().await.unwrap().status(), 200);
}
