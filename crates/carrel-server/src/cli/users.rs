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
use crate::passwords::is_supported_hash;
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
        category: None,
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
    let mut reader = csv_reader()
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .context("cannot read the header row")?
        .clone();
    let columns = Columns::from_headers(&headers)?;

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
    let categories: HashSet<String> = state
        .store
        .list_patron_categories()
        .await
        .context("cannot read the patron categories")?
        .into_iter()
        .map(|c| c.code)
        .collect();
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
        let row = read_row(&columns, &record, now).and_then(|mut user| {
            user.category = row_category(&columns, &record, &categories)?;
            Ok(user)
        });
        match row {
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
                    user.card_number = accounts::generated_card(state, user.role);
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

/// How import files are read. Flexible: an unquoted argon2 hash (`m=19456,t=2,p=1`)
/// spills its commas into extra fields; when the hash is the last column they are
/// joined back ([`read_row`]).
fn csv_reader() -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder.flexible(true).trim(csv::Trim::All);
    builder
}

/// Where each column of an import file is, from its header row (any order, any case).
#[derive(Debug, Clone, Copy)]
struct Columns {
    count: usize,
    email: usize,
    username: usize,
    full_name: Option<usize>,
    role: Option<usize>,
    card_number: Option<usize>,
    category: Option<usize>,
    password_hash: usize,
}

impl Columns {
    fn from_headers(headers: &csv::StringRecord) -> anyhow::Result<Self> {
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(email), Some(username), Some(password_hash)) =
            (column("email"), column("username"), column("password_hash"))
        else {
            bail!(
                "the header must name the columns email, username, full_name, role, password_hash"
            );
        };
        Ok(Self {
            count: headers.len(),
            email,
            username,
            full_name: column("full_name"),
            role: column("role"),
            card_number: column("card_number"),
            category: column("category"),
            password_hash,
        })
    }
}

/// The optional `category` column of a row: a defined patron category code
/// (any case), or empty for the default category.
fn row_category(
    columns: &Columns,
    record: &csv::StringRecord,
    defined: &HashSet<String>,
) -> Result<Option<String>, String> {
    let Some(typed) = columns.category.and_then(|i| record.get(i)) else {
        return Ok(None);
    };
    if typed.is_empty() {
        return Ok(None);
    }
    let code = typed.to_ascii_lowercase();
    if defined.contains(&code) {
        Ok(Some(code))
    } else {
        Err(format!(
            "category `{typed}` is not a defined patron category"
        ))
    }
}

