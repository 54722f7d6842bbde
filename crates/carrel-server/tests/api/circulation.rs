//! Circulation: checkout, return, renewal, loss, holds, the background jobs,
//! notices and anonymisation; concurrency against the real server.

use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, Time};

use crate::desk::{ADMIN, Desk, LIBRARIAN, at};
use crate::helpers::{TestApp, assert_error, backend_tests, backend_tests_with, try_sql};

backend_tests!(
    checkout_and_return_round_trip,
    overdue_fines_at_the_boundaries_use_the_policy_recorded_at_checkout,
    renewals,
    lost_copies_charge_the_replacement_cost,
    holds_queue_in_order_over_several_returns,
    hold_rules,
    hold_expiry_hands_the_copy_on,
    notices_are_sent_once,
    returned_loans_are_anonymised_after_retention,
    patrons_see_only_their_own,
    account_deletion_waits_for_loans_and_fines,
    twenty_simultaneous_checkouts_of_one_copy_make_one_loan,
    test_clock_endpoint_runs_the_jobs,
    invariants_hold_in_the_database_itself,
    a_desk_action_whose_audit_entry_fails_does_not_happen,
    renewals_losses_and_holds_whose_audit_entry_fails_do_not_happen,
);

backend_tests_with!(
    vec![("CARREL_MAX_ACTIVE_LOANS", "2".to_owned()), ("CARREL_FINE_BLOCK_THRESHOLD_CENTS", "500".to_owned())]
        => loan_limit_and_patron_block
);

backend_tests_with!(
    vec![("CARREL_MAX_ACTIVE_HOLDS", "2".to_owned()), ("CARREL_FINE_BLOCK_THRESHOLD_CENTS", "500".to_owned())]
        => hold_limit_and_blocked_patrons
);

backend_tests_with!(
    vec![("CARREL_MAX_ACTIVE_HOLDS", "3".to_owned())]
        => parallel_hold_placements_never_exceed_the_limit
);

backend_tests!(deleting_an_account_never_races_a_checkout);

