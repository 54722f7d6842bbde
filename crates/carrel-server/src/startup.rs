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

use crate::config::Config;
use crate::state::AppState;
use crate::telemetry;

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
    Store::connect(config.database_url.expose_secret(), &options)
        .await
        .context("cannot connect to the database (check CARREL_DATABASE_URL)")
}

/// Everything the server needs, with migrations applied when configured.
pub async fn build_state(config: Config, clock: Arc<Clock>) -> anyhow::Result<AppState> {
    let store = connect_store(&config).await?;
    if config.auto_migrate {
        store
            .migrate()
            .await
            .context("cannot apply database migrations")?;
    }
    Ok(AppState {
        config: Arc::new(config),
        store,
        clock,
        metrics: telemetry::metrics_handle(),
    })
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
