//! The [`Mailer`]: transport selection, immediate sends and the background queue.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use secrecy::SecretString;
use tokio::sync::{Semaphore, mpsc, watch};
use uuid::Uuid;

use crate::smtp::{Failure, SmtpRelay};
use crate::{Email, MailError, Priority, outbox};

/// Capacity of the background queue's normal lane; [`Mailer::send_later`] drops (and logs)
/// beyond it.
pub const QUEUE_CAPACITY: usize = 1024;

/// Capacity of the lane for [`Priority::Security`] mail, reserved for it alone.
pub const SECURITY_QUEUE_CAPACITY: usize = 256;

/// Waits before the 2nd, 3rd and 4th delivery attempt of a queued message.
pub const DEFAULT_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(25),
];

/// Concurrent SMTP deliveries of the background task (outbox writes are sequential so that
/// outbox files appear in queue order).
const SMTP_CONCURRENCY: usize = 4;

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    /// An SMTP relay (see [`SmtpRelay::from_url`]).
    Smtp(SmtpRelay),
    /// A directory of `.eml` files (see [`crate::read_outbox`]).
    Outbox(PathBuf),
}

impl Transport {
    /// `"smtp"` or `"outbox"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        }
    }
}

/// Sends [`Email`]s now ([`send`](Self::send)) or in the background
/// ([`send_later`](Self::send_later)). Cheap to clone: clones share the transport and queue.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<Core>,
    /// Senders of the background queue's lanes; created (with their worker task) on
    /// first `send_later`, and re-created if the worker's runtime went away.
    queue: Mutex<Option<Lanes>>,
    /// Number of queued or in-flight background messages.
    pending: Arc<watch::Sender<usize>>,
}

/// What the background task needs; shared with it, so dropping every `Mailer` closes the
/// queue and lets the task finish the messages still queued and then exit.
struct Core {
    transport: Transport,
    from: Mailbox,
    from_domain: String,
    retry_delays: Vec<Duration>,
}

/// The two lanes of the background queue.
struct Lanes {
    normal: mpsc::Sender<Queued>,
    security: mpsc::Sender<Queued>,
}

impl Lanes {
    fn is_closed(&self) -> bool {
        self.normal.is_closed() || self.security.is_closed()
    }
}

/// A queued message; the guard keeps it counted in `pending` until it is delivered, given
/// up on, or dropped with its queue or task.
struct Queued {
    email: Email,
    _guard: PendingGuard,
}

struct PendingGuard(Arc<watch::Sender<usize>>);

impl PendingGuard {
    fn new(pending: &Arc<watch::Sender<usize>>) -> Self {
        pending.send_modify(|n| *n += 1);
        Self(Arc::clone(pending))
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.inner.core.transport)
            .field("from", &self.inner.core.from.to_string())
            .field("retry_delays", &self.inner.core.retry_delays)
            .field("pending", &*self.inner.pending.borrow())
            .finish()
    }
}

