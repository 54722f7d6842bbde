//! Taking money: the [`PaymentProvider`] interface (where a card processor
//! plugs in), the `test` provider, and the per-key serialisation of
//! idempotent payment requests.
//!
//! Online payments are never recorded on the client's word: the handler
//! charges the configured provider with the `payment_token` the provider's
//! client-side flow produced, and records the payment only once the provider
//! has approved the charge. Desk payments (`cash`, `card`) are recorded by
//! staff and never reach a provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use uuid::Uuid;

/// What the provider is asked to take.
#[derive(Clone)]
pub struct Charge<'a> {
    pub fine_id: Uuid,
    pub payer_id: Uuid,
    pub amount_cents: i64,
    pub currency: &'a str,
    /// What the provider's client-side flow (card form, wallet) produced; the
    /// provider turns it into money. Never logged.
    pub payment_token: &'a str,
    /// Derived from the caller, their `Idempotency-Key` and the request (64 hex
    /// characters, unique across callers), so that duplicates reaching several
    /// instances at once are charged once: the provider must return the first
    /// charge's receipt for a key it has seen.
    pub idempotency_key: &'a str,
}

impl std::fmt::Debug for Charge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Charge")
            .field("fine_id", &self.fine_id)
            .field("payer_id", &self.payer_id)
            .field("amount_cents", &self.amount_cents)
            .field("currency", &self.currency)
            .field("idempotency_key", &self.idempotency_key)
            .finish_non_exhaustive()
    }
}

/// The provider's confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's reference, stored with the payment.
    pub reference: String,
}

/// The provider declined or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The charge was refused (card declined, bad or used token): 402.
    #[error("the payment was declined")]
    Declined,
    /// The provider could not be reached or failed: 503, nothing recorded.
    #[error("the payment provider is unavailable")]
    Unavailable,
}

/// Takes online payments. Object-safe, so the state holds whichever one is
/// configured (`CARREL_PAYMENT_PROVIDER`). An adapter for a real processor
/// implements these two calls against the processor's API.
pub trait PaymentProvider: std::any::Any + Send + Sync + std::fmt::Debug {
    /// Takes `charge`; called before anything is recorded. A key seen before
    /// must return the earlier receipt without charging again, unless that
    /// charge was refunded: then it must decline ([`ProviderError::Declined`]),
    /// since a refunded receipt is no money and Carrel would record a payment
    /// on it (a retry after a payment that could not be recorded).
    fn charge<'a>(
        &'a self,
        charge: &'a Charge<'a>,
    ) -> BoxFuture<'a, Result<Receipt, ProviderError>>;

    /// Gives back a charge that could not be recorded (a concurrent payment
    /// settled the fine between the balance check and the write). May be
    /// called more than once for one receipt.
    fn refund<'a>(&'a self, receipt: &'a Receipt) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// The `test` provider's approving token.
pub const TEST_TOKEN_OK: &str = "tok_test_ok";
/// The `test` provider's declined token.
pub const TEST_TOKEN_DECLINED: &str = "tok_test_declined";
/// Makes the `test` provider answer as if it were down.
pub const TEST_TOKEN_UNAVAILABLE: &str = "tok_test_unavailable";

/// One charge the [`TestPaymentProvider`] took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCharge {
    pub idempotency_key: String,
    pub fine_id: Uuid,
    pub amount_cents: i64,
    pub reference: String,
    pub refunded: bool,
}

/// `CARREL_PAYMENT_PROVIDER=test` (only with `CARREL_ENV=test`): approves
/// [`TEST_TOKEN_OK`], declines [`TEST_TOKEN_DECLINED`] and every other token,
/// and is unavailable for [`TEST_TOKEN_UNAVAILABLE`]. It keeps its charges by
/// idempotency key, as a real processor does, so tests can count them.
#[derive(Debug, Default)]
pub struct TestPaymentProvider {
    charges: Mutex<Vec<TestCharge>>,
}

impl TestPaymentProvider {
    /// Every charge taken so far, in order.
    pub fn charges(&self) -> Vec<TestCharge> {
        self.charges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl PaymentProvider for TestPaymentProvider {
    fn charge<'a>(
        &'a self,
        charge: &'a Charge<'a>,
    ) -> BoxFuture<'a, Result<Receipt, ProviderError>> {
        Box::pin(async move {
            match charge.payment_token {
                TEST_TOKEN_OK => {}
                TEST_TOKEN_UNAVAILABLE => return Err(ProviderError::Unavailable),
                _ => return Err(ProviderError::Declined),
            }
            let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(seen) = charges
                .iter()
                .find(|c| c.idempotency_key == charge.idempotency_key)
            {
                if seen.refunded {
                    return Err(ProviderError::Declined);
                }
                return Ok(Receipt {
                    reference: seen.reference.clone(),
                });
            }
            let reference = format!("test_ch_{}", Uuid::now_v7().simple());
            charges.push(TestCharge {
                idempotency_key: charge.idempotency_key.to_owned(),
                fine_id: charge.fine_id,
                amount_cents: charge.amount_cents,
                reference: reference.clone(),
                refunded: false,
            });
            Ok(Receipt { reference })
        })
    }

    fn refund<'a>(&'a self, receipt: &'a Receipt) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
            for c in charges
                .iter_mut()
                .filter(|c| c.reference == receipt.reference)
            {
                c.refunded = true;
            }
            Ok(())
        })
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

    fn charge<'a>(key: &'a str, token: &'a str) -> Charge<'a> {
        Charge {
            fine_id: Uuid::nil(),
            payer_id: Uuid::nil(),
            amount_cents: 100,
            currency: "USD",
            payment_token: token,
            idempotency_key: key,
        }
    }

    #[tokio::test]
    async fn test_provider_approves_declines_and_charges_a_key_once() {
        let provider = TestPaymentProvider::default();
        let first = provider
            .charge(&charge("k1", TEST_TOKEN_OK))
            .await
            .expect("approved");
        let again = provider
            .charge(&charge("k1", TEST_TOKEN_OK))
            .await
            .expect("approved");
        assert_eq!(first, again, "one key, one charge");
        assert!(matches!(
            provider.charge(&charge("k2", TEST_TOKEN_DECLINED)).await,
            Err(ProviderError::Declined)
        ));
        assert!(matches!(
            provider.charge(&charge("k3", "tok_made_up")).await,
            Err(ProviderError::Declined)
        ));
        assert!(matches!(
            provider.charge(&charge("k4", TEST_TOKEN_UNAVAILABLE)).await,
            Err(ProviderError::Unavailable)
        ));
        assert_eq!(provider.charges().len(), 1);
        provider.refund(&first).await.expect("refund");
        provider
            .refund(&first)
            .await
            .expect("refunds are idempotent");
        assert!(provider.charges()[0].refunded);
    }

    #[test]
    fn charge_debug_hides_the_token() {
        let text = format!("{:?}", charge("k", "tok_secret_value"));
        assert!(!text.contains("tok_secret_value"), "{text}");
    }
}
