//! Building the application from configuration, and serving it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use carrel_core::Clock;
use carrel_store::{Store, StoreOptions};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use carrel_core::roles::Role;
use carrel_crypto::{JwtKeys, SecretsKey};
use carrel_mail::Mailer;

use crate::config::{Config, Environment, PaymentProviderKind, TOKEN_AUDIENCE};
use crate::passwords::PasswordHasher;
use crate::state::{AppParts, AppState};
use crate::telemetry;

/// The complete application: the JSON API, its docs, and the web pages beside
/// it, under one middleware stack.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes, which get the same middleware stack (for
/// embedding, and for tests that need a deliberately slow or failing route).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    crate::http::router_with(state, crate::web::router().merge(extra))
}

/// Connects to the database (creating the data directory for SQLite) without
/// touching the schema.
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create CARREL_DATA_DIR {}",
            config.data_dir.display()
        )
    })?;
    let options = StoreOptions {
        max_connections: config.database_max_connections,
        acquire_timeout: config.database_acquire_timeout,
    };
    let store = Store::connect(config.database_url.expose_secret(), &options)
        .await
        .context("cannot connect to the database (check CARREL_DATABASE_URL)")?;
    Ok(store.with_library_time(carrel_store::LibraryTime {
        zone: config.timezone.clone(),
        count_closed_days: config.fines_count_closed_days,
    }))
}

/// Everything the server needs, with migrations applied when configured: the
/// database, key material (generated into the data directory outside
/// production), the mailer and the password hasher.
pub async fn build_state(config: Config, clock: Arc<Clock>) -> anyhow::Result<AppState> {
    let store = connect_store(&config).await?;
    if config.auto_migrate {
        store
            .migrate()
            .await
            .context("cannot apply database migrations")?;
    }
    // PostgreSQL: follow revocations made by every instance, so the session
    // view may answer requests (until then every request reads the database).
    store.follow_revocations();
    let generate = config.env != Environment::Production;
    let jwt = JwtKeys::load_or_generate(
        &config.jwt_private_key_file,
        generate,
        &config.jwt_previous_key_files,
        &config.token_issuer(),
        TOKEN_AUDIENCE,
    )
    .context("cannot load the JWT signing key (CARREL_JWT_PRIVATE_KEY_FILE)")?;
    let secrets = SecretsKey::load_or_generate(&config.secrets_key_file, generate)
        .context("cannot load the secrets key (CARREL_SECRETS_KEY_FILE)")?;
    let mailer = Mailer::new(
        config.smtp_url.as_ref(),
        config.mail_outbox.clone(),
        &config.mail_from,
    )
    .context("cannot set up mail (CARREL_SMTP_URL / CARREL_MAIL_FROM)")?;
    let argon2 = config.argon2;
    let concurrency = config.hash_concurrency;
    // Computing the dummy hash takes one full hash: keep it off the runtime.
    let hasher = tokio::task::spawn_blocking(move || PasswordHasher::new(argon2, concurrency))
        .await?
        .context("invalid CARREL_ARGON2_* parameters")?;
    let limits = crate::limits::RateLimits::from_config(&config)?;
    let covers = carrel_media::CoverStore::from_url(&config.storage_url)
        .context("cannot set up cover storage (CARREL_STORAGE_URL)")?;
    Ok(AppState::new(AppParts {
        limits,
        covers,
        image_slots: Arc::new(tokio::sync::Semaphore::new(2)),
        payments: payment_provider(config.payment_provider),
        key_locks: crate::circulation::payments::KeyLocks::default(),
        instance_id: uuid::Uuid::new_v4(),
        password_policy: Arc::new(config.password_policy()),
        lockout: config.lockout_policy(),
        config: Arc::new(config),
        store,
        clock,
        metrics: telemetry::metrics_handle(),
        hasher,
        jwt: Arc::new(jwt),
        secrets: Arc::new(secrets),
        mailer,
    }))
}

/// The provider that takes online payments, if one is configured.
fn payment_provider(
    kind: PaymentProviderKind,
) -> Option<Arc<dyn crate::circulation::payments::PaymentProvider>> {
    match kind {
        PaymentProviderKind::None => None,
        // Config validation allows it only with CARREL_ENV=test.
        PaymentProviderKind::Test => Some(Arc::new(
            crate::circulation::payments::TestPaymentProvider::default(),
        )),
    }
}

/// Makes sure an administrator can get in: creates the bootstrap admin from
/// `CARREL_BOOTSTRAP_ADMIN_*` when no admin exists, or says how to create one.
pub async fn ensure_admin(state: &AppState) -> anyhow::Result<()> {
    if state.store.admin_exists().await? {
        return Ok(());
    }
    let (Some(email), Some(password)) = (
        &state.config.bootstrap_admin_email,
        &state.config.bootstrap_admin_password,
    ) else {
        tracing::warn!(
            "no admin account exists: create one with `carrel users create --role admin --email E --username U \
             --password-stdin`, or set CARREL_BOOTSTRAP_ADMIN_EMAIL and CARREL_BOOTSTRAP_ADMIN_PASSWORD"
        );
        return Ok(());
    };
    let new = crate::accounts::NewAccount {
        email: email.clone(),
        username: "admin".to_owned(),
        full_name: Some("Administrator".to_owned()),
        role: Role::Admin,
        password: Some(password.clone()),
        email_verified: true,
        card_number: None,
        category: None,
    };
    crate::accounts::create_account(state, new)
        .await
        .map_err(|e| {
            anyhow::anyhow!("CARREL_BOOTSTRAP_ADMIN_*: cannot create the bootstrap admin: {e}")
        })?;
    tracing::info!(email = %email, "created the bootstrap admin account");
    Ok(())
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting
/// connections and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The `CARREL_METRICS_BIND` listener: `GET /metrics` and nothing else. Binds
/// the configured address and serves until `shutdown` resolves; `None` when
/// the setting is unset (metrics are then on the main listener). Returns the
/// bound address (useful with port 0) and the serving task.
pub async fn spawn_metrics_listener(
    state: &AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)>> {
    let Some(bind) = state.config.metrics_bind else {
        return Ok(None);
    };
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (CARREL_METRICS_BIND)"))?;
    let address = listener.local_addr()?;
    let metrics_state = state.clone();
    let router = Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let state = metrics_state.clone();
                async move { crate::http::routes::ops::render_metrics(&state) }
            }),
        )
        .fallback(|| async { crate::http::error::ApiError::not_found() });
    let task = tokio::spawn(serve(listener, router, shutdown));
    Ok(Some((address, task)))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}
