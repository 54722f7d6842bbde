//! `carrel catalog import` and `carrel catalog export`: MARC 21 in and out.
//!
//! Import exits 0 when no record failed, 3 when some did, 1 on a fatal error
//! (configuration, database, a file that cannot be read). The last line on
//! standard output is `imported N, updated M, skipped K, failed F`.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use carrel_core::Clock;
use carrel_marc::{Iso2709Writer, MarcXmlWriter, Record};
use carrel_store::{ImportCounts, ImportIssue, NewAuditEvent, Store};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::catalog::marc::import::{self, Observer, Settings};
use crate::catalog::marc::{self, Format, MatchMode};
use crate::config::Config;
use crate::startup;

/// Exit status when some records failed.
pub const SOME_FAILED: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Import MARC 21 records (ISO 2709 `.mrc` or MARCXML; MARC-8 or UTF-8). Bad
    /// records are reported and skipped. Exit status: 0 when no record failed, 3
    /// when some did, 1 on a fatal error.
    Import {
        /// The files, imported in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `auto` decides from the first bytes (`<` is MARCXML).
        #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
        format: FormatArg,
        /// `isbn`: update the item with the same ISBN (records without one are
        /// matched by 001/003); `control-number`: by 001 (+003); `none`: always
        /// create (a record whose ISBN exists is skipped).
        #[arg(long = "match", value_enum, default_value_t = MatchArg::Isbn)]
        match_mode: MatchArg,
        /// Decide every record and report, but write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write the reported records as JSON lines `{index, control_number, reason}`.
        #[arg(long, value_name = "REPORT.jsonl")]
        errors: Option<PathBuf>,
    },
    /// Export the whole catalog: each item's original record with Carrel's
    /// current fields and copies (952) written over it.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Marcxml)]
        format: ExportFormat,
        /// Default: standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Auto,
    Marc,
    Marcxml,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MatchArg {
    Isbn,
    ControlNumber,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Marcxml,
    Marc,
}

/// Runs a catalog command; prints errors itself and returns the exit status.
pub async fn main(action: CatalogCommand, config: Config) -> ExitCode {
    crate::telemetry::init_logging(config.log_format);
    let result = async {
        let store = startup::connect_store(&config).await?;
        if config.auto_migrate {
            store
                .migrate()
                .await
                .context("cannot apply database migrations")?;
        }
        let outcome = match action {
            CatalogCommand::Import {
                files,
                format,
                match_mode,
                dry_run,
                errors,
            } => {
                let format = match format {
                    FormatArg::Auto => Format::Auto,
                    FormatArg::Marc => Format::Marc,
                    FormatArg::Marcxml => Format::MarcXml,
                };
                let match_mode = match match_mode {
                    MatchArg::Isbn => MatchMode::Isbn,
                    MatchArg::ControlNumber => MatchMode::ControlNumber,
                    MatchArg::None => MatchMode::None,
                };
                let mut settings = Settings::new(format, match_mode);
                settings.dry_run = dry_run;
                let counts = import_files(
                    &store,
                    &Clock::system(),
                    &files,
                    &settings,
                    errors.as_deref(),
                )
                .await;
                counts.map(|c| c.failed > 0)
            }
            CatalogCommand::Export { format, output } => export(&store, format, output.as_deref())
                .await
                .map(|failed| failed > 0),
        };
        store.close().await;
        outcome
    }
    .await;
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(SOME_FAILED),
        Err(error) => {
            eprintln!("carrel: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reports progress on a terminal (a bar) or as plain lines, and the reported records.
struct Console {
    bar: Option<ProgressBar>,
    errors: Option<std::io::BufWriter<std::fs::File>>,
    errors_failed: Option<std::io::Error>,
    file: Option<String>,
    started: Instant,
    last_line: Instant,
    base: i64,
    file_bytes: u64,
}

impl Console {
    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Observer for Console {
    fn issue(&mut self, issue: &ImportIssue) {
        if let Some(out) = &mut self.errors {
            let mut line = json!({
                "index": issue.index,
                "control_number": issue.control_number,
                "reason": issue.reason,
            });
            if let Some(file) = &self.file {
                line["file"] = json!(file);
            }
            if let Err(e) = writeln!(out, "{line}") {
                self.errors_failed.get_or_insert(e);
            }
        } else {
            let cn = issue
                .control_number
                .as_deref()
                .map(|c| format!(" (001 {c})"))
                .unwrap_or_default();
            let file = self
                .file
                .as_deref()
                .map(|f| format!("{f}: "))
                .unwrap_or_default();
            self.say(&format!(
                "{file}record {}{cn}: {}",
                issue.index, issue.reason
            ));
        }
    }

    fn progress(&mut self, counts: &ImportCounts, bytes_read: u64) {
        let records = self.base + counts.processed;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = counts.processed as f64 / secs;
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes_read);
                bar.set_message(format!("{records} records, {rate:.0} records/s"));
            }
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(5) {
                    self.last_line = Instant::now();
                    let percent = if self.file_bytes > 0 {
                        format!(
                            ", {:.0}% of the file",
                            bytes_read as f64 * 100.0 / self.file_bytes as f64
                        )
                    } else {
                        String::new()
                    };
                    eprintln!("progress: {records} records ({rate:.0} records/s){percent}");
                }
            }
        }
    }
}