impl Mailer {
    /// SMTP when `smtp_url` is `Some` (see [`SmtpRelay::from_url`]: `smtp://user:pass@host:587`
    /// requires STARTTLS, `smtps://…:465` uses implicit TLS, query parameters are refused,
    /// and plaintext is used only for `smtp://` to a loopback host without credentials);
    /// otherwise a file outbox in `outbox_dir`, created if missing (`outbox_dir` is unused
    /// with SMTP). `from` is a mailbox like `Carrel <no-reply@localhost>`.
    ///
    /// Never spawns anything, so it may be called outside a tokio runtime.
    pub fn new(
        smtp_url: Option<&SecretString>,
        outbox_dir: PathBuf,
        from: &str,
    ) -> Result<Self, MailError> {
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(SmtpRelay::from_url(url)?),
            None => Transport::Outbox(outbox_dir),
        };
        Self::with_transport(transport, from)
    }

    /// Like [`new`](Self::new) with an explicit transport.
    pub fn with_transport(transport: Transport, from: &str) -> Result<Self, MailError> {
        let from: Mailbox = from
            .trim()
            .parse()
            .map_err(|e| MailError::Config(format!("invalid from address {from:?}: {e}")))?;
        if let Transport::Outbox(dir) = &transport {
            std::fs::create_dir_all(dir)?;
        }
        let from_domain = from.email.domain().to_owned();
        Ok(Self::from_core(Core {
            transport,
            from,
            from_domain,
            retry_delays: DEFAULT_RETRY_DELAYS.to_vec(),
        }))
    }

    fn from_core(core: Core) -> Self {
        Self {
            inner: Arc::new(Inner {
                core: Arc::new(core),
                queue: Mutex::new(None),
                pending: Arc::new(watch::Sender::new(0)),
            }),
        }
    }

    /// Replaces the waits between background delivery attempts (default
    /// [`DEFAULT_RETRY_DELAYS`]: 1 s, 5 s, 25 s); a queued message is attempted
    /// `1 + delays.len()` times. Meant for tests and configuration: call it before first
    /// use, as the returned mailer gets a fresh queue of its own.
    pub fn with_retry_delays(self, delays: impl Into<Vec<Duration>>) -> Self {
        let core = &self.inner.core;
        Self::from_core(Core {
            transport: core.transport.clone(),
            from: core.from.clone(),
            from_domain: core.from_domain.clone(),
            retry_delays: delays.into(),
        })
    }

    /// `"smtp"` or `"outbox"` (for logs).
    pub fn kind(&self) -> &'static str {
        self.inner.core.transport.kind()
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.core.transport
    }

    /// The outbox directory, if this mailer writes files.
    pub fn outbox_dir(&self) -> Option<&Path> {
        match &self.inner.core.transport {
            Transport::Outbox(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// Messages queued by [`send_later`](Self::send_later) and not yet delivered or given up.
    pub fn pending(&self) -> usize {
        *self.inner.pending.borrow()
    }

    /// Sends now (awaits the transport; a single attempt, no retries).
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let core = &self.inner.core;
        let prepared = core.prepare(email)?;
        core.deliver(&prepared).await.map_err(|f| f.error)
    }

    /// Queues for background delivery and returns at once; never fails or panics.
    ///
    /// The background task is spawned on the current tokio runtime at first use. Messages
    /// take the lane of their [`Priority`]: the security lane
    /// ([`SECURITY_QUEUE_CAPACITY`]) is served before the normal one
    /// ([`QUEUE_CAPACITY`]), and a full normal lane never takes its room. Outside a runtime,
    /// or when the message's lane is full, the message is dropped with a warning. Failed deliveries are retried after each of the retry delays; the final
    /// failure is logged with `tracing::warn!` (recipient domain and subject, never the body).
    pub fn send_later(&self, email: Email) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                recipient_domain = %recipient_domain(&email.to),
                subject = %email.subject,
                "email dropped: send_later was called outside a tokio runtime"
            );
            return;
        };
        let item = Queued {
            _guard: PendingGuard::new(&self.inner.pending),
            email,
        };
        let mut queue = self
            .inner
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let lanes = match queue.as_ref() {
            Some(lanes) if !lanes.is_closed() => lanes,
            _ => {
                let (normal, normal_rx) = mpsc::channel(QUEUE_CAPACITY);
                let (security, security_rx) = mpsc::channel(SECURITY_QUEUE_CAPACITY);
                runtime.spawn(worker(Arc::clone(&self.inner.core), security_rx, normal_rx));
                queue.insert(Lanes { normal, security })
            }
        };
        let sender = match item.email.priority {
            Priority::Normal => &lanes.normal,
            Priority::Security => &lanes.security,
        };
        if let Err(e) = sender.try_send(item) {
            let (reason, item) = match e {
                mpsc::error::TrySendError::Full(item) => ("the mail queue is full", item),
                mpsc::error::TrySendError::Closed(item) => ("the mail queue is closed", item),
            };
            tracing::warn!(
                recipient_domain = %recipient_domain(&item.email.to),
                subject = %item.email.subject,
                "email dropped: {reason}"
            );
        }
    }

    /// Waits until the queue is empty and nothing is in flight, at most `timeout`;
    /// returns whether that happened.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let mut pending = self.inner.pending.subscribe();
        matches!(
            tokio::time::timeout(timeout, pending.wait_for(|n| *n == 0)).await,
            Ok(Ok(_))
        )
    }
}

/// A built message, ready for (repeated) delivery attempts.
struct Prepared {
    id: Uuid,
    message: Message,
}

impl Core {
    fn prepare(&self, email: &Email) -> Result<Prepared, MailError> {
        let to: Mailbox = email
            .to
            .trim()
            .parse()
            .map_err(|e| MailError::Address(format!("{e}")))?;
        let id = Uuid::now_v7();
        let body = match self.transport {
            // Keep the outbox readable with plain substring search: no quoted-printable
            // soft line breaks or `=3D` inside links.
            Transport::Outbox(_) => readable_body(&email.body),
            // Over SMTP let lettre choose (7bit, else quoted-printable/base64): safe even
            // for servers without 8BITMIME.
            Transport::Smtp(_) => Body::new(email.body.clone()),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{id}@{}>", self.from_domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Send(format!("cannot build message: {e}")))?;
        Ok(Prepared { id, message })
    }

    async fn deliver(&self, prepared: &Prepared) -> Result<(), Failure> {
        match &self.transport {
            Transport::Smtp(relay) => relay.send(prepared.message.clone()).await,
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let id = prepared.id;
                let bytes = prepared.message.formatted();
                let written =
                    tokio::task::spawn_blocking(move || outbox::write_eml(&dir, id, &bytes)).await;
                match written {
                    Ok(Ok(_path)) => Ok(()),
                    Ok(Err(e)) => Err(Failure {
                        error: MailError::Io(e),
                        permanent: false,
                    }),
                    Err(e) => Err(Failure {
                        error: MailError::Send(format!("outbox writer task failed: {e}")),
                        permanent: false,
                    }),
                }
            }
        }
    }
}

