//! The `carrel` binary: configuration errors, `config check`, `openapi`, `migrate`.

use std::process::{Command, Output};

fn carrel(args: &[&str], env: &[(&str, &str)]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_carrel"))
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run carrel");
    (output, dir)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_bad_value_fails_with_one_line_naming_the_variable() {
    for (var, value) in [
        ("CARREL_ACCESS_TOKEN_TTL", "fifteen"),
        ("CARREL_BIND", "not-an-address"),
        ("CARREL_DATABASE_URL", "mysql://root:hunter2@db/x"),
    ] {
        let (output, _dir) = carrel(&["config", "check"], &[(var, value)]);
        assert!(!output.status.success(), "{var}={value} must be refused");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(!stderr.contains("hunter2"), "no secret echoed: {stderr}");
    }
}

#[test]
fn production_refuses_to_start_with_unsafe_settings() {
    let (output, _dir) = carrel(&["serve"], &[("CARREL_ENV", "production")]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("refused in production"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn config_check_prints_settings_with_secrets_redacted() {
    let (output, _dir) = carrel(
        &["config", "check"],
        &[
            (
                "CARREL_DATABASE_URL",
                "postgres://carrel:pg-secret@db.internal:5432/carrel",
            ),
            (
                "CARREL_SMTP_URL",
                "smtp://mailer:smtp-secret@mail.internal:587",
            ),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("CARREL_BIND = 127.0.0.1:8080"), "{stdout}");
    assert!(
        stdout.contains("CARREL_DATABASE_URL = postgres://carrel:"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("pg-secret") && !stdout.contains("smtp-secret"),
        "{stdout}"
    );
}

#[test]
fn config_check_reads_carrel_toml_and_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("carrel.toml"), "max_active_loans = 4\n").unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "CARREL_HOLD_PICKUP_DAYS=9\nCARREL_MAX_ACTIVE_LOANS=1\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_carrel"))
        .args(["config", "check"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(stdout.contains("CARREL_MAX_ACTIVE_LOANS = 4"), "{stdout}");
    assert!(stdout.contains("CARREL_HOLD_PICKUP_DAYS = 9"), "{stdout}");
}

#[test]
fn openapi_prints_the_document() {
    let (output, _dir) = carrel(&["openapi"], &[]);
    assert!(output.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert!(doc["paths"]["/health"].is_object());
}

#[test]
fn migrate_creates_and_migrates_the_database() {
    let (output, dir) = carrel(&["migrate"], &[("CARREL_DATA_DIR", "./state")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("migrations applied"));
    assert!(dir.path().join("state/carrel.db").exists());
}

#[test]
fn help_lists_the_commands() {
    let (output, _dir) = carrel(&["--help"], &[]);
    let stdout = text(&output.stdout);
    for command in ["serve", "migrate", "config", "openapi"] {
        assert!(stdout.contains(command), "{stdout}");
    }
}
