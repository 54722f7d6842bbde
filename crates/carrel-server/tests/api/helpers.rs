//! The test harness: a real Carrel server on an ephemeral port, backed by a
//! fresh SQLite file or PostgreSQL schema, driven over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use carrel_core::Clock;
use carrel_server::config::Config;
use carrel_server::startup;
use carrel_server::state::AppState;
use carrel_store::Backend;
use carrel_store::testing::TestDatabase;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs each named `async fn(TestApp)` once per backend, as
/// `<name>::sqlite` and `<name>::postgres`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let Some(app) = $crate::helpers::TestApp::spawn(carrel_store::Backend::Sqlite).await else { return };
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = $crate::helpers::TestApp::spawn(carrel_store::Backend::Postgres).await else { return };
                super::$name(app).await;
            }
        }
    )*};
}
pub(crate) use backend_tests;

/// Like [`backend_tests!`], with extra `CARREL_*` variables for every test:
/// `backend_tests_with!(vec![("CARREL_X", "1".into())] => name, ...)`.
macro_rules! backend_tests_with {
    ($env:expr => $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let spawn = $crate::helpers::Spawn { env: $env, ..Default::default() };
                let Some(app) = $crate::helpers::TestApp::spawn_with(carrel_store::Backend::Sqlite, spawn).await else { return };
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let spawn = $crate::helpers::Spawn { env: $env, ..Default::default() };
                let Some(app) = $crate::helpers::TestApp::spawn_with(carrel_store::Backend::Postgres, spawn).await else { return };
                super::$name(app).await;
            }
        }
    )*};
}
pub(crate) use backend_tests_with;

/// Options for [`TestApp::spawn_with`].
#[derive(Default)]
pub struct Spawn<'a> {
    /// Extra `CARREL_*` variables (override the test defaults).
    pub env: Vec<(&'a str, String)>,
    /// Routes mounted behind the real middleware stack.
    pub extra_routes: Option<Router<AppState>>,
    /// Replaces the database URL (e.g. to go through a proxy).
    pub database_url: Option<String>,
    /// Also serve SIP2 on an ephemeral port (see [`TestApp::sip2_address`]).
    pub sip2: bool,
    /// Do not start the outbox sender (a "crashed" instance: mail stays queued).
    pub no_outbox_sender: bool,
}

/// A running server and what a test needs to drive and inspect it.
#[allow(dead_code)] // not every test module uses every field
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<Clock>,
    pub state: AppState,
    pub db: TestDatabase,
    /// The SIP2 listener, when spawned with `sip2: true`.
    pub sip2_address: Option<SocketAddr>,
    /// Stops the SIP2 listener (cancelled on drop).
    pub sip2_stop: tokio_util::sync::CancellationToken,
    pub sip2_task: Option<JoinHandle<()>>,
    /// The background outbox sender, unless spawned with `no_outbox_sender`.
    pub outbox_sender: Option<JoinHandle<()>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// A default test server, or `None` when the backend is unavailable (skipped).
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, Spawn::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Spawn<'_>) -> Option<Self> {
        let db = TestDatabase::create(backend).await?;
        let data_dir = db.dir().join("data");
        let database_url = options
            .database_url
            .clone()
            .unwrap_or_else(|| db.url().to_owned());
        let data_dir_text = data_dir.display().to_string();
        let mut vars: Vec<(&str, String)> = vec![
            ("CARREL_ENV", "test".into()),
            ("CARREL_DATA_DIR", data_dir_text),
            ("CARREL_DATABASE_URL", database_url),
            ("CARREL_DATABASE_MAX_CONNECTIONS", "5".into()),
            // The production default: a loaded CI machine (hundreds of servers on
            // 2 cores) can keep a connection busy for over a second, and a
            // shorter wait turned that into a dropped audit entry or a 503.
            ("CARREL_DATABASE_ACQUIRE_TIMEOUT", "5s".into()),
            // Cheap hashes: the suite hashes hundreds of passwords in a debug build.
            ("CARREL_ARGON2_MEMORY_KIB", "64".into()),
            ("CARREL_ARGON2_ITERATIONS", "1".into()),
            // Busy tests would trip the 300/min catch-all; the limit tests turn limits on.
            ("CARREL_RATE_LIMITS_ENABLED", "false".into()),
        ];
        vars.extend(options.env);
        let config = Config::from_pairs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .expect("valid test configuration");
        let clock = Arc::new(Clock::default());
        let state = startup::build_state(config, clock.clone())
            .await
            .expect("application state");
        let outbox_sender =
            (!options.no_outbox_sender).then(|| carrel_server::outbox::spawn(state.clone()));
        let router = startup::router_with(state.clone(), options.extra_routes.unwrap_or_default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("local address");
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(startup::serve(listener, router, async {
            let _ = rx.await;
        }));
        let sip2_stop = tokio_util::sync::CancellationToken::new();
        let (sip2_address, sip2_task) = if options.sip2 {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind SIP2");
            let listener =
                carrel_server::sip2::Sip2Listener::from_listener(listener, &state.config.sip2)
                    .expect("SIP2 listener");
            let address = listener.local_addr().expect("SIP2 address");
            let task = tokio::spawn(carrel_server::sip2::serve(
                state.clone(),
                listener,
                sip2_stop.clone(),
            ));
            (Some(address), Some(task))
        } else {
            (None, None)
        };
        Some(Self {
            outbox_sender,
            sip2_address,
            sip2_stop,
            sip2_task,
            address: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("carrel-tests/1.0")
                .build()
                .expect("client"),
            clock,
            state,
            db,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Signals shutdown without waiting; returns the server task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.take().expect("server still running")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(sender) = self.outbox_sender.take() {
            sender.abort();
        }
        self.sip2_stop.cancel();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts the contract's error body and returns it.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("X-Request-Id on every response");
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["details"].is_object(), "{body}");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    let timestamp = body["timestamp"].as_str().expect("timestamp");
    time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 timestamp");
    assert!(timestamp.ends_with('Z'), "UTC timestamp: {timestamp}");
    body
}

/// Runs one statement directly against the test database (outside the app).
pub async fn exec_sql(app: &TestApp, sql: &'static str) {
    match app.state.store.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(app.db.url())
                .await
                .expect("connect");
            sqlx::query(sql).execute(&pool).await.expect("statement");
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(app.db.url()).await.expect("connect");
            sqlx::query(sql).execute(&pool).await.expect("statement");
            pool.close().await;
        }
    }
    caught_up(app).await;
}

