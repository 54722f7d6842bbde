//! The durable outbox: mail is written in the transaction that causes it, is
//! sent after a crash, is sent once by several instances, is retried with
//! backoff and dead-lettered, and an admin can see and requeue it.

use std::time::Duration as StdDuration;

use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::desk::{ADMIN, Desk, LIBRARIAN};
use crate::helpers::{TestApp, assert_error, try_sql};

/// Like `backend_tests_with!`, with a whole [`Spawn`].
macro_rules! outbox_tests {
    ($spawn:expr => $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let spawn: $crate::helpers::Spawn<'static> = $spawn;
                let Some(app) = $crate::helpers::TestApp::spawn_with(carrel_store::Backend::Sqlite, spawn).await else { return };
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let spawn: $crate::helpers::Spawn<'static> = $spawn;
                let Some(app) = $crate::helpers::TestApp::spawn_with(carrel_store::Backend::Postgres, spawn).await else { return };
                super::$name(app).await;
            }
        }
    )*};
}

outbox_tests!(crate::helpers::Spawn::default() =>
    hold_ready_mail_commits_or_rolls_back_with_the_return,
    only_admins_see_the_outbox,
);

outbox_tests!(crate::helpers::Spawn { no_outbox_sender: true, ..Default::default() } =>
    mail_committed_before_a_crash_is_sent_by_the_next_instance,
    two_instances_send_each_message_exactly_once,
    security_mail_goes_before_bulk_notices,
);

outbox_tests!(crate::helpers::Spawn {
        env: vec![
            ("CARREL_OUTBOX_MAX_ATTEMPTS", "3".to_owned()),
            ("CARREL_OUTBOX_BACKOFF", "60s".to_owned()),
            ("CARREL_OUTBOX_BACKOFF_MAX", "1h".to_owned()),
        ],
        ..Default::default()
    } =>
    a_failing_transport_is_retried_with_backoff_then_dead_lettered_and_requeued,
);

const FLUSH: StdDuration = StdDuration::from_secs(10);

/// Mail in the file outbox right now, without delivering anything.
fn delivered(app: &TestApp) -> Vec<carrel_mail::OutboxMessage> {
    carrel_mail::read_outbox(&app.state.config.mail_outbox).unwrap_or_default()
}

/// `GET /api/v1/admin/outbox?…` as the admin.
async fn listing(desk: &Desk, query: &str) -> Vec<Value> {
    let page = desk
        .get_json(ADMIN, &format!("/api/v1/admin/outbox{query}"))
        .await;
    // Never the content: no payload, body or link in any entry.
    let text = page.to_string();
    assert!(!text.contains("token="), "{text}");
    assert!(
        !text.contains("payload") && !text.contains("body"),
        "{text}"
    );
    page["data"].as_array().expect("data").clone()
}

