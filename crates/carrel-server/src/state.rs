//! Shared application state handed to every handler.

use std::sync::Arc;

use carrel_core::Clock;
use carrel_core::lockout::LockoutPolicy;
use carrel_core::password_policy::PasswordPolicy;
use carrel_crypto::{JwtKeys, SecretsKey};
use carrel_mail::Mailer;
use carrel_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::circulation::payments::{KeyLocks, PaymentProvider};
use crate::config::Config;
use crate::limits::{LimitContext, RateLimits};
use crate::passwords::PasswordHasher;

/// Everything a handler may need; cheap to clone: one shared allocation
/// ([`AppParts`], reached through `Deref`), so the several clones each request
/// makes (the router, every stateful middleware, every `State` extractor) cost
/// one reference count each, not one per field, and the futures that hold a
/// clone stay small. Assigning a field of a clone (`DerefMut`) copies the parts
/// first, so it changes that clone only, as with a plain struct.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppParts {
        Arc::make_mut(&mut self.0)
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct AppParts {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<Clock>,
    pub metrics: PrometheusHandle,
    pub hasher: PasswordHasher,
    pub jwt: Arc<JwtKeys>,
    pub secrets: Arc<SecretsKey>,
    pub mailer: Mailer,
    pub password_policy: Arc<PasswordPolicy>,
    pub lockout: LockoutPolicy,
    pub limits: RateLimits,
    pub covers: carrel_media::CoverStore,
    /// Bounds concurrent image decoding (each can use a few hundred MB at the limit).
    pub image_slots: Arc<tokio::sync::Semaphore>,
    /// Takes online fine payments (`CARREL_PAYMENT_PROVIDER`); None refuses
    /// them. Desk payments (cash, card) never go through it.
    pub payments: Option<Arc<dyn PaymentProvider>>,
    /// Serialises concurrent requests with one idempotency key in this process.
    pub key_locks: KeyLocks,
    /// This process, as the holder of the background-job lease.
    pub instance_id: uuid::Uuid,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for AppParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl LimitContext for AppState {
    fn rate_limits(&self) -> &RateLimits {
        &self.limits
    }
    fn clock(&self) -> &Clock {
        &self.clock
    }
}
