//! Crate tests: outbox round trips, background delivery, retries and logging, SMTP against
//! a tiny in-process server on 127.0.0.1 (no other network traffic).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;

use crate::{Email, MailError, Mailer, SmtpSecurity, Transport, messages, read_outbox};

const FROM: &str = "Carrel <no-reply@localhost>";
/// Longer than 76 characters, with `=`, `-`, `_` and `?`: quoted-printable would break or
/// escape it.
const LONG_LINK: &str = "http://127.0.0.1:8080/verify-email?token=AbC-_123xyz_-AbC-_123xyz_-AbC-_123xyz_-AbC-_123xyz_-AbC-_123xyz&next=/account?tab=security";
const SHORT_DELAYS: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(30),
];
const FLUSH: Duration = Duration::from_secs(20);

fn outbox_mailer(dir: &Path) -> Mailer {
    Mailer::new(None, dir.to_path_buf(), FROM).unwrap()
}

fn smtp_mailer(url: &str) -> Mailer {
    Mailer::new(
        Some(&SecretString::from(url.to_owned())),
        "/nonexistent-unused".into(),
        FROM,
    )
    .unwrap()
    .with_retry_delays(SHORT_DELAYS)
}

fn raw_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- log capture

/// A minimal `tracing` subscriber recording events as "LEVEL field=value … message".
/// Installed per test thread with `set_default`; `#[tokio::test]` runs tasks on that thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.clone())
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn at(&self, level: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(level))
            .collect()
    }
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl tracing::Subscriber for Logs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = event.metadata().level().to_string();
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

// ---------------------------------------------------------------- fake SMTP server

/// A plaintext SMTP server on 127.0.0.1 that closes the first `drop_first` connections
/// right away and accepts every message on later ones. Returns the port, the number of
/// connections seen and the DATA payloads received.
fn fake_smtp(drop_first: usize) -> (u16, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(Mutex::new(Vec::new()));
    let (conns, msgs) = (Arc::clone(&connections), Arc::clone(&messages));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let n = conns.fetch_add(1, Ordering::SeqCst) + 1;
            if n <= drop_first {
                drop(stream);
                continue;
            }
            let msgs = Arc::clone(&msgs);
            std::thread::spawn(move || {
                let _ = smtp_session(stream, &msgs);
            });
        }
    });
    (port, connections, messages)
}

fn smtp_session(stream: TcpStream, messages: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 fake.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.to_ascii_uppercase();
        if command.starts_with("EHLO") {
            out.write_all(b"250-fake.test\r\n250 8BITMIME\r\n")?;
        } else if command.starts_with("DATA") {
            out.write_all(b"354 go ahead\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            messages.lock().unwrap().push(data);
            out.write_all(b"250 queued\r\n")?;
        } else if command.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------- Email, errors, config

#[test]
fn email_debug_hides_the_body() {
    let email = messages::verify_email("reader@example.org", LONG_LINK);
    let dbg = format!("{email:?}");
    assert!(dbg.contains("reader@example.org"), "{dbg}");
    assert!(dbg.contains("Confirm your email address"), "{dbg}");
    assert!(!dbg.contains("token"), "{dbg}");
    assert!(!dbg.contains("body"), "{dbg}");
}

#[test]
fn bad_from_address_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    for from in ["", "not an address", "Carrel <no-reply@>", "a@b@c"] {
        match Mailer::new(None, dir.path().into(), from) {
            Err(MailError::Config(_)) => {}
            other => panic!("{from:?}: expected Config error, got {other:?}"),
        }
    }
    let url = SecretString::from("smtps://user:hunter2-secret@mail.example.org".to_owned());
    match Mailer::new(Some(&url), dir.path().into(), "bad") {
        Err(MailError::Config(msg)) => assert!(!msg.contains("hunter2"), "{msg}"),
        other => panic!("expected Config error, got {other:?}"),
    }
}

#[test]
fn bad_smtp_url_is_a_config_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "smtp://user:hunter2-secret@mail.example.org:587?tls=none",
        "ftp://user:hunter2-secret@mail.example.org",
        "smtp://user:hunter2-secret@mail.example.org:notaport",
        "hunter2-secret",
    ] {
        let secret = SecretString::from(url.to_owned());
        match Mailer::new(Some(&secret), dir.path().into(), FROM) {
            Err(err @ MailError::Config(_)) => {
                let shown = format!("{err} / {err:?}");
                assert!(!shown.contains("hunter2"), "{url}: {shown}");
            }
            other => panic!("{url}: expected Config error, got {other:?}"),
        }
    }
}

