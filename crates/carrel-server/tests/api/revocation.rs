//! Revocation with the in-process session view: immediate on the instance that
//! revokes, within a second on every other instance over the same database, and
//! never missed while the invalidation channel is down.

use std::time::{Duration, Instant};

use carrel_core::roles::Role;
use carrel_store::Backend;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, Spawn, TestApp, backend_tests};

backend_tests!(
    revocation_is_immediate_on_the_instance_that_revokes,
    requests_started_after_a_logout_returned_are_refused,
    revocation_reaches_another_instance_within_a_second,
    a_cut_channel_falls_back_to_the_database_and_recovers,
);

/// A second server over the same database and key material (another instance).
async fn second_instance(app: &TestApp) -> TestApp {
    let spawn = Spawn {
        env: vec![(
            "CARREL_DATA_DIR",
            app.state.config.data_dir.display().to_string(),
        )],
        database_url: Some(app.db.url().to_owned()),
        ..Default::default()
    };
    TestApp::spawn_with(app.state.store.backend(), spawn)
        .await
        .expect("second instance")
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.authed(Method::GET, "/api/v1/users/me", token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Waits until the instance's session view is in use (PostgreSQL: its listener
/// has subscribed and heard its own heartbeat).
async fn view_in_use(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.state.store.session_view_status().trusted {
        assert!(
            Instant::now() < deadline,
            "the session view never came into use"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends `/users/me` with `token` to `app` until it is refused; returns how long
/// that took. Fails if it is still accepted after two seconds.
async fn refused_within(app: &TestApp, token: &str, since: Instant) -> Duration {
    loop {
        if me_status(app, token).await == 401 {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "a revoked session was still accepted after two seconds"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Answers from the view: the second request for a session is a hit. The
/// notification channel is database-wide, so a revocation by a test running
/// beside this one may land between a read and the view's fill; the view then
/// drops that fill (by design: the read may predate the change) and the next
/// read fills it. A few attempts within a second absorb that; a view that never
/// answers still fails.
async fn assert_served_from_the_view(app: &TestApp, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        assert_eq!(me_status(app, token).await, 200);
        let before = app.state.store.session_view_status().hits;
        assert_eq!(me_status(app, token).await, 200);
        if app.state.store.session_view_status().hits > before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the session was not answered from the view"
        );
    }
}

async fn revocation_is_immediate_on_the_instance_that_revokes(app: TestApp) {
    app.create_user("boss", Role::Admin).await;
    let admin_token = app.access_token("boss").await;
    let user = app.create_user("reader", Role::Patron).await;
    view_in_use(&app).await;

    // Logout.
    let token = app.access_token("reader").await;
    assert_served_from_the_view(&app, &token).await;
    let status = app
        .authed(Method::POST, "/api/v1/auth/logout", &token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(me_status(&app, &token).await, 401);

    // Password change: other sessions end, the one that changed it stays.
    let here = app.access_token("reader").await;
    let elsewhere = app.access_token("reader").await;
    assert_served_from_the_view(&app, &here).await;
    assert_served_from_the_view(&app, &elsewhere).await;
    let status = app
        .authed(Method::POST, "/api/v1/auth/password/change", &here)
        .json(&json!({"current_password": PASSWORD, "new_password": "Fresh-Copper-Kettle-77"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(me_status(&app, &elsewhere).await, 401);
    assert_eq!(me_status(&app, &here).await, 200);

    // A profile change shows at once (the view holds the account).
    let status = app
        .authed(Method::PATCH, "/api/v1/users/me", &here)
        .json(&json!({"full_name": "Renamed Reader"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let me: serde_json::Value = app
        .authed(Method::GET, "/api/v1/users/me", &here)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["full_name"], "Renamed Reader");

    // Role change.
    let status = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/users/{}", user.id),
            &admin_token,
        )
        .json(&json!({"role": "librarian"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(me_status(&app, &here).await, 401);

    // Deactivation.
    let here = app.tokens("reader", "Fresh-Copper-Kettle-77").await["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_served_from_the_view(&app, &here).await;
    let status = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/users/{}", user.id),
            &admin_token,
        )
        .json(&json!({"is_active": false}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(me_status(&app, &here).await, 401);
}

/// Ordering: a request that starts after the revoking request returned is
/// refused, even while many requests with the same token are in flight.
async fn requests_started_after_a_logout_returned_are_refused(app: TestApp) {
    app.create_user("busy", Role::Patron).await;
    view_in_use(&app).await;
    for _round in 0..3 {
        let token = app.access_token("busy").await;
        assert_served_from_the_view(&app, &token).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut hammers = Vec::new();
        for _ in 0..4 {
            let (client, url, token, stop) = (
                app.client.clone(),
                app.url("/api/v1/users/me"),
                token.clone(),
                stop.clone(),
            );
            hammers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let started = Instant::now();
                    let status = client
                        .get(&url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("request")
                        .status()
                        .as_u16();
                    seen.push((started, status));
                }
                seen
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = app
            .authed(Method::POST, "/api/v1/auth/logout", &token)
            .send()
            .await
            .unwrap()
            .status();
        let returned = Instant::now();
        assert_eq!(status, 204);
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut before = 0;
        let mut after = 0;
        for hammer in hammers {
            for (started, status) in hammer.await.unwrap() {
                if started > returned {
                    assert_eq!(
                        status, 401,
                        "a request started after the logout returned was served"
                    );
                    after += 1;
                } else if status == 200 {
                    before += 1;
                }
            }
        }
        assert!(before > 0 && after > 0, "before {before}, after {after}");
    }
}

async fn revocation_reaches_another_instance_within_a_second(a: TestApp) {
    let b = second_instance(&a).await;
    a.create_user("boss", Role::Admin).await;
    let admin_token = a.access_token("boss").await;
    let user = a.create_user("roamer", Role::Patron).await;
    view_in_use(&a).await;
    view_in_use(&b).await;

    // Logout on A, refused on B.
    let token = a.access_token("roamer").await;
    assert_served_from_the_view(&b, &token).await;
    let status = a
        .authed(Method::POST, "/api/v1/auth/logout", &token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let took = refused_within(&b, &token, Instant::now()).await;
    assert!(
        took < Duration::from_secs(1),
        "logout reached B after {took:?}"
    );

    // Password change on A, the other session refused on B.
    let here = a.access_token("roamer").await;
    let elsewhere = a.access_token("roamer").await;
    assert_served_from_the_view(&b, &elsewhere).await;
    let status = a
        .authed(Method::POST, "/api/v1/auth/password/change", &here)
        .json(&json!({"current_password": PASSWORD, "new_password": "Fresh-Copper-Kettle-77"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let took = refused_within(&b, &elsewhere, Instant::now()).await;
    assert!(
        took < Duration::from_secs(1),
        "password change reached B after {took:?}"
    );
    assert_eq!(me_status(&b, &here).await, 200);

    // Deactivation on A.
    assert_served_from_the_view(&b, &here).await;
    let status = a
        .authed(
            Method::PATCH,
            &format!("/api/v1/users/{}", user.id),
            &admin_token,
        )
        .json(&json!({"is_active": false}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let took = refused_within(&b, &here, Instant::now()).await;
    assert!(
        took < Duration::from_secs(1),
        "deactivation reached B after {took:?}"
    );

    // A profile change on A shows on B too (the view holds the account).
    let token = b.access_token("boss").await;
    assert_served_from_the_view(&b, &token).await;
    let status = a
        .authed(Method::PATCH, "/api/v1/users/me", &token)
        .json(&json!({"full_name": "Renamed Boss"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let since = Instant::now();
    loop {
        let me: serde_json::Value = b
            .authed(Method::GET, "/api/v1/users/me", &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if me["full_name"] == "Renamed Boss" {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "stale profile on B: {me}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Terminates B's listener connection and holds it down: B then checks every
/// request in the database (no revoked session accepted, ever), and once the
/// channel is back it answers from its (emptied) view again.
async fn a_cut_channel_falls_back_to_the_database_and_recovers(a: TestApp) {
    if a.state.store.backend() != Backend::Postgres {
        return; // SQLite has no channel: one instance, an exact view.
    }
    let b = second_instance(&a).await;
    a.create_user("cut", Role::Patron).await;
    view_in_use(&b).await;
    let keep = a.access_token("cut").await;
    let doomed = a.access_token("cut").await;
    assert_served_from_the_view(&b, &keep).await;
    assert_served_from_the_view(&b, &doomed).await;
    let status = b.state.store.session_view_status();
    let pid = status.listener_pid.expect("B's listener is subscribed");
    let subscriptions = status.subscriptions;

    b.state.store.hold_revocation_channel(true);
    let admin = sqlx::PgPool::connect(a.db.url()).await.expect("connect");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(i32::try_from(pid).unwrap())
        .fetch_one(&admin)
        .await
        .expect("terminate the listener");
    assert!(killed);
    // Within MAX_LAG at most, B stops using its view.
    let since = Instant::now();
    while b.state.store.session_view_status().trusted {
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "B still trusts a dead channel"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // While the channel is down: a revocation is refused at once on B, and
    // live sessions are still served (from the database).
    let status = a
        .authed(Method::POST, "/api/v1/auth/logout", &doomed)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(me_status(&b, &doomed).await, 401);
    let hits = b.state.store.session_view_status().hits;
    for _ in 0..5 {
        assert_eq!(me_status(&b, &keep).await, 200);
        assert_eq!(me_status(&b, &doomed).await, 401);
    }
    assert_eq!(
        b.state.store.session_view_status().hits,
        hits,
        "the view answered while the channel was down"
    );
    // A change made while down (its notification is lost) is not missed later.
    sqlx::query("UPDATE users SET is_active = FALSE WHERE username = 'cut'")
        .execute(&admin)
        .await
        .expect("deactivate behind Carrel's back");
    assert_eq!(me_status(&b, &keep).await, 401);
    sqlx::query("UPDATE users SET is_active = TRUE WHERE username = 'cut'")
        .execute(&admin)
        .await
        .expect("reactivate");

    // Back: B resubscribes, empties its view, and uses it again.
    b.state.store.hold_revocation_channel(false);
    view_in_use(&b).await;
    let status = b.state.store.session_view_status();
    assert!(status.subscriptions > subscriptions);
    assert_ne!(status.listener_pid, Some(pid));
    assert_eq!(me_status(&b, &doomed).await, 401);
    assert_served_from_the_view(&b, &keep).await;
    // And notifications flow again.
    let status = a
        .authed(Method::POST, "/api/v1/auth/logout", &keep)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let took = refused_within(&b, &keep, Instant::now()).await;
    assert!(
        took < Duration::from_secs(1),
        "after reconnect, logout reached B after {took:?}"
    );
    admin.close().await;
}
