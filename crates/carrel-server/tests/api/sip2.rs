//! SIP2 over a real TCP connection to a real server, on both backends.

use std::time::Duration;

use carrel_sip2::Encoding;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::desk::{Desk, LIBRARIAN};
use crate::helpers::{Spawn, TestApp};

/// Runs each named `async fn(Desk)` once per backend with a SIP2 listener and `env`.
macro_rules! sip2_tests {
    ($env:expr => $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let Some(desk) = super::open(carrel_store::Backend::Sqlite, $env).await else { return };
                super::$name(desk).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(desk) = super::open(carrel_store::Backend::Postgres, $env).await else { return };
                super::$name(desk).await;
            }
        }
    )*};
}

sip2_tests!(Vec::new() =>
    login_comes_first,
    every_message_pair,
    checksums_are_checked_and_echoed,
    empty_and_wrong_pins_are_refused_and_lock_the_pin,
    blocked_patron_is_refused_with_the_reason,
    the_rule_matrix_applies_at_the_kiosk,
    the_patron_category_limits_show_at_the_kiosk,
    checkin_that_fills_a_hold_alerts,
    checkins_at_another_branch_alert_transit,
    fee_paid_records_a_desk_payment,
    garbage_oversized_and_half_sent_messages_leave_the_server_healthy,
    shutdown_finishes_and_closes_connections,
    pypi_client_interop,
);
sip2_tests!(Vec::new() =>
    a_remembered_pin_never_outlives_a_lock_or_a_change,
    summary_lists_and_their_bp_bq_window,
    a_legacy_pin_hash_is_upgraded_by_the_first_valid_pin,
);
sip2_tests!(vec![("CARREL_SIP2_ENCODING", "cp850".to_owned())] => diacritics_in_cp850);
sip2_tests!(vec![("CARREL_SIP2_ENCODING", "latin1".to_owned())] => diacritics_in_latin1);
sip2_tests!(vec![("CARREL_SIP2_ENCODING", "utf-8".to_owned())] => diacritics_in_utf8);
sip2_tests!(vec![("CARREL_SIP2_IDLE_TIMEOUT", "1s".to_owned())] => idle_connections_are_closed);
sip2_tests!(vec![("CARREL_SIP2_MAX_CONNECTIONS", "2".to_owned())] => connections_beyond_the_cap_are_closed);
sip2_tests!(vec![("CARREL_RATE_LIMITS_ENABLED", "true".to_owned()), ("CARREL_RATE_LIMIT_SIP2_LOGIN", "3/min".to_owned()),
    ("CARREL_RATE_LIMIT_LOGIN", "1000/min".to_owned()), ("CARREL_RATE_LIMIT_GLOBAL", "10000/min".to_owned())]
    => failed_logins_are_rate_limited_per_address);
sip2_tests!(super::tls_env("30s") =>
    tls_login_checkout_and_checkin,
    plaintext_client_is_refused_by_the_tls_listener,
);
sip2_tests!(super::tls_env("1s") => stalled_tls_handshake_is_closed_by_the_idle_timeout);

pub const TERMINAL: &str = "kiosk-1";
pub const TERMINAL_PASSWORD: &str = "kiosk-secret-42";
/// A transaction date (the server does not read it).
pub const DATE: &str = "20260301    120000";

