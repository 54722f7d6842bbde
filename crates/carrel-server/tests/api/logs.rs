//! Nothing secret reaches a log line: a real `carrel serve` process with debug
//! JSON logs goes through register, verify, login, refresh, password change,
//! reset and logout, and its whole output is searched for every secret it saw.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const FIRST: &str = "Velvet-Thunder-Canyon-71";
const SECOND: &str = "Copper-Willow-Estuary-38";
const THIRD: &str = "Amber-Glacier-Falcon-64";

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("carrel.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_carrel"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("CARREL_ENV", "test")
        .env("CARREL_BIND", "127.0.0.1:0")
        .env("CARREL_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug,hyper=info,h2=info,reqwest=info")
        .env("CARREL_ARGON2_MEMORY_KIB", "64")
        .env("CARREL_ARGON2_ITERATIONS", "1")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let address = wait_for("the server to listen", || {
        let text = std::fs::read_to_string(&log_path).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|l| l["address"].as_str().map(str::to_owned))
    });
    let base = format!("http://{address}/api/v1");
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let outbox = dir.path().join("data/outbox");
    let mailed_token = |subject: &str| {
        let subject = subject.to_owned();
        let outbox = outbox.clone();
        wait_for("an email", move || {
            let mail = carrel_mail::read_outbox(&outbox)
                .ok()?
                .into_iter()
                .rev()
                .find(|m| m.subject.contains(&subject))?;
            let start = mail.body.find("token=")? + 6;
            Some(mail.body[start..].split_whitespace().next()?.to_owned())
        })
    };

    assert_eq!(
        post(
            "/auth/register",
            json!({"email": "quiet@example.org", "username": "quiet", "password": FIRST})
        )
        .await
        .unwrap()
        .status(),
        202
    );
    let verify_token = mailed_token("Confirm your email");
    assert_eq!(
        post("/auth/verify-email", json!({"token": verify_token}))
            .await
            .unwrap()
            .status(),
        200
    );
    post(
        "/auth/login",
        json!({"username": "quiet", "password": "Wrong-Guess-Password-1"}),
    )
    .await
    .unwrap();
    let tokens: Value = post(
        "/auth/login",
        json!({"username": "quiet", "password": FIRST}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refreshed: Value = post(
        "/auth/refresh",
        json!({"refresh_token": tokens["refresh_token"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = refreshed["access_token"].as_str().unwrap().to_owned();
    let response = client
        .post(format!("{base}/auth/password/change"))
        .bearer_auth(&access)
        .json(&json!({"current_password": FIRST, "new_password": SECOND}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    post(
        "/auth/password/forgot",
        json!({"email": "quiet@example.org"}),
    )
    .await
    .unwrap();
    let reset_token = mailed_token("Reset your password");
    assert_eq!(
        post(
            "/auth/password/reset",
            json!({"token": reset_token, "new_password": THIRD})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    let cookie_login = post(
        "/auth/login",
        json!({"username": "quiet", "password": THIRD, "use_cookies": true}),
    )
    .await
    .unwrap();
    let csrf = cookie_login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // SIGTERM, then read everything it wrote.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let _ = server.wait();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("request completed"),
        "request lines were logged"
    );
    assert!(text.contains("audit event"), "audit lines were logged");
    let secrets = [
        FIRST.to_owned(),
        SECOND.to_owned(),
        THIRD.to_owned(),
        "Wrong-Guess-Password-1".to_owned(),
        verify_token,
        reset_token,
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
        refreshed["refresh_token"].as_str().unwrap().to_owned(),
        access,
        csrf,
        "$argon2id$".to_owned(),
    ];
    for secret in secrets {
        assert!(
            !text.contains(&secret),
            "a secret reached the log: {}…",
            &secret[..8.min(secret.len())]
        );
    }
}
