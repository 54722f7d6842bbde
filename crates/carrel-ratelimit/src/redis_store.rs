//! The Redis store: the same GCRA as [`crate::gcra::step`], run atomically by one Lua script.
//!
//! Time comes from the caller (`ARGV[1]`), never from Redis, so server instances sharing a
//! Redis share one budget, and tests drive time. The key's `PX` expiry (`TAT - now` + 1 s, in
//! Redis wall time) lets Redis forget keys whose budget is full again.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::gcra::{Outcome, Params};
use crate::{LimiterError, RedisFailure};

/// Upper bound on one Redis round trip (connecting included) before the check falls back.
pub(crate) const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, Redis is not tried again for this long (wall clock).
pub(crate) const RETRY_DELAY: Duration = Duration::from_secs(1);
/// While Redis keeps failing, at most one warning per this long (wall clock).
const WARN_EVERY: Duration = Duration::from_secs(30);
/// Added to each key's expiry; see [`SCRIPT`].
const EXPIRY_SLACK_MS: i64 = 1_000;
/// After this many failures in a row the connection manager is replaced by a fresh one (a
/// half-open TCP connection only ever times out and would never be reconnected otherwise).
const RENEW_AFTER_FAILURES: u32 = 3;

/// KEYS[1] = prefixed key; ARGV = now_ms, T_ms, tolerance_ms (= count × T, the period),
/// expiry slack ms. Returns {allowed (0/1), remaining, reset_after_ms, retry_after_ms}.
///
/// The key expires `TAT - now` + slack after it is written. The expiry is only clean-up (a
/// TAT at or before `now` means the same as no key); the slack keeps a key alive while the
/// callers' clocks lag Redis' (instances' clocks a little apart, a test clock that stands
/// still while real time passes).
///
/// A transcription of `gcra::step`. Redis' Lua 5.1 numbers are doubles; all values stay below
/// 2^53 (the caller clamps its inputs) so the arithmetic is exact. Numbers are formatted with
/// `%.0f` before being sent back to Redis: `redis.call` would otherwise turn a large number
/// into `1.7e+12`.
const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tol = tonumber(ARGV[3])
local slack = tonumber(ARGV[4])
local stored = tonumber(redis.call('GET', KEYS[1]) or '')
local tat = now
local rebased = false
if stored then
  if stored > tat then
    tat = stored
  end
  if tat > now + tol then
    tat = now + tol
    rebased = true
  end
end
local new_tat = tat + t
local ahead = new_tat - now
if ahead > tol then
  if rebased then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', tol + slack))
  end
  return {0, 0, tat - now, ahead - tol}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ahead + slack))
return {1, math.floor((tol - ahead) / t), ahead, 0}
";