/// 7bit for ASCII, else 8bit, so links stay intact on one line; quoted-printable (which
/// `read_outbox` decodes) only if a line is too long even for that (over 998 octets) or the
/// text contains NUL or a bare CR.
///
/// lettre's own choice (`Body::new`/`new_with_encoding`) switches to quoted-printable as
/// soon as a line reaches 76 characters, which would split and `=3D`-escape long links;
/// hence the pre-encoded body with our own RFC 5322 checks.
fn readable_body(body: &str) -> Body {
    let crlf = body.replace("\r\n", "\n").replace('\n', "\r\n");
    let ok = !crlf.contains('\0')
        && crlf
            .split("\r\n")
            .all(|line| line.len() <= 998 && !line.contains('\r'));
    if !ok {
        return Body::new_with_encoding(body.to_owned(), ContentTransferEncoding::QuotedPrintable)
            .unwrap_or_else(|_| Body::new(body.to_owned()));
    }
    let encoding = if crlf.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(crlf.into_bytes(), encoding)
}

/// The part after the last `@` (without a closing `>`), for logs that must not name people.
fn recipient_domain(to: &str) -> &str {
    to.rsplit_once('@')
        .map(|(_, domain)| domain.trim().trim_end_matches('>'))
        .unwrap_or("(invalid address)")
}

async fn worker(
    core: Arc<Core>,
    mut security: mpsc::Receiver<Queued>,
    mut normal: mpsc::Receiver<Queued>,
) {
    let concurrency = match core.transport {
        Transport::Smtp(_) => SMTP_CONCURRENCY,
        Transport::Outbox(_) => 1,
    };
    let slots = Arc::new(Semaphore::new(concurrency));
    loop {
        // The slot comes first and the security lane is asked first, so each free slot
        // goes to security mail whenever some is waiting, however long the normal lane.
        // Taking the slot before spawning keeps first attempts in queue order per lane.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let item = tokio::select! {
            biased;
            Some(item) = security.recv() => item,
            Some(item) = normal.recv() => item,
            else => break,
        };
        tokio::spawn(deliver_with_retries(
            Arc::clone(&core),
            item,
            slot,
            Arc::clone(&slots),
        ));
    }
}

async fn deliver_with_retries(
    core: Arc<Core>,
    item: Queued,
    first_slot: tokio::sync::OwnedSemaphorePermit,
    slots: Arc<Semaphore>,
) {
    let email = &item.email;
    let domain = recipient_domain(&email.to);
    let prepared = match core.prepare(email) {
        Ok(prepared) => prepared,
        Err(error) => {
            tracing::warn!(
                recipient_domain = %domain,
                subject = %email.subject,
                error = %error,
                "email not sent: it could not be built"
            );
            return;
        }
    };
    let attempts = 1 + core.retry_delays.len();
    let mut slot = Some(first_slot);
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(core.retry_delays[attempt - 2]).await;
            slot = Arc::clone(&slots).acquire_owned().await.ok();
        }
        let result = core.deliver(&prepared).await;
        drop(slot.take());
        match result {
            Ok(()) => {
                tracing::debug!(
                    recipient_domain = %domain,
                    subject = %email.subject,
                    attempt,
                    transport = core.transport.kind(),
                    "email delivered"
                );
                return;
            }
            Err(failure) if failure.permanent || attempt == attempts => {
                tracing::warn!(
                    recipient_domain = %domain,
                    subject = %email.subject,
                    attempts = attempt,
                    permanent = failure.permanent,
                    error = %failure.error,
                    "email delivery failed; giving up"
                );
                return;
            }
            Err(failure) => {
                tracing::info!(
                    recipient_domain = %domain,
                    subject = %email.subject,
                    attempt,
                    retry_in_ms = core.retry_delays[attempt - 1].as_millis() as u64,
                    error = %failure.error,
                    "email delivery failed; will retry"
                );
            }
        }
    }
}
