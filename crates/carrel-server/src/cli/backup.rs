//! `carrel backup FILE` and `carrel restore FILE` for SQLite deployments.
//!
//! A backup is one uncompressed POSIX tar file (inspect it with `tar tvf`) holding
//! everything a SQLite deployment needs to come back:
//!
//! | entry | what |
//! |---|---|
//! | `carrel-backup.json` | manifest (always first): format, version, schema version, time, entries |
//! | `carrel.db` | the database, a consistent snapshot taken with `VACUUM INTO` while the server runs |
//! | `keys/jwt-ed25519.pem` | the JWT signing key, when it was generated into the data dir |
//! | `keys/secrets.key` | the secrets key (it decrypts TOTP secrets), when it was generated into the data dir |
//! | `uploads/NAME` | cover images, when `CARREL_STORAGE_URL` is a `file://` directory |
//!
//! Keys configured with `CARREL_JWT_PRIVATE_KEY_FILE` / `CARREL_SECRETS_KEY_FILE`
//! (as in production) live with the operator's other secrets and are not copied.
//! Because the bundle can hold keys, it is created with mode 0600 and must be
//! stored like a secret.

use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use carrel_core::Clock;
use carrel_store::Backend;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The manifest's `format` value.
pub const FORMAT: &str = "carrel-backup";
/// The bundle layout version this binary writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "carrel-backup.json";
const DATABASE: &str = "carrel.db";
const JWT_KEY: &str = "keys/jwt-ed25519.pem";
const SECRETS_KEY: &str = "keys/secrets.key";
const UPLOADS: &str = "uploads/";

/// The first entry of every bundle.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub carrel_version: String,
    pub schema_version: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Every other entry, in bundle order.
    pub entries: Vec<String>,
}

/// What `backup` wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    pub entries: Vec<String>,
    /// Things the operator must keep elsewhere (configured key files, S3 covers).
    pub notes: Vec<String>,
}

/// What `restore` wrote.
#[derive(Debug)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub schema_version: i64,
    pub created_at: String,
    pub restored: Vec<String>,
    pub notes: Vec<String>,
}

/// The SQLite file of a SQLite configuration, or the one-line refusal for PostgreSQL.
fn sqlite_database(config: &Config, command: &str) -> anyhow::Result<PathBuf> {
    let url = config.database_url.expose_secret();
    match Backend::from_url(url) {
        Some(Backend::Postgres) => bail!(
            "`carrel {command}` is for SQLite deployments; for PostgreSQL use pg_dump/pg_restore, or a base backup with WAL archiving (PITR); see docs/operations.md"
        ),
        _ => carrel_store::sqlite_file(url)
            .ok_or_else(|| anyhow!("CARREL_DATABASE_URL does not name a SQLite file")),
    }
}

/// The cover directory of a `file://` storage URL.
fn uploads_dir(config: &Config) -> Option<PathBuf> {
    config
        .storage_url
        .strip_prefix("file://")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// A cover file name as the file store writes them (`<uuid>.<ext>`): no dot
/// files (in-progress uploads), no separators.
fn is_upload_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn parent_or_dot(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates `path` for writing, readable by the owner only (it may hold keys).
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Moves `from` to `to` without ever replacing an existing `to`: a hard link
/// (which fails if `to` exists) then removing `from`; where the file system has
/// no hard links, a checked rename.
fn move_no_replace(from: &Path, to: &Path) -> anyhow::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => {
            fs::remove_file(from).with_context(|| format!("cannot remove {}", from.display()))?;
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            bail!("{} already exists; refusing to overwrite it", to.display())
        }
        Err(_) => {
            if fs::symlink_metadata(to).is_ok() {
                bail!("{} already exists; refusing to overwrite it", to.display());
            }
            fs::rename(from, to)
                .with_context(|| format!("cannot move the backup to {}", to.display()))?;
        }
    }
    sync_dir(parent_or_dot(to)).with_context(|| format!("cannot sync {}", to.display()))?;
    Ok(())
}