async fn forgot(app: &TestApp, email: &str) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/password/forgot"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn hold_ready_mail_commits_or_rolls_back_with_the_return(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.patron("bob").await;
    let item = desk.item("Persuasion", "book", &["P-1"]).await;
    desk.lend("P-1", ann.id).await;
    let hold: Value = desk.place_hold("bob", item).await.json().await.unwrap();
    assert_eq!(hold["status"], "waiting");

    // The return's audit entry fails, so the return rolls back, and with it
    // the hold becoming ready and its mail.
    try_sql(
        &desk.app,
        "CREATE TRIGGER refuse_return_audit BEFORE INSERT ON audit_events \
         WHEN NEW.event_type = 'loan.returned' BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        "CREATE FUNCTION refuse_return_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.event_type = 'loan.returned' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$",
    )
    .await
    .expect("trigger function");
    try_sql(
        &desk.app,
        "SELECT 1",
        "CREATE TRIGGER refuse_return_audit BEFORE INSERT ON audit_events \
         FOR EACH ROW EXECUTE FUNCTION refuse_return_audit()",
    )
    .await
    .expect("trigger");
    assert_eq!(desk.give_back("P-1").await.status(), 500);
    assert_eq!(desk.hold(&hold["id"]).await["status"], "waiting");
    assert!(
        listing(&desk, "").await.is_empty(),
        "no mail for a rolled-back return"
    );
    let pickups = |mails: &[carrel_mail::OutboxMessage]| {
        mails
            .iter()
            .filter(|m| m.to.contains("bob@") && m.subject == "Your hold is ready for pickup")
            .count()
    };
    assert_eq!(pickups(&desk.app.outbox().await), 0);

    try_sql(
        &desk.app,
        "DROP TRIGGER refuse_return_audit",
        "DROP TRIGGER refuse_return_audit ON audit_events",
    )
    .await
    .expect("drop trigger");
    let back = desk.returned("P-1").await;
    assert_eq!(back["hold"]["status"], "ready");
    let mails = desk.app.outbox().await;
    assert_eq!(pickups(&mails), 1);
    let mail = mails.iter().find(|m| m.to.contains("bob@")).unwrap();
    assert!(mail.body.contains("Persuasion"), "{}", mail.body);

    let entries = listing(&desk, "?state=sent").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry["kind"], "hold_ready");
    assert_eq!(entry["recipient"], "bob@example.org");
    assert_eq!(entry["priority"], "normal");
    assert_eq!(entry["attempts"], 1);
    assert!(entry["sent_at"].is_string());
    // Once sent, the stored parameters are gone.
    assert_eq!(
        try_sql(
            &desk.app,
            "UPDATE outbox_messages SET kind = kind WHERE payload IS NOT NULL",
            "UPDATE outbox_messages SET kind = kind WHERE payload IS NOT NULL",
        )
        .await,
        Ok(0)
    );
    assert!(listing(&desk, "?state=pending").await.is_empty());

    // Sent messages are deleted after the retention period (7 days), not before.
    let purge = || carrel_server::outbox::purge(&desk.app.state);
    desk.app
        .clock
        .advance(Duration::days(7) - Duration::minutes(1));
    assert_eq!(purge().await.unwrap(), 0);
    desk.app.clock.advance(Duration::minutes(2));
    assert_eq!(purge().await.unwrap(), 1);
    assert!(listing(&desk, "").await.is_empty());
}

