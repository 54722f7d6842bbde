//! Rate limits: the contract's named limits plus a catch-all per client IP.
//!
//! The catch-all runs as middleware on every route, including routes added
//! later, so no handler can forget it (`http::middleware::rate_limits`). Named limits are checked where their key
//! is known (client IP, user, or target account) with [`enforce`]. Every
//! decision taken while handling a request is collected, and the tightest one
//! becomes the `RateLimit-*` headers of the response. Time comes from the
//! server clock, so tests move windows instead of sleeping.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use carrel_core::Clock;
use carrel_ratelimit::{Decision, Limiter, Quota};
use secrecy::ExposeSecret;

use crate::config::Config;

/// The configurable limits (`CARREL_RATE_LIMIT_<NAME>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Login,
    Register,
    PasswordForgot,
    ResendVerification,
    MfaVerify,
    Refresh,
    ProfileUpdate,
    CoverUpload,
    Payments,
    AccountDeletion,
    /// Failed SIP2 terminal logins (93), per peer address.
    Sip2Login,
    Global,
}

impl Limit {
    const ALL: [Limit; 12] = [
        Limit::Login,
        Limit::Register,
        Limit::PasswordForgot,
        Limit::ResendVerification,
        Limit::MfaVerify,
        Limit::Refresh,
        Limit::ProfileUpdate,
        Limit::CoverUpload,
        Limit::Payments,
        Limit::AccountDeletion,
        Limit::Sip2Login,
        Limit::Global,
    ];

    /// The `<NAME>` of its configuration variable.
    pub fn config_name(self) -> &'static str {
        match self {
            Limit::Login => "LOGIN",
            Limit::Register => "REGISTER",
            Limit::PasswordForgot => "PASSWORD_FORGOT",
            Limit::ResendVerification => "RESEND_VERIFICATION",
            Limit::MfaVerify => "MFA_VERIFY",
            Limit::Refresh => "REFRESH",
            Limit::ProfileUpdate => "PROFILE_UPDATE",
            Limit::CoverUpload => "COVER_UPLOAD",
            Limit::Payments => "PAYMENTS",
            Limit::AccountDeletion => "ACCOUNT_DELETION",
            Limit::Sip2Login => "SIP2_LOGIN",
            Limit::Global => "GLOBAL",
        }
    }

    /// Label for metrics and bucket keys.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Login => "login",
            Limit::Register => "register",
            Limit::PasswordForgot => "password_forgot",
            Limit::ResendVerification => "resend_verification",
            Limit::MfaVerify => "mfa_verify",
            Limit::Refresh => "refresh",
            Limit::ProfileUpdate => "profile_update",
            Limit::CoverUpload => "cover_upload",
            Limit::Payments => "payments",
            Limit::AccountDeletion => "account_deletion",
            Limit::Sip2Login => "sip2_login",
            Limit::Global => "global",
        }
    }
}

/// The limiter and the configured quotas; cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    limiter: Limiter,
    quotas: Arc<HashMap<Limit, Quota>>,
    enabled: bool,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("enabled", &self.enabled)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// In-process by default; shared through Redis when `CARREL_REDIS_URL` is set.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let limiter = match &config.redis_url {
            Some(url) => {
                Limiter::with_redis(url.expose_secret(), "carrel:rl:", config.redis_failure)
                    .map_err(|e| anyhow::anyhow!("CARREL_REDIS_URL: {e}"))?
            }
            None => Limiter::in_memory(),
        };
        let quotas = Limit::ALL
            .iter()
            .filter_map(|limit| {
                config.rate_limits.get(limit.config_name()).map(|rate| {
                    (
                        *limit,
                        Quota {
                            count: rate.count,
                            period: rate.period,
                        },
                    )
                })
            })
            .collect();
        Ok(Self {
            limiter,
            quotas: Arc::new(quotas),
            enabled: config.rate_limits_enabled,
        })
    }

    /// Which store answered last: `memory`, `redis`, or `none` (Redis down and
    /// `CARREL_RATE_LIMIT_REDIS_FAILURE` allow/deny decided alone).
    pub fn backend(&self) -> &'static str {
        self.limiter.last_backend()
    }

    async fn check(&self, limit: Limit, subject: &str, now_millis: i64) -> Option<Decision> {
        if !self.enabled {
            return None;
        }
        let quota = *self.quotas.get(&limit)?;
        let key = format!("{}:{subject}", limit.label());
        Some(self.limiter.check(&key, quota, now_millis).await)
    }
}

tokio::task_local! {
    /// Decisions taken while handling the current request.
    static DECISIONS: RefCell<Vec<Decision>>;
}

/// A refused request: the http layer answers 429 with `Retry-After` and the
/// `RateLimit-*` headers; SIP2 and the web pages answer in their own way.
#[derive(Debug, Clone, Copy)]
pub struct RateLimited {
    pub limit: Limit,
    pub decision: Decision,
}

/// What [`enforce`] reads from the application state: the limiter and the
/// clock. Implemented by `AppState`, which sits above this module (it holds a
/// [`RateLimits`]), so the limits never depend on the state or a front door.
pub trait LimitContext: Sync {
    fn rate_limits(&self) -> &RateLimits;
    fn clock(&self) -> &Clock;
}

/// Checks a named limit for `subject` (e.g. `ip:203.0.113.7`, `user:<id>`,
/// `id:<keyed hash of a login identifier>`) and records the decision for the response headers.
pub async fn enforce(
    state: &impl LimitContext,
    limit: Limit,
    subject: &str,
) -> Result<(), RateLimited> {
    let now = state.clock().now_precise();
    let now_millis = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let Some(decision) = state.rate_limits().check(limit, subject, now_millis).await else {
        return Ok(());
    };
    let _ = DECISIONS.try_with(|d| d.borrow_mut().push(decision));
    if decision.allowed {
        Ok(())
    } else {
        metrics::counter!("rate_limit_rejections_total", "limit" => limit.label()).increment(1);
        Err(RateLimited { limit, decision })
    }
}

/// Runs `work` (one request) collecting every decision [`enforce`] takes
/// meanwhile; returns its output and the tightest decision, whose figures
/// become the response's `RateLimit-*` headers.
pub async fn collecting_decisions<T>(work: impl Future<Output = T>) -> (T, Option<Decision>) {
    DECISIONS
        .scope(RefCell::new(Vec::new()), async move {
            let output = work.await;
            let tightest = DECISIONS.with(|d| {
                d.borrow()
                    .iter()
                    .min_by_key(|d| (d.remaining, std::cmp::Reverse(d.reset_after)))
                    .copied()
            });
            (output, tightest)
        })
        .await
}
