//! The store conformance suite: every test runs against SQLite, and against
//! PostgreSQL when `CARREL_TEST_POSTGRES_URL` is set.

use carrel_store::testing::TestDatabase;
use carrel_store::{AuditQuery, Backend, NewAuditEvent, Store, StoreOptions};
use serde_json::json;
use time::macros::datetime;
use uuid::Uuid;

/// Runs each named test function once per backend.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run(carrel_store::Backend::Sqlite, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run(carrel_store::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDatabase::create(backend).await else {
        return;
    };
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    assert_eq!(store.backend(), backend);
    store.migrate().await.expect("migrate");
    test(store.clone()).await;
    store.close().await;
}

backend_tests!(
    migrations_are_idempotent_and_current,
    audit_events_round_trip_every_type,
    audit_events_filter_and_paginate,
);

async fn migrations_are_idempotent_and_current(store: Store) {
    assert!(store.schema_is_current().await.unwrap());
    store
        .migrate()
        .await
        .expect("a second run applies nothing and succeeds");
    assert!(store.schema_is_current().await.unwrap());
    store.ping().await.unwrap();
    let status = store.pool_status();
    assert!(status.max >= 1 && status.size <= status.max);
}

async fn audit_events_round_trip_every_type(store: Store) {
    let actor = Uuid::now_v7();
    let at = datetime!(2026-03-01 10:20:30 UTC);
    let details = json!({"identifier": "ann@example.org", "nested": {"n": 1, "ok": true}});
    let id = store
        .record_audit_event(&NewAuditEvent {
            event_type: "auth.login_succeeded",
            actor_id: Some(actor),
            subject_id: Some(actor),
            ip_address: Some("203.0.113.9".into()),
            user_agent: Some("test-agent/1.0".into()),
            request_id: Some("req-1".into()),
            at,
            details: details.clone(),
        })
        .await
        .unwrap();
    let events = store
        .list_audit_events(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.id, id);
    assert_eq!(e.event_type, "auth.login_succeeded");
    assert_eq!(e.actor_id, Some(actor));
    assert_eq!(e.subject_id, Some(actor));
    assert_eq!(e.ip_address.as_deref(), Some("203.0.113.9"));
    assert_eq!(e.user_agent.as_deref(), Some("test-agent/1.0"));
    assert_eq!(e.request_id.as_deref(), Some("req-1"));
    assert_eq!(e.at, at);
    assert_eq!(e.details.0, details);
}

