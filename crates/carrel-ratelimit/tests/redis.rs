//! The Redis store. Tests that need a real Redis run only when `CARREL_TEST_REDIS_URL` is set
//! (e.g. `redis://127.0.0.1:6379`); the unreachable-Redis tests need none and always run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use carrel_ratelimit::{Limiter, Quota, RedisFailure};
use common::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Runs `scenario` against a Redis-backed limiter under a fresh prefix, then cleans up.
macro_rules! with_redis {
    ($test:literal, |$l:ident| $body:expr) => {{
        let Some(url) = redis_url($test) else { return };
        let prefix = unique_prefix($test);
        let $l = Limiter::with_redis(&url, &prefix, RedisFailure::Deny).unwrap();
        $body;
        assert_eq!($l.last_backend(), "redis", "a check fell back");
        cleanup(&url, &prefix).await;
    }};
}

#[tokio::test]
async fn five_per_minute_burst_refusal_and_refill() {
    with_redis!("five_per_minute", |l| five_per_minute(&l).await);
}

#[tokio::test]
async fn one_per_second_quota() {
    with_redis!("one_per_second", |l| one_per_second(&l).await);
}

#[tokio::test]
async fn three_hundred_per_minute_quick_requests() {
    with_redis!("three_hundred", |l| three_hundred_per_minute(&l).await);
}

#[tokio::test]
async fn keys_are_independent() {
    with_redis!("independent", |l| independent_keys(&l).await);
}

#[tokio::test]
async fn clock_going_backwards_is_graceful() {
    with_redis!("backwards", |l| clock_backwards(&l).await);
}

#[tokio::test]
async fn degenerate_quotas_and_extreme_times() {
    with_redis!("degenerate", |l| degenerate_quotas(&l).await);
}

#[tokio::test]
async fn redis_and_memory_give_identical_answers() {
    with_redis!("parity", |l| {
        let from_redis = random_walk(&l, 3_000).await;
        let from_memory = random_walk(&Limiter::in_memory(), 3_000).await;
        assert_eq!(from_redis.len(), from_memory.len());
        for (i, (r, m)) in from_redis.iter().zip(&from_memory).enumerate() {
            assert_eq!(r, m, "step {i}");
        }
        let refused = from_redis.iter().filter(|d| !d.allowed).count();
        assert!(
            refused > 300 && refused < 2_700,
            "walk too one-sided: {refused}"
        );
    });
}

#[tokio::test]
async fn keys_are_stored_as_integers_with_an_expiry() {
    let Some(url) = redis_url("stored_state") else {
        return;
    };
    let prefix = unique_prefix("stored_state");
    let l = Limiter::with_redis(&url, &prefix, RedisFailure::Deny).unwrap();
    let q = Quota::per_minute(5);
    // The TAT gets 15 digits, more than Lua's default "%.14g" would print exactly.
    let now = 99_999_999_999_999;
    l.check("k", q, now).await;
    l.check("k", q, now).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}k");
    let raw: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(raw, (now + 24_000).to_string());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // TAT - now, plus 1 s of slack.
    assert!(pttl > 21_000 && pttl <= 25_000, "PTTL {pttl}");
    cleanup(&url, &prefix).await;
    let gone: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(gone, None);
}

#[tokio::test]
async fn instances_sharing_a_prefix_share_one_budget() {
    let Some(url) = redis_url("shared_budget") else {
        return;
    };
    let prefix = unique_prefix("shared_budget");
    let a = Limiter::with_redis(&url, &prefix, RedisFailure::Deny).unwrap();
    let b = Limiter::with_redis(&url, &prefix, RedisFailure::Deny).unwrap();
    let q = Quota::per_minute(5);
    for _ in 0..5 {
        allowed(&a, "login:ip:192.0.2.1", q, T0).await;
    }
    let d = refused(&b, "login:ip:192.0.2.1", q, T0 + 1).await;
    assert_eq!(d.retry_after, Some(ms(11_999)));
    // A different prefix is a different budget.
    let other = unique_prefix("shared_budget_other");
    let c = Limiter::with_redis(&url, &other, RedisFailure::Deny).unwrap();
    allowed(&c, "login:ip:192.0.2.1", q, T0 + 1).await;
    assert_eq!(b.last_backend(), "redis");
    cleanup(&url, &prefix).await;
    cleanup(&url, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_never_exceed_the_quota() {
    let Some(url) = redis_url("concurrent") else {
        return;
    };
    let prefix = unique_prefix("concurrent");
    // Several limiters (as several server instances would be) hammering one key.
    let limiters: Vec<_> = (0..5)
        .map(|_| Limiter::with_redis(&url, &prefix, RedisFailure::Deny).unwrap())
        .collect();
    let q = Quota::per_minute(10);
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let l = limiters[i % limiters.len()].clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let d = l.check("hot", q, T0).await;
                (d.allowed, l.last_backend())
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        let (ok, backend) = t.await.unwrap();
        assert_eq!(backend, "redis");
        allowed += usize::from(ok);
    }
    assert_eq!(allowed, 10);
    cleanup(&url, &prefix).await;
}

// ---- Redis unreachable (no Redis needed) ----

/// Nothing listens on port 1.
const DEAD_REDIS: &str = "redis://127.0.0.1:1";

async fn timed_check(l: &Limiter, key: &str, q: Quota, now: i64) -> carrel_ratelimit::Decision {
    let started = Instant::now();
    let d = l.check(key, q, now).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(300), "check took {took:?}");
    d
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_memory() {
    let l = Limiter::with_redis(DEAD_REDIS, "rl:", RedisFailure::FallBackToMemory).unwrap();
    let q = Quota::per_minute(5);
    for want in [4u32, 3, 2, 1, 0] {
        let d = timed_check(&l, "k", q, T0).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, want);
        assert_eq!(l.last_backend(), "memory");
    }
    let d = timed_check(&l, "k", q, T0).await;
    assert!(!d.allowed);
    assert_eq!(d.retry_after, Some(secs(12)));
    // Past the 1 s back-off Redis is tried again, still fails fast, still enforced in memory.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let d = timed_check(&l, "k", q, T0 + 1_000).await;
    assert!(!d.allowed);
    assert_eq!(l.last_backend(), "memory");
    assert_eq!(l.memory_entries(), 1);
}