#[test]
fn construction_and_kind_outside_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/outbox");
    let mailer = outbox_mailer(&nested);
    assert!(nested.is_dir(), "outbox directory is created");
    assert_eq!(mailer.kind(), "outbox");
    assert_eq!(mailer.outbox_dir(), Some(nested.as_path()));

    let secret = SecretString::from("smtp://user:hunter2-secret@mail.example.org".to_owned());
    let mailer = Mailer::new(Some(&secret), dir.path().join("unused"), FROM).unwrap();
    assert_eq!(mailer.kind(), "smtp");
    assert!(!dir.path().join("unused").exists());
    match mailer.transport() {
        Transport::Smtp(relay) => {
            assert_eq!(relay.security(), SmtpSecurity::StartTls);
            assert_eq!(relay.port(), 587);
        }
        Transport::Outbox(_) => panic!("expected SMTP"),
    }
    let dbg = format!("{mailer:?}");
    assert!(!dbg.contains("hunter2"), "{dbg}");
}

#[test]
fn send_later_outside_a_runtime_logs_and_drops() {
    let logs = Logs::default();
    let _guard = logs.install();
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    mailer.send_later(messages::verify_email("reader@example.org", LONG_LINK));
    assert_eq!(mailer.pending(), 0);
    assert!(raw_files(dir.path()).is_empty());
    let warns = logs.at("WARN");
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(warns[0].contains("example.org") && warns[0].contains("outside a tokio runtime"));
    assert!(!warns[0].contains("token"), "{warns:?}");
}

// ---------------------------------------------------------------- outbox

fn all_messages() -> Vec<(Email, Option<&'static str>)> {
    let to = "reader@example.org";
    vec![
        (messages::verify_email(to, LONG_LINK), Some(LONG_LINK)),
        (messages::password_reset(to, LONG_LINK, 30), Some(LONG_LINK)),
        (messages::invitation(to, LONG_LINK, 72), Some(LONG_LINK)),
        (messages::account_locked(to, "2030-01-02T03:04:05Z"), None),
        (
            messages::registration_attempt(to, LONG_LINK),
            Some(LONG_LINK),
        ),
        (
            messages::hold_ready(to, "Der Zauberberg — Thomas Mann", "2030-01-09"),
            None,
        ),
        (messages::due_soon(to, "Middlemarch", "2030-02-01"), None),
        (messages::overdue(to, "Middlemarch", "2030-02-01"), None),
    ]
}

#[tokio::test]
async fn every_message_round_trips_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    let all = all_messages();
    for (email, _) in &all {
        mailer.send(email).await.unwrap();
    }
    let read = read_outbox(dir.path()).unwrap();
    assert_eq!(read.len(), all.len());
    for ((email, link), got) in all.iter().zip(&read) {
        assert_eq!(got.to, email.to);
        assert_eq!(got.subject, email.subject);
        assert_eq!(got.body, email.body, "body survives byte for byte");
        assert!(got.body.starts_with("Hello,\n\n"), "{}", got.body);
        assert!(got.body.ends_with("\n\n— Carrel\n"), "{}", got.body);
        if let Some(link) = link {
            assert!(got.body.lines().any(|l| l == *link), "link on its own line");
            // And in the raw file too, intact on one line.
            let raw = std::fs::read_to_string(&got.path).unwrap();
            assert!(raw.contains(&format!("\r\n{link}\r\n")), "{raw}");
        }
        let name = got.path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with(".eml") && name.len() == 13 + 1 + 36 + 4,
            "{name}"
        );
    }
    // Texts that the spec requires.
    let body = |i: usize| read[i].body.clone();
    assert_eq!(read[0].subject, "Confirm your email address");
    assert!(body(1).contains("30 minutes") && body(1).contains("ignore"));
    assert_eq!(read[2].subject, "You have been invited to Carrel");
    assert!(body(2).contains("72 hours") && body(2).contains("set a password"));
    assert!(body(3).contains("2030-01-02T03:04:05Z") && body(3).contains("unlocks"));
    assert!(body(3).contains("failed sign-in"));
    assert!(body(4).contains("no new account was created"));
    assert!(body(5).contains("Der Zauberberg — Thomas Mann") && body(5).contains("2030-01-09"));
    assert!(body(7).contains("overdue"));
    assert_eq!(
        raw_files(dir.path())
            .iter()
            .filter(|n| n.ends_with(".tmp"))
            .count(),
        0
    );
}