async fn checkout_and_return_round_trip(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let item = desk.item("Middlemarch", "book", &["B-1", "B-2"]).await;

    let before = desk.now();
    let loan = desk.lend("B-1", ann.id).await;
    assert_eq!(loan["status"], "active");
    assert_eq!(loan["user_id"], ann.id.to_string());
    assert_eq!(loan["item_id"], item.to_string());
    assert_eq!(loan["renewals"], 0);
    assert!(loan["returned_at"].is_null());
    // Books: 21 days, due at 23:59:59 UTC of the due day.
    let due = at(&loan["due_at"]);
    assert_eq!(due.date(), before.date() + Duration::days(21));
    assert_eq!(due.time(), Time::from_hms(23, 59, 59).unwrap());
    assert_eq!(desk.copy_status(item, "B-1").await, "on_loan");
    let shown = desk
        .get_json(LIBRARIAN, &format!("/api/v1/items/{item}"))
        .await;
    assert_eq!(
        (
            shown["copies_total"].as_i64(),
            shown["copies_available"].as_i64()
        ),
        (Some(2), Some(1))
    );

    // The same copy again, an unknown barcode, an unknown patron.
    assert_error(desk.checkout("B-1", ann.id).await, 409, "COPY_UNAVAILABLE").await;
    assert_error(
        desk.checkout("NO-SUCH", ann.id).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        desk.checkout("B-2", uuid::Uuid::now_v7()).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let malformed = desk
        .staff(Method::POST, "/api/v1/loans")
        .await
        .json(&json!({"copy_barcode": "B-2", "user_id": ann.id, "due_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_error(malformed, 422, "VALIDATION_ERROR").await;
    // Patrons cannot lend.
    let by_patron = desk
        .as_user("ann", Method::POST, "/api/v1/loans")
        .await
        .json(&json!({"copy_barcode": "B-2", "user_id": ann.id}))
        .send()
        .await
        .unwrap();
    assert_error(by_patron, 403, "FORBIDDEN").await;

    let back = desk.returned("B-1").await;
    assert_eq!(back["loan"]["status"], "returned");
    assert!(back["loan"]["returned_at"].is_string());
    assert!(back["fine"].is_null());
    assert!(back["hold"].is_null());
    assert_eq!(desk.copy_status(item, "B-1").await, "available");
    assert_error(desk.give_back("B-1").await, 409, "CONFLICT").await;
    assert_error(desk.give_back("NO-SUCH").await, 404, "RESOURCE_NOT_FOUND").await;

    // History and audit name the loan, the librarian and the patron.
    let events = desk
        .get_json(LIBRARIAN, &format!("/api/v1/items/{item}/events?limit=100"))
        .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(kinds.ends_with(&["checked_out", "returned"]), "{kinds:?}");
    let checked_out = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "checked_out")
        .unwrap();
    assert_eq!(checked_out["user_id"], ann.id.to_string());
    assert_eq!(checked_out["actor_id"], desk.librarian.id.to_string());
    let audit = desk.app.audit_events("loan.checked_out").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].subject_id, Some(ann.id));
    assert_eq!(audit[0].actor_id, Some(desk.librarian.id));
    assert_eq!(desk.app.audit_events("loan.returned").await.len(), 1);
}

async fn overdue_fines_at_the_boundaries_use_the_policy_recorded_at_checkout(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.item("Bleak House", "book", &["ON-TIME", "GRACE", "LATE"])
        .await;
    desk.item("Metropolis", "dvd", &["DVD"]).await;
    let loans: Vec<Value> = lend_all(&desk, &["ON-TIME", "GRACE", "LATE", "DVD"], ann.id).await;
    let due = at(&loans[0]["due_at"]);

    // A later policy edit must not change what these loans cost.
    let edit = desk.as_user(ADMIN, Method::PUT, "/api/v1/circulation-policies/book").await
        .json(&json!({"loan_days": 21, "max_renewals": 3, "daily_fine_cents": 999, "max_fine_cents": 99999, "grace_days": 0, "replacement_cost_cents": 2500}))
        .send().await.unwrap();
    assert_eq!(edit.status(), 200);

    // Returned on the due date (its last second): nothing owed.
    desk.app.clock.advance(due - desk.now());
    assert!(desk.returned("ON-TIME").await["fine"].is_null());
    // The next day is one day late, inside the one grace day: nothing owed.
    desk.app.clock.advance(Duration::seconds(1));
    assert!(desk.returned("GRACE").await["fine"].is_null());
    // Two days late: one chargeable day at 25 cents.
    desk.app.clock.advance(Duration::days(1));
    let late = desk.returned("LATE").await;
    let fine = &late["fine"];
    assert_eq!(fine["reason"], "overdue");
    assert_eq!(fine["amount_cents"], 25);
    assert_eq!(fine["balance_cents"], 25);
    assert_eq!(fine["status"], "open");
    assert_eq!(fine["loan_id"], late["loan"]["id"]);
    assert_eq!(fine["user_id"], ann.id.to_string());
    let detail = desk
        .get_json(
            "ann",
            &format!("/api/v1/fines/{}", fine["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        detail["calculation"],
        json!({"days_late": 2, "grace_days": 1, "daily_fine_cents": 25, "max_fine_cents": 1000, "capped": false, "closed_days_skipped": 0})
    );

    // The DVD (7 days, 1.00/day, no grace, cap 15.00) is now 16 days late: capped.
    let dvd = desk.returned("DVD").await;
    assert_eq!(dvd["fine"]["amount_cents"], 1500);
    let detail = desk
        .get_json(
            LIBRARIAN,
            &format!("/api/v1/fines/{}", dvd["fine"]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(detail["calculation"]["capped"], true);
    assert_eq!(detail["calculation"]["days_late"], 16);
    assert_eq!(desk.app.audit_events("fine.created").await.len(), 2);
}

/// Lends each barcode to `user`, in order.
async fn lend_all(desk: &Desk, barcodes: &[&str], user: uuid::Uuid) -> Vec<Value> {
    let mut loans = Vec::new();
    for barcode in barcodes {
        loans.push(desk.lend(barcode, user).await);
    }
    loans
}

async fn renewals(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.patron("bob").await;
    desk.item("Persuasion", "book", &["P-1"]).await;
    desk.item("The Strand", "magazine", &["M-1"]).await;
    let loan = desk.lend("P-1", ann.id).await;
    let id = loan["id"].as_str().unwrap();
    let renew = |who: &'static str| {
        let path = format!("/api/v1/loans/{id}/renew");
        let desk = &desk;
        async move {
            desk.as_user(who, Method::POST, &path)
                .await
                .send()
                .await
                .unwrap()
        }
    };

    // Someone else's loan does not exist for them.
    assert_error(renew("bob").await, 404, "RESOURCE_NOT_FOUND").await;
    // The borrower renews from the current due day; a librarian may too.
    let first: Value = renew("ann").await.json().await.unwrap();
    assert_eq!(first["renewals"], 1);
    assert_eq!(
        at(&first["due_at"]),
        at(&loan["due_at"]) + Duration::days(21)
    );
    assert_eq!(renew(LIBRARIAN).await.status(), 200);
    assert_eq!(renew("ann").await.status(), 200);
    // Books allow three.
    assert_error(renew("ann").await, 409, "RENEWAL_LIMIT_REACHED").await;
    assert_eq!(desk.app.audit_events("loan.renewed").await.len(), 3);

    // Magazines allow none; a waiting hold blocks renewal first of all.
    let mag = desk.lend("M-1", ann.id).await;
    let mag_path = format!("/api/v1/loans/{}/renew", mag["id"].as_str().unwrap());
    let response = desk
        .as_user("ann", Method::POST, &mag_path)
        .await
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "RENEWAL_LIMIT_REACHED").await;

    desk.returned("P-1").await;
    let loan = desk.lend("P-1", ann.id).await;
    let path = format!("/api/v1/loans/{}/renew", loan["id"].as_str().unwrap());
    assert_eq!(
        desk.place_hold("bob", desk_item_of(&loan)).await.status(),
        201
    );
    let response = desk
        .as_user("ann", Method::POST, &path)
        .await
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "HOLD_PENDING").await;

    // Renewing an overdue loan charges the lateness so far, and the new due
    // date counts from today. Bob gives up his hold on P-1 first.
    let bobs = desk.get_json("bob", "/api/v1/users/me/holds").await;
    let cancel = format!("/api/v1/holds/{}", bobs["data"][0]["id"].as_str().unwrap());
    let cancelled = desk
        .as_user("bob", Method::DELETE, &cancel)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    desk.advance(Duration::days(24)).await;
    let response = desk
        .as_user("ann", Method::POST, &path)
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let renewed: Value = response.json().await.unwrap();
    assert_eq!(
        at(&renewed["due_at"]).date(),
        desk.now().date() + Duration::days(21)
    );
    assert_eq!(renewed["status"], "active");
    let fines = desk.get_json("ann", "/api/v1/users/me/fines").await;
    let fine = fines["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["loan_id"] == loan["id"])
        .unwrap();
    // Three days after the due day, one of them grace: 2 x 25 cents.
    assert_eq!(fine["amount_cents"], 50);
    // Returned on time now: nothing more is owed for this loan.
    assert!(desk.returned("P-1").await["fine"].is_null());
    // A returned loan cannot be renewed.
    let response = desk
        .as_user("ann", Method::POST, &path)
        .await
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "CONFLICT").await;
}

fn desk_item_of(loan: &Value) -> uuid::Uuid {
    loan["item_id"].as_str().unwrap().parse().unwrap()
}

async fn lost_copies_charge_the_replacement_cost(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    let item = desk.item("Ulysses", "book", &["U-1"]).await;
    let loan = desk.lend("U-1", ann.id).await;
    let path = format!("/api/v1/loans/{}/lost", loan["id"].as_str().unwrap());
    let by_patron = desk
        .as_user("ann", Method::POST, &path)
        .await
        .send()
        .await
        .unwrap();
    assert_error(by_patron, 403, "FORBIDDEN").await;

    let response = desk.staff(Method::POST, &path).await.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let lost: Value = response.json().await.unwrap();
    assert_eq!(lost["status"], "lost");
    assert_eq!(lost["fine"]["reason"], "lost");
    assert_eq!(lost["fine"]["amount_cents"], 2500);
    assert_eq!(desk.copy_status(item, "U-1").await, "lost");
    // Twice, or returning it, is a conflict; the copy cannot go out again.
    assert_error(
        desk.staff(Method::POST, &path).await.send().await.unwrap(),
        409,
        "CONFLICT",
    )
    .await;
    assert_error(desk.give_back("U-1").await, 409, "CONFLICT").await;
    assert_error(desk.checkout("U-1", bob.id).await, 409, "COPY_UNAVAILABLE").await;
    // The replacement fine (25.00) is over the block threshold.
    assert_error(desk.checkout("U-1", ann.id).await, 409, "PATRON_BLOCKED").await;
    assert_eq!(desk.app.audit_events("loan.lost").await.len(), 1);
}

async fn holds_queue_in_order_over_several_returns(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    let cat = desk.patron("cat").await;
    let dan = desk.patron("dan").await;
    let item = desk.item("Dracula", "book", &["D-1"]).await;
    desk.lend("D-1", ann.id).await;

    let mut holds = Vec::new();
    for who in ["bob", "cat", "dan"] {
        let response = desk.place_hold(who, item).await;
        assert_eq!(response.status(), 201);
        let hold: Value = response.json().await.unwrap();
        assert_eq!(hold["status"], "waiting");
        holds.push(hold);
    }
    let positions: Vec<Value> = positions_of(&desk, &holds).await;
    assert_eq!(positions, [json!(1), json!(2), json!(3)]);

    // First return: Bob's hold is ready, the copy on the hold shelf.
    let back = desk.returned("D-1").await;
    assert_eq!(back["hold"]["id"], holds[0]["id"]);
    assert_eq!(back["hold"]["status"], "ready");
    assert!(back["hold"]["position"].is_null());
    let expires = at(&back["hold"]["expires_at"]);
    assert_eq!(expires, at(&back["hold"]["ready_at"]) + Duration::days(7));
    assert_eq!(desk.copy_status(item, "D-1").await, "on_hold_shelf");
    assert_eq!(positions_of(&desk, &holds[1..]).await, [json!(1), json!(2)]);
    let mail = desk.app.outbox().await;
    assert!(
        mail.iter()
            .any(|m| m.to.contains(&bob.email) && m.body.contains("Dracula")),
        "hold-ready mail to bob"
    );

    // Only the holder may take it.
    assert_error(desk.checkout("D-1", cat.id).await, 409, "COPY_UNAVAILABLE").await;
    assert_error(desk.checkout("D-1", ann.id).await, 409, "COPY_UNAVAILABLE").await;
    desk.lend("D-1", bob.id).await;
    assert_eq!(desk.hold(&holds[0]["id"]).await["status"], "fulfilled");

    // Second return: Cat's turn, then Dan's.
    assert_eq!(desk.returned("D-1").await["hold"]["id"], holds[1]["id"]);
    desk.lend("D-1", cat.id).await;
    assert_eq!(desk.returned("D-1").await["hold"]["id"], holds[2]["id"]);
    desk.lend("D-1", dan.id).await;
    // Nobody left: back on the shelf.
    assert!(desk.returned("D-1").await["hold"].is_null());
    assert_eq!(desk.copy_status(item, "D-1").await, "available");
}

async fn positions_of(desk: &Desk, holds: &[Value]) -> Vec<Value> {
    let mut positions = Vec::new();
    for hold in holds {
        positions.push(desk.hold(&hold["id"]).await["position"].clone());
    }
    positions
}

async fn hold_rules(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    desk.patron("cat").await;
    let item = desk.item("Emma", "book", &["E-1"]).await;

    // A copy on the shelf: ready at once, that copy to the hold shelf.
    let response = desk.place_hold("ann", item).await;
    assert_eq!(response.status(), 201);
    let ready: Value = response.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["copy_id"].is_string());
    assert_eq!(desk.copy_status(item, "E-1").await, "on_hold_shelf");
    assert_error(desk.place_hold("ann", item).await, 409, "HOLD_EXISTS").await;

    // Patrons hold for themselves only; librarians for anyone.
    let for_other = desk
        .as_user("cat", Method::POST, "/api/v1/holds")
        .await
        .json(&json!({"item_id": item, "user_id": bob.id}))
        .send()
        .await
        .unwrap();
    assert_error(for_other, 403, "FORBIDDEN").await;
    let by_staff = desk
        .staff(Method::POST, "/api/v1/holds")
        .await
        .json(&json!({"item_id": item, "user_id": bob.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_staff.status(), 201);
    let bobs: Value = by_staff.json().await.unwrap();
    assert_eq!(bobs["position"], 1);
    let cats: Value = desk.place_hold("cat", item).await.json().await.unwrap();
    assert_eq!(cats["position"], 2);
    assert_error(
        desk.place_hold("cat", uuid::Uuid::now_v7()).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;

    // Only the holder or staff may see or cancel a hold.
    let bob_path = format!("/api/v1/holds/{}", bobs["id"].as_str().unwrap());
    assert_error(
        desk.as_user("cat", Method::GET, &bob_path)
            .await
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        desk.as_user("cat", Method::DELETE, &bob_path)
            .await
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let patron_list = desk
        .as_user("cat", Method::GET, "/api/v1/holds")
        .await
        .send()
        .await
        .unwrap();
    assert_error(patron_list, 403, "FORBIDDEN").await;

    // Bob cancels: Cat moves up.
    assert_eq!(
        desk.as_user("bob", Method::DELETE, &bob_path)
            .await
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(desk.hold(&cats["id"]).await["position"], 1);
    assert_eq!(desk.hold(&bobs["id"]).await["status"], "cancelled");
    assert_error(
        desk.as_user("bob", Method::DELETE, &bob_path)
            .await
            .send()
            .await
            .unwrap(),
        409,
        "CONFLICT",
    )
    .await;

    // Ann cancels her ready hold: the copy goes to Cat.
    let ann_path = format!("/api/v1/holds/{}", ready["id"].as_str().unwrap());
    assert_eq!(
        desk.staff(Method::DELETE, &ann_path)
            .await
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let cats_now = desk.hold(&cats["id"]).await;
    assert_eq!(cats_now["status"], "ready");
    assert_eq!(cats_now["copy_id"], ready["copy_id"]);

    // Listing with filters; a patron who has the item on loan cannot queue for it.
    let open = desk
        .get_json(LIBRARIAN, &format!("/api/v1/holds?item_id={item}"))
        .await;
    assert_eq!(open["data"].as_array().unwrap().len(), 1);
    let cancelled = desk
        .get_json(LIBRARIAN, "/api/v1/holds?status=cancelled")
        .await;
    assert_eq!(cancelled["data"].as_array().unwrap().len(), 2);
    let bad = desk
        .staff(Method::GET, "/api/v1/holds?status=lost")
        .await
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "VALIDATION_ERROR").await;
    let other = desk.item("Sense and Sensibility", "book", &["S-1"]).await;
    desk.lend("S-1", ann.id).await;
    assert_error(desk.place_hold("ann", other).await, 409, "CONFLICT").await;
    assert!(!desk.app.audit_events("hold.placed").await.is_empty());
}

async fn hold_expiry_hands_the_copy_on(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.patron("bob").await;
    desk.patron("cat").await;
    let item = desk.item("Kidnapped", "book", &["K-1"]).await;
    desk.lend("K-1", ann.id).await;
    let bobs: Value = desk.place_hold("bob", item).await.json().await.unwrap();
    let cats: Value = desk.place_hold("cat", item).await.json().await.unwrap();
    desk.returned("K-1").await;
    assert_eq!(desk.hold(&bobs["id"]).await["status"], "ready");

    // Still inside the pickup window: nothing changes.
    desk.advance(Duration::days(6)).await;
    assert_eq!(desk.hold(&bobs["id"]).await["status"], "ready");
    // Past it: Bob's hold expires and the copy goes to Cat.
    desk.advance(Duration::days(2)).await;
    assert_eq!(desk.hold(&bobs["id"]).await["status"], "expired");
    let cats_now = desk.hold(&cats["id"]).await;
    assert_eq!(cats_now["status"], "ready");
    assert_eq!(desk.copy_status(item, "K-1").await, "on_hold_shelf");
    // Cat does not come either: back on the shelf.
    desk.advance(Duration::days(8)).await;
    assert_eq!(desk.hold(&cats["id"]).await["status"], "expired");
    assert_eq!(desk.copy_status(item, "K-1").await, "available");
}

async fn notices_are_sent_once(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.item("Kim", "book", &["KIM"]).await;
    // Another instance does not run the jobs while this one holds the lease.
    desk.run_jobs().await;
    let other = carrel_server::jobs::run_once(&desk.app.state, uuid::Uuid::new_v4())
        .await
        .unwrap();
    assert!(other.is_none(), "a second holder ran the jobs");
    let loan = desk.lend("KIM", ann.id).await;
    let due = at(&loan["due_at"]);
    let count = |mail: &[carrel_mail::OutboxMessage], needle: &str| {
        mail.iter()
            .filter(|m| m.to.contains(&ann.email) && m.subject.to_lowercase().contains(needle))
            .count()
    };

    // A day and a half before the due instant: one "due soon" notice, however often the job runs.
    desk.advance(due - desk.now() - Duration::hours(36)).await;
    desk.run_jobs().await;
    let mail = desk.app.outbox().await;
    assert_eq!(
        count(&mail, "due"),
        1,
        "{:?}",
        mail.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // Past due: one overdue notice; the loan reads overdue.
    desk.advance(Duration::days(3)).await;
    desk.run_jobs().await;
    let mail = desk.app.outbox().await;
    assert_eq!(count(&mail, "overdue"), 1);
    let mine = desk.get_json("ann", "/api/v1/users/me/loans").await;
    assert_eq!(mine["data"][0]["status"], "overdue");
    let overdue = desk
        .get_json(LIBRARIAN, "/api/v1/loans?status=overdue")
        .await;
    assert_eq!(overdue["data"].as_array().unwrap().len(), 1);
    let active = desk
        .get_json(LIBRARIAN, "/api/v1/loans?status=active")
        .await;
    assert_eq!(active["data"].as_array().unwrap().len(), 0);
}

async fn returned_loans_are_anonymised_after_retention(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    let keeper = desk.patron("keeper").await;
    let item = desk.item("Walden", "book", &["W-1", "W-2", "W-3"]).await;
    let opt_in = desk
        .as_user("keeper", Method::PATCH, "/api/v1/users/me")
        .await
        .json(&json!({"keep_loan_history": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(opt_in.status(), 200);

    let plain = desk.lend("W-1", ann.id).await;
    let kept = desk.lend("W-2", keeper.id).await;
    let unpaid = desk.lend("W-3", bob.id).await;
    desk.returned("W-1").await;
    desk.returned("W-2").await;
    // Bob brings his back late and does not pay.
    desk.advance(Duration::days(25)).await;
    assert!(desk.returned("W-3").await["fine"].is_object());

    // Within the retention period nothing is removed.
    let returned = desk
        .get_json(LIBRARIAN, "/api/v1/loans?status=returned")
        .await;
    assert!(
        returned["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["user_id"].is_string())
    );

    // After it, Ann's loan loses its borrower (in the loan and the item history),
    // but not the opted-in patron's, nor the loan with an unpaid fine.
    desk.advance(Duration::days(40)).await;
    let returned = desk
        .get_json(LIBRARIAN, "/api/v1/loans?status=returned")
        .await;
    let by_id = |loan: &Value| {
        returned["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == loan["id"])
            .cloned()
            .unwrap()
    };
    assert!(by_id(&plain)["user_id"].is_null());
    assert_eq!(
        by_id(&plain)["item_id"],
        item.to_string(),
        "statistics are kept"
    );
    assert_eq!(
        by_id(&kept)["user_id"],
        keeper.id.to_string(),
        "opted in to keep history"
    );
    assert_eq!(by_id(&unpaid)["user_id"], bob.id.to_string(), "unpaid fine");
    let events = desk
        .get_json(LIBRARIAN, &format!("/api/v1/items/{item}/events?limit=100"))
        .await;
    let patrons: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["loan_id"] == plain["id"])
        .map(|e| &e["user_id"])
        .collect();
    assert!(
        !patrons.is_empty() && patrons.iter().all(|p| p.is_null()),
        "{patrons:?}"
    );
    let mine = desk
        .get_json("ann", "/api/v1/users/me/loans?status=returned")
        .await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 0);
}

async fn patrons_see_only_their_own(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    desk.item("Nostromo", "book", &["N-1", "N-2"]).await;
    let anns = desk.lend("N-1", ann.id).await;
    desk.lend("N-2", bob.id).await;
    let fine = desk.charge(ann.id, 300).await;

    let mine = desk.get_json("ann", "/api/v1/users/me/loans").await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["data"][0]["id"], anns["id"]);
    let fines = desk.get_json("ann", "/api/v1/users/me/fines").await;
    assert_eq!(fines["data"][0]["id"], fine["id"]);
    assert_eq!(
        desk.get_json("bob", "/api/v1/users/me/fines").await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        desk.get_json("ann", "/api/v1/users/me/holds").await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let unknown = desk
        .as_user("ann", Method::GET, "/api/v1/users/me/loans?sort=due_at")
        .await
        .send()
        .await
        .unwrap();
    assert_error(unknown, 400, "VALIDATION_ERROR").await;

    // Someone else's loan or fine does not exist; the staff lists are staff-only.
    let other_loan = format!("/api/v1/loans/{}", anns["id"].as_str().unwrap());
    assert_error(
        desk.as_user("bob", Method::GET, &other_loan)
            .await
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let other_fine = format!("/api/v1/fines/{}", fine["id"].as_str().unwrap());
    assert_error(
        desk.as_user("bob", Method::GET, &other_fine)
            .await
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    for path in [
        "/api/v1/loans",
        "/api/v1/fines",
        "/api/v1/circulation-policies",
    ] {
        assert_error(
            desk.as_user("bob", Method::GET, path)
                .await
                .send()
                .await
                .unwrap(),
            403,
            "FORBIDDEN",
        )
        .await;
    }
    let by_user = desk
        .get_json(LIBRARIAN, &format!("/api/v1/loans?user_id={}", bob.id))
        .await;
    assert_eq!(by_user["data"].as_array().unwrap().len(), 1);

    // The data export carries all of it.
    let export = desk.get_json("ann", "/api/v1/users/me/export").await;
    assert_eq!(export["loans"].as_array().unwrap().len(), 1);
    assert_eq!(export["fines"][0]["amount_cents"], 300);
    assert!(export["holds"].is_array() && export["payments"].is_array());
}

async fn account_deletion_waits_for_loans_and_fines(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.item("Howards End", "book", &["H-1"]).await;
    desk.lend("H-1", ann.id).await;
    let delete = || async {
        desk.as_user("ann", Method::DELETE, "/api/v1/users/me")
            .await
            .json(&json!({"password": crate::helpers::PASSWORD}))
            .send()
            .await
            .unwrap()
    };
    assert_error(delete().await, 409, "CONFLICT").await;
    desk.returned("H-1").await;
    let fine = desk.charge(ann.id, 100).await;
    assert_error(delete().await, 409, "CONFLICT").await;
    let staff_delete = desk
        .staff(Method::DELETE, &format!("/api/v1/users/{}", ann.id))
        .await
        .send()
        .await
        .unwrap();
    assert_error(staff_delete, 409, "CONFLICT").await;
    let waive = desk
        .staff(
            Method::POST,
            &format!("/api/v1/fines/{}/waive", fine["id"].as_str().unwrap()),
        )
        .await
        .json(&json!({"reason": "goodwill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(waive.status(), 200);
    assert_eq!(delete().await.status(), 204);
}

async fn loan_limit_and_patron_block(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.item("Tess", "book", &["T-1", "T-2", "T-3"]).await;
    let first = desk.lend("T-1", ann.id).await;
    desk.lend("T-2", ann.id).await;
    assert_error(
        desk.checkout("T-3", ann.id).await,
        409,
        "LOAN_LIMIT_REACHED",
    )
    .await;
    desk.returned("T-2").await;

    // Owing the threshold (5.00) blocks checkout and renewal; the balance is live.
    let fine = desk.charge(ann.id, 500).await;
    assert_error(desk.checkout("T-3", ann.id).await, 409, "PATRON_BLOCKED").await;
    let renew = format!("/api/v1/loans/{}/renew", first["id"].as_str().unwrap());
    assert_error(
        desk.as_user("ann", Method::POST, &renew)
            .await
            .send()
            .await
            .unwrap(),
        409,
        "PATRON_BLOCKED",
    )
    .await;
    let waive = desk
        .staff(
            Method::POST,
            &format!("/api/v1/fines/{}/waive", fine["id"].as_str().unwrap()),
        )
        .await
        .json(&json!({"reason": "first time", "amount_cents": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(waive.status(), 200);
    desk.lend("T-3", ann.id).await;
}

async fn twenty_simultaneous_checkouts_of_one_copy_make_one_loan(app: TestApp) {
    let desk = Desk::open(app).await;
    desk.item("Vanity Fair", "book", &["RACE"]).await;
    let token = desk.app.access_token(LIBRARIAN).await;
    let mut patrons = Vec::new();
    for n in 0..20 {
        patrons.push(desk.patron(&format!("racer{n:02}")).await.id);
    }
    let requests = patrons.iter().map(|id| {
        desk.app
            .authed(Method::POST, "/api/v1/loans", &token)
            .json(&json!({"copy_barcode": "RACE", "user_id": id}))
            .send()
    });
    let responses = futures::future::join_all(requests).await;
    let mut created = 0;
    for response in responses {
        let response = response.unwrap();
        match response.status().as_u16() {
            201 => created += 1,
            _ => {
                assert_error(response, 409, "COPY_UNAVAILABLE").await;
            }
        }
    }
    assert_eq!(created, 1);
    let open = desk.get_json(LIBRARIAN, "/api/v1/loans").await;
    assert_eq!(open["data"].as_array().unwrap().len(), 1);
}

async fn test_clock_endpoint_runs_the_jobs(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.patron("bob").await;
    let item = desk.item("Vathek", "book", &["V-1"]).await;
    desk.lend("V-1", ann.id).await;
    let hold: Value = desk.place_hold("bob", item).await.json().await.unwrap();
    desk.returned("V-1").await;
    let response = desk
        .as_user(ADMIN, Method::POST, "/api/v1/test/clock")
        .await
        .json(&json!({"advance_seconds": 8 * 86_400}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(desk.hold(&hold["id"]).await["status"], "expired");
    assert_eq!(desk.copy_status(item, "V-1").await, "available");
}

/// The invariants do not depend on the code taking care: statements that
/// would break them are refused by the database.
async fn invariants_hold_in_the_database_itself(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    let item = desk.item("Rob Roy", "book", &["R-1", "R-2"]).await;
    desk.lend("R-1", ann.id).await;
    desk.lend("R-2", ann.id).await;
    desk.charge(bob.id, 100).await;

    // A second open loan of a copy that is out.
    let second_loan = try_sql(
        &desk.app,
        "INSERT INTO loans (id, copy_id, item_id, user_id, status, checked_out_at, due_at, renewals, loan_days, max_renewals, \
         daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents) \
         SELECT randomblob(16), copy_id, item_id, user_id, 'active', checked_out_at, due_at, 0, loan_days, max_renewals, \
         daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents FROM loans LIMIT 1",
        "INSERT INTO loans (id, copy_id, item_id, user_id, status, checked_out_at, due_at, renewals, loan_days, max_renewals, \
         daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents) \
         SELECT gen_random_uuid(), copy_id, item_id, user_id, 'active', checked_out_at, due_at, 0, loan_days, max_renewals, \
         daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents FROM loans LIMIT 1",
    )
    .await;
    assert!(second_loan.is_err(), "{second_loan:?}");

    // Paying more than the amount.
    let overpaid = try_sql(
        &desk.app,
        "UPDATE fines SET paid_cents = amount_cents + 1",
        "UPDATE fines SET paid_cents = amount_cents + 1",
    )
    .await;
    assert!(overpaid.is_err(), "{overpaid:?}");
    // A settled status with money still owed.
    let settled = try_sql(
        &desk.app,
        "UPDATE fines SET status = 'paid'",
        "UPDATE fines SET status = 'paid'",
    )
    .await;
    assert!(settled.is_err(), "{settled:?}");

    // A copy on the hold shelf for Bob cannot be lent to Ann, even by SQL.
    let hold: Value = desk.place_hold("bob", item).await.json().await.unwrap();
    desk.returned("R-1").await;
    assert_eq!(desk.hold(&hold["id"]).await["status"], "ready");
    let to_other = try_sql(
        &desk.app,
        "INSERT INTO loans (id, copy_id, item_id, user_id, status, checked_out_at, due_at, renewals, loan_days, max_renewals, \
         daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents) \
         SELECT randomblob(16), h.copy_id, h.item_id, l.user_id, 'active', l.checked_out_at, l.due_at, 0, 21, 3, 25, 1000, 1, 2500 \
         FROM holds h, loans l WHERE h.status = 'ready' AND l.user_id <> h.user_id LIMIT 1",
        "INSERT INTO loans (id, copy_id, item_id, user_id, status, checked_out_at, due_at, renewals, loan_days, max_renewals, \
         daily_fine_cents, max_fine_cents, grace_days, replacement_cost_cents) \
         SELECT gen_random_uuid(), h.copy_id, h.item_id, l.user_id, 'active', l.checked_out_at, l.due_at, 0, 21, 3, 25, 1000, 1, 2500 \
         FROM holds h, loans l WHERE h.status = 'ready' AND l.user_id <> h.user_id LIMIT 1",
    )
    .await;
    assert!(to_other.unwrap_err().contains("hold shelf"));
    // Two open holds of one patron on one item.
    let twice = try_sql(
        &desk.app,
        "INSERT INTO holds (id, item_id, user_id, status, created_at) SELECT randomblob(16), item_id, user_id, 'waiting', created_at FROM holds LIMIT 1",
        "INSERT INTO holds (id, item_id, user_id, status, created_at) SELECT gen_random_uuid(), item_id, user_id, 'waiting', created_at FROM holds LIMIT 1",
    )
    .await;
    assert!(twice.is_err(), "{twice:?}");
}

/// The audit entries of a checkout or a return are written in the same
/// transaction as the loan: if the database refuses the entry, the loan is
/// neither opened nor closed (and the desk sees an error, not a silent gap in
/// the audit log).
async fn a_desk_action_whose_audit_entry_fails_does_not_happen(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let item = desk.item("Persuasion", "book", &["A-1", "A-2"]).await;
    desk.lend("A-2", ann.id).await;

    try_sql(
        &desk.app,
        "CREATE TRIGGER refuse_loan_audit BEFORE INSERT ON audit_events \
         WHEN NEW.event_type LIKE 'loan.%' BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        "CREATE FUNCTION refuse_loan_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.event_type LIKE 'loan.%' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$",
    )
    .await
    .expect("trigger function");
    try_sql(
        &desk.app,
        "SELECT 1",
        "CREATE TRIGGER refuse_loan_audit BEFORE INSERT ON audit_events \
         FOR EACH ROW EXECUTE FUNCTION refuse_loan_audit()",
    )
    .await
    .expect("trigger");

    let refused = desk.checkout("A-1", ann.id).await;
    assert_eq!(refused.status(), 500);
    assert_eq!(desk.copy_status(item, "A-1").await, "available");
    let refused = desk.give_back("A-2").await;
    assert_eq!(refused.status(), 500);
    assert_eq!(desk.copy_status(item, "A-2").await, "on_loan");
    let open = desk
        .get_json(LIBRARIAN, &format!("/api/v1/loans?user_id={}", ann.id))
        .await;
    assert_eq!(open["data"].as_array().map(Vec::len), Some(1), "{open}");
    assert!(desk.app.audit_events("loan.checked_out").await.len() == 1);

    try_sql(
        &desk.app,
        "DROP TRIGGER refuse_loan_audit",
        "DROP TRIGGER refuse_loan_audit ON audit_events",
    )
    .await
    .expect("drop trigger");
    desk.lend("A-1", ann.id).await;
    desk.returned("A-2").await;
    assert_eq!(desk.app.audit_events("loan.checked_out").await.len(), 2);
    assert_eq!(desk.app.audit_events("loan.returned").await.len(), 1);
}

/// Renewals, losses, hold placements and cancellations commit their audit
/// entry in the same transaction: when it cannot be written, nothing changes.
async fn renewals_losses_and_holds_whose_audit_entry_fails_do_not_happen(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let lent = desk.item("Persuasion", "book", &["A-1"]).await;
    let wanted = desk.item("Emma", "book", &[]).await;
    let other = desk.item("Sanditon", "book", &[]).await;
    let loan = desk.lend("A-1", ann.id).await;
    let hold: Value = desk.place_hold("ann", wanted).await.json().await.unwrap();
    let loan_path =
        |action: &str| format!("/api/v1/loans/{}/{action}", loan["id"].as_str().unwrap());
    let hold_path = format!("/api/v1/holds/{}", hold["id"].as_str().unwrap());
    try_sql(
        &desk.app,
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
         WHEN NEW.event_type IN ('loan.renewed', 'loan.lost', 'hold.placed', 'hold.cancelled') \
         BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.event_type IN ('loan.renewed', 'loan.lost', 'hold.placed', 'hold.cancelled') \
         THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$",
    )
    .await
    .expect("trigger function");
    try_sql(
        &desk.app,
        "SELECT 1",
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
         FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    )
    .await
    .expect("trigger");

    let send = |who: &'static str, method: Method, path: String| {
        let desk = &desk;
        async move {
            desk.as_user(who, method, &path)
                .await
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(send("ann", Method::POST, loan_path("renew")).await, 500);
    assert_eq!(send(LIBRARIAN, Method::POST, loan_path("lost")).await, 500);
    assert_eq!(send("ann", Method::DELETE, hold_path.clone()).await, 500);
    assert_eq!(desk.place_hold("ann", other).await.status(), 500);
    let now = desk
        .get_json(
            LIBRARIAN,
            &format!("/api/v1/loans/{}", loan["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(now["renewals"], 0, "{now}");
    assert_eq!(now["status"], loan["status"], "{now}");
    assert_eq!(desk.copy_status(lent, "A-1").await, "on_loan");
    assert_eq!(desk.hold(&hold["id"]).await["status"], "waiting");
    let others = desk
        .get_json(LIBRARIAN, &format!("/api/v1/holds?item_id={other}"))
        .await;
    assert_eq!(others["data"].as_array().map(Vec::len), Some(0), "{others}");
    let fines = desk
        .get_json(LIBRARIAN, &format!("/api/v1/fines?user_id={}", ann.id))
        .await;
    assert_eq!(fines["data"].as_array().map(Vec::len), Some(0), "{fines}");

    try_sql(
        &desk.app,
        "DROP TRIGGER refuse_audit",
        "DROP TRIGGER refuse_audit ON audit_events",
    )
    .await
    .expect("drop trigger");
    assert_eq!(send("ann", Method::POST, loan_path("renew")).await, 200);
    assert_eq!(send("ann", Method::DELETE, hold_path).await, 204);
    assert_eq!(desk.place_hold("ann", other).await.status(), 201);
    assert_eq!(send(LIBRARIAN, Method::POST, loan_path("lost")).await, 200);
    for event_type in ["loan.renewed", "loan.lost", "hold.cancelled"] {
        assert_eq!(
            desk.app.audit_events(event_type).await.len(),
            1,
            "{event_type}"
        );
    }
    assert_eq!(desk.app.audit_events("hold.placed").await.len(), 2);
}

async fn hold_limit_and_blocked_patrons(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    // One item with a copy on the shelf (the hold is ready at once), two without.
    let shelved = desk.item("Persuasion", "book", &["P-1"]).await;
    let waiting = desk.item("Emma", "book", &[]).await;
    let third = desk.item("Sanditon", "book", &[]).await;
    assert_eq!(desk.place_hold("ann", shelved).await.status(), 201);
    let emma: Value = desk.place_hold("ann", waiting).await.json().await.unwrap();
    assert_eq!(emma["status"], "waiting");
    // Ready and waiting holds both count, whoever places the next one.
    assert_error(
        desk.place_hold("ann", third).await,
        409,
        "HOLD_LIMIT_REACHED",
    )
    .await;
    let by_staff = desk
        .staff(Method::POST, "/api/v1/holds")
        .await
        .json(&json!({"item_id": third, "user_id": ann.id}))
        .send()
        .await
        .unwrap();
    assert_error(by_staff, 409, "HOLD_LIMIT_REACHED").await;
    // Cancelling one makes room again.
    let cancelled = desk
        .as_user(
            "ann",
            Method::DELETE,
            &format!("/api/v1/holds/{}", emma["id"].as_str().unwrap()),
        )
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    assert_eq!(desk.place_hold("ann", third).await.status(), 201);

    // A patron owing the block threshold places no holds, not even through staff.
    desk.charge(bob.id, 500).await;
    assert_error(desk.place_hold("bob", waiting).await, 409, "PATRON_BLOCKED").await;
    let by_staff = desk
        .staff(Method::POST, "/api/v1/holds")
        .await
        .json(&json!({"item_id": waiting, "user_id": bob.id}))
        .send()
        .await
        .unwrap();
    assert_error(by_staff, 409, "PATRON_BLOCKED").await;
    let open: Value = desk
        .get_json(LIBRARIAN, &format!("/api/v1/holds?user_id={}", bob.id))
        .await;
    assert!(open["data"].as_array().unwrap().is_empty());
}

async fn parallel_hold_placements_never_exceed_the_limit(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let mut items = Vec::new();
    for n in 0..12 {
        items.push(desk.item(&format!("Volume {n}"), "book", &[]).await);
    }
    let patron = desk.app.access_token("ann").await;
    let staff = desk.app.access_token(LIBRARIAN).await;
    for round in 0..3 {
        // The patron and the desk at once, each for several items.
        let requests = items.iter().enumerate().map(|(n, item)| {
            let request = if n % 2 == 0 {
                desk.app
                    .authed(Method::POST, "/api/v1/holds", &patron)
                    .json(&json!({"item_id": item}))
            } else {
                desk.app
                    .authed(Method::POST, "/api/v1/holds", &staff)
                    .json(&json!({"item_id": item, "user_id": ann.id}))
            };
            request.send()
        });
        let mut placed = Vec::new();
        for response in futures::future::join_all(requests).await {
            let response = response.unwrap();
            match response.status().as_u16() {
                201 => placed.push(response.json::<Value>().await.unwrap()),
                409 => {
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["error_code"], "HOLD_LIMIT_REACHED", "{body}");
                }
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!(placed.len(), 3, "round {round}: exactly the limit");
        let open: Value = desk
            .get_json(
                LIBRARIAN,
                &format!("/api/v1/holds?user_id={}&limit=100", ann.id),
            )
            .await;
        assert_eq!(open["data"].as_array().unwrap().len(), 3, "round {round}");
        // Start the next round from zero.
        for hold in placed {
            let response = desk
                .app
                .authed(
                    Method::DELETE,
                    &format!("/api/v1/holds/{}", hold["id"].as_str().unwrap()),
                    &staff,
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204);
        }
    }
}

async fn deleting_an_account_never_races_a_checkout(app: TestApp) {
    let desk = Desk::open(app).await;
    let staff = desk.app.access_token(LIBRARIAN).await;
    let mut barcodes = Vec::new();
    for n in 0..30 {
        barcodes.push(format!("RACE-{n}"));
    }
    let refs: Vec<&str> = barcodes.iter().map(String::as_str).collect();
    desk.item("Race Conditions", "book", &refs).await;
    let (mut loans, mut deletions) = (0, 0);
    for (n, barcode) in barcodes.iter().enumerate() {
        let patron = desk.patron(&format!("racer{n}")).await;
        let checkout = desk
            .app
            .authed(Method::POST, "/api/v1/loans", &staff)
            .json(&json!({"copy_barcode": barcode, "user_id": patron.id}))
            .send();
        let delete = desk
            .app
            .authed(
                Method::DELETE,
                &format!("/api/v1/users/{}", patron.id),
                &staff,
            )
            .send();
        let (checkout, delete) = tokio::join!(checkout, delete);
        let (checkout, delete) = (checkout.unwrap().status(), delete.unwrap().status());
        // Either the loan came first (the deletion is refused) or the
        // deletion did (the checkout finds no patron): never both.
        match (checkout.as_u16(), delete.as_u16()) {
            (201, 409) => loans += 1,
            (404, 204) => deletions += 1,
            other => panic!("round {n}: checkout and deletion gave {other:?}"),
        }
        let user = desk
            .app
            .state
            .store
            .find_user(patron.id)
            .await
            .unwrap()
            .unwrap();
        let open = desk
            .app
            .state
            .store
            .user_loans(patron.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.is_open())
            .count();
        assert!(
            user.deleted_at.is_none() || open == 0,
            "round {n}: a deleted user with an open loan"
        );
    }
    eprintln!("{loans} checkouts won, {deletions} deletions won");
}
