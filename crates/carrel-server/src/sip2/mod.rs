//! The SIP2 listener: self-check machines talk to Carrel over TCP (optionally
//! TLS) with the `carrel-sip2` codec and session, and every transaction runs
//! the same use cases as the JSON API ([`backend`]).
//!
//! Off unless `CARREL_SIP2_BIND` is set. One task per connection; at most
//! `CARREL_SIP2_MAX_CONNECTIONS` at once (others are closed on accept); a
//! connection silent for `CARREL_SIP2_IDLE_TIMEOUT` is closed; on shutdown the
//! listener stops accepting and each connection finishes the message in hand.
//! One log line per message (command, outcome, terminal, peer, time), never a
//! field value, so never a PIN or a terminal password.

pub mod backend;
pub mod terminals;
pub mod texts;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use carrel_sip2::{Frame, Session, SessionAction, Sip2Framer};
use futures::{SinkExt as _, StreamExt as _};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::config::Sip2Config;
use crate::limits::{self, Limit};
use crate::state::AppState;

pub use backend::{Sip2Library, Terminal};

/// How long shutdown waits for connections to finish their message.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Failed logins (93) per peer address: each failure spends one unit of the
/// `CARREL_RATE_LIMIT_SIP2_LOGIN` limit (default 5/min, keyed by address); once a
/// failure is refused by the limiter, logins from that address are refused
/// unchecked until the limiter's retry time. Successful logins cost nothing.
#[derive(Debug, Default)]
pub struct LoginGuard {
    blocked: Mutex<HashMap<IpAddr, OffsetDateTime>>,
}

impl LoginGuard {
    fn is_blocked(&self, ip: IpAddr, now: OffsetDateTime) -> bool {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        blocked.retain(|_, until| *until > now);
        blocked.contains_key(&ip)
    }

    async fn failed(&self, state: &AppState, ip: IpAddr) {
        if let Err(refused) = limits::enforce(state, Limit::Sip2Login, &format!("ip:{ip}")).await {
            let retry = refused
                .decision
                .retry_after
                .unwrap_or(Duration::from_secs(1));
            let until = state.clock.now() + crate::config::to_time(retry);
            self.blocked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ip, until);
        }
    }
}

