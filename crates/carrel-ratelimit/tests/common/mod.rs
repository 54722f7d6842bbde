//! Scenarios shared by the in-memory and Redis tests: both stores must give the same answers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use carrel_ratelimit::{Decision, Limiter, Quota};

/// An arbitrary instant (ms since the epoch) to start the test clock at.
pub const T0: i64 = 1_750_000_000_000;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

pub async fn allowed(l: &Limiter, key: &str, q: Quota, now: i64) -> Decision {
    let d = l.check(key, q, now).await;
    assert!(d.allowed, "{key} at {now}: expected allowed, got {d:?}");
    d
}

pub async fn refused(l: &Limiter, key: &str, q: Quota, now: i64) -> Decision {
    let d = l.check(key, q, now).await;
    assert!(!d.allowed, "{key} at {now}: expected refused, got {d:?}");
    d
}

/// Quota 5/min: a burst of 5, the 6th refused for 12 s; full again 60 s after the burst.
pub async fn five_per_minute(l: &Limiter) {
    let q = Quota::per_minute(5);
    let key = "login:ip:203.0.113.7";
    for (i, want) in [4u32, 3, 2, 1, 0].into_iter().enumerate() {
        let d = allowed(l, key, q, T0).await;
        assert_eq!(d.limit, 5);
        assert_eq!(d.remaining, want);
        assert_eq!(d.retry_after, None);
        assert_eq!(d.reset_after, secs(12 * (i as u64 + 1)));
    }
    let d = refused(l, key, q, T0).await;
    assert_eq!(
        d,
        Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_after: secs(60),
            retry_after: Some(secs(12)),
        }
    );
    // Refusals do not consume budget: still 12 s to wait.
    let d = refused(l, key, q, T0 + 1).await;
    assert_eq!(d.retry_after, Some(ms(11_999)));

    // After 12 s exactly one more is allowed.
    let d = allowed(l, key, q, T0 + 12_000).await;
    assert_eq!((d.remaining, d.reset_after), (0, secs(60)));
    refused(l, key, q, T0 + 12_000).await;

    // A separate key, burst at T0, then exactly 60 s later: the full 5 again.
    let key = "login:ip:203.0.113.8";
    for _ in 0..5 {
        allowed(l, key, q, T0).await;
    }
    // 1 ms short of 60 s: only 4.
    for want in [3u32, 2, 1, 0] {
        assert_eq!(allowed(l, key, q, T0 + 59_999).await.remaining, want);
    }
    assert_eq!(
        refused(l, key, q, T0 + 59_999).await.retry_after,
        Some(ms(1))
    );
    let key = "login:ip:203.0.113.9";
    for _ in 0..5 {
        allowed(l, key, q, T0).await;
    }
    for want in [4u32, 3, 2, 1, 0] {
        assert_eq!(allowed(l, key, q, T0 + 60_000).await.remaining, want);
    }
    refused(l, key, q, T0 + 60_000).await;
}

/// Quota 1/s.
pub async fn one_per_second(l: &Limiter) {
    let q = Quota::per_second(1);
    let key = "api:user:42";
    let d = allowed(l, key, q, T0).await;
    assert_eq!((d.remaining, d.reset_after), (0, secs(1)));
    let d = refused(l, key, q, T0 + 400).await;
    assert_eq!(d.retry_after, Some(ms(600)));
    assert_eq!(d.reset_after, ms(600));
    allowed(l, key, q, T0 + 1_000).await;
    refused(l, key, q, T0 + 1_999).await;
    allowed(l, key, q, T0 + 2_000).await;
    // Idle for a long time: one request, not a backlog.
    allowed(l, key, q, T0 + 60_000).await;
    refused(l, key, q, T0 + 60_000).await;
}

/// Quota 300/min (T = 200 ms): 300 quick requests pass.
pub async fn three_hundred_per_minute(l: &Limiter) {
    let q = Quota::per_minute(300);
    // All at one instant: 300 allowed, the 301st waits one emission interval.
    let key = "search:ip:198.51.100.1";
    for i in 0..300u32 {
        assert_eq!(allowed(l, key, q, T0).await.remaining, 299 - i);
    }
    assert_eq!(refused(l, key, q, T0).await.retry_after, Some(ms(200)));

    // One per ms: 300 allowed; by then 300 ms have passed, which paid back one request.
    let key = "search:ip:198.51.100.2";
    for i in 0..300 {
        allowed(l, key, q, T0 + i).await;
    }
    allowed(l, key, q, T0 + 300).await;
    assert_eq!(refused(l, key, q, T0 + 301).await.retry_after, Some(ms(99)));
}

