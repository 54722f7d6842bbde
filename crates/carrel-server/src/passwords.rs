//! Password hashing: Argon2id on a small pool of dedicated hashing threads.
//!
//! Hashing never runs on the async runtime, and at most `CARREL_HASH_CONCURRENCY`
//! hashes run at once (each needs ~19 MiB), so a login flood queues instead of
//! exhausting memory; a request that waits too long gets 503. There is one
//! hashing thread per slot, and each keeps its Argon2 working memory between
//! hashes: no 19 MiB allocation, zeroing and page faults per hash, and the
//! allocator cannot pile up freed buffers in per-thread arenas (resident memory
//! stays at about `slots × m_cost`). Unknown users are checked against a dummy
//! hash with the same parameters so that timing does not reveal which accounts
//! exist. Legacy bcrypt hashes (imported accounts) verify, and every hash that
//! is not Argon2id with the configured parameters is flagged for an upgrade at
//! the next successful login.
//!
//! Imported hashes of other kinds (bcrypt, Argon2 with other costs) take their
//! own time to check, so a wrong password against such an account would fail
//! slower than against an unknown name. Every *failed* check is therefore
//! padded (by sleeping, which costs no CPU and holds no hashing slot) to a
//! floor: 1.25 × the slowest such kind still stored, as measured on this
//! machine ([`PasswordHasher::calibrate`], fed by `auth::passwords::spawn_calibration` from the
//! database, and by every check of such a hash). Without legacy hashes the
//! floor is zero and nothing is padded.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

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

/// Work for a hashing thread, given that thread's Argon2 memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    /// One permit per hashing thread; a permit travels with its job and is
    /// released when the hash is done (not when a waiting request gives up).
    slots: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    dummy_hash: Arc<str>,
    /// [`MAX_WAIT`], shorter in tests.
    max_wait: Duration,
    /// Check time of each legacy hash kind still stored (its parameters →
    /// a moving average); failed checks are padded to the slowest.
    legacy_costs: Mutex<HashMap<String, Duration>>,
}

/// Failed checks take at least this multiple of the slowest legacy kind.
const PAD_MARGIN: f64 = 1.25;
/// Weight of a new measurement in a kind's moving average.
const COST_WEIGHT: f64 = 0.2;
/// A wrong password for calibration (never anyone's: it is public).
const CALIBRATION_PASSWORD: &[u8] = b"carrel timing calibration, never a real password";

/// The parameter part of a stored hash (`$2b$12$`, `$argon2id$v=19$m=…,t=…,p=…`):
/// hashes with the same one take the same time to check.
pub fn hash_kind(hash: &str) -> &str {
    if is_bcrypt(hash) {
        return hash.get(..7).unwrap_or(hash);
    }
    // PHC: `$alg$v=..$params$salt$hash`; drop the salt and the hash.
    match hash.rsplitn(3, '$').nth(2) {
        Some(kind) if !kind.is_empty() => kind,
        _ => hash,
    }
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

/// A hashing thread's Argon2 working memory, reused from one hash to the next.
struct Memory {
    blocks: Vec<Block>,
    /// The size for the configured parameters; anything above it (a stored hash
    /// with higher costs) is given back after that hash.
    keep: usize,
}

impl Memory {
    fn new(keep: usize) -> Self {
        Self {
            blocks: Vec::new(),
            keep,
        }
    }

    /// `count` blocks, allocated on first use. Argon2 overwrites every block
    /// before reading it, so stale contents from the previous hash do not matter.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::new());
        }
        &mut self.blocks[..count]
    }

    fn trim(&mut self) {
        if self.blocks.len() > self.keep {
            self.blocks.truncate(self.keep);
            self.blocks.shrink_to_fit();
        }
    }
}

/// Starts `count` hashing threads that take jobs from `jobs` until every
/// sender is gone (the hasher is dropped).
fn spawn_workers(count: usize, keep: usize, jobs: mpsc::Receiver<Job>) -> Result<(), HashError> {
    let jobs = Arc::new(Mutex::new(jobs));
    for i in 0..count {
        let jobs = jobs.clone();
        std::thread::Builder::new()
            .name(format!("carrel-hash-{i}"))
            .spawn(move || {
                let mut memory = Memory::new(keep);
                loop {
                    let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = job else { break };
                    // A panicking job must not take the thread (and its slot) with it;
                    // its caller sees the dropped reply as a failure.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                    memory.trim();
                }
            })
            .map_err(|e| HashError::Failed(format!("cannot start a hashing thread: {e}")))?;
    }
    Ok(())
}