pub(crate) struct RedisStore {
    client: redis::Client,
    /// Created on first use (it needs a Tokio runtime); replaced after repeated failures.
    manager: RwLock<Option<ConnectionManager>>,
    script: redis::Script,
    prefix: String,
    pub(crate) on_failure: RedisFailure,
    /// The URL with any credentials, query and fragment removed, for `Debug` and logs.
    display_url: String,
    /// Removed from any error text before it is logged.
    secrets: Vec<String>,
    health: Health,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.display_url)
            .field("key_prefix", &self.prefix)
            .field("on_failure", &self.on_failure)
            .field("failing", &self.health.failing.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why a Redis check did not produce an answer.
#[derive(Debug)]
pub(crate) enum Failure {
    Timeout,
    Redis(redis::RedisError),
    BadReply(String),
}

impl RedisStore {
    pub(crate) fn new(
        url: &str,
        key_prefix: &str,
        on_failure: RedisFailure,
    ) -> Result<Self, LimiterError> {
        let display_url = redact_url(url);
        let secrets = url_secrets(url);
        let scheme = url
            .split_once("://")
            .map_or(String::new(), |(scheme, _)| scheme.to_ascii_lowercase());
        let tls = matches!(scheme.as_str(), "rediss" | "valkeys");
        if tls && !cfg!(feature = "tls") {
            return Err(LimiterError::TlsNotEnabled { url: display_url });
        }
        let client = redis::Client::open(url).map_err(|e| LimiterError::InvalidRedisUrl {
            url: display_url.clone(),
            reason: scrub(&e.to_string(), &secrets),
        })?;
        #[cfg(feature = "tls")]
        if tls {
            install_crypto_provider();
        }
        Ok(Self {
            client,
            manager: RwLock::new(None),
            script: redis::Script::new(SCRIPT),
            prefix: key_prefix.to_owned(),
            on_failure,
            display_url,
            secrets,
            health: Health::new(),
        })
    }

    /// Whether Redis should be tried now (not within [`RETRY_DELAY`] of a failure).
    pub(crate) fn should_try(&self) -> bool {
        self.health.should_try()
    }

    /// Runs the script once, with [`REDIS_TIMEOUT`], and records the result in the health state.
    pub(crate) async fn check(&self, key: &str, p: Params, now: i64) -> Result<Outcome, Failure> {
        let result = self.invoke(key, p, now).await;
        match &result {
            Ok(_) => {
                self.health.failures_in_a_row.store(0, Ordering::Relaxed);
                if self.health.failing.load(Ordering::Relaxed)
                    && self.health.failing.swap(false, Ordering::Relaxed)
                {
                    tracing::info!(redis = %self.display_url, "rate-limit store: Redis answers again");
                }
            }
            Err(failure) => self.record_failure(failure),
        }
        result
    }

    async fn invoke(&self, key: &str, p: Params, now: i64) -> Result<Outcome, Failure> {
        let mut conn = self.manager().map_err(Failure::Redis)?;
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation
            .arg(now)
            .arg(p.t_ms)
            .arg(p.tol_ms)
            .arg(EXPIRY_SLACK_MS);
        let reply: Vec<i64> =
            match tokio::time::timeout(REDIS_TIMEOUT, invocation.invoke_async(&mut conn)).await {
                Err(_) => return Err(Failure::Timeout),
                Ok(Err(e)) => return Err(Failure::Redis(e)),
                Ok(Ok(reply)) => reply,
            };
        match reply[..] {
            [allowed, remaining, reset_after_ms, retry_after_ms] => Ok(Outcome {
                allowed: allowed == 1,
                remaining,
                reset_after_ms,
                retry_after_ms,
            }),
            _ => Err(Failure::BadReply(format!("{reply:?}"))),
        }
    }

    fn manager(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(manager) = self
            .manager
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(manager.clone());
        }
        let mut slot = self
            .manager
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        // Lazy: no connection is made until the first command. One attempt per connection
        // future (plus one quick retry); `RETRY_DELAY` paces the attempts after that.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        *slot = Some(manager.clone());
        Ok(manager)
    }

    fn record_failure(&self, failure: &Failure) {
        let health = &self.health;
        health.failing.store(true, Ordering::Relaxed);
        health.retry_at_ms.store(
            health.elapsed_ms().saturating_add(millis_u64(RETRY_DELAY)),
            Ordering::Relaxed,
        );
        let suppressed = health.suppressed.fetch_add(1, Ordering::Relaxed);
        if health.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= RENEW_AFTER_FAILURES {
            health.failures_in_a_row.store(0, Ordering::Relaxed);
            *self
                .manager
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        if health.may_warn() {
            health.suppressed.store(0, Ordering::Relaxed);
            let error = match failure {
                Failure::Timeout => format!("no answer within {} ms", REDIS_TIMEOUT.as_millis()),
                Failure::Redis(e) => scrub(&e.to_string(), &self.secrets),
                Failure::BadReply(reply) => format!("unexpected reply {reply}"),
            };
            tracing::warn!(
                redis = %self.display_url,
                %error,
                fallback = ?self.on_failure,
                failures_since_last_warning = suppressed + 1,
                "rate-limit store: Redis unavailable; retrying every {} s",
                RETRY_DELAY.as_secs()
            );
        }
    }
}

/// Wall-clock health of the Redis connection (all times in ms since `epoch`).
#[derive(Debug)]
struct Health {
    epoch: Instant,
    retry_at_ms: AtomicU64,
    failing: AtomicBool,
    /// `u64::MAX`: never warned.
    last_warn_ms: AtomicU64,
    suppressed: AtomicU64,
    failures_in_a_row: AtomicU32,
}

impl Health {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            retry_at_ms: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_warn_ms: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
            failures_in_a_row: AtomicU32::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        millis_u64(self.epoch.elapsed())
    }

    fn should_try(&self) -> bool {
        self.elapsed_ms() >= self.retry_at_ms.load(Ordering::Relaxed)
    }

    /// True for at most one caller per [`WARN_EVERY`].
    fn may_warn(&self) -> bool {
        let now = self.elapsed_ms();
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if last != u64::MAX && now.saturating_sub(last) < millis_u64(WARN_EVERY) {
            return false;
        }
        self.last_warn_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

fn millis_u64(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `scheme://host:port/path` with the user info replaced by `***` and any query or fragment
/// dropped (a Redis URL may carry a password in either place).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparseable>".to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// The secret-looking parts of a URL (user info, raw and percent-decoded; query; fragment),
/// to be removed from any text that might echo them.
fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        secrets.push(url.to_owned());
        return secrets;
    };
    let (before_query, after) = match rest.find(['?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if after.len() > 1 {
        secrets.push(after[1..].to_owned());
    }
    let authority = before_query.split('/').next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        for part in std::iter::once(userinfo).chain(userinfo.split(':')) {
            if !part.is_empty() {
                secrets.push(part.to_owned());
                let decoded = percent_decode(part);
                if decoded != part {
                    secrets.push(decoded);
                }
            }
        }
    }
    // Longest first, so a secret containing another is removed whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// redis-rs builds its rustls config with `ClientConfig::builder()`, which needs a process-wide
/// crypto provider when more than one is compiled in (the workspace has both ring and
/// aws-lc-rs). Install ring unless the application installed one already.
#[cfg(feature = "tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("redis://:s3cret@127.0.0.1:6379/2?x=1#f"),
            "redis://***@127.0.0.1:6379/2"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://u:p@[bad"), "redis://***@[bad");
        assert_eq!(redact_url("no scheme at all"), "<unparseable>");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?pass=s3cret"),
            "redis+unix:///run/redis.sock"
        );
        let secrets = url_secrets("redis://user:p%40ss@host/0?pass=x");
        let text = scrub("user:p%40ss p@ss pass=x", &secrets);
        assert!(!text.contains("p@ss") && !text.contains("p%40ss") && !text.contains("pass=x"));
    }
}
