//! The session state machine over a fake backend, and a whole connection over an
//! in-memory stream with the framer.

use std::sync::{Arc, Mutex};

use carrel_sip2::checksum::checksum_hex;
use carrel_sip2::*;
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Terminal {
    login: String,
    branch: String,
}

/// Records every call with the language the session passed.
#[derive(Debug, Default, Clone)]
struct Fake {
    calls: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn record(&self, call: impl Into<String>) {
        self.calls.lock().unwrap().push(call.into());
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn due() -> SipDateTime {
    SipDateTime::parse("20240402    235900").unwrap()
}

impl Sip2Backend for Fake {
    type Terminal = Terminal;

    fn now(&self) -> OffsetDateTime {
        datetime!(2024-03-05 14:07:09 UTC)
    }

    async fn login(&self, request: &LoginRequest) -> Option<Terminal> {
        self.record(format!("login {}", request.login_user_id));
        (request.login_password.expose() == "right").then(|| Terminal {
            login: request.login_user_id.clone(),
            branch: "MAIN".into(),
        })
    }

    async fn sc_status(
        &self,
        terminal: Option<&Terminal>,
        _: &ScStatusRequest,
    ) -> AcsStatusOutcome {
        self.record(format!("status {}", terminal.is_some()));
        AcsStatusOutcome {
            online: true,
            checkin_ok: true,
            checkout_ok: true,
            renewal_policy: true,
            timeout_period: 30,
            retries_allowed: 3,
            institution_id: "CARREL".into(),
            ..Default::default()
        }
    }

    async fn patron_status(
        &self,
        c: Context<'_, Terminal>,
        r: &PatronStatusRequest,
    ) -> PatronStatusOutcome {
        self.record(format!(
            "patron_status {} {:?}",
            c.terminal.login, c.language
        ));
        let pin_ok = r
            .patron_password
            .as_ref()
            .is_some_and(|p| p.expose() == "1234");
        PatronStatusOutcome {
            personal_name: "Zoë".into(),
            valid_patron: Some(true),
            valid_patron_password: Some(pin_ok),
            screen_message: match c.language.primary_language() {
                Some("fr") => vec!["Bonjour".into()],
                _ => vec!["Hello".into()],
            },
            ..Default::default()
        }
    }

    async fn patron_information(
        &self,
        c: Context<'_, Terminal>,
        r: &PatronInformationRequest,
    ) -> PatronInformationOutcome {
        self.record(format!(
            "patron_information {:?} {:?}",
            r.summary, c.language
        ));
        PatronInformationOutcome {
            patron: PatronStatusOutcome {
                personal_name: "Zoë".into(),
                ..Default::default()
            },
            counts: ItemCounts {
                charged_items: 5,
                ..Default::default()
            },
            items: (1..=5).map(|i| format!("item{i}")).collect(),
            ..Default::default()
        }
    }

    async fn checkout(&self, c: Context<'_, Terminal>, r: &CheckoutRequest) -> LoanOutcome {
        self.record(format!(
            "checkout {} {} {:?}",
            r.item_identifier, c.terminal.branch, c.language
        ));
        LoanOutcome {
            ok: true,
            title_identifier: "Les Misérables".into(),
            due_date: Some(due()),
            ..Default::default()
        }
    }

    async fn checkin(&self, _: Context<'_, Terminal>, r: &CheckinRequest) -> CheckinOutcome {
        self.record(format!("checkin {}", r.item_identifier));
        CheckinOutcome {
            ok: true,
            alert_type: Some(AlertType::HoldHere),
            permanent_location: "MAIN".into(),
            ..Default::default()
        }
    }

    async fn item_information(
        &self,
        _: Context<'_, Terminal>,
        r: &ItemInformationRequest,
    ) -> ItemInformationOutcome {
        self.record(format!("item_information {}", r.item_identifier));
        ItemInformationOutcome {
            circulation_status: CirculationStatus::Available,
            title_identifier: "Les Misérables".into(),
            ..Default::default()
        }
    }

    async fn renew(&self, _: Context<'_, Terminal>, r: &RenewRequest) -> LoanOutcome {
        self.record(format!("renew {:?}", r.item_identifier));
        LoanOutcome {
            ok: false,
            screen_message: vec!["On hold".into()],
            ..Default::default()
        }
    }

    async fn renew_all(&self, _: Context<'_, Terminal>, _: &RenewAllRequest) -> RenewAllOutcome {
        self.record("renew_all");
        RenewAllOutcome {
            ok: true,
            renewed_items: vec!["a".into(), "b".into()],
            unrenewed_items: vec!["c".into()],
            ..Default::default()
        }
    }

    async fn end_patron_session(
        &self,
        _: Context<'_, Terminal>,
        _: &EndPatronSessionRequest,
    ) -> EndSessionOutcome {
        self.record("end_patron_session");
        EndSessionOutcome {
            end_session: true,
            ..Default::default()
        }
    }

    async fn fee_paid(&self, _: Context<'_, Terminal>, r: &FeePaidRequest) -> FeePaidOutcome {
        self.record(format!(
            "fee_paid {:?} {:?}",
            parse_amount(&r.fee_amount),
            r.payment_type
        ));
        FeePaidOutcome {
            payment_accepted: true,
            transaction_id: Some("pay-1".into()),
            ..Default::default()
        }
    }
}

fn session() -> (Session<Fake>, Fake) {
    let fake = Fake::default();
    (Session::new(fake.clone(), Encoding::Utf8), fake)
}

async fn reply(s: &mut Session<Fake>, frame: &[u8]) -> String {
    match s.handle_message(frame).await {
        SessionAction::Reply(bytes) => String::from_utf8(bytes).unwrap(),
        SessionAction::Close => panic!("closed on {:?}", String::from_utf8_lossy(frame)),
    }
}

fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(b"AZ");
    let hex = checksum_hex(&out);
    out.extend_from_slice(&hex);
    out.push(b'\r');
    out
}

const LOGIN: &[u8] = b"9300CNterm1|COright|CPdesk1|\r";
const NOW: &str = "20240305   Z140709";

#[tokio::test]
async fn only_login_and_status_before_login() {
    let (mut s, fake) = session();
    let status = reply(&mut s, b"9900802.00\r").await;
    assert_eq!(
        status,
        format!("98YYYYNN030003{NOW}2.00AOCARREL|BX{SUPPORTED_MESSAGES}|\r")
    );
    for frame in [
        &b"2300120240305    140709AOCARREL|AA2000123|\r"[..],
        b"97\r",
        b"01N20240305    140709AOx|ALy|AAz|\r",
        b"garbage\r",
        b"1720240305    1407\r",
    ] {
        let (mut s, _) = session();
        assert_eq!(
            s.handle_message(frame).await,
            SessionAction::Close,
            "{frame:?}"
        );
    }
    let (mut s2, _) = session();
    assert_eq!(s2.handle(Frame::Oversized).await, SessionAction::Close);
    assert_eq!(fake.calls(), ["status false"]);
    assert!(!s.is_logged_in());
}

#[tokio::test]
async fn failed_login_keeps_the_connection_logged_out() {
    let (mut s, fake) = session();
    assert_eq!(reply(&mut s, b"9300CNterm1|COwrong|\r").await, "940\r");
    assert!(!s.is_logged_in());
    assert_eq!(
        s.handle_message(b"1720240305    140709AOCARREL|AB1|\r")
            .await,
        SessionAction::Close
    );
    assert_eq!(fake.calls(), ["login term1"]);
}

#[tokio::test]
async fn a_failed_relogin_logs_out() {
    let (mut s, _) = session();
    assert_eq!(reply(&mut s, LOGIN).await, "941\r");
    assert!(s.is_logged_in());
    assert_eq!(s.terminal().map(|t| t.login.as_str()), Some("term1"));
    assert_eq!(reply(&mut s, b"9300CNterm1|COwrong|\r").await, "940\r");
    assert!(!s.is_logged_in());
}

#[tokio::test]
async fn bad_checksum_gets_96_even_before_login() {
    let (mut s, fake) = session();
    let mut frame = sealed(b"9300CNterm1|COright|AY1");
    frame[5] = b'X';
    assert_eq!(reply(&mut s, &frame).await, "96AZFEF6\r");
    assert!(fake.calls().is_empty());
    // The client resends it intact.
    let frame = sealed(b"9300CNterm1|COright|AY1");
    let out = reply(&mut s, &frame).await;
    assert!(out.starts_with("941AY1AZ"), "{out}");
    assert_eq!(
        decode_response(out.as_bytes(), Encoding::Utf8)
            .unwrap()
            .error_detection
            .sequence,
        Some(1)
    );
}

#[tokio::test]
async fn after_login_unknown_malformed_and_oversized_get_96_and_97_resends() {
    let (mut s, _) = session();
    reply(&mut s, LOGIN).await;
    let info = reply(&mut s, b"1720240305    140709AOCARREL|AB39001|\r").await;
    assert!(info.starts_with("18030001"), "{info}");
    assert_eq!(
        reply(&mut s, b"01N20240305    140709AOx|ALy|AAz|\r").await,
        "96\r"
    );
    assert_eq!(
        reply(&mut s, b"1720241399    140709AOCARREL|AB39001|\r").await,
        "96\r"
    );
    assert_eq!(reply(&mut s, b"hello\r").await, "96\r");
    assert_eq!(
        s.handle(Frame::Oversized).await,
        SessionAction::Reply(b"96\r".to_vec())
    );
    // 97 replays the last real response, not the 96s.
    assert_eq!(reply(&mut s, b"97\r").await, info);
    assert_eq!(reply(&mut s, &sealed(b"97")).await, info);
}

#[tokio::test]
async fn responses_carry_the_requests_error_detection() {
    let (mut s, _) = session();
    reply(&mut s, LOGIN).await;
    let out = reply(&mut s, &sealed(b"1720240305    140709AOCARREL|AB39001|AY4")).await;
    let d = decode_response(out.as_bytes(), Encoding::Utf8).unwrap();
    assert_eq!(
        d.error_detection,
        ErrorDetection {
            sequence: Some(4),
            checksum: true
        }
    );
    let out = reply(&mut s, b"1720240305    140709AOCARREL|AB39001|\r").await;
    assert!(!out.contains("AZ"), "{out}");
}

#[tokio::test]
async fn every_transaction_is_dispatched_and_answered() {
    let (mut s, fake) = session();
    reply(&mut s, LOGIN).await;
    assert_eq!(
        reply(
            &mut s,
            b"2300220240305    140709AOCARREL|AA2000123|AC|AD1234|\r"
        )
        .await,
        format!("24              002{NOW}AOCARREL|AA2000123|AEZoë|BLY|CQY|AFBonjour|\r")
    );
    assert_eq!(
        reply(
            &mut s,
            b"6300220240305    140709  Y       AOCARREL|AA2000123|BP2|BQ3|\r"
        )
        .await,
        format!(
            "64              002{NOW}000000000005000000000000AOCARREL|AA2000123|AEZoë|AUitem2|AUitem3|\r"
        )
    );
    assert_eq!(
        reply(
            &mut s,
            b"11NN20240305    140709                  AOCARREL|AA2000123|AB39001|AD1234|\r"
        )
        .await,
        format!("121NUU{NOW}AOCARREL|AA2000123|AB39001|AJLes Misérables|AH20240402    235900|\r")
    );
    assert_eq!(
        reply(
            &mut s,
            b"09N20240305    14070920240305    140709APdesk|AOCARREL|AB39001|\r"
        )
        .await,
        format!("101NUY{NOW}AOCARREL|AB39001|AQMAIN|CV01|\r")
    );
    assert_eq!(
        reply(&mut s, b"1720240305    140709AOCARREL|AB39001|\r").await,
        format!("18030001{NOW}AB39001|AJLes Misérables|\r")
    );
    assert_eq!(
        reply(
            &mut s,
            b"29NN20240305    140709                  AOCARREL|AA2000123|AB39001|\r"
        )
        .await,
        format!("300NUU{NOW}AOCARREL|AA2000123|AB39001|AJ|AH|AFOn hold|\r")
    );
    assert_eq!(
        reply(&mut s, b"6520240305    140709AOCARREL|AA2000123|\r").await,
        format!("6610002000120240305   Z140709AOCARREL|BMa|BMb|BNc|\r")
    );
    assert_eq!(
        reply(
            &mut s,
            b"3720240305    1407090400EURBV2.50|AOCARREL|AA2000123|\r"
        )
        .await,
        format!("38Y{NOW}AOCARREL|AA2000123|BKpay-1|\r")
    );
    assert_eq!(
        reply(&mut s, b"3520240305    140709AOCARREL|AA2000123|\r").await,
        format!("36Y{NOW}AOCARREL|AA2000123|\r")
    );
    // After the patron session ended the language is unknown again.
    reply(
        &mut s,
        b"11NN20240305    140709                  AOCARREL|AA2|AB3|\r",
    )
    .await;
    assert_eq!(
        fake.calls(),
        [
            "login term1",
            "patron_status term1 French",
            "patron_information ChargedItems French",
            "checkout 39001 MAIN French",
            "checkin 39001",
            "item_information 39001",
            "renew Some(\"39001\")",
            "renew_all",
            "fee_paid Some(250) Cash",
            "end_patron_session",
            "checkout 3 MAIN Unknown",
        ]
    );
}

/// A whole connection: framer + session over an in-memory duplex stream, driven by
/// a spawned task (which also proves the session future is `Send`).
#[tokio::test]
async fn over_a_stream_with_the_framer() {
    use futures::StreamExt;
    let (client, server) = tokio::io::duplex(1024);
    let task = tokio::spawn(async move {
        let (read, mut write) = tokio::io::split(server);
        let mut frames = tokio_util::codec::FramedRead::new(read, Sip2Framer::new(64));
        let mut session = Session::new(Fake::default(), Encoding::Utf8);
        while let Some(frame) = frames.next().await {
            match session.handle(frame.unwrap()).await {
                SessionAction::Reply(bytes) => write_all(&mut write, &bytes).await,
                SessionAction::Close => break,
            }
        }
    });
    let (mut read, mut write) = tokio::io::split(client);
    write_all(&mut write, b"9300CNterm1|COright|\r\n9900802.00\r").await;
    let oversized = [b'x'; 100];
    write_all(&mut write, &oversized).await;
    write_all(&mut write, b"\r97\r23").await;
    let status = format!("98YYYYNN030003{NOW}2.00AOCARREL|BX{SUPPORTED_MESSAGES}|\r");
    let expected = format!("941\r{status}96\r{status}");
    let got = read_n(&mut read, expected.len()).await;
    assert_eq!(String::from_utf8(got).unwrap(), expected);
    drop(write);
    drop(read);
    task.await.unwrap();
}

async fn write_all<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt;
    w.write_all(bytes).await.unwrap();
}

async fn read_n<R: tokio::io::AsyncRead + Unpin>(r: &mut R, n: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0; n];
    r.read_exact(&mut buf).await.unwrap();
    buf
}
