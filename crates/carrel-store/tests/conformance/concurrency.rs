//! The guarantees that only hold under concurrency, checked on the store itself:
//! many tokio tasks call one `Store` at once (two worker threads, and on
//! PostgreSQL as many connections as the pool gives), then the outcome is
//! compared with what the store promises.

use std::time::Duration;

use carrel_core::lockout::LockoutPolicy;
use carrel_core::statuses::{CopyStatus, FineReason, FineStatus, HoldStatus, PaymentMethod};
use carrel_store::{
    AttemptResult, Checkout, CheckoutOutcome, Copy, HoldQuery, ItemFields, ItemRow, LoanQuery,
    NewAuditEvent, NewCopy, NewFine, NewSession, NewUser, PaymentOutcome, PaymentRequest,
    PlaceHold, Refresh, Refusal, Reservation, Store, StoreError, User,
};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::run;

const NOW: OffsetDateTime = datetime!(2026-03-02 10:00:00 UTC);

/// Runs `n` copies of `task` (given its index) at once and returns their
/// results in index order.
async fn in_parallel<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..n {
        let fut = task(i);
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<(usize, T)> = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        out.push(joined.expect("task panicked"));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

async fn patron(store: &Store, tag: &str) -> User {
    let name = format!("{tag}-{}", Uuid::now_v7().simple());
    store
        .create_user(&NewUser {
            id: Uuid::now_v7(),
            email: format!("{name}@example.org"),
            email_key: format!("{name}@example.org"),
            username: name.clone(),
            username_key: name,
            full_name: None,
            role: carrel_core::roles::Role::Patron,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            email_verified: true,
            card_number: None,
            category: None,
            now: NOW,
        })
        .await
        .expect("create patron")
}

async fn item_with_copies(store: &Store, copies: usize) -> (ItemRow, Vec<Copy>) {
    let item = store
        .create_item(
            &ItemFields {
                title: format!("Concurrency {}", Uuid::now_v7().simple()),
                subtitle: None,
                authors: vec!["Anon".into()],
                isbn: None,
                item_type: "book".into(),
                publisher: None,
                publication_year: Some(2001),
                language: Some("en".into()),
                subjects: vec![],
                description: None,
            },
            None,
            NOW,
        )
        .await
        .expect("create item");
    let mut added = Vec::new();
    for _ in 0..copies {
        let copy = store
            .add_copy(
                item.id,
                &NewCopy {
                    barcode: format!("C-{}", Uuid::now_v7().simple()),
                    branch_id: None,
                    location: None,
                    call_number: None,
                },
                None,
                NOW,
            )
            .await
            .expect("add copy");
        added.push(copy);
    }
    (item, added)
}

async fn checkout(
    store: &Store,
    barcode: &str,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<CheckoutOutcome, StoreError> {
    store
        .checkout(
            &Checkout {
                copy_barcode: barcode,
                user_id,
                branch_id: None,
                actor: None,
                now,
                max_active_loans: 1000,
                block_threshold_cents: 1_000_000,
            },
            |_: &CheckoutOutcome| Vec::new(),
        )
        .await
}

async fn return_copy(store: &Store, barcode: &str, now: OffsetDateTime) {
    store
        .return_copy(barcode, None, None, now, 7, |_: &_| Vec::new())
        .await
        .expect("return");
}

fn place(item_id: Uuid, user_id: Uuid, now: OffsetDateTime) -> PlaceHold {
    PlaceHold {
        item_id,
        user_id,
        actor: None,
        pickup_branch_id: None,
        now,
        pickup_days: 7,
        max_active_holds: 100,
        block_threshold_cents: 1_000_000,
    }
}

async fn open_loans_of(store: &Store, user_id: Uuid) -> Vec<carrel_store::Loan> {
    store
        .list_loans(&LoanQuery {
            user_id: Some(user_id),
            status: None,
            after: None,
            limit: 1000,
            now: NOW,
        })
        .await
        .expect("list loans")
}

backend_tests!(
    parallel_rotations_of_one_refresh_token_have_one_winner,
    parallel_rotations_within_the_grace_window_keep_the_session,
    parallel_failed_sign_ins_are_all_counted,
    parallel_failed_sign_ins_lock_at_the_threshold,
    parallel_audited_failures_write_one_lock_event,
    a_sign_in_opens_its_session_and_audits_in_its_settlement,
    concurrent_duplicate_payments_make_one_payment,
    concurrent_payments_never_exceed_the_balance,
    parallel_checkouts_of_one_copy_make_one_loan,
    parallel_checkouts_by_one_patron_respect_the_loan_limit,
    concurrent_returns_fill_the_hold_queue_in_order,
    returns_racing_new_holds_leave_no_copy_on_the_shelf,
    deleting_a_patron_racing_a_checkout_stays_consistent,
    deleting_an_item_racing_a_checkout_stays_consistent,
    deleting_a_copy_racing_a_checkout_stays_consistent,
    parallel_writers_of_every_kind_all_land,
);

const TASKS: usize = 12;

async fn session_with_token(store: &Store, token: [u8; 32]) -> (User, Uuid) {
    let user = patron(store, "rot").await;
    let session = Uuid::now_v7();
    store
        .create_session(&NewSession {
            id: session,
            user_id: user.id,
            device_name: None,
            user_agent: None,
            ip_address: None,
            scope: None,
            refresh_hash: token,
            now: NOW,
            expires_at: NOW + time::Duration::days(30),
        })
        .await
        .expect("create session");
    (user, session)
}

fn token(i: usize) -> [u8; 32] {
    let mut t = [0u8; 32];
    t[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    t[31] = 0xAA;
    t
}

/// Without a grace window, a token that comes back after it was exchanged is
/// reuse: of N concurrent presentations exactly one is exchanged, the others
/// are reuse, and the session (with the winner's new token) is revoked.
async fn parallel_rotations_of_one_refresh_token_have_one_winner(store: Store) {
    let presented = token(10_000);
    let (user, session) = session_with_token(&store, presented).await;
    let now = NOW + time::Duration::minutes(1);
    let results = in_parallel(TASKS, |i| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token(
                    presented,
                    token(i),
                    now,
                    time::Duration::ZERO,
                    now + time::Duration::days(30),
                )
                .await
                .expect("rotate")
        }
    })
    .await;
    let winners: Vec<usize> = (0..TASKS)
        .filter(|&i| matches!(results[i], Refresh::Rotated(_)))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one exchange wins: {results:?}");
    for (i, r) in results.iter().enumerate() {
        if i != winners[0] {
            assert!(
                matches!(r, Refresh::ReuseDetected { session_id, user_id } if *session_id == session && *user_id == user.id),
                "every loser is reuse: {r:?}"
            );
        }
    }
    let auth = store.session_auth(session).await.unwrap().unwrap();
    assert!(auth.revoked_at.is_some(), "reuse revokes the session");
    // The winner's fresh token belongs to a revoked session now.
    let again = store
        .rotate_refresh_token(
            token(winners[0]),
            token(20_000),
            now,
            time::Duration::ZERO,
            now + time::Duration::days(30),
        )
        .await
        .unwrap();
    assert!(matches!(again, Refresh::Invalid), "{again:?}");
}

/// Inside the grace window concurrent presentations are retries, not theft:
/// the token is spent once, every caller gets a working token of its own and
/// the session lives on; after the window the old token is reuse.
async fn parallel_rotations_within_the_grace_window_keep_the_session(store: Store) {
    let presented = token(30_000);
    let (_, session) = session_with_token(&store, presented).await;
    let grace = time::Duration::seconds(30);
    let results = in_parallel(TASKS, |i| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token(
                    presented,
                    token(31_000 + i),
                    NOW,
                    grace,
                    NOW + time::Duration::days(30),
                )
                .await
                .expect("rotate")
        }
    })
    .await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Refresh::Rotated(a) if a.session_id == session)),
        "{results:?}"
    );
    assert!(
        store
            .session_auth(session)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    // Each replacement is a live token of the session, usable exactly once.
    for i in 0..TASKS {
        assert_eq!(
            store
                .refresh_token_session(token(31_000 + i))
                .await
                .unwrap(),
            Some(session)
        );
    }
    let later = NOW + time::Duration::minutes(5);
    let reuse = store
        .rotate_refresh_token(
            presented,
            token(39_999),
            later,
            grace,
            later + time::Duration::days(30),
        )
        .await
        .unwrap();
    assert!(
        matches!(reuse, Refresh::ReuseDetected { session_id, .. } if session_id == session),
        "{reuse:?}"
    );
}

