//! `carrel`: the server binary.

// Lint wall, as in the library (see lib.rs).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

use anyhow::Context as _;
use carrel_core::Clock;
use carrel_server::cli::{
    Cli, Command, ConfigCommand, Sip2AccountsCommand, Sip2Command, UsersCommand,
};
use carrel_server::config::Config;
use carrel_server::{cli, http, startup, telemetry};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("carrel: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("carrel: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Catalog { action }) = cli.command {
        // Import has its own exit statuses (3: some records failed).
        return runtime.block_on(cli::catalog::main(action, config));
    }
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, with the cause chain: "cannot connect to the database: ...".
            eprintln!("carrel: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            telemetry::init_logging(config.log_format);
            let store = startup::connect_store(&config).await?;
            store
                .migrate()
                .await
                .context("cannot apply database migrations")?;
            println!(
                "migrations applied (schema version {})",
                store.latest_migration()
            );
            Ok(())
        }
        Command::Config {
            action: ConfigCommand::Check,
        } => {
            for (name, value) in config.redacted() {
                println!("{name} = {value}");
            }
            println!("configuration OK");
            Ok(())
        }
        Command::Users { action } => {
            telemetry::init_logging(config.log_format);
            let state = startup::build_state(config, Clock::system()).await?;
            let result = match action {
                UsersCommand::Create {
                    email,
                    username,
                    role,
                    full_name,
                    password_stdin: _,
                } => cli::users::create(&state, email, username, role.into(), full_name).await,
                UsersCommand::Import { file } => {
                    let report = cli::users::import(&state, &file).await?;
                    for (line, reason) in &report.skipped {
                        println!("line {line}: skipped: {reason}");
                    }
                    println!(
                        "imported {} accounts, skipped {}",
                        report.imported,
                        report.skipped.len()
                    );
                    Ok(())
                }
            };
            state.store.close().await;
            result
        }
        Command::Sip2 {
            action: Sip2Command::Accounts { action },
        } => {
            telemetry::init_logging(config.log_format);
            let state = startup::build_state(config, Clock::system()).await?;
            let result = sip2_accounts(&state, action).await;
            state.store.close().await;
            result
        }
        Command::DemoData => {
            telemetry::init_logging(config.log_format);
            let state = startup::build_state(config, Clock::system()).await?;
            let report = cli::demo::load(&state).await;
            state.store.close().await;
            let report = report?;
            println!(
                "loaded {} items with {} copies",
                report.items, report.copies
            );
            for (username, password) in &report.patrons {
                println!("patron {username}  password {password}   (shown once)");
            }
            Ok(())
        }
        Command::Catalog { .. } => Ok(()),
        Command::Backup { file } => {
            let started = std::time::Instant::now();
            let report = cli::backup::backup(&config, &Clock::system(), &file).await?;
            cli::backup::print_notes(&report.notes);
            println!(
                "backup written to {} ({} bytes, schema version {}, {} entries: {}) in {:.2}s",
                report.file.display(),
                report.bytes,
                report.schema_version,
                report.entries.len(),
                summarise(&report.entries),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Restore { file } => {
            let report = cli::backup::restore(&config, &file).await?;
            cli::backup::print_notes(&report.notes);
            println!(
                "restored {} (schema version {}, backup of {}; {}); start the server to apply newer migrations",
                report.database.display(),
                report.schema_version,
                report.created_at,
                summarise(&report.restored),
            );
            Ok(())
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&http::openapi_document(config.env))?
            );
            Ok(())
        }
    }
}

async fn sip2_accounts(
    state: &carrel_server::state::AppState,
    action: Sip2AccountsCommand,
) -> anyhow::Result<()> {
    use carrel_server::sip2::terminals;
    match action {
        Sip2AccountsCommand::Add {
            login,
            institution,
            branch,
            password_stdin: _,
        } => {
            let mut password = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            let terminal = terminals::add(
                state,
                &login,
                &institution,
                branch.as_deref(),
                secrecy::SecretString::from(password),
            )
            .await?;
            println!("added SIP2 terminal {} ({})", terminal.login, terminal.id);
        }
        Sip2AccountsCommand::List => {
            for t in terminals::list(state).await? {
                println!(
                    "{}\tinstitution={}\tbranch={}\tcreated={}",
                    t.login,
                    t.institution,
                    t.branch_code.as_deref().unwrap_or("-"),
                    carrel_server::http::rfc3339(t.created_at)
                );
            }
        }
        Sip2AccountsCommand::Remove { login } => {
            terminals::remove(state, &login).await?;
            println!("removed SIP2 terminal {login}");
        }
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_logging(config.log_format);
    let bind = config.bind;
    let env = config.env;
    let state = startup::build_state(config, Clock::system()).await?;
    startup::ensure_admin(&state).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (CARREL_BIND)"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        env = env.as_str(),
        database = state.store.backend().name(),
        "carrel is serving"
    );
    let metrics = startup::spawn_metrics_listener(&state, startup::shutdown_signal()).await?;
    if let Some((address, _)) = &metrics {
        tracing::info!(%address, "metrics are served on CARREL_METRICS_BIND only");
    }
    let sip2_listener = carrel_server::sip2::Sip2Listener::bind(&state.config.sip2).await?;
    let router = startup::router(state.clone());
    let jobs = carrel_server::jobs::spawn(state.clone());
    let outbox = carrel_server::outbox::spawn(state.clone());
    let timing = carrel_server::auth::passwords::spawn_calibration(state.clone());
    let imports = carrel_server::catalog::marc::jobs::spawn_watcher(state.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let sip2 = sip2_listener.map(|listener| {
        tokio::spawn(carrel_server::sip2::serve(
            state.clone(),
            listener,
            stop.clone(),
        ))
    });
    let shutdown = {
        let stop = stop.clone();
        async move {
            startup::shutdown_signal().await;
            stop.cancel();
        }
    };
    let served = startup::serve(listener, router, shutdown).await;
    stop.cancel();
    if let Some(sip2) = sip2 {
        let _ = sip2.await;
    }
    served?;
    jobs.abort();
    // Mail committed by the last requests goes out now if it can; whatever is
    // left stays in the outbox for the next start or another instance.
    let _ = carrel_server::outbox::flush(&state, std::time::Duration::from_secs(5)).await;
    outbox.abort();
    timing.abort();
    imports.abort();
    if let Some((_, task)) = metrics {
        task.abort();
    }
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `carrel.db, keys/secrets.key, 12 uploads` for a list of bundle entries.
fn summarise(entries: &[String]) -> String {
    let uploads = entries.iter().filter(|e| e.starts_with("uploads/")).count();
    let mut parts: Vec<String> = entries
        .iter()
        .filter(|e| !e.starts_with("uploads/"))
        .cloned()
        .collect();
    if uploads > 0 {
        parts.push(format!("{uploads} uploads"));
    }
    parts.join(", ")
}
