//! SMTP relay configuration from a URL, and delivery through lettre.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::MailError;

/// Default port of `smtp://` URLs (submission with STARTTLS).
const SMTP_PORT: u16 = 587;
/// Default port of `smtps://` URLs (submission over implicit TLS).
const SMTPS_PORT: u16 = 465;
/// Upper bound for one SMTP command/connection step.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (usually port 465).
    ImplicitTls,
    /// `smtp://`: plain connection upgraded with STARTTLS; refusing servers are not used.
    StartTls,
    /// `smtp://` to a loopback host without credentials (a local test/dev mail catcher):
    /// no TLS at all. Never chosen for any other host.
    None,
}

/// A configured SMTP relay (parsed from `smtp://…` / `smtps://…`).
///
/// The lettre transport (with its connection pool) is built lazily on first delivery,
/// because building it spawns a tokio task and must therefore happen inside a runtime.
/// Cheap to clone; clones share the transport and its connection pool.
#[derive(Clone)]
pub struct SmtpRelay {
    inner: Arc<RelayInner>,
}

struct RelayInner {
    host: String,
    port: u16,
    security: SmtpSecurity,
    authenticated: bool,
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("SmtpRelay")
            .field("host", &inner.host)
            .field("port", &inner.port)
            .field("security", &inner.security)
            .field("authenticated", &inner.authenticated)
            .finish_non_exhaustive()
    }
}

/// Why a delivery attempt failed, and whether trying again could help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: MailError,
    pub(crate) permanent: bool,
}

impl SmtpRelay {
    /// Parses `smtp://[user:pass@]host[:port]` (STARTTLS required; default port 587) or
    /// `smtps://[user:pass@]host[:port]` (implicit TLS; default port 465). User name and
    /// password are percent-decoded. Query strings (e.g. lettre's `?tls=…`), fragments and
    /// paths are refused. Plaintext is used only for `smtp://` to a loopback host
    /// (`localhost`, `127.0.0.0/8`, `::1`) *without* credentials.
    ///
    /// Error messages never contain the password (nor the URL).
    pub fn from_url(url: &SecretString) -> Result<Self, MailError> {
        let config = |msg: &str| MailError::Config(format!("invalid SMTP URL: {msg}"));
        let url =
            url::Url::parse(url.expose_secret().trim()).map_err(|e| config(&e.to_string()))?;

        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => {
                return Err(config(
                    "the scheme must be smtp:// (STARTTLS) or smtps:// (TLS)",
                ));
            }
        };
        if url.query().is_some() {
            return Err(config(
                "query parameters (such as ?tls=) are not supported: smtps:// uses TLS, smtp:// requires STARTTLS",
            ));
        }
        if url.fragment().is_some() {
            return Err(config("a fragment is not allowed"));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(config("a path is not allowed"));
        }

        let (host, loopback) = match url.host() {
            // `smtp` is not a "special" URL scheme, so IP literals arrive as opaque hosts.
            Some(url::Host::Domain(d)) if !d.is_empty() => {
                let d = d.trim_start_matches('[').trim_end_matches(']');
                let ip = d.parse::<IpAddr>().ok();
                let loopback =
                    d.eq_ignore_ascii_case("localhost") || ip.is_some_and(|ip| ip.is_loopback());
                (d.to_owned(), loopback)
            }
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), IpAddr::V4(ip).is_loopback()),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), IpAddr::V6(ip).is_loopback()),
            _ => return Err(config("the host is missing")),
        };
        let port = url
            .port()
            .unwrap_or(if implicit_tls { SMTPS_PORT } else { SMTP_PORT });

        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err(config("a password was given without a user name")),
            (_, None) => return Err(config("a user name was given without a password")),
            (user, Some(pass)) => {
                let user = percent_decode(user)
                    .ok_or_else(|| config("the user name is not valid percent-encoded UTF-8"))?;
                let pass = percent_decode(pass)
                    .ok_or_else(|| config("the password is not valid percent-encoded UTF-8"))?;
                Some(Credentials::new(user, pass))
            }
        };
        let authenticated = credentials.is_some();

        let security = if implicit_tls {
            SmtpSecurity::ImplicitTls
        } else if loopback && !authenticated {
            SmtpSecurity::None
        } else {
            SmtpSecurity::StartTls
        };

        let tls_error = |e: lettre::transport::smtp::Error| {
            MailError::Config(format!("invalid SMTP host for TLS: {e}"))
        };
        let mut builder = match security {
            SmtpSecurity::ImplicitTls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&host).map_err(tls_error)?
            }
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host).map_err(tls_error)?
            }
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
        }
        .port(port)
        .timeout(Some(SMTP_TIMEOUT));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }

        Ok(Self {
            inner: Arc::new(RelayInner {
                host,
                port,
                security,
                authenticated,
                builder,
                transport: OnceLock::new(),
            }),
        })
    }

    pub fn host(&self) -> &str {
        &self.inner.host
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    pub fn security(&self) -> SmtpSecurity {
        self.inner.security
    }

    pub(crate) async fn send(&self, message: Message) -> Result<(), Failure> {
        // Building the pooled transport spawns a task: only possible inside a tokio runtime.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Failure {
                error: MailError::Send("SMTP delivery needs a tokio runtime".into()),
                permanent: true,
            });
        }
        let inner = &*self.inner;
        let transport = inner
            .transport
            .get_or_init(|| inner.builder.clone().build());
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Failure {
                permanent: e.is_permanent(),
                error: MailError::Send(format!("SMTP {}:{}: {e}", inner.host, inner.port)),
            }),
        }
    }
}