/// One failed sign-in, the way login does it: reserve (waiting while the
/// budget is taken by attempts in flight), then report the failure. `Some(locked)`
/// when the attempt ran, `None` when the account was locked already.
async fn fail_sign_in(store: &Store, user_id: Uuid, policy: &LockoutPolicy) -> Option<bool> {
    for _ in 0..2000 {
        match store
            .reserve_sign_in_attempt(user_id, policy, NOW, NOW + time::Duration::minutes(1))
            .await
            .expect("reserve")
        {
            Reservation::Reserved(attempt) => {
                let locked = store
                    .finish_sign_in_attempt(
                        user_id,
                        attempt,
                        AttemptResult::Failed,
                        policy,
                        NOW,
                        |_| None,
                    )
                    .await
                    .expect("finish");
                return Some(locked);
            }
            Reservation::Wait => tokio::time::sleep(Duration::from_millis(2)).await,
            Reservation::Locked => return None,
        }
    }
    panic!("an attempt waited for ever");
}

async fn parallel_failed_sign_ins_are_all_counted(store: Store) {
    let user = patron(&store, "lock").await;
    let policy = LockoutPolicy {
        threshold: 1000,
        duration: time::Duration::minutes(15),
    };
    let n = 3 * TASKS;
    let results = in_parallel(n, |_| {
        let (store, policy) = (store.clone(), policy);
        async move { fail_sign_in(&store, user.id, &policy).await }
    })
    .await;
    assert!(results.iter().all(|r| *r == Some(false)), "{results:?}");
    let after = store.find_user(user.id).await.unwrap().unwrap();
    assert_eq!(
        after.failed_logins,
        i32::try_from(n).unwrap(),
        "no failure is lost"
    );
    assert_eq!(after.locked_until, None);
}