impl PasswordHasher {
    /// Validates the parameters, computes the dummy hash (one hash, blocking:
    /// call at start-up) and starts `concurrency` hashing threads.
    pub fn new(config: Argon2Config, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(format!("invalid Argon2 parameters: {e}")))?;
        let keep = params.block_count();
        let dummy_hash = hash_password(
            &params,
            b"carrel timing-equaliser, never a real password",
            &mut Memory::new(0),
        )?;
        let concurrency = concurrency.max(1);
        let (jobs, receiver) = mpsc::channel();
        spawn_workers(concurrency, keep, receiver)?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                slots: Arc::new(Semaphore::new(concurrency)),
                jobs,
                dummy_hash: dummy_hash.into(),
                max_wait: MAX_WAIT,
                legacy_costs: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The parameter part of hashes made with the configured costs.
    pub fn current_kind(&self) -> String {
        let dummy = self.inner.dummy_hash.clone();
        hash_kind(&dummy).to_owned()
    }

    /// Whether `hash` is of a kind other than the configured Argon2id costs.
    fn is_legacy(&self, hash: &str) -> bool {
        hash_kind(hash) != hash_kind(&self.inner.dummy_hash)
    }

    fn costs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Duration>> {
        self.inner
            .legacy_costs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records how long checking a legacy hash of `kind` took.
    fn record_cost(&self, kind: &str, took: Duration) {
        let mut costs = self.costs();
        let average = costs.get(kind).map_or(took, |old| {
            old.mul_f64(1.0 - COST_WEIGHT) + took.mul_f64(COST_WEIGHT)
        });
        costs.insert(kind.to_owned(), average);
    }

    /// What a failed check is padded to: 1.25 × the slowest legacy kind.
    pub fn failure_floor(&self) -> Duration {
        self.costs()
            .values()
            .max()
            .map_or(Duration::ZERO, |slowest| slowest.mul_f64(PAD_MARGIN))
    }

    /// Measures one check of each sample hash (one per legacy kind still
    /// stored) and makes those the kinds whose cost failed checks are padded
    /// to; kinds no longer stored are forgotten.
    pub async fn calibrate(&self, samples: Vec<String>) -> Result<(), HashError> {
        let mut measured = HashMap::new();
        for sample in samples.into_iter().filter(|s| self.is_legacy(s)) {
            let params = self.inner.params.clone();
            let kind = hash_kind(&sample).to_owned();
            let took = self
                .run(move |memory| {
                    let start = Instant::now();
                    let _ = verify_stored(&params, CALIBRATION_PASSWORD, &sample, memory);
                    start.elapsed()
                })
                .await?;
            measured.insert(kind, took);
        }
        *self.costs() = measured;
        Ok(())
    }

    /// Runs `work` on a hashing thread once a slot is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit: OwnedSemaphorePermit = tokio::time::timeout(
            self.inner.max_wait,
            self.inner.slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| HashError::Busy)?
        .map_err(|_| HashError::Busy)?;
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let value = work(memory);
            drop(permit);
            let _ = reply.send(value);
        });
        self.inner
            .jobs
            .send(job)
            .map_err(|_| HashError::Failed("the hashing threads have stopped".into()))?;
        result
            .await
            .map_err(|_| HashError::Failed("the hashing task failed".into()))
    }

    /// A new Argon2id PHC string for `password` with a fresh random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        let params = self.inner.params.clone();
        self.run(move |memory| hash_password(&params, password.expose_secret().as_bytes(), memory))
            .await?
    }

    /// Checks `password` against `stored`; with `None` (unknown user, or an
    /// invited user without a password) a dummy hash is checked instead, so the
    /// work done is the same, and the result is always `Invalid`. A failed
    /// check returns no sooner than [`PasswordHasher::failure_floor`] after the
    /// hash started, whatever kind of hash it was.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<Verification, HashError> {
        let params = self.inner.params.clone();
        let dummy = self.inner.dummy_hash.clone();
        let legacy_kind = stored
            .as_deref()
            .filter(|hash| self.is_legacy(hash))
            .map(|hash| hash_kind(hash).to_owned());
        let (verification, took) = self
            .run(move |memory| {
                let start = Instant::now();
                let candidate = password.expose_secret().as_bytes();
                let verification = match stored {
                    Some(hash) => verify_stored(&params, candidate, &hash, memory),
                    None => {
                        let _ = verify_stored(&params, candidate, &dummy, memory);
                        Verification::Invalid
                    }
                };
                (verification, start.elapsed())
            })
            .await?;
        if let Some(kind) = legacy_kind {
            self.record_cost(&kind, took);
        }
        if verification == Verification::Invalid {
            let floor = self.failure_floor();
            if floor > took {
                tokio::time::sleep(floor - took).await;
            }
        }
        Ok(verification)
    }

    /// True if `password` matches any of `hashes` (password history); checks all
    /// of them so the time taken does not depend on which one matched.
    pub async fn matches_any(
        &self,
        password: SecretString,
        hashes: Vec<String>,
    ) -> Result<bool, HashError> {
        let params = self.inner.params.clone();
        self.run(move |memory| {
            let candidate = password.expose_secret().as_bytes();
            hashes.iter().fold(false, |found, hash| {
                verify_stored(&params, candidate, hash, memory).is_valid() | found
            })
        })
        .await
    }
}

