//! Rules a library writes: item types, patron categories with their own
//! limits, the circulation rule matrix (resolution, per-type limits, holds
//! allowed or not, whole-matrix validation) and the checkout simulation, which
//! must agree with real checkout.

use reqwest::{Method, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::desk::{ADMIN, Desk, LIBRARIAN, at};
use crate::helpers::{TestApp, assert_error, backend_tests};

backend_tests!(
    item_types_are_the_librarys_own,
    patron_categories_carry_their_own_limits,
    the_most_specific_rule_wins_at_every_level,
    a_matrix_is_validated_whole,
    a_child_hits_the_dvd_limit_while_an_adult_falls_through,
    simulation_agrees_with_checkout,
);

async fn json_of(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    response.json().await.unwrap()
}

async fn admin(desk: &Desk, method: Method, path: &str, body: Value) -> Response {
    desk.as_user(ADMIN, method, path)
        .await
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A matrix row with the book defaults; `extra` overrides fields.
fn row(
    branch: Option<Uuid>,
    category: Option<&str>,
    item_type: Option<&str>,
    extra: Value,
) -> Value {
    let mut row = json!({
        "branch_id": branch, "patron_category": category, "item_type": item_type,
        "loan_days": 21, "max_renewals": 3, "daily_fine_cents": 25, "max_fine_cents": 1000,
        "grace_days": 1, "replacement_cost_cents": 2500, "max_loans_of_type": null, "holds_allowed": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        row[k] = v.clone();
    }
    row
}

async fn put_matrix(desk: &Desk, rows: Vec<Value>) -> Response {
    admin(
        desk,
        Method::PUT,
        "/api/v1/circulation-rules",
        json!({"data": rows}),
    )
    .await
}

async fn set_category(desk: &Desk, user: Uuid, category: &str) {
    let response = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{user}"))
        .await
        .json(&json!({"category": category}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(response, 200).await["category"], category);
}

async fn item_types_are_the_librarys_own(app: TestApp) {
    let desk = &Desk::open(app).await;
    // Anyone reads them; the six of today are seeded.
    let listed: Value = desk
        .app
        .get("/api/v1/item-types")
        .await
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["audiobook", "book", "dvd", "ebook", "magazine", "other"]
    );
    assert!(listed["next_cursor"].is_null());

    // Admins define them; librarians may not.
    let game = json!({"code": "board-game", "name": "Board game"});
    assert_error(
        desk.staff(Method::POST, "/api/v1/item-types")
            .await
            .json(&game)
            .send()
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    let created = json_of(
        admin(desk, Method::POST, "/api/v1/item-types", game.clone()).await,
        201,
    )
    .await;
    assert_eq!(created, game);
    assert_error(
        admin(desk, Method::POST, "/api/v1/item-types", game).await,
        409,
        "CONFLICT",
    )
    .await;
    let bad = assert_error(
        admin(
            desk,
            Method::POST,
            "/api/v1/item-types",
            json!({"code": "Board Game", "name": " "}),
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(bad["details"]["fields"]["code"].is_string(), "{bad}");
    assert!(bad["details"]["fields"]["name"].is_string(), "{bad}");

    // Items may be of any defined type, and of no other.
    let game_item = desk.item("Carcassonne", "board-game", &["G-1"]).await;
    let unknown = desk
        .staff(Method::POST, "/api/v1/items")
        .await
        .json(&json!({"title": "Starship", "item_type": "spaceship"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(unknown, 422, "VALIDATION_ERROR").await;
    assert!(body["details"]["fields"]["item_type"].is_string(), "{body}");
    let retype = desk
        .staff(Method::PATCH, &format!("/api/v1/items/{game_item}"))
        .await
        .json(&json!({"item_type": "spaceship"}))
        .send()
        .await
        .unwrap();
    assert_error(retype, 422, "VALIDATION_ERROR").await;
    let found: Value = desk
        .app
        .get("/api/v1/items?item_type=board-game")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"][0]["id"], game_item.to_string());
    assert_error(
        desk.app.get("/api/v1/items?item_type=spaceship").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    // A type without its own row lends under the default rule.
    let patron = desk.patron("pat").await;
    let loan = desk.lend("G-1", patron.id).await;
    assert_eq!(
        loan["max_renewals"], 1,
        "the default row (the old `other` policy)"
    );

    // Renamed by code; deleting one in use is refused, an unused one goes.
    let renamed = json_of(
        admin(
            desk,
            Method::PATCH,
            "/api/v1/item-types/board-game",
            json!({"name": "Game"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(renamed["name"], "Game");
    assert_error(
        admin(
            desk,
            Method::PATCH,
            "/api/v1/item-types/nothing",
            json!({"name": "X"}),
        )
        .await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        admin(
            desk,
            Method::DELETE,
            "/api/v1/item-types/board-game",
            json!({}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert_error(
        admin(desk, Method::DELETE, "/api/v1/item-types/book", json!({})).await,
        409,
        "CONFLICT",
    )
    .await;
    json_of(
        admin(
            desk,
            Method::POST,
            "/api/v1/item-types",
            json!({"code": "seeds", "name": "Seeds"}),
        )
        .await,
        201,
    )
    .await;
    let gone = admin(desk, Method::DELETE, "/api/v1/item-types/seeds", json!({})).await;
    assert_eq!(gone.status(), 204);
    assert_error(
        admin(desk, Method::DELETE, "/api/v1/item-types/seeds", json!({})).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_eq!(desk.app.audit_events("item_type.created").await.len(), 2);
    assert_eq!(desk.app.audit_events("item_type.deleted").await.len(), 1);
}

async fn patron_categories_carry_their_own_limits(app: TestApp) {
    let desk = &Desk::open(app).await;
    let pat = desk.patron("pat").await;
    // Patrons cannot read categories; librarians can.
    let refused = desk
        .as_user("pat", Method::GET, "/api/v1/patron-categories")
        .await
        .send()
        .await
        .unwrap();
    assert_error(refused, 403, "FORBIDDEN").await;
    let listed = desk.get_json(LIBRARIAN, "/api/v1/patron-categories").await;
    assert_eq!(
        listed["data"],
        json!([
            {"code": "adult", "name": "Adult", "max_active_loans": null, "max_active_holds": null},
            {"code": "child", "name": "Child", "max_active_loans": null, "max_active_holds": null},
            {"code": "staff", "name": "Staff", "max_active_loans": null, "max_active_holds": null},
        ])
    );
    // Only admins write them.
    let student =
        json!({"code": "student", "name": "Student", "max_active_loans": 2, "max_active_holds": 1});
    let by_librarian = desk
        .staff(Method::POST, "/api/v1/patron-categories")
        .await
        .json(&student)
        .send()
        .await
        .unwrap();
    assert_error(by_librarian, 403, "FORBIDDEN").await;
    assert_eq!(
        json_of(
            admin(
                desk,
                Method::POST,
                "/api/v1/patron-categories",
                student.clone()
            )
            .await,
            201
        )
        .await,
        student
    );
    let bad = assert_error(
        admin(
            desk,
            Method::POST,
            "/api/v1/patron-categories",
            json!({"code": "x", "name": "X", "max_active_loans": 10001}),
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(
        bad["details"]["fields"]["max_active_loans"].is_string(),
        "{bad}"
    );

    // Users are `adult` by default; staff set the category, the patron cannot.
    assert_eq!(
        desk.get_json("pat", "/api/v1/users/me").await["category"],
        "adult"
    );
    let own = desk
        .as_user("pat", Method::PATCH, "/api/v1/users/me")
        .await
        .json(&json!({"category": "staff"}))
        .send()
        .await
        .unwrap();
    assert_error(own, 422, "VALIDATION_ERROR").await;
    let unknown = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{}", pat.id))
        .await
        .json(&json!({"category": "martian"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(unknown, 422, "VALIDATION_ERROR").await;
    assert!(body["details"]["fields"]["category"].is_string(), "{body}");
    set_category(desk, pat.id, "student").await;
    let kid = desk
        .staff(Method::POST, "/api/v1/users")
        .await
        .json(&json!({"email": "kid@example.org", "username": "kid", "password": crate::helpers::PASSWORD, "category": "child"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(kid, 201).await["category"], "child");
    // Staff find the members of a category (and of a home branch).
    let children = desk
        .get_json(LIBRARIAN, "/api/v1/users?category=child")
        .await;
    let names: Vec<&str> = children["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kid"]);
    let students = desk
        .get_json(LIBRARIAN, "/api/v1/users?category=student")
        .await;
    assert_eq!(students["data"][0]["username"], "pat");
    assert_eq!(students["data"].as_array().unwrap().len(), 1);
    let at_main = desk
        .get_json(
            LIBRARIAN,
            "/api/v1/users?category=child&home_branch_id=00000000-0000-7000-8000-000000000001",
        )
        .await;
    assert_eq!(
        at_main["data"].as_array().unwrap().len(),
        0,
        "no home branch set"
    );
    assert_eq!(
        desk.app
            .get("/api/v1/users?home_branch_id=nope")
            .await
            .status(),
        401,
        "anonymous callers learn nothing"
    );

    // The category's loan limit (2) applies instead of the global one (10).
    desk.item("Dune", "book", &["B-1", "B-2", "B-3"]).await;
    desk.lend("B-1", pat.id).await;
    desk.lend("B-2", pat.id).await;
    assert_error(
        desk.checkout("B-3", pat.id).await,
        409,
        "LOAN_LIMIT_REACHED",
    )
    .await;
    // Its hold limit (1) too.
    let other = desk.item("Emma", "book", &["E-1"]).await;
    let third = desk.item("Ulysses", "book", &["U-1"]).await;
    desk.lend("E-1", desk.patron("someone").await.id).await;
    assert_eq!(desk.place_hold("pat", other).await.status(), 201);
    assert_error(
        desk.place_hold("pat", third).await,
        409,
        "HOLD_LIMIT_REACHED",
    )
    .await;
    // Back to the global limits: null.
    let patched = json_of(
        admin(
            desk,
            Method::PATCH,
            "/api/v1/patron-categories/student",
            json!({"max_active_loans": null, "max_active_holds": null}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["max_active_loans"], Value::Null);
    assert_eq!(patched["name"], "Student");
    assert_eq!(desk.checkout("B-3", pat.id).await.status(), 201);
    assert_eq!(desk.place_hold("pat", third).await.status(), 201);

    // Deleting: not the default, not one in use; an unused one goes.
    assert_error(
        admin(
            desk,
            Method::DELETE,
            "/api/v1/patron-categories/adult",
            json!({}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert_error(
        admin(
            desk,
            Method::DELETE,
            "/api/v1/patron-categories/student",
            json!({}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(
        admin(
            desk,
            Method::DELETE,
            "/api/v1/patron-categories/staff",
            json!({})
        )
        .await
        .status(),
        204
    );
    assert_error(
        admin(
            desk,
            Method::DELETE,
            "/api/v1/patron-categories/staff",
            json!({}),
        )
        .await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}

async fn resolve(desk: &Desk, query: &str) -> Value {
    desk.get_json(
        LIBRARIAN,
        &format!("/api/v1/circulation-rules/resolve?{query}"),
    )
    .await
}

async fn the_most_specific_rule_wins_at_every_level(app: TestApp) {
    let desk = &Desk::open(app).await;
    // The migrated matrix: the six type rows and a default row.
    let matrix = desk.get_json(LIBRARIAN, "/api/v1/circulation-rules").await;
    let rows = matrix["data"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0]["item_type"], "audiobook");
    assert_eq!(
        rows[6],
        row(
            None,
            None,
            None,
            json!({"loan_days": 14, "max_renewals": 1, "replacement_cost_cents": 2000})
        )
    );
    let dvd = resolve(desk, "item_type=dvd&patron_category=child").await;
    assert_eq!(
        (dvd["matched"].as_str(), dvd["rule"]["loan_days"].as_u64()),
        (Some("type"), Some(7))
    );

    // One row per level, each with its own loan length (1 = most specific).
    let created = desk
        .as_user(ADMIN, Method::POST, "/api/v1/branches")
        .await
        .json(&json!({"code": "WEST", "name": "Westside"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let branch: Uuid = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let levels = [
        (
            Some(branch),
            Some("child"),
            Some("dvd"),
            "branch+category+type",
        ),
        (Some(branch), Some("child"), None, "branch+category"),
        (Some(branch), None, Some("dvd"), "branch+type"),
        (Some(branch), None, None, "branch"),
        (None, Some("child"), Some("dvd"), "category+type"),
        (None, Some("child"), None, "category"),
        (None, None, Some("dvd"), "type"),
        (None, None, None, "default"),
    ];
    let mut rows: Vec<Value> = levels
        .iter()
        .enumerate()
        .map(|(i, (b, c, t, _))| row(*b, *c, *t, json!({"loan_days": i + 1})))
        .collect();
    // Sent least specific first: the order of the rows does not matter.
    rows.reverse();
    let stored = json_of(put_matrix(desk, rows.clone()).await, 200).await;
    assert_eq!(stored["data"].as_array().unwrap().len(), 8);
    assert_eq!(stored["data"][0]["loan_days"], 1, "most specific first");
    assert_eq!(
        stored,
        desk.get_json(LIBRARIAN, "/api/v1/circulation-rules").await
    );

    let query = format!("branch_id={branch}&patron_category=child&item_type=dvd");
    for (i, (_, _, _, level)) in levels.iter().enumerate() {
        let resolved = resolve(desk, &query).await;
        assert_eq!(resolved["matched"], *level);
        assert_eq!(resolved["rule"]["loan_days"], i + 1);
        // Remove the winning row: the next level wins.
        rows.retain(|r| r["loan_days"] != i + 1);
        if !rows.is_empty()
            && rows.iter().any(|r| {
                r["branch_id"].is_null()
                    && r["patron_category"].is_null()
                    && r["item_type"].is_null()
            })
        {
            json_of(put_matrix(desk, rows.clone()).await, 200).await;
        }
    }

    // Keys that miss some columns fall to the levels they do match.
    let rows: Vec<Value> = levels
        .iter()
        .enumerate()
        .map(|(i, (b, c, t, _))| row(*b, *c, *t, json!({"loan_days": i + 1})))
        .collect();
    json_of(put_matrix(desk, rows).await, 200).await;
    for (query, level) in [
        (
            format!("branch_id={branch}&patron_category=child&item_type=book"),
            "branch+category",
        ),
        (
            format!("branch_id={branch}&patron_category=adult&item_type=dvd"),
            "branch+type",
        ),
        (
            format!("branch_id={branch}&patron_category=adult"),
            "branch",
        ),
        (
            format!(
                "branch_id={}&patron_category=child&item_type=dvd",
                Uuid::now_v7()
            ),
            "category+type",
        ),
        (
            "patron_category=child&item_type=book".to_owned(),
            "category",
        ),
        ("patron_category=adult&item_type=dvd".to_owned(), "type"),
        ("item_type=book".to_owned(), "default"),
        (String::new(), "default"),
    ] {
        assert_eq!(resolve(desk, &query).await["matched"], level, "{query}");
    }
    for bad in [
        "item_type=spaceship",
        "patron_category=martian",
        "branch_id=nope",
        "colour=red",
    ] {
        let response = desk
            .staff(
                Method::GET,
                &format!("/api/v1/circulation-rules/resolve?{bad}"),
            )
            .await
            .send()
            .await
            .unwrap();
        assert_error(response, 400, "VALIDATION_ERROR").await;
    }
    // Checkout freezes the rule that resolves for the patron and the item.
    let kid = desk.patron("kid").await;
    set_category(desk, kid.id, "child").await;
    desk.item("Heidi", "book", &["H-1", "H-2"]).await;
    let loan = desk.lend("H-1", kid.id).await;
    let days = (at(&loan["due_at"]).date() - desk.now().date()).whole_days();
    assert_eq!(days, 6, "the category row at MAIN, the copy's home");
    // At the Westside desk, the branch+category row applies.
    let response = desk
        .staff(Method::POST, "/api/v1/loans")
        .await
        .json(&json!({"copy_barcode": "H-2", "user_id": kid.id, "branch_id": branch}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let loan: Value = response.json().await.unwrap();
    let days = (at(&loan["due_at"]).date() - desk.now().date()).whole_days();
    assert_eq!(days, 2, "the branch+category row at the Westside desk");
    assert_eq!(loan["branch_id"], branch.to_string());

    // A row naming a branch that does not exist is refused, naming the row.
    let mut rows = matrix_rows(desk).await;
    rows.push(row(Some(Uuid::now_v7()), None, Some("book"), json!({})));
    let body = assert_error(put_matrix(desk, rows).await, 422, "VALIDATION_ERROR").await;
    assert!(
        body["details"]["fields"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with(".branch_id")),
        "{body}"
    );
}

async fn matrix_rows(desk: &Desk) -> Vec<Value> {
    desk.get_json(LIBRARIAN, "/api/v1/circulation-rules").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn a_matrix_is_validated_whole(app: TestApp) {
    let desk = &Desk::open(app).await;
    desk.patron("pat").await;
    let before = desk.get_json(LIBRARIAN, "/api/v1/circulation-rules").await;
    let default = row(None, None, None, json!({}));
    // Librarians read but do not write; patrons do neither.
    let by_librarian = desk
        .staff(Method::PUT, "/api/v1/circulation-rules")
        .await
        .json(&json!({"data": [default.clone()]}))
        .send()
        .await
        .unwrap();
    assert_error(by_librarian, 403, "FORBIDDEN").await;
    let by_patron = desk
        .as_user("pat", Method::GET, "/api/v1/circulation-rules")
        .await
        .send()
        .await
        .unwrap();
    assert_error(by_patron, 403, "FORBIDDEN").await;

    // No default row.
    let body = assert_error(
        put_matrix(desk, vec![row(None, None, Some("book"), json!({}))]).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(body["details"]["fields"]["data"].is_string(), "{body}");
    // Duplicate keys, bad values and unknown codes, each named.
    let body = assert_error(
        put_matrix(
            desk,
            vec![
                default.clone(),
                row(None, Some("child"), Some("dvd"), json!({})),
                row(
                    None,
                    Some("child"),
                    Some("dvd"),
                    json!({"loan_days": 0, "daily_fine_cents": -5}),
                ),
                row(
                    None,
                    Some("martian"),
                    Some("spaceship"),
                    json!({"max_loans_of_type": 10001}),
                ),
            ],
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let fields = body["details"]["fields"].as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "data[2]",
            "data[2].daily_fine_cents",
            "data[2].loan_days",
            "data[3].item_type",
            "data[3].max_loans_of_type",
            "data[3].patron_category",
        ]
    );
    // Nothing changed.
    assert_eq!(
        desk.get_json(LIBRARIAN, "/api/v1/circulation-rules").await,
        before
    );

    // A valid matrix replaces everything, and the policies view shows its type rows.
    let stored = json_of(
        put_matrix(
            desk,
            vec![
                default,
                row(None, None, Some("dvd"), json!({"loan_days": 3})),
            ],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(stored["data"].as_array().unwrap().len(), 2);
    let policies = desk
        .get_json(LIBRARIAN, "/api/v1/circulation-policies")
        .await;
    let policies = policies["data"].as_array().unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(
        (
            policies[0]["item_type"].as_str(),
            policies[0]["loan_days"].as_u64()
        ),
        (Some("dvd"), Some(3))
    );
    // Editing a policy edits (or adds) the type row.
    let edited = admin(
        desk,
        Method::PUT,
        "/api/v1/circulation-policies/book",
        json!({"loan_days": 28, "max_renewals": 2, "daily_fine_cents": 10, "max_fine_cents": 500, "grace_days": 0, "replacement_cost_cents": 2000}),
    )
    .await;
    assert_eq!(edited.status(), 200);
    assert_eq!(
        resolve(desk, "item_type=book").await["rule"]["loan_days"],
        28
    );
    assert_eq!(desk.app.audit_events("rules.replaced").await.len(), 1);
}

async fn a_child_hits_the_dvd_limit_while_an_adult_falls_through(app: TestApp) {
    let desk = &Desk::open(app).await;
    let rows = vec![
        row(None, None, None, json!({"loan_days": 14})),
        row(None, None, Some("dvd"), json!({"loan_days": 7})),
        row(
            None,
            Some("child"),
            Some("dvd"),
            json!({"loan_days": 3, "max_loans_of_type": 2, "holds_allowed": false}),
        ),
    ];
    json_of(put_matrix(desk, rows).await, 200).await;
    let kid = desk.patron("kid").await;
    set_category(desk, kid.id, "child").await;
    let adult = desk.patron("adult").await;
    let dvds = desk
        .item("Frozen", "dvd", &["D-1", "D-2", "D-3", "D-4", "D-5", "D-6"])
        .await;
    desk.item("Matilda", "book", &["B-1"]).await;

    // At most 2 DVDs per child, each for 3 days.
    for barcode in ["D-1", "D-2"] {
        let loan = desk.lend(barcode, kid.id).await;
        assert_eq!(
            (at(&loan["due_at"]).date() - desk.now().date()).whole_days(),
            3
        );
    }
    assert_error(
        desk.checkout("D-3", kid.id).await,
        409,
        "LOAN_LIMIT_REACHED",
    )
    .await;
    // Other types still lend, under the default row.
    let book = desk.lend("B-1", kid.id).await;
    assert_eq!(
        (at(&book["due_at"]).date() - desk.now().date()).whole_days(),
        14
    );
    // An adult falls through to the type row: no per-type limit, 7 days.
    for barcode in ["D-3", "D-4", "D-5"] {
        let loan = desk.lend(barcode, adult.id).await;
        assert_eq!(
            (at(&loan["due_at"]).date() - desk.now().date()).whole_days(),
            7
        );
    }
    // Returning one DVD frees a place for the child.
    desk.returned("D-1").await;
    desk.lend("D-6", kid.id).await;

    // Holds: not for children on DVDs, fine for adults.
    assert_error(desk.place_hold("kid", dvds).await, 409, "HOLDS_NOT_ALLOWED").await;
    // (An adult without a DVD on loan: one who has it out cannot queue for it.)
    desk.patron("grownup").await;
    assert_eq!(desk.place_hold("grownup", dvds).await.status(), 201);

    // The rule is frozen on the loan: a later matrix does not change it.
    let frozen = desk
        .get_json(LIBRARIAN, &format!("/api/v1/loans?user_id={}", kid.id))
        .await;
    json_of(
        put_matrix(
            desk,
            vec![row(
                None,
                None,
                None,
                json!({"loan_days": 30, "max_renewals": 9}),
            )],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        desk.get_json(LIBRARIAN, &format!("/api/v1/loans?user_id={}", kid.id))
            .await,
        frozen
    );
}

/// One case of the simulation table.
struct Case {
    name: &'static str,
    patron: Uuid,
    barcode: &'static str,
}

async fn simulate(desk: &Desk, body: Value) -> Response {
    desk.staff(Method::POST, "/api/v1/circulation-rules/simulate")
        .await
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn simulation_agrees_with_checkout(app: TestApp) {
    let desk = &Desk::open(app).await;
    json_of(
        admin(
            desk,
            Method::POST,
            "/api/v1/patron-categories",
            json!({"code": "limited", "name": "Limited", "max_active_loans": 1}),
        )
        .await,
        201,
    )
    .await;
    let rows = vec![
        row(None, None, None, json!({"loan_days": 14})),
        row(
            None,
            Some("child"),
            Some("dvd"),
            json!({"loan_days": 3, "max_loans_of_type": 1}),
        ),
    ];
    json_of(put_matrix(desk, rows).await, 200).await;
    let ok = desk.patron("okay").await;
    let blocked = desk.patron("blocked").await;
    desk.charge(blocked.id, 1_000).await;
    let limited = desk.patron("limited").await;
    set_category(desk, limited.id, "limited").await;
    let kid = desk.patron("kid").await;
    set_category(desk, kid.id, "child").await;
    let holder = desk.patron("holder").await;
    desk.item("Walden", "book", &["B-1", "B-2", "B-3", "B-4", "B-5"])
        .await;
    desk.item("Bambi", "dvd", &["D-1", "D-2"]).await;
    let held = desk.item("Persuasion", "book", &["H-1"]).await;
    desk.lend("B-4", limited.id).await;
    desk.lend("D-1", kid.id).await;
    desk.lend("B-5", ok.id).await;
    // The only copy goes to the hold shelf for `holder`.
    assert_eq!(desk.place_hold("holder", held).await.status(), 201);

    let cases = [
        Case {
            name: "ok",
            patron: ok.id,
            barcode: "B-1",
        },
        Case {
            name: "blocked",
            patron: blocked.id,
            barcode: "B-2",
        },
        Case {
            name: "at the loan limit",
            patron: limited.id,
            barcode: "B-3",
        },
        Case {
            name: "at max_loans_of_type",
            patron: kid.id,
            barcode: "D-2",
        },
        Case {
            name: "copy on loan",
            patron: holder.id,
            barcode: "B-5",
        },
        Case {
            name: "on the hold shelf for someone else",
            patron: ok.id,
            barcode: "H-1",
        },
        Case {
            name: "on the hold shelf for this patron",
            patron: holder.id,
            barcode: "H-1",
        },
    ];
    let expected: [&[&str]; 7] = [
        &[],
        &["PATRON_BLOCKED"],
        &["LOAN_LIMIT_REACHED"],
        &["LOAN_LIMIT_REACHED"],
        &["COPY_UNAVAILABLE"],
        &["COPY_UNAVAILABLE"],
        &[],
    ];
    for (case, expected) in cases.iter().zip(expected) {
        let simulated = json_of(
            simulate(
                desk,
                json!({"user_id": case.patron, "copy_barcode": case.barcode}),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(
            simulated["refusals"],
            json!(expected),
            "{}: {simulated}",
            case.name
        );
        // Simulating twice changes nothing.
        let again = json_of(
            simulate(
                desk,
                json!({"user_id": case.patron, "copy_barcode": case.barcode}),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(again, simulated, "{}", case.name);
        let real = desk.checkout(case.barcode, case.patron).await;
        match expected.first() {
            None => {
                let loan = json_of(real, 201).await;
                assert_eq!(loan["due_at"], simulated["due_at"], "{}", case.name);
                assert_eq!(
                    simulated["due_date"].as_str().unwrap(),
                    at(&loan["due_at"]).date().to_string(),
                    "{}",
                    case.name
                );
            }
            Some(code) => {
                assert_error(real, 409, code).await;
            }
        }
    }

    // Every refusal at once, in checkout's order.
    desk.charge(kid.id, 1_000).await;
    let all = json_of(
        simulate(desk, json!({"user_id": kid.id, "copy_barcode": "D-1"})).await,
        200,
    )
    .await;
    assert_eq!(
        all["refusals"],
        json!(["PATRON_BLOCKED", "LOAN_LIMIT_REACHED", "COPY_UNAVAILABLE"])
    );
    assert_eq!(
        (all["matched"].as_str(), all["rule"]["loan_days"].as_u64()),
        (Some("category+type"), Some(3))
    );

    // By card, on a future date: the due date moves with it.
    let carded = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{}", ok.id))
        .await
        .json(&json!({"card_number": "C-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(carded.status(), 200);
    let later = (desk.now() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let future = json_of(
        simulate(
            desk,
            json!({"card_number": "c-42", "copy_barcode": "B-2", "at": later}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(future["refusals"], json!([]));
    assert_eq!(
        (at(&future["due_at"]).date() - desk.now().date()).whole_days(),
        24
    );
    assert_eq!(future["matched"], "default");

    // Bad requests.
    for body in [
        json!({"copy_barcode": "B-2"}),
        json!({"user_id": ok.id, "card_number": "C-42", "copy_barcode": "B-2"}),
    ] {
        assert_error(simulate(desk, body).await, 422, "VALIDATION_ERROR").await;
    }
    assert_error(
        simulate(desk, json!({"user_id": ok.id, "copy_barcode": "NOPE"})).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        simulate(desk, json!({"card_number": "NOPE", "copy_barcode": "B-2"})).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let by_patron = desk
        .as_user("okay", Method::POST, "/api/v1/circulation-rules/simulate")
        .await
        .json(&json!({"user_id": ok.id, "copy_barcode": "B-2"}))
        .send()
        .await
        .unwrap();
    assert_error(by_patron, 403, "FORBIDDEN").await;
}
