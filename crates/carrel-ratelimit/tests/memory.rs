//! The in-process store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use carrel_ratelimit::{Limiter, Quota};
use common::*;

#[tokio::test]
async fn five_per_minute_burst_refusal_and_refill() {
    let l = Limiter::in_memory();
    five_per_minute(&l).await;
    assert_eq!(l.last_backend(), "memory");
}

#[tokio::test]
async fn one_per_second_quota() {
    one_per_second(&Limiter::in_memory()).await;
}

#[tokio::test]
async fn three_hundred_per_minute_quick_requests() {
    three_hundred_per_minute(&Limiter::in_memory()).await;
}

#[tokio::test]
async fn keys_are_independent() {
    independent_keys(&Limiter::in_memory()).await;
}

#[tokio::test]
async fn clock_going_backwards_is_graceful() {
    clock_backwards(&Limiter::in_memory()).await;
}

#[tokio::test]
async fn degenerate_quotas_and_extreme_times() {
    degenerate_quotas(&Limiter::in_memory()).await;
}

#[tokio::test]
async fn clones_share_state() {
    let a = Limiter::in_memory();
    let b = a.clone();
    let q = Quota::per_minute(1);
    allowed(&a, "k", q, T0).await;
    refused(&b, "k", q, T0).await;
    // A separate limiter does not.
    allowed(&Limiter::in_memory(), "k", q, T0).await;
}

#[tokio::test]
async fn expired_keys_are_swept() {
    let l = Limiter::in_memory();
    let q = Quota::per_second(1);
    for i in 0..10_000 {
        allowed(&l, &format!("burst:{i}"), q, T0).await;
    }
    assert_eq!(l.memory_entries(), 10_000);
    // Five seconds later every one of those budgets is full again, so the entries are dead
    // weight. Traffic on a few other keys sweeps them out as it goes by.
    let q = Quota::per_second(1_000);
    for i in 0..40_000 {
        l.check(&format!("steady:{}", i % 256), q, T0 + 5_000).await;
    }
    let left = l.memory_entries();
    assert!(left <= 256, "{left} entries left after the sweep");
}

#[tokio::test]
async fn hard_cap_bounds_entries_and_keeps_limited_keys() {
    let l = Limiter::in_memory_with_capacity(1_600);
    let q = Quota::per_minute(5);
    // A key that is actually being limited...
    for _ in 0..5 {
        allowed(&l, "victim", q, T0).await;
    }
    // ...then a flood of one-off keys, all still within their period (nothing to sweep).
    for i in 0..20_000 {
        allowed(&l, &format!("flood:{i}"), q, T0 + 1).await;
    }
    let n = l.memory_entries();
    assert!(n <= 1_600, "{n} entries over a cap of 1600");
    assert!(n >= 1_000, "eviction dropped too much: {n} entries left");
    // The flood did not wipe the limited key's state.
    refused(&l, "victim", q, T0 + 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_never_exceed_the_quota() {
    let l = Limiter::in_memory();
    let q = Quota::per_minute(10);
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let l = l.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                l.check("hot", q, T0).await.allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 10);
}

#[test]
fn usable_from_any_runtime_flavour() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let l = Limiter::in_memory();
    let d = rt.block_on(l.check("k", Quota::per_second(2), T0));
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
}

#[test]
fn debug_output_is_short() {
    let s = format!("{:?}", Limiter::in_memory());
    assert!(s.contains("memory"), "{s}");
}

#[test]
fn limiter_and_check_future_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let l = Limiter::in_memory();
    send_sync(&l);
    let redis = Limiter::with_redis("redis://127.0.0.1:1", "", Default::default()).unwrap();
    send_sync(&redis);
    // Middleware (axum/tower) needs a `Send` future.
    send(&l.check("k", Quota::per_second(1), T0));
    send(&redis.check("k", Quota::per_second(1), T0));
}
