//! How long a login with a wrong password takes, by kind of account: an unknown
//! name, a native account (Argon2id at the configured costs), and accounts
//! imported with legacy hashes of other costs that have not logged in yet
//! (bcrypt cost 12, Argon2id m=47104 KiB t=1). Whether these differ is what
//! tells an attacker that a name exists.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/targets/<you> nice -n 19 \
//!     cargo bench -p carrel-server --bench login_timing
//! ```
//!
//! A real server (default Argon2 costs and hashing slots, SQLite in a temp dir,
//! rate limits off, lockout threshold 1000 so every attempt verifies) on
//! 127.0.0.1, driven over HTTP one request at a time. The kinds take turns, so
//! drift of the machine's speed affects all alike. Prints the median and the
//! 90th percentile per kind. Knobs: `LOGIN_TIMING_RUNS` (60 per kind),
//! `LOGIN_TIMING_WARMUP` (5 per kind).

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
use carrel_core::Clock;
use carrel_core::roles::Role;
use carrel_server::config::Config;
use carrel_server::{accounts, startup};
use carrel_store::NewUser;
use secrecy::SecretString;

const PASSWORD: &str = "Bench-Pass-Phrase-2026!";
const WRONG: &str = "Not-The-Password-2026!";

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if (p - 50.0).abs() < f64::EPSILON && sorted.len().is_multiple_of(2) {
        let mid = sorted.len() / 2;
        return (sorted[mid - 1] + sorted[mid]) / 2;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn legacy_argon2() -> String {
    let params = Params::new(47_104, 1, 1, None).expect("valid parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes())
        .expect("hash")
        .to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = env_usize("LOGIN_TIMING_RUNS", 60);
    let warmup = env_usize("LOGIN_TIMING_WARMUP", 5);
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().display().to_string();
    let db = format!("sqlite://{}/carrel.db", data_dir);
    let vars = [
        ("CARREL_ENV", "development"),
        ("CARREL_DATA_DIR", data_dir.as_str()),
        ("CARREL_DATABASE_URL", db.as_str()),
        ("CARREL_RATE_LIMITS_ENABLED", "false"),
        ("CARREL_LOCKOUT_THRESHOLD", "1000"),
    ];
    let config = Config::from_pairs(vars).expect("configuration");
    let state = startup::build_state(config, Arc::new(Clock::default()))
        .await
        .expect("state");

    accounts::create_account(
        &state,
        accounts::NewAccount {
            email: "native@example.org".into(),
            username: "native".into(),
            full_name: None,
            role: Role::Patron,
            password: Some(SecretString::from(PASSWORD)),
            email_verified: true,
            card_number: None,
            category: None,
        },
    )
    .await
    .expect("native account");
    let bcrypt_hash = bcrypt::hash(PASSWORD, 12).expect("bcrypt");
    let argon_hash = legacy_argon2();
    assert!(PasswordHash::new(&argon_hash).is_ok());
    for (name, hash) in [
        ("imported_bcrypt", bcrypt_hash),
        ("imported_argon2", argon_hash),
    ] {
        state
            .store
            .create_user(&NewUser {
                id: uuid::Uuid::now_v7(),
                email: format!("{name}@example.org"),
                email_key: format!("{name}@example.org"),
                username: name.into(),
                username_key: name.into(),
                full_name: None,
                role: carrel_core::roles::Role::Patron,
                password_hash: Some(hash),
                email_verified: true,
                card_number: None,
                category: None,
                now: time::OffsetDateTime::now_utc()
                    .replace_nanosecond(0)
                    .expect("ns"),
            })
            .await
            .expect("imported account");
    }
    // The server as `carrel serve` runs it (background tasks included, if any).
    let router = startup::router(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(startup::serve(listener, router, std::future::pending()));
    // Give start-up work (if any) a moment to settle.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let client = reqwest::Client::new();
    let url = format!("http://{address}/api/v1/auth/login");
    let kinds = [
        "unknown_name",
        "native",
        "imported_bcrypt",
        "imported_argon2",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    for round in 0..warmup + runs {
        for (i, kind) in kinds.iter().enumerate() {
            let start = Instant::now();
            let response = client
                .post(&url)
                .json(&serde_json::json!({"username": kind, "password": WRONG}))
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            let took = start.elapsed();
            assert_eq!(status, 401, "{kind}: every login here must fail");
            if round >= warmup {
                samples[i].push(took);
            }
        }
    }
    println!("wrong-password login latency, {runs} sequential requests per kind");
    for (kind, mut s) in kinds.iter().zip(samples) {
        s.sort();
        println!(
            "{kind:<16} median {:>8.2} ms   p90 {:>8.2} ms",
            ms(percentile(&s, 50.0)),
            ms(percentile(&s, 90.0))
        );
    }
}
