//! Fines, payments with idempotency keys, waivers and policies; payment races
//! against the real server.

use reqwest::Method;
use serde_json::{Value, json};

use carrel_server::circulation::payments::{TestCharge, TestPaymentProvider};

use crate::desk::{ADMIN, Desk, LIBRARIAN};
use crate::helpers::{TestApp, assert_error, backend_tests, backend_tests_with, try_sql};

backend_tests!(
    manual_fines_and_validation,
    parallel_payments_never_take_the_balance_below_zero,
    waivers,
    policies_are_read_by_staff_and_written_by_admins,
    online_payments_are_refused_without_a_provider,
    staff_never_pay_or_waive_their_own_fines,
);

// Online payments go through the `test` payment provider.
backend_tests_with!(
    vec![("CARREL_PAYMENT_PROVIDER", "test".to_owned())]
        => payments_partial_full_and_refused,
        idempotency_keys_replay_and_refuse_reuse,
        twenty_simultaneous_payments_with_one_key_make_one_payment,
        online_payments_are_charged_before_anything_is_recorded,
        duplicates_on_two_instances_are_charged_once,
        money_never_moves_without_its_audit_entry,
);

backend_tests_with!(
    vec![
        ("CARREL_PAYMENT_PROVIDER", "test".to_owned()),
        ("CARREL_RATE_LIMITS_ENABLED", "true".to_owned()),
        ("CARREL_RATE_LIMIT_GLOBAL", "10000/min".to_owned()),
        // The desk logs in before every request.
        ("CARREL_RATE_LIMIT_LOGIN", "10000/min".to_owned()),
    ]
        => payments_are_rate_limited_per_user_but_replays_are_not
);

/// The approving token of the `test` payment provider.
const OK: &str = "tok_test_ok";

/// The charges the `test` payment provider took.
fn provider_charges(app: &TestApp) -> Vec<TestCharge> {
    let provider = app.state.payments.as_ref().expect("a payment provider");
    let any: &dyn std::any::Any = provider.as_ref();
    any.downcast_ref::<TestPaymentProvider>()
        .expect("the test provider")
        .charges()
}

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
        json!({"amount_cents": 400, "method": "online", "payment_token": OK}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let paid: Value = response.json().await.unwrap();
    assert_eq!(paid["payment"]["amount_cents"], 400);
    assert_eq!(paid["payment"]["method"], "online");
    assert_eq!(paid["fine"]["balance_cents"], 600);
    assert_eq!(paid["fine"]["status"], "open");
    let charges = provider_charges(&desk.app);
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].amount_cents, 400);

    // Refusals: no key, a bad key, cash from a patron, someone else's fine,
    // nothing, more than the balance, an unknown method.
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            None,
            json!({"amount_cents": 1, "method": "online", "payment_token": OK}),
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
            json!({"amount_cents": 1, "method": "online", "payment_token": OK}),
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
            json!({"amount_cents": 100, "method": "online", "payment_token": OK}),
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
            json!({"amount_cents": 0, "method": "online", "payment_token": OK}),
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
            json!({"amount_cents": 601, "method": "online", "payment_token": OK}),
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
        422,
        "VALIDATION_ERROR",
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
    let body = json!({"amount_cents": 250, "method": "online", "payment_token": OK});

    let first = pay(&desk, "ann", &fine, Some("retry-me"), body.clone()).await;
    assert_eq!(first.status(), 201);
    let first_body = first.text().await.unwrap();
    // The retry gets the very same response, and no second payment is made.
    let again = pay(
        &desk,
        "ann",
        &fine,
        Some("retry-me"),
        json!({"method": "online", "amount_cents": 250, "payment_token": OK}),
    )
    .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(fine_now(&desk, &fine).await["paid_cents"], 250);
    assert_eq!(provider_charges(&desk.app).len(), 1, "charged once");

    // The same key for another amount or another fine is refused.
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("retry-me"),
            json!({"amount_cents": 251, "method": "online", "payment_token": OK}),
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
            .json(&json!({"amount_cents": 700, "method": "online", "payment_token": OK}))
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
    let charges = provider_charges(&desk.app);
    assert_eq!(charges.len(), 1, "one charge: {charges:?}");
    assert!(!charges[0].refunded);
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
            // Over the balance, or settled meanwhile (balance 0): both 422.
            422 => {}
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
    let body = json!({"amount_cents": 10, "method": "online", "payment_token": OK});
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