async fn audit_events_filter_and_paginate(store: Store) {
    let alice = Uuid::now_v7();
    let bob = Uuid::now_v7();
    let base = datetime!(2026-01-01 00:00:00 UTC);
    for i in 0..7i64 {
        let subject = if i % 2 == 0 { alice } else { bob };
        store
            .record_audit_event(&NewAuditEvent {
                event_type: if i < 5 {
                    "auth.login_failed"
                } else {
                    "auth.locked"
                },
                actor_id: None,
                subject_id: Some(subject),
                ip_address: None,
                user_agent: None,
                request_id: None,
                // Two events share each second, so paging must break ties by id.
                at: base + time::Duration::seconds(i / 2),
                details: json!({}),
            })
            .await
            .unwrap();
    }
    let only_alice = store
        .list_audit_events(&AuditQuery {
            subject_id: Some(alice),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(only_alice.len(), 4);
    assert!(only_alice.iter().all(|e| e.subject_id == Some(alice)));

    let locked = store
        .list_audit_events(&AuditQuery {
            event_type: Some("auth.locked".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(locked.len(), 2);

    let window = store
        .list_audit_events(&AuditQuery {
            since: Some(base + time::Duration::seconds(1)),
            until: Some(base + time::Duration::seconds(2)),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 4);

    // Walk every page of 2: each event exactly once, newest first.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let mut page = store
            .list_audit_events(&AuditQuery {
                before,
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        let more = page.len() > 2;
        page.truncate(2);
        before = page.last().map(|e| (e.at, e.id));
        seen.extend(page.into_iter().map(|e| (e.at, e.id)));
        if !more {
            break;
        }
    }
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        seen, sorted,
        "pages are newest first without gaps or repeats"
    );
}

// Concurrency: parallel callers of one store (issue 13, item 5).
#[path = "conformance/concurrency.rs"]
mod concurrency;

backend_tests!(bulk_loaded_items_are_searchable_and_counted);

/// Items written before migration 0018 (which rebuilds SQLite's full-text
/// tables with prefix indexes) are found afterwards by whole words, by several
/// words in their field groups, and by two- and three-letter completions; and
/// items written afterwards as well. Runs on a store of its own, migrated in
/// two steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_written_before_the_prefix_index_are_found_after_it() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDatabase::create(backend).await else {
            continue;
        };
        let store = Store::connect(db.url(), &StoreOptions::default())
            .await
            .expect("connect");
        store.migrate_up_to(17).await.expect("migrate to 0017");
        assert!(!store.schema_is_current().await.unwrap());
        let item = |title: &str, description: &str| carrel_store::ItemFields {
            title: title.to_owned(),
            subtitle: None,
            authors: vec!["Muller, Anna".to_owned()],
            isbn: None,
            item_type: "book".to_owned(),
            publisher: None,
            publication_year: Some(1990),
            language: Some("en".to_owned()),
            subjects: vec!["Mountains".to_owned()],
            description: Some(description.to_owned()),
        };
        let now = datetime!(2026-01-01 00:00:00 UTC);
        let before = store
            .bulk_create_items(
                &[
                    item("Mule trains of the Andes", "pack animals"),
                    item("Harbour lights", "a mule in the harbour"),
                    item("Quiet rivers", "nothing here"),
                ],
                1,
                "PRE-",
                0,
                now,
            )
            .await
            .unwrap();
        store.migrate().await.expect("migrate the rest");
        assert!(store.schema_is_current().await.unwrap());
        let after = store
            .bulk_create_items(&[item("Mulberry harbour", "trees")], 1, "POST-", 0, now)
            .await
            .unwrap();
        let found = |terms: &[&str], prefix: bool| {
            let store = store.clone();
            let search = carrel_store::ItemSearch {
                terms: terms.iter().map(|t| (*t).to_owned()).collect(),
                prefix,
                author: None,
                item_type: None,
                subject: None,
                isbn: None,
                year_from: None,
                year_to: None,
                available_only: false,
                branch_id: None,
                sort: carrel_store::ItemSort::Relevance,
                after: None,
                limit: 100,
            };
            async move {
                let hits = store.search_items(&search).await.unwrap();
                hits.into_iter().map(|h| h.item.id).collect::<Vec<_>>()
            }
        };
        // Whole words: the title match (weight 10) before the description's.
        assert_eq!(found(&["mule"], false).await, vec![before[0], before[1]]);
        assert_eq!(
            found(&["harbour", "mule"], false).await,
            vec![before[1]],
            "{backend:?}"
        );
        // Completions of two and three letters, old rows and new.
        let mut mu = found(&["mu"], true).await;
        mu.sort();
        let mut expected = before.clone();
        expected.push(after[0]);
        expected.sort();
        assert_eq!(mu, expected, "{backend:?}: every item has `Muller`");
        assert_eq!(
            found(&["harbour", "mul"], true).await.len(),
            2,
            "{backend:?}: `mule` and `mulberry` with `harbour`"
        );
        assert_eq!(found(&["quiet", "riv"], true).await, vec![before[2]]);
        assert!(found(&["zz"], true).await.is_empty());
        store.close().await;
    }
}

async fn bulk_loaded_items_are_searchable_and_counted(store: Store) {
    use carrel_store::{ItemFields, ItemSearch, ItemSort};
    let items: Vec<ItemFields> = (0..450)
        .map(|i| ItemFields {
            title: format!(
                "Volume {i:03} {}",
                if i % 3 == 0 { "lighthouse" } else { "harbour" }
            ),
            subtitle: None,
            authors: vec![format!("Author {}", i % 7)],
            isbn: None,
            item_type: if i % 2 == 0 {
                "book".into()
            } else {
                "ebook".into()
            },
            publisher: None,
            publication_year: Some(1800 + i % 100),
            language: Some("en".into()),
            subjects: vec!["fiction".into()],
            description: Some("bulk".into()),
        })
        .collect();
    let now = datetime!(2026-01-01 00:00:00 UTC);
    let ids = store
        .bulk_create_items(&items, 2, "BULK-", 0, now)
        .await
        .unwrap();
    assert_eq!(ids.len(), 450);
    let search = |terms: Vec<&str>, item_type: Option<&str>| ItemSearch {
        terms: terms.into_iter().map(str::to_owned).collect(),
        prefix: false,
        author: None,
        item_type: item_type.map(str::to_owned),
        subject: None,
        isbn: None,
        year_from: None,
        year_to: None,
        available_only: true,
        branch_id: None,
        sort: ItemSort::Title { descending: false },
        after: None,
        limit: 1000,
    };
    let lighthouse = store
        .search_items(&search(vec!["lighthouse"], None))
        .await
        .unwrap();
    assert_eq!(lighthouse.len(), 150, "full text finds bulk-loaded items");
    let ebooks = store
        .search_items(&search(vec![], Some("ebook")))
        .await
        .unwrap();
    assert_eq!(ebooks.len(), 225);
    assert!(
        ebooks
            .iter()
            .all(|h| h.item.copies_total == 2 && h.item.copies_available == 2)
    );
    // Barcodes are unique and continue from the given number.
    let more = store
        .bulk_create_items(&items[..1], 1, "BULK-", 900, now)
        .await
        .unwrap();
    assert_eq!(more.len(), 1);
    let clash = store
        .bulk_create_items(&items[..1], 1, "BULK-", 0, now)
        .await;
    assert!(
        matches!(clash, Err(carrel_store::StoreError::Conflict { .. })),
        "duplicate barcodes are refused by the database"
    );
}

/// Failures of the database itself are told apart from bugs: a full disk is
/// `StorageFull` (the API's 507) and a server shutting down or dropping the
/// connection is `Unavailable` (503), never the generic `Database` (500).
mod server_failures_are_classified {
    use carrel_store::testing::TestDatabase;
    use carrel_store::{Backend, StoreError};
    use sqlx::{AssertSqlSafe, Connection as _};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_full_disk_is_storage_full() {
        let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
        let url = format!("{}?mode=rwc", db.url());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE filler (b BLOB)")
            .execute(&mut conn)
            .await
            .unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        // The file may not grow beyond a few more pages: SQLite then reports
        // SQLITE_FULL exactly as it does for ENOSPC.
        sqlx::query(AssertSqlSafe(format!(
            "PRAGMA max_page_count = {}",
            pages + 4
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let mut failure = None;
        for _ in 0..100 {
            if let Err(e) = sqlx::query("INSERT INTO filler VALUES (zeroblob(65536))")
                .execute(&mut conn)
                .await
            {
                failure = Some(e);
                break;
            }
        }
        let error = failure.expect("the capped database fills up");
        let shown = format!("{error:?}");
        assert!(
            matches!(StoreError::from(error), StoreError::StorageFull(_)),
            "{shown}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_terminated_connection_is_unavailable() {
        let Some(db) = TestDatabase::create(Backend::Postgres).await else {
            return;
        };
        let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
        // What every pooled connection gets when PostgreSQL is stopped (fast
        // shutdown) or an administrator ends the backend: FATAL 57P01.
        let error = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")
            .execute(&mut conn)
            .await
            .expect_err("the backend ends its own connection");
        let shown = format!("{error:?}");
        assert!(
            matches!(StoreError::from(error), StoreError::Unavailable(_)),
            "{shown}"
        );
    }
}

/// A use case and its audit entries commit together: when the database
/// refuses the entry (here a trigger or CHECK constraint added for the
/// test), the change is rolled back with it; once entries are accepted
/// again, the same call commits both.
mod audit_entries_commit_with_their_change {
    use carrel_store::testing::TestDatabase;
    use carrel_store::{
        AuditQuery, Backend, NewAuditEvent, NewSession, NewUser, Store, StoreOptions, TokenPurpose,
    };
    use serde_json::json;
    use sqlx::Connection as _;
    use time::macros::datetime;
    use uuid::Uuid;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }

    /// Runs one statement on the test database, outside the store.
    async fn execute(backend: Backend, url: &str, sql: &'static str) {
        match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    async fn refuse_entries(backend: Backend, url: &str, refuse: bool) {
        let sql = match (backend, refuse) {
            (Backend::Sqlite, true) => {
                "CREATE TRIGGER refuse_entry BEFORE INSERT ON audit_events \
                 WHEN NEW.event_type IN ('auth.logout', 'user.email_verified') \
                 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
            }
            (Backend::Sqlite, false) => "DROP TRIGGER refuse_entry",
            (Backend::Postgres, true) => {
                "ALTER TABLE audit_events ADD CONSTRAINT refuse_entry \
                 CHECK (event_type NOT IN ('auth.logout', 'user.email_verified'))"
            }
            (Backend::Postgres, false) => "ALTER TABLE audit_events DROP CONSTRAINT refuse_entry",
        };
        execute(backend, url, sql).await;
    }

    fn event(event_type: &'static str, user: Uuid, now: time::OffsetDateTime) -> NewAuditEvent {
        NewAuditEvent {
            event_type,
            actor_id: Some(user),
            subject_id: Some(user),
            ip_address: None,
            user_agent: None,
            request_id: Some("req-atomic".into()),
            at: now,
            details: json!({}),
        }
    }

    async fn entries(store: &Store, event_type: &str) -> usize {
        store
            .list_audit_events(&AuditQuery {
                event_type: Some(event_type.into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }

    async fn run(backend: Backend) {
        let Some(db) = TestDatabase::create(backend).await else {
            return;
        };
        let store = Store::connect(db.url(), &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let now = datetime!(2026-03-01 10:00:00 UTC);
        let user = store
            .create_user(&NewUser {
                id: Uuid::now_v7(),
                email: "atomic@example.org".into(),
                email_key: "atomic@example.org".into(),
                username: "atomic".into(),
                username_key: "atomic".into(),
                full_name: None,
                role: carrel_core::roles::Role::Patron,
                password_hash: None,
                email_verified: false,
                card_number: None,
                category: None,
                now,
            })
            .await
            .unwrap()
            .id;
        let session = Uuid::now_v7();
        store
            .create_session(&NewSession {
                id: session,
                user_id: user,
                device_name: None,
                user_agent: None,
                ip_address: None,
                scope: None,
                refresh_hash: [7; 32],
                now,
                expires_at: now + time::Duration::days(1),
            })
            .await
            .unwrap();
        let token = [9; 32];
        store
            .create_one_time_token(
                token,
                TokenPurpose::VerifyEmail,
                user,
                now,
                now + time::Duration::days(1),
                &[],
            )
            .await
            .unwrap();

        refuse_entries(backend, db.url(), true).await;
        let revoked = store
            .revoke_all_sessions(user, "logout_all", now, None, |_: &u64| {
                vec![event("auth.logout", user, now)]
            })
            .await;
        assert!(revoked.is_err(), "the refused entry fails the call");
        let auth = store.session_auth(session).await.unwrap().unwrap();
        assert!(auth.revoked_at.is_none(), "the session was not revoked");
        let verified = store
            .verify_email_with_token(token, now, |&u: &Uuid| {
                vec![event("user.email_verified", u, now)]
            })
            .await;
        assert!(verified.is_err(), "the refused entry fails the call");
        let found = store.find_user(user).await.unwrap().unwrap();
        assert!(!found.email_verified, "the address was not verified");
        assert_eq!(
            store
                .peek_one_time_token(token, TokenPurpose::VerifyEmail, now)
                .await
                .unwrap(),
            Some(user),
            "the token was not spent"
        );
        assert_eq!(entries(&store, "auth.logout").await, 0);
        assert_eq!(entries(&store, "user.email_verified").await, 0);

        refuse_entries(backend, db.url(), false).await;
        let revoked = store
            .revoke_all_sessions(user, "logout_all", now, None, |_: &u64| {
                vec![event("auth.logout", user, now)]
            })
            .await
            .unwrap();
        assert_eq!(revoked, 1);
        let auth = store.session_auth(session).await.unwrap().unwrap();
        assert!(auth.revoked_at.is_some());
        let verified = store
            .verify_email_with_token(token, now, |&u: &Uuid| {
                vec![event("user.email_verified", u, now)]
            })
            .await
            .unwrap();
        assert_eq!(verified, Some(user));
        assert!(store.find_user(user).await.unwrap().unwrap().email_verified);
        assert_eq!(entries(&store, "auth.logout").await, 1);
        assert_eq!(entries(&store, "user.email_verified").await, 1);
        // A spent token verifies nothing and appends nothing.
        let again = store
            .verify_email_with_token(token, now, |&u: &Uuid| {
                vec![event("user.email_verified", u, now)]
            })
            .await
            .unwrap();
        assert_eq!(again, None);
        assert_eq!(entries(&store, "user.email_verified").await, 1);

        // A login's second step: the challenge is spent, the session opened
        // and the entry appended once; a twin finds it spent and writes nothing.
        let new_session = |id: Uuid, refresh_hash: [u8; 32]| NewSession {
            id,
            user_id: user,
            device_name: None,
            user_agent: None,
            ip_address: None,
            scope: None,
            refresh_hash,
            now,
            expires_at: now + time::Duration::days(1),
        };
        let challenge = [5; 32];
        store
            .create_mfa_challenge(
                challenge,
                user,
                None,
                false,
                now,
                now + time::Duration::minutes(5),
                |_: &()| vec![event("auth.mfa_challenged", user, now)],
            )
            .await
            .unwrap();
        assert_eq!(entries(&store, "auth.mfa_challenged").await, 1);
        let (first, twin) = (Uuid::now_v7(), Uuid::now_v7());
        let signed_in = || vec![event("auth.login_succeeded", user, now)];
        assert!(
            store
                .complete_mfa_challenge(challenge, now, &new_session(first, [11; 32]), |_: &()| {
                    signed_in()
                })
                .await
                .unwrap()
        );
        assert!(
            !store
                .complete_mfa_challenge(challenge, now, &new_session(twin, [12; 32]), |_: &()| {
                    signed_in()
                })
                .await
                .unwrap()
        );
        assert!(store.session_auth(first).await.unwrap().is_some());
        assert!(store.session_auth(twin).await.unwrap().is_none());
        assert_eq!(entries(&store, "auth.login_succeeded").await, 1);

        // Without a trail, refresh reuse still revokes the session.
        let grace = time::Duration::ZERO;
        let later = now + time::Duration::minutes(1);
        let rotated = store
            .rotate_refresh_token(
                [11; 32],
                [13; 32],
                later,
                grace,
                now + time::Duration::days(1),
            )
            .await
            .unwrap();
        assert!(matches!(rotated, carrel_store::Refresh::Rotated(_)));
        let reused = store
            .rotate_refresh_token(
                [11; 32],
                [14; 32],
                later,
                grace,
                now + time::Duration::days(1),
            )
            .await
            .unwrap();
        assert!(matches!(
            reused,
            carrel_store::Refresh::ReuseDetected { session_id, .. } if session_id == first
        ));
        let auth = store.session_auth(first).await.unwrap().unwrap();
        assert!(auth.revoked_at.is_some());
        store.close().await;
    }
}

/// A user row whose role is not a role is corrupt: the CHECK constraint
/// refuses to write one, and a row that got past it anyway (here: with the
/// check bypassed) is a typed `InvalidStored` error on every read, never an
/// account read as a patron. The same holds for the other stored words (an
/// outbox state here); an outbox kind, which has no constraint, is kept as an
/// unknown word instead.
mod stored_words_that_are_not_words_are_refused {
    use carrel_core::roles::Role;
    use carrel_core::statuses::{OutboxState, UnknownValue};
    use carrel_store::testing::TestDatabase;
    use carrel_store::{
        Backend, NewOutboxMessage, NewUser, OutboxPriority, OutboxQuery, Store, StoreError,
        StoreOptions, StoredKind, UserQuery,
    };
    use sqlx::Connection as _;
    use time::Duration;
    use time::macros::datetime;
    use uuid::Uuid;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        check(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        check(Backend::Postgres).await;
    }

    /// Runs `sql` (with `id` bound) on a connection of its own; with
    /// `past_checks`, SQLite's CHECK constraints are ignored on it (PostgreSQL's
    /// are dropped by the test instead). Returns the database's answer.
    async fn raw(
        db: &TestDatabase,
        sql: &'static str,
        id: Uuid,
        past_checks: bool,
    ) -> Result<(), sqlx::Error> {
        match Backend::from_url(db.url()).unwrap() {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
                if past_checks {
                    sqlx::query("PRAGMA ignore_check_constraints = ON")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
                sqlx::query(sql)
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
                sqlx::query(sql)
                    .bind(id)
                    .execute(&mut conn)
                    .await
                    .map(|_| ())
            }
        }
    }

    /// PostgreSQL: drops a CHECK constraint (SQLite ignores them per connection).
    async fn drop_check(db: &TestDatabase, sql: &'static str) {
        if Backend::from_url(db.url()) == Some(Backend::Postgres) {
            let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }

    async fn check(backend: Backend) {
        let Some(db) = TestDatabase::create(backend).await else {
            return;
        };
        let store = Store::connect(db.url(), &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let now = datetime!(2026-03-01 10:00 UTC);
        let user = store
            .create_user(&NewUser {
                id: Uuid::now_v7(),
                email: "eve@example.org".into(),
                email_key: "eve@example.org".into(),
                username: "eve".into(),
                username_key: "eve".into(),
                full_name: None,
                role: Role::Librarian,
                password_hash: None,
                email_verified: true,
                card_number: None,
                category: None,
                now,
            })
            .await
            .unwrap();
        assert_eq!(user.role, Role::Librarian);

        // The constraint refuses the write on both backends.
        const CORRUPT_ROLE: &str = "UPDATE users SET role = 'superuser' WHERE id = $1";
        let refused = raw(&db, CORRUPT_ROLE, user.id, false).await;
        let refused = refused.expect_err("the CHECK constraint refuses an unknown role");
        assert!(
            refused.to_string().to_lowercase().contains("check"),
            "{refused}"
        );
        assert_eq!(
            store.find_user(user.id).await.unwrap().unwrap().role,
            Role::Librarian
        );

        // Past the check (as a hand edit or an old bug could leave it), every
        // read of the row is a typed error naming the set.
        drop_check(&db, "ALTER TABLE users DROP CONSTRAINT users_role_check").await;
        raw(&db, CORRUPT_ROLE, user.id, true).await.unwrap();
        let is_invalid_role =
            |e: &StoreError| matches!(e, StoreError::InvalidStored(UnknownValue("role")));
        let by_id = store.find_user(user.id).await.unwrap_err();
        assert!(is_invalid_role(&by_id), "{by_id:?}");
        let by_login = store.find_user_by_login("eve").await.unwrap_err();
        assert!(is_invalid_role(&by_login), "{by_login:?}");
        let listed = store
            .list_users(&UserQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(is_invalid_role(&listed), "{listed:?}");

        // An outbox kind this version does not know is listed and claimed as
        // such (the sender dead-letters it), not an error.
        let message = NewOutboxMessage {
            kind: carrel_core::statuses::MessageKind::VerifyEmail,
            recipient: "ann@example.org".into(),
            priority: OutboxPriority::Normal,
            payload: serde_json::json!({"link": "https://lib.example/verify"}),
        };
        store.enqueue_outbox(&[message], now).await.unwrap();
        let query = OutboxQuery {
            limit: 10,
            ..Default::default()
        };
        let listed = store.list_outbox(&query).await.unwrap();
        let id = listed[0].id;
        assert_eq!(
            listed[0].kind,
            StoredKind::Known(carrel_core::statuses::MessageKind::VerifyEmail)
        );
        assert_eq!(listed[0].state, OutboxState::Pending);
        raw(
            &db,
            "UPDATE outbox_messages SET kind = 'from_the_future' WHERE id = $1",
            id,
            false,
        )
        .await
        .unwrap();
        let listed = store.list_outbox(&query).await.unwrap();
        assert_eq!(
            listed[0].kind,
            StoredKind::Unknown("from_the_future".into())
        );
        assert_eq!(listed[0].kind.as_str(), "from_the_future");
        let holder = Uuid::now_v7();
        let claimed = store
            .claim_outbox(holder, now, Duration::minutes(1), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(
            claimed[0].kind,
            StoredKind::Unknown("from_the_future".into())
        );
        store
            .outbox_failed(id, holder, now, "the kind is unknown", None)
            .await
            .unwrap();
        assert_eq!(store.outbox_counts().await.unwrap().dead, 1);

        // A state that is not a state is a typed error, for the listing and the counts.
        drop_check(
            &db,
            "ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_state_check",
        )
        .await;
        raw(
            &db,
            "UPDATE outbox_messages SET state = 'lost' WHERE id = $1",
            id,
            true,
        )
        .await
        .unwrap();
        let is_invalid_state =
            |e: &StoreError| matches!(e, StoreError::InvalidStored(UnknownValue("outbox state")));
        let listed = store.list_outbox(&query).await.unwrap_err();
        assert!(is_invalid_state(&listed), "{listed:?}");
        let counted = store.outbox_counts().await.unwrap_err();
        assert!(is_invalid_state(&counted), "{counted:?}");
        store.close().await;
    }
}
