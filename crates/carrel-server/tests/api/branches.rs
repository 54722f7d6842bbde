//! Library structure: branches, calendars, local due days across zones and DST,
//! closed days, and transit between branches.

use reqwest::Method;
use serde_json::{Value, json};
use time::macros::datetime;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use crate::desk::{ADMIN, Desk, LIBRARIAN, at};
use crate::helpers::{TestApp, assert_error, backend_tests, backend_tests_with};

backend_tests!(
    branches_are_validated,
    calendars_are_validated,
    loans_made_a_day_before_dst_changes_keep_their_local_due_days,
    notices_and_retention_count_the_lending_branchs_local_days,
    a_due_day_on_a_closed_day_moves_to_the_next_open_day,
    closures_declared_after_checkout_are_not_charged,
    returns_at_another_branch_fill_holds_here_or_in_transit,
    copies_returned_away_from_home_travel_home,
    items_show_availability_per_branch,
);

backend_tests_with!(
    vec![("CARREL_FINES_COUNT_CLOSED_DAYS", "true".to_owned())]
        => closed_days_count_when_configured
);

const MAIN_ID: &str = "00000000-0000-7000-8000-000000000001";

fn day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn send(
    desk: &Desk,
    who: &str,
    method: Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    desk.as_user(who, method, path)
        .await
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

/// Creates a branch (as admin); returns its id.
async fn branch(desk: &Desk, code: &str, timezone: Option<&str>) -> Uuid {
    let body = json!({"code": code, "name": format!("{code} branch"), "timezone": timezone});
    let created = json_of(
        send(desk, ADMIN, Method::POST, "/api/v1/branches", body).await,
        201,
    )
    .await;
    created["id"].as_str().unwrap().parse().unwrap()
}

/// An item whose copies live at `home`.
async fn item_at(desk: &Desk, title: &str, item_type: &str, barcode: &str, home: Uuid) -> Uuid {
    let item = desk.item(title, item_type, &[]).await;
    let body = json!({"barcode": barcode, "branch_id": home});
    let copy = json_of(
        send(
            desk,
            LIBRARIAN,
            Method::POST,
            &format!("/api/v1/items/{item}/copies"),
            body,
        )
        .await,
        201,
    )
    .await;
    assert_eq!(copy["branch_id"], home.to_string());
    item
}

async fn lend_at(desk: &Desk, barcode: &str, user: Uuid, branch: Option<Uuid>) -> Value {
    let body = json!({"copy_barcode": barcode, "user_id": user, "branch_id": branch});
    json_of(
        send(desk, LIBRARIAN, Method::POST, "/api/v1/loans", body).await,
        201,
    )
    .await
}

async fn return_at(desk: &Desk, barcode: &str, branch: Option<Uuid>) -> Value {
    let body = json!({"copy_barcode": barcode, "branch_id": branch});
    json_of(
        send(desk, LIBRARIAN, Method::POST, "/api/v1/loans/return", body).await,
        200,
    )
    .await
}

async fn set_calendar(desk: &Desk, branch: &str, calendar: Value) -> Value {
    let path = format!("/api/v1/branches/{branch}/calendar");
    json_of(send(desk, ADMIN, Method::PUT, &path, calendar).await, 200).await
}

/// Moves the test clock to `target` (which must be in the future).
async fn advance_to(desk: &Desk, target: OffsetDateTime) {
    let now = desk.now();
    assert!(target > now, "the test clock only moves forward");
    desk.advance(target - now).await;
}

async fn fine(desk: &Desk, id: &Value) -> Value {
    desk.get_json(
        LIBRARIAN,
        &format!("/api/v1/fines/{}", id.as_str().unwrap()),
    )
    .await
}

async fn branches_are_validated(app: TestApp) {
    let desk = Desk::open(app).await;
    // Anyone lists them; migration made MAIN.
    let listed: Value = desk.app.get("/api/v1/branches").await.json().await.unwrap();
    assert_eq!(listed["data"][0]["code"], "MAIN");
    assert_eq!(listed["data"][0]["id"], MAIN_ID);
    assert!(listed["data"][0]["timezone"].is_null());
    assert!(listed["next_cursor"].is_null());

    let body = json!({"code": "EAST", "name": "East", "timezone": "america/new_york", "address": "1 Main St"});
    let east = json_of(
        send(&desk, ADMIN, Method::POST, "/api/v1/branches", body).await,
        201,
    )
    .await;
    // The zone is stored in the database's own spelling.
    assert_eq!(east["timezone"], "America/New_York");
    assert_eq!(east["address"], "1 Main St");
    // Codes are unique, case-sensitively.
    let again = send(
        &desk,
        ADMIN,
        Method::POST,
        "/api/v1/branches",
        json!({"code": "EAST", "name": "Twin"}),
    )
    .await;
    assert_error(again, 409, "CONFLICT").await;
    let lower = send(
        &desk,
        ADMIN,
        Method::POST,
        "/api/v1/branches",
        json!({"code": "east", "name": "Other"}),
    )
    .await;
    assert_eq!(lower.status(), 201);
    for (body, field) in [
        (json!({"code": "", "name": "x"}), "code"),
        (json!({"code": "has space", "name": "x"}), "code"),
        (json!({"code": "ABCDEFGHIJKLMNOPQ", "name": "x"}), "code"),
        (json!({"code": "É", "name": "x"}), "code"),
        (json!({"code": "OK", "name": "  "}), "name"),
        (
            json!({"code": "OK", "name": "x", "timezone": "Mars/Olympus_Mons"}),
            "timezone",
        ),
        (
            json!({"code": "OK", "name": "x", "timezone": ""}),
            "timezone",
        ),
    ] {
        let refused = send(&desk, ADMIN, Method::POST, "/api/v1/branches", body.clone()).await;
        let error = assert_error(refused, 422, "VALIDATION_ERROR").await;
        assert!(
            error["details"]["fields"][field].is_string(),
            "{body}: {error}"
        );
    }
    let unknown = send(
        &desk,
        ADMIN,
        Method::POST,
        "/api/v1/branches",
        json!({"code": "OK", "name": "x", "open": true}),
    )
    .await;
    assert_error(unknown, 422, "VALIDATION_ERROR").await;
    // Librarians and patrons read, only admins write.
    let staff = send(
        &desk,
        LIBRARIAN,
        Method::POST,
        "/api/v1/branches",
        json!({"code": "NO", "name": "x"}),
    )
    .await;
    assert_error(staff, 403, "FORBIDDEN").await;

    let id = east["id"].as_str().unwrap();
    let path = format!("/api/v1/branches/{id}");
    let patched = json_of(
        send(
            &desk,
            ADMIN,
            Method::PATCH,
            &path,
            json!({"timezone": null, "name": "East side"}),
        )
        .await,
        200,
    )
    .await;
    assert!(patched["timezone"].is_null());
    assert_eq!(patched["name"], "East side");
    assert_eq!(patched["address"], "1 Main St");
    let taken = send(&desk, ADMIN, Method::PATCH, &path, json!({"code": "MAIN"})).await;
    assert_error(taken, 409, "CONFLICT").await;
    let bad = send(
        &desk,
        ADMIN,
        Method::PATCH,
        &path,
        json!({"timezone": "Nowhere/Town"}),
    )
    .await;
    assert_error(bad, 422, "VALIDATION_ERROR").await;
    let missing = send(
        &desk,
        ADMIN,
        Method::PATCH,
        &format!("/api/v1/branches/{}", Uuid::now_v7()),
        json!({"name": "x"}),
    )
    .await;
    assert_error(missing, 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(desk.app.audit_events("branch.created").await.len(), 2);
    assert_eq!(desk.app.audit_events("branch.updated").await.len(), 1);

    // Pagination over the list.
    let first: Value = desk
        .app
        .get("/api/v1/branches?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = desk
        .app
        .get(&format!("/api/v1/branches?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);

    // Staff set a patron's home branch; the patron cannot.
    let ann = desk.patron("ann").await;
    let user_path = format!("/api/v1/users/{}", ann.id);
    let user = json_of(
        send(
            &desk,
            LIBRARIAN,
            Method::PATCH,
            &user_path,
            json!({"home_branch_id": id}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(user["home_branch_id"], id);
    let own = send(
        &desk,
        "ann",
        Method::PATCH,
        "/api/v1/users/me",
        json!({"home_branch_id": MAIN_ID}),
    )
    .await;
    assert_error(own, 422, "VALIDATION_ERROR").await;
    let nowhere = send(
        &desk,
        LIBRARIAN,
        Method::PATCH,
        &user_path,
        json!({"home_branch_id": Uuid::now_v7()}),
    )
    .await;
    assert_error(nowhere, 404, "RESOURCE_NOT_FOUND").await;
    // Holds default to the patron's home branch.
    let item = desk.item("Emma", "book", &["EM-1"]).await;
    let hold: Value = desk.place_hold("ann", item).await.json().await.unwrap();
    assert_eq!(hold["pickup_branch_id"], id);
}

async fn calendars_are_validated(app: TestApp) {
    let desk = Desk::open(app).await;
    let path = format!("/api/v1/branches/{MAIN_ID}/calendar");
    // Never set: open every day.
    let calendar: Value = desk.app.get(&path).await.json().await.unwrap();
    assert_eq!(calendar["weekly"]["sun"], json!([["00:00", "23:59"]]));
    assert_eq!(calendar["closed_dates"], json!([]));

    let good = json!({
        "weekly": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "tue": [["09:00", "17:00"]], "sat": [["10:00", "14:00"]]},
        "closed_dates": ["2026-12-25", "2027-01-01", "2026-12-25"],
    });
    let staff = send(&desk, LIBRARIAN, Method::PUT, &path, good.clone()).await;
    assert_error(staff, 403, "FORBIDDEN").await;
    let saved = set_calendar(&desk, MAIN_ID, good).await;
    assert_eq!(
        saved["weekly"]["mon"],
        json!([["09:00", "12:00"], ["13:00", "17:00"]])
    );
    assert_eq!(saved["weekly"]["sun"], json!([]));
    assert_eq!(saved["closed_dates"], json!(["2026-12-25", "2027-01-01"]));
    let read: Value = desk.app.get(&path).await.json().await.unwrap();
    assert_eq!(read, saved);

    let bad = json!({
        "weekly": {"mon": [["17:00", "09:00"]], "tue": [["9:00", "17:00"]], "wed": [["09:00", "12:00"], ["11:00", "13:00"]]},
        "closed_dates": ["2026-02-30"],
    });
    let refused = assert_error(
        send(&desk, ADMIN, Method::PUT, &path, bad).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    for field in [
        "weekly.mon[0]",
        "weekly.tue[0]",
        "weekly.wed",
        "closed_dates[0]",
    ] {
        assert!(
            refused["details"]["fields"][field].is_string(),
            "{field}: {refused}"
        );
    }
    let unknown_day = json!({"weekly": {"funday": []}, "closed_dates": []});
    assert_error(
        send(&desk, ADMIN, Method::PUT, &path, unknown_day).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let missing = format!("/api/v1/branches/{}/calendar", Uuid::now_v7());
    assert_error(desk.app.get(&missing).await, 404, "RESOURCE_NOT_FOUND").await;
    let put_missing = send(
        &desk,
        ADMIN,
        Method::PUT,
        &missing,
        json!({"weekly": {}, "closed_dates": []}),
    )
    .await;
    assert_error(put_missing, 404, "RESOURCE_NOT_FOUND").await;
    // The refused PUT changed nothing.
    let read: Value = desk.app.get(&path).await.json().await.unwrap();
    assert_eq!(read, saved);
    assert_eq!(
        desk.app.audit_events("branch.calendar_updated").await.len(),
        1
    );
}

async fn loans_made_a_day_before_dst_changes_keep_their_local_due_days(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let ny = branch(&desk, "NYC", Some("America/New_York")).await;
    let sydney = branch(&desk, "SYD", Some("Australia/Sydney")).await;
    item_at(&desk, "Dune", "dvd", "NY-1", ny).await;
    item_at(&desk, "Dune (AU)", "dvd", "SY-1", MAIN_ID.parse().unwrap()).await;

    // Saturday 13 March 2027, 20:00 in New York (EST); clocks spring forward on the 14th.
    advance_to(&desk, datetime!(2027-03-14 01:00 UTC)).await;
    let loan = lend_at(&desk, "NY-1", ann.id, None).await;
    // DVDs: 7 days from the local day, the 13th; due 23:59:59 EDT on the 20th.
    assert_eq!(loan["due_date"], "2027-03-20");
    assert_eq!(at(&loan["due_at"]), datetime!(2027-03-21 03:59:59 UTC));
    assert_eq!(loan["branch_id"], ny.to_string());

    // Saturday 3 April 2027, 10:00 in Sydney (AEDT); clocks fall back on the 4th.
    // The desk in Sydney lends a copy whose home is MAIN: the lending branch counts.
    advance_to(&desk, datetime!(2027-04-02 23:00 UTC)).await;
    let loan = lend_at(&desk, "SY-1", ann.id, Some(sydney)).await;
    assert_eq!(loan["due_date"], "2027-04-10");
    assert_eq!(at(&loan["due_at"]), datetime!(2027-04-10 13:59:59 UTC));
    assert_eq!(loan["branch_id"], sydney.to_string());

    // Late returns count local days: New York, returned on 2 April (19:00 EDT): 13 days.
    let back = return_at(&desk, "NY-1", Some(ny)).await;
    let calc = fine(&desk, &back["fine"]["id"]).await["calculation"].clone();
    assert_eq!(calc["days_late"], 13);
    assert_eq!(calc["closed_days_skipped"], 0);
    assert_eq!(back["fine"]["amount_cents"], 1300);
    // Sydney, returned on Monday 12 April at 00:30 AEST: two days (the 11th and the 12th),
    // although only one UTC midnight has passed since the due instant.
    advance_to(&desk, datetime!(2027-04-11 14:30 UTC)).await;
    let back = return_at(&desk, "SY-1", Some(sydney)).await;
    let calc = fine(&desk, &back["fine"]["id"]).await["calculation"].clone();
    assert_eq!(calc["days_late"], 2);
    assert_eq!(back["fine"]["amount_cents"], 200);
    // Returned at Sydney, its home is MAIN: it travels home.
    assert_eq!(back["transit_to_branch_id"], MAIN_ID);
}

/// How many "due" mails `email` has had.
async fn due_mail(desk: &Desk, email: &str) -> usize {
    desk.app
        .outbox()
        .await
        .iter()
        .filter(|m| m.to.contains(email) && m.subject.to_lowercase().contains("due"))
        .count()
}

/// The borrower recorded on a returned loan (null once anonymised).
async fn borrower(desk: &Desk, loan: &Value) -> Value {
    let returned = desk
        .get_json(LIBRARIAN, "/api/v1/loans?status=returned")
        .await;
    returned["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == loan["id"])
        .expect("the returned loan is listed")["user_id"]
        .clone()
}

/// "Due soon" and loan-history retention count local days of the lending
/// branch (Sydney, UTC+10 in May), not the library's zone (UTC here) nor
/// 24-hour periods.
async fn notices_and_retention_count_the_lending_branchs_local_days(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let sydney = branch(&desk, "SYD", Some("Australia/Sydney")).await;
    item_at(&desk, "Voss", "dvd", "SY-2", sydney).await;
    // Saturday 1 May 2027, 10:00 in Sydney: a DVD is due on Saturday the 8th,
    // 23:59:59 AEST (13:59:59 UTC).
    advance_to(&desk, datetime!(2027-05-01 00:00 UTC)).await;
    let loan = lend_at(&desk, "SY-2", ann.id, Some(sydney)).await;
    assert_eq!(loan["due_date"], "2027-05-08");
    // Wednesday the 5th, 00:30 in Sydney: three local days to go, no notice.
    advance_to(&desk, datetime!(2027-05-04 14:30 UTC)).await;
    assert_eq!(due_mail(&desk, &ann.email).await, 0);
    // Thursday the 6th, 00:30 in Sydney: two local days to go, although the due
    // instant is still almost three days (2 d 23.5 h) away. One notice, once.
    advance_to(&desk, datetime!(2027-05-05 14:30 UTC)).await;
    assert_eq!(due_mail(&desk, &ann.email).await, 1);
    desk.run_jobs().await;
    assert_eq!(due_mail(&desk, &ann.email).await, 1);

    // Returned on the 6th, local day in Sydney: with 30 days' retention the
    // borrower goes when 6 June begins in Sydney (5 June, 14:00 UTC), ten
    // hours before it begins in the library's zone.
    return_at(&desk, "SY-2", Some(sydney)).await;
    advance_to(&desk, datetime!(2027-06-05 13:30 UTC)).await;
    assert_eq!(borrower(&desk, &loan).await, ann.id.to_string());
    advance_to(&desk, datetime!(2027-06-05 14:30 UTC)).await;
    assert!(borrower(&desk, &loan).await.is_null());
}

async fn a_due_day_on_a_closed_day_moves_to_the_next_open_day(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.item("Ulysses", "book", &["U-1", "U-2"]).await;
    let today = desk.now().date();
    let due = today + Duration::days(21);
    // The due day and the day after are closed.
    let closed = json!([day(due), day(due + Duration::days(1))]);
    let all_week = json!([["00:00", "23:59"]]);
    let weekly = json!({"mon": all_week, "tue": all_week, "wed": all_week, "thu": all_week,
        "fri": all_week, "sat": all_week, "sun": all_week});
    set_calendar(
        &desk,
        MAIN_ID,
        json!({"weekly": weekly, "closed_dates": closed}),
    )
    .await;
    let loan = desk.lend("U-1", ann.id).await;
    let moved = due + Duration::days(2);
    assert_eq!(loan["due_date"], day(moved));
    assert_eq!(
        at(&loan["due_at"]),
        moved.with_hms(23, 59, 59).unwrap().assume_utc()
    );
    // Closing every weekday of the week after: the due day skips to the first open one.
    let weekday = |d: Date| {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            [usize::from(d.weekday().number_days_from_monday())]
    };
    let mut weekly = weekly.clone();
    weekly[weekday(due)] = json!([]);
    weekly[weekday(due + Duration::days(1))] = json!([]);
    set_calendar(
        &desk,
        MAIN_ID,
        json!({"weekly": weekly, "closed_dates": []}),
    )
    .await;
    let loan = desk.lend("U-2", ann.id).await;
    assert_eq!(loan["due_date"], day(due + Duration::days(2)));
    // The first loan keeps its due day.
    let first = desk
        .get_json(LIBRARIAN, &format!("/api/v1/loans?user_id={}", ann.id))
        .await;
    assert!(
        first["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["due_date"] == day(moved))
    );
}

/// Checks out a DVD (7 days, 1.00 a day, no grace), then closes the due day and
/// the two days after it, and returns it three days late.
async fn closure_after_checkout(desk: &Desk) -> (Value, Value) {
    let ann = desk.patron("ann").await;
    desk.item("Vertigo", "dvd", &["V-1"]).await;
    let loan = desk.lend("V-1", ann.id).await;
    let due: Date = time::Date::parse(
        loan["due_date"].as_str().unwrap(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();
    let closed = json!([
        day(due),
        day(due + Duration::days(1)),
        day(due + Duration::days(2))
    ]);
    set_calendar(desk, MAIN_ID, json!({"weekly": {
        "mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]], "wed": [["09:00", "17:00"]], "thu": [["09:00", "17:00"]],
        "fri": [["09:00", "17:00"]], "sat": [["09:00", "17:00"]], "sun": [["09:00", "17:00"]]}, "closed_dates": closed})).await;
    // The loan keeps its due day.
    let again = desk
        .get_json(
            LIBRARIAN,
            &format!("/api/v1/loans/{}", loan["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(again["due_date"], loan["due_date"]);
    assert_eq!(again["due_at"], loan["due_at"]);
    advance_to(
        desk,
        due.with_hms(12, 0, 0).unwrap().assume_utc() + Duration::days(3),
    )
    .await;
    let back = desk.returned("V-1").await;
    let calc = fine(desk, &back["fine"]["id"]).await["calculation"].clone();
    (back, calc)
}

async fn closures_declared_after_checkout_are_not_charged(app: TestApp) {
    let desk = Desk::open(app).await;
    let (back, calc) = closure_after_checkout(&desk).await;
    // Three days after the due day, two of them closed: one day late.
    assert_eq!(calc["days_late"], 1);
    assert_eq!(calc["closed_days_skipped"], 2);
    assert_eq!(back["fine"]["amount_cents"], 100);
}

async fn closed_days_count_when_configured(app: TestApp) {
    let desk = Desk::open(app).await;
    let (back, calc) = closure_after_checkout(&desk).await;
    assert_eq!(calc["days_late"], 3);
    assert_eq!(calc["closed_days_skipped"], 0);
    assert_eq!(back["fine"]["amount_cents"], 300);
}

async fn events_of(desk: &Desk, item: Uuid) -> Vec<String> {
    let events = desk
        .get_json(LIBRARIAN, &format!("/api/v1/items/{item}/events?limit=100"))
        .await;
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

async fn returns_at_another_branch_fill_holds_here_or_in_transit(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    desk.patron("cat").await;
    let east = branch(&desk, "EAST", None).await;
    let west = branch(&desk, "WEST", None).await;
    let item = desk.item("Persuasion", "book", &["P-1"]).await;
    desk.lend("P-1", ann.id).await;

    // Bob collects at East; Ann brings the copy back at East: ready there at once.
    let hold = json!({"item_id": item, "pickup_branch_id": east});
    let bobs = json_of(
        send(&desk, "bob", Method::POST, "/api/v1/holds", hold).await,
        201,
    )
    .await;
    assert_eq!(bobs["pickup_branch_id"], east.to_string());
    let back = return_at(&desk, "P-1", Some(east)).await;
    assert_eq!(back["hold"]["id"], bobs["id"]);
    assert_eq!(back["hold"]["status"], "ready");
    assert!(back["transit_to_branch_id"].is_null());
    assert_eq!(desk.copy_status(item, "P-1").await, "on_hold_shelf");
    lend_at(&desk, "P-1", bob.id, Some(east)).await;

    // Cat collects at West, which is closed for the next two days.
    let tomorrow = desk.now().date() + Duration::days(1);
    set_calendar(&desk, &west.to_string(), json!({"weekly": {
        "mon": [["08:00", "20:00"]], "tue": [["08:00", "20:00"]], "wed": [["08:00", "20:00"]], "thu": [["08:00", "20:00"]],
        "fri": [["08:00", "20:00"]], "sat": [["08:00", "20:00"]], "sun": [["08:00", "20:00"]]},
        "closed_dates": [day(tomorrow), day(tomorrow + Duration::days(1))]})).await;
    let hold = json!({"item_id": item, "pickup_branch_id": west});
    let cats = json_of(
        send(&desk, "cat", Method::POST, "/api/v1/holds", hold).await,
        201,
    )
    .await;
    // Bob returns it at East: it goes in transit to West, the hold keeps waiting.
    let back = return_at(&desk, "P-1", Some(east)).await;
    assert_eq!(back["transit_to_branch_id"], west.to_string());
    assert_eq!(back["hold"]["id"], cats["id"]);
    assert_eq!(back["hold"]["status"], "waiting");
    assert_eq!(desk.copy_status(item, "P-1").await, "in_transit");
    let copy_id = back["loan"]["copy_id"].as_str().unwrap().to_owned();
    // Nobody else can take it meanwhile.
    assert_error(desk.checkout("P-1", ann.id).await, 409, "COPY_UNAVAILABLE").await;

    let transits = desk
        .get_json(LIBRARIAN, &format!("/api/v1/transits?branch_id={west}"))
        .await;
    assert_eq!(transits["data"][0]["barcode"], "P-1");
    assert_eq!(transits["data"][0]["hold_id"], cats["id"]);
    let none = desk
        .get_json(LIBRARIAN, &format!("/api/v1/transits?branch_id={east}"))
        .await;
    assert_eq!(none["data"], json!([]));
    let patron = desk
        .as_user("cat", Method::GET, "/api/v1/transits")
        .await
        .send()
        .await
        .unwrap();
    assert_error(patron, 403, "FORBIDDEN").await;

    // Scanned in at the wrong branch: refused.
    let receive = format!("/api/v1/copies/{copy_id}/receive");
    let wrong = send(
        &desk,
        LIBRARIAN,
        Method::POST,
        &receive,
        json!({"branch_id": east}),
    )
    .await;
    assert_error(wrong, 409, "CONFLICT").await;
    // At West: Cat's hold is ready, and her pickup days start now, counting open days.
    let before = desk.now();
    let received = json_of(
        send(
            &desk,
            LIBRARIAN,
            Method::POST,
            &receive,
            json!({"branch_id": west}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(received["copy"]["status"], "on_hold_shelf");
    assert_eq!(received["hold"]["id"], cats["id"]);
    assert_eq!(received["hold"]["status"], "ready");
    let ready_at = at(&received["hold"]["ready_at"]);
    // The clock runs with real time: the scan happened during the request.
    assert!(before <= ready_at && ready_at <= desk.now(), "{ready_at}");
    // Seven open days, with the two closed days skipped: nine calendar days.
    assert_eq!(
        at(&received["hold"]["expires_at"]),
        ready_at + Duration::days(9)
    );
    assert!(
        desk.app
            .outbox()
            .await
            .iter()
            .any(|m| m.to.starts_with("cat@") && m.body.contains("Persuasion"))
    );
    let again = send(
        &desk,
        LIBRARIAN,
        Method::POST,
        &receive,
        json!({"branch_id": west}),
    )
    .await;
    assert_error(again, 409, "CONFLICT").await;

    let events = events_of(&desk, item).await;
    for kind in ["transit_started", "transit_received", "hold_ready"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
    assert_eq!(desk.app.audit_events("copy.transit_started").await.len(), 1);
    assert_eq!(desk.app.audit_events("copy.received").await.len(), 1);

    // Eight days on it still waits; after the ninth it expires and the copy goes home.
    desk.advance(Duration::days(8)).await;
    assert_eq!(desk.hold(&cats["id"]).await["status"], "ready");
    desk.advance(Duration::days(1) + Duration::hours(1)).await;
    assert_eq!(desk.hold(&cats["id"]).await["status"], "expired");
    assert_eq!(desk.copy_status(item, "P-1").await, "in_transit");
    // A return scan at home receives it.
    let home = return_at(&desk, "P-1", None).await;
    assert!(home["loan"].is_null());
    assert!(home["transit_to_branch_id"].is_null());
    assert_eq!(desk.copy_status(item, "P-1").await, "available");
}

async fn copies_returned_away_from_home_travel_home(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let east = branch(&desk, "EAST2", None).await;
    let item = item_at(&desk, "Sanditon", "book", "S-1", east).await;
    // Lent at MAIN (the desk's branch), returned at MAIN: home is East.
    let loan = lend_at(&desk, "S-1", ann.id, Some(MAIN_ID.parse().unwrap())).await;
    assert_eq!(loan["branch_id"], MAIN_ID);
    let back = return_at(&desk, "S-1", Some(MAIN_ID.parse().unwrap())).await;
    assert_eq!(back["transit_to_branch_id"], east.to_string());
    assert!(back["hold"].is_null());
    let listed = desk.get_json(LIBRARIAN, "/api/v1/transits").await;
    assert_eq!(listed["data"][0]["to_branch_id"], east.to_string());
    assert!(listed["data"][0]["hold_id"].is_null());
    // The item shows no copy available anywhere meanwhile.
    let shown = desk
        .get_json(LIBRARIAN, &format!("/api/v1/items/{item}"))
        .await;
    assert_eq!(shown["copies_available"], 0);
    let copy_id = back["loan"]["copy_id"].as_str().unwrap().to_owned();
    let received = json_of(
        send(
            &desk,
            LIBRARIAN,
            Method::POST,
            &format!("/api/v1/copies/{copy_id}/receive"),
            json!({"branch_id": east}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(received["copy"]["status"], "available");
    assert!(received["copy"]["transit_to_branch_id"].is_null());
    assert!(received["hold"].is_null());
    // Unknown branches in request bodies are not found.
    let nowhere = json!({"copy_barcode": "S-1", "user_id": ann.id, "branch_id": Uuid::now_v7()});
    assert_error(
        send(&desk, LIBRARIAN, Method::POST, "/api/v1/loans", nowhere).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}

async fn items_show_availability_per_branch(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let north = branch(&desk, "NORTH", None).await;
    let south = branch(&desk, "SOUTH", None).await;
    let item = item_at(&desk, "Lady Susan", "book", "L-2", north).await;
    for barcode in ["L-1"] {
        let body = json!({"barcode": barcode});
        json_of(
            send(
                &desk,
                LIBRARIAN,
                Method::POST,
                &format!("/api/v1/items/{item}/copies"),
                body,
            )
            .await,
            201,
        )
        .await;
    }
    let body = json!({"barcode": "L-3", "branch_id": north});
    json_of(
        send(
            &desk,
            LIBRARIAN,
            Method::POST,
            &format!("/api/v1/items/{item}/copies"),
            body,
        )
        .await,
        201,
    )
    .await;
    desk.item("Love and Freindship", "book", &["F-1"]).await;

    let shown: Value = desk
        .app
        .get(&format!("/api/v1/items/{item}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["copies_total"], 3);
    assert_eq!(shown["copies_available"], 3);
    assert_eq!(
        shown["availability"],
        json!([
            {"branch_id": MAIN_ID, "copies_total": 1, "copies_available": 1},
            {"branch_id": north.to_string(), "copies_total": 2, "copies_available": 2},
        ])
    );
    // An edit answers with the same view, availability included.
    let edited = json_of(
        send(
            &desk,
            LIBRARIAN,
            Method::PATCH,
            &format!("/api/v1/items/{item}"),
            json!({"subtitle": "An epistolary novel"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(edited["availability"], shown["availability"]);
    lend_at(&desk, "L-2", ann.id, Some(north)).await;
    let titles = |page: Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let search = |query: String| {
        let desk = &desk;
        async move {
            desk.app
                .get(&format!("/api/v1/items?{query}"))
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let page = search(format!("branch_id={north}")).await;
    assert_eq!(titles(page.clone()), ["Lady Susan"]);
    assert_eq!(page["data"][0]["availability"][1]["copies_available"], 1);
    assert_eq!(
        titles(search(format!("branch_id={south}")).await),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(search(format!("branch_id={north}&available=true")).await),
        ["Lady Susan"]
    );
    lend_at(&desk, "L-3", ann.id, None).await;
    assert_eq!(
        titles(search(format!("branch_id={north}&available=true")).await),
        Vec::<String>::new()
    );
    // MAIN still has one on the shelf.
    assert_eq!(
        titles(search(format!("branch_id={MAIN_ID}&available=true")).await),
        ["Lady Susan", "Love and Freindship"]
    );
    let bad = desk.app.get("/api/v1/items?branch_id=nowhere").await;
    assert_error(bad, 400, "VALIDATION_ERROR").await;
}