async fn mail_committed_before_a_crash_is_sent_by_the_next_instance(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    // This instance commits two reset requests but never sends (no sender:
    // as if it died right after the commits).
    forgot(&desk.app, &ann.email).await;
    forgot(&desk.app, &bob.email).await;
    assert!(delivered(&desk.app).is_empty());
    let pending = listing(&desk, "?state=pending").await;
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(
        pending
            .iter()
            .all(|m| m["kind"] == "password_reset" && m["priority"] == "security")
    );

    // And one message it had claimed (its lease runs) when it died.
    let crashed = uuid::Uuid::new_v4();
    let claimed = desk
        .app
        .state
        .store
        .claim_outbox(crashed, desk.now(), Duration::minutes(2), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    // A new instance on the same database sends the unclaimed one at once…
    let next = desk.app.another_instance().await;
    let sender = carrel_server::outbox::spawn(next.clone());
    assert!(carrel_server::outbox::flush(&next, FLUSH).await);
    let first: Vec<String> = delivered(&desk.app).into_iter().map(|m| m.to).collect();
    assert_eq!(
        first,
        std::slice::from_ref(&bob.email),
        "the claimed message waits for its lease"
    );
    // …and the claimed one once the dead instance's lease has run out.
    desk.app
        .clock
        .advance(Duration::minutes(2) + Duration::seconds(1));
    assert!(carrel_server::outbox::flush(&next, FLUSH).await);
    sender.abort();
    let mails = delivered(&desk.app);
    assert_eq!(mails.len(), 2);
    for user in [&ann, &bob] {
        let mail = mails.iter().find(|m| m.to.contains(&user.email)).unwrap();
        assert_eq!(mail.subject, "Reset your password");
        assert!(mail.body.contains("/reset-password?token="));
    }
    // The link works: the token and its mail were committed together.
    let token = desk
        .app
        .mailed_token(&ann.email, "Reset your password")
        .await;
    let reset = desk
        .app
        .client
        .post(desk.app.url("/api/v1/auth/password/reset"))
        .json(&json!({"token": token, "new_password": "Brisk-Meadow-Falcon-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    let sent = listing(&desk, "?state=sent").await;
    assert_eq!(sent.len(), 2);
    assert!(listing(&desk, "?state=pending").await.is_empty());
    next.store.close().await;
}

async fn two_instances_send_each_message_exactly_once(app: TestApp) {
    const MESSAGES: usize = 90;
    let desk = Desk::open(app).await;
    let messages: Vec<_> = (0..MESSAGES)
        .map(|n| {
            carrel_server::outbox::messages::username_taken(
                &format!("reader{n}@example.org"),
                &format!("reader{n}"),
            )
        })
        .collect();
    desk.app
        .state
        .store
        .enqueue_outbox(&messages, desk.now())
        .await
        .unwrap();

    // Two instances (each with its background sender) plus a flush on each,
    // all draining the same rows at once.
    let first = desk.app.state.clone();
    let second = desk.app.another_instance().await;
    let senders = [
        carrel_server::outbox::spawn(first.clone()),
        carrel_server::outbox::spawn(second.clone()),
    ];
    let drain = |state: carrel_server::state::AppState| {
        tokio::spawn(async move {
            let mut sent = 0;
            loop {
                let report = carrel_server::outbox::drain_once(&state).await.unwrap();
                sent += report.sent;
                if report.claimed == 0 {
                    break;
                }
            }
            sent
        })
    };
    let (a, b) = (drain(first.clone()), drain(second.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(carrel_server::outbox::flush(&first, FLUSH).await);
    assert!(carrel_server::outbox::flush(&second, FLUSH).await);
    for sender in senders {
        sender.abort();
    }
    eprintln!(
        "drained by the first instance's loop: {a}, the second's: {b}, the senders: {}",
        MESSAGES.saturating_sub(a + b)
    );

    let mails = delivered(&desk.app);
    assert_eq!(mails.len(), MESSAGES, "each message once");
    let mut recipients: Vec<&str> = mails.iter().map(|m| m.to.as_str()).collect();
    recipients.sort_unstable();
    recipients.dedup();
    assert_eq!(recipients.len(), MESSAGES, "no message twice");
    let counts = desk.app.state.store.outbox_counts().await.unwrap();
    assert_eq!(
        (counts.pending, counts.sent, counts.dead),
        (0, MESSAGES as i64, 0)
    );
    // Every message took exactly one attempt.
    let mut cursor = String::new();
    let mut seen = 0;
    loop {
        let page = desk
            .get_json(
                ADMIN,
                &format!("/api/v1/admin/outbox?state=sent&limit=100{cursor}"),
            )
            .await;
        for entry in page["data"].as_array().unwrap() {
            assert_eq!(entry["attempts"], 1, "{entry}");
            seen += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, MESSAGES);
    second.store.close().await;
}

async fn security_mail_goes_before_bulk_notices(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bulk: Vec<_> = (0..5)
        .map(|n| {
            carrel_server::outbox::messages::username_taken(
                &format!("reader{n}@example.org"),
                &format!("reader{n}"),
            )
        })
        .collect();
    desk.app
        .state
        .store
        .enqueue_outbox(&bulk, desk.now())
        .await
        .unwrap();
    forgot(&desk.app, &ann.email).await;
    let mails = desk.app.outbox().await;
    assert_eq!(mails.len(), 6);
    // File names sort in the order of sending.
    assert_eq!(mails[0].subject, "Reset your password");
    assert!(
        mails[1..]
            .iter()
            .all(|m| m.subject == "Your Carrel registration")
    );
}

async fn a_failing_transport_is_retried_with_backoff_then_dead_lettered_and_requeued(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    // The mail directory turns into a file: every delivery fails.
    let dir = desk.app.state.config.mail_outbox.clone();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();

    let started = desk.now();
    forgot(&desk.app, &ann.email).await;
    assert!(carrel_server::outbox::flush(&desk.app.state, FLUSH).await);
    let only = |entries: Vec<Value>| {
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries.into_iter().next().unwrap()
    };
    let entry = only(listing(&desk, "?state=pending").await);
    assert_eq!(entry["attempts"], 1);
    assert!(
        entry["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{entry}"
    );
    let failed_at = crate::desk::at(&entry["updated_at"]);
    assert!(failed_at >= started);
    let next_at = crate::desk::at(&entry["next_attempt_at"]);
    assert_eq!(next_at - failed_at, Duration::seconds(60), "first backoff");
    let id = entry["id"].as_str().unwrap().to_owned();

    // Not before it is due.
    desk.app
        .clock
        .advance(next_at - desk.now() - Duration::seconds(2));
    assert!(carrel_server::outbox::flush(&desk.app.state, FLUSH).await);
    assert_eq!(only(listing(&desk, "?state=pending").await)["attempts"], 1);
    // Due: the second attempt, then twice the wait.
    desk.app.clock.advance(Duration::seconds(2));
    assert!(carrel_server::outbox::flush(&desk.app.state, FLUSH).await);
    let entry = only(listing(&desk, "?state=pending").await);
    assert_eq!(entry["attempts"], 2);
    let next_at = crate::desk::at(&entry["next_attempt_at"]);
    assert_eq!(
        next_at - crate::desk::at(&entry["updated_at"]),
        Duration::seconds(120),
        "doubled backoff"
    );
    // The third (last) attempt fails too: dead-lettered.
    desk.app.clock.advance(next_at - desk.now());
    assert!(carrel_server::outbox::flush(&desk.app.state, FLUSH).await);
    assert!(listing(&desk, "?state=pending").await.is_empty());
    let dead = only(listing(&desk, "?state=dead").await);
    assert_eq!(dead["id"], id.as_str());
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["kind"], "password_reset");
    assert_eq!(dead["recipient"], ann.email.as_str());
    assert!(dead["last_error"].is_string());
    // Nothing more happens to it, however long we wait.
    desk.app.clock.advance(Duration::hours(2));
    assert!(carrel_server::outbox::flush(&desk.app.state, FLUSH).await);
    assert_eq!(only(listing(&desk, "?state=dead").await)["attempts"], 3);
    let metrics = desk.app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("outbox_messages_dead_total"), "{metrics}");
    assert!(
        metrics.contains("outbox_delivery_failures_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("outbox_messages{state=\"dead\"}"),
        "{metrics}"
    );

    // The transport is repaired; the admin requeues the message and it goes.
    std::fs::remove_file(&dir).unwrap();
    let admin_desk = &desk;
    let retry = |path: String| async move {
        admin_desk
            .as_user(ADMIN, Method::POST, &path)
            .await
            .send()
            .await
            .unwrap()
    };
    let response = retry(format!("/api/v1/admin/outbox/{id}/retry")).await;
    assert_eq!(response.status(), 200);
    let requeued: Value = response.json().await.unwrap();
    assert_eq!(requeued["state"], "pending");
    assert_eq!(requeued["attempts"], 0);
    assert!(!requeued.to_string().contains("token="));
    let token = desk
        .app
        .mailed_token(&ann.email, "Reset your password")
        .await;
    assert!(!token.is_empty());
    let sent = only(listing(&desk, "?state=sent").await);
    assert_eq!(
        (sent["id"].as_str(), sent["attempts"].as_i64()),
        (Some(id.as_str()), Some(1))
    );
    assert_eq!(desk.app.audit_events("outbox.retried").await.len(), 1);
    // Only a dead message can be retried; unknown ids are 404.
    assert_error(
        retry(format!("/api/v1/admin/outbox/{id}/retry")).await,
        409,
        "CONFLICT",
    )
    .await;
    assert_error(
        retry(format!(
            "/api/v1/admin/outbox/{}/retry",
            uuid::Uuid::now_v7()
        ))
        .await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        retry("/api/v1/admin/outbox/nonsense/retry".to_owned()).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}

async fn only_admins_see_the_outbox(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    forgot(&desk.app, &ann.email).await;
    desk.app.outbox().await;
    let id = listing(&desk, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for user in ["ann", LIBRARIAN] {
        let list = desk
            .as_user(user, Method::GET, "/api/v1/admin/outbox")
            .await
            .send()
            .await
            .unwrap();
        assert_error(list, 403, "FORBIDDEN").await;
        let retry = desk
            .as_user(
                user,
                Method::POST,
                &format!("/api/v1/admin/outbox/{id}/retry"),
            )
            .await
            .send()
            .await
            .unwrap();
        assert_error(retry, 403, "FORBIDDEN").await;
    }
    let anonymous = desk.app.get("/api/v1/admin/outbox").await;
    assert_error(anonymous, 401, "UNAUTHORIZED").await;
    // Filters are checked like every list's.
    let bad = desk
        .as_user(ADMIN, Method::GET, "/api/v1/admin/outbox?state=lost")
        .await
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "VALIDATION_ERROR").await;
    let bad = desk
        .as_user(ADMIN, Method::GET, "/api/v1/admin/outbox?cursor=zzz")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