/// A bound SIP2 listener, ready to [`serve`].
pub struct Sip2Listener {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Sip2Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sip2Listener")
            .field("address", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Sip2Listener {
    /// Binds `CARREL_SIP2_BIND` (and loads the TLS files); `None` when SIP2 is off.
    pub async fn bind(config: &Sip2Config) -> anyhow::Result<Option<Self>> {
        let Some(address) = config.bind else {
            return Ok(None);
        };
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (CARREL_SIP2_BIND)"))?;
        Ok(Some(Self::from_listener(listener, config)?))
    }

    /// Wraps an already bound listener (tests bind port 0).
    pub fn from_listener(listener: TcpListener, config: &Sip2Config) -> anyhow::Result<Self> {
        let tls = match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            _ => None,
        };
        Ok(Self { listener, tls })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// A rustls acceptor (ring provider) from PEM certificate chain and key files.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read CARREL_SIP2_TLS_CERT_FILE {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "CARREL_SIP2_TLS_CERT_FILE {} holds no certificate",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read CARREL_SIP2_TLS_KEY_FILE {}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("CARREL_SIP2_TLS_CERT_FILE and CARREL_SIP2_TLS_KEY_FILE do not make a usable certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Counts open connections in the `sip2_connections` gauge while alive.
struct ConnectionGauge;

impl ConnectionGauge {
    fn open() -> Self {
        metrics::gauge!("sip2_connections").increment(1.0);
        ConnectionGauge
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        metrics::gauge!("sip2_connections").decrement(1.0);
    }
}

/// Serves SIP2 until `shutdown` is cancelled, then lets each connection finish
/// the message in hand (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(state: AppState, listener: Sip2Listener, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(state.config.sip2.max_connections));
    let guard = Arc::new(LoginGuard::default());
    let mut connections = JoinSet::new();
    tracing::info!(target: "sip2", address = ?listener.local_addr().ok(), tls = listener.is_tls(), "SIP2 is listening");
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(target: "sip2", %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!("sip2_connections_refused_total").increment(1);
            tracing::warn!(target: "sip2", %peer, "connection refused: CARREL_SIP2_MAX_CONNECTIONS reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (state, guard, shutdown, tls) = (
            state.clone(),
            guard.clone(),
            shutdown.clone(),
            listener.tls.clone(),
        );
        connections.spawn(async move {
            let _permit = permit;
            let _gauge = ConnectionGauge::open();
            let idle = state.config.sip2.idle_timeout;
            match tls {
                None => run_connection(state, guard, stream, peer, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(idle, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => run_connection(state, guard, stream, peer, shutdown).await,
                    Ok(Err(error)) => {
                        tracing::info!(target: "sip2", %peer, %error, "TLS handshake failed");
                    }
                    Err(_) => tracing::info!(target: "sip2", %peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    tracing::info!(target: "sip2", "SIP2 stopped");
}

/// The two-digit command of a frame, for logs and metrics (a fixed set of labels).
fn command_of(frame: &Frame) -> &'static str {
    const KNOWN: [&str; 13] = [
        "93", "99", "23", "63", "11", "09", "17", "29", "65", "35", "37", "97", "01",
    ];
    match frame {
        Frame::Oversized => "oversized",
        Frame::Message(bytes) => bytes
            .get(..2)
            .and_then(|code| KNOWN.iter().find(|k| k.as_bytes() == code))
            .copied()
            .unwrap_or("other"),
    }
}

/// What an answer says happened: `ok`, `refused` (ok flag 0/N, or a PIN that
/// did not verify) or `error` (96).
fn outcome_of(reply: &[u8]) -> &'static str {
    let flag = reply.get(2).copied();
    match reply.get(..2) {
        Some(b"96") => "error",
        Some(b"94" | b"12" | b"10" | b"30" | b"66") if flag != Some(b'1') => "refused",
        Some(b"38") if flag != Some(b'Y') => "refused",
        Some(b"24" | b"64") if reply.windows(4).any(|w| w == b"|CQN") => "refused",
        _ => "ok",
    }
}

async fn run_connection<S>(
    state: AppState,
    guard: Arc<LoginGuard>,
    stream: S,
    peer: SocketAddr,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let idle = state.config.sip2.idle_timeout;
    let encoding = state.config.sip2.encoding;
    let mut framed = Framed::new(stream, Sip2Framer::default());
    let library = Sip2Library {
        state,
        peer,
        guard,
        pins: crate::accounts::pins::PinMemo::default(),
    };
    let mut session = Session::new(library, encoding);
    loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => break,
            next = tokio::time::timeout(idle, framed.next()) => match next {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    tracing::debug!(target: "sip2", %peer, %error, "read failed");
                    break;
                }
                Err(_) => {
                    tracing::info!(target: "sip2", %peer, "connection idle: closed");
                    break;
                }
            },
        };
        let command = command_of(&frame);
        let started = Instant::now();
        let action = session.handle(frame).await;
        let terminal = session.terminal().map(|t| t.login.clone());
        let outcome = match &action {
            SessionAction::Reply(bytes) => outcome_of(bytes),
            SessionAction::Close => "closed",
        };
        let elapsed = started.elapsed();
        metrics::counter!("sip2_messages_total", "command" => command, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("sip2_message_duration_seconds", "command" => command)
            .record(elapsed.as_secs_f64());
        tracing::info!(
            target: "sip2",
            command,
            outcome,
            terminal = terminal.as_deref().unwrap_or("-"),
            %peer,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "sip2 message"
        );
        match action {
            SessionAction::Reply(bytes) => {
                if framed.send(bytes).await.is_err() {
                    break;
                }
            }
            SessionAction::Close => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_commands() {
        assert_eq!(outcome_of(b"941\r"), "ok");
        assert_eq!(outcome_of(b"940\r"), "refused");
        assert_eq!(outcome_of(b"120NUN20260101    000000AOx|\r"), "refused");
        assert_eq!(outcome_of(b"38N20260101\r"), "refused");
        assert_eq!(outcome_of(b"64  |BLY|CQN|AFx|\r"), "refused");
        assert_eq!(outcome_of(b"96\r"), "error");
        let frame = |s: &str| Frame::Message(bytes::BytesMut::from(s));
        assert_eq!(command_of(&frame("9300CNx|")), "93");
        assert_eq!(command_of(&frame("ZZ")), "other");
        assert_eq!(command_of(&frame("")), "other");
        assert_eq!(command_of(&Frame::Oversized), "oversized");
    }
}