async fn nothing_recorded(desk: &Desk, fine: &Value) {
    let detail = fine_now(desk, fine).await;
    assert_eq!(detail["paid_cents"], 0, "{detail}");
    assert!(detail["payments"].as_array().unwrap().is_empty());
    assert!(desk.app.audit_events("fine.paid").await.is_empty());
}

async fn online_payments_are_charged_before_anything_is_recorded(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 1000).await;

    // Declined: 402 and nothing recorded, the key included.
    let declined = pay(
        &desk,
        "ann",
        &fine,
        Some("k-1"),
        json!({"amount_cents": 500, "method": "online", "payment_token": "tok_test_declined"}),
    )
    .await;
    assert_error(declined, 402, "PAYMENT_DECLINED").await;
    nothing_recorded(&desk, &fine).await;
    // A token the provider does not know is declined too.
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("k-2"),
            json!({"amount_cents": 500, "method": "online", "payment_token": "tok_forged"}),
        )
        .await,
        402,
        "PAYMENT_DECLINED",
    )
    .await;
    // The provider down: 503, nothing recorded.
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("k-3"),
            json!({"amount_cents": 500, "method": "online", "payment_token": "tok_test_unavailable"}),
        )
        .await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    // No token, an empty one, or a token on a desk payment: 422.
    for (who, body) in [
        ("ann", json!({"amount_cents": 500, "method": "online"})),
        (
            "ann",
            json!({"amount_cents": 500, "method": "online", "payment_token": ""}),
        ),
        (
            LIBRARIAN,
            json!({"amount_cents": 500, "method": "cash", "payment_token": OK}),
        ),
    ] {
        let error = assert_error(
            pay(&desk, who, &fine, Some("k-4"), body.clone()).await,
            422,
            "VALIDATION_ERROR",
        )
        .await;
        assert!(
            error["details"]["fields"]["payment_token"].is_string(),
            "{body}: {error}"
        );
    }
    nothing_recorded(&desk, &fine).await;
    assert!(provider_charges(&desk.app).is_empty());

    // The declined key was not used up: the patron retries with a good token.
    let paid = pay(
        &desk,
        "ann",
        &fine,
        Some("k-1"),
        json!({"amount_cents": 500, "method": "online", "payment_token": OK}),
    )
    .await;
    assert_eq!(paid.status(), 201);
    let charges = provider_charges(&desk.app);
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].amount_cents, 500);
    assert_eq!(charges[0].fine_id.to_string(), fine["id"].as_str().unwrap());
    // The provider saw a derived key, never the client's own (which other
    // callers may use too).
    assert_ne!(charges[0].idempotency_key, "k-1");
    assert_eq!(charges[0].idempotency_key.len(), 64);
    // Staff may take an online payment for a patron too.
    let by_staff = pay(
        &desk,
        LIBRARIAN,
        &fine,
        Some("k-5"),
        json!({"amount_cents": 100, "method": "online", "payment_token": OK}),
    )
    .await;
    assert_eq!(by_staff.status(), 201);
    assert_eq!(provider_charges(&desk.app).len(), 2);
    assert_eq!(fine_now(&desk, &fine).await["paid_cents"], 600);
}

async fn online_payments_are_refused_without_a_provider(app: TestApp) {
    let desk = Desk::open(app).await;
    assert!(desk.app.state.payments.is_none(), "none is the default");
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 1000).await;
    // Nothing is recorded on the client's word.
    for (who, key) in [("ann", "a-1"), (LIBRARIAN, "d-1")] {
        assert_error(
            pay(
                &desk,
                who,
                &fine,
                Some(key),
                json!({"amount_cents": 1000, "method": "online", "payment_token": OK}),
            )
            .await,
            403,
            "ONLINE_PAYMENTS_DISABLED",
        )
        .await;
    }
    assert_error(
        pay(
            &desk,
            "ann",
            &fine,
            Some("a-2"),
            json!({"amount_cents": 1000, "method": "online"}),
        )
        .await,
        403,
        "ONLINE_PAYMENTS_DISABLED",
    )
    .await;
    let detail = fine_now(&desk, &fine).await;
    assert_eq!(detail["paid_cents"], 0);
    assert_eq!(detail["status"], "open");
    // The desk still records cash.
    let cash = pay(
        &desk,
        LIBRARIAN,
        &fine,
        Some("d-2"),
        json!({"amount_cents": 1000, "method": "cash"}),
    )
    .await;
    assert_eq!(cash.status(), 201);
    assert_eq!(fine_now(&desk, &fine).await["status"], "paid");
}