async fn parallel_failed_sign_ins_lock_at_the_threshold(store: Store) {
    let user = patron(&store, "lock").await;
    let policy = LockoutPolicy {
        threshold: 5,
        duration: time::Duration::minutes(15),
    };
    let results = in_parallel(3 * TASKS, |_| {
        let (store, policy) = (store.clone(), policy);
        async move { fail_sign_in(&store, user.id, &policy).await }
    })
    .await;
    let checked = results.iter().filter(|r| r.is_some()).count();
    let locking = results.iter().filter(|r| **r == Some(true)).count();
    assert_eq!(
        checked, 5,
        "exactly threshold guesses are checked: {results:?}"
    );
    assert_eq!(locking, 1, "exactly one failure locks: {results:?}");
    let after = store.find_user(user.id).await.unwrap().unwrap();
    assert_eq!(after.failed_logins, 5);
    assert_eq!(after.locked_until, Some(NOW + time::Duration::minutes(15)));
    assert!(matches!(
        store
            .reserve_sign_in_attempt(user.id, &policy, NOW, NOW + time::Duration::minutes(1))
            .await
            .unwrap(),
        Reservation::Locked
    ));
}

fn sign_in_event(event_type: &'static str, user_id: Uuid) -> NewAuditEvent {
    NewAuditEvent {
        event_type,
        actor_id: None,
        subject_id: Some(user_id),
        ip_address: None,
        user_agent: None,
        request_id: None,
        at: NOW,
        details: json!({}),
    }
}

async fn events_of(store: &Store, event_type: &str, user_id: Uuid) -> usize {
    store
        .list_audit_events(&carrel_store::AuditQuery {
            actor_id: None,
            subject_id: Some(user_id),
            event_type: Some(event_type.to_owned()),
            since: None,
            until: None,
            before: None,
            limit: 1000,
        })
        .await
        .expect("audit events")
        .len()
}

