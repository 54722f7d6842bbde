//! `carrel users import` and `carrel users create`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::helpers::{TestApp, backend_tests};

backend_tests!(import_keeps_legacy_hashes_and_reports_bad_rows);

async fn import_keeps_legacy_hashes_and_reports_bad_rows(app: TestApp) {
    let bcrypt_hash = bcrypt::hash("Legacy-Bcrypt-Pass-1", 4).unwrap();
    let argon_hash = app
        .state
        .hasher
        .hash(secrecy::SecretString::from(
            "Legacy-Argon-Pass-2".to_owned(),
        ))
        .await
        .unwrap();
    app.create_user("existing", carrel_core::roles::Role::Patron)
        .await;
    let csv = format!(
        "email,username,full_name,role,password_hash\n\
         one@example.org,one,\"One, Esq.\",patron,{bcrypt_hash}\n\
         two@example.org,two,Two,librarian,{argon_hash}\n\
         not-an-email,three,Three,patron,{bcrypt_hash}\n\
         four@example.org,one,Dup,patron,{bcrypt_hash}\n\
         five@example.org,five,Five,superuser,{bcrypt_hash}\n\
         six@example.org,six,Six,patron,plaintext-password\n\
         existing@example.org,seven,Seven,patron,{bcrypt_hash}\n"
    );
    let path = app.db.dir().join("users.csv");
    std::fs::write(&path, csv).unwrap();
    let report = carrel_server::cli::users::import(&app.state, &path)
        .await
        .unwrap();
    assert_eq!(report.imported, 2, "{report:?}");
    let lines: Vec<u64> = report.skipped.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8]);
    assert!(
        report
            .skipped
            .iter()
            .all(|(_, reason)| !reason.contains("plaintext-password")),
        "hashes are never echoed"
    );

    // Imported users are active and verified, keep their passwords, and get upgraded.
    assert_eq!(app.login("one", "Legacy-Bcrypt-Pass-1").await.status(), 200);
    assert_eq!(
        app.login("two@example.org", "Legacy-Argon-Pass-2")
            .await
            .status(),
        200
    );
    let one = app
        .state
        .store
        .find_user_by_login("one")
        .await
        .unwrap()
        .unwrap();
    assert!(one.password_hash.unwrap().starts_with("$argon2id$"));
    assert_eq!(one.full_name.as_deref(), Some("One, Esq."));
    let two = app
        .state
        .store
        .find_user_by_login("two")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(two.role, carrel_core::roles::Role::Librarian);
}

fn carrel(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carrel"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("CARREL_ARGON2_MEMORY_KIB", "64")
        .env("CARREL_ARGON2_ITERATIONS", "1")
        .env("CARREL_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn users_create_reads_the_password_from_stdin_and_checks_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let ok = carrel(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "root@example.org",
            "--username",
            "root",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "Sturdy-Oak-Password-9\n",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("created admin root"));

    let weak = carrel(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "w@example.org",
            "--username",
            "weak",
            "--password-stdin",
        ],
        "Password1!\n",
    );
    assert!(!weak.status.success());
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(stderr.contains("too easy to guess"), "{stderr}");
    assert!(
        !stderr.contains("Password1!"),
        "the password is never echoed"
    );

    let taken = carrel(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "root@example.org",
            "--username",
            "other",
            "--password-stdin",
        ],
        "Sturdy-Oak-Password-9\n",
    );
    assert!(!taken.status.success());

    let no_flag = carrel(
        dir.path(),
        &[
            "users",
            "create",
            "--email",
            "x@example.org",
            "--username",
            "x",
        ],
        "",
    );
    assert!(!no_flag.status.success(), "--password-stdin is required");
}

#[test]
fn users_import_prints_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("Legacy-Bcrypt-Pass-1", 4).unwrap();
    std::fs::write(dir.path().join("in.csv"), format!("email,username,full_name,role,password_hash\na@example.org,aaa,A,patron,{hash}\nbad,bbb,B,patron,{hash}\n")).unwrap();
    let out = carrel(dir.path(), &["users", "import", "in.csv"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("line 3: skipped: email"), "{stdout}");
    assert!(
        stdout.contains("imported 1 accounts, skipped 1"),
        "{stdout}"
    );
    let missing = carrel(dir.path(), &["users", "import", "nope.csv"], "");
    assert!(!missing.status.success());
}