/// Decodes `%XX` escapes; `None` on a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<SmtpRelay, MailError> {
        SmtpRelay::from_url(&SecretString::from(url.to_owned()))
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%2Fc").as_deref(), Some("a@b/c"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn schemes_ports_and_security() {
        let r = parse("smtp://user:pass@mail.example.org:587").unwrap();
        assert_eq!(
            (r.host(), r.port(), r.security()),
            ("mail.example.org", 587, SmtpSecurity::StartTls)
        );
        let r = parse("smtps://user:pass@mail.example.org").unwrap();
        assert_eq!((r.port(), r.security()), (465, SmtpSecurity::ImplicitTls));
        let r = parse("smtp://mail.example.org").unwrap();
        assert_eq!((r.port(), r.security()), (587, SmtpSecurity::StartTls));
        // Plaintext only to loopback without credentials.
        assert_eq!(
            parse("smtp://127.0.0.1:1025").unwrap().security(),
            SmtpSecurity::None
        );
        assert_eq!(
            parse("smtp://localhost:1025/").unwrap().security(),
            SmtpSecurity::None
        );
        let r = parse("smtp://[::1]:1025").unwrap();
        assert_eq!((r.host(), r.security()), ("::1", SmtpSecurity::None));
        assert_eq!(parse("smtp://127.0.0.1:1025").unwrap().host(), "127.0.0.1");
        assert_eq!(
            parse("smtp://u:p@127.0.0.1:1025").unwrap().security(),
            SmtpSecurity::StartTls
        );
        assert_eq!(
            parse("smtps://127.0.0.1:1465").unwrap().security(),
            SmtpSecurity::ImplicitTls
        );
        assert_eq!(
            parse("smtp://10.0.0.1:25").unwrap().security(),
            SmtpSecurity::StartTls
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let r = parse("smtps://user:hunter2-secret@mail.example.org").unwrap();
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("hunter2-secret"), "{dbg}");
        assert!(dbg.contains("mail.example.org"), "{dbg}");
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_password() {
        for url in [
            "smtp://user:hunter2-secret@mail.example.org?tls=none",
            "smtp://user:hunter2-secret@mail.example.org:587?tls=opportunistic",
            "http://user:hunter2-secret@mail.example.org",
            "smtp://user:hunter2-secret@mail.example.org:99999",
            "smtp://user:hunter2-secret@",
            "smtp://user:hunter2-secret@mail.example.org/path",
            "smtp://user:hunter2-secret@mail.example.org#frag",
            "smtp://:hunter2-secret@mail.example.org",
            "smtp://user:hunter2-secret%zz@mail.example.org",
            "not a url hunter2-secret",
            "",
        ] {
            match parse(url) {
                Err(MailError::Config(msg)) => {
                    assert!(!msg.contains("hunter2"), "{url}: {msg}");
                }
                other => panic!("{url}: expected Config error, got {other:?}"),
            }
        }
    }
}