/// Parallel wrong passwords, each settled with its audit event and, for the
/// one that locks, `auth.locked`: the trail learns exactly which one locked.
async fn parallel_audited_failures_write_one_lock_event(store: Store) {
    let user = patron(&store, "lockaudit").await;
    let policy = LockoutPolicy {
        threshold: 5,
        duration: time::Duration::minutes(15),
    };
    let results = in_parallel(3 * TASKS, |_| {
        let (store, policy) = (store.clone(), policy);
        async move {
            for _ in 0..2000 {
                match store
                    .reserve_sign_in_attempt(
                        user.id,
                        &policy,
                        NOW,
                        NOW + time::Duration::minutes(1),
                    )
                    .await
                    .expect("reserve")
                {
                    Reservation::Reserved(attempt) => {
                        let trail = move |locked: &bool| {
                            let mut events = vec![sign_in_event("auth.login_failed", user.id)];
                            if *locked {
                                events.push(sign_in_event("auth.locked", user.id));
                            }
                            events
                        };
                        return Some(
                            store
                                .finish_sign_in_attempt_audited(
                                    user.id,
                                    attempt,
                                    AttemptResult::Failed,
                                    &policy,
                                    NOW,
                                    |_| None,
                                    trail,
                                )
                                .await
                                .expect("finish"),
                        );
                    }
                    Reservation::Wait => tokio::time::sleep(Duration::from_millis(2)).await,
                    Reservation::Locked => return None,
                }
            }
            panic!("an attempt waited for ever");
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| **r == Some(true)).count(), 1);
    assert_eq!(events_of(&store, "auth.login_failed", user.id).await, 5);
    assert_eq!(events_of(&store, "auth.locked", user.id).await, 1);
}

/// A completed sign-in settles its attempt (the count back to zero), opens
/// its session and writes its audit event in one transaction; parallel ones
/// each get theirs.
async fn a_sign_in_opens_its_session_and_audits_in_its_settlement(store: Store) {
    let user = patron(&store, "signin").await;
    let policy = LockoutPolicy {
        threshold: 5,
        duration: time::Duration::minutes(15),
    };
    for _ in 0..2 {
        assert_eq!(fail_sign_in(&store, user.id, &policy).await, Some(false));
    }
    let sessions = in_parallel(TASKS, |i| {
        let (store, policy) = (store.clone(), policy);
        async move {
            let mut refresh_hash = [0u8; 32];
            refresh_hash[..16].copy_from_slice(Uuid::now_v7().as_bytes());
            refresh_hash[16] = u8::try_from(i).unwrap();
            let session = NewSession {
                id: Uuid::now_v7(),
                user_id: user.id,
                device_name: Some(format!("device {i}")),
                user_agent: None,
                ip_address: None,
                scope: None,
                refresh_hash,
                now: NOW,
                expires_at: NOW + time::Duration::days(30),
            };
            let attempt = loop {
                match store
                    .reserve_sign_in_attempt(
                        user.id,
                        &policy,
                        NOW,
                        NOW + time::Duration::minutes(1),
                    )
                    .await
                    .expect("reserve")
                {
                    Reservation::Reserved(attempt) => break attempt,
                    Reservation::Wait => tokio::time::sleep(Duration::from_millis(2)).await,
                    Reservation::Locked => panic!("two failures do not lock"),
                }
            };
            let event = sign_in_event("auth.login_succeeded", user.id);
            let locked = store
                .finish_sign_in_attempt_audited(
                    user.id,
                    attempt,
                    AttemptResult::SignedIn {
                        upgraded_hash: None,
                        session: &session,
                    },
                    &policy,
                    NOW,
                    |_| None,
                    move |_: &bool| vec![event],
                )
                .await
                .expect("sign in");
            assert!(!locked);
            session.id
        }
    })
    .await;
    for id in &sessions {
        let auth = store
            .session_auth(*id)
            .await
            .unwrap()
            .expect("session opened");
        assert!(auth.is_live(NOW));
        assert_eq!(auth.user.id, user.id);
    }
    assert_eq!(
        events_of(&store, "auth.login_succeeded", user.id).await,
        TASKS
    );
    let after = store.find_user(user.id).await.unwrap().unwrap();
    assert_eq!(
        after.failed_logins, 0,
        "a completed sign-in clears the count"
    );
}

async fn fine_of(store: &Store, user_id: Uuid, cents: i64) -> carrel_store::Fine {
    store
        .create_fine(
            &NewFine {
                user_id,
                amount_cents: cents,
                reason: FineReason::Manual,
                note: None,
                actor: None,
                now: NOW,
            },
            |_: &_| Vec::new(),
        )
        .await
        .expect("create fine")
}

async fn pay(
    store: &Store,
    fine_id: Uuid,
    caller: Uuid,
    cents: i64,
    key: &str,
    request_hash: &[u8],
) -> Result<PaymentOutcome, StoreError> {
    store
        .pay_fine(
            &PaymentRequest {
                fine_id,
                caller,
                staff: false,
                amount_cents: cents,
                method: PaymentMethod::Online,
                reference: None,
                key,
                request_hash,
                now: NOW,
            },
            |payment, fine| json!({"payment": payment.id, "paid": fine.paid_cents}).to_string(),
            |payment, _| {
                vec![NewAuditEvent {
                    event_type: "fine.paid",
                    actor_id: Some(payment.created_by),
                    subject_id: Some(payment.user_id),
                    ip_address: None,
                    user_agent: None,
                    request_id: None,
                    at: NOW,
                    details: json!({"payment_id": payment.id}),
                }]
            },
        )
        .await
}

async fn concurrent_duplicate_payments_make_one_payment(store: Store) {
    let user = patron(&store, "pay").await;
    let fine = fine_of(&store, user.id, 1000).await;
    let results = in_parallel(TASKS, |_| {
        let store = store.clone();
        async move { pay(&store, fine.id, user.id, 300, "key-1", b"same request").await }
    })
    .await;
    let mut created = None;
    let mut replayed = Vec::new();
    for r in results {
        match r.expect("every duplicate gets an answer") {
            PaymentOutcome::Created { response, .. } => {
                assert!(created.is_none(), "a second payment was created");
                created = Some(response);
            }
            PaymentOutcome::Replayed { status, response } => replayed.push((status, response)),
        }
    }
    let created = created.expect("one payment is created");
    assert_eq!(replayed.len(), TASKS - 1);
    assert!(
        replayed.iter().all(|(s, r)| *s == 201 && *r == created),
        "every duplicate replays the first answer"
    );
    assert_eq!(store.user_payments(user.id).await.unwrap().len(), 1);
    assert_eq!(
        store.find_fine(fine.id).await.unwrap().unwrap().paid_cents,
        300
    );
    let audit = store
        .list_audit_events(&carrel_store::AuditQuery {
            event_type: Some("fine.paid".into()),
            subject_id: Some(user.id),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "one payment, one audit entry");
    // The key is bound to its request.
    let other = pay(&store, fine.id, user.id, 200, "key-1", b"another request").await;
    assert!(
        matches!(
            other,
            Err(StoreError::Circulation(Refusal::IdempotencyKeyReused))
        ),
        "{other:?}"
    );
}

async fn concurrent_payments_never_exceed_the_balance(store: Store) {
    let user = patron(&store, "pay").await;
    let fine = fine_of(&store, user.id, 1000).await;
    let results = in_parallel(TASKS, |i| {
        let store = store.clone();
        async move {
            pay(
                &store,
                fine.id,
                user.id,
                300,
                &format!("key-{i}"),
                format!("request {i}").as_bytes(),
            )
            .await
        }
    })
    .await;
    let paid = results
        .iter()
        .filter(|r| matches!(r, Ok(PaymentOutcome::Created { .. })))
        .count();
    assert_eq!(paid, 3, "three payments of 300 fit a balance of 1000");
    assert!(
        results.iter().all(|r| matches!(
            r,
            Ok(PaymentOutcome::Created { .. })
                | Err(StoreError::Circulation(Refusal::ExceedsBalance))
        )),
        "{results:?}"
    );
    let after = store.find_fine(fine.id).await.unwrap().unwrap();
    assert_eq!(after.paid_cents, 900);
    assert_eq!(after.status, FineStatus::Open);
    assert_eq!(store.user_payments(user.id).await.unwrap().len(), 3);
}

async fn parallel_checkouts_of_one_copy_make_one_loan(store: Store) {
    let (_, copies) = item_with_copies(&store, 1).await;
    let copy = copies[0].clone();
    let mut patrons = Vec::new();
    for _ in 0..TASKS {
        patrons.push(patron(&store, "co").await.id);
    }
    let results = in_parallel(TASKS, |i| {
        let (store, barcode, user) = (store.clone(), copy.barcode.clone(), patrons[i]);
        async move { checkout(&store, &barcode, user, NOW).await }
    })
    .await;
    let won: Vec<&CheckoutOutcome> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(
            r,
            Ok(_) | Err(StoreError::Circulation(Refusal::CopyUnavailable))
        )),
        "{results:?}"
    );
    let mut open = 0;
    for user in &patrons {
        open += open_loans_of(&store, *user).await.len();
    }
    assert_eq!(open, 1, "one open loan for the copy");
    assert_eq!(
        store.find_copy(copy.id).await.unwrap().unwrap().status,
        CopyStatus::OnLoan
    );
    assert_eq!(won[0].loan.copy_id, copy.id);
}

