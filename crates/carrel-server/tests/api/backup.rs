//! `carrel backup` / `carrel restore` (SQLite), driven through the built binary
//! against a real server's database while that server takes writes.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carrel_core::roles::Role;
use carrel_store::Backend;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::desk::{Desk, LIBRARIAN};
use crate::helpers::{Spawn, TestApp};

async fn carrel(args: &[&str], env: &[(&str, String)], dir: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_carrel"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .expect("run carrel")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failed command with a one-line error containing `needle`.
fn assert_refused(output: &Output, needle: &str) {
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "must fail: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} in {stderr}");
}

/// A write the server acknowledged (answered with success).
#[derive(Debug, Clone, Copy)]
enum Ack {
    CheckedOut(Uuid),
    Returned(Uuid),
}

async fn sqlite_pool(file: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("open the database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_write_load_restores_every_acknowledged_write() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let desk = Desk::open(app).await;
    let config = desk.app.state.config.clone();
    const WRITERS: usize = 4;
    const COPIES: usize = 3;
    let mut patrons = Vec::new();
    for w in 0..WRITERS {
        patrons.push(desk.patron(&format!("reader{w}")).await.id);
        let barcodes: Vec<String> = (0..COPIES).map(|c| format!("W{w}-{c}")).collect();
        let refs: Vec<&str> = barcodes.iter().map(String::as_str).collect();
        desk.item(&format!("Volume {w}"), "book", &refs).await;
    }
    // A cover in the file store, to come back with the restore.
    let uploads = config
        .storage_url
        .strip_prefix("file://")
        .map(std::path::PathBuf::from)
        .expect("file:// storage in tests");
    std::fs::create_dir_all(&uploads).unwrap();
    let cover_name = format!("{}.jpg", Uuid::now_v7());
    std::fs::write(uploads.join(&cover_name), b"not really a jpeg").unwrap();

    // Writers: each lends and takes back its own copies as fast as it can and
    // records every acknowledged write.
    let token = desk.app.access_token(LIBRARIAN).await;
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, patron) in patrons.iter().copied().enumerate() {
        let (client, base, token) = (
            desk.app.client.clone(),
            desk.app.address.clone(),
            token.clone(),
        );
        let (acks, stop) = (acks.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            // Round r lends copy r % COPIES and takes back the one lent in round
            // r - 1, so open and returned loans are both in flight.
            let mut open: Vec<Option<Uuid>> = vec![None; COPIES];
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let (lend, back) = (round % COPIES, (round + COPIES - 1) % COPIES);
                round += 1;
                let response = client
                    .post(format!("{base}/api/v1/loans"))
                    .bearer_auth(&token)
                    .json(&json!({"copy_barcode": format!("W{w}-{lend}"), "user_id": patron}))
                    .send()
                    .await
                    .expect("checkout request");
                assert_eq!(response.status(), 201, "checkout of W{w}-{lend}");
                let loan: Value = response.json().await.unwrap();
                let id: Uuid = loan["id"].as_str().unwrap().parse().unwrap();
                open[lend] = Some(id);
                acks.lock().unwrap().push(Ack::CheckedOut(id));
                if let Some(id) = open[back].take() {
                    let response = client
                        .post(format!("{base}/api/v1/loans/return"))
                        .bearer_auth(&token)
                        .json(&json!({"copy_barcode": format!("W{w}-{back}")}))
                        .send()
                        .await
                        .expect("return request");
                    assert_eq!(response.status(), 200, "return of W{w}-{back}");
                    acks.lock().unwrap().push(Ack::Returned(id));
                }
            }
        }));
    }
    // Let the load build up, then back up while it goes on.
    while acks.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let backup_dir = tempfile::tempdir().unwrap();
    let bundle = backup_dir.path().join("carrel-backup.tar");
    let env = vec![
        ("CARREL_ENV", "test".to_owned()),
        ("CARREL_DATA_DIR", config.data_dir.display().to_string()),
        ("CARREL_DATABASE_URL", desk.app.db.url().to_owned()),
    ];
    let before: Vec<Ack> = acks.lock().unwrap().clone();
    let started = Instant::now();
    let output = carrel(
        &["backup", bundle.to_str().unwrap()],
        &env,
        backup_dir.path(),
    )
    .await;
    let took = started.elapsed();
    let during = acks.lock().unwrap().len() - before.len();
    assert!(output.status.success(), "backup: {}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("backup written to"),
        "{}",
        text(&output.stdout)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(
        during > 0,
        "writes must go on while the backup runs ({took:?})"
    );
    let written_after = acks.lock().unwrap().len() - before.len();
    assert!(written_after > during);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&bundle).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the bundle holds keys: owner only");
    }

    // Restore into an empty data dir.
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    let restore_env = vec![
        ("CARREL_ENV", "test".to_owned()),
        ("CARREL_DATA_DIR", data.display().to_string()),
    ];
    let output = carrel(
        &["restore", bundle.to_str().unwrap()],
        &restore_env,
        target.path(),
    )
    .await;
    assert!(output.status.success(), "restore: {}", text(&output.stderr));
    for key in ["jwt-ed25519.pem", "secrets.key"] {
        assert_eq!(
            std::fs::read(data.join(key)).unwrap(),
            std::fs::read(config.data_dir.join(key)).unwrap(),
            "{key} restored"
        );
    }
    assert_eq!(
        std::fs::read(data.join("uploads").join(&cover_name)).unwrap(),
        b"not really a jpeg"
    );
    // A second restore into the same dir is refused.
    let again = carrel(
        &["restore", bundle.to_str().unwrap()],
        &restore_env,
        target.path(),
    )
    .await;
    assert_refused(&again, "already holds a database");

    // The restored database on its own: sound, invariants hold, nothing
    // acknowledged before the backup started is missing.
    let restored_db = data.join("carrel.db");
    let pool = sqlite_pool(&restored_db).await;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let loans: HashMap<Uuid, String> =
        sqlx::query_as::<_, (Uuid, String)>("SELECT id, status FROM loans")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for ack in &before {
        match ack {
            Ack::CheckedOut(id) => {
                assert!(loans.contains_key(id), "acknowledged loan {id} is missing")
            }
            Ack::Returned(id) => assert_eq!(
                loans.get(id).map(String::as_str),
                Some("returned"),
                "acknowledged return of {id} is missing"
            ),
        }
    }
    let doubled: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT copy_id FROM loans WHERE status IN ('active', 'overdue') \
         GROUP BY copy_id HAVING COUNT(*) > 1)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "at most one open loan per copy");
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM copies c WHERE (c.status = 'on_loan') <> EXISTS \
         (SELECT 1 FROM loans l WHERE l.copy_id = c.id AND l.status IN ('active', 'overdue'))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        mismatched, 0,
        "a copy is on loan exactly when it has an open loan"
    );
    pool.close().await;

    // A server on the restored data dir: ready, the old access token still
    // verifies (same signing key, same session), and it takes new writes.
    let restored = TestApp::spawn_with(
        Backend::Sqlite,
        Spawn {
            env: vec![("CARREL_DATA_DIR", data.display().to_string())],
            database_url: Some(format!("sqlite://{}", restored_db.display())),
            ..Default::default()
        },
    )
    .await
    .expect("server on the restored data dir");
    assert_eq!(restored.get("/readiness").await.status(), 200);
    let listed = restored
        .authed(Method::GET, "/api/v1/loans?limit=100", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200, "a token issued before the backup");
    let fresh = restored.create_user("after_restore", Role::Patron).await;
    let copy = {
        let pool = sqlite_pool(&restored_db).await;
        let barcode: String =
            sqlx::query_scalar("SELECT barcode FROM copies WHERE status = 'available' LIMIT 1")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        barcode
    };
    let lent = restored
        .authed(Method::POST, "/api/v1/loans", &token)
        .json(&json!({"copy_barcode": copy, "user_id": fresh.id}))
        .send()
        .await
        .unwrap();
    assert_eq!(lent.status(), 201);
    println!(
        "backup took {took:?} with {during} writes acknowledged meanwhile; {} loans restored",
        loans.len()
    );
}