/// PostgreSQL: a change made behind Carrel's back reaches its session view by
/// notification (within half a second); wait for that before the next request.
async fn caught_up(app: &TestApp) {
    assert!(
        app.state
            .store
            .revocations_caught_up(std::time::Duration::from_secs(2))
            .await,
        "the session view did not catch up"
    );
}

/// Runs one statement directly against the test database and reports whether
/// the database accepted it (the SQL may differ per backend).
pub async fn try_sql(
    app: &TestApp,
    sqlite: &'static str,
    postgres: &'static str,
) -> Result<u64, String> {
    match app.state.store.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(app.db.url())
                .await
                .expect("connect");
            let result = sqlx::query(sqlite).execute(&pool).await;
            pool.close().await;
            result.map(|r| r.rows_affected()).map_err(|e| e.to_string())
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(app.db.url()).await.expect("connect");
            let result = sqlx::query(postgres).execute(&pool).await;
            pool.close().await;
            caught_up(app).await;
            result.map(|r| r.rows_affected()).map_err(|e| e.to_string())
        }
    }
}

/// A TCP proxy in front of a real database that can be cut and restored, to
/// make the database genuinely unreachable from the server's point of view.
pub struct CuttableProxy {
    pub addr: SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(upstream: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound); // refuse while "down"
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().expect("lock").push(task.abort_handle());
            }
        });
        Self {
            addr,
            up,
            connections,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for handle in self.connections.lock().expect("lock").drain(..) {
            handle.abort();
        }
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A password every test user gets; strong enough for the default policy.
pub const PASSWORD: &str = "Quiet-Lantern-Harbor-42";

/// A user created directly through the accounts service.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: uuid::Uuid,
    pub username: String,
    pub email: String,
}

impl TestApp {
    /// Creates an active, verified account with [`PASSWORD`].
    pub async fn create_user(&self, username: &str, role: carrel_core::roles::Role) -> TestUser {
        let email = format!("{username}@example.org");
        let user = carrel_server::accounts::create_account(
            &self.state,
            carrel_server::accounts::NewAccount {
                email: email.clone(),
                username: username.to_owned(),
                full_name: Some(format!("{username} Tester")),
                role,
                password: Some(secrecy::SecretString::from(PASSWORD.to_owned())),
                email_verified: true,
                card_number: None,
                category: None,
            },
        )
        .await
        .expect("create test user");
        TestUser {
            id: user.id,
            username: username.to_owned(),
            email,
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    /// Logs in and returns the token response body.
    pub async fn tokens(&self, username: &str, password: &str) -> Value {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), 200, "login of {username} failed");
        response.json().await.expect("token JSON")
    }

    /// Logs in and returns the access token.
    pub async fn access_token(&self, username: &str) -> String {
        self.tokens(username, PASSWORD).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A request with `Authorization: Bearer`.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Every email sent so far. First delivers every message of the durable
    /// outbox that is due now (deterministically: it drains them itself and
    /// waits only for ones the background sender is already sending).
    pub async fn outbox(&self) -> Vec<carrel_mail::OutboxMessage> {
        assert!(
            carrel_server::outbox::flush(&self.state, std::time::Duration::from_secs(10)).await,
            "mail outbox drained"
        );
        carrel_mail::read_outbox(&self.state.config.mail_outbox).unwrap_or_default()
    }

    /// Another application state on this test's database and data directory
    /// (a second "instance": its own pool, instance id and outbox signal),
    /// sharing the clock. Serves nothing and starts no background task.
    pub async fn another_instance(&self) -> AppState {
        let config = (*self.state.config).clone();
        startup::build_state(config, self.clock.clone())
            .await
            .expect("second application state")
    }

    /// The `token=` value of the newest email to `to` whose subject contains `subject`.
    pub async fn mailed_token(&self, to: &str, subject: &str) -> String {
        let mail = self
            .outbox()
            .await
            .into_iter()
            .rev()
            .find(|m| m.to.contains(to) && m.subject.contains(subject))
            .unwrap_or_else(|| panic!("no email to {to} about {subject:?}"));
        let start = mail.body.find("token=").expect("a link with a token") + "token=".len();
        mail.body[start..]
            .split_whitespace()
            .next()
            .expect("token")
            .to_owned()
    }

    /// Audit events of one type (via the store), newest first.
    pub async fn audit_events(&self, event_type: &str) -> Vec<carrel_store::AuditEvent> {
        self.state
            .store
            .list_audit_events(&carrel_store::AuditQuery {
                event_type: Some(event_type.to_owned()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("audit events")
    }
}

/// The body of an error response with the per-request parts removed, for
/// byte-for-byte comparison of "identical" answers.
pub async fn stable_error_body(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.expect("JSON");
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
        o.remove("timestamp");
    }
    (status, body.to_string())
}