/// An Argon2id PHC string of `password` with a fresh random salt, computed in `memory`.
fn hash_password(
    params: &Params,
    password: &[u8],
    memory: &mut Memory,
) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Failed(e.to_string());
    let salt = argon2::password_hash::generate_salt();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2(params.clone())
        .hash_password_into_with_memory(
            password,
            &salt,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// Recomputes an Argon2 PHC hash with the algorithm, version and costs it
/// records, in `memory`, and compares the outputs in constant time.
fn argon2_matches(parsed: &PasswordHash, password: &[u8], memory: &mut Memory) -> bool {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = memory.blocks(params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt.as_ref(), out, blocks)
        .is_ok()
        && carrel_crypto::constant_time_eq(out, expected.as_bytes())
}

fn verify_stored(
    current: &Params,
    password: &[u8],
    stored: &str,
    memory: &mut Memory,
) -> Verification {
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
    if !argon2_matches(&parsed, password, memory) {
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

    #[tokio::test]
    async fn interoperates_with_the_argon2_crate() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};

        let hasher = cheap();
        let ours = hasher.hash(secret("Interop-Pass-1!")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"Interop-Pass-1!", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"interop-pass-1!", &parsed)
                .is_err()
        );

        // Hashes made by the crate itself (other costs, argon2i) verify here,
        // through the reused memory, and ask for an upgrade.
        for (algorithm, m_cost) in [(Algorithm::Argon2id, 64), (Algorithm::Argon2i, 256)] {
            let params = Params::new(m_cost, 1, 1, None).unwrap();
            let theirs = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"Interop-Pass-2!")
                .unwrap()
                .to_string();
            assert_eq!(
                hasher
                    .verify(secret("Interop-Pass-2!"), Some(theirs.clone()))
                    .await
                    .unwrap(),
                Verification::Valid {
                    rehash: algorithm != Algorithm::Argon2id || m_cost != 64
                }
            );
            assert_eq!(
                hasher.verify(secret("nope"), Some(theirs)).await.unwrap(),
                Verification::Invalid
            );
        }
    }

    #[test]
    fn hash_kinds_name_the_parameters() {
        assert_eq!(hash_kind("$2b$12$abcdefghijklmnopqrstuv"), "$2b$12$");
        assert_eq!(
            hash_kind("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"),
            "$argon2id$v=19$m=64,t=1,p=1"
        );
        assert_eq!(hash_kind("garbage"), "garbage");
    }

    #[tokio::test]
    async fn failed_checks_are_padded_to_the_slowest_legacy_kind() {
        let hasher = cheap();
        assert_eq!(hasher.failure_floor(), Duration::ZERO, "nothing to pad to");
        let native = hasher.hash(secret("native-Pass-1!")).await.unwrap();
        // Native hashes are not a legacy kind: calibrating with one changes nothing.
        hasher.calibrate(vec![native.clone()]).await.unwrap();
        assert_eq!(hasher.failure_floor(), Duration::ZERO);

        let legacy = bcrypt::hash("legacy-Pass-1!", 6).unwrap();
        hasher
            .calibrate(vec![legacy.clone(), native.clone()])
            .await
            .unwrap();
        let floor = hasher.failure_floor();
        assert!(floor > Duration::ZERO);
        assert_eq!(
            hasher
                .verify(secret("wrong"), Some(legacy.clone()))
                .await
                .unwrap(),
            Verification::Invalid
        );
        // Unknown names and native accounts fail no faster than the floor.
        for stored in [None, Some(native.clone())] {
            let start = Instant::now();
            assert_eq!(
                hasher.verify(secret("wrong"), stored).await.unwrap(),
                Verification::Invalid
            );
            let took = start.elapsed();
            let floor_now = hasher.failure_floor();
            assert!(took >= floor_now, "{took:?} < {floor_now:?}");
        }
        // Right passwords are not padded (a kind that takes a second to check).
        hasher.record_cost("$2b$99$", Duration::from_secs(1));
        let start = Instant::now();
        assert!(
            hasher
                .verify(secret("native-Pass-1!"), Some(native.clone()))
                .await
                .unwrap()
                .is_valid()
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        let start = Instant::now();
        hasher.verify(secret("wrong"), Some(native)).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(1250));
        // Once the legacy kind is gone, nothing is padded.
        hasher.calibrate(Vec::new()).await.unwrap();
        assert_eq!(hasher.failure_floor(), Duration::ZERO);
    }

    #[test]
    fn memory_is_reused_and_trimmed_back_to_the_configured_size() {
        let mut memory = Memory::new(64);
        assert_eq!(memory.blocks(64).len(), 64);
        let first = memory.blocks.as_ptr();
        memory.trim();
        assert_eq!(memory.blocks(64).as_ptr(), first, "no new allocation");
        assert_eq!(memory.blocks(256).len(), 256);
        memory.trim();
        assert_eq!(memory.blocks.capacity(), 64);
    }

    #[test]
    fn invalid_parameters_are_refused_at_start_up() {
        // Argon2 needs at least 8 KiB per lane.
        let error = PasswordHasher::new(
            Argon2Config {
                memory_kib: 4,
                iterations: 1,
                parallelism: 1,
            },
            1,
        )
        .unwrap_err();
        assert!(
            matches!(&error, HashError::Failed(m) if m.contains("invalid Argon2 parameters")),
            "{error:?}"
        );
    }

    /// Occupies the hasher's only slot until the returned sender is used or dropped.
    async fn hold_the_only_slot(
        hasher: &PasswordHasher,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), HashError>>,
    ) {
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let holder = hasher.clone();
        let task = tokio::spawn(async move {
            holder
                .run(move |_| {
                    let _ = started.send(());
                    let _ = blocked.recv();
                })
                .await
        });
        running.await.unwrap();
        assert_eq!(hasher.inner.slots.available_permits(), 0);
        (release, task)
    }

    #[tokio::test]
    async fn a_request_that_waits_too_long_for_a_slot_is_busy() {
        let mut hasher = cheap_with(1);
        let wait = Duration::from_millis(300);
        Arc::get_mut(&mut hasher.inner).unwrap().max_wait = wait;
        let (release, holder) = hold_the_only_slot(&hasher).await;

        let waited = std::time::Instant::now();
        let outcome = hasher.verify(secret("pw"), None).await;
        assert!(matches!(outcome, Err(HashError::Busy)), "{outcome:?}");
        assert!(waited.elapsed() >= wait, "gave up only after the wait");

        // The slot comes back when the running hash ends, not when a waiter gives up.
        assert_eq!(hasher.inner.slots.available_permits(), 0);
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(hasher.inner.slots.available_permits(), 1);
        assert!(hasher.hash(secret("after-Busy-1!")).await.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_but_keeps_the_thread_and_slot() {
        let hasher = cheap_with(1);
        let boom: fn(&mut Memory) = |_| std::panic::panic_any("a bug in a hashing job");
        let outcome = hasher.run(boom).await;
        assert!(
            matches!(&outcome, Err(HashError::Failed(m)) if m.contains("hashing task failed")),
            "{outcome:?}"
        );
        assert_eq!(hasher.inner.slots.available_permits(), 1, "slot returned");
        // The single hashing thread is still serving.
        let hash = hasher.hash(secret("still-Alive-1!")).await.unwrap();
        assert!(
            hasher
                .verify(secret("still-Alive-1!"), Some(hash))
                .await
                .unwrap()
                .is_valid()
        );
    }

    #[tokio::test]
    async fn malformed_argon2_hashes_are_invalid_not_errors() {
        let hasher = cheap();
        let good = hasher.hash(secret("Form-Check-1!")).await.unwrap();
        let salt_and_hash = good.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let (hash_part, salt_part) = (salt_and_hash[0], salt_and_hash[1]);
        for stored in [
            // Not an Argon2 algorithm.
            format!("$argon2x$v=19$m=64,t=1,p=1${salt_part}${hash_part}"),
            // Unknown version.
            format!("$argon2id$v=7$m=64,t=1,p=1${salt_part}${hash_part}"),
            // Costs Argon2 refuses.
            format!("$argon2id$v=19$m=1,t=1,p=1${salt_part}${hash_part}"),
            // No hash output.
            format!("$argon2id$v=19$m=64,t=1,p=1${salt_part}"),
        ] {
            assert_eq!(
                hasher
                    .verify(secret("Form-Check-1!"), Some(stored.clone()))
                    .await
                    .unwrap(),
                Verification::Invalid,
                "{stored}"
            );
        }
        // The same password against the intact hash still verifies.
        assert!(
            hasher
                .verify(secret("Form-Check-1!"), Some(good.clone()))
                .await
                .unwrap()
                .is_valid()
        );
        assert!(is_supported_hash(&good));
        assert!(!is_supported_hash("$2b$04$too-short"));
        assert!(!is_supported_hash("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA"));
    }

    #[test]
    fn debug_shows_costs_only() {
        let text = format!("{:?}", cheap());
        assert!(
            text.contains("m_cost: 64") && text.contains("t_cost: 1"),
            "{text}"
        );
        assert!(!text.contains("dummy"), "{text}");
    }

    fn cheap_with(concurrency: usize) -> PasswordHasher {
        PasswordHasher::new(
            Argon2Config {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            concurrency,
        )
        .unwrap()
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