/// `carrel backup FILE`.
pub async fn backup(config: &Config, clock: &Clock, file: &Path) -> anyhow::Result<BackupReport> {
    let database = sqlite_database(config, "backup")?;
    if fs::symlink_metadata(file).is_ok() {
        bail!(
            "{} already exists; refusing to overwrite it",
            file.display()
        );
    }
    // Everything is written next to FILE (same file system), then moved into place.
    let parent = parent_or_dot(file);
    let work = tempfile::Builder::new()
        .prefix(".carrel-backup-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let snapshot = work.path().join(DATABASE);
    carrel_store::sqlite_vacuum_into(&database, &snapshot)
        .await
        .with_context(|| format!("cannot back up {}", database.display()))?;
    // The snapshot must itself be sound; its schema version goes in the manifest.
    let schema_version = carrel_store::check_sqlite_snapshot(&snapshot)
        .await
        .context("the snapshot failed its check")?;

    let mut notes = Vec::new();
    let mut files: Vec<(String, PathBuf)> = vec![(DATABASE.to_owned(), snapshot.clone())];
    for (entry, path, configured, variable) in [
        (
            JWT_KEY,
            &config.jwt_private_key_file,
            config.jwt_private_key_file_configured,
            "CARREL_JWT_PRIVATE_KEY_FILE",
        ),
        (
            SECRETS_KEY,
            &config.secrets_key_file,
            config.secrets_key_file_configured,
            "CARREL_SECRETS_KEY_FILE",
        ),
    ] {
        if configured {
            notes.push(format!(
                "{variable} is configured ({}): not in the backup, keep it with your secrets",
                path.display()
            ));
        } else if path.exists() {
            files.push((entry.to_owned(), path.clone()));
        }
    }
    if !config.jwt_previous_key_files.is_empty() {
        notes.push(
            "CARREL_JWT_PREVIOUS_KEY_FILES are configured: not in the backup, keep them with your secrets"
                .to_owned(),
        );
    }
    match uploads_dir(config) {
        Some(dir) if dir.is_dir() => {
            let mut names = Vec::new();
            for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.file_type()?.is_file() && is_upload_name(&name) {
                    names.push(name);
                }
            }
            names.sort();
            for name in names {
                files.push((format!("{UPLOADS}{name}"), dir.join(name)));
            }
        }
        Some(_) => {}
        None => notes.push(
            "covers are in object storage (CARREL_STORAGE_URL), not in the backup: back them up there"
                .to_owned(),
        ),
    }

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        carrel_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version,
        created_at: clock
            .now()
            .format(&time::format_description::well_known::Rfc3339)?,
        entries: files.iter().map(|(entry, _)| entry.clone()).collect(),
    };
    let bundle_path = work.path().join("bundle.tar");
    let bundle = create_private(&bundle_path)
        .with_context(|| format!("cannot create {}", bundle_path.display()))?;
    let mut tar = tar::Builder::new(bundle);
    tar.mode(tar::HeaderMode::Complete);
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    append_bytes(&mut tar, MANIFEST, &manifest_bytes)?;
    let mut skipped = Vec::new();
    for (entry, path) in &files {
        // A cover deleted since the listing is simply left out.
        match File::open(path) {
            Ok(mut source) => {
                tar.append_file(entry, &mut source)
                    .with_context(|| format!("cannot write {entry} into the backup"))?;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound && entry.starts_with(UPLOADS) => {
                skipped.push(entry.clone());
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        }
    }
    let bundle = tar.into_inner()?;
    bundle.sync_all()?;
    let bytes = bundle.metadata()?.len();
    drop(bundle);
    move_no_replace(&bundle_path, file)?;
    Ok(BackupReport {
        file: file.to_path_buf(),
        bytes,
        schema_version,
        entries: manifest
            .entries
            .into_iter()
            .filter(|e| !skipped.contains(e))
            .collect(),
        notes,
    })
}

fn append_bytes(tar: &mut tar::Builder<File>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(u64::try_from(bytes.len())?);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, bytes)
        .with_context(|| format!("cannot write {name} into the backup"))?;
    Ok(())
}

/// Where one restored entry goes.
struct Placement {
    entry: String,
    staged: PathBuf,
    target: PathBuf,
}