/// Imports each file in turn and prints the summary line.
pub async fn import_files(
    store: &Store,
    clock: &Clock,
    files: &[PathBuf],
    settings: &Settings,
    errors: Option<&Path>,
) -> anyhow::Result<ImportCounts> {
    let errors = errors
        .map(|p| {
            std::fs::File::create(p)
                .map(std::io::BufWriter::new)
                .with_context(|| format!("cannot create the report {}", p.display()))
        })
        .transpose()?;
    let mut console = Console {
        bar: None,
        errors,
        errors_failed: None,
        file: None,
        started: Instant::now(),
        last_line: Instant::now(),
        base: 0,
        file_bytes: 0,
    };
    if !settings.dry_run {
        audit(store, clock, "catalog.import_started", json!({"files": files, "format": settings.format.as_str(), "match": settings.match_mode.as_str()})).await;
    }
    let mut total = ImportCounts::default();
    let mut result = Ok(());
    for path in files {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                result = Err(anyhow::anyhow!("cannot open {}: {e}", path.display()));
                break;
            }
        };
        let file_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        console.file = (files.len() > 1).then(|| path.display().to_string());
        console.started = Instant::now();
        console.file_bytes = file_bytes;
        console.bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(file_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        let run = import::run(store, clock, Box::new(file), settings, &mut console).await;
        if let Some(bar) = console.bar.take() {
            bar.finish_and_clear();
        }
        match run {
            Ok(counts) => {
                total.processed += counts.processed;
                total.created += counts.created;
                total.updated += counts.updated;
                total.skipped += counts.skipped;
                total.failed += counts.failed;
                console.base = total.processed;
            }
            Err(e) => {
                result = Err(anyhow::anyhow!("{}: {e}", path.display()));
                break;
            }
        }
    }
    if let Some(mut out) = console.errors.take()
        && let Err(e) = out.flush()
    {
        console.errors_failed.get_or_insert(e);
    }
    if let Some(e) = console.errors_failed {
        result = result.and(Err(anyhow::anyhow!("cannot write the report: {e}")));
    }
    if !settings.dry_run {
        audit(
            store,
            clock,
            "catalog.import_finished",
            json!({
                "files": files,
                "error": result.as_ref().err().map(|e| format!("{e:#}")),
                "processed": total.processed,
                "created": total.created,
                "updated": total.updated,
                "skipped": total.skipped,
                "failed": total.failed,
            }),
        )
        .await;
    }
    if settings.dry_run {
        println!("dry run: nothing was written");
    }
    println!(
        "imported {}, updated {}, skipped {}, failed {}",
        total.created, total.updated, total.skipped, total.failed
    );
    result.map(|()| total)
}

async fn audit(store: &Store, clock: &Clock, event_type: &'static str, details: serde_json::Value) {
    let event = NewAuditEvent {
        event_type,
        actor_id: None,
        subject_id: None,
        ip_address: None,
        user_agent: None,
        request_id: None,
        at: clock.now(),
        details,
    };
    if let Err(error) = store.record_audit_event(&event).await {
        carrel_store::log_audit_events(std::slice::from_ref(&event));
        tracing::error!(%error, "could not store an audit event");
    }
}

enum Sink {
    Xml(MarcXmlWriter<Box<dyn Write>>),
    Iso(Iso2709Writer<Box<dyn Write>>),
}

impl Sink {
    fn write(&mut self, record: &Record) -> Result<(), carrel_marc::WriteError> {
        match self {
            Sink::Xml(w) => w.write(record),
            Sink::Iso(w) => w.write(record),
        }
    }

    fn finish(self) -> Result<(), carrel_marc::WriteError> {
        match self {
            Sink::Xml(w) => w.finish().map(drop),
            Sink::Iso(w) => w.finish().map(drop),
        }
    }
}

/// Streams the whole catalog, page by page. Returns how many items could not
/// be written (reported on standard error).
pub async fn export(
    store: &Store,
    format: ExportFormat,
    output: Option<&Path>,
) -> anyhow::Result<u64> {
    let out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::io::stdout(),
        )),
    };
    let mut sink = match format {
        ExportFormat::Marcxml => Sink::Xml(MarcXmlWriter::new(out)),
        ExportFormat::Marc => Sink::Iso(Iso2709Writer::new(out)),
    };
    let (mut written, mut failed) = (0u64, 0u64);
    let branches = marc::BranchCodes::load(store).await?;
    let mut after = None;
    loop {
        let page = store.export_page(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.item.id);
        for entry in &page {
            let outcome = match marc::export_entry(entry, &branches) {
                Ok(record) => match sink.write(&record) {
                    Err(carrel_marc::WriteError::Io(e)) => {
                        anyhow::bail!("cannot write the export: {e}")
                    }
                    other => other.map_err(|e| e.to_string()),
                },
                Err(reason) => Err(reason),
            };
            match outcome {
                Ok(()) => written += 1,
                Err(reason) => {
                    failed += 1;
                    eprintln!("item {}: not exported: {reason}", entry.item.id);
                }
            }
        }
    }
    sink.finish().context("cannot write the export")?;
    eprintln!("exported {written} records, failed {failed}");
    Ok(failed)
}
