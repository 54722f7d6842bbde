//! The `carrel` command line: argument definitions here, account commands in
//! [`users`], backups in [`backup`].

pub mod backup;
pub mod catalog;
pub mod demo;
pub mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Load a small sample catalog (public-domain titles) and a few patrons into
    /// an empty database, for trying the system out.
    DemoData,
    /// Move a catalog in and out as MARC 21 (ISO 2709 or MARCXML).
    Catalog {
        #[command(subcommand)]
        action: catalog::CatalogCommand,
    },
    /// Write a consistent backup of a SQLite deployment to FILE while the server
    /// runs: the database (VACUUM INTO), the keys generated into the data dir and
    /// file-stored covers, as one tar file (mode 0600: it may hold keys). Refuses
    /// to overwrite FILE. PostgreSQL: use pg_dump or base backups with WAL archiving.
    Backup {
        /// The backup file to create (must not exist).
        file: PathBuf,
    },
    /// Restore a backup made by `carrel backup` into the configured data dir,
    /// which must hold no database. The backup is verified first (integrity check,
    /// schema not newer than this binary).
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Manage accounts.
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// SIP2 self-check terminals.
    Sip2 {
        #[command(subcommand)]
        action: Sip2Command,
    },
}

#[derive(Debug, Subcommand)]
pub enum Sip2Command {
    /// Terminal accounts (what a self-check machine logs in with).
    Accounts {
        #[command(subcommand)]
        action: Sip2AccountsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum Sip2AccountsCommand {
    /// Add a terminal account; the password is read from standard input.
    Add {
        /// The login the terminal sends in CN.
        #[arg(long)]
        login: String,
        /// The institution id (AO) the terminal belongs to.
        #[arg(long)]
        institution: String,
        /// The terminal's branch code.
        #[arg(long)]
        branch: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List terminal accounts.
    List,
    /// Remove a terminal account.
    Remove {
        /// The login to remove.
        login: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an active, email-verified account. The password is read from
    /// standard input and checked against the password policy.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Patron)]
        role: RoleArg,
        #[arg(long)]
        full_name: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Import accounts from CSV with the columns email, username, full_name, role,
    /// password_hash (bcrypt `$2b$…` or an argon2 PHC string, upgraded at the next
    /// login) and optionally card_number. Invalid or duplicate rows are reported by
    /// line number and skipped.
    Import {
        /// The CSV file (with a header row).
        file: PathBuf,
    },
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Patron,
    Librarian,
    Admin,
}

impl From<RoleArg> for carrel_core::roles::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Patron => Self::Patron,
            RoleArg::Librarian => Self::Librarian,
            RoleArg::Admin => Self::Admin,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, print it with secrets redacted, and exit
    /// non-zero on any problem.
    Check,
}