#[tokio::test]
async fn outbox_file_has_headers_and_a_readable_body() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    let token_url = "http://127.0.0.1:8080/verify-email?token=AbC-_123";
    mailer
        .send(&messages::verify_email(
            "Ada Reader <ada@example.org>",
            LONG_LINK,
        ))
        .await
        .unwrap();
    mailer
        .send(&Email::new(
            "ada@example.org",
            "ascii",
            format!("see {token_url}\n"),
        ))
        .await
        .unwrap();
    let read = read_outbox(dir.path()).unwrap();
    let raw = std::fs::read_to_string(&read[0].path).unwrap();
    for header in [
        "From: Carrel <no-reply@localhost>\r\n",
        "To: \"Ada Reader\" <ada@example.org>\r\n",
        "Subject: Confirm your email address\r\n",
        "Date: ",
        "Message-ID: <",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: 8bit\r\n",
    ] {
        assert!(raw.contains(header), "missing {header:?} in\n{raw}");
    }
    assert!(
        raw.contains("@localhost>\r\n"),
        "Message-ID uses the from domain:\n{raw}"
    );
    assert!(raw.contains(LONG_LINK), "{raw}");
    assert!(!raw.contains("=3D"), "{raw}");
    assert_eq!(read[0].to, "\"Ada Reader\" <ada@example.org>");

    let raw = std::fs::read_to_string(&read[1].path).unwrap();
    assert!(raw.contains("Content-Transfer-Encoding: 7bit\r\n"), "{raw}");
    assert!(raw.contains(token_url), "{raw}");
    assert_eq!(read[1].body, format!("see {token_url}\n"));
}

#[tokio::test]
async fn non_ascii_subjects_and_very_long_lines_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    let subject = "Vormerkung abholbereit: „Der Zauberberg“ — Thomas Mann, Gesammelte Werke in dreizehn Bänden";
    // A line over 998 octets cannot be 7bit/8bit: quoted-printable, decoded by read_outbox.
    let long_line = format!("{}{LONG_LINK}\n", "x=".repeat(600));
    mailer
        .send(&Email::new("ada@example.org", subject, "Grüße\n"))
        .await
        .unwrap();
    mailer
        .send(&Email::new("ada@example.org", "long", long_line.clone()))
        .await
        .unwrap();
    let read = read_outbox(dir.path()).unwrap();
    assert_eq!(read[0].subject, subject);
    assert_eq!(read[0].body, "Grüße\n");
    let raw = std::fs::read_to_string(&read[1].path).unwrap();
    assert!(
        raw.contains("Content-Transfer-Encoding: quoted-printable"),
        "{raw}"
    );
    assert_eq!(read[1].body, long_line);
}

#[tokio::test]
async fn read_outbox_ignores_other_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0000000000000-x.eml.tmp"), "half a mess").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    std::fs::create_dir(dir.path().join("sub.eml")).unwrap();
    assert!(read_outbox(dir.path()).unwrap().is_empty());
    assert!(read_outbox(&dir.path().join("missing")).is_err());
}

#[tokio::test]
async fn bad_recipient_is_an_address_error() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    for to in ["", "nobody", "a@", "x <y>"] {
        match mailer.send(&Email::new(to, "s", "b")).await {
            Err(MailError::Address(_)) => {}
            other => panic!("{to:?}: expected Address error, got {other:?}"),
        }
    }
    assert!(raw_files(dir.path()).is_empty());
}

// ---------------------------------------------------------------- background queue

#[tokio::test]
async fn send_later_and_flush_deliver_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    let clone = mailer.clone();
    for i in 0..20 {
        clone.send_later(Email::new(
            format!("reader{i}@example.org"),
            format!("message {i}"),
            format!("body {i}\n"),
        ));
    }
    assert!(mailer.flush(FLUSH).await);
    assert_eq!(mailer.pending(), 0);
    let read = read_outbox(dir.path()).unwrap();
    let subjects: Vec<String> = read.iter().map(|m| m.subject.clone()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    assert_eq!(subjects, expected, "file names sort in queue order");
    // Flushing an idle mailer is immediate.
    assert!(mailer.flush(Duration::ZERO).await);
}