/// A migrated SQLite data dir made by `carrel migrate`; returns its env.
async fn migrated(dir: &Path) -> Vec<(&'static str, String)> {
    let env = vec![
        ("CARREL_ENV", "test".to_owned()),
        ("CARREL_DATA_DIR", dir.join("data").display().to_string()),
    ];
    let output = carrel(&["migrate"], &env, dir).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    env
}

#[tokio::test]
async fn backup_never_overwrites_and_restore_verifies_first() {
    let source = tempfile::tempdir().unwrap();
    let env = migrated(source.path()).await;
    let bundle = source.path().join("b.tar");
    let bundle_arg = bundle.to_str().unwrap();
    let output = carrel(&["backup", bundle_arg], &env, source.path()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let written = std::fs::read(&bundle).unwrap();

    // FILE exists: refused, and left as it was; no temp files remain.
    let output = carrel(&["backup", bundle_arg], &env, source.path()).await;
    assert_refused(&output, "refusing to overwrite");
    assert_eq!(std::fs::read(&bundle).unwrap(), written);
    let leftovers: Vec<_> = std::fs::read_dir(source.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".carrel-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The source's data dir still holds its database.
    let output = carrel(&["restore", bundle_arg], &env, source.path()).await;
    assert_refused(&output, "already holds a database");

    // A damaged database: refused before anything is written.
    let mut damaged = written.clone();
    let at = damaged
        .windows(16)
        .position(|w| w == b"SQLite format 3\0")
        .expect("the database in the bundle");
    damaged[at..at + 16].copy_from_slice(b"garbage garbage!");
    let damaged_file = source.path().join("damaged.tar");
    std::fs::write(&damaged_file, &damaged).unwrap();
    let target = tempfile::tempdir().unwrap();
    let target_env = vec![
        ("CARREL_ENV", "test".to_owned()),
        (
            "CARREL_DATA_DIR",
            target.path().join("data").display().to_string(),
        ),
    ];
    let output = carrel(
        &["restore", damaged_file.to_str().unwrap()],
        &target_env,
        target.path(),
    )
    .await;
    assert_refused(&output, "failed verification");
    assert!(!target.path().join("data/carrel.db").exists());
    assert!(!target.path().join("data/secrets.key").exists());

    // Not a backup at all.
    let output = carrel(
        &["restore", env!("CARGO_BIN_EXE_carrel")],
        &target_env,
        target.path(),
    )
    .await;
    assert_refused(&output, "not a carrel backup");

    // A schema newer than this binary knows: backed up, but not restored.
    let pool = sqlite_pool(&source.path().join("data/carrel.db")).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990001, 'from the future', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let newer = source.path().join("newer.tar");
    let output = carrel(&["backup", newer.to_str().unwrap()], &env, source.path()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = carrel(
        &["restore", newer.to_str().unwrap()],
        &target_env,
        target.path(),
    )
    .await;
    assert_refused(&output, "newer than this binary knows");
    assert!(!target.path().join("data/carrel.db").exists());

    // The good one restores.
    let output = carrel(&["restore", bundle_arg], &target_env, target.path()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(target.path().join("data/carrel.db").exists());
}

#[tokio::test]
async fn postgres_deployments_are_told_to_use_postgres_tools() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![(
        "CARREL_DATABASE_URL",
        "postgres://carrel:pg-secret@127.0.0.1:1/carrel".to_owned(),
    )];
    for command in ["backup", "restore"] {
        let output = carrel(&[command, "x.tar"], &env, dir.path()).await;
        assert_refused(&output, "pg_dump");
        assert!(!text(&output.stderr).contains("pg-secret"));
    }
    assert!(!dir.path().join("x.tar").exists());
}
