//! Taking money: the [`PaymentProvider`] interface, the manual provider used
//! until real card processing is connected, and the per-key serialisation of
//! idempotent payment requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use uuid::Uuid;

/// What the provider is asked to take.
#[derive(Debug, Clone)]
pub struct Charge<'a> {
    pub fine_id: Uuid,
    pub payer_id: Uuid,
    pub amount_cents: i64,
    pub currency: &'a str,
    /// `cash`, `card` or `online`.
    pub method: &'static str,
    /// The client's `Idempotency-Key`, passed on so a provider that supports
    /// keys (most card processors do) never charges twice either.
    pub idempotency_key: &'a str,
}

/// The provider's confirmation.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The provider's reference, stored with the payment.
    pub reference: String,
}

/// The provider declined or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment was declined")]
    Declined,
    #[error("the payment provider is unavailable")]
    Unavailable,
}

/// Takes payments. Object-safe, so the state holds whichever one is configured.
pub trait PaymentProvider: Send + Sync + std::fmt::Debug {
    /// Takes `charge`; called before the payment is recorded.
    fn charge<'a>(
        &'a self,
        charge: &'a Charge<'a>,
    ) -> BoxFuture<'a, Result<Receipt, ProviderError>>;

    /// Gives back a charge that could not be recorded (a concurrent payment
    /// settled the fine between the balance check and the write).
    fn refund<'a>(&'a self, receipt: &'a Receipt) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// Money taken at the desk (cash, a card terminal) or confirmed elsewhere:
/// nothing to call, the librarian's or patron's request is the record.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualProvider;

impl PaymentProvider for ManualProvider {
    fn charge<'a>(
        &'a self,
        charge: &'a Charge<'a>,
    ) -> BoxFuture<'a, Result<Receipt, ProviderError>> {
        Box::pin(async move {
            Ok(Receipt {
                reference: format!("manual-{}", charge.method),
            })
        })
    }

    fn refund<'a>(&'a self, _receipt: &'a Receipt) -> BoxFuture<'a, Result<(), ProviderError>> {
        // Nothing was taken by the system, so there is nothing to give back.
        Box::pin(async { Ok(()) })
    }
}

type KeyLock = tokio::sync::Mutex<()>;
type LockTable = HashMap<(Uuid, String), Weak<KeyLock>>;

/// One async lock per `(caller, idempotency key)` in this process, so
/// concurrent duplicates queue behind the first instead of each consuming the
/// caller's payment rate limit; the database key row still decides between
/// instances. Entries disappear with their last holder.
#[derive(Debug, Default, Clone)]
pub struct KeyLocks {
    locks: Arc<Mutex<LockTable>>,
}

impl KeyLocks {
    /// Waits for the lock of `(caller, key)`.
    pub async fn lock(&self, caller: Uuid, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, weak| weak.strong_count() > 0);
            let entry = locks.entry((caller, key.to_owned())).or_default();
            match entry.upgrade() {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(KeyLock::new(()));
                    *entry = Arc::downgrade(&lock);
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn key_locks_serialise_one_key_and_not_others() {
        let locks = KeyLocks::default();
        let caller = Uuid::now_v7();
        let first = locks.lock(caller, "k").await;
        // Another key is free.
        let _other = locks.lock(caller, "other").await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.lock(caller, "k").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the same key must wait");
        drop(first);
        let _second = tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
            .await
            .expect("released")
            .expect("task");
    }

    #[tokio::test]
    async fn manual_provider_records_the_method() {
        let receipt = ManualProvider
            .charge(&Charge {
                fine_id: Uuid::now_v7(),
                payer_id: Uuid::now_v7(),
                amount_cents: 100,
                currency: "USD",
                method: "cash",
                idempotency_key: "k",
            })
            .await
            .expect("manual payments always succeed");
        assert_eq!(receipt.reference, "manual-cash");
    }
}
