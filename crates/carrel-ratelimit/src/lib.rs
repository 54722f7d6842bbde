//! Carrel's rate limiter: GCRA (the generic cell rate algorithm, a.k.a. leaky bucket as a
//! meter) over a caller-supplied clock, held in process or shared through Redis.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use carrel_ratelimit::{Limiter, Quota};
//!
//! let limiter = Limiter::in_memory();
//! let login = Quota { count: 5, period: Duration::from_secs(60) };
//! let now_millis = 1_700_000_000_000; // from the server's (injectable) clock
//! let decision = limiter.check("login:ip:203.0.113.7", login, now_millis).await;
//! if !decision.allowed {
//!     // 429, `Retry-After: decision.retry_after`
//! }
//! # }
//! ```
//!
//! # Algorithm
//!
//! Per key, the store holds one number: the theoretical arrival time (TAT, ms). With the
//! emission interval `T = ceil(period / count)` (whole ms) and the tolerance `count × T`
//! (the period itself whenever it is a multiple of `count` ms; otherwise up to `count - 1` ms
//! longer, never a higher rate), a request at `now` computes `tat = max(stored, now)` and
//! `new_tat = tat + T`; it is refused when `new_tat - now` exceeds the tolerance (the state is
//! left unchanged, `retry_after = new_tat - now - tolerance`), and otherwise allowed, storing
//! `new_tat`. A fresh key therefore allows a burst of `count` at once and then one request
//! every `T`.
//!
//! * `now` going backwards: by less than the period, plain GCRA (an earlier `now` sees less of
//!   the budget paid back; this also covers small clock differences between instances sharing
//!   Redis). By more than the period (the TAT is then further ahead than the tolerance, which
//!   monotonic time cannot produce), the key is treated as exhausted at the new `now`: refused
//!   for one emission interval `T`, then refilling as usual -- never refused for the length of
//!   the jump.
//! * `count == 0` refuses everything (`retry_after = period`); a zero `period` allows
//!   everything. Neither touches a store.
//! * `now` is clamped to `0..=2^50` ms and periods to 2^40 ms (~35 years), so the Redis script,
//!   which computes with Lua doubles, gives exactly the in-process answers.
//!
//! # Stores
//!
//! * [`Limiter::in_memory`]: 16 mutex-guarded shards; expired keys are swept as checks go by,
//!   and a hard cap bounds the number of keys (see [`Limiter::in_memory_with_capacity`]).
//! * [`Limiter::with_redis`]: one Lua script (`EVALSHA`, loading it on `NOSCRIPT`) per check,
//!   through a reconnecting [`redis::aio::ConnectionManager`]. Time still comes from the
//!   caller, so server instances sharing a Redis share one budget (their clocks should agree to
//!   within a small fraction of the shortest period). Each call is bounded by 250 ms; on any
//!   error or timeout the limiter applies [`RedisFailure`], does not try Redis again for 1 s,
//!   logs a warning at most every 30 s while failing and an info line once Redis answers again.
//!   Redis Cluster and Sentinel are not supported. `rediss://` (TLS) needs the crate feature
//!   `tls` (rustls with the ring provider, system trust store).
//!
//! The limiter needs a Tokio runtime with the time driver enabled (the Redis timeout). Redis'
//! key expiry (`TAT - now` + 1 s, clean-up only) runs on Redis' clock: with a caller clock that
//! stands still while more than that passes in real time (a frozen test clock), a Redis key can
//! expire before the caller's clock reaches its TAT, which gives the key its budget back early.
//! The in-process store expires keys on the caller's clock only.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gcra;
mod memory;
mod redis_store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use gcra::{Outcome, Plan};
use memory::MemoryStore;
use redis_store::RedisStore;

/// N requests per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub period: Duration,
}

impl Quota {
    /// `count` requests per `period`.
    pub const fn new(count: u32, period: Duration) -> Self {
        Self { count, period }
    }

    /// `count` requests per second.
    pub const fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` requests per minute.
    pub const fn per_minute(count: u32) -> Self {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` requests per hour.
    pub const fn per_hour(count: u32) -> Self {
        Self::new(count, Duration::from_secs(3600))
    }
}

/// The verdict for one request, with what the `RateLimit-*` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The quota's `count`.
    pub limit: u32,
    /// Requests still allowed right now, after this one.
    pub remaining: u32,
    /// Until the budget is full again.
    pub reset_after: Duration,
    /// `Some` when refused: wait this long (whole milliseconds, rounded up).
    pub retry_after: Option<Duration>,
}

/// Which way to fail when Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisFailure {
    /// Default: use the in-process store, log a warning (rate-limited), recover automatically.
    ///
    /// The in-process store only sees this instance's requests, and only while Redis is down,
    /// so during an outage each instance enforces the quota on its own.
    #[default]
    FallBackToMemory,
    /// Let the request through (`remaining = count - 1`, `reset_after = T`, as for a fresh key).
    Allow,
    /// Refuse the request (`retry_after = max(T, 1 s)`, when Redis is tried again).
    Deny,
}

/// Errors from building a [`Limiter`]. Messages never contain credentials: URLs are shown with
/// the user info replaced by `***` and without query or fragment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimiterError {
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL `{url}`: {reason}")]
    InvalidRedisUrl { url: String, reason: String },
    /// A `rediss://` URL without the crate's `tls` feature.
    #[error(
        "Redis URL `{url}` asks for TLS, which needs carrel-ratelimit's `tls` feature; use redis:// or enable the feature"
    )]
    TlsNotEnabled { url: String },
}