#[test]
fn send_later_works_on_a_multi_threaded_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        mailer.send_later(messages::password_reset("a@example.org", LONG_LINK, 15));
        assert!(mailer.flush(FLUSH).await);
    });
    drop(runtime);
    // The worker died with its runtime; a new runtime gets a new one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        mailer.send_later(messages::invitation("b@example.org", LONG_LINK, 1));
        assert!(mailer.flush(FLUSH).await);
    });
    let read = read_outbox(dir.path()).unwrap();
    assert_eq!(read.len(), 2);
    assert!(read[1].body.contains("1 hour."), "{}", read[1].body);
}

#[tokio::test]
async fn undeliverable_queued_mail_is_logged_without_retry() {
    let logs = Logs::default();
    let _guard = logs.install();
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path()).with_retry_delays(SHORT_DELAYS);
    mailer.send_later(Email::new("not an address", "hello", "secret-token"));
    assert!(mailer.flush(FLUSH).await);
    let warns = logs.at("WARN");
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(warns[0].contains("could not be built"), "{warns:?}");
    assert!(!logs.lines().iter().any(|l| l.contains("secret-token")));
}

#[tokio::test]
async fn full_queue_drops_with_a_warning() {
    let logs = Logs::default();
    let _guard = logs.install();
    // Nothing listens: every attempt fails at once; no retries.
    let mailer =
        smtp_mailer(&format!("smtp://127.0.0.1:{}", closed_port())).with_retry_delays(Vec::new());
    // On a current-thread runtime the worker cannot run before we yield: the queue fills.
    for i in 0..crate::QUEUE_CAPACITY + 3 {
        mailer.send_later(Email::new("a@example.org", format!("m{i}"), "b"));
    }
    assert_eq!(mailer.pending(), crate::QUEUE_CAPACITY);
    let full: Vec<String> = logs
        .at("WARN")
        .into_iter()
        .filter(|l| l.contains("queue is full"))
        .collect();
    assert_eq!(full.len(), 3, "{full:?}");
    assert!(mailer.flush(Duration::from_secs(60)).await);
}

// ---------------------------------------------------------------- SMTP

#[tokio::test]
async fn broken_smtp_target_is_retried_then_logged() {
    let logs = Logs::default();
    let _guard = logs.install();
    // Port 1: connection refused.
    let mailer = smtp_mailer("smtp://127.0.0.1:1");
    match mailer
        .send(&messages::verify_email("reader@example.org", LONG_LINK))
        .await
    {
        Err(MailError::Send(msg)) => assert!(msg.contains("127.0.0.1:1"), "{msg}"),
        other => panic!("expected Send error, got {other:?}"),
    }

    mailer.send_later(messages::password_reset(
        "reader@example.org",
        LONG_LINK,
        30,
    ));
    assert!(mailer.flush(FLUSH).await);
    let lines = logs.lines();
    assert!(!lines.iter().any(|l| l.contains("token=")), "{lines:?}");
    let retries = logs.at("INFO");
    assert_eq!(retries.len(), 3, "{lines:?}");
    let warns = logs.at("WARN");
    assert_eq!(warns.len(), 1, "{lines:?}");
    let warn = &warns[0];
    assert!(warn.contains("recipient_domain=example.org"), "{warn}");
    assert!(!warn.contains("reader@"), "{warn}");
    assert!(warn.contains("subject=Reset your password"), "{warn}");
    assert!(warn.contains("attempts=4"), "{warn}");
}

#[tokio::test]
async fn every_retry_is_a_new_connection_attempt() {
    let (port, connections, delivered) = fake_smtp(usize::MAX);
    let mailer = smtp_mailer(&format!("smtp://127.0.0.1:{port}"));
    mailer.send_later(messages::verify_email("reader@example.org", LONG_LINK));
    assert!(mailer.flush(FLUSH).await);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        4,
        "1 attempt + 3 retries"
    );
    assert!(delivered.lock().unwrap().is_empty());
}

