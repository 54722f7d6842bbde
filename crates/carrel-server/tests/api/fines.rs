//! Fines, payments with idempotency keys, waivers and policies; payment races
//! against the real server.

use reqwest::Method;
use serde_json::{Value, json};

use crate::desk::{ADMIN, Desk, LIBRARIAN};
use crate::helpers::{TestApp, assert_error, backend_tests, backend_tests_with};

backend_tests!(
    manual_fines_and_validation,
    payments_partial_full_and_refused,
    idempotency_keys_replay_and_refuse_reuse,
    twenty_simultaneous_payments_with_one_key_make_one_payment,
    parallel_payments_never_take_the_balance_below_zero,
    waivers,
    policies_are_read_by_staff_and_written_by_admins,
);

backend_tests_with!(
    vec![
        ("CARREL_RATE_LIMITS_ENABLED", "true".to_owned()),
        ("CARREL_RATE_LIMIT_GLOBAL", "10000/min".to_owned()),
        // The desk logs in before every request.
        ("CARREL_RATE_LIMIT_LOGIN", "10000/min".to_owned()),
    ]
        => payments_are_rate_limited_per_user_but_replays_are_not
);

async fn pay(
    desk: &Desk,
    who: &str,
    fine: &Value,
    key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let path = format!("/api/v1/fines/{}/payments", fine["id"].as_str().unwrap());
    let mut request = desk.as_user(who, Method::POST, &path).await.json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn fine_now(desk: &Desk, fine: &Value) -> Value {
    desk.get_json(
        LIBRARIAN,
        &format!("/api/v1/fines/{}", fine["id"].as_str().unwrap()),
    )
    .await
}

async fn manual_fines_and_validation(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 1234).await;
    assert_eq!(fine["reason"], "manual");
    assert_eq!(fine["status"], "open");
    assert_eq!(fine["balance_cents"], 1234);
    assert_eq!(fine["paid_cents"], 0);
    assert_eq!(fine["currency"], "USD");
    assert_eq!(fine["note"], "test");
    let detail = fine_now(&desk, &fine).await;
    assert!(detail["calculation"].is_null());

    for (body, status) in [
        (
            json!({"user_id": ann.id, "amount_cents": 0, "reason": "manual"}),
            422,
        ),
        (
            json!({"user_id": ann.id, "amount_cents": -5, "reason": "damage"}),
            422,
        ),
        (
            json!({"user_id": ann.id, "amount_cents": 1.5, "reason": "damage"}),
            422,
        ),
        (
            json!({"user_id": ann.id, "amount_cents": 100, "reason": "overdue"}),
            422,
        ),
        (
            json!({"user_id": ann.id, "amount_cents": 100, "reason": "manual", "status": "paid"}),
            422,
        ),
        (
            json!({"user_id": ann.id, "amount_cents": 100, "reason": "manual", "note": "x".repeat(501)}),
            422,
        ),
        (
            json!({"user_id": uuid::Uuid::now_v7(), "amount_cents": 100, "reason": "manual"}),
            404,
        ),
    ] {
        let response = desk
            .staff(Method::POST, "/api/v1/fines")
            .await
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
    }
    let by_patron = desk
        .as_user("ann", Method::POST, "/api/v1/fines")
        .await
        .json(&json!({"user_id": ann.id, "amount_cents": 100, "reason": "manual"}))
        .send()
        .await
        .unwrap();
    assert_error(by_patron, 403, "FORBIDDEN").await;
    let listed = desk
        .get_json(LIBRARIAN, &format!("/api/v1/fines?user_id={}", ann.id))
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        desk.get_json(LIBRARIAN, "/api/v1/fines?status=paid").await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let bad = desk
        .staff(Method::GET, "/api/v1/fines?status=overdue")
        .await
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "VALIDATION_ERROR").await;
}

