//! The catalog use cases (`app::catalog`) called directly, as every front door
//! calls them: typed refusals, and each success with its item history entry.

use carrel_core::roles::Role;
use carrel_server::app::Actor;
use carrel_server::app::catalog::{
    self, CatalogRefusal, CopyChangesInput, ItemChanges, NewCopyInput,
};
use carrel_server::catalog::fields::ItemInput;
use carrel_server::http::client::ClientInfo;
use carrel_store::ItemEvent;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, backend_tests};

backend_tests!(
    item_use_cases_write_their_history,
    item_use_cases_refuse_with_typed_reasons,
    copy_use_cases_write_their_history_and_refuse,
);

async fn actor(app: &TestApp, username: &str) -> Actor {
    let user = app.create_user(username, Role::Librarian).await;
    let client = ClientInfo {
        ip: None,
        user_agent: None,
        request_id: "test".into(),
    };
    Actor::api(user.id, &client)
}

fn item(title: &str) -> ItemInput {
    ItemInput {
        title: Some(title.into()),
        ..Default::default()
    }
}

fn copy(barcode: &str) -> NewCopyInput {
    NewCopyInput {
        barcode: barcode.into(),
        ..Default::default()
    }
}

async fn history(app: &TestApp, item_id: Uuid) -> Vec<ItemEvent> {
    app.state
        .store
        .item_events(item_id, None, 100)
        .await
        .unwrap()
}

