//! Password hashing: Argon2id on a bounded blocking pool.
//!
//! Hashing never runs on the async runtime, and at most `CARREL_HASH_CONCURRENCY`
//! hashes run at once (each takes ~19 MiB), so a login flood queues instead of
//! exhausting memory; a request that waits too long gets 503. Unknown users are
//! checked against a dummy hash with the same parameters so that timing does
//! not reveal which accounts exist. Legacy bcrypt hashes (imported accounts)
//! verify, and every hash that is not Argon2id with the configured parameters is
//! flagged for an upgrade at the next successful login.

use std::sync::Arc;
use std::time::Duration;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::Argon2Config;

/// How long a request may wait for a hashing slot before giving up with 503.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    /// Correct; `rehash` asks the caller to store a fresh hash with the current
    /// parameters (legacy bcrypt, other Argon2 variants or costs).
    Valid {
        rehash: bool,
    },
}

impl Verification {
    pub fn is_valid(self) -> bool {
        matches!(self, Verification::Valid { .. })
    }
}

/// Why hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot stayed busy for too long (maps to 503).
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    slots: Semaphore,
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.inner.params.m_cost())
            .field("t_cost", &self.inner.params.t_cost())
            .field("p_cost", &self.inner.params.p_cost())
            .finish_non_exhaustive()
    }
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    /// Validates the parameters and computes the dummy hash (one hash, blocking:
    /// call at start-up).
    pub fn new(config: Argon2Config, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(format!("invalid Argon2 parameters: {e}")))?;
        let dummy_hash = argon2(params.clone())
            .hash_password(b"carrel timing-equaliser, never a real password")
            .map_err(|e| HashError::Failed(e.to_string()))?
            .to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                slots: Semaphore::new(concurrency.max(1)),
                dummy_hash,
            }),
        })
    }

    /// Runs `work` on the blocking pool once a hashing slot is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = tokio::time::timeout(MAX_WAIT, self.inner.slots.acquire())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let inner = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| HashError::Failed(format!("hashing task failed: {e}")))?;
        drop(permit);
        Ok(result)
    }

    /// A new Argon2id PHC string for `password` with a fresh random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.run(move |inner| {
            argon2(inner.params.clone())
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError::Failed(e.to_string()))
        })
        .await?
    }

    /// Checks `password` against `stored`; with `None` (unknown user, or an
    /// invited user without a password) a dummy hash is checked instead, so the
    /// work done is the same, and the result is always `Invalid`.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verification, HashError> {
        self.run(move |inner| {
            let candidate = password.expose_secret().as_bytes();
            match stored {
                Some(hash) => verify_stored(&inner.params, candidate, &hash),
                None => {
                    let _ = argon2(inner.params.clone())
                        .verify_password(candidate, inner.dummy_hash.as_str());
                    Verification::Invalid
                }
            }
        })
        .await
    }

    /// True if `password` matches any of `hashes` (password history); checks all
    /// of them so the time taken does not depend on which one matched.
    pub async fn matches_any(
        &self,
        password: SecretString,
        hashes: Vec<String>,
    ) -> Result<bool, HashError> {
        self.run(move |inner| {
            let candidate = password.expose_secret().as_bytes();
            hashes.iter().fold(false, |found, hash| {
                verify_stored(&inner.params, candidate, hash).is_valid() | found
            })
        })
        .await
    }
}

fn verify_stored(current: &Params, password: &[u8], stored: &str) -> Verification {
    if is_bcrypt(stored) {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::Valid { rehash: true },
            _ => Verification::Invalid,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verification::Invalid;
    };
    // Verifies with the algorithm and costs recorded in the hash itself.
    if Argon2::default()
        .verify_password(password, &parsed)
        .is_err()
    {
        return Verification::Invalid;
    }
    let same_params = Params::try_from(&parsed).is_ok_and(|p| {
        p.m_cost() == current.m_cost()
            && p.t_cost() == current.t_cost()
            && p.p_cost() == current.p_cost()
    });
    let rehash =
        parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) || !same_params;
    Verification::Valid { rehash }
}

/// `$2a$`, `$2b$`, `$2x$` and `$2y$` are the bcrypt variants.
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

/// True for a hash this server can verify (Argon2 PHC string or bcrypt).
pub fn is_supported_hash(hash: &str) -> bool {
    is_bcrypt(hash) && hash.len() == 60
        || PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(
            Argon2Config {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            2,
        )
        .unwrap()
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = cheap();
        let hash = hasher.hash(secret("Tr0ub4dor&3-horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            hasher
                .verify(secret("Tr0ub4dor&3-horse"), Some(hash.clone()))
                .await
                .unwrap(),
            Verification::Valid { rehash: false }
        );
        assert_eq!(
            hasher.verify(secret("wrong"), Some(hash)).await.unwrap(),
            Verification::Invalid
        );
        assert_eq!(
            hasher.verify(secret("anything"), None).await.unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn other_parameters_and_bcrypt_ask_for_a_rehash() {
        let hasher = cheap();
        let stronger = PasswordHasher::new(
            Argon2Config {
                memory_kib: 128,
                iterations: 2,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        let old = stronger.hash(secret("pw-123-ABC-xyz")).await.unwrap();
        assert_eq!(
            hasher
                .verify(secret("pw-123-ABC-xyz"), Some(old))
                .await
                .unwrap(),
            Verification::Valid { rehash: true }
        );

        let legacy = bcrypt::hash("legacy-Pass-1!", 4).unwrap();
        assert!(legacy.starts_with("$2b$") && is_supported_hash(&legacy));
        assert_eq!(
            hasher
                .verify(secret("legacy-Pass-1!"), Some(legacy.clone()))
                .await
                .unwrap(),
            Verification::Valid { rehash: true }
        );
        assert_eq!(
            hasher.verify(secret("nope"), Some(legacy)).await.unwrap(),
            Verification::Invalid
        );
    }

    #[tokio::test]
    async fn garbage_hashes_never_verify() {
        let hasher = cheap();
        for stored in [
            "",
            "plaintext",
            "$2b$04$short",
            "$argon2id$v=19$m=64,t=1,p=1$bad",
        ] {
            assert_eq!(
                hasher
                    .verify(secret("plaintext"), Some(stored.into()))
                    .await
                    .unwrap(),
                Verification::Invalid
            );
        }
        assert!(!is_supported_hash("plaintext"));
    }

    #[tokio::test]
    async fn history_matching() {
        let hasher = cheap();
        let a = hasher.hash(secret("first-Pass-1!")).await.unwrap();
        let b = hasher.hash(secret("second-Pass-2!")).await.unwrap();
        assert!(
            hasher
                .matches_any(secret("second-Pass-2!"), vec![a.clone(), b.clone()])
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .matches_any(secret("third-Pass-3!"), vec![a, b])
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_is_bounded() {
        let hasher = PasswordHasher::new(
            Argon2Config {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash(secret(&format!("pw-{i}"))).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        assert_eq!(
            hasher.inner.slots.available_permits(),
            1,
            "every slot is returned"
        );
    }
}