async fn payments_partial_full_and_refused(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.patron("bob").await;
    let fine = desk.charge(ann.id, 1000).await;

    // The owner pays online, in parts.
    let response = pay(
        &desk,
        "ann",
        &fine,
        Some("ann-1"),
        json!({"amount_cents": 400, "method": "online"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let paid: Value = response.json().await.unwrap();
    assert_eq!(paid["payment"]["amount_cents"], 400);
    assert_eq!(paid["payment"]["method"], "online");
    assert_eq!(paid["fine"]["balance_cents"], 600);
    assert_eq!(paid["fine"]["status"], "open");

    // Refusals: no key, a bad key, cash from a patron, someone else's fine,
    // nothing, more than the balance, an unknown method.
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            None,
            json!({"amount_cents": 1, "method": "online"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some(&"k".repeat(256)),
            json!({"amount_cents": 1, "method": "online"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("ann-2"),
            json!({"amount_cents": 100, "method": "cash"}),
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        pay(
            &desk,
            "bob",
            &fine,
            Some("bob-1"),
            json!({"amount_cents": 100, "method": "online"}),
        )
        .await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("ann-3"),
            json!({"amount_cents": 0, "method": "online"}),
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let over = assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("ann-4"),
            json!({"amount_cents": 601, "method": "online"}),
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(over["details"]["fields"]["amount_cents"].is_string());
    assert_error(
        pay(
            &desk,
            LIBRARIAN,
            &fine,
            Some("desk-0"),
            json!({"amount_cents": 10, "method": "cheque"}),
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;

    // The desk takes the rest in cash: paid.
    let response = pay(
        &desk,
        LIBRARIAN,
        &fine,
        Some("desk-1"),
        json!({"amount_cents": 600, "method": "cash"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let detail = fine_now(&desk, &fine).await;
    assert_eq!(detail["status"], "paid");
    assert_eq!(detail["paid_cents"], 1000);
    assert_eq!(detail["balance_cents"], 0);
    assert_eq!(detail["payments"].as_array().unwrap().len(), 2);
    assert_error(
        pay(
            &desk,
            LIBRARIAN,
            &fine,
            Some("desk-2"),
            json!({"amount_cents": 1, "method": "card"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    let audit = desk.app.audit_events("fine.paid").await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].subject_id, Some(ann.id));
    // The export lists the payments.
    assert_eq!(
        desk.get_json("ann", "/api/v1/users/me/export").await["payments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

async fn idempotency_keys_replay_and_refuse_reuse(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 1000).await;
    let other = desk.charge(ann.id, 1000).await;
    let body = json!({"amount_cents": 250, "method": "online"});

    let first = pay(&desk, "ann", &fine, Some("retry-me"), body.clone()).await;
    assert_eq!(first.status(), 201);
    let first_body = first.text().await.unwrap();
    // The retry gets the very same response, and no second payment is made.
    let again = pay(
        &desk,
        "ann",
        &fine,
        Some("retry-me"),
        json!({"method": "online", "amount_cents": 250}),
    )
    .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(fine_now(&desk, &fine).await["paid_cents"], 250);

    // The same key for another amount or another fine is refused.
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("retry-me"),
            json!({"amount_cents": 251, "method": "online"}),
        )
        .await,
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_error(
        pay(&desk, "ann", &other, Some("retry-me"), body.clone()).await,
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    // Keys belong to their caller: the desk may use the same string.
    let desk_pays = pay(
        &desk,
        LIBRARIAN,
        &fine,
        Some("retry-me"),
        json!({"amount_cents": 250, "method": "card"}),
    )
    .await;
    assert_eq!(desk_pays.status(), 201);
    assert_eq!(fine_now(&desk, &fine).await["paid_cents"], 500);
}

async fn twenty_simultaneous_payments_with_one_key_make_one_payment(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 5000).await;
    let token = desk.app.access_token("ann").await;
    let path = format!("/api/v1/fines/{}/payments", fine["id"].as_str().unwrap());
    let requests = (0..20).map(|_| {
        desk.app
            .authed(Method::POST, &path, &token)
            .header("Idempotency-Key", "double-click")
            .json(&json!({"amount_cents": 700, "method": "online"}))
            .send()
    });
    let mut bodies = Vec::new();
    for response in futures::future::join_all(requests).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 201);
        bodies.push(response.text().await.unwrap());
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical responses"
    );
    let detail = fine_now(&desk, &fine).await;
    assert_eq!(detail["payments"].as_array().unwrap().len(), 1);
    assert_eq!(detail["paid_cents"], 700);
}

async fn parallel_payments_never_take_the_balance_below_zero(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 1000).await;
    let token = desk.app.access_token(LIBRARIAN).await;
    let path = format!("/api/v1/fines/{}/payments", fine["id"].as_str().unwrap());
    let requests = (0..20).map(|n| {
        desk.app
            .authed(Method::POST, &path, &token)
            .header("Idempotency-Key", format!("till-{n}"))
            .json(&json!({"amount_cents": 300, "method": "cash"}))
            .send()
    });
    let mut accepted = 0;
    for response in futures::future::join_all(requests).await {
        let response = response.unwrap();
        match response.status().as_u16() {
            201 => accepted += 1,
            // Over the balance, or settled meanwhile.
            409 | 422 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 3);
    let detail = fine_now(&desk, &fine).await;
    assert_eq!(detail["paid_cents"], 900);
    assert_eq!(detail["balance_cents"], 100);
    assert_eq!(detail["payments"].as_array().unwrap().len(), 3);
}

async fn waivers(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 800).await;
    let path = format!("/api/v1/fines/{}/waive", fine["id"].as_str().unwrap());
    let waive = |who: &'static str, body: Value| {
        let path = path.clone();
        let desk = &desk;
        async move {
            desk.as_user(who, Method::POST, &path)
                .await
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_error(
        waive("ann", json!({"reason": "please"})).await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        waive(LIBRARIAN, json!({"reason": " "})).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        waive(LIBRARIAN, json!({"reason": "x", "amount_cents": 801})).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        waive(LIBRARIAN, json!({"reason": "x", "amount_cents": 0})).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;

    let partial: Value = waive(
        LIBRARIAN,
        json!({"reason": "first offence", "amount_cents": 300}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(partial["waived_cents"], 300);
    assert_eq!(partial["balance_cents"], 500);
    assert_eq!(partial["status"], "open");
    let rest: Value = waive(LIBRARIAN, json!({"reason": "hardship"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["status"], "waived");
    assert_eq!(rest["balance_cents"], 0);
    assert_error(
        waive(LIBRARIAN, json!({"reason": "again"})).await,
        409,
        "CONFLICT",
    )
    .await;
    let detail = fine_now(&desk, &fine).await;
    assert_eq!(detail["waivers"].as_array().unwrap().len(), 2);
    assert_eq!(detail["waivers"][1]["reason"], "hardship");
    assert_eq!(desk.app.audit_events("fine.waived").await.len(), 2);
}

async fn policies_are_read_by_staff_and_written_by_admins(app: TestApp) {
    let desk = Desk::open(app).await;
    desk.patron("ann").await;
    let policies = desk
        .get_json(LIBRARIAN, "/api/v1/circulation-policies")
        .await;
    let data = policies["data"].as_array().unwrap();
    assert_eq!(data.len(), 6);
    let book = data.iter().find(|p| p["item_type"] == "book").unwrap();
    assert_eq!(
        (
            book["loan_days"].as_i64(),
            book["daily_fine_cents"].as_i64(),
            book["grace_days"].as_i64()
        ),
        (Some(21), Some(25), Some(1))
    );

    let valid = json!({"loan_days": 14, "max_renewals": 1, "daily_fine_cents": 50, "max_fine_cents": 2000, "grace_days": 0, "replacement_cost_cents": 3000});
    let put = |who: &'static str, item_type: &'static str, body: Value| {
        let desk = &desk;
        async move {
            desk.as_user(
                who,
                Method::PUT,
                &format!("/api/v1/circulation-policies/{item_type}"),
            )
            .await
            .json(&body)
            .send()
            .await
            .unwrap()
        }
    };
    assert_error(put(LIBRARIAN, "dvd", valid.clone()).await, 403, "FORBIDDEN").await;
    assert_error(
        put(ADMIN, "vinyl", valid.clone()).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    let mut bad = valid.clone();
    bad["loan_days"] = json!(0);
    bad["daily_fine_cents"] = json!(-1);
    let error = assert_error(put(ADMIN, "dvd", bad).await, 422, "VALIDATION_ERROR").await;
    assert!(error["details"]["fields"]["loan_days"].is_string());
    assert!(error["details"]["fields"]["daily_fine_cents"].is_string());
    let mut extra = valid.clone();
    extra["item_type"] = json!("book");
    assert_error(put(ADMIN, "dvd", extra).await, 422, "VALIDATION_ERROR").await;
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("grace_days");
    assert_error(put(ADMIN, "dvd", missing).await, 422, "VALIDATION_ERROR").await;

    let response = put(ADMIN, "dvd", valid).await;
    assert_eq!(response.status(), 200);
    let dvd: Value = response.json().await.unwrap();
    assert_eq!(dvd["loan_days"], 14);
    assert!(dvd["updated_at"].is_string());
    // New loans follow it.
    let ann = desk
        .app
        .state
        .store
        .find_user_by_login("ann")
        .await
        .unwrap()
        .unwrap();
    desk.item("Nosferatu", "dvd", &["NOS"]).await;
    let loan = desk.lend("NOS", ann.id).await;
    let due = crate::desk::at(&loan["due_at"]);
    assert_eq!(due.date(), desk.now().date() + time::Duration::days(14));
}

async fn payments_are_rate_limited_per_user_but_replays_are_not(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 1000).await;
    let body = json!({"amount_cents": 10, "method": "online"});
    for n in 0..3 {
        let response = pay(&desk, "ann", &fine, Some(&format!("p{n}")), body.clone()).await;
        assert_eq!(response.status(), 201);
    }
    let limited = pay(&desk, "ann", &fine, Some("p3"), body.clone()).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED").await;
    // A retry of an earlier payment still gets its answer.
    assert_eq!(
        pay(&desk, "ann", &fine, Some("p0"), body).await.status(),
        201
    );
    assert_eq!(fine_now(&desk, &fine).await["paid_cents"], 30);
}
