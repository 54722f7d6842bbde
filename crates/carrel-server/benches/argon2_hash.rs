//! How long one Argon2id hash takes at Carrel's default parameters
//! (m = 19456 KiB, t = 2, p = 1) on this machine, and the login throughput that
//! implies: the "hashing limit" = available cores / median time of one hash.
//!
//! Run with (release profile; `harness = false`, so no test framework):
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/bench-target nice -n 19 \
//!     cargo bench -p carrel-server --bench argon2_hash
//! ```
//!
//! Knobs: `ARGON2_BENCH_RUNS` (40 timed hashes), `ARGON2_BENCH_WARMUP` (3).
//! Every hash gets a fresh random salt, as a real password hash does. The hashes
//! run one at a time on one thread; a final, informational pass runs one hashing
//! thread per core at once, which shows whether the cores really scale (memory
//! bandwidth is shared).

use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};

const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
const PASSWORD: &[u8] = b"Bench-Pass-Phrase-2026";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("the default Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_once(argon2: &Argon2<'_>) -> Duration {
    let start = Instant::now();
    let hash = argon2
        .hash_password(black_box(PASSWORD))
        .expect("hashing succeeds");
    let elapsed = start.elapsed();
    black_box(hash);
    elapsed
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100); the median of an
/// even count is the mean of the two middle samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if (p - 50.0).abs() < f64::EPSILON && sorted.len().is_multiple_of(2) {
        let mid = sorted.len() / 2;
        return (sorted[mid - 1] + sorted[mid]) / 2;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn main() {
    let runs = env_usize("ARGON2_BENCH_RUNS", 40);
    let warmup = env_usize("ARGON2_BENCH_WARMUP", 3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let argon2 = hasher();

    for _ in 0..warmup {
        hash_once(&argon2);
    }
    let mut samples: Vec<Duration> = (0..runs).map(|_| hash_once(&argon2)).collect();
    samples.sort();
    let median = percentile(&samples, 50.0);
    let p90 = percentile(&samples, 90.0);
    let limit = cores as f64 / median.as_secs_f64();

    // Informational: one hashing thread per core, all at once.
    let per_thread = runs.div_ceil(cores).max(2);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                let argon2 = hasher();
                for _ in 0..per_thread {
                    hash_once(&argon2);
                }
            });
        }
    });
    let parallel = (cores * per_thread) as f64 / start.elapsed().as_secs_f64();

    println!(
        "argon2id m={MEMORY_KIB} KiB t={ITERATIONS} p={PARALLELISM}: {runs} hashes on one thread after {warmup} warm-up hashes"
    );
    println!("hash median:       {:.2} ms", ms(median));
    println!("hash p90:          {:.2} ms", ms(p90));
    println!(
        "hash min/max:      {:.2} / {:.2} ms",
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
    println!("hashing limit:     {limit:.1} logins/s ({cores} cores)");
    println!(
        "parallel hashing:  {parallel:.1} hashes/s ({cores} threads x {per_thread} hashes, informational)"
    );
}