async fn parallel_checkouts_by_one_patron_respect_the_loan_limit(store: Store) {
    let (_, copies) = item_with_copies(&store, 0).await;
    let mut barcodes = Vec::new();
    // Different items: one patron may borrow one copy of each.
    for _ in 0..TASKS {
        barcodes.push(item_with_copies(&store, 1).await.1[0].barcode.clone());
    }
    assert!(copies.is_empty());
    let user = patron(&store, "limit").await;
    let results = in_parallel(TASKS, |i| {
        let (store, barcode) = (store.clone(), barcodes[i].clone());
        async move {
            store
                .checkout(
                    &Checkout {
                        copy_barcode: &barcode,
                        user_id: user.id,
                        branch_id: None,
                        actor: None,
                        now: NOW,
                        max_active_loans: 3,
                        block_threshold_cents: 1_000_000,
                    },
                    |_: &CheckoutOutcome| Vec::new(),
                )
                .await
        }
    })
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3, "{results:?}");
    assert!(results.iter().all(|r| matches!(
        r,
        Ok(_) | Err(StoreError::Circulation(Refusal::LoanLimitReached))
    )));
    assert_eq!(open_loans_of(&store, user.id).await.len(), 3);
}

/// The state of one item's copies and open holds, checked against the hold
/// queue's invariants: no copy on the shelf while a patron waits without a
/// copy, every copy on the hold shelf is the copy of exactly one ready hold,
/// and no copy serves two holds.
async fn check_queue(store: &Store, item_id: Uuid) -> (Vec<carrel_store::Hold>, Vec<Copy>) {
    let holds = store
        .list_holds(&HoldQuery {
            user_id: None,
            item_id: Some(item_id),
            status: None,
            after: None,
            limit: 1000,
        })
        .await
        .unwrap();
    let copies = store.list_copies(item_id).await.unwrap();
    let waiting_without_copy = holds
        .iter()
        .filter(|h| h.status == HoldStatus::Waiting && h.copy_id.is_none())
        .count();
    let on_shelf = copies
        .iter()
        .filter(|c| c.status == CopyStatus::Available)
        .count();
    assert!(
        waiting_without_copy == 0 || on_shelf == 0,
        "a copy is on the shelf while {waiting_without_copy} patrons wait: {holds:?} {copies:?}"
    );
    let mut served: Vec<Uuid> = holds.iter().filter_map(|h| h.copy_id).collect();
    served.sort();
    let before = served.len();
    served.dedup();
    assert_eq!(before, served.len(), "one copy serves two holds: {holds:?}");
    for c in copies
        .iter()
        .filter(|c| c.status == CopyStatus::OnHoldShelf)
    {
        let ready = holds
            .iter()
            .filter(|h| h.status == HoldStatus::Ready && h.copy_id == Some(c.id))
            .count();
        assert_eq!(
            ready, 1,
            "copy {} on the hold shelf for {ready} holds",
            c.id
        );
    }
    for h in holds.iter().filter(|h| h.status == HoldStatus::Ready) {
        let copy = copies.iter().find(|c| Some(c.id) == h.copy_id).unwrap();
        assert_eq!(copy.status, CopyStatus::OnHoldShelf);
    }
    (holds, copies)
}

