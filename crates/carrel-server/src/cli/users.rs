//! `carrel users create` and `carrel users import`.

use std::collections::HashSet;
use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use anyhow::{Context as _, bail};
use carrel_core::identity;
use carrel_core::roles::Role;
use carrel_store::NewUser;
use secrecy::SecretString;
use uuid::Uuid;

use crate::accounts::{self, AccountError, NewAccount};
use crate::auth::passwords::is_supported_hash;
use crate::state::AppState;

/// Rows per transaction in an import.
const BATCH: usize = 500;

/// Creates an account with a password read from standard input.
pub async fn create(
    state: &AppState,
    email: String,
    username: String,
    role: Role,
    full_name: Option<String>,
) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    let new = NewAccount {
        email,
        username,
        full_name,
        role,
        password: Some(SecretString::from(password)),
        email_verified: true,
        card_number: None,
    };
    match accounts::create_account(state, new).await {
        Ok(user) => {
            println!("created {} {} ({})", role.as_str(), user.username, user.id);
            Ok(())
        }
        Err(AccountError::PasswordPolicy(violations)) => {
            let reasons: Vec<String> = violations.iter().map(|v| v.message()).collect();
            bail!("the password {}", reasons.join("; "))
        }
        Err(AccountError::InvalidFields(fields)) => {
            let reasons: Vec<String> = fields.iter().map(|(f, r)| format!("{f} {r}")).collect();
            bail!("{}", reasons.join("; "))
        }
        Err(other) => Err(anyhow::anyhow!("{other}")),
    }
}

/// What happened to an import.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    /// `(line number, reason)`.
    pub skipped: Vec<(u64, String)>,
}

/// Imports accounts from a CSV file; see [`super::UsersCommand::Import`].
pub async fn import(state: &AppState, path: &Path) -> anyhow::Result<ImportReport> {
    // Flexible: an unquoted argon2 hash (`m=19456,t=2,p=1`) spills its commas
    // into extra fields; when the hash is the last column they are joined back.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .context("cannot read the header row")?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(email_col), Some(username_col), Some(hash_col)) =
        (column("email"), column("username"), column("password_hash"))
    else {
        bail!("the header must name the columns email, username, full_name, role, password_hash");
    };
    let (name_col, role_col, card_col) =
        (column("full_name"), column("role"), column("card_number"));

    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let progress = std::io::stdout().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });

    let mut report = ImportReport::default();
    let mut seen_emails = HashSet::new();
    let mut seen_usernames = HashSet::new();
    let mut seen_cards = HashSet::new();
    let mut batch: Vec<(u64, NewUser)> = Vec::with_capacity(BATCH);
    let now = state.clock.now();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                report
                    .skipped
                    .push((line, format!("unreadable row: {error}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
        let hash = if hash_col + 1 == headers.len() && record.len() > headers.len() {
            record.iter().skip(hash_col).collect::<Vec<_>>().join(",")
        } else if record.len() != headers.len() {
            report.skipped.push((
                line,
                format!("expected {} columns, found {}", headers.len(), record.len()),
            ));
            continue;
        } else {
            field(Some(hash_col)).to_owned()
        };
        match parse_row(
            field(Some(email_col)),
            field(Some(username_col)),
            field(name_col),
            field(role_col),
            field(card_col),
            &hash,
            now,
        ) {
            Ok(mut user) => {
                if !seen_emails.insert(user.email_key.clone())
                    || !seen_usernames.insert(user.username_key.clone())
                    || user
                        .card_number
                        .as_ref()
                        .is_some_and(|card| !seen_cards.insert(card.clone()))
                {
                    report.skipped.push((
                        line,
                        "duplicate email, username or card number earlier in the file".into(),
                    ));
                    continue;
                }
                if user.card_number.is_none() {
                    user.card_number =
                        accounts::generated_card(state, user.role.parse().unwrap_or(Role::Patron));
                }
                batch.push((line, user));
            }
            Err(reason) => report.skipped.push((line, reason)),
        }
        if batch.len() == BATCH {
            flush(state, &mut batch, &mut report).await?;
        }
        if let Some(bar) = &progress {
            bar.set_position(record.position().map_or(0, |p| p.byte()));
            bar.set_message(format!("{} imported", report.imported));
        }
    }
    flush(state, &mut batch, &mut report).await?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    report.skipped.sort();
    Ok(report)
}

async fn flush(
    state: &AppState,
    batch: &mut Vec<(u64, NewUser)>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let users: Vec<NewUser> = batch.iter().map(|(_, u)| u.clone()).collect();
    let inserted = state
        .store
        .import_users(&users)
        .await
        .context("the import transaction failed")?;
    for ((line, _), ok) in batch.drain(..).zip(inserted) {
        if ok {
            report.imported += 1;
        } else {
            report
                .skipped
                .push((line, "email, username or card number already exists".into()));
        }
    }
    Ok(())
}

fn parse_row(
    email: &str,
    username: &str,
    full_name: &str,
    role: &str,
    card: &str,
    hash: &str,
    now: time::OffsetDateTime,
) -> Result<NewUser, String> {
    let card_number = if card.is_empty() {
        None
    } else {
        Some(
            carrel_core::cards::normalize_card_number(card)
                .map_err(|e| format!("card_number {e}"))?,
        )
    };
    let email = identity::normalize_email(email).map_err(|e| format!("email {e}"))?;
    let username = identity::validate_username(username).map_err(|e| format!("username {e}"))?;
    let full_name =
        identity::normalize_full_name(full_name).map_err(|e| format!("full_name {e}"))?;
    let role: Role = if role.is_empty() {
        Role::Patron
    } else {
        role.to_ascii_lowercase()
            .parse()
            .map_err(|_| format!("role `{role}` is not patron, librarian or admin"))?
    };
    // The hash is checked for shape only and never printed.
    if !is_supported_hash(hash) {
        return Err("password_hash is not a bcrypt or argon2 hash".into());
    }
    Ok(NewUser {
        id: Uuid::now_v7(),
        email_key: identity::email_key(&email),
        username_key: identity::username_key(&username),
        email,
        username,
        full_name,
        role: role.as_str().to_owned(),
        password_hash: Some(hash.to_owned()),
        email_verified: true,
        card_number,
        now,
    })
}