/// The rate limiter. Cheap to clone (the state is shared).
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    memory: MemoryStore,
    redis: Option<RedisStore>,
    last_backend: AtomicU8,
}

const BACKEND_MEMORY: u8 = 0;
const BACKEND_REDIS: u8 = 1;
const BACKEND_NONE: u8 = 2;

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Limiter");
        match &self.inner.redis {
            Some(redis) => s.field("redis", redis),
            None => s.field("store", &"memory"),
        };
        s.field("last_backend", &self.last_backend())
            .field("memory_entries", &self.inner.memory.len())
            .finish()
    }
}

impl Limiter {
    /// A limiter whose state lives in this process (at most 262 144 keys).
    pub fn in_memory() -> Self {
        Self::in_memory_with_capacity(memory::DEFAULT_MAX_ENTRIES)
    }

    /// A limiter whose state lives in this process, holding at most about `max_entries` keys
    /// (rounded down to a multiple of 16, at least 16). When full, the keys closest to a full
    /// budget are forgotten first.
    pub fn in_memory_with_capacity(max_entries: usize) -> Self {
        Self::build(MemoryStore::new(max_entries), None)
    }

    /// A limiter whose state lives in Redis under `key_prefix` + key, e.g.
    /// `redis://:password@host:6379/0` with the prefix `"carrel:rl:"`.
    ///
    /// Connects lazily: this neither blocks nor fails when Redis is down (the first checks
    /// then fall back as `on_failure` says). It fails only for a URL that does not parse (or a
    /// `rediss://` URL without the `tls` feature); the error shows no password. Needs no
    /// runtime; checks need Tokio.
    pub fn with_redis(
        url: &str,
        key_prefix: &str,
        on_failure: RedisFailure,
    ) -> Result<Self, LimiterError> {
        let redis = RedisStore::new(url, key_prefix, on_failure)?;
        let limiter = Self::build(MemoryStore::new(memory::DEFAULT_MAX_ENTRIES), Some(redis));
        limiter
            .inner
            .last_backend
            .store(BACKEND_REDIS, Ordering::Relaxed);
        Ok(limiter)
    }

    fn build(memory: MemoryStore, redis: Option<RedisStore>) -> Self {
        Self {
            inner: Arc::new(Inner {
                memory,
                redis,
                last_backend: AtomicU8::new(BACKEND_MEMORY),
            }),
        }
    }

    /// Counts one request against `key`'s budget under `quota` at `now_millis` (the caller's
    /// clock, ms since the Unix epoch) and says whether it is allowed.
    ///
    /// `key` is the full bucket key (e.g. `"login:ip:203.0.113.7"`); the same key must always
    /// be checked with the same quota. Never fails and never panics: Redis trouble is handled
    /// as the limiter's [`RedisFailure`] says, within about 250 ms.
    pub async fn check(&self, key: &str, quota: Quota, now_millis: i64) -> Decision {
        let params = match Plan::for_quota(quota) {
            Plan::Gcra(params) => params,
            Plan::Unlimited => {
                return Decision {
                    allowed: true,
                    limit: quota.count,
                    remaining: quota.count,
                    reset_after: Duration::ZERO,
                    retry_after: None,
                };
            }
            Plan::Never { period_ms } => {
                return Decision {
                    allowed: false,
                    limit: 0,
                    remaining: 0,
                    reset_after: Duration::ZERO,
                    retry_after: Some(gcra::millis(period_ms)),
                };
            }
        };
        let now = gcra::clamp_now(now_millis);
        let inner = &*self.inner;
        let Some(redis) = &inner.redis else {
            return self.answer(BACKEND_MEMORY, inner.memory.check(key, params, now), quota);
        };
        if redis.should_try()
            && let Ok(outcome) = redis.check(key, params, now).await
        {
            return self.answer(BACKEND_REDIS, outcome, quota);
        }
        match redis.on_failure {
            RedisFailure::FallBackToMemory => {
                self.answer(BACKEND_MEMORY, inner.memory.check(key, params, now), quota)
            }
            RedisFailure::Allow => self.answer(
                BACKEND_NONE,
                Outcome {
                    allowed: true,
                    remaining: i64::from(quota.count) - 1,
                    reset_after_ms: params.t_ms,
                    retry_after_ms: 0,
                },
                quota,
            ),
            RedisFailure::Deny => {
                let wait = params.t_ms.max(gcra::ceil_millis(redis_store::RETRY_DELAY));
                self.answer(
                    BACKEND_NONE,
                    Outcome {
                        allowed: false,
                        remaining: 0,
                        reset_after_ms: wait,
                        retry_after_ms: wait,
                    },
                    quota,
                )
            }
        }
    }

    fn answer(&self, backend: u8, outcome: Outcome, quota: Quota) -> Decision {
        self.inner.last_backend.store(backend, Ordering::Relaxed);
        outcome.into_decision(quota.count)
    }

    /// Which store answered the most recent check: `"memory"` or `"redis"`, or `"none"` when
    /// Redis failed and [`RedisFailure::Allow`]/[`RedisFailure::Deny`] decided without a store
    /// (for tests and metrics). Before any check: the configured store. Checks with a
    /// degenerate quota (`count == 0` or a zero period) do not change it.
    pub fn last_backend(&self) -> &'static str {
        match self.inner.last_backend.load(Ordering::Relaxed) {
            BACKEND_MEMORY => "memory",
            BACKEND_REDIS => "redis",
            _ => "none",
        }
    }

    /// Number of keys held by the in-process store (the fallback store when using Redis).
    pub fn memory_entries(&self) -> usize {
        self.inner.memory.len()
    }
}