async fn concurrent_returns_fill_the_hold_queue_in_order(store: Store) {
    const COPIES: usize = 4;
    const WAITING: usize = 6;
    let (item, copies) = item_with_copies(&store, COPIES).await;
    for copy in &copies {
        let borrower = patron(&store, "borrower").await;
        checkout(&store, &copy.barcode, borrower.id, NOW)
            .await
            .expect("checkout");
    }
    // The queue, one second apart so its order is plain.
    let mut queue = Vec::new();
    for i in 0..WAITING {
        let user = patron(&store, "queue").await;
        let at = NOW + time::Duration::seconds(i as i64 + 1);
        let hold = store
            .place_hold(&place(item.id, user.id, at), |_: &_| Vec::new())
            .await
            .unwrap();
        assert_eq!(hold.status, HoldStatus::Waiting);
        queue.push(hold.id);
    }
    let later = NOW + time::Duration::hours(1);
    in_parallel(COPIES, |i| {
        let (store, barcode) = (store.clone(), copies[i].barcode.clone());
        async move { return_copy(&store, &barcode, later).await }
    })
    .await;
    let (holds, copies_after) = check_queue(&store, item.id).await;
    let ready: Vec<Uuid> = holds
        .iter()
        .filter(|h| h.status == HoldStatus::Ready)
        .map(|h| h.id)
        .collect();
    let mut waiting: Vec<Uuid> = holds
        .iter()
        .filter(|h| h.status == HoldStatus::Waiting)
        .map(|h| h.id)
        .collect();
    waiting.sort();
    let mut rest = queue[COPIES..].to_vec();
    rest.sort();
    let mut first: Vec<Uuid> = queue[..COPIES].to_vec();
    first.sort();
    let mut ready_sorted = ready.clone();
    ready_sorted.sort();
    assert_eq!(ready_sorted, first, "the first in line are served first");
    assert_eq!(waiting, rest, "the rest still wait");
    assert!(
        copies_after
            .iter()
            .all(|c| c.status == CopyStatus::OnHoldShelf)
    );
}