#[tokio::test]
async fn unreachable_redis_with_allow_lets_requests_through() {
    let l = Limiter::with_redis(DEAD_REDIS, "rl:", RedisFailure::Allow).unwrap();
    let q = Quota::per_minute(5);
    for _ in 0..20 {
        let d = timed_check(&l, "k", q, T0).await;
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining, d.retry_after), (5, 4, None));
    }
    assert_eq!(l.last_backend(), "none");
    assert_eq!(l.memory_entries(), 0);
}

#[tokio::test]
async fn unreachable_redis_with_deny_refuses_requests() {
    let l = Limiter::with_redis(DEAD_REDIS, "rl:", RedisFailure::Deny).unwrap();
    let d = timed_check(&l, "k", Quota::per_minute(5), T0).await;
    assert!(!d.allowed);
    assert_eq!((d.limit, d.remaining), (5, 0));
    assert_eq!(d.retry_after, Some(secs(12)));
    // Short emission interval: retry when Redis will be tried again (1 s).
    let d = timed_check(&l, "k", Quota::per_second(100), T0).await;
    assert!(!d.allowed);
    assert_eq!(d.retry_after, Some(secs(1)));
    assert_eq!(l.last_backend(), "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_redis_is_cut_off_by_the_timeout() {
    // Accepts connections and never answers (a stalled server or a black-holed network).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let l = Limiter::with_redis(
        &format!("redis://{addr}"),
        "rl:",
        RedisFailure::FallBackToMemory,
    )
    .unwrap();
    let q = Quota::per_minute(2);
    let mut outcomes = Vec::new();
    let started = Instant::now();
    // Real time passes (the back-off is wall-clock), so Redis is retried several times.
    while started.elapsed() < Duration::from_millis(3_500) {
        let t = Instant::now();
        let d = l.check("k", q, T0).await;
        let took = t.elapsed();
        assert!(took < Duration::from_millis(400), "check took {took:?}");
        assert_eq!(l.last_backend(), "memory");
        outcomes.push(d.allowed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(outcomes.iter().filter(|a| **a).count(), 2);
    held.abort();
}

#[test]
fn constructing_needs_no_runtime_and_never_connects() {
    // No Tokio runtime here, and nothing listens on port 1.
    let l = Limiter::with_redis(DEAD_REDIS, "rl:", RedisFailure::default()).unwrap();
    assert_eq!(l.last_backend(), "redis");
    assert_eq!(RedisFailure::default(), RedisFailure::FallBackToMemory);
}

// ---- recovery through a proxy that can be cut ----

/// A TCP proxy to Redis that can be cut (open connections dropped, new ones closed at once)
/// and restored.
struct Proxy {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, rx) = watch::channel(true);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut rx = rx.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { addr, up, task }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `redis://[userinfo@]host:port[/db]` → (`host:port`, the URL with `addr` instead).
fn split_redis_url(url: &str, addr: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let target = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:6379")
    };
    (target, format!("{scheme}://{userinfo}{addr}{path}"))
}

#[tokio::test]
async fn falls_back_while_redis_is_cut_and_recovers_when_it_returns() {
    let Some(url) = redis_url("recovery") else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    let proxy = Proxy::start(split_redis_url(&url, "127.0.0.1:9".parse().unwrap()).0).await;
    let (_, via_proxy) = split_redis_url(&url, proxy.addr);
    let prefix = unique_prefix("recovery");
    let l = Limiter::with_redis(&via_proxy, &prefix, RedisFailure::FallBackToMemory).unwrap();
    let q = Quota::per_minute(1_000);
    let mut now = T0;

    allowed(&l, "k", q, now).await;
    assert_eq!(l.last_backend(), "redis");

    proxy.set_up(false);
    // The open connection is gone: the very next check falls back, quickly.
    for _ in 0..10 {
        now += 100;
        let d = timed_check(&l, "k", q, now).await;
        assert!(d.allowed);
        assert_eq!(l.last_backend(), "memory");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(logs.lines_with("WARN").len(), 1, "{}", logs.text());

    proxy.set_up(true);
    let restored = Instant::now();
    loop {
        now += 100;
        timed_check(&l, "k", q, now).await;
        if l.last_backend() == "redis" {
            break;
        }
        assert!(
            restored.elapsed() < Duration::from_secs(5),
            "still not back on Redis after {:?}",
            restored.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = restored.elapsed();
    eprintln!("back on Redis {took:?} after the proxy was restored");
    assert!(took < Duration::from_secs(3), "recovery took {took:?}");
    // And it stays there.
    for _ in 0..5 {
        now += 100;
        timed_check(&l, "k", q, now).await;
        assert_eq!(l.last_backend(), "redis");
    }
    assert_eq!(
        logs.lines_with("Redis answers again").len(),
        1,
        "{}",
        logs.text()
    );
    cleanup(&url, &prefix).await;
}
