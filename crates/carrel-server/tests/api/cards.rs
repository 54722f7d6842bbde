//! Patron cards (set by staff, generated under a prefix, used at checkout) and
//! PINs (set by the owner or staff, hashed, with their own lockout).

use carrel_core::roles::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::desk::{ADMIN, Desk, LIBRARIAN};
use crate::helpers::{PASSWORD, TestApp, assert_error, backend_tests, backend_tests_with};

backend_tests!(
    cards_are_set_by_staff_and_name_the_borrower,
    pins_are_set_hashed_and_audited,
    parallel_wrong_pins_lock_the_pin_not_the_account,
    import_takes_an_optional_card_column,
);

backend_tests_with!(
    vec![("CARREL_CARD_NUMBER_PREFIX", "lib-".to_owned())] => new_patrons_get_generated_cards
);

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    response.json().await.unwrap()
}

async fn cards_are_set_by_staff_and_name_the_borrower(app: TestApp) {
    let desk = &Desk::open(app).await;
    let create = |body: Value| async move {
        desk.staff(Method::POST, "/api/v1/users")
            .await
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    let ann = json_of(
        create(json!({"email": "ann@example.org", "username": "ann", "password": PASSWORD, "card_number": " ab-100 "})).await,
        201,
    )
    .await;
    assert_eq!(ann["card_number"], "AB-100");
    let ann_id = ann["id"].as_str().unwrap().to_owned();
    // Unique (case-insensitively), and only [A-Za-z0-9-], 1–32.
    assert_error(
        create(json!({"email": "bob@example.org", "username": "bob", "password": PASSWORD, "card_number": "AB-100"})).await,
        409,
        "CONFLICT",
    )
    .await;
    for bad in ["a b", "", "x".repeat(33).as_str(), "é"] {
        let body = assert_error(
            create(json!({"email": "bob@example.org", "username": "bob", "password": PASSWORD, "card_number": bad})).await,
            422,
            "VALIDATION_ERROR",
        )
        .await;
        assert!(
            body["details"]["fields"]["card_number"].is_string(),
            "{body}"
        );
    }
    // Staff change it; the listing finds it by card.
    let patched = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{ann_id}"))
        .await
        .json(&json!({"card_number": "card-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(patched, 200).await["card_number"], "CARD-2");
    let found = desk
        .get_json(LIBRARIAN, "/api/v1/users?card_number=Card-2")
        .await;
    let found = found["data"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], ann_id.as_str());
    let none = desk
        .get_json(LIBRARIAN, "/api/v1/users?card_number=NOPE")
        .await;
    assert!(none["data"].as_array().unwrap().is_empty());
    assert_error(
        desk.staff(Method::GET, "/api/v1/users?card_number=no%20pe")
            .await
            .send()
            .await
            .unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    // The owner sees their card; a patron may not set one.
    assert_eq!(
        desk.get_json("ann", "/api/v1/users/me").await["card_number"],
        "CARD-2"
    );
    let refused = desk
        .as_user("ann", Method::PATCH, "/api/v1/users/me")
        .await
        .json(&json!({"card_number": "MINE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);

    // Checkout by card: exactly one of user_id and card_number.
    desk.item("Emma", "book", &["E-1", "E-2", "E-3"]).await;
    let checkout = |body: Value| async move {
        desk.staff(Method::POST, "/api/v1/loans")
            .await
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    let loan = json_of(
        checkout(json!({"copy_barcode": "E-1", "card_number": "card-2"})).await,
        201,
    )
    .await;
    assert_eq!(loan["user_id"], ann_id.as_str());
    assert_error(
        checkout(json!({"copy_barcode": "E-2", "card_number": "CARD-2", "user_id": ann_id})).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        checkout(json!({"copy_barcode": "E-2"})).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        checkout(json!({"copy_barcode": "E-2", "card_number": "NO-SUCH-CARD"})).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    // The audit entry of a desk checkout has no SIP2 channel.
    let events = desk.app.audit_events("loan.checked_out").await;
    assert!(events[0].details.get("channel").is_none());

    // Removing the card.
    let cleared = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{ann_id}"))
        .await
        .json(&json!({"card_number": null}))
        .send()
        .await
        .unwrap();
    assert!(json_of(cleared, 200).await["card_number"].is_null());
    assert_error(
        checkout(json!({"copy_barcode": "E-3", "card_number": "CARD-2"})).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}

async fn new_patrons_get_generated_cards(app: TestApp) {
    let desk = Desk::open(app).await;
    let created = desk
        .staff(Method::POST, "/api/v1/users")
        .await
        .json(&json!({"email": "cat@example.org", "username": "cat", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let card = json_of(created, 201).await["card_number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(card.starts_with("LIB-") && card.len() == 14, "{card}");
    assert!(card[4..].bytes().all(|b| b.is_ascii_digit()), "{card}");
    // An explicit card wins; staff accounts get none.
    let given = desk
        .staff(Method::POST, "/api/v1/users")
        .await
        .json(&json!({"email": "dan@example.org", "username": "dan", "password": PASSWORD, "card_number": "D-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(given, 201).await["card_number"], "D-1");
    let staff = desk
        .as_user(ADMIN, Method::POST, "/api/v1/users")
        .await
        .json(&json!({"email": "eve@example.org", "username": "eve", "password": PASSWORD, "role": "librarian"}))
        .send()
        .await
        .unwrap();
    assert!(json_of(staff, 201).await["card_number"].is_null());
}

async fn set_pin(desk: &Desk, as_user: &str, path: &str, body: Value) -> reqwest::Response {
    desk.as_user(as_user, Method::PUT, path)
        .await
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn pins_are_set_hashed_and_audited(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let other_librarian = desk.app.create_user("desk2", Role::Librarian).await;
    // The owner: password required (a wrong one is INVALID_CREDENTIALS), 4–12 digits.
    assert_error(
        set_pin(
            &desk,
            "ann",
            "/api/v1/users/me/pin",
            json!({"password": "wrong", "pin": "1234"}),
        )
        .await,
        401,
        "INVALID_CREDENTIALS",
    )
    .await;
    for bad in [
        json!("123"),
        json!("12a4"),
        json!("1234567890123"),
        json!(1234),
    ] {
        let response = set_pin(
            &desk,
            "ann",
            "/api/v1/users/me/pin",
            json!({"password": PASSWORD, "pin": bad}),
        )
        .await;
        assert_eq!(response.status(), 422, "{bad}");
    }
    let ok = set_pin(
        &desk,
        "ann",
        "/api/v1/users/me/pin",
        json!({"password": PASSWORD, "pin": "2468"}),
    )
    .await;
    assert_eq!(ok.status(), 204);
    // Staff: librarians for patrons only.
    let ok = set_pin(
        &desk,
        LIBRARIAN,
        &format!("/api/v1/users/{}/pin", ann.id),
        json!({"pin": "13579"}),
    )
    .await;
    assert_eq!(ok.status(), 204);
    assert_error(
        set_pin(
            &desk,
            LIBRARIAN,
            &format!("/api/v1/users/{}/pin", other_librarian.id),
            json!({"pin": "1357"}),
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        set_pin(
            &desk,
            "ann",
            &format!("/api/v1/users/{}/pin", ann.id),
            json!({"pin": "1357"}),
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    // Audited without the PIN; never returned; stored hashed.
    let events = desk.app.audit_events("user.pin_changed").await;
    assert_eq!(events.len(), 2);
    for event in &events {
        let text = event.details.to_string();
        assert!(!text.contains("2468") && !text.contains("13579"), "{text}");
    }
    let me = desk.get_json("ann", "/api/v1/users/me").await.to_string();
    assert!(!me.contains("pin"), "{me}");
    let stored: Option<String> = match desk.app.state.store.backend() {
        carrel_store::Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(desk.app.db.url()).await.unwrap();
            sqlx::query_scalar("SELECT pin_hash FROM users WHERE username = 'ann'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        carrel_store::Backend::Postgres => {
            let pool = sqlx::PgPool::connect(desk.app.db.url()).await.unwrap();
            sqlx::query_scalar("SELECT pin_hash FROM users WHERE username = 'ann'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(stored.unwrap().starts_with("$argon2id$"));
}

/// 20 wrong PINs at once: exactly the threshold is counted, the PIN locks, the
/// password's counter never moves (and a password lockout leaves the PIN alone).
async fn parallel_wrong_pins_lock_the_pin_not_the_account(app: TestApp) {
    use carrel_server::accounts::pins::check_pin;
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    let state = desk.app.state.clone();
    for (user, card) in [(&ann, "ANN-1"), (&bob, "BOB-1")] {
        let r = desk
            .staff(Method::PATCH, &format!("/api/v1/users/{}", user.id))
            .await
            .json(&json!({"card_number": card}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = set_pin(
            &desk,
            LIBRARIAN,
            &format!("/api/v1/users/{}/pin", user.id),
            json!({"pin": "4321"}),
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    let client = carrel_server::http::client::ClientInfo {
        ip: None,
        user_agent: None,
        request_id: "test".into(),
    };
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let (state, client) = (state.clone(), client.clone());
            tokio::spawn(async move {
                let pin = format!("{:04}", 1000 + i);
                check_pin(&state, &client, None, "ann-1", Some(&pin))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for guess in guesses {
        let check = guess.await.unwrap();
        assert!(!check.valid);
        assert_eq!(check.holder.map(|u| u.id), Some(ann.id));
    }
    let threshold = state.config.lockout_threshold;
    let counter = state.store.pin_failure_counter(ann.id).await.unwrap();
    assert_eq!(counter.failed_attempts, i32::try_from(threshold).unwrap());
    assert!(counter.locked_until.is_some_and(|t| t > state.clock.now()));
    // Locked: even the right PIN is refused, exactly like a wrong one.
    assert!(
        !check_pin(&state, &client, None, "ANN-1", Some("4321"))
            .await
            .unwrap()
            .valid
    );
    // The password account is untouched.
    let password = state.store.find_user(ann.id).await.unwrap().unwrap();
    assert_eq!((password.failed_logins, password.locked_until), (0, None));
    assert_eq!(desk.app.login("ann", PASSWORD).await.status(), 200);
    assert_eq!(desk.app.audit_events("auth.pin_locked").await.len(), 1);
    // Unknown card, empty and missing PIN: the same answer.
    for (card, pin) in [
        ("NOPE-1", Some("4321")),
        ("BOB-1", Some("")),
        ("BOB-1", None),
        ("bad card", Some("4321")),
    ] {
        assert!(
            !check_pin(&state, &client, None, card, pin)
                .await
                .unwrap()
                .valid
        );
    }
    // Staff unlock clears the PIN lock too.
    let unlocked = desk
        .staff(Method::POST, &format!("/api/v1/users/{}/unlock", ann.id))
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(unlocked.status(), 200);
    assert!(
        check_pin(&state, &client, None, "ANN-1", Some("4321"))
            .await
            .unwrap()
            .valid
    );

    // Vice versa: a password lockout leaves Bob's PIN working.
    for _ in 0..threshold {
        assert_eq!(desk.app.login("bob", "wrong-password").await.status(), 401);
    }
    assert!(
        state
            .store
            .find_user(bob.id)
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_some()
    );
    let bob_pin = check_pin(&state, &client, None, "BOB-1", Some("4321"))
        .await
        .unwrap();
    assert!(bob_pin.valid);
    let bob_counter = state.store.pin_failure_counter(bob.id).await.unwrap();
    assert_eq!(bob_counter.failed_attempts, 0);
}

/// Also an optional `category` column: a defined code (any case), or the
/// default; an undefined one skips the row with the reason.
async fn import_takes_an_optional_card_column(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("Legacy-Bcrypt-Pass-1", 4).unwrap();
    let path = dir.path().join("in.csv");
    std::fs::write(
        &path,
        format!(
            "email,username,full_name,role,card_number,category,password_hash\n\
             a@example.org,aaa,A,patron,c-1,Child,{hash}\n\
             b@example.org,bbb,B,patron,,,{hash}\n\
             c@example.org,ccc,C,patron,C-1,,{hash}\n\
             d@example.org,ddd,D,patron,bad card,,{hash}\n\
             e@example.org,eee,E,patron,E-1,martian,{hash}\n"
        ),
    )
    .unwrap();
    let report = carrel_server::cli::users::import(&app.state, &path)
        .await
        .unwrap();
    assert_eq!(report.imported, 2, "{report:?}");
    let reasons: Vec<&str> = report.skipped.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("duplicate")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("card_number")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("category `martian`")),
        "{reasons:?}"
    );
    let a = app
        .state
        .store
        .find_user_by_card("C-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.username, "aaa");
    assert_eq!(a.category, "child");
    let b = app
        .state
        .store
        .find_user_by_login("bbb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.category, "adult");
}