async fn returns_racing_new_holds_leave_no_copy_on_the_shelf(store: Store) {
    const COPIES: usize = 3;
    const HOLDS: usize = 5;
    for round in 0..4 {
        let (item, copies) = item_with_copies(&store, COPIES).await;
        for copy in &copies {
            let borrower = patron(&store, "borrower").await;
            checkout(&store, &copy.barcode, borrower.id, NOW)
                .await
                .expect("checkout");
        }
        let mut waiting = Vec::new();
        for _ in 0..HOLDS {
            waiting.push(patron(&store, "racer").await.id);
        }
        let later = NOW + time::Duration::hours(1 + round);
        // Returns and new holds at once: whichever commits first, a returned
        // copy must end with a patron who waits for it.
        let mut set = JoinSet::new();
        for copy in &copies {
            let (store, barcode) = (store.clone(), copy.barcode.clone());
            set.spawn(async move { return_copy(&store, &barcode, later).await });
        }
        for user in &waiting {
            let (store, request) = (store.clone(), place(item.id, *user, later));
            set.spawn(async move {
                store
                    .place_hold(&request, |_: &_| Vec::new())
                    .await
                    .expect("place hold");
            });
        }
        while let Some(done) = set.join_next().await {
            done.expect("task panicked");
        }
        let (holds, copies_after) = check_queue(&store, item.id).await;
        assert_eq!(
            holds
                .iter()
                .filter(|h| h.status == HoldStatus::Ready)
                .count(),
            COPIES,
            "round {round}: every returned copy serves a hold: {holds:?} {copies_after:?}"
        );
        assert_eq!(
            holds
                .iter()
                .filter(|h| h.status == HoldStatus::Waiting)
                .count(),
            HOLDS - COPIES
        );
    }
}

/// A patron cannot be deleted while they have a loan, and a deleted patron
/// cannot borrow: racing both leaves one of the two outcomes, never a loan
/// of a deleted account.
async fn deleting_a_patron_racing_a_checkout_stays_consistent(store: Store) {
    for _ in 0..8 {
        let user = patron(&store, "gone").await;
        let (_, copies) = item_with_copies(&store, 1).await;
        let barcode = copies[0].barcode.clone();
        let (borrowed, deleted) = tokio::join!(
            {
                let store = store.clone();
                async move { checkout(&store, &barcode, user.id, NOW).await }
            },
            {
                let store = store.clone();
                async move {
                    store
                        .soft_delete_user(user.id, None, NOW, |_: &_| Vec::new())
                        .await
                }
            }
        );
        let loans = open_loans_of(&store, user.id).await;
        let stored = store.find_user(user.id).await.unwrap();
        match (&borrowed, &deleted) {
            (Ok(_), Err(StoreError::Refused(_))) => {
                assert_eq!(loans.len(), 1);
                assert!(stored.is_some_and(|u| u.deleted_at.is_none()));
            }
            (Err(StoreError::NotFound), Ok(())) => {
                assert!(loans.is_empty());
                assert!(stored.is_none_or(|u| u.deleted_at.is_some()));
            }
            other => panic!("an inconsistent outcome: {other:?}"),
        }
        assert_eq!(
            store.find_copy(copies[0].id).await.unwrap().unwrap().status,
            if loans.is_empty() {
                CopyStatus::Available
            } else {
                CopyStatus::OnLoan
            }
        );
    }
}

/// An item cannot be deleted while a copy is on loan, and a deleted item's
/// copies cannot be borrowed.
async fn deleting_an_item_racing_a_checkout_stays_consistent(store: Store) {
    for _ in 0..8 {
        let user = patron(&store, "borrower").await;
        let (item, copies) = item_with_copies(&store, 1).await;
        let barcode = copies[0].barcode.clone();
        let (borrowed, deleted) = tokio::join!(
            {
                let store = store.clone();
                async move { checkout(&store, &barcode, user.id, NOW).await }
            },
            {
                let store = store.clone();
                async move { store.soft_delete_item(item.id, None, NOW).await }
            }
        );
        let loans = open_loans_of(&store, user.id).await;
        let stored = store.find_item(item.id, true).await.unwrap().unwrap();
        match (&borrowed, &deleted) {
            (Ok(_), Err(StoreError::Refused(_))) => {
                assert_eq!(loans.len(), 1);
                assert!(stored.deleted_at.is_none());
            }
            (Err(StoreError::NotFound), Ok(())) => {
                assert!(loans.is_empty());
                assert!(stored.deleted_at.is_some());
            }
            other => panic!("an inconsistent outcome: {other:?}"),
        }
    }
}

