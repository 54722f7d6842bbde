//! Latency of `Limiter::check`: the in-process store (1M checks across 10k keys) and, when
//! `CARREL_TEST_REDIS_URL` is set, Redis (10k checks).
//!
//! CARGO_TARGET_DIR=/work/bench-target nice -n 19 cargo bench -p carrel-ratelimit
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use carrel_ratelimit::{Limiter, Quota, RedisFailure};

const T0: i64 = 1_750_000_000_000;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("api:ip:10.0.{}.{}", i / 256, i % 256))
        .collect();
    let quota = Quota::per_minute(60);

    let memory = Limiter::in_memory();
    rt.block_on(run(&memory, "memory", &keys, quota, 1_000_000, 100_000));
    assert_eq!(memory.last_backend(), "memory");

    match std::env::var("CARREL_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let prefix = format!("carrel-bench:{}:", std::process::id());
            let redis = Limiter::with_redis(url.trim(), &prefix, RedisFailure::Deny).unwrap();
            rt.block_on(async {
                run(&redis, "redis", &keys, quota, 10_000, 1_000).await;
                assert_eq!(redis.last_backend(), "redis");
                cleanup(url.trim(), &prefix).await;
            });
        }
        _ => println!("redis : SKIPPED (CARREL_TEST_REDIS_URL not set)"),
    }
}

/// `n` timed checks (after `warmup` untimed ones) cycling through `keys` with a stride, the
/// clock advancing 10 ms every 1000 checks (so a mix of allowed and refused).
async fn run(l: &Limiter, name: &str, keys: &[String], quota: Quota, n: usize, warmup: usize) {
    let mut now = T0;
    let mut latencies = Vec::with_capacity(n);
    let mut allowed = 0usize;
    for i in 0..warmup + n {
        if i % 1_000 == 0 {
            now += 10;
        }
        let key = &keys[(i * 7_919) % keys.len()];
        let started = Instant::now();
        let decision = l.check(black_box(key), quota, now).await;
        let took = started.elapsed();
        if i >= warmup {
            latencies.push(took);
            allowed += usize::from(black_box(decision).allowed);
        }
    }
    latencies.sort_unstable();
    let total: Duration = latencies.iter().sum();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<6}: {n} checks over {} keys: mean {:?}, p50 {:?}, p99 {:?}, max {:?} ({:.0}% allowed)",
        keys.len(),
        total / n as u32,
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1],
        allowed as f64 * 100.0 / n as f64,
    );
}

async fn cleanup(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