async fn staff_never_pay_or_waive_their_own_fines(app: TestApp) {
    let desk = Desk::open(app).await;
    let librarian = desk.librarian.id;
    let boss = desk
        .app
        .state
        .store
        .find_user_by_login(ADMIN)
        .await
        .unwrap()
        .unwrap()
        .id;
    let charge = |user: uuid::Uuid| {
        let desk = &desk;
        async move {
            let response = desk
                .as_user(ADMIN, Method::POST, "/api/v1/fines")
                .await
                .json(&json!({"user_id": user, "amount_cents": 500, "reason": "damage"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()
        }
    };
    let own = charge(librarian).await;
    for method in ["cash", "card"] {
        assert_error(
            pay(
                &desk,
                LIBRARIAN,
                &own,
                Some(method),
                json!({"amount_cents": 500, "method": method}),
            )
            .await,
            403,
            "FORBIDDEN",
        )
        .await;
    }
    let waive = |who: &'static str, fine: Value| {
        let desk = &desk;
        async move {
            desk.as_user(
                who,
                Method::POST,
                &format!("/api/v1/fines/{}/waive", fine["id"].as_str().unwrap()),
            )
            .await
            .json(&json!({"reason": "mine"}))
            .send()
            .await
            .unwrap()
        }
    };
    assert_error(waive(LIBRARIAN, own.clone()).await, 403, "FORBIDDEN").await;
    let admins_own = charge(boss).await;
    assert_error(waive(ADMIN, admins_own.clone()).await, 403, "FORBIDDEN").await;
    assert_error(
        pay(
            &desk,
            ADMIN,
            &admins_own,
            Some("own"),
            json!({"amount_cents": 500, "method": "cash"}),
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    let detail = fine_now(&desk, &own).await;
    assert_eq!(detail["balance_cents"], 500);
    assert!(detail["payments"].as_array().unwrap().is_empty());
    assert!(detail["waivers"].as_array().unwrap().is_empty());
    // Another staff member may.
    let paid = pay(
        &desk,
        ADMIN,
        &own,
        Some("colleague"),
        json!({"amount_cents": 500, "method": "cash"}),
    )
    .await;
    assert_eq!(paid.status(), 201);
    assert_eq!(waive(LIBRARIAN, admins_own).await.status(), 200);
}

/// A second server on the same database and payment provider (as two
/// instances behind a load balancer share a card processor), with its own
/// in-process key locks.
async fn second_instance(app: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut state = app.state.clone();
    state.key_locks = carrel_server::circulation::payments::KeyLocks::default();
    state.instance_id = uuid::Uuid::new_v4();
    let router = carrel_server::startup::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(carrel_server::startup::serve(listener, router, async {
        let _ = stopped.await;
    }));
    (address, stop)
}

async fn duplicates_on_two_instances_are_charged_once(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let (other, _stop) = second_instance(&desk.app).await;
    let token = desk.app.access_token("ann").await;
    for round in 0..5 {
        let fine = desk.charge(ann.id, 5000).await;
        let path = format!("/api/v1/fines/{}/payments", fine["id"].as_str().unwrap());
        let requests = (0..10).map(|n| {
            let base = if n % 2 == 0 {
                desk.app.address.clone()
            } else {
                other.clone()
            };
            desk.app
                .client
                .post(format!("{base}{path}"))
                .bearer_auth(&token)
                .header("Idempotency-Key", format!("double-click-{round}"))
                .json(&json!({"amount_cents": 700, "method": "online", "payment_token": OK}))
                .send()
        });
        let mut bodies = Vec::new();
        for response in futures::future::join_all(requests).await {
            let response = response.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_eq!(status, 201, "{text}");
            bodies.push(text);
        }
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "identical responses"
        );
        let detail = fine_now(&desk, &fine).await;
        assert_eq!(detail["payments"].as_array().unwrap().len(), 1);
        assert_eq!(detail["paid_cents"], 700);
    }
    let charges = provider_charges(&desk.app);
    assert_eq!(charges.len(), 5, "one charge per payment: {charges:?}");
    assert!(charges.iter().all(|c| !c.refunded && c.amount_cents == 700));
}

/// Makes the database refuse every `fine.paid` and `fine.waived` audit entry
/// (a trigger), or lifts that refusal.
async fn refuse_money_audit(app: &TestApp, refuse: bool) {
    let statements: [(&'static str, &'static str); 2] = if refuse {
        [
            (
                "SELECT 1",
                "CREATE FUNCTION refuse_money_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
              IF NEW.event_type IN ('fine.paid', 'fine.waived') THEN RAISE EXCEPTION 'audit refused'; END IF; \
              RETURN NEW; END $$",
            ),
            (
                "CREATE TRIGGER refuse_money_audit BEFORE INSERT ON audit_events \
              WHEN NEW.event_type IN ('fine.paid', 'fine.waived') BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
                "CREATE TRIGGER refuse_money_audit BEFORE INSERT ON audit_events \
              FOR EACH ROW EXECUTE FUNCTION refuse_money_audit()",
            ),
        ]
    } else {
        [
            (
                "DROP TRIGGER refuse_money_audit",
                "DROP TRIGGER refuse_money_audit ON audit_events",
            ),
            ("SELECT 1", "DROP FUNCTION refuse_money_audit()"),
        ]
    };
    for (sqlite, postgres) in statements {
        try_sql(app, sqlite, postgres).await.expect("test setup");
    }
}

/// A payment or a waiver whose audit entry cannot be written is not
/// committed either (one transaction): no money recorded, the idempotency key
/// still free, an online charge refunded.
async fn money_never_moves_without_its_audit_entry(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 1000).await;
    let waive_path = format!("/api/v1/fines/{}/waive", fine["id"].as_str().unwrap());
    refuse_money_audit(&desk.app, true).await;

    let cash = json!({"amount_cents": 300, "method": "cash"});
    let refused = pay(&desk, LIBRARIAN, &fine, Some("k-1"), cash.clone()).await;
    assert_eq!(refused.status(), 500);
    let online = json!({"amount_cents": 200, "method": "online", "payment_token": OK});
    let refused = pay(&desk, "ann", &fine, Some("k-2"), online.clone()).await;
    assert_eq!(refused.status(), 500);
    let waived = desk
        .as_user(LIBRARIAN, Method::POST, &waive_path)
        .await
        .json(&json!({"reason": "goodwill", "amount_cents": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(waived.status(), 500);

    let detail = fine_now(&desk, &fine).await;
    assert_eq!(detail["paid_cents"], 0, "{detail}");
    assert_eq!(detail["waived_cents"], 0, "{detail}");
    assert!(
        detail["payments"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    assert!(detail["waivers"].as_array().unwrap().is_empty(), "{detail}");
    // The provider took the online payment and was asked to give it back.
    let charges = provider_charges(&desk.app);
    assert_eq!(charges.len(), 1);
    assert!(charges[0].refunded, "{charges:?}");

    // Once entries can be written again, the same keys are still free.
    refuse_money_audit(&desk.app, false).await;
    let paid = pay(&desk, LIBRARIAN, &fine, Some("k-1"), cash).await;
    assert_eq!(paid.status(), 201);
    assert_eq!(paid.headers()["idempotent-replayed"], "false");
    // A retry of the refunded online payment under its own key is declined
    // (its charge was given back: recording it would be a payment without
    // money); the patron starts a new payment.
    let retried = pay(&desk, "ann", &fine, Some("k-2"), online.clone()).await;
    assert_eq!(retried.status(), 402);
    assert_eq!(fine_now(&desk, &fine).await["paid_cents"], 300);
    assert_eq!(provider_charges(&desk.app).len(), 1, "no new charge");
    assert_eq!(
        pay(&desk, "ann", &fine, Some("k-3"), online).await.status(),
        201
    );
    assert_eq!(provider_charges(&desk.app).len(), 2);
    let waived = desk
        .as_user(LIBRARIAN, Method::POST, &waive_path)
        .await
        .json(&json!({"reason": "goodwill", "amount_cents": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(waived.status(), 200);
    let detail = fine_now(&desk, &fine).await;
    assert_eq!(detail["paid_cents"], 500, "{detail}");
    assert_eq!(detail["waived_cents"], 100, "{detail}");
    assert_eq!(desk.app.audit_events("fine.paid").await.len(), 2);
    assert_eq!(desk.app.audit_events("fine.waived").await.len(), 1);
}
