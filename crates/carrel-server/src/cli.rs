//! The `carrel` command line.

use clap::{Parser, Subcommand};

/// Carrel: a library-management server (catalog, circulation, holds, fines, patrons).
///
/// Configuration comes from CARREL_* environment variables, an optional carrel.toml
/// (path in CARREL_CONFIG) and a .env file; see `carrel config check`.
#[derive(Debug, Parser)]
#[command(name = "carrel", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default). Applies pending migrations first when
    /// CARREL_AUTO_MIGRATE is true.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// Print the OpenAPI document to standard output.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, print it with secrets redacted, and exit
    /// non-zero on any problem.
    Check,
}