/// `carrel restore FILE`.
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<RestoreReport> {
    let database = sqlite_database(config, "restore")?;
    let mut wal = database.clone().into_os_string();
    wal.push("-wal");
    if database.exists() || Path::new(&wal).exists() {
        bail!(
            "{} already holds a database; restore needs a data dir without one",
            database.display()
        );
    }
    let bundle =
        File::open(file).with_context(|| format!("cannot open the backup {}", file.display()))?;
    let data_dir = parent_or_dot(&database).to_path_buf();
    fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".carrel-restore-")
        .tempdir_in(&data_dir)
        .with_context(|| format!("cannot write in {}", data_dir.display()))?;

    // 1. Unpack into the staging directory, accepting only the entries this
    //    format defines (never a path outside it).
    let mut archive = tar::Archive::new(bundle);
    let mut manifest: Option<Manifest> = None;
    let mut staged: Vec<(String, PathBuf)> = Vec::new();
    let invalid = || anyhow!("{} is not a carrel backup", file.display());
    for (index, entry) in archive.entries().map_err(|_| invalid())?.enumerate() {
        let mut entry = entry.map_err(|_| invalid())?;
        let name = entry
            .path()
            .map_err(|_| invalid())?
            .to_str()
            .ok_or_else(invalid)?
            .to_owned();
        if index == 0 {
            if name != MANIFEST {
                return Err(invalid());
            }
            let mut text = Vec::new();
            entry.read_to_end(&mut text)?;
            let parsed: Manifest = serde_json::from_slice(&text).map_err(|_| invalid())?;
            if parsed.format != FORMAT {
                return Err(invalid());
            }
            if parsed.format_version != FORMAT_VERSION {
                bail!(
                    "{} is backup format {}; this carrel reads format {FORMAT_VERSION}",
                    file.display(),
                    parsed.format_version
                );
            }
            manifest = Some(parsed);
            continue;
        }
        let allowed = name == DATABASE
            || name == JWT_KEY
            || name == SECRETS_KEY
            || name.strip_prefix(UPLOADS).is_some_and(is_upload_name);
        if !allowed || entry.header().entry_type() != tar::EntryType::Regular {
            bail!(
                "{}: unexpected entry {name:?} in the backup",
                file.display()
            );
        }
        let path = work.path().join(format!("{}", staged.len()));
        let mut out = create_private(&path)?;
        io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
        staged.push((name, path));
    }
    let manifest = manifest.ok_or_else(invalid)?;
    let staged_db = staged
        .iter()
        .find(|(name, _)| name == DATABASE)
        .map(|(_, path)| path.clone())
        .ok_or_else(|| anyhow!("{}: the backup holds no database", file.display()))?;
    if let Some(missing) = manifest
        .entries
        .iter()
        .find(|e| !e.starts_with(UPLOADS) && !staged.iter().any(|(name, _)| name == *e))
    {
        bail!(
            "{}: the backup is incomplete ({missing} is missing)",
            file.display()
        );
    }

    // 2. Verify the database before anything is put in place.
    let schema_version = carrel_store::verify_sqlite_backup(&staged_db)
        .await
        .with_context(|| format!("{} failed verification", file.display()))?;

    // 3. Plan where everything goes, refusing to replace anything that differs.
    let mut notes = Vec::new();
    let mut plan: Vec<Placement> = Vec::new();
    let uploads = uploads_dir(config);
    for (entry, path) in &staged {
        let (target, configured, variable) = if entry == JWT_KEY {
            (
                config.jwt_private_key_file.clone(),
                config.jwt_private_key_file_configured,
                "CARREL_JWT_PRIVATE_KEY_FILE",
            )
        } else if entry == SECRETS_KEY {
            (
                config.secrets_key_file.clone(),
                config.secrets_key_file_configured,
                "CARREL_SECRETS_KEY_FILE",
            )
        } else if let Some(name) = entry.strip_prefix(UPLOADS) {
            match &uploads {
                Some(dir) => (dir.join(name), false, "CARREL_STORAGE_URL"),
                None => {
                    notes.push(
                        "covers in the backup were not restored: CARREL_STORAGE_URL is not a file:// directory"
                            .to_owned(),
                    );
                    continue;
                }
            }
        } else {
            continue; // the database goes last, below
        };
        let same = fs::read(&target).ok() == Some(fs::read(path)?);
        if target.exists() {
            if same {
                continue;
            }
            if configured {
                notes.push(format!(
                    "{variable} ({}) differs from the key in the backup; the configured one is kept",
                    target.display()
                ));
                continue;
            }
            bail!(
                "{} already exists and differs from the backup; refusing to overwrite it",
                target.display()
            );
        }
        if configured {
            notes.push(format!(
                "{variable} ({}) does not exist; the backup's key was not written there",
                target.display()
            ));
            continue;
        }
        plan.push(Placement {
            entry: entry.clone(),
            staged: path.clone(),
            target,
        });
    }

    // 4. Keys and covers first, the database last: a database in place means a
    //    complete restore.
    let mut restored = Vec::new();
    for placement in plan {
        if let Some(dir) = placement.target.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        move_no_replace(&placement.staged, &placement.target)?;
        restored.push(placement.entry);
    }
    move_no_replace(&staged_db, &database)?;
    restored.push(DATABASE.to_owned());
    Ok(RestoreReport {
        database,
        schema_version,
        created_at: manifest.created_at,
        restored,
        notes,
    })
}

/// Prints a report line by line (stdout for facts, stderr for notes).
pub fn print_notes(notes: &[String]) {
    let mut stderr = io::stderr().lock();
    for note in notes {
        let _ = writeln!(stderr, "note: {note}");
    }
}