#[tokio::test]
async fn smtp_delivery_to_a_local_server() {
    let (port, _, delivered) = fake_smtp(0);
    let mailer = smtp_mailer(&format!("smtp://localhost:{port}"));
    match mailer.transport() {
        Transport::Smtp(relay) => assert_eq!(relay.security(), SmtpSecurity::None),
        Transport::Outbox(_) => panic!("expected SMTP"),
    }
    mailer
        .send(&messages::verify_email("reader@example.org", LONG_LINK))
        .await
        .unwrap();
    let data = delivered.lock().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert!(
        data[0].contains("Subject: Confirm your email address\r\n"),
        "{}",
        data[0]
    );
    assert!(
        data[0].contains("To: reader@example.org\r\n"),
        "{}",
        data[0]
    );
}

#[tokio::test]
async fn queued_smtp_mail_survives_transient_failures() {
    let logs = Logs::default();
    let _guard = logs.install();
    // The first two connections are closed at once; the third attempt succeeds.
    let (port, connections, delivered) = fake_smtp(2);
    let mailer = smtp_mailer(&format!("smtp://127.0.0.1:{port}"));
    mailer.send_later(messages::account_locked(
        "reader@example.org",
        "2030-01-01T00:00:00Z",
    ));
    assert!(mailer.flush(FLUSH).await);
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    assert_eq!(delivered.lock().unwrap().len(), 1);
    assert_eq!(logs.at("INFO").len(), 2, "{:?}", logs.lines());
    assert!(logs.at("WARN").is_empty(), "{:?}", logs.lines());
}

#[tokio::test]
async fn starttls_is_required_with_credentials_even_on_loopback() {
    // The fake server does not offer STARTTLS: lettre must refuse to send the password.
    let (port, _, delivered) = fake_smtp(0);
    let mailer = smtp_mailer(&format!("smtp://user:hunter2-secret@127.0.0.1:{port}"));
    let err = mailer
        .send(&messages::verify_email("reader@example.org", LONG_LINK))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Send(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(delivered.lock().unwrap().is_empty());
}

#[tokio::test]
async fn security_mail_is_neither_dropped_nor_delayed_by_a_flood() {
    let logs = Logs::default();
    let _guard = logs.install();
    let dir = tempfile::tempdir().unwrap();
    let mailer = outbox_mailer(dir.path());
    // On a current-thread runtime the worker cannot run before we yield: the
    // normal lane fills up and drops the rest of the flood.
    for i in 0..crate::QUEUE_CAPACITY + 5 {
        mailer.send_later(Email::new("a@example.org", format!("flood {i}"), "b"));
    }
    mailer.send_later(messages::password_reset(
        "victim@example.org",
        LONG_LINK,
        30,
    ));
    mailer.send_later(messages::account_locked(
        "victim@example.org",
        "2030-01-01T00:00:00Z",
    ));
    assert_eq!(mailer.pending(), crate::QUEUE_CAPACITY + 2);
    let dropped = logs
        .at("WARN")
        .into_iter()
        .filter(|l| l.contains("queue is full"))
        .collect::<Vec<_>>();
    assert_eq!(dropped.len(), 5, "only the flood overflowed: {dropped:?}");
    assert!(dropped.iter().all(|l| l.contains("flood")), "{dropped:?}");
    assert!(mailer.flush(Duration::from_secs(60)).await);
    let read = read_outbox(dir.path()).unwrap();
    assert_eq!(read.len(), crate::QUEUE_CAPACITY + 2);
    // Served first, ahead of the whole flood.
    assert_eq!(read[0].subject, "Reset your password");
    assert_eq!(read[1].subject, "Your account was locked");
}

#[test]
fn security_messages_take_the_security_lane() {
    use crate::Priority;
    assert_eq!(
        messages::password_reset("a@example.org", LONG_LINK, 30).priority,
        Priority::Security
    );
    assert_eq!(
        messages::invitation("a@example.org", LONG_LINK, 1).priority,
        Priority::Security
    );
    assert_eq!(
        messages::account_locked("a@example.org", "2030-01-01T00:00:00Z").priority,
        Priority::Security
    );
    assert_eq!(
        messages::verify_email("a@example.org", LONG_LINK).priority,
        Priority::Normal
    );
    assert_eq!(
        messages::hold_ready("a@example.org", "T", "2030-01-01").priority,
        Priority::Normal
    );
}