/// Keys do not share budgets.
pub async fn independent_keys(l: &Limiter) {
    let q = Quota::per_minute(2);
    for key in ["a", "b"] {
        allowed(l, key, q, T0).await;
        allowed(l, key, q, T0).await;
    }
    refused(l, "a", q, T0).await;
    refused(l, "b", q, T0).await;
    assert_eq!(allowed(l, "c", q, T0).await.remaining, 1);
    // Keys that differ only by a prefix or a suffix.
    assert_eq!(allowed(l, "aa", q, T0).await.remaining, 1);
    assert_eq!(allowed(l, "login:ip:a", q, T0).await.remaining, 1);
}

/// The caller's clock jumping back: bounded, never refused for the length of the jump.
pub async fn clock_backwards(l: &Limiter) {
    let q = Quota::per_minute(5);
    // Back by less than the period: plain GCRA, an earlier `now` sees less budget paid back.
    let key = "backwards-small";
    allowed(l, key, q, T0).await;
    assert_eq!(allowed(l, key, q, T0 - 5_000).await.remaining, 2);
    for _ in 0..3 {
        allowed(l, key, q, T0).await;
    }
    refused(l, key, q, T0).await;

    // An hour back: the key counts as exhausted at the new `now` -- refused for 12 s, then
    // refilling as usual on the new clock.
    let key = "backwards-big";
    allowed(l, key, q, T0).await;
    let back = T0 - 3_600_000;
    let d = refused(l, key, q, back).await;
    assert_eq!(d.retry_after, Some(secs(12)));
    assert_eq!(d.reset_after, secs(60));
    let d = refused(l, key, q, back + 11_999).await;
    assert_eq!(d.retry_after, Some(ms(1)));
    assert_eq!(allowed(l, key, q, back + 12_000).await.remaining, 0);
    for _ in 0..5 {
        allowed(l, key, q, back + 72_000).await;
    }
    refused(l, key, q, back + 72_000).await;
}

/// count == 0 refuses, period == 0 allows; neither fails.
pub async fn degenerate_quotas(l: &Limiter) {
    let never = Quota::new(0, secs(30));
    let d = l.check("never", never, T0).await;
    assert_eq!(
        d,
        Decision {
            allowed: false,
            limit: 0,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: Some(secs(30))
        }
    );
    let free = Quota::new(3, Duration::ZERO);
    for _ in 0..10 {
        let d = l.check("free", free, T0).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, 3);
    }
    // Sub-millisecond period: rounded up to 1 ms.
    let tiny = Quota::new(1, Duration::from_micros(10));
    allowed(l, "tiny", tiny, T0).await;
    refused(l, "tiny", tiny, T0).await;
    allowed(l, "tiny", tiny, T0 + 1).await;
    // Extreme inputs never panic.
    let huge = Quota::new(u32::MAX, Duration::from_secs(u64::MAX));
    allowed(l, "huge", huge, i64::MAX).await;
    assert_eq!(
        allowed(l, "huge", huge, i64::MAX).await.remaining,
        u32::MAX - 2
    );
    // From the far future to before the epoch: a jump back, refused for one interval.
    let d = refused(l, "huge", huge, i64::MIN).await;
    assert_eq!(d.retry_after, Some(ms(257)));
    allowed(l, "huge-2", huge, i64::MIN).await;
    allowed(l, "negative", Quota::per_second(1), -5).await;
}

/// A deterministic pseudo-random sequence of checks (several quotas, including ones whose
/// period is not a multiple of the count, clock steps forward and back). Returns every
/// decision, to compare stores.
pub async fn random_walk(l: &Limiter, steps: usize) -> Vec<Decision> {
    let quotas = [
        Quota::per_minute(5),
        Quota::per_second(3),
        Quota::new(7, secs(10)),
        Quota::per_second(1),
        Quota::new(4, ms(999)),
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut now = T0;
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        let r = next();
        let qi = (r % quotas.len() as u64) as usize;
        let key = format!("walk:{qi}:{}", (r >> 16) % 3);
        let q = quotas[qi];
        now += match (r >> 24) % 10 {
            0 => -(((r >> 32) % 5_000) as i64),
            1..=5 => 0,
            6..=8 => ((r >> 32) % 700) as i64,
            _ => ((r >> 32) % 15_000) as i64,
        };
        out.push(l.check(&key, q, now).await);
    }
    out
}

/// The Redis URL under test, or `None` after printing one "SKIPPED" line straight to stderr
/// (not `eprintln!`, which the test harness captures).
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("CARREL_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            use std::io::Write;
            // One write, so that parallel tests do not interleave within the line.
            let line = format!("SKIPPED: CARREL_TEST_REDIS_URL not set ({test})\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            None
        }
    }
}

/// A key prefix no other test (or test run) uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("carrel-test:{test}:{}:{nanos}:", std::process::id())
}

/// Deletes every key under `prefix`.
pub async fn cleanup(url: &str, prefix: &str) {
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

/// Log lines captured from `tracing` on the current thread while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