/// A copy cannot be withdrawn while it is on loan, and a withdrawn copy
/// cannot be borrowed.
async fn deleting_a_copy_racing_a_checkout_stays_consistent(store: Store) {
    for _ in 0..8 {
        let user = patron(&store, "borrower").await;
        let (_, copies) = item_with_copies(&store, 1).await;
        let (copy_id, barcode) = (copies[0].id, copies[0].barcode.clone());
        let (borrowed, deleted) = tokio::join!(
            {
                let store = store.clone();
                async move { checkout(&store, &barcode, user.id, NOW).await }
            },
            {
                let store = store.clone();
                async move { store.delete_copy(copy_id, None, NOW).await }
            }
        );
        let loans = open_loans_of(&store, user.id).await;
        // A deleted copy is no longer found.
        let copy = store.find_copy(copy_id).await.unwrap();
        let status = copy.as_ref().map(|c| c.status.as_str());
        match (&borrowed, &deleted) {
            (Ok(_), Err(StoreError::Refused(_))) => {
                assert_eq!(loans.len(), 1);
                assert_eq!(status, Some("on_loan"));
            }
            (
                Err(StoreError::NotFound | StoreError::Circulation(Refusal::CopyUnavailable)),
                Ok(()),
            ) => {
                assert!(loans.is_empty());
                assert_eq!(status, None);
            }
            other => panic!("an inconsistent outcome: {other:?} (copy {status:?})"),
        }
    }
}

/// Every kind of write at once, transactions and single statements, with
/// readers in between: on SQLite they take turns (none fails with
/// SQLITE_BUSY, "database is locked"), and every one of them lands.
async fn parallel_writers_of_every_kind_all_land(store: Store) {
    const EACH: usize = 16;
    let (item, copies) = item_with_copies(&store, 1).await;
    let user = patron(&store, "writer").await;
    let session = Uuid::now_v7();
    store
        .create_session(&NewSession {
            id: session,
            user_id: user.id,
            device_name: None,
            user_agent: None,
            ip_address: None,
            scope: None,
            refresh_hash: token(50_000),
            now: NOW,
            expires_at: NOW + time::Duration::days(30),
        })
        .await
        .unwrap();
    let tag = Uuid::now_v7();
    let results = in_parallel(6 * EACH, |i| {
        let (store, barcode) = (store.clone(), copies[0].barcode.clone());
        async move {
            let at = NOW + time::Duration::seconds(i as i64);
            match i % 6 {
                // A single-statement write.
                0 => store
                    .record_audit_event(&NewAuditEvent {
                        event_type: "test.parallel",
                        actor_id: None,
                        subject_id: Some(tag),
                        ip_address: None,
                        user_agent: None,
                        request_id: None,
                        at,
                        details: json!({"i": i}),
                    })
                    .await
                    .map(drop),
                // A transaction.
                1 => store
                    .create_user(&NewUser {
                        id: Uuid::now_v7(),
                        email: format!("w{i}-{tag}@example.org"),
                        email_key: format!("w{i}-{tag}@example.org"),
                        username: format!("w{i}-{tag}"),
                        username_key: format!("w{i}-{tag}"),
                        full_name: None,
                        role: carrel_core::roles::Role::Patron,
                        password_hash: None,
                        email_verified: false,
                        card_number: None,
                        category: None,
                        now: at,
                    })
                    .await
                    .map(drop),
                // Single statements that used to bypass the writers' queue.
                2 => store.touch_session(session, at).await,
                3 => store.mark_overdue(at).await.map(drop),
                // A transaction with a catalog write (and its search index).
                4 => store
                    .add_copy(
                        item.id,
                        &NewCopy {
                            barcode: format!("W{i}-{tag}"),
                            branch_id: None,
                            location: None,
                            call_number: None,
                        },
                        None,
                        at,
                    )
                    .await
                    .map(drop),
                // Reads in between.
                _ => store.copy_state(&barcode).await.map(drop),
            }
        }
    })
    .await;
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "writer {i} failed: {r:?}");
    }
    let events = store
        .list_audit_events(&carrel_store::AuditQuery {
            subject_id: Some(tag),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), EACH);
    assert_eq!(store.list_copies(item.id).await.unwrap().len(), EACH + 1);
    let users = store
        .list_users(&carrel_store::UserQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u.username.ends_with(&tag.to_string()))
            .count(),
        EACH
    );
    let auth = store.session_auth(session).await.unwrap().unwrap();
    assert_eq!(
        auth.last_used_at,
        NOW + time::Duration::seconds(6 * (EACH as i64 - 1) + 2),
        "the latest touch wins"
    );
}