fn kinds(events: &[ItemEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

async fn item_use_cases_write_their_history(app: TestApp) {
    let staff = actor(&app, "cataloguer").await;
    let state = &app.state;

    let mut input = item("  Opticks ");
    input.isbn = Some("0-306-40615-2".into());
    input.item_type = Some("ebook".into());
    let created = catalog::create_item(state, Some(&staff), input)
        .await
        .unwrap();
    assert_eq!(created.title, "Opticks");
    assert_eq!(created.isbn.as_deref(), Some("9780306406157"));
    assert_eq!(created.item_type, "ebook");
    let events = history(&app, created.id).await;
    assert_eq!(kinds(&events), ["created"]);
    assert_eq!(events[0].actor_id, Some(staff.id));
    assert_eq!(events[0].details.0, json!({"title": "Opticks"}));

    // A PATCH merges into the stored item and names what it set.
    let changes = ItemChanges {
        subtitle: Some(Some("or, a Treatise".into())),
        isbn: Some(None),
        ..Default::default()
    };
    let updated = catalog::update_item(state, &staff, created.id, changes)
        .await
        .unwrap();
    assert_eq!(updated.title, "Opticks");
    assert_eq!(updated.subtitle.as_deref(), Some("or, a Treatise"));
    assert_eq!(updated.isbn, None);
    assert_eq!(updated.item_type, "ebook");
    let events = history(&app, created.id).await;
    assert_eq!(kinds(&events), ["created", "updated"]);
    assert_eq!(events[1].details.0, json!({"fields": ["subtitle", "isbn"]}));
    assert_eq!(events[1].actor_id, Some(staff.id));

    catalog::delete_item(state, &staff, created.id)
        .await
        .unwrap();
    assert!(
        state
            .store
            .find_item(created.id, false)
            .await
            .unwrap()
            .is_none()
    );
    let restored = catalog::restore_item(state, &staff, created.id)
        .await
        .unwrap();
    assert_eq!(restored.id, created.id);
    let events = history(&app, created.id).await;
    assert_eq!(
        kinds(&events),
        ["created", "updated", "deleted", "restored"]
    );
    assert!(events.iter().all(|e| e.actor_id == Some(staff.id)));

    // The server's own loader (`carrel demo`) records no actor.
    let loaded = catalog::create_item(state, None, item("Walden"))
        .await
        .unwrap();
    let events = history(&app, loaded.id).await;
    assert_eq!(kinds(&events), ["created"]);
    assert_eq!(events[0].actor_id, None);
}

async fn item_use_cases_refuse_with_typed_reasons(app: TestApp) {
    let staff = actor(&app, "cataloguer").await;
    let state = &app.state;

    // Every bad field is named; a well-formed but undefined type last.
    let bad = ItemInput {
        title: Some("   ".into()),
        isbn: Some("978-0-306-40615-8".into()),
        item_type: Some("scroll".into()),
        ..Default::default()
    };
    let Err(CatalogRefusal::InvalidFields(fields)) =
        catalog::create_item(state, Some(&staff), bad).await
    else {
        panic!("expected invalid fields")
    };
    let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(names, ["title", "isbn", "item_type"]);
    assert_eq!(
        fields[2].1,
        "must be a defined item type (see /api/v1/item-types)"
    );

    let mut first = item("Opticks");
    first.isbn = Some("9780306406157".into());
    let first = catalog::create_item(state, Some(&staff), first)
        .await
        .unwrap();
    let mut twin = item("Opticks again");
    twin.isbn = Some("0-306-40615-2".into());
    assert!(matches!(
        catalog::create_item(state, Some(&staff), twin).await,
        Err(CatalogRefusal::DuplicateIsbn)
    ));

    // A PATCH is checked whole; the item and its history stay as they were.
    let clear_title = ItemChanges {
        title: Some(" ".into()),
        ..Default::default()
    };
    assert!(matches!(
        catalog::update_item(state, &staff, first.id, clear_title).await,
        Err(CatalogRefusal::InvalidFields(f)) if f.len() == 1 && f[0].0 == "title"
    ));
    let unknown = Uuid::now_v7();
    assert!(matches!(
        catalog::update_item(state, &staff, unknown, ItemChanges::default()).await,
        Err(CatalogRefusal::NotFound)
    ));
    assert!(matches!(
        catalog::restore_item(state, &staff, first.id).await,
        Err(CatalogRefusal::NotFound)
    ));

    // An item with a copy on loan is not deleted.
    let patron = app.create_user("reader", Role::Patron).await;
    catalog::add_copy(state, Some(&staff), first.id, copy("LOAN-1"))
        .await
        .unwrap();
    carrel_server::app::circulation::checkout(state, &staff, "LOAN-1", patron.id, None)
        .await
        .unwrap();
    let refusal = catalog::delete_item(state, &staff, first.id)
        .await
        .unwrap_err();
    assert!(
        matches!(refusal, CatalogRefusal::CopiesOnLoan),
        "{refusal:?}"
    );
    assert_eq!(refusal.to_string(), "copies of this item are on loan");
    assert!(
        state
            .store
            .find_item(first.id, false)
            .await
            .unwrap()
            .is_some()
    );
    let events = history(&app, first.id).await;
    assert!(!kinds(&events).contains(&"deleted"), "{:?}", kinds(&events));
    assert!(!kinds(&events).contains(&"updated"), "{:?}", kinds(&events));
}

async fn copy_use_cases_write_their_history_and_refuse(app: TestApp) {
    let staff = actor(&app, "cataloguer").await;
    let state = &app.state;
    let item = catalog::create_item(state, Some(&staff), item("Middlemarch"))
        .await
        .unwrap();

    let mut input = copy("  MM-1 ");
    input.location = Some(" Stacks ".into());
    let added = catalog::add_copy(state, Some(&staff), item.id, input)
        .await
        .unwrap();
    assert_eq!(added.barcode, "MM-1");
    assert_eq!(added.location.as_deref(), Some("Stacks"));
    let events = history(&app, item.id).await;
    assert_eq!(kinds(&events), ["created", "copy_added"]);
    assert_eq!(
        events[1].details.0,
        json!({"copy_id": added.id, "barcode": "MM-1"})
    );
    assert_eq!(events[1].actor_id, Some(staff.id));

    // Refusals: nothing is added, and the history does not grow.
    assert!(matches!(
        catalog::add_copy(state, Some(&staff), item.id, copy("MM-1")).await,
        Err(CatalogRefusal::DuplicateBarcode)
    ));
    assert!(matches!(
        catalog::add_copy(state, Some(&staff), item.id, copy("has space")).await,
        Err(CatalogRefusal::InvalidFields(f)) if f[0].0 == "barcode"
    ));
    let mut elsewhere = copy("MM-2");
    elsewhere.branch_id = Some(Uuid::now_v7());
    assert!(matches!(
        catalog::add_copy(state, Some(&staff), item.id, elsewhere).await,
        Err(CatalogRefusal::UnknownBranch)
    ));
    assert!(matches!(
        catalog::add_copy(state, Some(&staff), Uuid::now_v7(), copy("MM-3")).await,
        Err(CatalogRefusal::NotFound)
    ));
    let circulation_only = CopyChangesInput {
        status: Some("on_loan".into()),
        ..Default::default()
    };
    assert!(matches!(
        catalog::update_copy(state, &staff, added.id, circulation_only).await,
        Err(CatalogRefusal::InvalidFields(f)) if f[0].0 == "status"
    ));
    assert_eq!(history(&app, item.id).await.len(), 2);
    assert_eq!(state.store.list_copies(item.id).await.unwrap().len(), 1);

    let damaged = CopyChangesInput {
        status: Some("damaged".into()),
        location: Some(None),
        ..Default::default()
    };
    let changed = catalog::update_copy(state, &staff, added.id, damaged)
        .await
        .unwrap();
    assert_eq!(changed.status.to_string(), "damaged");
    assert_eq!(changed.location, None);
    let events = history(&app, item.id).await;
    assert_eq!(kinds(&events), ["created", "copy_added", "copy_updated"]);
    assert_eq!(
        events[2].details.0["status"],
        json!({"from": "available", "to": "damaged"})
    );

    // A copy on loan keeps its status and is not deleted.
    let patron = app.create_user("reader", Role::Patron).await;
    let lent = catalog::add_copy(state, Some(&staff), item.id, copy("MM-4"))
        .await
        .unwrap();
    carrel_server::app::circulation::checkout(state, &staff, "MM-4", patron.id, None)
        .await
        .unwrap();
    let lost = CopyChangesInput {
        status: Some("lost".into()),
        ..Default::default()
    };
    assert!(matches!(
        catalog::update_copy(state, &staff, lent.id, lost).await,
        Err(CatalogRefusal::CopyInCirculation)
    ));
    assert!(matches!(
        catalog::delete_copy(state, &staff, lent.id).await,
        Err(CatalogRefusal::CopyInCirculation)
    ));

    catalog::delete_copy(state, &staff, added.id).await.unwrap();
    assert!(matches!(
        catalog::delete_copy(state, &staff, added.id).await,
        Err(CatalogRefusal::NotFound)
    ));
    let events = history(&app, item.id).await;
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "copy_deleted");
    assert_eq!(
        last.details.0,
        json!({"copy_id": added.id, "barcode": "MM-1"})
    );
    assert_eq!(last.actor_id, Some(staff.id));
    assert_eq!(
        kinds(&events)
            .iter()
            .filter(|k| **k == "copy_deleted")
            .count(),
        1
    );
}