/// One data row as an account, or why it is skipped.
fn read_row(
    columns: &Columns,
    record: &csv::StringRecord,
    now: time::OffsetDateTime,
) -> Result<NewUser, String> {
    let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
    let hash = if columns.password_hash + 1 == columns.count && record.len() > columns.count {
        record
            .iter()
            .skip(columns.password_hash)
            .collect::<Vec<_>>()
            .join(",")
    } else if record.len() != columns.count {
        return Err(format!(
            "expected {} columns, found {}",
            columns.count,
            record.len()
        ));
    } else {
        field(Some(columns.password_hash)).to_owned()
    };
    parse_row(
        field(Some(columns.email)),
        field(Some(columns.username)),
        field(columns.full_name),
        field(columns.role),
        field(columns.card_number),
        &hash,
        now,
    )
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
        role,
        password_hash: Some(hash.to_owned()),
        email_verified: true,
        card_number,
        category: None,
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use proptest::prelude::*;

    const NOW: time::OffsetDateTime = time::macros::datetime!(2026-01-01 00:00 UTC);

    /// The columns of a file, in one of the orders an export might use.
    const LAYOUTS: [&[&str]; 4] = [
        &["email", "username", "full_name", "role", "password_hash"],
        &["password_hash", "Email", "USERNAME", "full_name", "role"],
        &["email", "password_hash", "role", "username", "full_name"],
        &["email", "username", "password_hash"],
    ];

    /// An account as exported: fields as typed, and the password hash.
    #[derive(Debug, Clone)]
    struct Exported {
        email: String,
        username: String,
        full_name: String,
        role: &'static str,
        hash: String,
    }

    fn hash() -> impl Strategy<Value = String> {
        prop_oneof![
            (
                prop::sample::select(vec!["argon2id", "argon2i", "argon2d"]),
                any::<[u8; 16]>(),
                any::<[u8; 32]>()
            )
                .prop_map(|(alg, salt, out)| format!(
                    "${alg}$v=19$m=19456,t=2,p=1${}${}",
                    STANDARD_NO_PAD.encode(salt),
                    STANDARD_NO_PAD.encode(out)
                )),
            (
                prop::sample::select(vec!["2a", "2b", "2y"]),
                "[./A-Za-z0-9]{53}"
            )
                .prop_map(|(v, rest)| format!("${v}$12${rest}")),
        ]
    }

    fn exported() -> impl Strategy<Value = Exported> {
        (
            "[a-zA-Z0-9+_-]{1,12}(\\.[a-z0-9]{1,5})?@[a-zA-Z0-9]{1,10}\\.[a-zA-Z]{2,6}",
            "[A-Za-z0-9_.-]{3,32}",
            "[\\p{L} ,'\"-]{0,30}",
            prop::sample::select(vec!["", "patron", "Librarian", "ADMIN"]),
            hash(),
        )
            .prop_map(|(email, username, full_name, role, hash)| Exported {
                email,
                username,
                full_name,
                role,
                hash,
            })
    }

    /// `rows` under the header `layout`: through a CSV writer (quoting what needs it), or
    /// joined by hand with the hash unquoted when it is the last column (its commas then
    /// spill into extra fields).
    fn file(layout: &[&str], rows: &[Exported], by_hand: bool) -> String {
        let value = |row: &Exported, column: &str| match column.to_ascii_lowercase().as_str() {
            "email" => row.email.clone(),
            "username" => row.username.clone(),
            "full_name" => row.full_name.clone(),
            "role" => row.role.to_owned(),
            _ => row.hash.clone(),
        };
        let plain = |s: &str| !s.contains([',', '"', '\n', '\r']);
        let hash_last = layout.last().is_some_and(|c| *c == "password_hash");
        if by_hand && hash_last {
            let mut out = layout.join(",") + "\n";
            for row in rows {
                let fields: Vec<String> = layout.iter().map(|c| value(row, c)).collect();
                if fields[..fields.len() - 1].iter().all(|f| plain(f)) {
                    out += &(fields.join(",") + "\n");
                } else {
                    let mut writer = csv::Writer::from_writer(Vec::new());
                    writer.write_record(&fields).unwrap();
                    out += std::str::from_utf8(&writer.into_inner().unwrap()).unwrap();
                }
            }
            return out;
        }
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(layout).unwrap();
        for row in rows {
            writer
                .write_record(layout.iter().map(|c| value(row, c)))
                .unwrap();
        }
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    }

    /// Every row of `text` through the import's own reader and row parser.
    fn read_all(text: &str) -> anyhow::Result<Vec<Result<NewUser, String>>> {
        let mut reader = csv_reader().from_reader(text.as_bytes());
        let columns = Columns::from_headers(&reader.headers()?.clone())?;
        Ok(reader
            .records()
            .map(|record| match record {
                Ok(record) => read_row(&columns, &record, NOW),
                Err(e) => Err(format!("unreadable row: {e}")),
            })
            .collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Exported accounts, written in any column order, quoted or not, import as
        /// themselves (email domain lower-cased, names trimmed, roles any case).
        #[test]
        fn exported_accounts_round_trip(
            layout in 0..LAYOUTS.len(),
            rows in prop::collection::vec(exported(), 1..6),
            by_hand in any::<bool>(),
        ) {
            let layout = LAYOUTS[layout];
            let read = read_all(&file(layout, &rows, by_hand)).unwrap();
            prop_assert_eq!(read.len(), rows.len());
            for (row, user) in rows.iter().zip(read) {
                let user = user.unwrap();
                let has = |c: &str| layout.contains(&c);
                prop_assert_eq!(user.email, identity::normalize_email(&row.email).unwrap());
                prop_assert_eq!(user.username, row.username.trim());
                let name = if has("full_name") { identity::normalize_full_name(&row.full_name).unwrap() } else { None };
                prop_assert_eq!(user.full_name, name);
                let role = if has("role") && !row.role.is_empty() { row.role.to_ascii_lowercase() } else { "patron".into() };
                prop_assert_eq!(user.role.as_str(), role);
                prop_assert_eq!(user.password_hash.as_deref(), Some(row.hash.as_str()));
            }
        }

        /// Any file text is read row by row without a panic; whatever is accepted
        /// passes every field check again.
        #[test]
        fn any_file_is_read_without_panic(
            header in prop::sample::select(LAYOUTS.to_vec()),
            body in "(\\PC|[,\"\n\r ]){0,300}",
            valid in prop::collection::vec(exported(), 0..3),
        ) {
            let text = format!("{}\n{body}\n{}", header.join(","), file(header, &valid, false).split_once('\n').unwrap().1);
            for user in read_all(&text).unwrap().into_iter().flatten() {
                prop_assert_eq!(identity::normalize_email(&user.email), Ok(user.email.clone()));
                prop_assert_eq!(identity::validate_username(&user.username), Ok(user.username.clone()));
                prop_assert!(identity::normalize_full_name(user.full_name.as_deref().unwrap_or("")).is_ok());
                prop_assert!(["patron", "librarian", "admin"].contains(&user.role.as_str()));
                prop_assert!(is_supported_hash(user.password_hash.as_deref().unwrap_or("")));
            }
        }
    }
}