/// A desk with a terminal account, a patron `ann` (card ANN-1, PIN 2468, name
/// with diacritics) and the item "Éloïse à Paris" with copies C-1..C-3.
async fn open(backend: carrel_store::Backend, env: Vec<(&'static str, String)>) -> Option<Desk> {
    let mut env = env;
    env.push(("CARREL_SIP2_BIND", "127.0.0.1:0".to_owned()));
    let app = TestApp::spawn_with(
        backend,
        Spawn {
            env,
            sip2: true,
            ..Default::default()
        },
    )
    .await?;
    carrel_server::sip2::terminals::add(
        &app.state,
        TERMINAL,
        "main-lib",
        Some("MAIN"),
        secrecy::SecretString::from(TERMINAL_PASSWORD.to_owned()),
    )
    .await
    .expect("terminal account");
    let desk = Desk::open(app).await;
    patron(&desk, "ann", "ANN-1", "2468", "Zoë Ñúñez").await;
    desk.item("Éloïse à Paris", "book", &["C-1", "C-2", "C-3"])
        .await;
    Some(desk)
}

/// A patron with a card, a PIN and a full name.
pub async fn patron(desk: &Desk, username: &str, card: &str, pin: &str, name: &str) -> uuid::Uuid {
    let user = desk.patron(username).await;
    let r = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{}", user.id))
        .await
        .json(&json!({"card_number": card, "full_name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = desk
        .staff(Method::PUT, &format!("/api/v1/users/{}/pin", user.id))
        .await
        .json(&json!({"pin": pin}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    user.id
}

/// The test certificates (tests/fixtures/sip2-tls: a throwaway CA and a
/// `localhost` certificate it signed).
fn tls_fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/sip2-tls/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A TLS listener with `idle` as `CARREL_SIP2_IDLE_TIMEOUT`.
fn tls_env(idle: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CARREL_SIP2_TLS_CERT_FILE", tls_fixture("server.pem")),
        ("CARREL_SIP2_TLS_KEY_FILE", tls_fixture("server.key")),
        ("CARREL_SIP2_IDLE_TIMEOUT", idle.to_owned()),
    ]
}

/// A byte stream: plain TCP or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw SIP2 connection.
pub struct Sip2Client {
    stream: Box<dyn Io>,
    buffer: Vec<u8>,
    encoding: Encoding,
}

impl Sip2Client {
    pub async fn connect(app: &TestApp) -> Self {
        let address = app.sip2_address.expect("SIP2 listener");
        Self {
            stream: Box::new(TcpStream::connect(address).await.expect("connect")),
            buffer: Vec::new(),
            encoding: app.state.config.sip2.encoding,
        }
    }

    /// A TLS connection that verifies the server's certificate against the
    /// test CA, for the name `localhost`.
    pub async fn connect_tls(app: &TestApp) -> Self {
        use rustls_pki_types::pem::PemObject as _;
        use tokio_rustls::rustls;
        let address = app.sip2_address.expect("SIP2 listener");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(tls_fixture("ca.pem")).unwrap()
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = TcpStream::connect(address).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio::time::timeout(Duration::from_secs(20), connector.connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("TLS handshake");
        Self {
            stream: Box::new(tls),
            buffer: Vec::new(),
            encoding: app.state.config.sip2.encoding,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next message (without CR), or `None` when the server closed.
    pub async fn read(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buffer.iter().position(|&b| b == b'\r') {
                let message = self.buffer[..i].to_vec();
                self.buffer.drain(..=i);
                return Some(message);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
                .await
                .expect("answer in time")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `message` (encoded, CR added) and returns the decoded answer.
    pub async fn call(&mut self, message: &str) -> String {
        let mut bytes = self.encoding.encode(message);
        bytes.push(b'\r');
        self.send_raw(&bytes).await;
        let reply = self.read().await.expect("an answer");
        self.encoding.decode(&reply)
    }

    /// Whether the server closed the connection (EOF or reset within 20 s).
    pub async fn closed(&mut self) -> bool {
        self.read().await.is_none()
    }

    pub async fn login(&mut self) {
        let reply = self
            .call(&format!("9300CN{TERMINAL}|CO{TERMINAL_PASSWORD}|CPMAIN|"))
            .await;
        assert_eq!(reply, "941");
    }
}

/// The value of field `id` in a message, if present.
pub fn field<'a>(message: &'a str, id: &str) -> Option<&'a str> {
    // The first variable field follows the fixed fields without a separator.
    let mut parts = message.split('|');
    let first = parts.next().unwrap_or_default();
    first
        .find(id)
        .map(|i| &first[i + id.len()..])
        .or_else(|| parts.find_map(|part| part.strip_prefix(id)))
}

fn fields<'a>(message: &'a str, id: &str) -> Vec<&'a str> {
    message
        .split('|')
        .skip(1)
        .filter_map(|part| part.strip_prefix(id))
        .collect()
}

fn checkout(card: &str, pin: &str, barcode: &str) -> String {
    format!("11NN{DATE}{DATE}AOmain-lib|AA{card}|AB{barcode}|AC|AD{pin}|")
}

fn checkin(barcode: &str) -> String {
    format!("09N{DATE}{DATE}APMAIN|AOmain-lib|AB{barcode}|AC|")
}

fn patron_information(language: &str, card: &str, pin: &str, summary: &str) -> String {
    format!("63{language}{DATE}{summary}AOmain-lib|AA{card}|AD{pin}|")
}

async fn login_comes_first(desk: Desk) {
    // 99 is answered before login.
    let mut c = Sip2Client::connect(&desk.app).await;
    let status = c.call("9900302.00").await;
    assert!(status.starts_with("98YYYYNN"), "{status}");
    assert_eq!(field(&status, "BX"), Some("YYYNYYYYYYYNNNYY"));
    // Anything else closes the connection.
    c.send_raw(checkin("C-1").as_bytes()).await;
    c.send_raw(b"\r").await;
    assert!(c.closed().await);
    // A wrong password, an unknown login: 940, and the connection stays logged out.
    let mut c = Sip2Client::connect(&desk.app).await;
    assert_eq!(c.call(&format!("9300CN{TERMINAL}|COwrong|")).await, "940");
    assert_eq!(c.call("9300CNnobody|COwhatever|").await, "940");
    c.send_raw(format!("{}\r", checkin("C-1")).as_bytes()).await;
    assert!(c.closed().await);
    // The right one works.
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    let status = c.call("9900302.00").await;
    assert_eq!(field(&status, "AO"), Some("main-lib"));
}

async fn every_message_pair(desk: Desk) {
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    // 23/24: patron status.
    let status = c
        .call(&format!("23001{DATE}AOmain-lib|AAANN-1|AC|AD2468|"))
        .await;
    assert!(status.starts_with("24"), "{status}");
    assert_eq!(field(&status, "BL"), Some("Y"));
    assert_eq!(field(&status, "CQ"), Some("Y"));
    assert_eq!(field(&status, "AE"), Some("Zoë Ñúñez"));
    assert_eq!(field(&status, "BH"), Some("USD"));
    // 11/12: checkout.
    let out = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert!(out.starts_with("121NUY"), "{out}");
    assert_eq!(field(&out, "AJ"), Some("Éloïse à Paris"));
    assert_eq!(field(&out, "AB"), Some("C-1"));
    assert!(field(&out, "AH").is_some_and(|d| d.len() == 18), "{out}");
    assert!(
        field(&out, "AF").unwrap().starts_with("Checked out. Due "),
        "{out}"
    );
    // 97/96: resend gives the last answer byte for byte.
    assert_eq!(c.call("97").await, out);
    // 63/64: patron information with the charged items.
    let info = c
        .call(&patron_information("001", "ANN-1", "2468", "  Y       "))
        .await;
    assert!(info.starts_with("64"), "{info}");
    assert_eq!(&info[45..49], "0001", "charged items count: {info}");
    assert_eq!(fields(&info, "AU"), vec!["C-1"]);
    assert_eq!(field(&info, "BZ"), None);
    assert_eq!(field(&info, "CB"), Some("0010"));
    // 17/18: item information.
    let item = c.call(&format!("17{DATE}AOmain-lib|ABC-1|AC|")).await;
    assert!(item.starts_with("1804"), "charged: {item}");
    assert_eq!(field(&item, "AJ"), Some("Éloïse à Paris"));
    let unknown = c.call(&format!("17{DATE}AOmain-lib|ABNOPE|AC|")).await;
    assert!(unknown.starts_with("1801"), "{unknown}");
    // 29/30: renew.
    let renew = c
        .call(&format!("29NN{DATE}{DATE}AOmain-lib|AAANN-1|AD2468|ABC-1|"))
        .await;
    assert!(renew.starts_with("301Y"), "{renew}");
    // 65/66: renew all (C-1 again, within its limit of 3).
    let all = c.call(&format!("65{DATE}AOmain-lib|AAANN-1|AD2468|")).await;
    assert!(all.starts_with("661"), "{all}");
    assert_eq!(fields(&all, "BM"), vec!["C-1"]);
    // 09/10: checkin; a second checkin is refused with a message.
    let back = c.call(&checkin("C-1")).await;
    assert!(back.starts_with("101YUN"), "{back}");
    assert_eq!(field(&back, "AA"), Some("ANN-1"));
    assert!(field(&back, "CV").is_none());
    let again = c.call(&checkin("C-1")).await;
    assert!(again.starts_with("100"), "{again}");
    assert_eq!(field(&again, "AF"), Some("This item is not on loan."));
    // 35/36: end patron session.
    let end = c
        .call(&format!("35{DATE}AOmain-lib|AAANN-1|AC|AD2468|"))
        .await;
    assert!(end.starts_with("36Y"), "{end}");
    // Unknown and malformed messages after login: 96.
    assert_eq!(c.call("XX123").await, "96");
    assert_eq!(c.call("11").await, "96");

    // Audit: the terminal is the actor, over the sip2 channel.
    let terminal = desk
        .app
        .state
        .store
        .find_sip2_terminal(TERMINAL)
        .await
        .unwrap()
        .unwrap();
    for kind in ["loan.checked_out", "loan.renewed", "loan.returned"] {
        let events = desk.app.audit_events(kind).await;
        assert!(!events.is_empty(), "{kind}");
        for event in events {
            assert_eq!(event.actor_id, Some(terminal.id), "{kind}");
            assert_eq!(event.details["channel"], "sip2", "{kind}");
            assert_eq!(event.details["terminal"], TERMINAL, "{kind}");
        }
    }
    // Metrics.
    let metrics = desk.app.state.metrics.render();
    assert!(
        metrics.contains("sip2_messages_total{command=\"11\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("sip2_connections"), "{metrics}");
}

async fn checksums_are_checked_and_echoed(desk: Desk) {
    let mut c = Sip2Client::connect(&desk.app).await;
    let with_checksum = |body: &str| {
        let prefix = format!("{body}AY3AZ");
        let sum = carrel_sip2::checksum::checksum_hex(prefix.as_bytes());
        format!("{prefix}{}", String::from_utf8_lossy(&sum))
    };
    // A bad checksum is answered with 96, even before login.
    let login = with_checksum(&format!("9300CN{TERMINAL}|CO{TERMINAL_PASSWORD}|"));
    let mut bad = login.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    assert!(c.call(&bad).await.starts_with("96"));
    // A good one is answered with the same sequence number and a valid checksum.
    let reply = c.call(&login).await;
    assert!(reply.starts_with("941AY3AZ"), "{reply}");
    let (prefix, sum) = reply.split_at(reply.len() - 4);
    assert!(carrel_sip2::checksum::verify(
        prefix.as_bytes(),
        sum.as_bytes()
    ));
    let out = c
        .call(&with_checksum(&checkout("ANN-1", "2468", "C-2")))
        .await;
    assert!(out.starts_with("121") && out.contains("|AY3AZ"), "{out}");
}

async fn empty_and_wrong_pins_are_refused_and_lock_the_pin(desk: Desk) {
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    // Empty PIN: no checkout, invalid patron password.
    let out = c.call(&checkout("ANN-1", "", "C-1")).await;
    assert!(out.starts_with("120"), "{out}");
    assert_eq!(field(&out, "AF"), Some("Card or PIN not recognised."));
    let info = c
        .call(&patron_information("001", "ANN-1", "", "          "))
        .await;
    assert_eq!(
        (field(&info, "BL"), field(&info, "CQ")),
        (Some("Y"), Some("N"))
    );
    assert_eq!(
        field(&info, "AE"),
        Some(""),
        "no personal data without the PIN"
    );
    // An unknown card looks the same apart from BL.
    let unknown = c
        .call(&patron_information("001", "NOPE-9", "2468", "          "))
        .await;
    assert_eq!(
        (field(&unknown, "BL"), field(&unknown, "CQ")),
        (Some("N"), Some("N"))
    );
    assert_eq!(field(&unknown, "AF"), field(&info, "AF"));
    // Two empty PINs so far; three more wrong ones reach the threshold (5).
    for pin in ["0000", "1111", "2222"] {
        assert!(
            c.call(&checkout("ANN-1", pin, "C-1"))
                .await
                .starts_with("120")
        );
    }
    // Now locked: even the right PIN is refused.
    let locked = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert!(locked.starts_with("120"), "{locked}");
    assert_eq!(field(&locked, "AF"), Some("Card or PIN not recognised."));
    let ann = desk
        .app
        .state
        .store
        .find_user_by_card("ANN-1")
        .await
        .unwrap()
        .unwrap();
    let pin = desk
        .app
        .state
        .store
        .pin_failure_counter(ann.id)
        .await
        .unwrap();
    assert_eq!(pin.failed_attempts, 5);
    // The web account is not locked.
    assert_eq!(
        desk.app
            .login("ann", crate::helpers::PASSWORD)
            .await
            .status(),
        200
    );
    assert!(desk.app.audit_events("loan.checked_out").await.is_empty());
    // Neither PINs nor the terminal password reach the audit log.
    let all = desk
        .app
        .state
        .store
        .list_audit_events(&carrel_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    for event in all {
        let text = event.details.to_string();
        assert!(
            !text.contains("2468") && !text.contains(TERMINAL_PASSWORD),
            "{text}"
        );
    }
}

async fn blocked_patron_is_refused_with_the_reason(desk: Desk) {
    let ann = desk
        .app
        .state
        .store
        .find_user_by_card("ANN-1")
        .await
        .unwrap()
        .unwrap();
    desk.charge(ann.id, 1_250).await;
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    let out = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert!(out.starts_with("120"), "{out}");
    assert_eq!(
        field(&out, "AF"),
        Some("Your account is blocked: you owe USD 12.50. Please see staff.")
    );
    // In French when the patron's language is French.
    let info = c
        .call(&patron_information("002", "ANN-1", "2468", "   Y      "))
        .await;
    assert!(
        info.starts_with("64YY Y"),
        "charge and hold privileges denied: {info}"
    );
    assert_eq!(field(&info, "BV"), Some("12.50"));
    assert_eq!(fields(&info, "AV").len(), 1);
    let out = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert_eq!(
        field(&out, "AF"),
        Some("Votre compte est bloqué : vous devez USD 12.50. Adressez-vous au personnel.")
    );
    assert_eq!(
        desk.copy_status(desk_item(&desk).await, "C-1").await,
        "available"
    );
}

/// SIP2 checkout is the desk's checkout: the patron category's row of the
/// rule matrix (here at most one book per child) applies at the kiosk too.
async fn the_rule_matrix_applies_at_the_kiosk(desk: Desk) {
    let ann = desk
        .app
        .state
        .store
        .find_user_by_card("ANN-1")
        .await
        .unwrap()
        .unwrap();
    let r = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{}", ann.id))
        .await
        .json(&json!({"category": "child"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rule = |category: Option<&str>, max: Option<u32>| {
        json!({"branch_id": null, "patron_category": category, "item_type": null, "loan_days": 14,
            "max_renewals": 1, "daily_fine_cents": 0, "max_fine_cents": 0, "grace_days": 0,
            "replacement_cost_cents": 0, "max_loans_of_type": max, "holds_allowed": true})
    };
    let r = desk
        .as_user(crate::desk::ADMIN, Method::PUT, "/api/v1/circulation-rules")
        .await
        .json(&json!({"data": [rule(None, None), rule(Some("child"), Some(1))]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    let out = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert!(out.starts_with("121"), "{out}");
    let out = c.call(&checkout("ANN-1", "2468", "C-2")).await;
    assert!(out.starts_with("120"), "{out}");
    assert_eq!(
        field(&out, "AF"),
        Some("You have reached your loan limit for this kind of item.")
    );
    assert_eq!(
        desk.copy_status(desk_item(&desk).await, "C-2").await,
        "available"
    );
}

/// The kiosk's patron status and information tell the patron's own category
/// limits (here one loan, no hold), not the global ones: what checkout and a
/// hold would answer.
async fn the_patron_category_limits_show_at_the_kiosk(desk: Desk) {
    let r = desk
        .as_user(crate::desk::ADMIN, Method::POST, "/api/v1/patron-categories")
        .await
        .json(&json!({"code": "visitor", "name": "Visitor", "max_active_loans": 1, "max_active_holds": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let ann = desk
        .app
        .state
        .store
        .find_user_by_card("ANN-1")
        .await
        .unwrap()
        .unwrap();
    let status = format!("23001{DATE}AOmain-lib|AAANN-1|AC|AD2468|");
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    // An adult: the global limits (10 loans, 20 holds), nothing denied.
    let before = c.call(&status).await;
    assert!(before.starts_with("24              "), "{before}");
    let r = desk
        .staff(Method::PATCH, &format!("/api/v1/users/{}", ann.id))
        .await
        .json(&json!({"category": "visitor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A visitor with no loan yet may borrow one, but may place no hold.
    let fresh = c.call(&status).await;
    assert!(fresh.starts_with("24   Y          "), "{fresh}");
    let out = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert!(out.starts_with("121"), "{out}");
    // One loan: charge privileges denied, too many items charged.
    let full = c.call(&status).await;
    assert!(full.starts_with("24Y  Y Y        "), "{full}");
    let info = c
        .call(&patron_information("001", "ANN-1", "2468", "          "))
        .await;
    assert_eq!(field(&info, "CB"), Some("0001"), "{info}");
    let refused = c.call(&checkout("ANN-1", "2468", "C-2")).await;
    assert!(refused.starts_with("120"), "the checkout agrees: {refused}");
}

async fn desk_item(desk: &Desk) -> uuid::Uuid {
    let items = desk.get_json(LIBRARIAN, "/api/v1/items").await;
    items["data"][0]["id"].as_str().unwrap().parse().unwrap()
}

async fn checkin_that_fills_a_hold_alerts(desk: Desk) {
    let item = desk_item(&desk).await;
    patron(&desk, "bea", "BEA-7", "1357", "Béatrice Dupré").await;
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    for barcode in ["C-1", "C-2", "C-3"] {
        assert!(
            c.call(&checkout("ANN-1", "2468", barcode))
                .await
                .starts_with("121")
        );
    }
    assert_eq!(desk.place_hold("bea", item).await.status(), 201);
    let back = c.call(&checkin("C-2")).await;
    assert!(back.starts_with("101NUY"), "alert, no resensitize: {back}");
    assert_eq!(field(&back, "CV"), Some("01"));
    assert_eq!(field(&back, "CY"), Some("BEA-7"));
    assert_eq!(field(&back, "DA"), Some("Béatrice Dupré"));
    assert_eq!(desk.copy_status(item, "C-2").await, "on_hold_shelf");
    let ready = desk.app.audit_events("hold.ready").await;
    assert_eq!(ready[0].details["channel"], "sip2");
    // The held copy goes only to Bea.
    let refused = c.call(&checkout("ANN-1", "2468", "C-2")).await;
    assert_eq!(
        field(&refused, "AF"),
        Some("This item cannot be borrowed now.")
    );
    assert!(
        c.call(&checkout("BEA-7", "1357", "C-2"))
            .await
            .starts_with("121")
    );
    // An ordinary checkin has no alert.
    let plain = c.call(&checkin("C-3")).await;
    assert!(
        plain.starts_with("101YUN") && field(&plain, "CV").is_none(),
        "{plain}"
    );
}

/// A terminal at branch EAST: its checkouts count at EAST, and a checkin there
/// of MAIN's copy alerts CV 04 (send home) or, when it fills a hold picked up
/// at MAIN, CV 02 (send to the hold's branch); the copy is then in transit.
async fn checkins_at_another_branch_alert_transit(desk: Desk) {
    let item = desk_item(&desk).await;
    let east = desk
        .as_user(crate::desk::ADMIN, Method::POST, "/api/v1/branches")
        .await
        .json(&json!({"code": "EAST", "name": "East branch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(east.status(), 201);
    let east: Value = east.json().await.unwrap();
    // An account naming a branch that does not exist is refused.
    let unknown = carrel_server::sip2::terminals::add(
        &desk.app.state,
        "kiosk-nowhere",
        "main-lib",
        Some("NOWHERE"),
        secrecy::SecretString::from(TERMINAL_PASSWORD.to_owned()),
    )
    .await;
    assert!(unknown.is_err(), "a terminal at an unknown branch");
    carrel_server::sip2::terminals::add(
        &desk.app.state,
        "kiosk-east",
        "main-lib",
        Some("EAST"),
        secrecy::SecretString::from(TERMINAL_PASSWORD.to_owned()),
    )
    .await
    .expect("terminal account at EAST");
    let mut c = Sip2Client::connect(&desk.app).await;
    let reply = c
        .call(&format!("9300CNkiosk-east|CO{TERMINAL_PASSWORD}|CPEAST|"))
        .await;
    assert_eq!(reply, "941");

    // Checked out and back in at EAST: C-1 lives at MAIN, so it goes home.
    assert!(
        c.call(&checkout("ANN-1", "2468", "C-1"))
            .await
            .starts_with("121")
    );
    let loans = desk.get_json(LIBRARIAN, "/api/v1/loans").await;
    assert_eq!(loans["data"][0]["branch_id"], east["id"]);
    let back = c.call(&checkin("C-1")).await;
    assert!(back.starts_with("101"), "{back}");
    assert_eq!(field(&back, "CV"), Some("04"), "{back}");
    assert_eq!(desk.copy_status(item, "C-1").await, "in_transit");

    // Bea holds the item for pickup at MAIN (her default); the only copy out
    // comes back at EAST and must travel to MAIN for her.
    patron(&desk, "bea", "BEA-7", "1357", "Béatrice Dupré").await;
    for barcode in ["C-2", "C-3"] {
        assert!(
            c.call(&checkout("ANN-1", "2468", barcode))
                .await
                .starts_with("121")
        );
    }
    assert_eq!(desk.place_hold("bea", item).await.status(), 201);
    let back = c.call(&checkin("C-2")).await;
    assert!(back.starts_with("101"), "{back}");
    assert_eq!(field(&back, "CV"), Some("02"), "{back}");
    assert_eq!(field(&back, "CY"), Some("BEA-7"));
    assert_eq!(desk.copy_status(item, "C-2").await, "in_transit");
    let transits = desk.app.audit_events("copy.transit_started").await;
    assert!(transits.iter().all(|e| e.details["channel"] == "sip2"));
    assert_eq!(transits.len(), 2);

    // At MAIN, a checkin scan receives both: C-2 fills Bea's hold here (CV 01),
    // C-1 is home and goes back on the shelf (no alert).
    let mut main = Sip2Client::connect(&desk.app).await;
    main.login().await;
    let back = main.call(&checkin("C-2")).await;
    assert!(back.starts_with("101"), "{back}");
    assert_eq!(field(&back, "CV"), Some("01"), "{back}");
    assert_eq!(field(&back, "CY"), Some("BEA-7"));
    assert_eq!(desk.copy_status(item, "C-2").await, "on_hold_shelf");
    let back = main.call(&checkin("C-1")).await;
    assert!(back.starts_with("101"), "{back}");
    assert!(field(&back, "CV").is_none(), "{back}");
    assert_eq!(desk.copy_status(item, "C-1").await, "available");
    let received = desk.app.audit_events("copy.received").await;
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|e| e.details["channel"] == "sip2"));
}

async fn fee_paid_records_a_desk_payment(desk: Desk) {
    let ann = desk
        .app
        .state
        .store
        .find_user_by_card("ANN-1")
        .await
        .unwrap()
        .unwrap();
    let fine = desk.charge(ann.id, 300).await;
    let fine_id = fine["id"].as_str().unwrap();
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    // Wrong PIN: no payment.
    let refused = c
        .call(&format!("37{DATE}0100USDBV1.00|AOmain-lib|AAANN-1|AD9999|"))
        .await;
    assert!(refused.starts_with("38N"), "{refused}");
    // Without CG the only open fine; cash.
    let paid = c
        .call(&format!(
            "37{DATE}0100USDBV1.00|AOmain-lib|AAANN-1|AD2468|BKT-1|"
        ))
        .await;
    assert!(paid.starts_with("38Y"), "{paid}");
    let payment_id = field(&paid, "BK").unwrap().to_owned();
    // A retry of the same transaction (BK) records nothing more.
    let again = c
        .call(&format!(
            "37{DATE}0100USDBV1.00|AOmain-lib|AAANN-1|AD2468|BKT-1|"
        ))
        .await;
    assert_eq!(field(&again, "BK"), Some(payment_id.as_str()), "{again}");
    // With CG, by card; more than the balance is refused.
    let too_much = c
        .call(&format!(
            "37{DATE}0102USDBV5.00|AOmain-lib|AAANN-1|AD2468|CG{fine_id}|"
        ))
        .await;
    assert!(too_much.starts_with("38N"), "{too_much}");
    let rest = c
        .call(&format!(
            "37{DATE}0102USDBV2.00|AOmain-lib|AAANN-1|AD2468|CG{fine_id}|"
        ))
        .await;
    assert!(rest.starts_with("38Y"), "{rest}");
    let detail = desk
        .get_json(LIBRARIAN, &format!("/api/v1/fines/{fine_id}"))
        .await;
    assert_eq!(detail["status"], "paid");
    let methods: Vec<&str> = detail["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, vec!["cash", "card"]);
    let terminal = desk
        .app
        .state
        .store
        .find_sip2_terminal(TERMINAL)
        .await
        .unwrap()
        .unwrap();
    let events = desk.app.audit_events("fine.paid").await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.actor_id == Some(terminal.id) && e.details["channel"] == "sip2")
    );
    // No open fine left: refused.
    let none = c
        .call(&format!("37{DATE}0100USDBV1.00|AOmain-lib|AAANN-1|AD2468|"))
        .await;
    assert!(none.starts_with("38N"), "{none}");
}

async fn garbage_oversized_and_half_sent_messages_leave_the_server_healthy(desk: Desk) {
    // Garbage before login: closed.
    let mut c = Sip2Client::connect(&desk.app).await;
    c.send_raw(b"\x00\xff\xfegarbage\r").await;
    assert!(c.closed().await);
    // Oversized after login: 96, and the connection still works.
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    let mut huge = vec![b'x'; 100_000];
    huge.push(b'\r');
    c.send_raw(&huge).await;
    assert_eq!(c.read().await.as_deref(), Some(&b"96"[..]));
    assert!(c.call("9900302.00").await.starts_with("98"));
    // Invalid UTF-8 after login: 96.
    c.send_raw(b"\xff\xfe\xfd\r").await;
    assert_eq!(c.read().await.as_deref(), Some(&b"96"[..]));
    // Half a message, then the client goes away.
    let mut half = Sip2Client::connect(&desk.app).await;
    half.send_raw(b"9300CNkio").await;
    drop(half);
    // A following connection works.
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    assert!(
        c.call(&checkout("ANN-1", "2468", "C-1"))
            .await
            .starts_with("121")
    );
}

async fn idle_connections_are_closed(desk: Desk) {
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    c.send_raw(b"9900302").await; // half-sent, then silence
    let started = std::time::Instant::now();
    assert!(c.closed().await);
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
}

async fn connections_beyond_the_cap_are_closed(desk: Desk) {
    let mut a = Sip2Client::connect(&desk.app).await;
    a.login().await;
    let mut b = Sip2Client::connect(&desk.app).await;
    b.login().await;
    let mut third = Sip2Client::connect(&desk.app).await;
    third.send_raw(b"9900302.00\r").await;
    assert!(third.closed().await);
    drop(a);
    // A slot frees up once a connection ends.
    let mut ok = false;
    for _ in 0..50 {
        let mut d = Sip2Client::connect(&desk.app).await;
        d.send_raw(b"9900302.00\r").await;
        if d.read().await.is_some() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok);
    assert!(b.call("9900302.00").await.starts_with("98"));
}

async fn failed_logins_are_rate_limited_per_address(desk: Desk) {
    let mut c = Sip2Client::connect(&desk.app).await;
    // 3/min: three failures are spent, the fourth is refused by the limiter…
    for _ in 0..4 {
        assert_eq!(c.call(&format!("9300CN{TERMINAL}|COwrong|")).await, "940");
    }
    // …and from then on even the right password is refused from this address.
    assert_eq!(
        c.call(&format!("9300CN{TERMINAL}|CO{TERMINAL_PASSWORD}|"))
            .await,
        "940"
    );
    // After the window, it works again.
    desk.app.clock.advance(time::Duration::minutes(2));
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
}

async fn diacritics(desk: Desk) {
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    let status = c
        .call(&format!("23001{DATE}AOmain-lib|AAANN-1|AC|AD2468|"))
        .await;
    assert_eq!(field(&status, "AE"), Some("Zoë Ñúñez"));
    let out = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert_eq!(field(&out, "AJ"), Some("Éloïse à Paris"));
    // French screen messages survive the encoding too.
    let info = c
        .call(&patron_information("002", "ANN-1", "2468", "          "))
        .await;
    assert_eq!(field(&info, "AE"), Some("Zoë Ñúñez"));
    let again = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert_eq!(
        field(&again, "AF"),
        Some("Ce document ne peut pas être emprunté pour l'instant.")
    );
}

async fn diacritics_in_cp850(desk: Desk) {
    assert_eq!(desk.app.state.config.sip2.encoding, Encoding::Cp850);
    diacritics(desk).await;
}

async fn diacritics_in_latin1(desk: Desk) {
    assert_eq!(desk.app.state.config.sip2.encoding, Encoding::Latin1);
    diacritics(desk).await;
}

async fn diacritics_in_utf8(desk: Desk) {
    assert_eq!(desk.app.state.config.sip2.encoding, Encoding::Utf8);
    diacritics(desk).await;
}

async fn shutdown_finishes_and_closes_connections(mut desk: Desk) {
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    desk.app.sip2_stop.cancel();
    let task = desk.app.sip2_task.take().unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("the listener stops")
        .unwrap();
    assert!(c.closed().await);
    let address = desk.app.sip2_address.unwrap();
    assert!(
        TcpStream::connect(address).await.is_err(),
        "no longer accepting"
    );
}

/// The PyPI `sip2` client (an independent implementation) against the real
/// listener: login, SC status, patron information, checkout, checkin. Runs when
/// its virtualenv exists (`CARREL_SIP2_PYTHON`, default /var/tmp/sip2-venv;
/// see crates/carrel-sip2/tools/README.md), otherwise says SKIPPED.
async fn pypi_client_interop(desk: Desk) {
    let python = std::env::var("CARREL_SIP2_PYTHON")
        .unwrap_or_else(|_| "/var/tmp/sip2-venv/bin/python".to_owned());
    if !std::path::Path::new(&python).exists() {
        eprintln!("NOTE: {python} not found: the PyPI sip2 interop test is SKIPPED");
        return;
    }
    // The PyPI client sums code points for its checksum check, so an ASCII patron.
    patron(&desk, "pyclient", "PY-1", "8642", "Python Tester").await;
    let address = desk.app.sip2_address.unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/sip2_pypi_client.py"
    );
    // The client writes sip2.log into its working directory: a throwaway one.
    let workdir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(python)
        .current_dir(workdir.path())
        .args([
            script,
            &address.ip().to_string(),
            &address.port().to_string(),
            TERMINAL,
            TERMINAL_PASSWORD,
            "PY-1",
            "8642",
            "C-3",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The client logs to standard output too: the report is its own line.
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REPORT "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let report: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(report["patron_name"], "Python Tester");
    assert_eq!(report["title"], "Éloïse à Paris");
    assert_eq!(report["wrong_pin_refused"], true);
    assert_eq!(desk.app.audit_events("loan.returned").await.len(), 1);
}

async fn tls_login_checkout_and_checkin(desk: Desk) {
    let mut c = Sip2Client::connect_tls(&desk.app).await;
    let status = c.call("9900302.00").await;
    assert!(status.starts_with("98YYYYNN"), "{status}");
    c.login().await;
    let out = c.call(&checkout("ANN-1", "2468", "C-1")).await;
    assert!(out.starts_with("121NUY"), "{out}");
    assert_eq!(field(&out, "AJ"), Some("Éloïse à Paris"));
    let back = c.call(&checkin("C-1")).await;
    assert!(back.starts_with("101YUN"), "{back}");
    assert_eq!(field(&back, "AA"), Some("ANN-1"));
    // The second round on the same connection, and a wrong PIN is still refused.
    let refused = c.call(&checkout("ANN-1", "0000", "C-1")).await;
    assert!(refused.starts_with("120"), "{refused}");
    assert!(
        c.call(&checkout("ANN-1", "2468", "C-2"))
            .await
            .starts_with("121")
    );
    assert!(c.call(&checkin("C-2")).await.starts_with("101"));
    for kind in ["loan.checked_out", "loan.returned"] {
        let events = desk.app.audit_events(kind).await;
        assert_eq!(events.len(), 2, "{kind}");
        assert!(
            events.iter().all(|e| e.details["channel"] == "sip2"),
            "{kind}"
        );
    }
}

/// Reads until the server closes; the bytes it sent, or `None` if it kept the
/// connection open for 10 s.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn plaintext_client_is_refused_by_the_tls_listener(desk: Desk) {
    let address = desk.app.sip2_address.unwrap();
    for _ in 0..3 {
        let mut plain = TcpStream::connect(address).await.unwrap();
        plain
            .write_all(format!("9300CN{TERMINAL}|CO{TERMINAL_PASSWORD}|\r").as_bytes())
            .await
            .unwrap();
        let received = read_until_closed(&mut plain)
            .await
            .expect("the listener closes a plaintext connection");
        // At most a TLS alert record (content type 21), never a SIP2 answer.
        assert!(
            received.is_empty() || received[0] == 21,
            "{:?}",
            String::from_utf8_lossy(&received)
        );
        assert!(!received.windows(3).any(|w| w == b"941"));
    }
    // The listener is healthy: a TLS terminal still works.
    let mut c = Sip2Client::connect_tls(&desk.app).await;
    c.login().await;
    assert!(
        c.call(&checkout("ANN-1", "2468", "C-1"))
            .await
            .starts_with("121")
    );
}

async fn stalled_tls_handshake_is_closed_by_the_idle_timeout(desk: Desk) {
    let address = desk.app.sip2_address.unwrap();
    // Silent after connecting, and half a ClientHello record header then silence.
    let mut silent = TcpStream::connect(address).await.unwrap();
    let mut half = TcpStream::connect(address).await.unwrap();
    half.write_all(&[22, 3, 1, 0x02]).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(read_until_closed(&mut silent).await, Some(Vec::new()));
    assert_eq!(read_until_closed(&mut half).await, Some(Vec::new()));
    // CARREL_SIP2_IDLE_TIMEOUT is 1 s.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The listener still serves TLS terminals.
    let mut c = Sip2Client::connect_tls(&desk.app).await;
    c.login().await;
    assert!(c.call("9900302.00").await.starts_with("98"));
}

/// A PIN hash migrated from an older system (bcrypt) still verifies at the
/// kiosk; the first valid PIN replaces it with an Argon2id hash of the same PIN
/// (not a PIN change: no audit entry), and a wrong PIN leaves it alone.
async fn a_legacy_pin_hash_is_upgraded_by_the_first_valid_pin(desk: Desk) {
    let state = &desk.app.state;
    let ann = state
        .store
        .find_user_by_card("ANN-1")
        .await
        .unwrap()
        .unwrap();
    let legacy = bcrypt::hash("1357", 4).unwrap();
    state
        .store
        .set_pin(ann.id, &legacy, state.clock.now(), |_: &()| Vec::new())
        .await
        .unwrap();
    let changes_before = desk.app.audit_events("user.pin_changed").await.len();
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    let summary = "          ";
    let wrong = c
        .call(&patron_information("001", "ANN-1", "2468", summary))
        .await;
    assert_eq!(field(&wrong, "CQ"), Some("N"), "{wrong}");
    let holder = state.store.find_pin_holder("ANN-1").await.unwrap().unwrap();
    assert_eq!(holder.pin_hash.as_deref(), Some(legacy.as_str()));
    assert_eq!(holder.counter.failed_attempts, 1);

    let right = c
        .call(&patron_information("001", "ANN-1", "1357", summary))
        .await;
    assert_eq!(field(&right, "CQ"), Some("Y"), "{right}");
    let holder = state.store.find_pin_holder("ANN-1").await.unwrap().unwrap();
    let upgraded = holder.pin_hash.expect("a PIN");
    assert!(upgraded.starts_with("$argon2id$"), "upgraded: {upgraded}");
    assert_eq!(holder.counter.failed_attempts, 0);
    assert_eq!(
        desk.app.audit_events("user.pin_changed").await.len(),
        changes_before
    );

    // The new hash is the same PIN: a fresh connection (nothing remembered) takes it.
    let mut fresh = Sip2Client::connect(&desk.app).await;
    fresh.login().await;
    let again = fresh
        .call(&patron_information("001", "ANN-1", "1357", summary))
        .await;
    assert_eq!(field(&again, "CQ"), Some("Y"), "{again}");
}

async fn a_remembered_pin_never_outlives_a_lock_or_a_change(desk: Desk) {
    let ann = patron(&desk, "ann2", "ANN-2", "2468", "Ann Two").await;
    let mut kiosk = Sip2Client::connect(&desk.app).await;
    kiosk.login().await;
    // The PIN verifies once (63), then each checkout of the session reuses it.
    let info = kiosk
        .call(&patron_information("001", "ANN-2", "2468", "          "))
        .await;
    assert_eq!(field(&info, "CQ"), Some("Y"), "{info}");
    assert!(
        kiosk
            .call(&checkout("ANN-2", "2468", "C-1"))
            .await
            .starts_with("121")
    );
    // Another PIN for the same card is checked in full: refused and counted.
    assert!(
        kiosk
            .call(&checkout("ANN-2", "1357", "C-2"))
            .await
            .starts_with("120")
    );
    let counter = desk.app.state.store.pin_failure_counter(ann).await.unwrap();
    assert_eq!(counter.failed_attempts, 1);
    // The right one again (a full check clears the failure).
    assert!(
        kiosk
            .call(&checkout("ANN-2", "2468", "C-2"))
            .await
            .starts_with("121")
    );
    // A guesser on another terminal locks the PIN: the remembered PIN stops working.
    let mut guesser = Sip2Client::connect(&desk.app).await;
    guesser.login().await;
    for pin in ["0001", "0002", "0003", "0004", "0005"] {
        assert!(
            guesser
                .call(&checkout("ANN-2", pin, "C-3"))
                .await
                .starts_with("120")
        );
    }
    let locked = kiosk.call(&checkout("ANN-2", "2468", "C-3")).await;
    assert!(locked.starts_with("120"), "{locked}");
    assert_eq!(field(&locked, "AF"), Some("Card or PIN not recognised."));
    // Staff set a new PIN (which clears the lock): the old one is refused, the new one works.
    let r = desk
        .staff(Method::PUT, &format!("/api/v1/users/{ann}/pin"))
        .await
        .json(&json!({"pin": "8642"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        kiosk
            .call(&checkout("ANN-2", "2468", "C-3"))
            .await
            .starts_with("120")
    );
    assert!(
        kiosk
            .call(&checkout("ANN-2", "8642", "C-3"))
            .await
            .starts_with("121")
    );
    // 35 ends the patron session; a remembered PIN expires after two idle minutes.
    assert!(
        kiosk
            .call(&format!("35{DATE}AOmain-lib|AAANN-2|AC|AD8642|"))
            .await
            .starts_with("36Y")
    );
    assert!(kiosk.call(&checkin("C-3")).await.starts_with("101"));
    assert!(
        kiosk
            .call(&checkout("ANN-2", "8642", "C-3"))
            .await
            .starts_with("121")
    );
    desk.app.clock.advance(time::Duration::minutes(3));
    assert!(kiosk.call(&checkin("C-3")).await.starts_with("101"));
    assert!(
        kiosk
            .call(&checkout("ANN-2", "8642", "C-3"))
            .await
            .starts_with("121")
    );
    assert_eq!(desk.app.audit_events("loan.checked_out").await.len(), 5);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One JSON log line per SIP2 message (command, outcome, terminal), and no PIN,
/// card-holder PIN attempt or terminal password anywhere in the log, at debug
/// level. A single-threaded runtime, so the subscriber set for this thread sees
/// the server's tasks too.
mod one_log_line_per_message_and_never_a_secret {
    #[tokio::test(flavor = "current_thread")]
    async fn sqlite() {
        super::log_lines(carrel_store::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "current_thread")]
    async fn postgres() {
        super::log_lines(carrel_store::Backend::Postgres).await;
    }
}

async fn log_lines(backend: carrel_store::Backend) {
    const PIN: &str = "730461958";
    const WRONG_PIN: &str = "582039174";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let Some(desk) = open(backend, Vec::new()).await else {
        return;
    };
    patron(&desk, "hushed", "QUIET-1", PIN, "Hushed Patron").await;
    let mut c = Sip2Client::connect(&desk.app).await;
    let messages = [
        "9900302.00".to_owned(),
        format!("9300CN{TERMINAL}|CO{TERMINAL_PASSWORD}|CPMAIN|"),
        patron_information("001", "QUIET-1", PIN, "          "),
        checkout("QUIET-1", WRONG_PIN, "C-1"),
        checkout("QUIET-1", PIN, "C-1"),
        format!("23001{DATE}AOmain-lib|AAQUIET-1|AC|AD{PIN}|"),
        checkin("C-1"),
        format!("35{DATE}AOmain-lib|AAQUIET-1|AC|AD{PIN}|"),
        "XX123".to_owned(),
    ];
    for message in &messages {
        c.call(message).await;
    }
    drop(c);
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["fields"]["message"] == "sip2 message")
        .collect();
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["fields"]["command"].as_str().unwrap(),
                l["fields"]["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("99", "ok"),
            ("93", "ok"),
            ("63", "ok"),
            ("11", "refused"),
            ("11", "ok"),
            ("23", "ok"),
            ("09", "ok"),
            ("35", "ok"),
            ("other", "error"),
        ],
        "{text}"
    );
    assert_eq!(lines[0]["fields"]["terminal"], "-");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l["fields"]["terminal"] == TERMINAL)
    );
    for secret in [PIN, WRONG_PIN, TERMINAL_PASSWORD, "$argon2id$"] {
        assert!(!text.contains(secret), "a secret reached the log: {secret}");
    }
}

async fn summary_lists_and_their_bp_bq_window(desk: Desk) {
    let item = desk_item(&desk).await;
    patron(&desk, "bea", "BEA-7", "1357", "Béatrice Dupré").await;
    let mut c = Sip2Client::connect(&desk.app).await;
    c.login().await;
    for barcode in ["C-1", "C-2", "C-3"] {
        assert!(
            c.call(&checkout("ANN-1", "2468", barcode))
                .await
                .starts_with("121")
        );
    }
    // Counts: hold, overdue, charged, fine, recall, unavailable (4 digits each from 37).
    let counts = |info: &str| info[37..61].to_owned();
    // Charged items, all and the BP/BQ window.
    let all = c
        .call(&patron_information("001", "ANN-1", "2468", "  Y       "))
        .await;
    assert_eq!(counts(&all), "000000000003000000000000", "{all}");
    let mut charged = fields(&all, "AU");
    charged.sort_unstable();
    assert_eq!(charged, vec!["C-1", "C-2", "C-3"]);
    let window = c
        .call(&format!(
            "{}BP2|BQ3|",
            patron_information("001", "ANN-1", "2468", "  Y       ")
        ))
        .await;
    assert_eq!(
        fields(&window, "AU"),
        fields(&all, "AU")[1..3].to_vec(),
        "{window}"
    );
    let from_third = c
        .call(&format!(
            "{}BP3|",
            patron_information("001", "ANN-1", "2468", "  Y       ")
        ))
        .await;
    assert_eq!(fields(&from_third, "AU"), fields(&all, "AU")[2..].to_vec());
    // Bea waits for the item: an unavailable hold (CD).
    assert_eq!(desk.place_hold("bea", item).await.status(), 201);
    let waiting = c
        .call(&patron_information("001", "BEA-7", "1357", "     Y    "))
        .await;
    assert_eq!(counts(&waiting), "000000000000000000000001", "{waiting}");
    assert_eq!(fields(&waiting, "CD"), vec!["Éloïse à Paris"]);
    // A checkin fills it: a hold item (AS).
    assert_eq!(field(&c.call(&checkin("C-1")).await, "CV"), Some("01"));
    let ready = c
        .call(&patron_information("001", "BEA-7", "1357", "Y         "))
        .await;
    assert_eq!(counts(&ready), "000100000000000000000000", "{ready}");
    assert_eq!(fields(&ready, "AS"), vec!["Éloïse à Paris"]);
    // Past the due date: overdue items (AT).
    desk.app.clock.advance(time::Duration::days(120));
    let overdue = c
        .call(&patron_information("001", "ANN-1", "2468", " Y        "))
        .await;
    assert_eq!(&counts(&overdue)[4..12], "00020002", "{overdue}");
    let mut late = fields(&overdue, "AT");
    late.sort_unstable();
    assert_eq!(late, vec!["C-2", "C-3"]);
    // Recall items: none are kept; the list is empty.
    let recall = c
        .call(&patron_information("001", "ANN-1", "2468", "    Y     "))
        .await;
    assert!(fields(&recall, "BU").is_empty(), "{recall}");
}
