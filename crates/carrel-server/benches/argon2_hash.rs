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
//!
//! Every hash goes through the server's own [`PasswordHasher`] (its hashing
//! threads and their reused Argon2 memory) with a fresh random salt, as a login
//! does. First the hashes run one at a time (one slot): their median is the
//! figure the hashing limit is computed from. Then one slot per core hashes at
//! once, continuously, as under a login flood: that pass prints the hashes/s
//! the cores really deliver together and the median time of one hash while
//! they do (the cores share the last-level cache and memory bandwidth, so two
//! concurrent 19 MiB hashes need not run as fast as one alone).

use std::time::{Duration, Instant};

use carrel_server::config::Argon2Config;
use carrel_server::passwords::PasswordHasher;
use secrecy::SecretString;

const DEFAULTS: Argon2Config = Argon2Config::DEFAULT;
const PASSWORD: &str = "Bench-Pass-Phrase-2026";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
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

/// `count` hashes one after another on `hasher`, each timed.
async fn hash_in_sequence(hasher: &PasswordHasher, count: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let hash = hasher
            .hash(SecretString::from(PASSWORD))
            .await
            .expect("hashing succeeds");
        samples.push(start.elapsed());
        std::hint::black_box(hash);
    }
    samples
}

fn main() {
    let runs = env_usize("ARGON2_BENCH_RUNS", 40);
    let warmup = env_usize("ARGON2_BENCH_WARMUP", 3);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    // One slot: one hash at a time.
    let one = PasswordHasher::new(DEFAULTS, 1).expect("the default parameters are valid");
    let mut samples = runtime.block_on(async {
        hash_in_sequence(&one, warmup).await;
        hash_in_sequence(&one, runs).await
    });
    drop(one);
    samples.sort();
    let median = percentile(&samples, 50.0);
    let p90 = percentile(&samples, 90.0);
    let limit = cores as f64 / median.as_secs_f64();

    // One slot per core, every slot busy all the time.
    let per_slot = runs.div_ceil(cores).max(2);
    let all = PasswordHasher::new(DEFAULTS, cores).expect("the default parameters are valid");
    let (mut parallel_samples, elapsed) = runtime.block_on(async {
        let warm: Vec<_> = (0..cores)
            .map(|_| {
                let hasher = all.clone();
                tokio::spawn(async move { hash_in_sequence(&hasher, 1).await })
            })
            .collect();
        for task in warm {
            task.await.expect("a hashing task");
        }
        let start = Instant::now();
        let tasks: Vec<_> = (0..cores)
            .map(|_| {
                let hasher = all.clone();
                tokio::spawn(async move { hash_in_sequence(&hasher, per_slot).await })
            })
            .collect();
        let mut samples = Vec::new();
        for task in tasks {
            samples.extend(task.await.expect("a hashing task"));
        }
        (samples, start.elapsed())
    });
    parallel_samples.sort();
    let parallel = (cores * per_slot) as f64 / elapsed.as_secs_f64();
    let parallel_median = percentile(&parallel_samples, 50.0);

    println!(
        "argon2id m={} KiB t={} p={}: {runs} hashes through carrel's PasswordHasher, one at a time, after {warmup} warm-up hashes",
        DEFAULTS.memory_kib, DEFAULTS.iterations, DEFAULTS.parallelism
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
        "parallel hashing:  {parallel:.1} hashes/s ({cores} slots x {per_slot} hashes at once; median {:.2} ms per hash while they run)",
        ms(parallel_median)
    );
}
